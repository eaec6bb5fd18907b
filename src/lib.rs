//! # llm-gateway-otel
//!
//! Makes every call to an LLM gateway (AssemblyAI's LLM Gateway first) observable: a
//! [`reqwest_middleware`] middleware that turns each chat-completions call into an
//! OpenTelemetry span with the gateway's `request_id`, the model requested and served, the
//! region, token usage, rate-limit headers, and on failure the (redacted) error body.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = llm_gateway_otel::init()?; // OTLP export from OTEL_* variables
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(llm_gateway_otel::GatewayMiddleware::default())
//!     .build();
//! let response = client
//!     .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
//!     .header("authorization", std::env::var("ASSEMBLYAI_API_KEY")?)
//!     .header("content-type", "application/json")
//!     .body(r#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}]}"#)
//!     .send()
//!     .await?;
//! let body = response.text().await?; // the span ends when the body has been read
//! # Ok(()) }
//! ```
//!
//! One call flows through [`GatewayMiddleware`]: the request's facts are read → a recorder
//! starts the call's span and report → pre-flight checks → the retry loop sends attempts,
//! each under its own span → the body observer watches the body as it passes → at its end the
//! recorder classifies, diagnoses and records the outcome, once. The README's architecture
//! section says what each private module owns.

mod call;
mod classify;
mod content;
mod diagnose;
mod error;
#[cfg(feature = "export")]
pub mod export;
mod middleware;
pub mod names;
mod observe;
mod outcome;
mod parse;
mod price;
mod ratelimit;
mod redact;
mod region;
mod report;
mod request;
pub mod retry;
mod rfc3339;
mod telemetry;
mod text;

pub use content::ContentCapture;
pub use diagnose::{Cause, Diagnosis, Finding, Level, PreflightMode, Severity};
pub use error::ConfigError;
#[cfg(feature = "export")]
pub use export::{init, TelemetryGuard};
pub use middleware::{
    GatewayMiddleware, GatewayMiddlewareBuilder, DEFAULT_ERROR_BODY_LIMIT, DEFAULT_MAX_MODEL_LABELS,
};
pub use price::{Prices, Rates};
pub use region::{Region, EU_HOST, US_HOST};
pub use report::{
    AttemptRecord, PreflightError, PreflightNote, ReportHandle, ReportSlot, SupportReport,
    SupportReportExt,
};
pub use request::{GatewayMatcher, RequestMatcher};
pub use telemetry::log::CallLog;
pub use telemetry::AttemptSpans;

/// The parsers and checks that see network bytes, for the fuzz targets in `fuzz/`. Not part
/// of the API: it changes without notice.
#[doc(hidden)]
pub mod fuzz {
    pub use crate::parse::json::{pick, JsonPicker};
    pub use crate::parse::sse::StreamObserver;
    pub use crate::ratelimit::{parse_retry_after, RateLimit};
    pub use crate::redact::{redact, REDACTED};
}
