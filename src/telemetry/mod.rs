//! Recording: the logical `chat` span and the per-attempt `POST` span, and every attribute
//! written on them. Nothing here parses bytes or decides what an outcome was; it writes down
//! what `observe` saw and `classify` decided.

pub mod metrics;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};

use crate::diagnose::{Diagnosis, Finding, Level};
use crate::names::*;
use crate::outcome::ResponseOutcome;
use crate::outcome::{BodyFacts, JsonStatus};
use crate::ratelimit::RateLimit;
use crate::request::RequestFacts;
use metrics::{AttemptSummary, CallSummary, MetricAttributes, Metrics};

/// Longest status description put on a span.
const MAX_STATUS_DESCRIPTION: usize = 256;

/// The telemetry part of the middleware: where spans are recorded and the metric
/// instruments. Built once with the middleware; each call records through it.
pub(crate) struct Telemetry {
    pub(crate) tracer: TracerSource,
    pub(crate) metrics: Metrics,
}

/// Where the spans' tracer comes from, decided at each call until one is found:
/// 1. a provider given to the builder;
/// 2. the global provider, once the application has set one (looked up at the call, so a
///    middleware built before [`crate::init`] still records; kept once found);
/// 3. the `tracing-opentelemetry` layer of the current `tracing` subscriber, for applications
///    that set up only that layer and no global provider: the spans are started as `tracing`
///    spans, and the layer's tracer builds them;
/// 4. nothing: calls work, no span is recorded, and one warning per process names the fix.
#[derive(Clone, Default)]
pub(crate) struct TracerSource(Arc<OnceLock<BoxedTracer>>);

impl TracerSource {
    pub(crate) fn from_provider<P>(provider: &P) -> TracerSource
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        let tracer = BoxedTracer::new(Box::new(provider.tracer(TRACING_TARGET)));
        TracerSource(Arc::new(OnceLock::from(tracer)))
    }

    /// Starts a call's span, a child of the current context, with the first source that
    /// records (see the type's documentation).
    fn start_call(&self, name: Cow<'static, str>, attributes: Vec<KeyValue>) -> SpanHandle {
        let parent = Context::current();
        if let Some(tracer) = self.0.get() {
            return SpanHandle::start(tracer, &parent, name, attributes);
        }
        let global = opentelemetry::global::tracer(TRACING_TARGET);
        let builder = span_builder(name.clone(), attributes.clone());
        let span = global.build_with_context(builder, &parent);
        if is_from_a_real_provider(&span, &parent) {
            let handle = SpanHandle::from_span(&parent, span);
            let _ = self.0.set(global);
            return handle;
        }
        drop(span);
        SpanHandle::start_in_tracing(None, name, attributes).unwrap_or_else(|| {
            warn_no_tracer();
            SpanHandle::none(parent)
        })
    }

    /// Starts an attempt's span, a child of `call`, with the source the call's span came from.
    fn start_attempt(
        &self,
        call: &SpanHandle,
        name: Cow<'static, str>,
        attributes: Vec<KeyValue>,
    ) -> SpanHandle {
        if let Some(parent) = &call.tracing {
            return SpanHandle::start_in_tracing(Some(parent), name, attributes)
                .unwrap_or_else(|| SpanHandle::none(call.cx.clone()));
        }
        match self.0.get() {
            Some(tracer) if call.owned => SpanHandle::start(tracer, &call.cx, name, attributes),
            _ => SpanHandle::none(call.cx.clone()),
        }
    }
}

fn span_builder(name: Cow<'static, str>, attributes: Vec<KeyValue>) -> SpanBuilder {
    SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
}

/// A no-op tracer (the global provider nobody set, or one shut down) gives back its parent's
/// span context, or an invalid one; any real tracer starts a span of its own, with new ids
/// even when its sampler drops it.
fn is_from_a_real_provider(span: &impl opentelemetry::trace::Span, parent: &Context) -> bool {
    let own = span.span_context();
    own.is_valid() && own.span_id() != parent.span().span_context().span_id()
}

/// What the one warning says when a call finds nowhere to record its span.
pub(crate) const NO_TRACER_WARNING: &str = "llm-gateway-otel: gateway calls are not traced. \
    No OpenTelemetry tracer provider was given, the global one is a no-op, and the current \
    `tracing` subscriber has no tracing-opentelemetry layer taking INFO spans of target \
    `llm_gateway_otel`. Fix: call llm_gateway_otel::init(), or \
    opentelemetry::global::set_tracer_provider(provider), or \
    GatewayMiddleware::builder().tracer_provider(&provider); with a tracing-opentelemetry \
    layer, let `llm_gateway_otel=info` through the subscriber's filter. Calls are sent as \
    usual.";

