//! Recording: the logical `chat` span and the per-attempt `POST` span, and every attribute
//! written on them. Nothing here parses bytes or decides what an outcome was; it writes down
//! what `observe` saw and `classify` decided.

pub mod metrics;
pub mod names;

use std::borrow::Cow;

use opentelemetry::{Array, KeyValue, StringValue, Value};
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::diagnose::{Diagnosis, Finding, Level};
use crate::observe::ResponseOutcome;
use crate::ratelimit::RateLimit;
use crate::request::RequestFacts;
use metrics::{AttemptSummary, CallSummary, Metrics};
use names::*;

/// Longest status description put on a span.
const MAX_STATUS_DESCRIPTION: usize = 256;

/// Starts the logical span of one gateway call. Its start time is the time the request is
/// sent. The fields a `tracing` subscriber (say, `fmt`) shows are declared here; the rest are
/// OpenTelemetry attributes set through `tracing-opentelemetry`.
pub(crate) fn call_span(facts: &RequestFacts) -> Span {
    let name = match &facts.model {
        Some(model) => format!("{OPERATION_CHAT} {model}"),
        None => OPERATION_CHAT.to_owned(),
    };
    let span = tracing::info_span!(
        target: TRACING_TARGET,
        "chat",
        { OTEL_NAME } = name,
        { OTEL_KIND } = "client",
        { OTEL_STATUS_CODE } = Empty,
        { OTEL_STATUS_DESCRIPTION } = Empty,
        { GEN_AI_OPERATION_NAME } = OPERATION_CHAT,
        { GEN_AI_PROVIDER_NAME } = PROVIDER_NAME,
        { GEN_AI_REQUEST_MODEL } = facts.model.as_deref(),
        { GEN_AI_RESPONSE_MODEL } = Empty,
        { LLM_GATEWAY_REQUEST_ID } = Empty,
        { LLM_GATEWAY_REGION } = facts.region.as_str(),
        { SERVER_ADDRESS } = facts.server_address.as_str(),
        { HTTP_RESPONSE_STATUS_CODE } = Empty,
        { ERROR_TYPE } = Empty,
        { GEN_AI_USAGE_INPUT_TOKENS } = Empty,
        { GEN_AI_USAGE_OUTPUT_TOKENS } = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(port) = facts.server_port {
        span.set_attribute(SERVER_PORT, i64::from(port));
    }
    if let Some(v) = facts.max_tokens {
        span.set_attribute(GEN_AI_REQUEST_MAX_TOKENS, v);
    }
    if let Some(v) = facts.temperature {
        span.set_attribute(GEN_AI_REQUEST_TEMPERATURE, v);
    }
    if facts.described {
        span.set_attribute(GEN_AI_REQUEST_STREAM, facts.stream);
    }
    span
}

/// Starts the span of one HTTP attempt, a child of the call's span.
pub(crate) fn attempt_span(call: &Span, request: &reqwest::Request, resend_count: i64) -> Span {
    let url = request.url();
    tracing::info_span!(
        target: TRACING_TARGET,
        parent: call,
        "POST",
        { OTEL_NAME } = request.method().as_str(),
        { OTEL_KIND } = "client",
        { OTEL_STATUS_CODE } = Empty,
        { HTTP_REQUEST_METHOD } = request.method().as_str(),
        { URL_FULL } = crate::redact::redact_url(url),
        { SERVER_ADDRESS } = url.host_str(),
        { SERVER_PORT } = url.port_or_known_default().map(i64::from),
        { HTTP_REQUEST_RESEND_COUNT } = resend_count,
        { HTTP_RESPONSE_STATUS_CODE } = Empty,
        { ERROR_TYPE } = Empty,
    )
}

/// Records on an attempt span (and the attempt metrics) what came back: a status, or a
/// transport failure.
pub(crate) fn end_attempt(
    attempt: &Span,
    result: &reqwest_middleware::Result<reqwest::Response>,
    request: &RequestFacts,
    duration: std::time::Duration,
    metrics: &Metrics,
) {
    let status = result.as_ref().ok().map(|r| r.status().as_u16());
    if let Some(status) = status {
        attempt.record(HTTP_RESPONSE_STATUS_CODE, i64::from(status));
    }
    let code = status.filter(|s| *s >= 400).map(|s| s.to_string());
    let error_type = match result {
        Ok(_) => code.as_deref(),
        Err(err) => Some(crate::classify::classify_transport(err)),
    };
    if let Some(error_type) = error_type {
        attempt.record(ERROR_TYPE, error_type);
        attempt.record(OTEL_STATUS_CODE, "error");
    }
    metrics.record_attempt(&AttemptSummary {
        request,
        status,
        error_type,
        duration,
    });
}

/// Records a call that got no response at all (connect error, timeout before headers).
pub(crate) fn record_transport_failure(
    call: &Span,
    err: &reqwest_middleware::Error,
    request: &RequestFacts,
    duration: std::time::Duration,
    metrics: &Metrics,
) {
    let error_type = crate::classify::classify_transport(err);
    call.record(ERROR_TYPE, error_type);
    // reqwest's message names the URL, which may carry a key in its query.
    let message = crate::redact::redact(&err.to_string(), &request.secrets).into_owned();
    call.record(OTEL_STATUS_DESCRIPTION, bounded(&message));
    metrics.record_call(&CallSummary {
        request,
        outcome: None,
        status: None,
        error_type: Some(error_type),
        duration,
    });
}

/// Marks the call's span cancelled when the call's future is dropped before it has a
/// response (say, while waiting to retry). Disarmed once the response or error is in hand.
pub(crate) struct CancelGuard(Option<Span>);

impl CancelGuard {
    pub(crate) fn new(call: &Span) -> CancelGuard {
        CancelGuard(Some(call.clone()))
    }

    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            call.set_attribute(LLM_GATEWAY_CANCELLED, true);
        }
    }
}

