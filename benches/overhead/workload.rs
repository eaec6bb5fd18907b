//! The benchmark's workloads, shared by the benchmark binary (`benches/overhead/main.rs`) and
//! its smoke test (`tests/all/bench_smoke.rs`), so that the smoke test runs exactly the code
//! that is measured.
//!
//! - [`serve_gateway`]: a local HTTP/1.1 server that answers every request with fixed,
//!   pre-rendered bytes (a 1 KiB JSON answer, a 256 KiB JSON answer, a 200-chunk SSE stream),
//!   doing no work per request beyond reading the request and writing.
//! - [`serve_sink`]: a local OTLP/gRPC sink: an HTTP/2 server that drains each `Export` call,
//!   counts the spans in it (a walk over the protobuf framing, no decoding of the spans) and
//!   answers an empty success.
//! - [`Telemetry`]: the export pipeline a user of `llm_gateway_otel::init()` gets: a batch
//!   OTLP gRPC span exporter behind `tracing-opentelemetry`, and a periodic OTLP gRPC metric
//!   exporter, both pointed at the sink.
//! - [`Variant`]: the three clients compared, and [`Variant::call`], one call read to its end
//!   as a user would.

#![allow(dead_code)] // each of the two users uses a part

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use llm_gateway_otel::{retry::Retry, GatewayMiddleware, Region};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A 1 KiB JSON chat completion.
    Json1K,
    /// A 256 KiB JSON chat completion.
    Json256K,
    /// An SSE stream of 200 chunks (199 `data:` events and `data: [DONE]`), each written as
    /// its own HTTP chunk.
    Sse200,
}

pub const WORKLOADS: [Workload; 3] = [Workload::Json1K, Workload::Json256K, Workload::Sse200];

pub const SSE_CHUNKS: usize = 200;

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Json1K => "json-1k",
            Workload::Json256K => "json-256k",
            Workload::Sse200 => "sse-200",
        }
    }

    /// The path on the server (each ends with the chat-completions path the middleware
    /// observes).
    fn path(self) -> &'static str {
        match self {
            Workload::Json1K => "/1k/v1/chat/completions",
            Workload::Json256K => "/256k/v1/chat/completions",
            Workload::Sse200 => "/sse/v1/chat/completions",
        }
    }

    pub fn streamed(self) -> bool {
        self == Workload::Sse200
    }

    /// The body the user must receive.
    pub fn body(self) -> Vec<u8> {
        match self {
            Workload::Json1K => json_body(1024),
            Workload::Json256K => json_body(256 * 1024),
            Workload::Sse200 => sse_events().concat(),
        }
    }
}

/// The request every variant sends: a small chat request, as a user would.
pub fn request_body(workload: Workload) -> Bytes {
    let stream = workload.streamed();
    Bytes::from(format!(
        r#"{{"model":"claude-sonnet-4-6","messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"What is the capital of France? Answer in one sentence."}}],"max_tokens":1000,"temperature":0.2,"stream":{stream}}}"#
    ))
}

const API_KEY: &str = "bench-key-0123456789abcdef0123456789abcdef";

/// A gateway-shaped JSON answer of exactly `size` bytes (the assistant's text pads it).
fn json_body(size: usize) -> Vec<u8> {
    let render = |content: &str| {
        format!(
            r#"{{"request_id":"req_01JBENCH000000000000000000","id":"chatcmpl-bench","object":"chat.completion","created":1764000000,"model":"claude-sonnet-4-6","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":24,"completion_tokens":{},"total_tokens":{}}}}}"#,
            size / 5,
            size / 5 + 24
        )
    };
    let frame = render("").len();
    assert!(size > frame, "body size {size} is smaller than the frame");
    let words = "The capital of France is Paris, on the Seine; it is \\\"the City of Light\\\".\\n";
    let mut content = String::new();
    while content.len() < size - frame {
        content.push_str(words);
    }
    // Cut on a plain letter so that no escape sequence is split.
    content.truncate(size - frame);
    while content.ends_with('\\') {
        content.pop();
        content.push('x');
    }
    let body = render(&content);
    assert_eq!(body.len(), size);
    body.into_bytes()
}

