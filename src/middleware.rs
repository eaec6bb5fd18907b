//! The middleware and its builder: which calls are observed, the parts each call goes
//! through (the recorder, the retrier, the body observer), and the configuration, checked at
//! [`GatewayMiddlewareBuilder::build`], never at call time. Nothing in the crate imports this
//! module; it imports the parts.

use std::sync::Arc;

use http::Extensions;
use reqwest_middleware::{Middleware, Next};

use crate::call::CallRecorder;
use crate::content::{
    ContentCapture, DEFAULT_MAX_CONTENT_BYTES, MAX_CAPTURED_RESPONSE, MAX_CONTENT_BYTES,
};
use crate::diagnose::catalog::ModelCatalog;
use crate::diagnose::{self, Finding, PreflightMode, Severity};
use crate::error::ConfigError;
use crate::observe::{self, Limits};
use crate::price::Prices;
use crate::region::{Region, RegionMap};
use crate::request::{GatewayMatcher, RequestFacts, RequestMatcher};
use crate::retry::{self, Retrier, Retry};
use crate::telemetry::log::CallLog;
use crate::telemetry::metrics::MetricsSource;
use crate::telemetry::{AttemptSpans, Telemetry, TracerSource};

/// Default cap on the error body recorded on a span: the first 8 KiB.
pub const DEFAULT_ERROR_BODY_LIMIT: usize = 8 * 1024;

/// Largest error-body limit accepted (the error body is read ahead up to the limit).
pub const MAX_ERROR_BODY_LIMIT: usize = 1024 * 1024;

/// Default cap on the distinct model names each instrument labels (past it: `_other`).
pub const DEFAULT_MAX_MODEL_LABELS: usize = 100;

/// Largest cap accepted on the distinct model names labelled.
const MAX_MODEL_LABELS: usize = 10_000;

/// The global meter provider's meter for this crate, as it is at `build()` (the shared-quota
/// counter's; the call metrics follow the global provider, see `MetricsSource`).
#[cfg(feature = "redis")]
fn default_meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter(crate::names::TRACING_TARGET)
}

/// The middleware: add it to a `reqwest_middleware::ClientBuilder`. Calls that the matcher
/// does not select pass through untouched.
///
/// Spans are recorded with the provider given to
/// [`GatewayMiddlewareBuilder::tracer_provider`], else the global tracer provider (which
/// `init()` sets), else the current subscriber's `tracing-opentelemetry` layer; as children of
/// the current OpenTelemetry context (with `tracing-opentelemetry`, the entered `tracing`
/// span). With none of them, calls work and one warning per process names the fix. Metrics
/// go to the global meter provider or [`GatewayMiddlewareBuilder::meter`]. The default
/// retries 429, 408, 5xx, timeouts and connect errors ([`Retry::default`]).
///
/// ```
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(llm_gateway_otel::GatewayMiddleware::default())
///     .build();
/// ```
#[derive(Clone)]
pub struct GatewayMiddleware {
    /// Which calls are gateway calls.
    matcher: Arc<dyn RequestMatcher>,
    /// The region label of each host.
    regions: Arc<RegionMap>,
    /// Where spans and metrics go.
    telemetry: Arc<Telemetry>,
    /// Retries and fallbacks (`None` with [`Retry::disabled`]).
    retrier: Option<Arc<Retrier>>,
    preflight: PreflightMode,
    /// The `/v1/models` lookup for 404s, when allowed.
    catalog: Option<Arc<ModelCatalog>>,
    /// How much of a non-2xx body is read ahead.
    error_body_limit: usize,
}

