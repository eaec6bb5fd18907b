//! The OpenTelemetry setups a service may already have, each over real HTTP against the
//! simulator, looking at what reached the exporter:
//! (a) `llm_gateway_otel::init()`; (b) a global tracer provider the application installed;
//! (c) `.tracer_provider(&p)`; (d) only a `tracing-opentelemetry` layer with a tracer, and no
//! global provider; (e) nothing at all; (f) a global meter provider set after the middleware
//! was built.
//!
//! A global provider and a global subscriber are per process, so (a), (b), (d), (e) and (f) run in
//! a child process: the test re-runs this test binary on one `child_*` test, which does
//! nothing unless `LLM_GATEWAY_SETUP_CHILD` names it.

use futures_util::StreamExt;
use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::{Fault, Simulator};
use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use reqwest_middleware::ClientWithMiddleware;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::*;

/// A simulator, and a 503 for the first call to `gpt-4o` (the default retries clear it).
async fn simulator_with_one_503() -> Simulator {
    let sim = Simulator::start().await.expect("simulator");
    sim.inject_for_model("gpt-4o", Fault::Status(503));
    sim
}

/// The calls every setup makes inside the application's `handle_request` span: a JSON call
/// that a retry clears, and a stream. Both must succeed.
async fn calls_in_app_span(client: &ClientWithMiddleware, sim: &Simulator) {
    let url = sim.chat_url();
    async {
        let response = client.post(&url).json(&chat("gpt-4o")).send().await;
        let response = response.expect("the call works");
        assert_eq!(response.status(), 200, "the default retry cleared the 503");
        response.bytes().await.expect("body");
        let mut streamed = chat("gpt-4o-mini");
        streamed["stream"] = serde_json::json!(true);
        let response = client
            .post(&url)
            .json(&streamed)
            .send()
            .await
            .expect("stream");
        assert_eq!(response.status(), 200);
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            chunk.expect("chunk");
        }
    }
    .instrument(tracing::info_span!("handle_request"))
    .await;
}

fn middleware(sim: &Simulator) -> GatewayMiddleware {
    GatewayMiddleware::builder()
        .gateway_host(sim.addr().to_string(), Region::US)
        .build()
        .expect("config")
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// What every setup that records must show: the application's span; under it one call span
/// per call with the gateway's attributes; under the first, two `POST` attempts (503, 200);
/// under the stream's (one attempt), none, or one in the tracing-only set-up, which records
/// every attempt.
fn assert_recorded(spans: &[SpanData], every_attempt: bool) {
    let app = named(spans, "handle_request");
    assert_eq!(app.len(), 1, "the application's span: {spans:#?}");
    let app_id = app[0].span_context.span_id();
    let json = named(spans, "chat gpt-4o");
    let stream = named(spans, "chat gpt-4o-mini");
    assert_eq!(
        (json.len(), stream.len()),
        (1, 1),
        "one span per call: {spans:#?}"
    );
    for call in [json[0], stream[0]] {
        assert_eq!(
            call.parent_span_id, app_id,
            "{} under the app's span",
            call.name
        );
        assert_eq!(call.span_context.trace_id(), app[0].span_context.trace_id());
        assert_client_kind(call);
        assert_eq!(
            attr_str(call, "gen_ai.provider.name").as_deref(),
            Some("assemblyai.llm_gateway")
        );
        assert_eq!(attr_i64(call, "http.response.status_code"), Some(200));
        assert!(
            attr_str(call, "llm_gateway.request_id").is_some(),
            "{call:#?}"
        );
        assert!(attr_i64(call, "gen_ai.usage.output_tokens").is_some_and(|t| t > 0));
    }
    assert_eq!(attr_i64(json[0], "http.request.resend_count"), Some(1));
    let attempts = |call: &SpanData| -> Vec<Option<i64>> {
        let mut a: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.name == "POST" && s.parent_span_id == call.span_context.span_id())
            .collect();
        a.sort_by_key(|s| s.start_time);
        a.iter()
            .map(|s| attr_i64(s, "http.response.status_code"))
            .collect()
    };
    assert_eq!(attempts(json[0]), [Some(503), Some(200)]);
    let single: &[Option<i64>] = if every_attempt { &[Some(200)] } else { &[] };
    assert_eq!(attempts(stream[0]), single);
    assert!(attr_bool(stream[0], "llm_gateway.response.streamed").unwrap_or(false));
}

