//! One log line per finished call: a `tracing` event of target `llm_gateway_otel::call`, with
//! the troubleshooting page's fields (`timestamp`, `region`, `model`, `status_code`,
//! `request_id`, `error`) and ours, captured over real HTTP by a test subscriber and checked
//! against the span of the same call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use llm_gateway_otel::names::*;
use llm_gateway_otel::retry::Retry;
use llm_gateway_otel::{CallLog, GatewayMiddleware, GatewayMiddlewareBuilder, Region};
use llm_gateway_simulator::{Fault, Simulator};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use reqwest_middleware::ClientWithMiddleware;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::support::*;

/// A key the simulator accepts; it must appear in no log field.
const KEY: &str = "logsKEY0123456789abcdef0123456789";

/// One captured event: its level and fields as text.
#[derive(Debug, Clone)]
struct Line {
    level: tracing::Level,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Line {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// Every event of the current thread's subscriber.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<Line>>>);

impl Lines {
    /// The call lines (target `llm_gateway_otel::call`).
    fn calls(&self) -> Vec<Line> {
        let lines = self.0.lock().unwrap().clone();
        lines
            .into_iter()
            .filter(|l| l.target == CALL_LOG_TARGET)
            .collect()
    }

    fn one(&self) -> Line {
        let calls = self.calls();
        assert_eq!(calls.len(), 1, "one line per call: {calls:#?}");
        calls.into_iter().next().unwrap()
    }
}

struct FieldText<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldText<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldText(&mut fields));
        self.0.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
}

/// A test's capture: the lines, and the spans of the same calls.
struct Setup {
    lines: Lines,
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Setup {
    fn start() -> Setup {
        let lines = Lines::default();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(lines.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        Setup {
            lines,
            exporter,
            provider,
            _guard: guard,
        }
    }

    fn client(&self, sim: &Simulator, b: GatewayMiddlewareBuilder) -> ClientWithMiddleware {
        client(
            b.tracer_provider(&self.provider)
                .gateway_host(sim.addr().to_string(), Region::US)
                .build()
                .unwrap(),
        )
    }

    /// The one call span.
    fn call(&self) -> SpanData {
        let spans = self.exporter.get_finished_spans().unwrap();
        let calls: Vec<SpanData> = spans
            .into_iter()
            .filter(|s| attr(s, GEN_AI_OPERATION_NAME).is_some())
            .collect();
        assert_eq!(calls.len(), 1, "{calls:#?}");
        calls.into_iter().next().unwrap()
    }
}

/// Sends `model` a chat with the key and returns the response, unread.
async fn keyed_call(
    client: &ClientWithMiddleware,
    sim: &Simulator,
    model: &str,
) -> reqwest::Response {
    client
        .post(sim.chat_url())
        .header("authorization", KEY)
        .json(&chat(model))
        .send()
        .await
        .unwrap()
}

/// [`keyed_call`] with the body read to its end.
async fn keyed_call_read(client: &ClientWithMiddleware, sim: &Simulator, model: &str) {
    keyed_call(client, sim, model).await.bytes().await.unwrap();
}

async fn keyed_simulator() -> Simulator {
    Simulator::builder().api_key(KEY).start().await.unwrap()
}

/// The line holds what the span holds, the ids of that span, and never the key.
fn assert_matches_span(line: &Line, span: &SpanData) {
    assert_eq!(
        line.get("trace_id"),
        Some(span.span_context.trace_id().to_string().as_str())
    );
    assert_eq!(
        line.get("span_id"),
        Some(span.span_context.span_id().to_string().as_str())
    );
    assert_eq!(
        line.get("model").map(str::to_owned),
        attr_str(span, GEN_AI_REQUEST_MODEL)
    );
    assert_eq!(line.get("region"), Some("us"));
    assert_eq!(
        line.get("request_id").map(str::to_owned),
        attr_str(span, LLM_GATEWAY_REQUEST_ID)
    );
    assert_eq!(
        line.get("status_code").map(|s| s.parse::<i64>().unwrap()),
        attr_i64(span, HTTP_RESPONSE_STATUS_CODE)
    );
    let sent = line.get("timestamp").expect("timestamp");
    assert_eq!(
        sent,
        llm_gateway_otel::export::rfc3339_utc(span.start_time),
        "the time the request was sent, as the span starts"
    );
    let all = format!("{line:?}");
    assert!(!all.contains(KEY), "no key in the line: {all}");
}

#[tokio::test]
async fn a_success_is_one_info_line_with_the_page_fields() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let client = setup.client(&sim, GatewayMiddleware::builder());
    let response = keyed_call(&client, &sim, "claude-sonnet-4-6").await;
    let body: serde_json::Value = response.json().await.unwrap();
    let line = setup.lines.one();
    let span = setup.call();
    assert_eq!(line.level, tracing::Level::INFO);
    assert_eq!(line.get("message"), Some(CALL_LOG_MESSAGE));
    assert_matches_span(&line, &span);
    assert_eq!(line.get("request_id"), body["request_id"].as_str());
    assert_eq!(line.get("status_code"), Some("200"));
    assert_eq!(line.get("error"), None);
    assert_eq!(line.get("cause"), None);
    assert_eq!(line.get("attempts"), Some("1"));
    assert!(line.get("duration_ms").unwrap().parse::<f64>().unwrap() > 0.0);
    for (field, attribute) in [
        ("input_tokens", GEN_AI_USAGE_INPUT_TOKENS),
        ("output_tokens", GEN_AI_USAGE_OUTPUT_TOKENS),
    ] {
        assert_eq!(
            line.get(field).map(|v| v.parse::<i64>().unwrap()),
            attr_i64(&span, attribute),
            "{field}"
        );
    }
}

#[tokio::test]
async fn a_429_is_a_warn_line_with_the_error_and_the_cause() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let client = setup.client(&sim, GatewayMiddleware::builder().retry(Retry::disabled()));
    sim.inject(Fault::RateLimited { retry_after_s: 30 });
    let response = client
        .post(sim.chat_url())
        .header("authorization", KEY)
        .json(&chat("claude-haiku-4-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    response.bytes().await.unwrap();
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::WARN);
    assert_matches_span(&line, &setup.call());
    let error = line.get("error").unwrap();
    assert!(
        error.starts_with("429: ") && error.contains("Rate limit exceeded"),
        "{error}"
    );
    assert_eq!(line.get("cause"), Some("rate_limited"));
}

#[tokio::test]
async fn a_401_names_the_cause_and_never_the_key() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let client = setup.client(&sim, GatewayMiddleware::builder());
    // A wrong key that looks like a key, and the simulator echoing what it got.
    let wrong = "wrongKEY0123456789abcdef012345678";
    sim.inject(Fault::EchoKey(401));
    let response = client
        .post(sim.chat_url())
        .header("authorization", wrong)
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    response.bytes().await.unwrap();
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::WARN);
    assert!(line.get("error").unwrap().starts_with("401"), "{line:?}");
    assert!(line.get("cause").unwrap().starts_with("auth_"), "{line:?}");
    let all = format!("{line:?}");
    assert!(!all.contains(wrong), "the echoed key is redacted: {all}");
}

