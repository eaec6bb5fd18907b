//! Opt-in content capture over real HTTP: off by default (nothing copied, nothing recorded);
//! on the span, in the GenAI event, or both; a stream's answer assembled from its deltas;
//! keys redacted and everything bounded; and the quality-issue report the troubleshooting
//! page asks for (full payload, full response, request_id).

use std::sync::{Arc, Mutex};

use llm_gateway_otel::names::*;
use llm_gateway_otel::{ContentCapture, GatewayMiddleware, Region, SupportReportExt};
use llm_gateway_simulator::Simulator;
use reqwest_middleware::ClientWithMiddleware;
use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::support::*;

/// A key-like string a prompt should never carry into telemetry.
const KEY: &str = "5f0e3c9a7b1d4e2f8a6c0b9d3e7f1a2c";

fn conversation(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": format!("My key is {KEY}. What is the capital of France?")},
        ],
    })
}

async fn setup(
    capture: ContentCapture,
    extra: impl FnOnce(
        llm_gateway_otel::GatewayMiddlewareBuilder,
    ) -> llm_gateway_otel::GatewayMiddlewareBuilder,
) -> (Simulator, ClientWithMiddleware) {
    let sim = Simulator::start().await.unwrap();
    let client = client(
        extra(
            GatewayMiddleware::builder()
                .traced()
                .gateway_host(sim.addr().to_string(), Region::US)
                .capture_content(capture),
        )
        .build()
        .unwrap(),
    );
    (sim, client)
}

fn json_attr(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Value {
    let text = attr_str(span, key).unwrap_or_else(|| panic!("no {key}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"))
}

#[tokio::test]
async fn off_by_default_nothing_is_recorded_and_the_report_stays_minimal() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim.addr().to_string(), Region::US);
    let mut body = conversation("claude-sonnet-4-6");
    body["messages"][1]["content"] = Value::from("x".repeat(3000));
    let response = client
        .post(sim.chat_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    let handle = response.support_report_handle().unwrap();
    response.bytes().await.unwrap();
    let span = capture.call();
    for key in [
        GEN_AI_INPUT_MESSAGES,
        GEN_AI_OUTPUT_MESSAGES,
        GEN_AI_SYSTEM_INSTRUCTIONS,
    ] {
        assert_eq!(attr(&span, key), None, "{key}");
    }
    let report = handle.report();
    assert_eq!(report.response, None);
    let kept = report.payload.unwrap()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        kept.len() < 2100 && kept.contains("…[truncated: 3000 bytes in all]"),
        "the minimal payload"
    );
}

#[tokio::test]
async fn span_only_records_the_genai_messages_with_the_key_redacted() {
    let capture = Capture::start();
    let (sim, client) = setup(ContentCapture::SpanOnly, |b| b).await;
    let response = client
        .post(sim.chat_url())
        .json(&conversation("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    let span = capture.call();
    let everything = everything_recorded(std::slice::from_ref(&span));
    assert!(!everything.contains(KEY), "the key reached the span");

    let input = json_attr(&span, GEN_AI_INPUT_MESSAGES);
    assert_eq!(
        input[0],
        json!({"role": "system", "parts": [{"type": "text", "content": "Answer in one sentence."}]})
    );
    assert_eq!(
        input[1],
        json!({"role": "user", "parts": [{"type": "text", "content": "My key is [REDACTED]. What is the capital of France?"}]})
    );
    assert_eq!(
        json_attr(&span, GEN_AI_SYSTEM_INSTRUCTIONS),
        json!([{"type": "text", "content": "Answer in one sentence."}])
    );
    let output = json_attr(&span, GEN_AI_OUTPUT_MESSAGES);
    assert_eq!(
        output,
        json!([{
            "role": "assistant",
            "parts": [{"type": "text", "content": answer["choices"][0]["message"]["content"]}],
            "finish_reason": answer["choices"][0]["finish_reason"],
        }])
    );
}

#[tokio::test]
async fn a_streams_answer_is_assembled_from_its_deltas() {
    let capture = Capture::start();
    let (sim, client) = setup(ContentCapture::SpanAndEvent, |b| b).await;
    let mut body = conversation("gpt-4o-mini");
    body["stream"] = json!(true);
    let text = client
        .post(sim.chat_url())
        .header("x-simulator-chunks", "4")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // What the user read: the deltas, joined.
    let mut joined = String::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            if let Some(d) = v["choices"][0]["delta"]["content"].as_str() {
                joined.push_str(d);
            }
        }
    }
    assert_eq!(joined, "Paris is the capital ");
    let output = json_attr(&capture.call(), GEN_AI_OUTPUT_MESSAGES);
    assert_eq!(output[0]["parts"][0]["content"], joined.as_str());
    assert_eq!(output[0]["finish_reason"], "stop");
}