fn in_memory() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

// ---- (a) init() -------------------------------------------------------------------------

#[test]
fn a_init_exports_the_spans_under_the_app_span() {
    let output = run_child("setups", "init");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The console exporter's header line: span "NAME" [status] at … span=ID parent=ID (the
    // test harness's own "test … ... " may precede the first one on its line).
    let header = |name: &str| -> Vec<(String, Option<String>)> {
        let start = format!("span {name:?} ");
        stdout
            .lines()
            .filter_map(|l| l.find(&start).map(|i| &l[i..]))
            .map(|l| {
                let field = |key: &str| {
                    l.split(' ')
                        .find_map(|w| w.strip_prefix(key))
                        .map(str::to_owned)
                };
                (field("span=").expect("span id"), field("parent="))
            })
            .collect()
    };
    let app = header("handle_request");
    let calls = header("chat gpt-4o");
    assert_eq!(app.len(), 1, "{stdout}");
    assert_eq!(calls.len(), 1, "{stdout}");
    assert_eq!(
        calls[0].1.as_ref(),
        Some(&app[0].0),
        "under the app span:\n{stdout}"
    );
    let attempts: Vec<_> = header("POST")
        .into_iter()
        .filter(|(_, parent)| parent.as_ref() == Some(&calls[0].0))
        .collect();
    assert_eq!(attempts.len(), 2, "503 then 200:\n{stdout}");
    assert!(stdout.contains("llm_gateway.request_id = "), "{stdout}");
    // One log line per call on stdout, naming the call's span.
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" llm gateway call "))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("span_id={}", calls[0].0))),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn child_init() {
    if !is_child("init") {
        return;
    }
    std::env::set_var("OTEL_TRACES_EXPORTER", "console");
    std::env::set_var("OTEL_METRICS_EXPORTER", "none");
    std::env::set_var("OTEL_LOGS_EXPORTER", "console");
    let guard = llm_gateway_otel::init().expect("init");
    let sim = simulator_with_one_503().await;
    let client = client(middleware(&sim));
    calls_in_app_span(&client, &sim).await;
    guard
        .shutdown(std::time::Duration::from_secs(5))
        .expect("shutdown");
}

// ---- (b) a global tracer provider ---------------------------------------------------------

#[test]
fn b_a_global_provider_records_the_spans_under_the_app_span() {
    run_child("setups", "global");
}

#[tokio::test]
async fn child_global() {
    if !is_child("global") {
        return;
    }
    let (provider, exporter) = in_memory();
    opentelemetry::global::set_tracer_provider(provider.clone());
    // The usual companion: a tracing-opentelemetry layer on the same provider.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");
    let sim = simulator_with_one_503().await;
    // Built before anything else, as a service builds its clients at start-up.
    let client = client(middleware(&sim));
    calls_in_app_span(&client, &sim).await;
    provider.force_flush().expect("flush");
    assert_recorded(&exporter.get_finished_spans().expect("spans"), false);
}

// ---- (c) a provider given to the builder ----------------------------------------------------

#[tokio::test]
async fn c_a_given_provider_records_the_spans_under_the_app_span() {
    let (provider, exporter) = in_memory();
    // The application's span comes from its own tracing layer on the same provider.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    let _default = tracing::subscriber::set_default(subscriber);
    let sim = simulator_with_one_503().await;
    let client = client(
        GatewayMiddleware::builder()
            .tracer_provider(&provider)
            .gateway_host(sim.addr().to_string(), Region::US)
            .build()
            .unwrap(),
    );
    calls_in_app_span(&client, &sim).await;
    provider.force_flush().expect("flush");
    assert_recorded(&exporter.get_finished_spans().expect("spans"), false);
}