/// The SSE events: a role chunk, content deltas, a final chunk with finish_reason and usage,
/// and `[DONE]`; [`SSE_CHUNKS`] in all.
fn sse_events() -> Vec<Vec<u8>> {
    let chunk = |delta: &str, finish: &str, usage: &str| {
        format!(
            "data: {{\"request_id\":\"req_01JBENCH000000000000000000\",\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"claude-sonnet-4-6\",\"choices\":[{{\"index\":0,\"delta\":{{{delta}}},\"finish_reason\":{finish}}}]{usage}}}\n\n"
        )
        .into_bytes()
    };
    let mut events = vec![chunk(r#""role":"assistant""#, "null", "")];
    for i in 1..SSE_CHUNKS - 2 {
        events.push(chunk(
            &format!(r#""content":"word{i} of the answer ""#),
            "null",
            "",
        ));
    }
    events.push(chunk(
        "",
        r#""stop""#,
        r#","usage":{"prompt_tokens":24,"completion_tokens":198,"total_tokens":222}"#,
    ));
    events.push(b"data: [DONE]\n\n".to_vec());
    assert_eq!(events.len(), SSE_CHUNKS);
    events
}

/// Pre-rendered responses: the whole response for a JSON answer, the head and each chunk
/// (chunked transfer encoding) for the stream.
struct Answers {
    json_1k: Bytes,
    json_256k: Bytes,
    sse_head: Bytes,
    sse_chunks: Vec<Bytes>,
}

impl Answers {
    fn render() -> Answers {
        let json = |body: Vec<u8>| {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 999\r\nx-ratelimit-reset: 60\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(&body);
            Bytes::from(out)
        };
        let mut sse_chunks: Vec<Bytes> = sse_events()
            .into_iter()
            .map(|e| {
                let mut c = format!("{:x}\r\n", e.len()).into_bytes();
                c.extend_from_slice(&e);
                c.extend_from_slice(b"\r\n");
                Bytes::from(c)
            })
            .collect();
        // The last chunk carries the terminating zero-length chunk in the same write.
        if let Some(last) = sse_chunks.last_mut() {
            let mut c = last.to_vec();
            c.extend_from_slice(b"0\r\n\r\n");
            *last = Bytes::from(c);
        }
        Answers {
            json_1k: json(Workload::Json1K.body()),
            json_256k: json(Workload::Json256K.body()),
            sse_head: Bytes::from_static(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nx-ratelimit-limit: 1000\r\nx-ratelimit-remaining: 999\r\nx-ratelimit-reset: 60\r\n\r\n",
            ),
            sse_chunks,
        }
    }
}

/// Serves the fixed answers on `listener` until the process (or runtime) ends. Keep-alive
/// HTTP/1.1; the answer is chosen by the path's first segment.
pub async fn serve_gateway(listener: TcpListener) {
    let answers = Arc::new(Answers::render());
    while let Ok((sock, _)) = listener.accept().await {
        let _ = sock.set_nodelay(true);
        tokio::spawn(gateway_connection(sock, Arc::clone(&answers)));
    }
}

async fn gateway_connection(mut sock: TcpStream, answers: Arc<Answers>) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        // The request head.
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = &buf[..head_end];
        let path_start = head.iter().position(|&b| b == b' ').map_or(0, |i| i + 1);
        let workload = match &head[path_start..(path_start + 4).min(head.len())] {
            b"/1k/" => Workload::Json1K,
            b"/256" => Workload::Json256K,
            _ => Workload::Sse200,
        };
        let content_length = content_length(head);
        // The request body, discarded.
        while buf.len() < head_end + content_length {
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let _ = buf.split_to(head_end + content_length);
        let written = match workload {
            Workload::Json1K => sock.write_all(&answers.json_1k).await,
            Workload::Json256K => sock.write_all(&answers.json_256k).await,
            Workload::Sse200 => {
                async {
                    sock.write_all(&answers.sse_head).await?;
                    for chunk in &answers.sse_chunks {
                        sock.write_all(chunk).await?;
                    }
                    Ok(())
                }
                .await
            }
        };
        if written.is_err() {
            return;
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    head.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .next()
        .unwrap_or(0)
}

/// An exporter that drops whatever it is given.
#[derive(Debug, Clone, Copy)]
pub struct Discard;

impl opentelemetry_sdk::trace::SpanExporter for Discard {
    async fn export(
        &self,
        _batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for Discard {
    async fn export(
        &self,
        _metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        opentelemetry_sdk::metrics::Temporality::Cumulative
    }
}

/// What the OTLP sink received.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub trace_exports: AtomicU64,
    pub spans: AtomicU64,
    pub metric_exports: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes of trace exports only (gRPC messages, framing included).
    pub trace_bytes: AtomicU64,
}

impl SinkStats {
    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

/// An OTLP/gRPC sink on `listener`: accepts every `Export` call, counts what it received
/// and answers success (an empty response message, `grpc-status: 0`).
pub async fn serve_sink(listener: TcpListener, stats: Arc<SinkStats>) {
    while let Ok((sock, _)) = listener.accept().await {
        let _ = sock.set_nodelay(true);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let Ok(mut conn) = h2::server::handshake(sock).await else {
                return;
            };
            while let Some(Ok((request, respond))) = conn.accept().await {
                tokio::spawn(sink_call(request, respond, Arc::clone(&stats)));
            }
        });
    }
}

async fn sink_call(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    stats: Arc<SinkStats>,
) {
    let traces = request.uri().path().contains("TraceService");
    let mut body = request.into_body();
    let mut message = BytesMut::new();
    while let Some(data) = body.data().await {
        let Ok(data) = data else { return };
        let _ = body.flow_control().release_capacity(data.len());
        message.extend_from_slice(&data);
    }
    stats
        .bytes
        .fetch_add(message.len() as u64, Ordering::Relaxed);
    if traces {
        stats.trace_exports.fetch_add(1, Ordering::Relaxed);
        stats
            .trace_bytes
            .fetch_add(message.len() as u64, Ordering::Relaxed);
        // gRPC framing: a compression flag and a 4-byte length before the message.
        let spans = message.get(5..).map_or(0, count_spans);
        stats.spans.fetch_add(spans, Ordering::Relaxed);
    } else {
        stats.metric_exports.fetch_add(1, Ordering::Relaxed);
    }
    let Ok(head) = http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
    else {
        return;
    };
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    let _ = send.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = send.send_trailers(trailers);
}

/// Spans in an `ExportTraceServiceRequest`: resource_spans (1) → scope_spans (2) → spans (2),
/// walked over the protobuf framing without decoding the spans.
fn count_spans(request: &[u8]) -> u64 {
    fields(request, 1)
        .flat_map(|resource| fields(resource, 2))
        .map(|scope| fields(scope, 2).count() as u64)
        .sum()
}

/// The length-delimited fields numbered `wanted` of a protobuf message.
fn fields(mut msg: &[u8], wanted: u64) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || loop {
        let key = varint(&mut msg)?;
        let len = match key & 7 {
            0 => {
                varint(&mut msg)?;
                continue;
            }
            1 => 8,
            5 => 4,
            2 => usize::try_from(varint(&mut msg)?).ok()?,
            _ => return None,
        };
        let value = msg.get(..len)?;
        msg = &msg[len..];
        if key >> 3 == wanted && key & 7 == 2 {
            return Some(value);
        }
    })
}

fn varint(msg: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = msg.split_first()?;
        *msg = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The export pipeline: a tracer provider with a batch span processor → OTLP gRPC (tonic) →
/// the sink, which the middleware records with and which `tracing` reaches through
/// `tracing-opentelemetry` (reqwest-tracing's spans); and a meter provider exporting OTLP
/// gRPC to the sink. Configured as `llm_gateway_otel::init()` configures it (same layer
/// settings, SDK defaults for the batch processor).
pub struct Telemetry {
    pub dispatch: tracing::Dispatch,
    pub tracer_provider: SdkTracerProvider,
    pub meter_provider: SdkMeterProvider,
    /// `false` when exporting to a collector that never answers: nothing is waited for.
    pub live: bool,
}

impl Telemetry {
    /// Must be called inside a tokio runtime (the gRPC channels are created on it).
    pub fn to_sink(sink: SocketAddr) -> Telemetry {
        Telemetry::to(sink, true)
    }

    /// Exports to `collector`. With `live` false the collector is taken to be dead (it
    /// accepts and never answers): the SDK's default queue (2048 spans, dropped beyond) is
    /// kept, as a user would have it, and phases do not wait for exports.
    pub fn to(collector: SocketAddr, live: bool) -> Telemetry {
        let endpoint = format!("http://{collector}");
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .expect("span exporter");
        // The SDK's default queue (2048 spans) overflows at the benchmark's tens of
        // thousands of spans a second, and a dropped span is export work not done: the queue
        // is made large enough that every span is exported (the sink counts them).
        let batch = if live {
            BatchConfigBuilder::default().with_max_queue_size(1 << 20)
        } else {
            BatchConfigBuilder::default()
        }
        .build();
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .expect("metric exporter");
        Telemetry::with_exporters(spans, batch, metrics, live)
    }

    /// The same pipeline with exporters that drop what they receive: the SDK still builds,
    /// queues and batches every span and aggregates every metric point, and nothing is
    /// encoded or sent (the cost of recording, apart from the cost of OTLP).
    pub fn dropping() -> Telemetry {
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(1 << 20)
            .build();
        Telemetry::with_exporters(Discard, batch, Discard, true)
    }

    /// The providers over `spans` (batched with `batch`) and `metrics` (every 5 s), and a
    /// subscriber with the tracing-opentelemetry layer `init()` configures.
    fn with_exporters(
        spans: impl opentelemetry_sdk::trace::SpanExporter + 'static,
        batch: opentelemetry_sdk::trace::BatchConfig,
        metrics: impl opentelemetry_sdk::metrics::exporter::PushMetricExporter,
        live: bool,
    ) -> Telemetry {
        // `BENCH_SAMPLE_RATIO=0.1`: both stacks' spans sampled at that ratio (parent-based
        // trace-id ratio, as `OTEL_TRACES_SAMPLER=parentbased_traceidratio` sets it up).
        let sampler = match std::env::var("BENCH_SAMPLE_RATIO") {
            Ok(r) => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                r.parse().expect("BENCH_SAMPLE_RATIO is a number"),
            ))),
            Err(_) => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        };
        let tracer_provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(
                BatchSpanProcessor::builder(spans)
                    .with_batch_config(batch)
                    .build(),
            )
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(metrics)
                    .with_interval(Duration::from_secs(5))
                    .build(),
            )
            .build();
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer_provider.tracer(llm_gateway_otel::names::TRACING_TARGET))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(EnvFilter::new("info"));
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(otel));
        Telemetry {
            dispatch,
            tracer_provider,
            meter_provider,
            live,
        }
    }

    /// Exports every finished span now (blocks; call it off the runtime's threads or from
    /// `spawn_blocking`).
    pub fn flush(&self) {
        if !self.live {
            return;
        }
        self.tracer_provider.force_flush().expect("span flush");
    }
}