/// Records what the response head said, as soon as it arrives.
pub(crate) fn record_response_head(call: &Span, status: u16, rate: &RateLimit) {
    call.record(HTTP_RESPONSE_STATUS_CODE, i64::from(status));
    if let Some(v) = rate.limit {
        call.set_attribute(LLM_GATEWAY_RATE_LIMIT_LIMIT, v);
    }
    if let Some(v) = rate.remaining {
        call.set_attribute(LLM_GATEWAY_RATE_LIMIT_REMAINING, v);
    }
    if let Some(v) = rate.reset_s {
        call.set_attribute(LLM_GATEWAY_RATE_LIMIT_RESET_S, v);
    }
    if let Some(v) = rate.retry_after {
        call.set_attribute(LLM_GATEWAY_RETRY_AFTER_S, v.as_secs_f64());
    }
}

/// Records everything the body showed, and the verdict, when the body ends (or is dropped).
pub(crate) fn record_outcome(
    call: &Span,
    o: &ResponseOutcome,
    error_type: Option<&Cow<'static, str>>,
) {
    if call.is_disabled() {
        return;
    }
    let f = &o.facts;
    if let Some(model) = f.model.as_deref().or(f.request_model.as_deref()) {
        call.record(GEN_AI_RESPONSE_MODEL, model);
    }
    if let Some(id) = &f.request_id {
        call.record(LLM_GATEWAY_REQUEST_ID, id.as_str());
        call.set_attribute(GEN_AI_RESPONSE_ID, id.clone());
    } else if let Some(id) = &f.id {
        call.set_attribute(GEN_AI_RESPONSE_ID, id.clone());
    }
    let u = &f.usage;
    if let Some(v) = u.input_tokens {
        call.record(GEN_AI_USAGE_INPUT_TOKENS, saturating_i64(v));
    }
    if let Some(v) = u.output_tokens {
        call.record(GEN_AI_USAGE_OUTPUT_TOKENS, saturating_i64(v));
    }
    if let Some(v) = u.cache_read_input_tokens {
        call.set_attribute(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, saturating_i64(v));
    }
    if let Some(v) = u.cache_creation_input_tokens {
        call.set_attribute(GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, saturating_i64(v));
    }
    if !f.finish_reasons.is_empty() {
        let reasons: Vec<StringValue> = f.finish_reasons.iter().map(|r| r.clone().into()).collect();
        call.set_attribute(
            GEN_AI_RESPONSE_FINISH_REASONS,
            Value::Array(Array::String(reasons)),
        );
    }
    if let Some(v) = f.llm_status_code {
        call.set_attribute(LLM_GATEWAY_LLM_STATUS_CODE, v);
    }
    call.set_attribute(LLM_GATEWAY_RESPONSE_STREAMED, o.streamed);
    if let Some(ttfc) = o.time_to_first_chunk {
        call.set_attribute(LLM_GATEWAY_TIME_TO_FIRST_CHUNK, ttfc.as_secs_f64());
    }
    if let Some(stream) = &o.stream {
        call.set_attribute(LLM_GATEWAY_STREAM_EVENTS, saturating_i64(stream.events));
        call.set_attribute(LLM_GATEWAY_STREAM_DONE, stream.done);
    }
    if let Some(json) = o.json {
        call.set_attribute(LLM_GATEWAY_RESPONSE_JSON, json_status_name(json));
    }
    call.set_attribute(LLM_GATEWAY_RESPONSE_BODY_SIZE, saturating_i64(o.body_bytes));
    call.set_attribute(LLM_GATEWAY_RESPONSE_READ_TO_END, o.read_to_end());
    if !o.read_to_end() {
        call.set_attribute(LLM_GATEWAY_CANCELLED, true);
    }
    if let Some(body) = &o.error_body {
        call.set_attribute(LLM_GATEWAY_ERROR_BODY, body.clone());
    }
    if let Some(message) = &o.error_message {
        call.set_attribute(LLM_GATEWAY_ERROR_MESSAGE, message.clone());
    }
    if let Some(code) = &f.error.code {
        call.set_attribute(LLM_GATEWAY_ERROR_CODE, code.clone());
    }
    if let Some(error_type) = error_type {
        call.record(ERROR_TYPE, error_type.as_ref());
        let description = o.error_message.as_deref().unwrap_or(error_type.as_ref());
        call.record(OTEL_STATUS_DESCRIPTION, bounded(description));
    }
}