// ---- (d) only a tracing-opentelemetry layer ---------------------------------------------------

#[test]
fn d_only_a_tracing_opentelemetry_layer_gets_the_spans_under_the_app_span() {
    run_child("setups", "tracing_only");
}

#[tokio::test]
async fn child_tracing_only() {
    if !is_child("tracing_only") {
        return;
    }
    // As tracing-opentelemetry's README sets it up: a layer with a tracer, no global provider.
    let (provider, exporter) = in_memory();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");
    let sim = simulator_with_one_503().await;
    let seen = SeenBelow::default();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware(&sim))
        .with(seen.clone())
        .build();
    calls_in_app_span(&client, &sim).await;
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    assert_recorded(&spans, true);
    // Nothing from the noop global provider, nothing twice.
    assert_eq!(spans.len(), 1 + 2 + 3, "{spans:#?}");
    // A middleware after ours (a propagator, say) runs under the attempt's span, in the
    // OpenTelemetry context and as the current `tracing` span.
    let mut attempts: Vec<SpanId> = named(&spans, "POST")
        .iter()
        .map(|s| s.span_context.span_id())
        .collect();
    let mut below = seen.0.lock().unwrap().clone();
    attempts.sort_by_key(|id| id.to_bytes());
    below.sort_by_key(|id| id.to_bytes());
    assert_eq!(below, attempts);
}

/// A middleware that notes the span id of the current OpenTelemetry context, and checks that
/// the current `tracing` span has the same one.
#[derive(Clone, Default)]
struct SeenBelow(std::sync::Arc<std::sync::Mutex<Vec<SpanId>>>);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for SeenBelow {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let otel = opentelemetry::Context::current()
            .span()
            .span_context()
            .span_id();
        let traced = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .span_id();
        assert_eq!(
            otel, traced,
            "the tracing span and the OpenTelemetry context agree"
        );
        self.0.lock().unwrap().push(otel);
        next.run(req, extensions).await
    }
}

// ---- (e) nothing configured -----------------------------------------------------------------

#[test]
fn e_nothing_configured_warns_once_and_calls_still_work() {
    let output = run_child("setups", "nothing");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings = stderr.matches("gateway calls are not traced").count();
    assert_eq!(warnings, 1, "one warning for three calls:\n{stderr}");
    for fix in [
        "llm_gateway_otel::init()",
        "set_tracer_provider",
        ".tracer_provider(&provider)",
    ] {
        assert!(
            stderr.contains(fix),
            "the warning names the fix {fix}:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn child_nothing() {
    if !is_child("nothing") {
        return;
    }
    let sim = simulator_with_one_503().await;
    let client = client(middleware(&sim));
    calls_in_app_span(&client, &sim).await;
    let response = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await;
    assert_eq!(response.expect("a third call").status(), 200);
}

// ---- (f) a global meter provider set after the middleware was built ---------------------------

#[test]
fn f_a_global_meter_provider_set_after_build_is_followed() {
    run_child("setups", "late_meter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_late_meter() {
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
    if !is_child("late_meter") {
        return;
    }
    let sim = Simulator::start().await.expect("simulator");
    // A client made at start-up, before the application set up its telemetry.
    let client = client(middleware(&sim));
    let url = sim.chat_url();
    assert_eq!(send_read(&client, &url, &chat("gpt-4o")).await, 200);
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());
    // Looked for at most once a second: the calls after that are measured.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..3 {
        assert_eq!(send_read(&client, &url, &chat("gpt-4o")).await, 200);
    }
    provider.force_flush().expect("flush");
    let exported = exporter.get_finished_metrics().expect("metrics");
    let counted: f64 = crate::metrics::points(
        &exported,
        llm_gateway_otel::names::METRIC_OPERATION_DURATION,
    )
    .iter()
    .map(|p| p.count)
    .sum();
    assert_eq!(counted, 3.0, "the calls made once the provider was set");
}