/// The clients compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bare `reqwest::Client`.
    Bare,
    /// reqwest-middleware with `TracingMiddleware::default()` and `RetryTransientMiddleware`
    /// (`ExponentialBackoff`, 3 retries).
    TracingRetry,
    /// `GatewayMiddleware` with retries and metrics.
    Gateway,
    /// The same with no tracer provider given and no global one: the spans go through the
    /// subscriber's `tracing-opentelemetry` layer (the tracing-only set-up).
    GatewayTracingOnly,
}

pub const KINDS: [Kind; 4] = [
    Kind::Bare,
    Kind::TracingRetry,
    Kind::Gateway,
    Kind::GatewayTracingOnly,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare reqwest",
            Kind::TracingRetry => "reqwest-tracing + retry",
            Kind::Gateway => "llm-gateway-otel",
            Kind::GatewayTracingOnly => "llm-gateway-otel, tracing layer only",
        }
    }

    /// Spans each call exports.
    pub fn spans_per_call(self) -> u64 {
        match self {
            Kind::Bare => 0,
            Kind::TracingRetry => 1,
            // The call only: a single attempt has no span of its own (AttemptSpans::WhenRetried);
            // the tracing-only set-up records every attempt.
            Kind::Gateway => 1,
            Kind::GatewayTracingOnly => 2,
        }
    }
}

