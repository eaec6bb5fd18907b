//! # llm-gateway-otel
//!
//! Makes every call to an LLM gateway (AssemblyAI's LLM Gateway first) observable: a
//! [`reqwest_middleware`] middleware that turns each chat-completions call into an
//! OpenTelemetry span with the gateway's `request_id`, the model requested and served, the
//! region, token usage, rate-limit headers, and on failure the (redacted) error body.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = llm_gateway_otel::init()?; // OTLP export from OTEL_* variables
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(llm_gateway_otel::GatewayMiddleware::default())
//!     .build();
//! let response = client
//!     .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
//!     .header("authorization", std::env::var("ASSEMBLYAI_API_KEY")?)
//!     .header("content-type", "application/json")
//!     .body(r#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}]}"#)
//!     .send()
//!     .await?;
//! let body = response.text().await?; // the span ends when the body has been read
//! # Ok(()) }
//! ```
//!
//! One call flows: [`request`] reads what the call is → the attempt is sent under its own
//! span → [`observe`] watches the body as it passes → [`classify`] decides what the outcome
//! was → [`telemetry`] records it.

pub mod classify;
pub mod names;
mod config;
pub mod diagnose;
mod error;
#[cfg(feature = "export")]
pub mod export;
pub mod observe;
mod outcome;
pub mod parse;
pub mod ratelimit;
pub mod redact;
pub mod region;
pub mod report;
pub mod request;
pub mod retry;
mod rfc3339;
pub mod telemetry;
mod text;

use std::sync::Arc;
use std::time::Instant;

use http::Extensions;
use reqwest_middleware::{Middleware, Next};

pub use config::{GatewayMiddlewareBuilder, DEFAULT_ERROR_BODY_LIMIT};
pub use error::ConfigError;
pub use diagnose::{Cause, Diagnosis, PreflightMode};
#[cfg(feature = "export")]
pub use export::{init, TelemetryGuard};
pub use region::Region;
pub use report::{AttemptRecord, PreflightError, ReportHandle, ReportSlot, SupportReport, SupportReportExt};
pub use request::{GatewayMatcher, RequestFacts, RequestMatcher};


use config::Config;
use request::RequestFacts as Facts;

/// The middleware: add it to a `reqwest_middleware::ClientBuilder`. Calls that the matcher
/// does not select pass through untouched.
///
/// Spans are recorded with the provider given to
/// [`GatewayMiddlewareBuilder::tracer_provider`], else the global tracer provider (which
/// `init()` sets), else the current subscriber's `tracing-opentelemetry` layer; as children of
/// the current OpenTelemetry context (with `tracing-opentelemetry`, the entered `tracing`
/// span). With none of them, calls work and one warning per process names the fix. Metrics
/// go to the global meter provider or [`GatewayMiddlewareBuilder::meter`]. The default
/// retries 429, 408, 5xx, timeouts and connect errors ([`retry::Retry::default`]).
///
/// ```
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(llm_gateway_otel::GatewayMiddleware::default())
///     .build();
/// ```
#[derive(Clone)]
pub struct GatewayMiddleware {
    config: Arc<Config>,
}

impl Default for GatewayMiddleware {
    /// The gateway's own hosts, retries on ([`retry::Retry::default`]), pre-flight warnings,
    /// the global meter and tracer providers.
    fn default() -> Self {
        GatewayMiddlewareBuilder::default()
            .build()
            .expect("the default configuration is valid")
    }
}

impl GatewayMiddleware {
    /// Configure the middleware; see [`GatewayMiddlewareBuilder`].
    pub fn builder() -> GatewayMiddlewareBuilder {
        GatewayMiddlewareBuilder::default()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        GatewayMiddleware {
            config: Arc::new(config),
        }
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
        if !self.config.matcher.matches(&req) {
            return next.run(req, extensions).await;
        }
        let facts = Arc::new(Facts::read(&req, &self.config.regions));
        let call = telemetry::call_span(&self.config.tracer, &facts);
        let report = report::ReportHandle::start(&req, &facts, extensions);
        preflight(&self.config, &call, &facts, &report)?;
        let started = Instant::now();
        let guard = telemetry::CancelGuard::new(call);
        let result = retry::send(
            &self.config,
            guard.span(),
            &facts,
            &report,
            req,
            extensions,
            next,
        )
        .await;
        let call = guard.disarm();
        match result {
            Ok(response) => {
                let state = observe::CallState::new(
                    call,
                    facts,
                    started,
                    &response,
                    &self.config,
                    report.clone(),
                );
                let mut response = observe::observe(response, state).await;
                response.extensions_mut().insert(report);
                Ok(response)
            }
            Err(err) => {
                let elapsed = started.elapsed();
                telemetry::record_transport_failure(
                    &call,
                    &err,
                    &facts,
                    elapsed,
                    &self.config.metrics,
                );
                transport_failed(&call, &facts, &err, &report);
                call.end();
                Err(err)
            }
        }
    }
}

/// Pre-flight checks before the request leaves: findings go on the call's span and into its
/// report; with [`PreflightMode::FailFast`] a request the gateway would reject is not sent.
fn preflight(
    config: &Config,
    call: &telemetry::SpanHandle,
    facts: &Facts,
    report: &report::ReportHandle,
) -> reqwest_middleware::Result<()> {
    if config.preflight == PreflightMode::Off {
        return Ok(());
    }
    let findings = diagnose::preflight(facts);
    if findings.is_empty() {
        return Ok(());
    }
    telemetry::record_preflight(call, &findings);
    report.set_preflight(&findings);
    if config.preflight != PreflightMode::FailFast {
        return Ok(());
    }
    let rejected: Vec<diagnose::Finding> = findings
        .into_iter()
        .filter(|f| f.severity == diagnose::Severity::Reject)
        .collect();
    let Some(first) = rejected.first() else {
        return Ok(());
    };
    let diagnosis = Diagnosis::error(
        first.cause,
        Some(format!(
            "`{}`: {} (request not sent)",
            first.field, first.detail
        )),
    );
    report.finish_not_sent(diagnosis.clone());
    let err = PreflightError::new(rejected, report.report());
    telemetry::record_preflight_rejection(call, &diagnosis, &err.to_string());
    Err(reqwest_middleware::Error::middleware(err))
}

/// A call that got no response: its diagnosis on the span and in the report.
fn transport_failed(
    call: &telemetry::SpanHandle,
    facts: &Facts,
    err: &reqwest_middleware::Error,
    report: &report::ReportHandle,
) {
    let causes = diagnose::transport_causes(err, facts);
    let diagnosis = diagnose::diagnose(&diagnose::DiagnosisInput {
        transport: Some(classify::TransportFailure::of(err))
            .filter(|f| *f != classify::TransportFailure::Middleware),
        transport_causes: causes.as_deref(),
        ..diagnose::DiagnosisInput::new(facts)
    });
    telemetry::record_diagnosis(call, diagnosis.as_ref());
    report.finish_transport(classify::classify_transport(err), diagnosis);
}