impl Default for GatewayMiddleware {
    /// The gateway's own hosts, retries on ([`Retry::default`]), pre-flight warnings,
    /// the global meter and tracer providers, the rate table `LLM_GATEWAY_PRICES` names and
    /// the content capture `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` asks for.
    ///
    /// # Panics
    /// When one of those two variables is wrong (an unreadable or invalid rate table, an
    /// unknown capture mode): the message says which and why. Use
    /// `GatewayMiddleware::builder().build()` to handle that error instead.
    fn default() -> Self {
        match GatewayMiddlewareBuilder::default().build() {
            Ok(middleware) => middleware,
            Err(e) => panic!("{e}"),
        }
    }
}

impl GatewayMiddleware {
    /// Configure the middleware; see [`GatewayMiddlewareBuilder`].
    pub fn builder() -> GatewayMiddlewareBuilder {
        GatewayMiddlewareBuilder::default()
    }
}

#[async_trait::async_trait]
impl Middleware for GatewayMiddleware {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if !self.matcher.matches(&req) {
            return next.run(req, extensions).await;
        }
        let facts = Arc::new(RequestFacts::read(&req, &self.regions));
        let mut call = CallRecorder::start(&self.telemetry, facts, &req, extensions);
        if let Some(rejected) = self.preflight(&call) {
            return Err(call.rejected(rejected));
        }
        let sent = match &self.retrier {
            Some(retrier) => retrier.send(&call, req, extensions, next).await,
            None => retry::send_once(&call, req, extensions, next).await,
        };
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                call.transport_failed(&err);
                return Err(err);
            }
        };
        call.head(&response);
        if let Some(catalog) = &self.catalog {
            let status = response.status().as_u16();
            call.set_region_models(catalog.for_not_found(call.facts(), status).await);
        }
        let report = call.report().clone();
        let facts = Arc::clone(call.facts());
        let started = call.started();
        let limits = Limits {
            error_body: self.error_body_limit,
            content: self
                .telemetry
                .content
                .is_on()
                .then_some(MAX_CAPTURED_RESPONSE),
        };
        let on_end = move |outcome| call.finished(outcome);
        let mut response = observe::observe(response, facts, started, limits, on_end).await;
        response.extensions_mut().insert(report);
        Ok(response)
    }
}

impl GatewayMiddleware {
    /// Pre-flight checks before the request leaves: findings go on the call's span and into
    /// its report; with [`PreflightMode::FailFast`], those the gateway would reject are
    /// returned, and the request is not sent.
    fn preflight(&self, call: &CallRecorder) -> Option<Vec<Finding>> {
        if self.preflight == PreflightMode::Off {
            return None;
        }
        let findings = diagnose::preflight(call.facts());
        if findings.is_empty() {
            return None;
        }
        call.preflight(&findings);
        if self.preflight != PreflightMode::FailFast {
            return None;
        }
        let rejected: Vec<Finding> = findings
            .into_iter()
            .filter(|f| f.severity == Severity::Reject)
            .collect();
        (!rejected.is_empty()).then_some(rejected)
    }
}

/// Builds a [`GatewayMiddleware`].
///
/// ```
/// use llm_gateway_otel::{GatewayMiddleware, Region};
/// // A simulator or proxy on another host: match it and label its region.
/// let middleware = GatewayMiddleware::builder()
///     .gateway_host("127.0.0.1:8080", Region::EU)
///     .error_body_limit(4096)
///     .build()
///     .unwrap();
/// ```
#[derive(Default)]
pub struct GatewayMiddlewareBuilder {
    matcher: Option<Box<dyn RequestMatcher>>,
    hosts: GatewayMatcher,
    regions: RegionMap,
    error_body_limit: Option<usize>,
    meter: Option<opentelemetry::metrics::Meter>,
    tracer: TracerSource,
    retry: Retry,
    call_log: CallLog,
    attempt_spans: AttemptSpans,
    preflight: PreflightMode,
    lookup_region_models: bool,
    prices: Option<Prices>,
    content: Option<ContentCapture>,
    max_content_bytes: Option<usize>,
    max_model_labels: Option<usize>,
    #[cfg(feature = "redis")]
    shared_quota: Option<retry::SharedQuota>,
}