#[tokio::test]
async fn a_stream_has_its_request_id_and_tokens() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let client = setup.client(&sim, GatewayMiddleware::builder());
    let mut body = chat("gpt-4o-mini");
    body["stream"] = serde_json::json!(true);
    let mut stream = client
        .post(sim.chat_url())
        .header("authorization", KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .bytes_stream();
    assert!(
        setup.lines.calls().is_empty(),
        "no line before the stream ends"
    );
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::INFO);
    assert_matches_span(&line, &setup.call());
    assert!(line.get("request_id").is_some());
    assert!(line.get("output_tokens").is_some());
}

#[tokio::test]
async fn a_transport_failure_is_a_warn_line_without_a_status() {
    let setup = Setup::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .tracer_provider(&setup.provider)
            .gateway_host(port.to_string(), Region::US)
            .retry(Retry::default().backoff(Duration::from_millis(1), Duration::from_millis(2)))
            .build()
            .unwrap(),
    );
    let err = client
        .post(format!("http://{port}/v1/chat/completions?api_key={KEY}"))
        .json(&chat("gpt-4o"))
        .send()
        .await
        .expect_err("nothing listens");
    assert!(err.is_connect(), "{err}");
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::WARN);
    assert_eq!(line.get("status_code"), None);
    assert_eq!(line.get("request_id"), None);
    assert!(
        line.get("error").unwrap().starts_with("connect: "),
        "{line:?}"
    );
    assert_eq!(line.get("cause"), Some("connect"));
    assert_eq!(line.get("attempts"), Some("3"), "the default retries");
    let all = format!("{line:?}");
    assert!(!all.contains(KEY), "the key in the URL is redacted: {all}");
}

#[tokio::test]
async fn a_dropped_body_is_logged_as_cancelled() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let client = setup.client(&sim, GatewayMiddleware::builder());
    let response = keyed_call(&client, &sim, "claude-sonnet-4-6").await;
    assert!(setup.lines.calls().is_empty(), "the body is not read yet");
    drop(response);
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::INFO);
    assert_eq!(line.get("cancelled"), Some("true"));
    assert_eq!(line.get("status_code"), Some("200"));
    assert_eq!(line.get("error"), None);
}