/// Records what the diagnosis said: a failure's cause, fix and detail as attributes, a notice
/// (the call worked, not as asked) as a `llm_gateway.notice` event.
pub(crate) fn record_diagnosis(call: &Span, diagnosis: Option<&Diagnosis>) {
    let Some(d) = diagnosis else { return };
    if call.is_disabled() {
        return;
    }
    match d.level {
        Level::Error => {
            call.set_attribute(LLM_GATEWAY_ERROR_CAUSE, d.cause.as_str());
            call.set_attribute(LLM_GATEWAY_ERROR_FIX, d.fix);
            if let Some(detail) = &d.detail {
                call.set_attribute(LLM_GATEWAY_ERROR_DETAIL, bounded_detail(detail));
            }
        }
        Level::Notice => {
            let mut attrs = vec![
                KeyValue::new(LLM_GATEWAY_NOTICE_CAUSE, d.cause.as_str()),
                KeyValue::new(LLM_GATEWAY_NOTICE_FIX, d.fix),
            ];
            if let Some(detail) = &d.detail {
                attrs.push(KeyValue::new(
                    LLM_GATEWAY_NOTICE_DETAIL,
                    bounded_detail(detail),
                ));
            }
            call.add_event(LLM_GATEWAY_NOTICE_EVENT, attrs);
        }
    }
}

/// Records each pre-flight finding as a `llm_gateway.preflight` event on the call's span.
pub(crate) fn record_preflight(call: &Span, findings: &[Finding]) {
    if call.is_disabled() {
        return;
    }
    for f in findings {
        call.add_event(
            LLM_GATEWAY_PREFLIGHT_EVENT,
            vec![
                KeyValue::new(LLM_GATEWAY_PREFLIGHT_CAUSE, f.cause.as_str()),
                KeyValue::new(LLM_GATEWAY_PREFLIGHT_FIELD, f.field),
                KeyValue::new(LLM_GATEWAY_PREFLIGHT_SEVERITY, f.severity.as_str()),
                KeyValue::new(LLM_GATEWAY_PREFLIGHT_DETAIL, f.detail.clone()),
                KeyValue::new(LLM_GATEWAY_PREFLIGHT_FIX, f.fix()),
            ],
        );
    }
}

/// Records a call that a fail-fast pre-flight check stopped before anything was sent.
pub(crate) fn record_preflight_rejection(call: &Span, diagnosis: &Diagnosis, message: &str) {
    call.record(ERROR_TYPE, ERROR_TYPE_PREFLIGHT);
    call.record(OTEL_STATUS_DESCRIPTION, bounded(message));
    record_diagnosis(call, Some(diagnosis));
}

/// Longest detail recorded (it may echo an error message).
const MAX_DETAIL: usize = 1024;

fn bounded_detail(text: &str) -> String {
    crate::observe::truncate_utf8(text, MAX_DETAIL).to_owned()
}

fn json_status_name(s: crate::observe::json::JsonStatus) -> &'static str {
    use crate::observe::json::JsonStatus::*;
    match s {
        Complete => "complete",
        Truncated => "truncated",
        Malformed => "malformed",
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// At most [`MAX_STATUS_DESCRIPTION`] bytes, cut on a character boundary.
fn bounded(text: &str) -> String {
    crate::observe::truncate_utf8(text, MAX_STATUS_DESCRIPTION).to_owned()
}