/// Once per process, when a call finds nowhere to record its span: on the `tracing`
/// subscriber if there is one, else on stderr.
fn warn_no_tracer() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let no_subscriber =
        tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>());
    if no_subscriber {
        eprintln!("{NO_TRACER_WARNING}");
    } else {
        tracing::warn!(target: TRACING_TARGET, "{NO_TRACER_WARNING}");
    }
}

/// One span this crate records (a call's or an attempt's), held in an OpenTelemetry
/// [`Context`]: clones are handles to the same span, and the context is the parent of what
/// runs under it. Spans are recorded through the OpenTelemetry API directly, not through
/// `tracing` spans, which cost several times more per attribute; the parent is the current
/// OpenTelemetry context, which `tracing-opentelemetry` keeps in step with the entered
/// `tracing` span. When the only tracer is a `tracing-opentelemetry` layer's, the span is
/// started as a `tracing` span (kept alive here) and written through the OpenTelemetry span
/// the layer built for it.
#[derive(Clone)]
pub(crate) struct SpanHandle {
    cx: Context,
    recording: bool,
    /// False when no span was started: `cx` is then the parent's context, whose span is not
    /// ours to end.
    owned: bool,
    tracing: Option<tracing::Span>,
}

impl SpanHandle {
    fn start(
        tracer: &BoxedTracer,
        parent: &Context,
        name: Cow<'static, str>,
        attributes: Vec<KeyValue>,
    ) -> SpanHandle {
        let span = tracer.build_with_context(span_builder(name, attributes), parent);
        SpanHandle::from_span(parent, span)
    }

    fn from_span(parent: &Context, span: opentelemetry::global::BoxedSpan) -> SpanHandle {
        let recording = span.is_recording();
        SpanHandle {
            cx: parent.with_span(span),
            recording,
            owned: true,
            tracing: None,
        }
    }

    /// A span started as a `tracing` span (a child of `parent`, or of the current `tracing`
    /// span) and built by the subscriber's `tracing-opentelemetry` layer; `None` when there is
    /// no such layer, or the subscriber's filter leaves the span out.
    fn start_in_tracing(
        parent: Option<&tracing::Span>,
        name: Cow<'static, str>,
        attributes: Vec<KeyValue>,
    ) -> Option<SpanHandle> {
        let name: &str = &name;
        let span = match parent {
            None => tracing::info_span!(
                target: TRACING_TARGET,
                "chat",
                otel.name = name,
                otel.kind = "client"
            ),
            Some(parent) => tracing::info_span!(
                target: TRACING_TARGET,
                parent: parent,
                "attempt",
                otel.name = name,
                otel.kind = "client"
            ),
        };
        let id = span.id()?;
        let cx =
            tracing::dispatcher::get_default(|d| tracing_opentelemetry::get_otel_context(&id, d))?;
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let recording = cx.span().is_recording();
        if recording {
            cx.span().set_attributes(attributes);
        }
        Some(SpanHandle {
            cx,
            recording,
            owned: true,
            tracing: Some(span),
        })
    }

    /// No span: what runs under it keeps the parent's context.
    fn none(parent: Context) -> SpanHandle {
        SpanHandle {
            cx: parent,
            recording: false,
            owned: false,
            tracing: None,
        }
    }

    /// Whether anything set on the span is kept (false with a no-op or sampled-out tracer).
    pub(crate) fn is_recording(&self) -> bool {
        self.recording
    }

    /// `future` with this span as the current OpenTelemetry context (and, when the span was
    /// started as a `tracing` span, as the current `tracing` span too), so that what runs
    /// under it, a propagation middleware after ours, say, sees it as the parent.
    pub(crate) fn run_under<F: std::future::Future>(
        &self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        use opentelemetry::trace::FutureExt as _;
        use tracing::Instrument as _;
        let tracing = self.tracing.clone().unwrap_or_else(tracing::Span::none);
        future.with_context(self.cx.clone()).instrument(tracing)
    }

    pub(crate) fn set(&self, attribute: KeyValue) {
        if self.recording {
            self.cx.span().set_attribute(attribute);
        }
    }

    fn set_all(&self, attributes: Vec<KeyValue>) {
        if self.recording && !attributes.is_empty() {
            self.cx.span().set_attributes(attributes);
        }
    }

    pub(crate) fn event(&self, name: &'static str, attributes: Vec<KeyValue>) {
        if self.recording {
            self.cx.span().add_event(name, attributes);
        }
    }

