//! The API key never reaches the collector or the process's logs, even when the gateway
//! echoes it, the header is misspelled, or the key is put in the URL. Runs with the real
//! pipeline (`LLM_GATEWAY_E2E=1`), reading every span rotel received from its debug log.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_gateway_otel::retry::Retry;
use llm_gateway_otel::{GatewayMiddleware, Region, SupportReportExt};
use llm_gateway_simulator::{Fault, Simulator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::e2e::{addr, pipeline_dir};
use crate::support::{chat, client};

/// Recognisable, key-like (32 alphanumerics) and used nowhere else.
const KEY: &str = "e2eSECRETkey0do0not0leak0000beef";
/// Not key-like at all: only exact-match redaction can catch it.
const PLAIN_KEY: &str = "open-sesame-e2e";

/// Everything the process logs, at every level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_reaches_neither_the_collector_nor_the_logs() {
    if std::env::var("LLM_GATEWAY_E2E").as_deref() != Ok("1") {
        eprintln!("e2e skipped: set LLM_GATEWAY_E2E=1 with the pipeline running");
        return;
    }
    let rotel_log = pipeline_dir()
        .expect("scripts/pipeline.sh dir")
        .join("run/rotel.log");
    let grpc = addr("LLM_GATEWAY_OTLP_GRPC_ADDR", "127.0.0.1:4317");
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{grpc}"))
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e-secrets")))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
        );
    let _default = tracing::subscriber::set_default(subscriber);

    let sim = Simulator::builder().api_key(KEY).start().await.unwrap();
    let middleware = GatewayMiddleware::builder()
        .tracer_provider(&provider)
        .gateway_host(sim.addr().to_string(), Region::US)
        .retry(Retry::default().backoff(Duration::from_millis(1), Duration::from_millis(5)))
        .build()
        .unwrap();
    let client = client(middleware);

    // A good call: its request_id must reach the collector, or this test proves nothing.
    let ok: serde_json::Value = client
        .post(sim.chat_url())
        .header("authorization", KEY)
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let marker = ok["request_id"].as_str().unwrap().to_owned();
    let mut reports = Vec::new();
    // A hostile gateway echoing the key (Bearer form, and a key nothing would call key-like).
    for auth in [format!("Bearer {KEY}"), PLAIN_KEY.to_owned()] {
        sim.inject(Fault::EchoKey(401));
        let r = client
            .post(sim.chat_url())
            .header("authorization", &auth)
            .json(&chat("gpt-4o"))
            .send()
            .await
            .unwrap();
        let report = r.support_report().unwrap();
        reports.push(report.to_text());
        reports.push(report.to_json().to_string());
        assert!(
            r.text().await.unwrap().contains(&auth),
            "the echo reached the user, as sent"
        );
    }
    // The key in the URL, and a misspelled header carrying it.
    let r = client
        .post(format!("{}?api_key={KEY}", sim.chat_url()))
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    r.bytes().await.unwrap();
    let r = client
        .post(sim.chat_url())
        .header("authorisation", KEY)
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    r.bytes().await.unwrap();
    // A retried 503.
    sim.inject(Fault::Status(503));
    let r = client
        .post(sim.chat_url())
        .header("authorization", KEY)
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();

    provider.force_flush().unwrap();
    let mut received = String::new();
    for _ in 0..40 {
        received =
            String::from_utf8_lossy(&std::fs::read(&rotel_log).unwrap_or_default()).into_owned();
        if received.contains(&marker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        received.contains(&marker),
        "the spans reached rotel ({})",
        rotel_log.display()
    );
    assert!(
        received.contains("[REDACTED]"),
        "the echoed key arrived redacted"
    );
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    for secret in [KEY, PLAIN_KEY] {
        assert!(!received.contains(secret), "{secret} reached the collector");
        assert!(!logged.contains(secret), "{secret} was logged:\n{logged}");
        for report in &reports {
            assert!(
                !report.contains(secret),
                "{secret} is in a support report:\n{report}"
            );
        }
    }
    let _ = provider.shutdown_with_timeout(Duration::from_secs(2));
}
