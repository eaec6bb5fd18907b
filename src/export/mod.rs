//! Export: sets up OpenTelemetry trace, metric and log export from the standard `OTEL_*`
//! environment variables, installs the tracer and meter providers as the global ones (the
//! middleware records with them), and connects `tracing` to the same export (the
//! application's info-level `tracing` spans are exported too, and a gateway call made inside
//! one is its child; each call's log line becomes a log record correlated with its span),
//! returning a guard that flushes on drop.
//!
//! | variable | effect |
//! | --- | --- |
//! | `OTEL_SDK_DISABLED=true` | nothing is exported |
//! | `OTEL_TRACES_EXPORTER` | `otlp` (default), `console` (readable lines on stdout), `none` |
//! | `OTEL_METRICS_EXPORTER` | `otlp` (default), `none` (`console` exports no metrics) |
//! | `OTEL_LOGS_EXPORTER` | `otlp` (default; the application's INFO events too), `console` (one readable line per call on stdout), `json` (one JSON object per call on stdout: the troubleshooting page's log entry), `none` |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds between metric exports (default 60000) |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL`, `…_TRACES_PROTOCOL`, `…_METRICS_PROTOCOL`, `…_LOGS_PROTOCOL` | `grpc` (default) or `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT`, `…_TRACES_ENDPOINT`, `…_HEADERS`, `…_TIMEOUT` | read by `opentelemetry-otlp` |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the resource |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*` | read by the SDK |
//! | `RUST_LOG` | the console log filter (default `warn`); spans are exported whatever it says |
//!
//! gRPC goes through tonic; HTTP/protobuf through a blocking client (the async reqwest client
//! inside the SDK's batch thread panics with "no reactor running").

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{LogExporter, MetricExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::{LogBatch, LogExporter as SdkLogExporter, SdkLoggerProvider};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{
    SdkTracerProvider, SpanData, SpanExporter as SdkSpanExporter, SpanProcessor,
    TracerProviderBuilder,
};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

mod console;
mod log_lines;

pub use crate::rfc3339::rfc3339_utc;
pub use console::ConsoleExporter;
pub use log_lines::CallLineExporter;

/// How long [`TelemetryGuard::flush`], and the shutdown when the guard is dropped, may take
/// in all (traces, metrics and logs together) unless [`Init::export_deadline`] or
/// [`TelemetryGuard::with_deadline`] says otherwise.
pub const DEFAULT_EXPORT_DEADLINE: Duration = Duration::from_secs(3);

/// Why telemetry could not be set up.
#[derive(Debug)]
pub struct InitError(String);

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "telemetry setup failed: {}", self.0)
    }
}

impl std::error::Error for InitError {}

/// Telemetry that did not reach the collector: a flush or shutdown that failed or ran out of
/// time, or exports that failed since the last flush. The gateway calls themselves are never
/// affected.
#[derive(Debug, Clone)]
pub struct ExportError {
    message: String,
    timed_out: bool,
}

impl ExportError {
    /// Whether the flush or shutdown was abandoned at its deadline (what was not sent by then
    /// is dropped).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "telemetry export failed: {}", self.message)
    }
}

impl std::error::Error for ExportError {}

/// Keeps the exporters alive; flushes and shuts them down (within the guard's deadline,
/// [`DEFAULT_EXPORT_DEADLINE`] unless set) when dropped. Keep it in `main` for the life of the
/// program; at the end, [`shutdown`](Self::shutdown) says whether everything was exported.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let telemetry = llm_gateway_otel::init()?;
/// // … the program …
/// if let Err(e) = telemetry.shutdown(std::time::Duration::from_secs(2)) {
///     eprintln!("{e}"); // e.g. the collector did not answer in time
/// }
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard shuts the exporter down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    health: Arc<Health>,
    deadline: Duration,
}