/// One event: its target, its name and its fields as text.
type Event = (String, String, Vec<(String, String)>);

/// Every event of the current thread's subscriber.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), meta.name().to_owned(), fields));
    }
}

#[tokio::test]
async fn event_only_puts_the_content_in_the_genai_event_not_on_the_span() {
    let events = Events::default();
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let sim = Simulator::start().await.unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .tracer_provider(&provider)
            .gateway_host(sim.addr().to_string(), Region::US)
            .capture_content(ContentCapture::EventOnly)
            .build()
            .unwrap(),
    );
    send_read(&client, &sim.chat_url(), &conversation("claude-sonnet-4-6")).await;
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(attr(&spans[0], GEN_AI_INPUT_MESSAGES), None);
    assert_eq!(attr(&spans[0], GEN_AI_OUTPUT_MESSAGES), None);
    let events = events.0.lock().unwrap().clone();
    let content: Vec<_> = events
        .iter()
        .filter(|(target, _, _)| target == CONTENT_LOG_TARGET)
        .collect();
    assert_eq!(content.len(), 1, "{events:#?}");
    let (_, name, fields) = content[0];
    assert_eq!(name, GEN_AI_CONTENT_EVENT);
    let field = |key: &str| -> Value {
        let text = &fields
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no {key}: {fields:?}"))
            .1;
        serde_json::from_str(text).unwrap()
    };
    assert_eq!(field(GEN_AI_INPUT_MESSAGES)[1]["role"], "user");
    assert!(!format!("{fields:?}").contains(KEY));
    assert_eq!(
        field(GEN_AI_SYSTEM_INSTRUCTIONS)[0]["content"],
        "Answer in one sentence."
    );
    assert_eq!(field(GEN_AI_OUTPUT_MESSAGES)[0]["role"], "assistant");
    // The event names the call's span, as the log line does.
    let id = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        id("trace_id"),
        Some(spans[0].span_context.trace_id().to_string())
    );
    assert_eq!(
        id("span_id"),
        Some(spans[0].span_context.span_id().to_string())
    );
}

#[tokio::test]
async fn content_is_bounded_with_a_visible_cut() {
    let capture = Capture::start();
    let (sim, client) = setup(ContentCapture::SpanOnly, |b| b.max_content_bytes(1024)).await;
    let mut body = conversation("claude-sonnet-4-6");
    body["messages"][1]["content"] = Value::from("lorem ipsum ".repeat(1000));
    send_read(&client, &sim.chat_url(), &body).await;
    let input = attr_str(&capture.call(), GEN_AI_INPUT_MESSAGES).unwrap();
    assert!(input.len() <= 1024, "{} bytes", input.len());
    assert!(
        input.contains("…[truncated: 12000 bytes in all]"),
        "{input}"
    );
    assert!(
        serde_json::from_str::<Value>(&input).is_ok(),
        "still JSON: {input}"
    );
}

