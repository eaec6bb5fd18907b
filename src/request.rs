//! What an outgoing call is: is it a gateway call at all (the matcher), and the facts the
//! span needs from the request (model, max_tokens, temperature, stream, region, server).

use serde_json::Value;

mod body;

use crate::region::{port_text, Region, RegionMap, EU_HOST, US_HOST};

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

/// `scheme://host[:port]`, as `format!` would write it, in one allocation.
fn origin_of(url: &reqwest::Url) -> String {
    let Some(host) = url.host_str() else {
        return String::new();
    };
    let scheme = url.scheme();
    let mut digits = [0u8; 5];
    let port = url.port().map(|p| port_text(p, &mut digits));
    let mut origin =
        String::with_capacity(scheme.len() + 3 + host.len() + port.map_or(0, |p| p.len() + 1));
    origin.push_str(scheme);
    origin.push_str("://");
    origin.push_str(host);
    if let Some(port) = port {
        origin.push(':');
        // ASCII digits.
        origin.extend(port.iter().map(|&d| char::from(d)));
    }
    origin
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
    /// The JSON kind of the body fields the gateway validates (for diagnosis and pre-flight
    /// checks).
    pub fields: BodyFields,
    /// How the request authenticates: which header forms are present, never a value.
    pub auth: AuthFacts,
    /// `scheme://host[:port]` of the call (where the region's `/v1/models` lives).
    pub(crate) origin: String,
    /// Credentials seen on the request, kept only to redact them from what is recorded.
    pub(crate) secrets: Vec<String>,
    /// `fallback_config.retry` of a JSON-object body (true when absent): whether the gateway
    /// retries by itself. `None` when the body was not read as an object.
    pub(crate) gateway_retries: Option<bool>,
}

/// The JSON kind of a value in the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number that is an integer (fits `i64` or `u64`).
    Integer,
    /// Any other number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// The fields of a chat-completions body that the gateway validates, each as the JSON kind it
/// had (`None`: absent). Read in the same single pass as the rest of [`RequestFacts`], without
/// copying `messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyFields {
    /// Whether the body was a JSON object at all.
    pub object: bool,
    /// `model`.
    pub model: Option<JsonKind>,
    /// `messages` (must be an array).
    pub messages: Option<JsonKind>,
    /// `prompt` (the alternative to `messages`).
    pub prompt: Option<JsonKind>,
    /// `max_tokens` (a positive integer).
    pub max_tokens: Option<JsonKind>,
    /// Whether `post_processing_steps` asks for `json-repair`.
    pub json_repair: bool,
}

/// How the `Authorization` header carries the key (the value itself is never kept here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthHeader {
    /// No `Authorization` header.
    #[default]
    Missing,
    /// Present but empty.
    Empty,
    /// The raw key, as documented.
    Raw,
    /// `Bearer <key>` (accepted in practice, not the documented form).
    Bearer,
    /// Another scheme (`Basic …`, `Token …`).
    OtherScheme,
}

/// What the request shows about authentication. Names only: no value is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFacts {
    /// The `Authorization` header's form.
    pub authorization: AuthHeader,
    /// A header that looks meant to be `Authorization` but is not (`Authorisation`,
    /// `Authorizaton`, `x-api-key`): its lowercase name.
    pub misnamed_header: Option<String>,
    /// A query parameter that looks like it carries the key (`api_key`, `token`): its name.
    pub key_in_query: Option<String>,
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
            .field("fields", &self.fields)
            .field("auth", &self.auth)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish()
    }
}