impl TelemetryGuard {
    /// A guard over providers you built yourself (say, with [`Init::build_provider`] and
    /// [`Init::build_meter_provider`] for your own subscriber). Its flush and shutdown are
    /// bounded the same way; exports that failed between flushes are only seen by the guard
    /// [`Init::install`] returns.
    pub fn new(
        tracer_provider: Option<SdkTracerProvider>,
        meter_provider: Option<SdkMeterProvider>,
    ) -> TelemetryGuard {
        TelemetryGuard {
            provider: tracer_provider,
            meter_provider,
            logger_provider: None,
            health: Arc::default(),
            deadline: DEFAULT_EXPORT_DEADLINE,
        }
    }

    /// The logger provider this guard flushes and shuts down too (say, one from
    /// [`Init::build_logger_provider`]).
    pub fn with_logger_provider(mut self, provider: SdkLoggerProvider) -> TelemetryGuard {
        self.logger_provider = Some(provider);
        self
    }

    /// The logger provider, when log export is enabled.
    pub fn logger_provider(&self) -> Option<&SdkLoggerProvider> {
        self.logger_provider.as_ref()
    }

    /// How long [`flush`](Self::flush), and the shutdown when the guard is dropped, may take
    /// in all (default [`DEFAULT_EXPORT_DEADLINE`]).
    pub fn with_deadline(mut self, deadline: Duration) -> TelemetryGuard {
        self.deadline = deadline;
        self
    }

    /// The tracer provider, when export is enabled.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// The meter provider, when metric export is enabled (it is also the global one).
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// Exports every finished span and the current metrics now, waiting at most the guard's
    /// deadline for all of them together, whatever the collector does (refuses, never answers, is
    /// slow). `Err` when that did not work, or when an export failed since the last flush.
    /// It blocks the calling thread for up to the deadline: in async code, call it from
    /// `tokio::task::spawn_blocking`, or at the end of `main`.
    pub fn flush(&self) -> Result<(), ExportError> {
        let mut jobs: Vec<Job> = Vec::new();
        if let Some(p) = self.provider.clone() {
            jobs.push(("spans", Box::new(move |_| p.force_flush())));
        }
        if let Some(p) = self.meter_provider.clone() {
            jobs.push(("metrics", Box::new(move |_| p.force_flush())));
        }
        if let Some(p) = self.logger_provider.clone() {
            jobs.push(("logs", Box::new(move |_| p.force_flush())));
        }
        let result = run_within(jobs, self.deadline, "flush");
        self.health.take_failures(result)
    }

    /// Flushes and shuts the exporters down, waiting at most `timeout` in all (traces and
    /// metrics together). `Err` when that did not work, or when an export failed since the
    /// last flush.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), ExportError> {
        self.shutdown_all(timeout)
    }

    fn shutdown_all(&mut self, timeout: Duration) -> Result<(), ExportError> {
        // The SDK's periodic metric reader ignores the timeout it is given (it waits 5 s), and
        // an exporter stuck on a dead collector holds a shutdown as long as its own export
        // timeout: each shutdown runs on its own thread and is abandoned at the deadline.
        let mut jobs: Vec<Job> = Vec::new();
        if let Some(p) = self.provider.take() {
            jobs.push(("spans", Box::new(move |t| p.shutdown_with_timeout(t))));
        }
        if let Some(p) = self.meter_provider.take() {
            jobs.push(("metrics", Box::new(move |t| p.shutdown_with_timeout(t))));
        }
        if let Some(p) = self.logger_provider.take() {
            jobs.push(("logs", Box::new(move |t| p.shutdown_with_timeout(t))));
        }
        if jobs.is_empty() {
            return Ok(());
        }
        let result = run_within(jobs, timeout, "shutdown");
        self.health.take_failures(result)
    }
}

/// One signal's flush or shutdown, given the time it has left.
type Job = (
    &'static str,
    Box<dyn FnOnce(Duration) -> opentelemetry_sdk::error::OTelSdkResult + Send>,
);