/// One client of one kind (each with its own connection pool).
pub enum Variant {
    Bare(reqwest::Client),
    Middleware(Kind, ClientWithMiddleware),
}

impl Variant {
    /// A client of `kind` recording (when it records) with `telemetry`'s providers.
    pub fn new(kind: Kind, server: SocketAddr, telemetry: &Telemetry) -> Variant {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client");
        match kind {
            Kind::Bare => Variant::Bare(client),
            Kind::TracingRetry => {
                let policy = reqwest_retry::policies::ExponentialBackoff::builder()
                    .build_with_max_retries(3);
                Variant::Middleware(
                    kind,
                    ClientBuilder::new(client)
                        .with(reqwest_tracing::TracingMiddleware::default())
                        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
                            policy,
                        ))
                        .build(),
                )
            }
            Kind::Gateway | Kind::GatewayTracingOnly => {
                // `BENCH_PACING=1`: pacing on (a window reserved before each call);
                // `BENCH_SHARED_QUOTA=redis://…` (built with `--features redis`): the window
                // and the retry budget shared through that Redis. See BENCHMARKS.md.
                let pacing = std::env::var_os("BENCH_PACING").is_some()
                    || std::env::var_os("BENCH_SHARED_QUOTA").is_some();
                let mut b = GatewayMiddleware::builder()
                    .gateway_host(server.to_string(), Region::US)
                    .retry(Retry::default().pacing(pacing));
                #[cfg(feature = "redis")]
                if let Ok(url) = std::env::var("BENCH_SHARED_QUOTA") {
                    b = b.shared_quota(llm_gateway_otel::retry::SharedQuota::new(url));
                }
                // `BENCH_NO_SPANS=1` / `BENCH_NO_METRICS=1` (diagnostics): a no-op tracer or
                // meter, so that the middleware's own work can be told from its recording
                // and exporting; see BENCHMARKS.md, "Where the time goes". The tracing-only
                // variant gets no provider: no global one is set, so its spans go through
                // the global subscriber's tracing-opentelemetry layer.
                if std::env::var_os("BENCH_NO_SPANS").is_some() {
                    b = b.tracer_provider(&opentelemetry::trace::noop::NoopTracerProvider::new())
                } else if kind == Kind::Gateway {
                    b = b.tracer_provider(&telemetry.tracer_provider)
                }
                if std::env::var_os("BENCH_NO_METRICS").is_none() {
                    b = b.meter(opentelemetry::metrics::MeterProvider::meter(
                        &telemetry.meter_provider,
                        llm_gateway_otel::names::TRACING_TARGET,
                    ));
                }
                let middleware = b.build().expect("middleware config");
                Variant::Middleware(kind, ClientBuilder::new(client).with(middleware).build())
            }
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Variant::Bare(_) => Kind::Bare,
            Variant::Middleware(kind, _) => *kind,
        }
    }

    /// One call, its body read to the end as a user would (`bytes()` for JSON,
    /// `bytes_stream()` for SSE). Fails unless the status is 200 and the body has the
    /// expected length.
    pub async fn call(
        &self,
        url: &str,
        workload: Workload,
        body: &Bytes,
        expected_len: usize,
    ) -> Result<CallTiming, String> {
        let started = Instant::now();
        let response = match self {
            Variant::Bare(c) => c
                .post(url)
                .header("authorization", API_KEY)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?,
            Variant::Middleware(_, c) => c
                .post(url)
                .header("authorization", API_KEY)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?,
        };
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("status {}", response.status()));
        }
        let head = started.elapsed();
        let mut first_chunk = None;
        let received = if workload.streamed() {
            let mut stream = response.bytes_stream();
            let mut n = 0;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                if first_chunk.is_none() && !chunk.is_empty() {
                    first_chunk = Some(started.elapsed());
                }
                n += chunk.len();
            }
            n
        } else {
            response.bytes().await.map_err(|e| e.to_string())?.len()
        };
        if received != expected_len {
            return Err(format!("body of {received} bytes, expected {expected_len}"));
        }
        let total = started.elapsed();
        idle_after_call();
        Ok(CallTiming {
            total,
            head,
            first_chunk,
        })
    }

    /// One call whose body is returned whole, for checks that the bytes arrive unchanged.
    pub async fn call_bytes(
        &self,
        url: &str,
        workload: Workload,
        body: &Bytes,
    ) -> Result<Vec<u8>, String> {
        let response = match self {
            Variant::Bare(c) => c
                .post(url)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?,
            Variant::Middleware(_, c) => c
                .post(url)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?,
        };
        if workload.streamed() {
            let mut out = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
            }
            Ok(out)
        } else {
            Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
        }
    }
}