impl RequestFacts {
    /// The facts of `request`, with the region taken from the gateway's own hosts only (the
    /// middleware uses the regions configured on its builder). For using the pure
    /// [`diagnose`](crate::diagnose) and [`preflight`](fn@crate::diagnose::preflight) functions
    /// on your own.
    ///
    /// ```
    /// use llm_gateway_otel::request::{JsonKind, RequestFacts};
    /// let req = reqwest::Client::new()
    ///     .post("https://llm-gateway.eu.assemblyai.com/v1/chat/completions")
    ///     .body(r#"{"model":"gpt-4o","messages":"hi"}"#)
    ///     .build()
    ///     .unwrap();
    /// let facts = RequestFacts::from_request(&req);
    /// assert_eq!(facts.region, llm_gateway_otel::Region::EU);
    /// assert_eq!(facts.fields.messages, Some(JsonKind::String));
    /// ```
    ///
    /// Only a JSON object is described; anything else (an array, text) is not:
    ///
    /// ```
    /// # use llm_gateway_otel::RequestFacts;
    /// let req = reqwest::Client::new()
    ///     .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
    ///     .body(r#"["gpt-4o", 5]"#)
    ///     .build()
    ///     .unwrap();
    /// let facts = RequestFacts::from_request(&req);
    /// assert!(!facts.described && facts.model.is_none());
    /// ```
    #[cfg(test)]
    pub fn from_request(request: &reqwest::Request) -> RequestFacts {
        Self::read(request, &RegionMap::default())
    }

    pub(crate) fn read(request: &reqwest::Request, regions: &RegionMap) -> RequestFacts {
        let url = request.url();
        let server_address = url.host_str().unwrap_or_default().to_owned();
        let server_port = url.port_or_known_default();
        let body = request
            .body()
            .and_then(|b| b.as_bytes())
            .filter(|b| b.len() <= MAX_DESCRIBED_REQUEST_BODY)
            .map(body::read)
            .unwrap_or_default();
        let fields = BodyFields {
            object: body.described,
            model: body.model_kind,
            messages: body.messages,
            prompt: body.prompt,
            max_tokens: body.max_tokens_kind,
            json_repair: body.json_repair,
        };
        let origin = origin_of(url);
        let model = body.model;
        let region = regions.resolve(&server_address, server_port);
        RequestFacts {
            gateway_retries: body.gateway_retries,
            model,
            max_tokens: body.max_tokens,
            temperature: body.temperature,
            stream: body.stream,
            described: body.described,
            region,
            server_address,
            server_port,
            fields,
            auth: auth_of(request),
            origin,
            secrets: secrets_of(request),
        }
    }
}

impl JsonKind {
    /// The kind of a JSON value.
    pub fn of(v: &Value) -> JsonKind {
        match v {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => JsonKind::Integer,
            Value::Number(_) => JsonKind::Number,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }

    /// The kind's name, as a JSON-schema-ish word (`string`, `array`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "boolean",
            JsonKind::Integer => "integer",
            JsonKind::Number => "number",
            JsonKind::String => "string",
            JsonKind::Array => "array",
            JsonKind::Object => "object",
        }
    }
}

/// The spelling the gateway wants.
const AUTHORIZATION: &str = "authorization";

/// Header names people use for the key instead of `Authorization`.
const OTHER_KEY_HEADERS: [&str; 5] = [
    "x-api-key",
    "api-key",
    "apikey",
    "x-assemblyai-api-key",
    "assemblyai-api-key",
];

/// Whether `name` (lowercase) looks meant to be `Authorization` but is not: within edit
/// distance 2 of it (`authorisation`, `authorizaton`, `autorization`), or a common API-key
/// header name.
pub(crate) fn is_misnamed_auth_header(name: &str) -> bool {
    name != AUTHORIZATION
        && (OTHER_KEY_HEADERS.contains(&name)
            || may_be_near_authorization(name) && edit_distance(name, AUTHORIZATION) <= 2)
}

/// A necessary condition, O(length) and without the table, for `name` to be within edit
/// distance 2 of `authorization`: lengths at most 2 apart, and at least 11 of its bytes are
/// letters of `authorization` (each of its 13 letters is kept by an alignment unless
/// substituted or deleted, and at most 2 are). `content-type`, `accept`, `user-agent` and
/// nearly every other header fail it.
fn may_be_near_authorization(name: &str) -> bool {
    // Bit `c - b'a'` set for each letter of "authorization".
    const LETTERS: u32 = {
        let word = AUTHORIZATION.as_bytes();
        let mut mask = 0u32;
        let mut i = 0;
        while i < word.len() {
            mask |= 1 << (word[i] - b'a');
            i += 1;
        }
        mask
    };
    if name.len().abs_diff(AUTHORIZATION.len()) > 2 {
        return false;
    }
    let shared = name
        .bytes()
        .filter(|&b| b.is_ascii_lowercase() && LETTERS & (1 << (b - b'a')) != 0)
        .count();
    shared + 2 >= AUTHORIZATION.len()
}