/// Runs every job on a thread of its own and waits for all of them until `deadline` has
/// passed since the start; a job still running then is abandoned (its thread goes on, and
/// whatever it had not sent is lost).
fn run_within(jobs: Vec<Job>, deadline: Duration, what: &str) -> Result<(), ExportError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let pending = jobs.len();
    for (signal, job) in jobs {
        let tx = tx.clone();
        spawn_detached(move || {
            let _ = tx.send((signal, job(deadline)));
        });
    }
    let until = std::time::Instant::now() + deadline;
    let mut errors = Vec::new();
    let mut finished = 0;
    while finished < pending {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, Ok(()))) => finished += 1,
            Ok((signal, Err(e))) => {
                finished += 1;
                errors.push(format!("{signal} {what}: {e}"));
            }
            Err(_) => {
                return Err(ExportError {
                    message: format!(
                        "{what} did not finish within {deadline:?}; what was not sent by then is dropped"
                    ),
                    timed_out: true,
                })
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ExportError {
            message: errors.join("; "),
            timed_out: false,
        })
    }
}

/// Runs `f` on a detached thread (a flush or shutdown that may outlive its deadline).
fn spawn_detached(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .name("otel-shutdown".into())
        .spawn(f)
    {
        tracing::warn!(target: crate::names::TRACING_TARGET, "could not start the shutdown thread: {e}");
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_all(self.deadline) {
            tracing::warn!(target: crate::names::TRACING_TARGET, "{e}");
        }
    }
}

/// What the exporters [`Init`] builds saw since the last flush: how many exports failed, and
/// the last error.
#[derive(Debug, Default)]
struct Health {
    failures: std::sync::Mutex<(u64, Option<String>)>,
}

impl Health {
    fn record(&self, signal: &str, result: &opentelemetry_sdk::error::OTelSdkResult) {
        if let Err(e) = result {
            if let Ok(mut f) = self.failures.lock() {
                f.0 += 1;
                f.1 = Some(format!("{signal} export: {e}"));
            }
        }
    }

    /// `result`, or the exports that failed since the last call when `result` is `Ok`.
    fn take_failures(&self, result: Result<(), ExportError>) -> Result<(), ExportError> {
        let taken = self
            .failures
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default();
        let failed = match taken {
            (0, _) => None,
            (n, last) => Some(format!(
                "{n} export(s) failed since the last flush, the last with {}",
                last.unwrap_or_default()
            )),
        };
        match (result, failed) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(failed)) => Err(ExportError {
                message: failed,
                timed_out: false,
            }),
            (Err(e), None) => Err(e),
            (Err(e), Some(failed)) => Err(ExportError {
                message: format!("{}; {failed}", e.message),
                timed_out: e.timed_out,
            }),
        }
    }
}

/// An exporter whose failed exports are counted in a [`Health`].
#[derive(Debug)]
struct Watched<E> {
    inner: E,
    health: Arc<Health>,
}

impl<E: SdkSpanExporter> SdkSpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.health.record("span", &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: SdkLogExporter> SdkLogExporter for Watched<E> {
    async fn export(&self, batch: LogBatch<'_>) -> opentelemetry_sdk::error::OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.health.record("log", &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Watched<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.health.record("metric", &result);
        result
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// Sets up export from the `OTEL_*` environment and installs a global `tracing` subscriber
/// (OpenTelemetry layer + a `fmt` layer on stderr filtered by `RUST_LOG`).
///
/// ```no_run
/// let _guard = llm_gateway_otel::init().expect("telemetry");
/// ```
pub fn init() -> Result<TelemetryGuard, InitError> {
    Init::from_env().install()
}

/// The runtime the gRPC exporters' connections live on: one worker thread of our own, for the
/// life of the process. tonic needs a Tokio runtime to build a channel and to drive it; the
/// caller's may not exist yet (a sync `main`), or may be a current-thread runtime that is
/// blocked exactly when the last spans are flushed at shutdown.
fn in_export_runtime<T>(build: impl FnOnce() -> T) -> T {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otel-export")
            .enable_all()
            .build()
            .ok()
    });
    match runtime {
        Some(rt) => {
            let _entered = rt.enter();
            build()
        }
        // No thread could be started: build in the caller's runtime, if any.
        None => build(),
    }
}

type AddProcessor = Box<dyn FnOnce(TracerProviderBuilder) -> TracerProviderBuilder>;

/// Where spans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exporter {
    OtlpGrpc,
    OtlpHttp,
    Console,
    /// Logs only: the call lines as JSON objects on stdout.
    Json,
    None,
}

