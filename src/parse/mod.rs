//! Pure, incremental parsers over the gateway's response bytes: the JSON field picker and the
//! SSE reader that feeds it one event at a time. They see bytes in any chunking and never
//! panic on what they are given; the body observer wires them in.

pub mod json;
pub mod sse;