/// Levenshtein distance over bytes (the names compared are ASCII).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // Two rows of the table; on the stack for the short names this runs on for every request.
    const STACK: usize = 64;
    let (mut prev_s, mut cur_s) = ([0usize; STACK], [0usize; STACK]);
    let (mut prev_h, mut cur_h);
    let (prev, cur): (&mut [usize], &mut [usize]) = if b.len() < STACK {
        (&mut prev_s[..=b.len()], &mut cur_s[..=b.len()])
    } else {
        prev_h = vec![0; b.len() + 1];
        cur_h = vec![0; b.len() + 1];
        (&mut prev_h, &mut cur_h)
    };
    for (j, p) in prev.iter_mut().enumerate() {
        *p = j;
    }
    let (mut prev, mut cur) = (prev, cur);
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn auth_of(request: &reqwest::Request) -> AuthFacts {
    let headers = request.headers();
    let authorization = match headers.get(http::header::AUTHORIZATION) {
        None => AuthHeader::Missing,
        Some(v) => match std::str::from_utf8(v.as_bytes()) {
            Ok(v) => auth_header_form(v),
            Err(_) => auth_header_form(&String::from_utf8_lossy(v.as_bytes())),
        },
    };
    let misnamed_header = headers
        .keys()
        .map(http::HeaderName::as_str)
        .find(|n| is_misnamed_auth_header(n))
        .map(str::to_owned);
    let key_in_query = request
        .url()
        .query_pairs()
        .find(|(k, v)| crate::redact::is_secret_name(k) && !v.is_empty())
        .map(|(k, _)| k.into_owned());
    AuthFacts {
        authorization,
        misnamed_header,
        key_in_query,
    }
}

/// The form of an `Authorization` value (as text).
fn auth_header_form(v: &str) -> AuthHeader {
    let v = v.trim();
    match v.split_once(' ') {
        _ if v.is_empty() => AuthHeader::Empty,
        None => AuthHeader::Raw,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("bearer") => AuthHeader::Bearer,
        Some(_) => AuthHeader::OtherScheme,
    }
}