/// A configurable version of [`init`].
///
/// ```no_run
/// use llm_gateway_otel::export::Init;
/// let _guard = Init::from_env().service_name("billing-worker").install().unwrap();
/// ```
pub struct Init {
    exporter: Result<Exporter, String>,
    metrics_exporter: Result<Exporter, String>,
    logs_exporter: Result<Exporter, String>,
    service_name: Option<String>,
    endpoint: Option<String>,
    timeout: Option<Duration>,
    processors: Vec<AddProcessor>,
    health: Arc<Health>,
    deadline: Duration,
}

impl Init {
    /// Reads `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER` and the OTLP protocol variables.
    pub fn from_env() -> Init {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_ascii_lowercase())
        };
        let disabled = var("OTEL_SDK_DISABLED").as_deref() == Some("true");
        let choose = |kind_var: &str, protocol_var: &str| {
            if disabled {
                return Ok(Exporter::None);
            }
            let kind = var(kind_var).unwrap_or_else(|| "otlp".into());
            let protocol = var(protocol_var)
                .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .unwrap_or_else(|| "grpc".into());
            exporter_from(kind_var, &kind, &protocol)
        };
        Init {
            exporter: choose("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            metrics_exporter: choose(
                "OTEL_METRICS_EXPORTER",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            ),
            logs_exporter: choose("OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"),
            service_name: None,
            endpoint: None,
            timeout: None,
            processors: Vec::new(),
            health: Arc::default(),
            deadline: DEFAULT_EXPORT_DEADLINE,
        }
    }

    /// How long the guard's [`flush`](TelemetryGuard::flush), and its shutdown when dropped,
    /// may take in all, traces, metrics and logs together (default [`DEFAULT_EXPORT_DEADLINE`]).
    /// A collector that does not answer costs this much at exit, never more.
    pub fn export_deadline(mut self, deadline: Duration) -> Init {
        self.deadline = deadline;
        self
    }

    /// Wraps an exporter so that its failures reach the guard.
    fn watched<E>(&self, inner: E) -> Watched<E> {
        Watched {
            inner,
            health: Arc::clone(&self.health),
        }
    }

    /// Export spans as readable blocks and each call's log line as one readable line to
    /// stdout instead of OTLP (and no metrics).
    /// An `OTEL_LOGS_EXPORTER` set in the environment is kept.
    pub fn console(mut self) -> Init {
        self.exporter = Ok(Exporter::Console);
        self.metrics_exporter = Ok(Exporter::None);
        if std::env::var_os("OTEL_LOGS_EXPORTER").is_none() {
            self.logs_exporter = Ok(Exporter::Console);
        }
        self
    }

    /// `service.name` of the resource, unless `OTEL_SERVICE_NAME` says otherwise.
    pub fn service_name(mut self, name: impl Into<String>) -> Init {
        self.service_name = Some(name.into());
        self
    }

    /// The OTLP endpoint (`http://host:4317` for gRPC; the base URL for HTTP, to which
    /// `/v1/traces` and `/v1/metrics` are added), instead of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Init {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// How long one OTLP export may take before it is abandoned, instead of
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (default 10 s). Exports run off the request path: a slow
    /// or dead collector costs dropped telemetry, never a failed or slower gateway call.
    pub fn otlp_timeout(mut self, timeout: Duration) -> Init {
        self.timeout = Some(timeout);
        self
    }

    /// Applies the endpoint and timeout set in code to an exporter builder.
    fn configure<B: WithExportConfig>(&self, builder: B, signal_path: &str) -> B {
        let builder = match &self.endpoint {
            Some(e) if signal_path.is_empty() => builder.with_endpoint(e.clone()),
            Some(e) => builder.with_endpoint(format!("{}{signal_path}", e.trim_end_matches('/'))),
            None => builder,
        };
        match self.timeout {
            Some(t) => builder.with_timeout(t),
            None => builder,
        }
    }

    /// Adds a span processor beside the exporter (say, one that collects spans for a report).
    pub fn with_span_processor(mut self, processor: impl SpanProcessor + 'static) -> Init {
        self.processors
            .push(Box::new(move |b| b.with_span_processor(processor)));
        self
    }

    fn resource(&self) -> Resource {
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            if let Some(name) = &self.service_name {
                resource = resource.with_service_name(name.clone());
            }
        }
        resource.build()
    }

    /// Builds the meter provider (`None` when metric export is off) without installing it.
    pub fn build_meter_provider(&self) -> Result<Option<SdkMeterProvider>, InitError> {
        let exporter = match self.metrics_exporter.clone().map_err(InitError)? {
            Exporter::OtlpGrpc => in_export_runtime(|| {
                self.configure(MetricExporter::builder().with_tonic(), "")
                    .build()
            }),
            Exporter::OtlpHttp => self
                .configure(MetricExporter::builder().with_http(), "/v1/metrics")
                .build(),
            Exporter::Console | Exporter::Json | Exporter::None => return Ok(None),
        }
        .map_err(|e| InitError(format!("OTLP metric exporter: {e}")))?;
        let exporter = self.watched(exporter);
        Ok(Some(
            SdkMeterProvider::builder()
                .with_resource(self.resource())
                .with_periodic_exporter(exporter)
                .build(),
        ))
    }

    /// Builds the logger provider (`None` when log export is off) without installing it:
    /// OTLP, or the call lines on stdout (`console`: readable, `json`: one JSON object each).
    pub fn build_logger_provider(&self) -> Result<Option<SdkLoggerProvider>, InitError> {
        let builder = SdkLoggerProvider::builder().with_resource(self.resource());
        let provider = match self.logs_exporter.clone().map_err(InitError)? {
            Exporter::OtlpGrpc => builder.with_batch_exporter(
                self.watched(
                    in_export_runtime(|| {
                        self.configure(LogExporter::builder().with_tonic(), "")
                            .build()
                    })
                    .map_err(|e| InitError(format!("OTLP log exporter: {e}")))?,
                ),
            ),
            Exporter::OtlpHttp => builder.with_batch_exporter(
                self.watched(
                    self.configure(LogExporter::builder().with_http(), "/v1/logs")
                        .build()
                        .map_err(|e| InitError(format!("OTLP log exporter: {e}")))?,
                ),
            ),
            Exporter::Console => {
                builder.with_simple_exporter(self.watched(CallLineExporter::readable()))
            }
            Exporter::Json => builder.with_simple_exporter(self.watched(CallLineExporter::json())),
            Exporter::None => return Ok(None),
        };
        Ok(Some(provider.build()))
    }

    /// Builds the tracer provider without installing anything.
    pub fn build_provider(self) -> Result<SdkTracerProvider, InitError> {
        let exporter = self.exporter.clone().map_err(InitError)?;
        let mut builder = SdkTracerProvider::builder().with_resource(self.resource());
        builder = match exporter {
            Exporter::OtlpGrpc => builder.with_batch_exporter(
                self.watched(
                    in_export_runtime(|| {
                        self.configure(SpanExporter::builder().with_tonic(), "")
                            .build()
                    })
                    .map_err(|e| InitError(format!("OTLP gRPC exporter: {e}")))?,
                ),
            ),
            Exporter::OtlpHttp => builder.with_batch_exporter(
                self.watched(
                    self.configure(SpanExporter::builder().with_http(), "/v1/traces")
                        .build()
                        .map_err(|e| InitError(format!("OTLP HTTP exporter: {e}")))?,
                ),
            ),
            Exporter::Console => builder.with_simple_exporter(self.watched(ConsoleExporter)),
            Exporter::Json | Exporter::None => builder,
        };
        for add in self.processors {
            builder = add(builder);
        }
        Ok(builder.build())
    }

    /// Builds the providers, installs the global `tracing` subscriber and makes the tracer
    /// and meter providers the global ones (build the middleware after this, so that it
    /// finds the meter).
    pub fn install(self) -> Result<TelemetryGuard, InitError> {
        let health = Arc::clone(&self.health);
        let deadline = self.deadline;
        let logs_to_otlp = matches!(
            self.logs_exporter,
            Ok(Exporter::OtlpGrpc | Exporter::OtlpHttp)
        );
        let logs_to_stdout = matches!(self.logs_exporter, Ok(Exporter::Console | Exporter::Json));
        let meter_provider = self.build_meter_provider()?;
        let logger_provider = self.build_logger_provider()?;
        let provider = self.build_provider()?;
        let tracer = provider.tracer(crate::names::TRACING_TARGET);
        // Source locations, thread ids, targets and busy/idle times are noise on a span that
        // describes a network call; the attributes the middleware writes are what matter.
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(EnvFilter::new("info"));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // The call lines are on stdout already when the logs exporter prints them.
                EnvFilter::new(if logs_to_stdout {
                    "warn,llm_gateway_otel::call=off"
                } else {
                    "warn"
                })
            }));
        // OTLP takes the application's INFO events too (as the span layer takes its INFO
        // spans), never the export stack's own (an export error must not become a log record
        // to export); the stdout modes print the call lines only.
        let logs = logger_provider.as_ref().map(|p| {
            let filter = if logs_to_otlp {
                EnvFilter::new(
                    "info,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
                     tonic=off,h2=off,hyper=off,hyper_util=off,reqwest=off,tower=off",
                )
            } else {
                EnvFilter::new(format!("warn,{}=info", crate::names::TRACING_TARGET))
            };
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(p)
                .with_filter(filter)
        });
        tracing_subscriber::registry()
            .with(otel)
            .with(fmt)
            .with(logs)
            .try_init()
            .map_err(|e| InitError(format!("a global tracing subscriber is already set: {e}")))?;
        opentelemetry::global::set_tracer_provider(provider.clone());
        if let Some(m) = &meter_provider {
            opentelemetry::global::set_meter_provider(m.clone());
        }
        Ok(TelemetryGuard {
            provider: Some(provider),
            meter_provider,
            logger_provider,
            health,
            deadline,
        })
    }
}

fn exporter_from(variable: &str, kind: &str, protocol: &str) -> Result<Exporter, String> {
    let first = kind.split(',').next().unwrap_or("").trim();
    match (first, protocol) {
        ("none", _) => Ok(Exporter::None),
        ("console", _) => Ok(Exporter::Console),
        ("json", _) if variable == "OTEL_LOGS_EXPORTER" => Ok(Exporter::Json),
        ("otlp" | "", "grpc") => Ok(Exporter::OtlpGrpc),
        ("otlp" | "", "http/protobuf") => Ok(Exporter::OtlpHttp),
        ("otlp" | "", other) => Err(format!(
            "OTLP protocol {other:?} is not supported (use grpc or http/protobuf)"
        )),
        (other, _) => Err(format!(
            "{variable}={other:?} is not supported (use otlp, console or none)"
        )),
    }
}
