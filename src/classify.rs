//! Decides what an outcome was: success, or which low-cardinality `error.type`. Pure: it
//! reads facts and returns a verdict; recording the verdict is `telemetry`'s job.

use std::borrow::Cow;

use crate::names::*;
use crate::outcome::{BodyEnd, JsonStatus};

/// The facts of a finished response that the verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct ResponseVerdictInput {
    /// Final HTTP status code.
    pub status: u16,
    /// Whether the answer was an SSE stream.
    pub streamed: bool,
    /// For a stream: whether `data: [DONE]` arrived.
    pub stream_done: bool,
    /// How a JSON body parsed (`None` for streams).
    pub json: Option<JsonStatus>,
    /// How the body ended.
    pub end: BodyEnd,
}

/// The `error.type` of a response, or `None` for a success.
pub fn classify_response(r: &ResponseVerdictInput) -> Option<Cow<'static, str>> {
    if !(200..300).contains(&r.status) {
        return Some(Cow::Owned(r.status.to_string()));
    }
    match r.end {
        BodyEnd::Failed { timeout: true } => Some(Cow::Borrowed(ERROR_TYPE_TIMEOUT)),
        BodyEnd::Failed { timeout: false } if r.streamed => {
            Some(Cow::Borrowed(ERROR_TYPE_STREAM_INTERRUPTED))
        }
        BodyEnd::Failed { timeout: false } => Some(Cow::Borrowed(ERROR_TYPE_BODY_INTERRUPTED)),
        // The user stopped reading: what was not read cannot be judged.
        BodyEnd::Dropped => None,
        BodyEnd::Complete if r.streamed && !r.stream_done => {
            Some(Cow::Borrowed(ERROR_TYPE_STREAM_INTERRUPTED))
        }
        BodyEnd::Complete => match r.json {
            Some(JsonStatus::Truncated) | Some(JsonStatus::Malformed) => {
                Some(Cow::Borrowed(ERROR_TYPE_MALFORMED_RESPONSE))
            }
            _ => None,
        },
    }
}

/// What kind of failure a call (or an attempt) that got no response had: the one transport
/// classifier, for `error.type` and for the diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// A timeout fired before the response head.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Anything else reqwest reports (a body error while sending, a redirect loop, an
    /// incomplete answer, a reset).
    Other,
    /// Another middleware's own error.
    Middleware,
}

impl TransportFailure {
    /// The kind of a middleware-stack error.
    pub fn of(err: &reqwest_middleware::Error) -> TransportFailure {
        match err {
            reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => TransportFailure::Timeout,
            reqwest_middleware::Error::Reqwest(e) if e.is_connect() => TransportFailure::Connect,
            reqwest_middleware::Error::Reqwest(_) => TransportFailure::Other,
            reqwest_middleware::Error::Middleware(_) => TransportFailure::Middleware,
        }
    }

    /// Its `error.type`.
    pub fn error_type(self) -> &'static str {
        match self {
            TransportFailure::Timeout => ERROR_TYPE_TIMEOUT,
            TransportFailure::Connect => ERROR_TYPE_CONNECT,
            TransportFailure::Other => ERROR_TYPE_REQUEST,
            TransportFailure::Middleware => ERROR_TYPE_MIDDLEWARE,
        }
    }
}

/// The `error.type` of one HTTP attempt: its status code from 400 up, or its transport
/// class; `None` for an attempt that got a response below 400.
pub fn classify_attempt(
    result: &reqwest_middleware::Result<reqwest::Response>,
) -> Option<Cow<'static, str>> {
    match result {
        Ok(r) if r.status().as_u16() >= 400 => Some(Cow::Owned(r.status().as_u16().to_string())),
        Ok(_) => None,
        Err(e) => Some(Cow::Borrowed(TransportFailure::of(e).error_type())),
    }
}

/// The examples that were doc tests before this module became private.
#[cfg(test)]
mod examples {
    #[test]
    fn classifies_statuses_and_broken_streams() {
        use crate::classify::{classify_response, ResponseVerdictInput};
        use crate::outcome::BodyEnd;
        use crate::outcome::JsonStatus;
        let ok = ResponseVerdictInput {
            status: 200,
            streamed: false,
            stream_done: false,
            json: Some(JsonStatus::Complete),
            end: BodyEnd::Complete,
        };
        assert_eq!(classify_response(&ok), None);
        let limited = ResponseVerdictInput { status: 429, ..ok };
        assert_eq!(classify_response(&limited).as_deref(), Some("429"));
        let broken = ResponseVerdictInput {
            streamed: true,
            json: None,
            ..ok
        };
        assert_eq!(
            classify_response(&broken).as_deref(),
            Some("stream_interrupted")
        );
    }
}
