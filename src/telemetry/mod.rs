//! Recording: the logical `chat` span and the per-attempt `POST` span, and every attribute
//! written on them (`span` says where spans go, `metrics` holds the instruments). Nothing
//! here parses bytes or decides what an outcome was; it writes down what the body observer
//! saw, `classify` decided and `diagnose` found.

mod bound;
pub(crate) mod log;
pub mod metrics;
mod span;

pub(crate) use span::{SpanHandle, TracerSource};

use std::borrow::Cow;

use opentelemetry::{Array, KeyValue, StringValue, Value};

use crate::content::{ContentCapture, RequestContent};
use crate::diagnose::{Diagnosis, Finding, Level};
use crate::names::*;
use crate::outcome::{BodyFacts, JsonStatus, ResponseOutcome};
use crate::price::Prices;
use crate::ratelimit::RateLimit;
use crate::request::RequestFacts;
pub(crate) use metrics::Spend;
use metrics::{CallSummary, MetricAttributes, Metrics};

/// Longest status description put on a span.
const MAX_STATUS_DESCRIPTION: usize = 256;

/// The telemetry part of the middleware: where spans are recorded and the metric
/// instruments. Built once with the middleware; each call records through it.
pub(crate) struct Telemetry {
    pub(crate) tracer: TracerSource,
    pub(crate) attempt_spans: AttemptSpans,
    pub(crate) metrics: metrics::MetricsSource,
    /// Which finished calls get a log line.
    pub(crate) log: log::CallLog,
    /// The account's rate table (empty: no cost is recorded).
    pub(crate) prices: Prices,
    /// Whether message content is recorded, and where.
    pub(crate) content: ContentCapture,
    /// The bound of each captured attribute.
    pub(crate) max_content_bytes: usize,
}

/// Starts the logical span of one gateway call, a child of the current context. Its start
/// time is the time the request is sent.
pub(crate) fn call_span(
    tracer: &TracerSource,
    facts: &RequestFacts,
    metric_attributes: &MetricAttributes,
) -> SpanHandle {
    let name: Cow<'static, str> = match &facts.model {
        Some(model) => format!("{OPERATION_CHAT} {model}").into(),
        None => OPERATION_CHAT.into(),
    };
    let mut attributes = Vec::with_capacity(32);
    attributes.extend([
        KeyValue::new(GEN_AI_OPERATION_NAME, OPERATION_CHAT),
        KeyValue::new(GEN_AI_PROVIDER_NAME, PROVIDER_NAME),
    ]);
    // gen_ai.request.model, llm_gateway.region and server.address, as the metrics carry them.
    attributes.extend(metric_attributes.request_attributes());
    if let Some(port) = facts.server_port {
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    if let Some(v) = facts.max_tokens {
        attributes.push(KeyValue::new(GEN_AI_REQUEST_MAX_TOKENS, v));
    }
    if let Some(v) = facts.temperature {
        attributes.push(KeyValue::new(GEN_AI_REQUEST_TEMPERATURE, v));
    }
    if facts.described {
        attributes.push(KeyValue::new(GEN_AI_REQUEST_STREAM, facts.stream));
    }
    tracer.start_call(name, attributes)
}

/// How attempt spans are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttemptSpans {
    /// Only when a call makes more than one attempt; then every attempt, with its real start
    /// and end times (the first one is recorded when the second is sent). A call that needs
    /// one attempt exports one span: the call's, which holds the attempt's status.
    #[default]
    WhenRetried,
    /// An HTTP client span for every attempt, retried or not.
    Always,
}