    /// Status Error with `description`.
    fn fail(&self, description: String) {
        if self.recording {
            self.cx.span().set_status(Status::error(description));
        }
    }

    /// Ends the span now (later calls do nothing).
    pub(crate) fn end(&self) {
        if self.owned {
            self.cx.span().end();
        }
    }
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

/// Starts the span of one HTTP attempt, a child of the call's span.
pub(crate) fn attempt_span(
    tracer: &TracerSource,
    call: &SpanHandle,
    request: &reqwest::Request,
    resend_count: i64,
) -> SpanHandle {
    let url = request.url();
    // The span is named for the method; POST, the one the gateway serves, is not copied.
    let (name, method): (Cow<'static, str>, StringValue) =
        if request.method() == reqwest::Method::POST {
            (Cow::Borrowed("POST"), "POST".into())
        } else {
            let m = request.method().as_str().to_owned();
            (Cow::Owned(m.clone()), m.into())
        };
    let mut attributes = Vec::with_capacity(8);
    attributes.extend([
        KeyValue::new(HTTP_REQUEST_METHOD, method),
        KeyValue::new(URL_FULL, crate::redact::redact_url(url)),
        KeyValue::new(HTTP_REQUEST_RESEND_COUNT, resend_count),
    ]);
    if let Some(host) = url.host_str() {
        attributes.push(KeyValue::new(SERVER_ADDRESS, host.to_owned()));
    }
    if let Some(port) = url.port_or_known_default() {
        attributes.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    tracer.start_attempt(call, name, attributes)
}

/// Records on an attempt span (and the attempt metrics) what came back: a status, or a
/// transport failure; and ends the span.
pub(crate) fn end_attempt(
    attempt: &SpanHandle,
    result: &reqwest_middleware::Result<reqwest::Response>,
    attributes: &MetricAttributes,
    duration: std::time::Duration,
    metrics: &Metrics,
) {
    let status = result.as_ref().ok().map(|r| r.status().as_u16());
    let error_type = crate::classify::classify_attempt(result);
    let error_type = error_type.as_deref();
    if attempt.is_recording() {
        let mut attributes = Vec::with_capacity(2);
        if let Some(status) = status {
            attributes.push(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
        }
        if let Some(error_type) = error_type {
            attributes.push(KeyValue::new(ERROR_TYPE, error_type.to_owned()));
            attempt.fail(String::new());
        }
        attempt.set_all(attributes);
    }
    attempt.end();
    metrics.record_attempt(&AttemptSummary {
        attributes,
        status,
        error_type,
        duration,
    });
}

/// Records a call that got no response at all (connect error, timeout before headers).
pub(crate) fn record_transport_failure(
    call: &SpanHandle,
    err: &reqwest_middleware::Error,
    request: &RequestFacts,
    attributes: &MetricAttributes,
    duration: std::time::Duration,
    metrics: &Metrics,
) {
    let error_type = crate::classify::classify_transport(err);
    call.set(KeyValue::new(ERROR_TYPE, error_type));
    // reqwest's message names the URL, which may carry a key in its query.
    let message = crate::redact::redact(&err.to_string(), &request.secrets).into_owned();
    call.fail(bounded(&message));
    metrics.record_call(&CallSummary {
        attributes,
        outcome: None,
        status: None,
        error_type: Some(error_type),
        duration,
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
) {
    if !call.is_recording() {
        return;
    }
    let mut a = Vec::with_capacity(16);
    push_body_facts(&mut a, &o.facts);
    push_body_extras(&mut a, o, requested_stream);
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
    if let Some(id) = &f.request_id {
        a.push(KeyValue::new(LLM_GATEWAY_REQUEST_ID, id.clone()));
        a.push(KeyValue::new(GEN_AI_RESPONSE_ID, id.clone()));
    } else if let Some(id) = &f.id {
        a.push(KeyValue::new(GEN_AI_RESPONSE_ID, id.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    /// A middleware built before the application sets its global tracer provider (say,
    /// `GatewayMiddleware::default()` in a `static`) still records with that provider.
    #[test]
    fn the_global_provider_is_looked_up_at_the_first_call_not_when_built() {
        let source = TracerSource::default();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());

        let request = reqwest::Client::new()
            .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
            .body(r#"{"model":"gpt-4o","messages":[]}"#)
            .build()
            .unwrap();
        let facts = RequestFacts::read(&request, &Default::default());
        let call = call_span(&source, &facts, &MetricAttributes::of(&facts));
        assert!(call.is_recording());
        attempt_span(&source, &call, &request, 0).end();
        call.end();
        let spans = exporter.get_finished_spans().unwrap();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["POST", "chat gpt-4o"]);
        assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
    }
}