/// The troubleshooting page's "Unexpected output or quality issues": capture the full
/// request payload, the full response and the request_id.
#[tokio::test]
async fn with_capture_on_the_report_of_a_success_holds_the_full_payload_response_and_request_id() {
    let _capture = Capture::start();
    let (sim, client) = setup(ContentCapture::SpanOnly, |b| b).await;
    let mut body = conversation("claude-sonnet-4-6");
    let long_prompt = format!("{} What is the capital of France?", "Context. ".repeat(500));
    body["messages"][1]["content"] = Value::from(long_prompt.clone());
    body["temperature"] = json!(0.2);
    // A long conversation: every turn is kept (the minimal payload keeps 50).
    let mut turns: Vec<Value> = (0..70)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("turn {i}")}))
        .collect();
    turns.push(body["messages"][1].clone());
    body["messages"][1] = json!({"role": "user", "content": "(history follows)"});
    body["messages"].as_array_mut().unwrap().extend(turns);
    let response = client
        .post(sim.chat_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    let handle = response.support_report_handle().unwrap();
    let answer = response.bytes().await.unwrap();
    let answer_json: Value = serde_json::from_slice(&answer).unwrap();
    let report = handle.report();

    assert_eq!(report.outcome, "ok");
    assert_eq!(
        report.request_id.as_deref(),
        answer_json["request_id"].as_str()
    );
    let payload = report.payload.clone().unwrap();
    let kept = payload["messages"].as_array().unwrap();
    assert_eq!(kept.len(), 73, "every message kept");
    assert_eq!(
        kept[72]["content"],
        long_prompt.as_str(),
        "not cut at 2000 bytes"
    );
    assert_eq!(payload["temperature"], 0.2);
    assert!(
        report.payload_notes.is_empty(),
        "{:?}",
        report.payload_notes
    );
    let response_text = report.response.clone().expect("the full response");
    assert_eq!(
        serde_json::from_str::<Value>(&response_text).unwrap(),
        answer_json,
        "the response as the user read it"
    );
    let text = report.to_text();
    assert!(
        text.contains("response (API key and key-like strings redacted):"),
        "{text}"
    );
    assert!(!text.contains(KEY) && !report.to_json().to_string().contains(KEY));
}

/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is read at build; a value that is not
/// a mode fails the build. In a child process: the variable is global.
#[test]
fn the_instrumentations_variable_turns_capture_on() {
    run_child("content", "capture_env");
}

#[tokio::test]
async fn child_capture_env() {
    if !is_child("capture_env") {
        return;
    }
    std::env::set_var(CAPTURE_ENV, "maybe");
    let err = GatewayMiddleware::builder()
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(CAPTURE_ENV) && err.contains("SPAN_AND_EVENT"),
        "{err}"
    );
    std::env::set_var(CAPTURE_ENV, "span_only");
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim.addr().to_string(), Region::US);
    send_read(&client, &sim.chat_url(), &conversation("claude-sonnet-4-6")).await;
    assert!(attr(&capture.call(), GEN_AI_OUTPUT_MESSAGES).is_some());
}

const CAPTURE_ENV: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// `init()` with `OTEL_LOGS_EXPORTER=json` (the stdout-only shops): the content event is a
/// JSON line too, its messages as JSON, next to the call's line.
#[test]
fn the_content_event_is_a_json_line_with_the_json_logs_exporter() {
    let output = run_child("content", "json_content");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let event = lines
        .iter()
        .find(|l| l["event"] == GEN_AI_CONTENT_EVENT)
        .unwrap_or_else(|| panic!("no content event in:\n{stdout}"));
    assert_eq!(event[GEN_AI_INPUT_MESSAGES][1]["role"], "user");
    assert_eq!(event[GEN_AI_OUTPUT_MESSAGES][0]["role"], "assistant");
    assert!(event["trace_id"].is_string());
    assert!(lines.iter().any(|l| l["status_code"] == 200), "{stdout}");
    assert!(!stdout.contains(KEY));
}

#[tokio::test]
async fn child_json_content() {
    if !is_child("json_content") {
        return;
    }
    std::env::set_var("OTEL_TRACES_EXPORTER", "none");
    std::env::set_var("OTEL_METRICS_EXPORTER", "none");
    std::env::set_var("OTEL_LOGS_EXPORTER", "json");
    let guard = llm_gateway_otel::init().expect("init");
    let sim = Simulator::start().await.unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .gateway_host(sim.addr().to_string(), Region::US)
            .capture_content(ContentCapture::EventOnly)
            .build()
            .unwrap(),
    );
    send_read(&client, &sim.chat_url(), &conversation("claude-sonnet-4-6")).await;
    guard
        .shutdown(std::time::Duration::from_secs(3))
        .expect("shutdown");
}