/// Every credential-looking value on the request: the `Authorization` header (with and without
/// its scheme), common API-key headers, and secret-looking query parameters. These are never
/// recorded; they are collected only so that an echo of them in an error body can be redacted.
fn secrets_of(request: &reqwest::Request) -> Vec<String> {
    let mut secrets = Vec::new();
    for (name, value) in request.headers() {
        let n = name.as_str();
        if !(n == AUTHORIZATION || is_misnamed_auth_header(n) || crate::redact::is_secret_name(n)) {
            continue;
        }
        let Ok(v) = value.to_str() else { continue };
        let v = v.trim();
        if let Some((_, token)) = v.split_once(' ') {
            push_secret(&mut secrets, token.trim());
        }
        push_secret(&mut secrets, v);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(url: &str, headers: &[(&str, &str)]) -> RequestFacts {
        let client = reqwest::Client::new();
        let mut builder = client.post(url).body(r#"{"model":"gpt-4o","messages":[]}"#);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        RequestFacts::from_request(&builder.build().unwrap())
    }

    #[test]
    fn a_key_in_the_query_is_seen_and_other_parameters_are_not_keys() {
        let url = "https://llm-gateway.assemblyai.com/v1/chat/completions";
        let with_key = facts(&format!("{url}?api_key=abcdef123456"), &[]);
        assert_eq!(with_key.auth.key_in_query.as_deref(), Some("api_key"));
        assert_eq!(with_key.secrets, vec!["abcdef123456".to_owned()]);
        let plain = facts(&format!("{url}?max_tokens=100000&stream=true"), &[]);
        assert_eq!(plain.auth.key_in_query, None);
        assert!(plain.secrets.is_empty());
    }

    #[test]
    fn credentials_are_collected_from_every_auth_like_header() {
        let url = "https://llm-gateway.assemblyai.com/v1/chat/completions";
        let f = facts(
            url,
            &[
                ("authorization", "Bearer sk-live-123456"),
                ("autorization", "typo-key-999"),
                ("content-type", "application/json"),
            ],
        );
        assert!(f.secrets.contains(&"sk-live-123456".to_owned()));
        assert!(f.secrets.contains(&"Bearer sk-live-123456".to_owned()));
        assert!(f.secrets.contains(&"typo-key-999".to_owned()));
        assert!(!f.secrets.iter().any(|s| s.contains("application/json")));
        assert_eq!(f.auth.misnamed_header.as_deref(), Some("autorization"));
    }

    /// The definition the pre-check must agree with: the edit distance alone.
    fn misnamed_by_distance(name: &str) -> bool {
        name != AUTHORIZATION
            && (OTHER_KEY_HEADERS.contains(&name) || edit_distance(name, AUTHORIZATION) <= 2)
    }

    /// Up to three random edits of `authorization` (and of other names).
    fn near_names() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let base = prop_oneof![
            Just(AUTHORIZATION.to_owned()),
            Just("authorisation".to_owned()),
            Just("content-type".to_owned()),
            "[a-z0-9-]{0,16}",
        ];
        let edit = (0usize..3, any::<prop::sample::Index>(), "[a-z_-]");
        (base, prop::collection::vec(edit, 0..4)).prop_map(|(mut name, edits)| {
            for (kind, at, c) in edits {
                let at = at.index(name.len() + 1);
                match kind {
                    0 => name.insert_str(at, &c),
                    1 if at < name.len() => {
                        name.remove(at);
                    }
                    _ if at < name.len() => name.replace_range(at..=at, &c),
                    _ => {}
                }
            }
            name
        })
    }

    proptest::proptest! {
        #[test]
        fn the_misnamed_pre_check_never_changes_the_answer(name in near_names()) {
            proptest::prop_assert_eq!(is_misnamed_auth_header(&name), misnamed_by_distance(&name));
        }

        #[test]
        fn regions_resolve_as_a_lowercased_map_lookup_would(
            entries in proptest::collection::vec(("(127.0.0.1|[Pp]roxy|LLM-gateway.assemblyai.com)(:[0-9]{1,5})?", 0u8..3), 0..4),
            host in "(127.0.0.1|[Pp]ro[Xx]y|llm-gateway.(eu.)?ASSEMBLYAI.com|other)",
            port in proptest::option::of(proptest::prop_oneof![0u16..10, 75u16..90, 8075u16..8085, 65530u16..=65535]),
            default in proptest::option::of(0u8..3),
        ) {
            let label = |i: u8| Region::new(["r0", "r1", "r2"][usize::from(i)]).unwrap();
            let mut map = RegionMap::default();
            let mut old: std::collections::HashMap<String, Region> = Default::default();
            for (h, r) in &entries {
                map.insert(h.clone(), label(*r));
                old.insert(h.to_ascii_lowercase(), label(*r));
            }
            if let Some(d) = default {
                map.set_default(label(d));
            }
            // The lookup as it was: a lowercased key, `host:port` first.
            let expected = {
                let host = host.to_ascii_lowercase();
                let by_port = port.and_then(|p| old.get(&format!("{host}:{p}")));
                match by_port.or_else(|| old.get(&host)) {
                    Some(r) => r.clone(),
                    None => match (Region::from_host(&host), default) {
                        (r, Some(d)) if r == Region::UNKNOWN => label(d),
                        (r, _) => r,
                    },
                }
            };
            proptest::prop_assert_eq!(map.resolve(&host, port), expected);
        }
    }

    #[test]
    fn the_origin_is_scheme_host_and_explicit_port() {
        for url in [
            "https://llm-gateway.assemblyai.com/v1/chat/completions",
            "http://127.0.0.1:8080/v1/chat/completions",
            "http://[::1]:65535/x",
            "https://Example.COM:443/x",
            "http://h:0/",
            "http://h:9/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            let expected = match (url.port(), url.host_str()) {
                (Some(port), Some(host)) => format!("{}://{host}:{port}", url.scheme()),
                (None, Some(host)) => format!("{}://{host}", url.scheme()),
                _ => String::new(),
            };
            assert_eq!(origin_of(&url), expected);
        }
    }
}
