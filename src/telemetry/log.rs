//! One structured `tracing` event per finished call: the log entry the gateway's
//! troubleshooting page asks for ("log this ID for every call"), with the page's field names.
//! It goes to whatever subscriber the application has; `init()` also exports it as an
//! OpenTelemetry log record, correlated with the call's span.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::TraceContextExt as _;
use tracing::Level;

use super::SpanHandle;
use crate::content::RequestContent;
use crate::names::{
    CALL_LOG_EVENT, CALL_LOG_MESSAGE, CALL_LOG_TARGET, CONTENT_LOG_TARGET, GEN_AI_CONTENT_EVENT,
};

/// Which finished calls get a log line, and at which level: by default INFO for a success,
/// WARN for a failure.
///
/// ```
/// use llm_gateway_otel::{CallLog, GatewayMiddleware};
/// use tracing::Level;
/// // Failures only, as errors; successes stay in the spans.
/// let middleware = GatewayMiddleware::builder()
///     .call_log(CallLog::default().success(None).failure(Some(Level::ERROR)))
///     .build()
///     .unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLog {
    success: Option<Level>,
    failure: Option<Level>,
}

impl Default for CallLog {
    fn default() -> Self {
        CallLog {
            success: Some(Level::INFO),
            failure: Some(Level::WARN),
        }
    }
}

impl CallLog {
    /// No log line at all.
    pub fn off() -> CallLog {
        CallLog {
            success: None,
            failure: None,
        }
    }

    /// The level of a successful call's line (`None`: no line).
    pub fn success(mut self, level: Option<Level>) -> CallLog {
        self.success = level;
        self
    }

    /// The level of a failed call's line (`None`: no line).
    pub fn failure(mut self, level: Option<Level>) -> CallLog {
        self.failure = level;
        self
    }
}

/// What one call's line says.
pub(crate) struct LogLine<'a> {
    /// When the request was sent.
    pub(crate) sent_at: SystemTime,
    pub(crate) region: &'a str,
    /// The model requested.
    pub(crate) model: Option<&'a str>,
    /// The model that served the call, when it is not the one requested.
    pub(crate) served_model: Option<&'a str>,
    pub(crate) status_code: Option<u16>,
    pub(crate) request_id: Option<&'a str>,
    /// `error.type`, and the gateway's message (redacted) after a colon.
    pub(crate) error: Option<String>,
    pub(crate) duration: Duration,
    pub(crate) attempts: u32,
    /// The diagnosed cause of a failure.
    pub(crate) cause: Option<&'a str>,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    /// What the call cost, when priced.
    pub(crate) cost_usd: Option<f64>,
    /// `Some(true)` when the caller dropped the body before its end.
    pub(crate) cancelled: Option<bool>,
}

/// Emits the call's line, if `config` and the subscriber want it: a root event (no parent
/// span, so no layer folds it into whatever span is current), emitted with the call's span as
/// the current OpenTelemetry context, so an OpenTelemetry log bridge correlates it.
pub(crate) fn emit<'a>(
    config: &CallLog,
    span: &SpanHandle,
    failed: bool,
    line: impl FnOnce() -> LogLine<'a>,
) {
    let level = if failed {
        config.failure
    } else {
        config.success
    };
    let Some(level) = level else { return };
    if !enabled(level) {
        return;
    }
    let line = line();
    let (trace_id, span_id) = ids(span);
    let _current = span.context().clone().attach();
    macro_rules! call_event {
        ($level:expr) => {
            tracing::event!(
                name: CALL_LOG_EVENT,
                target: CALL_LOG_TARGET,
                parent: None,
                $level,
                timestamp = %crate::rfc3339::Rfc3339(line.sent_at),
                region = line.region,
                model = line.model,
                served_model = line.served_model,
                status_code = line.status_code,
                request_id = line.request_id,
                error = line.error.as_deref(),
                duration_ms = (line.duration.as_secs_f64() * 1e6).round() / 1e3,
                attempts = line.attempts,
                cause = line.cause,
                input_tokens = line.input_tokens,
                output_tokens = line.output_tokens,
                cost_usd = line.cost_usd,
                cancelled = line.cancelled,
                trace_id = trace_id,
                span_id = span_id,
                "{CALL_LOG_MESSAGE}"
            )
        };
    }
    match level {
        Level::ERROR => call_event!(Level::ERROR),
        Level::WARN => call_event!(Level::WARN),
        Level::INFO => call_event!(Level::INFO),
        Level::DEBUG => call_event!(Level::DEBUG),
        _ => call_event!(Level::TRACE),
    }
}

/// Emits the captured content of a finished call as the GenAI conventions' event
/// (`gen_ai.client.inference.operation.details`, INFO, target `llm_gateway_otel::content`),
/// a root event with the call's span as the current OpenTelemetry context, like the log line.
pub(crate) fn emit_content(
    span: &SpanHandle,
    request: Option<&RequestContent>,
    output: Option<&str>,
) {
    if !tracing::enabled!(target: CONTENT_LOG_TARGET, Level::INFO) {
        return;
    }
    let (trace_id, span_id) = ids(span);
    let _current = span.context().clone().attach();
    tracing::event!(
        name: GEN_AI_CONTENT_EVENT,
        target: CONTENT_LOG_TARGET,
        parent: None,
        Level::INFO,
        gen_ai.input.messages = request.and_then(|r| r.input.as_deref()),
        gen_ai.system_instructions = request.and_then(|r| r.system.as_deref()),
        gen_ai.output.messages = output,
        trace_id = trace_id,
        span_id = span_id,
        "{GEN_AI_CONTENT_EVENT}"
    );
}

/// The trace and span ids of `span`, as the lines print them (none for a span that is not
/// recorded).
fn ids(
    span: &SpanHandle,
) -> (
    Option<tracing::field::DisplayValue<opentelemetry::trace::TraceId>>,
    Option<tracing::field::DisplayValue<opentelemetry::trace::SpanId>>,
) {
    let sc = span.context().span().span_context().clone();
    let valid = sc.is_valid();
    (
        valid.then(|| tracing::field::display(sc.trace_id())),
        valid.then(|| tracing::field::display(sc.span_id())),
    )
}

/// Whether the current subscriber takes events of our target at `level`.
fn enabled(level: Level) -> bool {
    match level {
        Level::ERROR => tracing::enabled!(target: CALL_LOG_TARGET, Level::ERROR),
        Level::WARN => tracing::enabled!(target: CALL_LOG_TARGET, Level::WARN),
        Level::INFO => tracing::enabled!(target: CALL_LOG_TARGET, Level::INFO),
        Level::DEBUG => tracing::enabled!(target: CALL_LOG_TARGET, Level::DEBUG),
        _ => tracing::enabled!(target: CALL_LOG_TARGET, Level::TRACE),
    }
}