/// Starts the span of one HTTP attempt, a child of the call's span (at `start`, for an
/// attempt recorded after it was made). It holds what the call's span does not: the method,
/// the URL, and which re-send it was (from the second attempt on).
pub(crate) fn attempt_span(
    tracer: &TracerSource,
    call: &SpanHandle,
    request: &reqwest::Request,
    resend_count: u32,
    start: Option<std::time::SystemTime>,
) -> SpanHandle {
    // The span is named for the method; POST, the one the gateway serves, is not copied.
    let (name, method): (Cow<'static, str>, StringValue) =
        if request.method() == reqwest::Method::POST {
            (Cow::Borrowed("POST"), "POST".into())
        } else {
            let m = request.method().as_str().to_owned();
            (Cow::Owned(m.clone()), m.into())
        };
    let mut attributes = vec![
        KeyValue::new(HTTP_REQUEST_METHOD, method),
        KeyValue::new(URL_FULL, crate::redact::redact_url(request.url())),
    ];
    attributes.extend(resend_count_attribute(resend_count));
    tracer.start_attempt(call, name, attributes, start)
}

/// `http.request.resend_count` of a request re-sent `resends` times: only on a re-send, as
/// the HTTP conventions ask (on the call's span and on each attempt's).
pub(crate) fn resend_count_attribute(resends: u32) -> Option<KeyValue> {
    (resends > 0).then(|| KeyValue::new(HTTP_REQUEST_RESEND_COUNT, i64::from(resends)))
}

/// Records on an attempt span what came back, a status or a transport failure, and ends it
/// (at `end` for an attempt recorded after it was made, else now).
pub(crate) fn end_attempt(
    attempt: &SpanHandle,
    status: Option<u16>,
    error_type: Option<&str>,
    end: Option<std::time::SystemTime>,
) {
    if attempt.is_recording() {
        let mut attributes = Vec::with_capacity(2);
        if let Some(status) = status {
            attributes.push(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
        }
        if let Some(error_type) = error_type {
            attributes.push(KeyValue::new(ERROR_TYPE, error_type.to_owned()));
            attempt.fail(error_type.to_owned());
        }
        attempt.set_all(attributes);
    }
    match end {
        Some(time) => attempt.end_at(time),
        None => attempt.end(),
    }
}

/// Records a call that got no response at all (connect error, timeout before headers).
/// `message` is the error's, already redacted.
pub(crate) fn record_transport_failure(
    call: &SpanHandle,
    error_type: &'static str,
    message: &str,
    attributes: &MetricAttributes,
    duration: std::time::Duration,
    metrics: &Metrics,
) {
    call.set(KeyValue::new(ERROR_TYPE, error_type));
    call.fail(bounded(message));
    metrics.record_call(&CallSummary {
        attributes,
        outcome: None,
        status: None,
        error_type: Some(error_type),
        duration,
        spend: Spend::default(),
    });
}

/// Marks a call's span cancelled and ends it: the call's future was dropped before there
/// was a response (say, while waiting to retry).
pub(crate) fn record_cancelled(call: &SpanHandle) {
    call.set(KeyValue::new(LLM_GATEWAY_CANCELLED, true));
    call.end();
}

/// Records what the response head said, as soon as it arrives.
pub(crate) fn record_response_head(call: &SpanHandle, status: u16, rate: &RateLimit) {
    if !call.is_recording() {
        return;
    }
    let mut attributes = Vec::with_capacity(5);
    attributes.push(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
    if let Some(v) = rate.limit {
        attributes.push(KeyValue::new(LLM_GATEWAY_RATE_LIMIT_LIMIT, v));
    }
    if let Some(v) = rate.remaining {
        attributes.push(KeyValue::new(LLM_GATEWAY_RATE_LIMIT_REMAINING, v));
    }
    if let Some(v) = rate.reset_s {
        attributes.push(KeyValue::new(LLM_GATEWAY_RATE_LIMIT_RESET_S, v));
    }
    if let Some(v) = rate.retry_after {
        attributes.push(KeyValue::new(LLM_GATEWAY_RETRY_AFTER_S, v.as_secs_f64()));
    }
    call.set_all(attributes);
}

/// Records everything the body showed, and the verdict, when the body ends (or is dropped).
pub(crate) fn record_outcome(
    call: &SpanHandle,
    o: &ResponseOutcome,
    requested_stream: bool,
    error_type: Option<&Cow<'static, str>>,
    spend: Spend,
) {
    if !call.is_recording() {
        return;
    }
    let mut a = Vec::with_capacity(18);
    push_body_facts(&mut a, &o.facts);
    push_body_extras(&mut a, o, requested_stream);
    if let Some(source) = spend.source {
        a.push(KeyValue::new(LLM_GATEWAY_USAGE_SOURCE, source));
    }
    if let Some(cost) = spend.cost_usd() {
        a.push(KeyValue::new(LLM_GATEWAY_USAGE_COST_USD, cost));
    }
    if let Some(error_type) = error_type {
        a.push(KeyValue::new(ERROR_TYPE, error_type.clone()));
        let description = o.error_message.as_deref().unwrap_or(error_type.as_ref());
        call.fail(bounded(description));
    }
    call.set_all(a);
}

/// The GenAI attributes of what the body said: served model, ids, usage, finish reasons.
fn push_body_facts(a: &mut Vec<KeyValue>, f: &BodyFacts) {
    if let Some(model) = f.served_model() {
        a.push(KeyValue::new(GEN_AI_RESPONSE_MODEL, model.to_owned()));
    }
    // `gen_ai.response.id` is the completion's own `id` when the body has one (a provider's
    // `chatcmpl-…`), else the gateway's `request_id`, its only id: one string, shared.
    let request_id = f
        .request_id
        .as_deref()
        .map(|id| StringValue::from(std::sync::Arc::<str>::from(id)));
    if let Some(id) = &request_id {
        a.push(KeyValue::new(LLM_GATEWAY_REQUEST_ID, id.clone()));
    }
    match (&f.id, request_id) {
        (Some(id), _) => a.push(KeyValue::new(GEN_AI_RESPONSE_ID, id.clone())),
        (None, Some(id)) => a.push(KeyValue::new(GEN_AI_RESPONSE_ID, id)),
        (None, None) => {}
    }
    let u = &f.usage;
    for (key, count) in [
        (GEN_AI_USAGE_INPUT_TOKENS, u.input_tokens),
        (GEN_AI_USAGE_OUTPUT_TOKENS, u.output_tokens),
        (
            GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            u.cache_read_input_tokens,
        ),
        (
            GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            u.cache_creation_input_tokens,
        ),
    ] {
        if let Some(v) = count {
            a.push(KeyValue::new(key, saturating_i64(v)));
        }
    }
    if !f.finish_reasons.is_empty() {
        let reasons: Vec<StringValue> = f.finish_reasons.iter().map(|r| r.clone().into()).collect();
        a.push(KeyValue::new(
            GEN_AI_RESPONSE_FINISH_REASONS,
            Value::Array(Array::String(reasons)),
        ));
    }
    if let Some(v) = f.llm_status_code {
        a.push(KeyValue::new(LLM_GATEWAY_LLM_STATUS_CODE, v));
    }
    if let Some(code) = &f.error.code {
        a.push(KeyValue::new(LLM_GATEWAY_ERROR_CODE, code.clone()));
    }
}

/// Our own attributes of the body: how it came (stream, first chunk, size), how it ended, the
/// error body and message. Written when they say something: every attribute costs its share
/// of the export on every call (see BENCHMARKS.md), and a default value says nothing.
fn push_body_extras(a: &mut Vec<KeyValue>, o: &ResponseOutcome, requested_stream: bool) {
    // `streamed` shows when a stream came back or one was asked for (`stream: true`
    // answered with JSON is `false`).
    if o.streamed || requested_stream {
        a.push(KeyValue::new(LLM_GATEWAY_RESPONSE_STREAMED, o.streamed));
    }
    if let Some(ttfc) = o.time_to_first_chunk {
        a.push(KeyValue::new(
            LLM_GATEWAY_TIME_TO_FIRST_CHUNK,
            ttfc.as_secs_f64(),
        ));
    }
    if let Some(stream) = &o.stream {
        a.push(KeyValue::new(
            LLM_GATEWAY_STREAM_EVENTS,
            saturating_i64(stream.events),
        ));
        a.push(KeyValue::new(LLM_GATEWAY_STREAM_DONE, stream.done));
    }
    if let Some(json) = o.json.filter(|j| *j != JsonStatus::Complete) {
        a.push(KeyValue::new(
            LLM_GATEWAY_RESPONSE_JSON,
            json_status_name(json),
        ));
    }
    a.push(KeyValue::new(
        LLM_GATEWAY_RESPONSE_BODY_SIZE,
        saturating_i64(o.body_bytes),
    ));
    if !o.read_to_end() {
        a.push(KeyValue::new(LLM_GATEWAY_RESPONSE_READ_TO_END, false));
        a.push(KeyValue::new(LLM_GATEWAY_CANCELLED, true));
    }
    if let Some(body) = &o.error_body {
        a.push(KeyValue::new(LLM_GATEWAY_ERROR_BODY, body.clone()));
    }
    if let Some(message) = &o.error_message {
        a.push(KeyValue::new(LLM_GATEWAY_ERROR_MESSAGE, message.clone()));
    }
}

/// Records captured content on the call's span: the request's messages and system
/// instructions when the call starts, the answer's messages when it ends.
pub(crate) fn record_content(
    call: &SpanHandle,
    request: Option<&RequestContent>,
    output: Option<&str>,
) {
    if !call.is_recording() {
        return;
    }
    let mut a = Vec::with_capacity(3);
    if let Some(r) = request {
        if let Some(input) = &r.input {
            a.push(KeyValue::new(GEN_AI_INPUT_MESSAGES, input.clone()));
        }
        if let Some(system) = &r.system {
            a.push(KeyValue::new(GEN_AI_SYSTEM_INSTRUCTIONS, system.clone()));
        }
    }
    if let Some(output) = output {
        a.push(KeyValue::new(GEN_AI_OUTPUT_MESSAGES, output.to_owned()));
    }
    call.set_all(a);
}

/// Records what the diagnosis said: a failure's cause, fix and detail as attributes, a notice
/// (the call worked, not as asked) as a `llm_gateway.notice` event.
pub(crate) fn record_diagnosis(call: &SpanHandle, diagnosis: Option<&Diagnosis>) {
    let Some(d) = diagnosis else { return };
    if !call.is_recording() {
        return;
    }
    match d.level {
        Level::Error => {
            let mut attributes = vec![
                KeyValue::new(LLM_GATEWAY_ERROR_CAUSE, d.cause.as_str()),
                KeyValue::new(LLM_GATEWAY_ERROR_FIX, d.fix),
            ];
            if let Some(detail) = &d.detail {
                attributes.push(KeyValue::new(
                    LLM_GATEWAY_ERROR_DETAIL,
                    bounded_detail(detail),
                ));
            }
            call.set_all(attributes);
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
            call.event(LLM_GATEWAY_NOTICE_EVENT, attrs);
        }
    }
}

/// Records each pre-flight finding as a `llm_gateway.preflight` event on the call's span.
pub(crate) fn record_preflight(call: &SpanHandle, findings: &[Finding]) {
    if !call.is_recording() {
        return;
    }
    for f in findings {
        call.event(
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
pub(crate) fn record_preflight_rejection(call: &SpanHandle, diagnosis: &Diagnosis, message: &str) {
    call.set(KeyValue::new(ERROR_TYPE, ERROR_TYPE_PREFLIGHT));
    call.fail(bounded(message));
    record_diagnosis(call, Some(diagnosis));
    call.end();
}

/// Longest detail recorded (it may echo an error message).
const MAX_DETAIL: usize = 1024;

fn bounded_detail(text: &str) -> String {
    crate::text::truncate_utf8(text, MAX_DETAIL).to_owned()
}

fn json_status_name(s: crate::outcome::JsonStatus) -> &'static str {
    use crate::outcome::JsonStatus::*;
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
    crate::text::truncate_utf8(text, MAX_STATUS_DESCRIPTION).to_owned()
}
