//! Where spans are recorded, and the handle a span is recorded through: the tracer source
//! (a given provider, the global one once set, or the subscriber's tracing-opentelemetry
//! layer) and [`SpanHandle`].

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};

use crate::names::TRACING_TARGET;

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
    pub(super) fn start_call(
        &self,
        name: Cow<'static, str>,
        attributes: Vec<KeyValue>,
    ) -> SpanHandle {
        let parent = Context::current();
        if let Some(tracer) = self.0.get() {
            return SpanHandle::start(tracer, &parent, name, attributes, None);
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

    /// Starts an attempt's span, a child of `call`, with the source the call's span came from;
    /// at `start` when given (an attempt recorded after it was made: the tracing-only set-up
    /// cannot backdate a span, so it is never asked to).
    pub(super) fn start_attempt(
        &self,
        call: &SpanHandle,
        name: Cow<'static, str>,
        attributes: Vec<KeyValue>,
        start: Option<SystemTime>,
    ) -> SpanHandle {
        if let Some(parent) = &call.tracing {
            return SpanHandle::start_in_tracing(Some(parent), name, attributes)
                .unwrap_or_else(|| SpanHandle::none(call.cx.clone()));
        }
        match self.0.get() {
            Some(tracer) if call.owned => {
                SpanHandle::start(tracer, &call.cx, name, attributes, start)
            }
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
const NO_TRACER_WARNING: &str = "llm-gateway-otel: gateway calls are not traced. \
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
    /// A span of `tracer`, a child of `parent`, starting now or at `start`.
    fn start(
        tracer: &BoxedTracer,
        parent: &Context,
        name: Cow<'static, str>,
        attributes: Vec<KeyValue>,
        start: Option<SystemTime>,
    ) -> SpanHandle {
        let mut builder = span_builder(name, attributes);
        builder.start_time = start;
        let span = tracer.build_with_context(builder, parent);
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

    /// The context with this span active.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
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

    pub(super) fn set_all(&self, attributes: Vec<KeyValue>) {
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
    pub(super) fn fail(&self, description: String) {
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

    /// Ends the span at `time` (an attempt recorded after it was made).
    pub(crate) fn end_at(&self, time: SystemTime) {
        if self.owned {
            self.cx.span().end_with_timestamp(time);
        }
    }

    /// Whether the span was started as a `tracing` span (the tracing-only set-up).
    pub(crate) fn is_tracing(&self) -> bool {
        self.tracing.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RequestFacts;
    use crate::telemetry::metrics::MetricAttributes;
    use crate::telemetry::{attempt_span, call_span};
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
        let call = call_span(
            &source,
            &facts,
            &MetricAttributes::of(&facts, &crate::telemetry::metrics::ModelLabels::new(100)),
        );
        assert!(call.is_recording());
        attempt_span(&source, &call, &request, 0, None).end();
        call.end();
        let spans = exporter.get_finished_spans().unwrap();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["POST", "chat gpt-4o"]);
        assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
    }
}
