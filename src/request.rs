//! What an outgoing call is: is it a gateway call at all (the matcher), and the facts the
//! span needs from the request (model, max_tokens, temperature, stream, region, server).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::region::{Region, EU_HOST, US_HOST};
use crate::telemetry::metrics::MetricAttributes;

/// The path of the endpoint this crate observes.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";

/// Request bodies larger than this are passed through and not described (no model on the span).
pub const MAX_DESCRIBED_REQUEST_BODY: usize = 32 * 1024 * 1024;

/// Decides which requests are gateway calls. Everything else passes through untouched.
///
/// Any `Fn(&reqwest::Request) -> bool` is a matcher:
///
/// ```
/// use llm_gateway_otel::GatewayMiddleware;
/// let middleware = GatewayMiddleware::builder()
///     .matcher(|req: &reqwest::Request| req.url().path().ends_with("/chat/completions"))
///     .build()
///     .unwrap();
/// ```
pub trait RequestMatcher: Send + Sync + 'static {
    /// `true` when `request` is a call to observe.
    fn matches(&self, request: &reqwest::Request) -> bool;
}

impl<F> RequestMatcher for F
where
    F: Fn(&reqwest::Request) -> bool + Send + Sync + 'static,
{
    fn matches(&self, request: &reqwest::Request) -> bool {
        self(request)
    }
}

/// The default matcher: `POST …/v1/chat/completions` on the gateway's US or EU host, or on a
/// host added with [`GatewayMatcher::with_host`] (`host` or `host:port`).
///
/// ```
/// use llm_gateway_otel::{GatewayMatcher, RequestMatcher};
/// let m = GatewayMatcher::default().with_host("127.0.0.1:8080");
/// let client = reqwest::Client::new();
/// let req = client.post("http://127.0.0.1:8080/v1/chat/completions").build().unwrap();
/// assert!(m.matches(&req));
/// let other = client.post("http://127.0.0.1:8080/v1/embeddings").build().unwrap();
/// assert!(!m.matches(&other));
/// ```
#[derive(Debug, Clone)]
pub struct GatewayMatcher {
    hosts: Vec<String>,
}

impl Default for GatewayMatcher {
    fn default() -> Self {
        GatewayMatcher {
            hosts: vec![US_HOST.to_owned(), EU_HOST.to_owned()],
        }
    }
}

impl GatewayMatcher {
    /// Also match calls to `host` (`"proxy.internal"` or `"127.0.0.1:8080"`).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.push(host.into().to_ascii_lowercase());
        self
    }
}

impl RequestMatcher for GatewayMatcher {
    fn matches(&self, request: &reqwest::Request) -> bool {
        let url = request.url();
        if request.method() != reqwest::Method::POST || !url.path().ends_with(CHAT_COMPLETIONS_PATH)
        {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let port = url.port_or_known_default();
        self.hosts.iter().any(|h| host_matches(h, host, port))
    }
}

/// `pattern` is `host` or `host:port`.
fn host_matches(pattern: &str, host: &str, port: Option<u16>) -> bool {
    match pattern.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') && p.parse::<u16>().ok() == port => {
            h.eq_ignore_ascii_case(host)
        }
        _ => pattern.eq_ignore_ascii_case(host),
    }
}

/// Region labels configured per host (`host` or `host:port`), falling back to the gateway's
/// own hosts and then to a default.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegionMap {
    by_host: HashMap<String, Region>,
    default: Option<Region>,
}

impl RegionMap {
    pub(crate) fn insert(&mut self, host: String, region: Region) {
        self.by_host.insert(host.to_ascii_lowercase(), region);
    }

    pub(crate) fn set_default(&mut self, region: Region) {
        self.default = Some(region);
    }

    pub(crate) fn resolve(&self, host: &str, port: Option<u16>) -> Region {
        let host = host.to_ascii_lowercase();
        if let Some(port) = port {
            if let Some(r) = self.by_host.get(&format!("{host}:{port}")) {
                return r.clone();
            }
        }
        if let Some(r) = self.by_host.get(&host) {
            return r.clone();
        }
        let region = Region::from_host(&host);
        match &self.default {
            Some(default) if region == Region::UNKNOWN => default.clone(),
            _ => region,
        }
    }
}

