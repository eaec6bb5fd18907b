//! Test support: an in-memory span capture, a client wired to the simulator, and a raw
//! HTTP server that sends exactly the bytes a test gives it.

use std::time::Duration;

use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::Simulator;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;

thread_local! {
    /// The provider of the capture running on this thread: [`Traced::traced`] records with it.
    static CAPTURING: std::cell::RefCell<Option<SdkTracerProvider>> = const { std::cell::RefCell::new(None) };
}

/// Points a middleware at the current thread's [`Capture`] (the middleware records through
/// the OpenTelemetry API with the provider it is given, not through `tracing`).
pub trait Traced {
    fn traced(self) -> Self;
}

impl Traced for llm_gateway_otel::GatewayMiddlewareBuilder {
    fn traced(self) -> Self {
        match CAPTURING.with(|c| c.borrow().clone()) {
            Some(provider) => self.tracer_provider(&provider),
            None => self,
        }
    }
}

/// Spans exported while it lives: the middleware's (built with [`Traced::traced`] on this
/// thread) and the `tracing` spans of the current thread's dispatcher.
pub struct Capture {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Capture {
    pub fn start() -> Capture {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let guard = tracing::subscriber::set_default(subscriber);
        CAPTURING.with(|c| *c.borrow_mut() = Some(provider.clone()));
        Capture {
            exporter,
            provider,
            _guard: guard,
        }
    }

    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    pub fn spans(&self) -> Vec<SpanData> {
        self.provider.force_flush().expect("flush");
        self.exporter.get_finished_spans().expect("spans")
    }

    /// The logical spans (kind CLIENT, gen_ai.operation.name set).
    pub fn calls(&self) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| attr(s, "gen_ai.operation.name").is_some())
            .collect()
    }

    /// The one logical span; fails the test if there is not exactly one.
    pub fn call(&self) -> SpanData {
        let calls = self.calls();
        assert_eq!(calls.len(), 1, "expected one call span, got {calls:#?}");
        calls.into_iter().next().unwrap()
    }

    /// The attempt spans whose parent is `call`.
    pub fn attempts_of(&self, call: &SpanData) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.parent_span_id == call.span_context.span_id())
            .collect()
    }
}

pub fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

pub fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

pub fn attr_i64(span: &SpanData, key: &str) -> Option<i64> {
    match attr(span, key)? {
        Value::I64(v) => Some(v),
        other => panic!("{key} is not an int: {other:?}"),
    }
}

pub fn attr_f64(span: &SpanData, key: &str) -> Option<f64> {
    match attr(span, key)? {
        Value::F64(v) => Some(v),
        other => panic!("{key} is not a double: {other:?}"),
    }
}

pub fn attr_bool(span: &SpanData, key: &str) -> Option<bool> {
    match attr(span, key)? {
        Value::Bool(v) => Some(v),
        other => panic!("{key} is not a bool: {other:?}"),
    }
}

/// Every attribute key and value of every span, as text (for secret searches).
pub fn everything_recorded(spans: &[SpanData]) -> String {
    let mut out = String::new();
    for s in spans {
        out.push_str(&format!("{} {:?}\n", s.name, s.status));
        for kv in &s.attributes {
            out.push_str(&format!("{}={}\n", kv.key, kv.value));
        }
        for e in s.events.iter() {
            out.push_str(&format!("event {} {:?}\n", e.name, e.attributes));
        }
    }
    out
}

pub fn assert_client_kind(span: &SpanData) {
    assert_eq!(span.span_kind, SpanKind::Client, "{}", span.name);
}

/// A plain client with `middleware`.
pub fn client(middleware: GatewayMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// A client with the middleware, treating `host_port` as a gateway in `region`.
pub fn client_for(host_port: &str, region: Region) -> ClientWithMiddleware {
    client(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(host_port, region)
            .build()
            .expect("config"),
    )
}

/// A US simulator and a client for it (the default middleware: retries on).
pub async fn simulator() -> (Simulator, ClientWithMiddleware) {
    let sim = Simulator::start().await.expect("simulator");
    let client = client_for(&sim.addr().to_string(), Region::US);
    (sim, client)
}

/// A US simulator and a client that sends every call once (`Retry::disabled()`), for tests
/// of how one failing response is recorded: with the default retries, a 429 or a 5xx the
/// simulator sends once would be retried away.
pub async fn simulator_without_retry() -> (Simulator, ClientWithMiddleware) {
    let sim = Simulator::start().await.expect("simulator");
    let client = client(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), Region::US)
            .retry(llm_gateway_otel::retry::Retry::disabled())
            .build()
            .expect("config"),
    );
    (sim, client)
}

/// Sends `body` to `url` and reads the answer to its end (when the call is recorded);
/// returns the status.
pub async fn send_read(client: &ClientWithMiddleware, url: &str, body: &serde_json::Value) -> u16 {
    let response = client.post(url).json(body).send().await.expect("an answer");
    let status = response.status().as_u16();
    response.bytes().await.expect("the body");
    status
}

/// Sends a `gpt-4o` chat to the chat-completions path of `addr` (a raw server) and returns the
/// response head; the body is the test's to read.
pub async fn post_chat(
    client: &ClientWithMiddleware,
    addr: std::net::SocketAddr,
) -> reqwest::Response {
    client
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&chat("gpt-4o"))
        .send()
        .await
        .expect("an answer")
}

pub fn chat(model: &str) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 1000,
    })
}

/// How a raw server ends its one response.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Close after the last chunk (a complete response).
    Close,
    /// Reset the connection before the declared length was sent.
    Abort,
}

/// Serves one fixed response per connection on 127.0.0.1: `head` (status line and headers,
/// without the blank line; Content-Length is added from the total of `chunks` unless
/// `chunked_len` says otherwise), then each chunk as its own write with `pause` between.
pub async fn raw_server(
    head: &str,
    chunks: Vec<Vec<u8>>,
    pause: Duration,
    ending: Ending,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let total: usize = chunks.iter().map(Vec::len).sum();
    let declared = if ending == Ending::Abort {
        total + 1024
    } else {
        total
    };
    let head = format!("{head}\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let head = head.clone();
            let chunks = chunks.clone();
            tokio::spawn(async move {
                // Read the request head and body (enough to let the client finish sending).
                let mut buf = vec![0u8; 64 * 1024];
                let _ = tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await;
                let _ = sock.write_all(head.as_bytes()).await;
                for chunk in chunks {
                    let _ = sock.write_all(&chunk).await;
                    let _ = sock.flush().await;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                if ending == Ending::Abort {
                    // Linger zero: the close sends a reset at once (it blocks nothing).
                    #[allow(deprecated)]
                    let _ = sock.set_linger(Some(Duration::ZERO));
                }
                drop(sock);
            });
        }
    });
    addr
}

/// A raw server answering `200` with the JSON `body` (see [`raw_server`]).
pub async fn json_server(body: &[u8], ending: Ending) -> std::net::SocketAddr {
    raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json",
        vec![body.to_vec()],
        Duration::ZERO,
        ending,
    )
    .await
}

const CHILD: &str = "LLM_GATEWAY_TEST_CHILD";

/// Runs the test `{module}::child_{name}` of this test binary in a child process (for what is
/// global to a process: the tracer provider, the subscriber, a once-per-process warning) and
/// fails unless it ran and passed. The child test does its work only under [`is_child`].
pub fn run_child(module: &str, name: &str) -> std::process::Output {
    let test = format!("{module}::child_{name}");
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([&test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    output
}

/// Whether this process is the child [`run_child`] started for `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(name)
}