/// `BENCH_IDLE_US=N`: after each call, spin N µs before the next (a diagnostic: it shows how
/// the server's wake-up latency grows when the client turns around more slowly, which is
/// most of the first-chunk difference at concurrency 1; see BENCHMARKS.md).
fn idle_after_call() {
    static IDLE: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    let idle = IDLE.get_or_init(|| {
        std::env::var("BENCH_IDLE_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros)
    });
    if let Some(idle) = *idle {
        let until = Instant::now() + idle;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

/// The URL of `workload` on the server.
pub fn url(server: SocketAddr, workload: Workload) -> String {
    format!("http://{server}{}", workload.path())
}

/// How long one call took.
#[derive(Debug, Clone, Copy)]
pub struct CallTiming {
    /// From sending to the end of the body.
    pub total: Duration,
    /// From sending to the response head (`send()` returned).
    pub head: Duration,
    /// For a stream: from sending to the first body bytes.
    pub first_chunk: Option<Duration>,
}

/// Runs `calls` calls of `workload` through `variant`, `concurrency` at a time, each task
/// running its share in sequence (or, with a deadline, until it passes). Returns every call's
/// timing; the first failure aborts.
pub async fn run(
    variant: Arc<Variant>,
    server: SocketAddr,
    workload: Workload,
    concurrency: usize,
    calls: usize,
    deadline: Option<Instant>,
    dispatch: Option<tracing::Dispatch>,
) -> Result<Vec<CallTiming>, String> {
    use tracing::instrument::WithSubscriber;
    let url: Arc<str> = url(server, workload).into();
    let body = request_body(workload);
    let expected = workload.body().len();
    let mut tasks = Vec::with_capacity(concurrency);
    for t in 0..concurrency {
        let share = calls / concurrency + usize::from(t < calls % concurrency);
        let (variant, url, body) = (Arc::clone(&variant), Arc::clone(&url), body.clone());
        let task = async move {
            let mut timings = Vec::with_capacity(share);
            let mut i = 0;
            while deadline.map_or(i < share, |d| Instant::now() < d) {
                timings.push(variant.call(&url, workload, &body, expected).await?);
                i += 1;
            }
            Ok::<_, String>(timings)
        };
        tasks.push(match &dispatch {
            Some(d) => tokio::spawn(task.with_subscriber(d.clone())),
            None => tokio::spawn(task),
        });
    }
    let mut all = Vec::with_capacity(calls);
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}