impl GatewayMiddlewareBuilder {
    /// Treat `host` (`"host"` or `"host:port"`) as a gateway: its chat-completions calls are
    /// observed and recorded with `region`. For proxies and local simulators.
    pub fn gateway_host(mut self, host: impl Into<String>, region: Region) -> Self {
        let host = host.into();
        self.hosts = self.hosts.with_host(host.clone());
        self.regions.insert(host, region);
        self
    }

    /// The region recorded for a host (`"host"` or `"host:port"`) without changing what is
    /// matched.
    pub fn region_for_host(mut self, host: impl Into<String>, region: Region) -> Self {
        self.regions.insert(host.into(), region);
        self
    }

    /// The region recorded for hosts that are neither the gateway's own nor configured
    /// (default `unknown`).
    pub fn default_region(mut self, region: Region) -> Self {
        self.regions.set_default(region);
        self
    }

    /// Replace the matcher that decides which calls are observed (this also replaces the
    /// hosts added with [`gateway_host`](Self::gateway_host)).
    pub fn matcher(mut self, matcher: impl RequestMatcher) -> Self {
        self.matcher = Some(Box::new(matcher));
        self
    }

    /// How many bytes of a non-2xx body are read ahead and recorded (after redaction) as
    /// `llm_gateway.error.body`; default [`DEFAULT_ERROR_BODY_LIMIT`], at most 1 MiB.
    pub fn error_body_limit(mut self, bytes: usize) -> Self {
        self.error_body_limit = Some(bytes);
        self
    }

    /// The meter the metric instruments are created from. Default: the global meter
    /// provider's, followed: a provider the application sets after [`build`](Self::build)
    /// (a client made before `init()`) is picked up within a second, and kept.
    pub fn meter(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The tracer provider the spans are recorded with. Without it: the global tracer
    /// provider (which `init()` sets) once the application has set one, else the current
    /// subscriber's `tracing-opentelemetry` layer (the spans then start as INFO `tracing`
    /// spans of target `llm_gateway_otel`, which the subscriber's filter must let through),
    /// looked up at each call until found. Their parent is the current OpenTelemetry context,
    /// which `tracing-opentelemetry` sets to the entered `tracing` span.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// let provider = SdkTracerProvider::builder().build();
    /// let middleware = llm_gateway_otel::GatewayMiddleware::builder()
    ///     .tracer_provider(&provider)
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: opentelemetry::trace::TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = TracerSource::from_provider(provider);
        self
    }