#[tokio::test]
async fn a_retried_call_says_how_many_attempts_it_took() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let client = setup.client(
        &sim,
        GatewayMiddleware::builder()
            .retry(Retry::default().backoff(Duration::from_millis(1), Duration::from_millis(2))),
    );
    sim.inject(Fault::Status(503));
    keyed_call_read(&client, &sim, "claude-sonnet-4-6").await;
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::INFO);
    assert_eq!(line.get("attempts"), Some("2"));
    assert_eq!(line.get("status_code"), Some("200"));
}

#[tokio::test]
async fn levels_are_configurable_and_the_line_can_be_switched_off() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let off = setup.client(
        &sim,
        GatewayMiddleware::builder()
            .retry(Retry::disabled())
            .call_log(CallLog::off()),
    );
    keyed_call_read(&off, &sim, "claude-sonnet-4-6").await;
    sim.inject(Fault::Status(503));
    keyed_call_read(&off, &sim, "claude-sonnet-4-6").await;
    assert!(setup.lines.calls().is_empty(), "CallLog::off: no line");

    let failures_as_errors = setup.client(
        &sim,
        GatewayMiddleware::builder()
            .retry(Retry::disabled())
            .call_log(
                CallLog::default()
                    .success(None)
                    .failure(Some(tracing::Level::ERROR)),
            ),
    );
    keyed_call_read(&failures_as_errors, &sim, "claude-sonnet-4-6").await;
    assert!(setup.lines.calls().is_empty(), "successes are off");
    sim.inject(Fault::Status(503));
    keyed_call_read(&failures_as_errors, &sim, "claude-sonnet-4-6").await;
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::ERROR);
    assert_eq!(line.get("status_code"), Some("503"));
}

#[tokio::test]
async fn a_request_refused_before_sending_is_logged_too() {
    let setup = Setup::start();
    let sim = keyed_simulator().await;
    let client = setup.client(
        &sim,
        GatewayMiddleware::builder().preflight(llm_gateway_otel::PreflightMode::FailFast),
    );
    let err = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .expect_err("no key: not sent");
    assert!(err.to_string().contains("pre-flight"), "{err}");
    assert_eq!(sim.request_count(), 0);
    let line = setup.lines.one();
    assert_eq!(line.level, tracing::Level::WARN);
    assert_eq!(line.get("error"), Some(ERROR_TYPE_PREFLIGHT));
    assert_eq!(line.get("cause"), Some("auth_missing_key"));
    assert_eq!(line.get("attempts"), Some("0"));
    assert_eq!(line.get("status_code"), None);
}

/// `init()` with `OTEL_LOGS_EXPORTER=json`: one JSON object per call on stdout, the page's six
/// fields first (null when unknown), then the level; nothing else of ours on stdout.
#[test]
fn init_with_json_logs_prints_the_page_entry_per_call() {
    let output = run_child("logs", "json_lines");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    for line in &lines {
        for key in [
            "timestamp",
            "region",
            "model",
            "status_code",
            "request_id",
            "error",
            "level",
        ] {
            assert!(keys(line).contains(&key.to_owned()), "{key} in {line}");
        }
    }
    let (ok, limited) = (&lines[0], &lines[1]);
    assert_eq!(ok["status_code"], 200);
    assert_eq!(ok["error"], serde_json::Value::Null);
    assert_eq!(ok["level"], "INFO");
    assert_eq!(limited["status_code"], 429);
    assert_eq!(limited["request_id"], serde_json::Value::Null);
    assert_eq!(limited["level"], "WARN");
    assert_eq!(limited["cause"], "rate_limited");
    // The page's fields come first, in the page's order.
    let first: Vec<String> = stdout
        .lines()
        .find_map(|l| l.find('{').map(|i| l[i..].to_owned()))
        .unwrap()
        .split(',')
        .take(6)
        .map(|kv| {
            kv.trim_start_matches('{')
                .split(':')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        first,
        [
            "\"timestamp\"",
            "\"region\"",
            "\"model\"",
            "\"status_code\"",
            "\"request_id\"",
            "\"error\""
        ]
    );
}

#[tokio::test]
async fn child_json_lines() {
    if !is_child("json_lines") {
        return;
    }
    std::env::set_var("OTEL_TRACES_EXPORTER", "none");
    std::env::set_var("OTEL_METRICS_EXPORTER", "none");
    std::env::set_var("OTEL_LOGS_EXPORTER", "json");
    let guard = llm_gateway_otel::init().expect("init");
    let sim = keyed_simulator().await;
    let client = client(
        GatewayMiddleware::builder()
            .gateway_host(sim.addr().to_string(), Region::US)
            .retry(Retry::disabled())
            .build()
            .unwrap(),
    );
    for fault in [None, Some(Fault::RateLimited { retry_after_s: 9 })] {
        if let Some(f) = fault {
            sim.inject(f);
        }
        keyed_call_read(&client, &sim, "claude-sonnet-4-6").await;
    }
    guard.shutdown(Duration::from_secs(3)).expect("shutdown");
}
