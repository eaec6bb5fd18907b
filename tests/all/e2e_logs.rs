//! Each call's log line reaches the real collector as an OpenTelemetry log record, exported by
//! `init()` over OTLP, with the trace and span id of the call's span. Runs with the real
//! pipeline (`LLM_GATEWAY_E2E=1`); the child process that calls `init()` prints the ids of
//! the spans it made, and the test reads every log record rotel received from its debug log.

use std::time::Duration;

use llm_gateway_otel::export::Init;
use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::{Fault, Simulator};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};

use crate::e2e::{addr, pipeline_dir};
use crate::support::{attr_str, chat, client, is_child, run_child};

/// One log record of rotel's debug log: its body, attributes and ids.
#[derive(Debug, Default)]
struct Record {
    body: String,
    request_id: Option<String>,
    status_code: Option<String>,
    trace_id: Option<String>,
    span_id: Option<String>,
}

fn records(log: &str) -> Vec<Record> {
    let clean: String = strip_ansi(log);
    clean
        .split("LogRecord #")
        .skip(1)
        .map(|block| {
            let mut r = Record::default();
            for line in block.lines() {
                let line = line.trim();
                let value = |prefix: &str| {
                    line.strip_prefix(prefix).map(|v| {
                        v.trim()
                            .trim_start_matches("Str(")
                            .trim_start_matches("Int(")
                            .trim_end_matches(')')
                            .to_owned()
                    })
                };
                if let Some(v) = value("Body:") {
                    r.body = v;
                } else if let Some(v) = value("-> request_id:") {
                    r.request_id = Some(v);
                } else if let Some(v) = value("-> status_code:") {
                    r.status_code = Some(v);
                } else if let Some(v) = line.strip_prefix("Trace ID") {
                    r.trace_id = Some(v.trim_start_matches([' ', ':']).trim().to_owned());
                } else if let Some(v) = line.strip_prefix("Span ID") {
                    r.span_id = Some(v.trim_start_matches([' ', ':']).trim().to_owned());
                }
            }
            r
        })
        .collect()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn call_log_records_reach_the_collector_with_their_span_ids() {
    if std::env::var("LLM_GATEWAY_E2E").as_deref() != Ok("1") {
        eprintln!("e2e skipped: set LLM_GATEWAY_E2E=1 with the pipeline running");
        return;
    }
    let output = run_child("e2e_logs", "init_to_the_pipeline");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // "CALL <request_id or -> <status> <trace id> <span id>", one per call.
    let calls: Vec<Vec<&str>> = stdout
        .lines()
        // (the harness's own "test … ... " may precede the first on its line)
        .filter_map(|l| l.find("CALL ").map(|i| &l[i + 5..]))
        .map(|l| l.split(' ').collect())
        .collect();
    assert_eq!(calls.len(), 2, "{stdout}");
    let rotel_log = pipeline_dir()
        .expect("scripts/pipeline.sh dir")
        .join("run/rotel.log");
    // rotel prints what it received within its batching delay.
    let mut found = 0;
    for _ in 0..50 {
        let log = std::fs::read_to_string(&rotel_log).unwrap_or_default();
        let got = records(&log);
        found = calls
            .iter()
            .filter(|c| {
                got.iter().any(|r| {
                    r.body == "llm gateway call"
                        && r.trace_id.as_deref() == Some(c[2])
                        && r.span_id.as_deref() == Some(c[3])
                        && r.status_code.as_deref() == Some(c[1])
                        && (c[0] == "-" || r.request_id.as_deref() == Some(c[0]))
                })
            })
            .count();
        if found == calls.len() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{found} of {} call log records found in {rotel_log:?}",
        calls.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_init_to_the_pipeline() {
    if !is_child("init_to_the_pipeline") {
        return;
    }
    let grpc = addr("LLM_GATEWAY_OTLP_GRPC_ADDR", "127.0.0.1:4317");
    // Metrics stay out of the pipeline's Prometheus, which another test counts exactly.
    std::env::set_var("OTEL_METRICS_EXPORTER", "none");
    std::env::remove_var("OTEL_LOGS_EXPORTER");
    let spans = InMemorySpanExporter::default();
    let guard = Init::from_env()
        .service_name("llm-gateway-otel-e2e-logs")
        .otlp_endpoint(format!("http://{grpc}"))
        .with_span_processor(SimpleSpanProcessor::new(spans.clone()))
        .install()
        .expect("init");
    let sim = Simulator::start().await.unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .gateway_host(sim.addr().to_string(), Region::US)
            .retry(llm_gateway_otel::retry::Retry::disabled())
            .build()
            .unwrap(),
    );
    for (model, fault) in [
        ("claude-sonnet-4-6", None),
        ("gpt-4o", Some(Fault::Status(503))),
    ] {
        if let Some(fault) = fault {
            sim.inject(fault);
        }
        let response = client.post(sim.chat_url()).json(&chat(model)).send().await;
        response.unwrap().bytes().await.unwrap();
    }
    for span in spans.get_finished_spans().unwrap() {
        if attr_str(&span, "gen_ai.operation.name").is_none() {
            continue;
        }
        println!(
            "CALL {} {} {} {}",
            attr_str(&span, "llm_gateway.request_id").unwrap_or_else(|| "-".into()),
            attr_str(&span, "http.response.status_code").unwrap_or_default(),
            span.span_context.trace_id(),
            span.span_context.span_id()
        );
    }
    tokio::task::spawn_blocking(move || guard.shutdown(Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("exported");
}