    /// How 429s, 408s, 5xx, timeouts and connect errors are retried, and which fallback
    /// models are tried. On by default ([`Retry::default`]: 3 attempts per model, server
    /// hints honoured up to 30 s, a retry budget); [`Retry::disabled`] sends every call once.
    ///
    /// ```
    /// use llm_gateway_otel::{retry::Retry, GatewayMiddleware};
    /// // Every call is sent exactly once; a 429 or a 503 reaches the caller as it is.
    /// let middleware = GatewayMiddleware::builder()
    ///     .retry(Retry::disabled())
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Which finished calls get a log line (one `tracing` event of target `llm_gateway_otel`
    /// with the troubleshooting page's fields: `timestamp`, `region`, `model`, `status_code`,
    /// `request_id`, `error`, and `duration_ms`, `attempts`, `cause`, token counts,
    /// `trace_id`, `span_id`), and at which level. Default: INFO for a success, WARN for a
    /// failure; [`CallLog::off`] for none.
    pub fn call_log(mut self, log: CallLog) -> Self {
        self.call_log = log;
        self
    }

    /// When a `POST` span is recorded for an HTTP attempt: only for calls that needed more
    /// than one attempt ([`AttemptSpans::WhenRetried`], the default: a single-attempt call
    /// exports one span, the call's), or for every attempt ([`AttemptSpans::Always`]).
    ///
    /// ```
    /// use llm_gateway_otel::{AttemptSpans, GatewayMiddleware};
    /// let middleware = GatewayMiddleware::builder()
    ///     .attempt_spans(AttemptSpans::Always)
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn attempt_spans(mut self, spans: AttemptSpans) -> Self {
        self.attempt_spans = spans;
        self
    }

    /// What to do with pre-flight findings (checks run before a request leaves): record them
    /// as span events ([`PreflightMode::Warn`], the default), also refuse to send what the
    /// gateway would reject ([`PreflightMode::FailFast`]), or nothing ([`PreflightMode::Off`],
    /// e.g. behind a proxy that adds the key itself).
    pub fn preflight(mut self, mode: PreflightMode) -> Self {
        self.preflight = mode;
        self
    }

    /// On a 404, allow one `GET /v1/models` per gateway host (cached for the middleware's
    /// life, failures too) to tell a misspelled model ("did you mean …?") from one not served
    /// in the region. Off by default: the diagnosis then relies on what it knows statically
    /// (OpenAI models are US-only). The lookup uses a plain client of the middleware's own,
    /// with a 3 s timeout, and delays the first 404 of each host by its duration.
    pub fn lookup_region_models(mut self, allow: bool) -> Self {
        self.lookup_region_models = allow;
        self
    }

    /// The account's rate table: each call's cost goes on its span
    /// (`llm_gateway.usage.cost_usd`) and into a counter of USD by model, region and token
    /// type. Without it, the file `LLM_GATEWAY_PRICES` names is read at
    /// [`build`](Self::build) (a bad file fails the build); with neither, no cost is recorded.
    ///
    /// ```
    /// use llm_gateway_otel::{GatewayMiddleware, Prices, Rates};
    /// let middleware = GatewayMiddleware::builder()
    ///     .prices(Prices::new().model("claude-sonnet-4-6", Rates::new(3.0, 15.0).cache_read(0.3)))
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn prices(mut self, prices: Prices) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Whether prompts and answers are recorded (off by default; see [`ContentCapture`]).
    /// Without it, `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is read at
    /// [`build`](Self::build) (an unknown value fails the build).
    pub fn capture_content(mut self, capture: ContentCapture) -> Self {
        self.content = Some(capture);
        self
    }

    /// The bound of each captured content attribute, in bytes (default 16 KiB, at most
    /// 1 MiB); longer content is cut, the cut marked.
    pub fn max_content_bytes(mut self, bytes: usize) -> Self {
        self.max_content_bytes = Some(bytes);
        self
    }

    /// How many distinct model names each metric instrument labels (default 100, at most
    /// 10 000; 0 labels every model `_other`): model names come from request bodies, so a
    /// client sending junk names would create a series per name. Past the cap the label is
    /// `_other`; spans keep the real name. Names the gateway has not answered with a 2xx take
    /// at most half of the slots, so junk names cannot keep real models out: a real model
    /// that arrives when those are taken is `_other` on its first attempt only.
    ///
    /// ```
    /// let middleware = llm_gateway_otel::GatewayMiddleware::builder()
    ///     .max_model_labels(20)
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn max_model_labels(mut self, models: usize) -> Self {
        self.max_model_labels = Some(models);
        self
    }

    /// Shares the pacing windows (with [`Retry::pacing`] on) and the retry budget with every
    /// replica through a Redis or Valkey server (feature `redis`): a replica reserves a slot
    /// of its model's window from the store every replica sees before it sends, and the
    /// retries of all of them stay within the budget's share. Redis away, slow or
    /// misconfigured never fails or stalls a call: after at most the store's timeout the call
    /// uses this process's state, says so on its span, and the store is tried again a second
    /// later.
    ///
    /// ```
    /// use llm_gateway_otel::retry::{Retry, SharedQuota};
    /// let middleware = llm_gateway_otel::GatewayMiddleware::builder()
    ///     .retry(Retry::default().pacing(true))
    ///     .shared_quota(SharedQuota::new("redis://127.0.0.1:6379"))
    ///     .build()
    ///     .unwrap();
    /// ```
    #[cfg(feature = "redis")]
    pub fn shared_quota(mut self, shared: retry::SharedQuota) -> Self {
        self.shared_quota = Some(shared);
        self
    }

    /// Checks the configuration and builds the middleware.
    pub fn build(self) -> Result<GatewayMiddleware, ConfigError> {
        let error_body_limit = bounded_setting(
            "error_body_limit",
            self.error_body_limit,
            DEFAULT_ERROR_BODY_LIMIT,
            0..=MAX_ERROR_BODY_LIMIT,
        )?;
        let max_content_bytes = bounded_setting(
            "max_content_bytes",
            self.max_content_bytes,
            DEFAULT_MAX_CONTENT_BYTES,
            64..=MAX_CONTENT_BYTES,
        )?;
        let max_model_labels = bounded_setting(
            "max_model_labels",
            self.max_model_labels,
            DEFAULT_MAX_MODEL_LABELS,
            0..=MAX_MODEL_LABELS,
        )?;
        self.retry.validate()?;
        let prices = match self.prices {
            Some(prices) => {
                prices.validate()?;
                prices
            }
            None => Prices::from_env()?.unwrap_or_default(),
        };
        let content = match self.content {
            Some(content) => content,
            None => ContentCapture::from_env()?,
        };
        let matcher: Arc<dyn RequestMatcher> = match self.matcher {
            Some(matcher) => Arc::from(matcher),
            None => Arc::new(self.hosts),
        };
        let metrics = match &self.meter {
            Some(meter) => MetricsSource::given(meter, max_model_labels),
            None => MetricsSource::global(max_model_labels),
        };
        #[cfg(feature = "redis")]
        let meter = self.meter.clone().unwrap_or_else(default_meter);
        #[cfg(feature = "redis")]
        let pacing = self.retry.pacing;
        let retrier = self.retry.enabled().then(|| Retrier::new(self.retry));
        #[cfg(feature = "redis")]
        let retrier = match (retrier, &self.shared_quota) {
            (Some(retrier), Some(shared)) => {
                if !pacing {
                    tracing::warn!(
                        target: crate::names::TRACING_TARGET,
                        "shared_quota without Retry::pacing(true): only the retry budget is shared, not the rate-limit windows"
                    );
                }
                let unavailable = meter
                    .u64_counter(crate::names::METRIC_SHARED_QUOTA_UNAVAILABLE)
                    .with_description(
                        "Operations on the shared quota store that failed or were skipped (the call used its local state)",
                    )
                    .build();
                Some(retrier.with_shared(shared, unavailable)?)
            }
            (None, Some(_)) => return Err(ConfigError::new(
                "shared_quota needs retries on: Retry::disabled() has no pacing or budget to share"
                    .to_owned(),
            )),
            (retrier, None) => retrier,
        };
        Ok(GatewayMiddleware {
            matcher,
            regions: Arc::new(self.regions),
            telemetry: Arc::new(Telemetry {
                tracer: self.tracer,
                attempt_spans: self.attempt_spans,
                metrics,
                log: self.call_log,
                prices,
                content,
                max_content_bytes,
            }),
            retrier: retrier.map(Arc::new),
            preflight: self.preflight,
            catalog: self
                .lookup_region_models
                .then(|| Arc::new(ModelCatalog::new())),
            error_body_limit,
        })
    }
}

/// A size setting: `value` when given, else `default`; outside `range` it is a build error
/// that names it.
fn bounded_setting(
    name: &str,
    value: Option<usize>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        return Ok(value);
    }
    let (low, high) = (range.start(), range.end());
    Err(ConfigError::new(if *low == 0 {
        format!("{name} {value} is over the maximum {high}")
    } else {
        format!("{name} {value} is not between {low} and {high}")
    }))
}