/// The facts of one outgoing gateway call, read once before it is sent.
#[derive(Clone)]
pub struct RequestFacts {
    /// `model` of the body, when the body is JSON and has a string `model`.
    pub model: Option<String>,
    /// `max_tokens` of the body.
    pub max_tokens: Option<i64>,
    /// `temperature` of the body.
    pub temperature: Option<f64>,
    /// `stream` of the body (`false` when absent).
    pub stream: bool,
    /// Whether the body was JSON that could be read at all.
    pub described: bool,
    /// Region of the host.
    pub region: Region,
    /// Host the call goes to.
    pub server_address: String,
    /// Port the call goes to.
    pub server_port: Option<u16>,
    /// Credentials seen on the request, kept only to redact them from what is recorded.
    pub(crate) secrets: Vec<String>,
    /// Model, region and server as metric attributes, built once for every measurement.
    pub(crate) metric_attributes: MetricAttributes,
    /// `fallback_config.retry` of a JSON-object body (true when absent): whether the gateway
    /// retries by itself. `None` when the body was not read as an object.
    pub(crate) gateway_retries: Option<bool>,
}

impl std::fmt::Debug for RequestFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestFacts")
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("stream", &self.stream)
            .field("described", &self.described)
            .field("region", &self.region)
            .field("server_address", &self.server_address)
            .field("server_port", &self.server_port)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish()
    }
}

impl RequestFacts {
    pub(crate) fn read(request: &reqwest::Request, regions: &RegionMap) -> RequestFacts {
        let url = request.url();
        let server_address = url.host_str().unwrap_or_default().to_owned();
        let server_port = url.port_or_known_default();
        let body = request
            .body()
            .and_then(|b| b.as_bytes())
            .filter(|b| b.len() <= MAX_DESCRIBED_REQUEST_BODY);
        let wire = body.and_then(|b| serde_json::from_slice::<WireRequest>(b).ok());
        let described = wire.is_some();
        let is_object = body.is_some_and(|b| b.trim_ascii_start().starts_with(b"{"));
        let wire = wire.unwrap_or_default();
        let gateway_retries = (described && is_object).then(|| {
            wire.fallback_config
                .as_ref()
                .and_then(|c| c.get("retry"))
                .and_then(Value::as_bool)
                .unwrap_or(true)
        });
        let model = wire
            .model
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_owned);
        let region = regions.resolve(&server_address, server_port);
        RequestFacts {
            metric_attributes: MetricAttributes::new(model.as_deref(), &region, &server_address),
            gateway_retries,
            model,
            max_tokens: wire.max_tokens.as_ref().and_then(Value::as_i64),
            temperature: wire.temperature.as_ref().and_then(Value::as_f64),
            stream: wire
                .stream
                .as_ref()
                .and_then(Value::as_bool)
                .unwrap_or(false),
            described,
            region,
            server_address,
            server_port,
            secrets: secrets_of(request),
        }
    }
}

/// The top-level request fields we describe. Each is a `Value` so that a wrongly typed field
/// (the gateway answers 400 to it) costs the description of that field only; unknown fields,
/// such as the (possibly large) `messages`, are skipped without being copied.
#[derive(Deserialize, Default)]
struct WireRequest {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    max_tokens: Option<Value>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    stream: Option<Value>,
    /// Read here so that the retry loop need not parse the body again.
    #[serde(default)]
    fallback_config: Option<Value>,
}

/// Every credential-looking value on the request: the `Authorization` header (with and without
/// its scheme), common API-key headers, and secret-looking query parameters. These are never
/// recorded; they are collected only so that an echo of them in an error body can be redacted.
fn secrets_of(request: &reqwest::Request) -> Vec<String> {
    let mut secrets = Vec::new();
    for name in ["authorization", "authorisation", "x-api-key", "api-key"] {
        for value in request.headers().get_all(name) {
            let Ok(v) = value.to_str() else { continue };
            let v = v.trim();
            if let Some((_, token)) = v.split_once(' ') {
                push_secret(&mut secrets, token.trim());
            }
            push_secret(&mut secrets, v);
        }
    }
    for (k, v) in request.url().query_pairs() {
        if crate::redact::is_secret_name(&k) {
            push_secret(&mut secrets, &v);
        }
    }
    secrets
}

fn push_secret(secrets: &mut Vec<String>, value: &str) {
    // Very short values cannot be redacted without mangling ordinary words.
    if value.len() >= 6 && !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_owned());
    }
}
