//! Metric instruments (see `telemetry-conventions.md`): one place where every call, attempt,
//! retry and rate-limit reading is turned into OpenTelemetry measurements.
//!
//! The instruments are created once, when the middleware is built, from the meter given to
//! the builder (default: the global meter provider's `llm_gateway_otel` meter). Attribute sets
//! stay low-cardinality: model, region, status code, error type, never a request id.

use std::time::Duration;

use crate::observe::ResponseOutcome;
use crate::ratelimit::RateLimit;
use crate::request::RequestFacts;

/// What one finished call contributes to the metrics.
#[derive(Debug, Clone, Copy)]
pub struct CallSummary<'a> {
    /// The request's facts (model, region, server).
    pub request: &'a RequestFacts,
    /// What the body showed, when there was a response.
    pub outcome: Option<&'a ResponseOutcome>,
    /// Final status code, when there was a response.
    pub status: Option<u16>,
    /// The classified `error.type`, if the call failed.
    pub error_type: Option<&'a str>,
    /// From sending the request to the end of the body (or the failure).
    pub duration: Duration,
}

/// What one HTTP attempt contributes to the metrics.
#[derive(Debug, Clone, Copy)]
pub struct AttemptSummary<'a> {
    /// The request's facts.
    pub request: &'a RequestFacts,
    /// Status code of the attempt, when one came back.
    pub status: Option<u16>,
    /// `error.type` of the attempt, if it failed.
    pub error_type: Option<&'a str>,
    /// From sending to the response head (or the failure).
    pub duration: Duration,
}

/// The instruments.
#[derive(Debug, Clone, Default)]
pub struct Metrics {}

impl Metrics {
    /// Instruments from `meter`.
    pub fn new(_meter: &opentelemetry::metrics::Meter) -> Metrics {
        Metrics {}
    }

    /// Records one finished call.
    pub fn record_call(&self, _call: &CallSummary<'_>) {}

    /// Records one HTTP attempt.
    pub fn record_attempt(&self, _attempt: &AttemptSummary<'_>) {}

    /// Records one retry (a re-send) and why it happened.
    pub fn record_retry(&self, _request: &RequestFacts, _reason: &str) {}

    /// Records the rate-limit headers of a response.
    pub fn record_rate_limit(&self, _request: &RequestFacts, _rate: &RateLimit) {}
}
