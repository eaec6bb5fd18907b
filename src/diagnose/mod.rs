//! Diagnosis: why a call failed and what to do about it, the way the gateway's troubleshooting
//! page explains it. Pure, like [`classify`](crate::classify): it reads facts (the request,
//! the status, the picked body facts, the rate-limit headers, how the stream ended) and
//! returns a [`Diagnosis`]; recording it on the span is `telemetry`'s job.
//!
//! [`classify`](crate::classify) gives `error.type` (the status code or a transport class, for
//! metrics); a [`Cause`] says *which* 401, 400 or 404 it was (key missing, header misspelled,
//! `messages` not an array, model not served in the EU, ...), with a one-line fix quoting
//! the troubleshooting page.

pub mod preflight;

pub(crate) mod catalog;

use std::fmt;

use crate::classify::TransportFailure;
use crate::outcome::BodyEnd;
use crate::outcome::{BodyFacts, JsonStatus};
use crate::ratelimit::RateLimit;
use crate::region::Region;
use crate::request::{AuthHeader, JsonKind, RequestFacts};

pub use preflight::{preflight, Finding, PreflightMode, Severity};

/// Why a call failed (or, for [`Cause::StreamIgnored`] and the pre-flight warnings, what is
/// worth knowing about it). A low-cardinality label, recorded as `llm_gateway.error.cause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// 401/403 and no key was sent at all.
    AuthMissingKey,
    /// 401/403 and the key went in a misspelled header (`Authorisation`) or a non-gateway
    /// header (`x-api-key`) instead of `Authorization`.
    AuthHeaderMisspelled,
    /// 401/403 and the key went in the URL's query string.
    AuthKeyInQuery,
    /// `Authorization: Bearer <key>`: accepted in practice, but not the documented form (a
    /// pre-flight warning, never the cause of a failure on its own).
    AuthBearerPrefix,
    /// 401/403 with a key in `Authorization`: missing, malformed, expired, or from another
    /// account.
    AuthInvalidKey,
    /// 401/403 on the EU host with a key in `Authorization`: most likely a key that was not
    /// generated for the EU region.
    AuthWrongRegionKey,
    /// 400: `model` is missing (or not a string).
    BadRequestMissingModel,
    /// 400: neither `messages` nor `prompt` was sent.
    BadRequestMissingMessages,
    /// 400: `messages` is not an array (e.g. a string).
    BadRequestMessagesNotArray,
    /// 400: `max_tokens` is out of range or beyond the model's context window.
    BadRequestMaxTokens,
    /// 400: the model value is not a supported model parameter.
    BadRequestUnsupportedModel,
    /// 400 for another field: the gateway's message names it.
    BadRequestOther,
    /// 404: the model is misspelled or deprecated.
    ModelNotFound,
    /// 404: the model is not served in this region (OpenAI models in the EU).
    ModelNotInRegion,
    /// 429: the per-model limit of the 60-second window.
    RateLimited,
    /// 500/502/503/504: transient, on the gateway's side or the upstream provider's.
    UpstreamTransient,
    /// 500 for a request with `json-repair` post-processing: the output could not be repaired.
    PostProcessingFailed,
    /// `stream: true` answered with one JSON body (the model does not stream). Informational.
    StreamIgnored,
    /// A streamed answer broke (or ended without `data: [DONE]`).
    StreamInterrupted,
    /// A non-streamed 2xx body broke before its end.
    BodyInterrupted,
    /// A 2xx body that was truncated or not JSON.
    MalformedResponse,
    /// No answer (or no end of the body) in time.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// Sending the request failed another way.
    RequestFailed,
    /// A status the troubleshooting page does not cover (e.g. 408, 413, 422).
    UnexpectedStatus,
}

impl Cause {
    /// Every cause, in documentation order.
    pub const ALL: [Cause; 25] = [
        Cause::AuthMissingKey,
        Cause::AuthHeaderMisspelled,
        Cause::AuthKeyInQuery,
        Cause::AuthBearerPrefix,
        Cause::AuthInvalidKey,
        Cause::AuthWrongRegionKey,
        Cause::BadRequestMissingModel,
        Cause::BadRequestMissingMessages,
        Cause::BadRequestMessagesNotArray,
        Cause::BadRequestMaxTokens,
        Cause::BadRequestUnsupportedModel,
        Cause::BadRequestOther,
        Cause::ModelNotFound,
        Cause::ModelNotInRegion,
        Cause::RateLimited,
        Cause::UpstreamTransient,
        Cause::PostProcessingFailed,
        Cause::StreamIgnored,
        Cause::StreamInterrupted,
        Cause::BodyInterrupted,
        Cause::MalformedResponse,
        Cause::Timeout,
        Cause::Connect,
        Cause::RequestFailed,
        Cause::UnexpectedStatus,
    ];

    /// The label recorded as `llm_gateway.error.cause`.
    ///
    /// ```
    /// assert_eq!(llm_gateway_otel::Cause::AuthKeyInQuery.as_str(), "auth_key_in_query");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::AuthMissingKey => "auth_missing_key",
            Cause::AuthHeaderMisspelled => "auth_header_misspelled",
            Cause::AuthKeyInQuery => "auth_key_in_query",
            Cause::AuthBearerPrefix => "auth_bearer_prefix",
            Cause::AuthInvalidKey => "auth_invalid_key",
            Cause::AuthWrongRegionKey => "auth_wrong_region_key",
            Cause::BadRequestMissingModel => "bad_request_missing_model",
            Cause::BadRequestMissingMessages => "bad_request_missing_messages",
            Cause::BadRequestMessagesNotArray => "bad_request_messages_not_array",
            Cause::BadRequestMaxTokens => "bad_request_max_tokens",
            Cause::BadRequestUnsupportedModel => "bad_request_unsupported_model",
            Cause::BadRequestOther => "bad_request_other",
            Cause::ModelNotFound => "model_not_found",
            Cause::ModelNotInRegion => "model_not_in_region",
            Cause::RateLimited => "rate_limited",
            Cause::UpstreamTransient => "upstream_transient",
            Cause::PostProcessingFailed => "post_processing_failed",
            Cause::StreamIgnored => "stream_ignored",
            Cause::StreamInterrupted => "stream_interrupted",
            Cause::BodyInterrupted => "body_interrupted",
            Cause::MalformedResponse => "malformed_response",
            Cause::Timeout => "timeout",
            Cause::Connect => "connect",
            Cause::RequestFailed => "request_failed",
            Cause::UnexpectedStatus => "unexpected_status",
        }
    }

    /// The one-line fix, in the troubleshooting page's words where it has them.
    ///
    /// ```
    /// use llm_gateway_otel::Cause;
    /// assert!(Cause::AuthHeaderMisspelled.fix().contains("Authorization header"));
    /// ```
    pub fn fix(self) -> &'static str {
        match self {
            Cause::AuthMissingKey => {
                "Pass the key in the Authorization header — not as a query parameter and not \
                 prefixed with Bearer; confirm your API key on the API Keys page."
            }
            Cause::AuthHeaderMisspelled => {
                "The Authorization header is misspelled (e.g. Authorisation): pass the key in \
                 the Authorization header."
            }
            Cause::AuthKeyInQuery => {
                "Pass the key in the Authorization header — not as a query parameter (and \
                 rotate it: URLs end up in logs)."
            }
            Cause::AuthBearerPrefix => {
                "Pass the raw key in the Authorization header, not prefixed with Bearer (the \
                 documented form; Bearer is accepted in practice)."
            }
            Cause::AuthInvalidKey => {
                "The API key is missing, malformed, expired or from a different account: \
                 confirm your API key on the API Keys page."
            }
            Cause::AuthWrongRegionKey => {
                "If you're using EU data residency, make sure the key was generated for the EU \
                 region (see Cloud endpoints and data residency); else confirm the key on the \
                 API Keys page."
            }
            Cause::BadRequestMissingModel => {
                "A required field is missing: send `model`, a supported model parameter (see \
                 Available models)."
            }
            Cause::BadRequestMissingMessages => {
                "A required field is missing: send `messages` (an array of {role, content}) or \
                 `prompt`."
            }
            Cause::BadRequestMessagesNotArray => {
                "A field is the wrong type: send `messages` as an array of {role, content} \
                 objects, not a string."
            }
            Cause::BadRequestMaxTokens => {
                "max_tokens is outside the valid range or exceeds the model's context window: \
                 send a positive integer the model allows."
            }
            Cause::BadRequestUnsupportedModel => {
                "The model value is not a supported model parameter: double-check it against \
                 Available models."
            }
            Cause::BadRequestOther => {
                "Validate your request payload against the Basic chat completions reference; \
                 the gateway's message names the field that failed validation."
            }
            Cause::ModelNotFound => {
                "The model value is misspelled or has been deprecated: double-check the exact \
                 model parameter against Available models."
            }
            Cause::ModelNotInRegion => {
                "The model isn't available in this region (OpenAI models are only available in \
                 the US region): call the US endpoint, or switch to an EU-supported model (most \
                 Anthropic Claude and Google Gemini models)."
            }
            Cause::RateLimited => {
                "You exceeded the per-model rate limit within a 60-second window: back off with \
                 exponential backoff and jitter (X-RateLimit-Reset, Retry-After), or specify \
                 fallback models."
            }
            Cause::UpstreamTransient => {
                "Transient issue on AssemblyAI's side or with the upstream model provider: \
                 retry with exponential backoff and jitter; if it persists, check the status \
                 page and contact support with this report."
            }
            Cause::PostProcessingFailed => {
                "json-repair post-processing could not repair the model's output: use \
                 Structured outputs with a JSON schema rather than prompting for JSON, or try a \
                 different model."
            }
            Cause::StreamIgnored => {
                "Streaming is currently supported on OpenAI models only; other providers ignore \
                 the stream flag and return a regular response: use an OpenAI model to stream."
            }
            Cause::StreamInterrupted => {
                "The stream broke before data: [DONE], so the answer is incomplete: retry the \
                 call; if it keeps happening, send support this report."
            }
            Cause::BodyInterrupted => {
                "The response body broke before its end: retry the call; if it keeps \
                 happening, send support this report."
            }
            Cause::MalformedResponse => {
                "The 2xx body was truncated or not JSON: retry; if it persists, send support \
                 the request_id and this report."
            }
            Cause::Timeout => {
                "No answer in time: raise the client's timeout (long generations take time) or \
                 stream, and retry with backoff."
            }
            Cause::Connect => {
                "Could not connect: check the host (US llm-gateway.assemblyai.com, EU \
                 llm-gateway.eu.assemblyai.com), DNS, proxy and network."
            }
            Cause::RequestFailed => {
                "Sending the request failed: check the URL, the body and any proxy, and retry."
            }
            Cause::UnexpectedStatus => {
                "A status the troubleshooting guide does not cover: echo the full error \
                 message; if unclear, send support this report."
            }
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a diagnosis is a failure or only worth knowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The call failed: recorded as `llm_gateway.error.cause` / `.fix`.
    Error,
    /// The call worked, but not as asked (e.g. [`Cause::StreamIgnored`]): recorded as a
    /// `llm_gateway.notice` event.
    Notice,
}

/// What went wrong, the fix, and the specifics (the gateway's message, the rate-limit
/// numbers, a likely model name).
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The cause.
    pub cause: Cause,
    /// A failure or a notice.
    pub level: Level,
    /// The one-line fix ([`Cause::fix`]).
    pub fix: &'static str,
    /// Specifics of this call, already redacted (the gateway's message is echoed here).
    pub detail: Option<String>,
}

impl Diagnosis {
    /// A failure diagnosis with `detail`.
    pub fn error(cause: Cause, detail: Option<String>) -> Diagnosis {
        Diagnosis {
            cause,
            level: Level::Error,
            fix: cause.fix(),
            detail,
        }
    }

    fn notice(cause: Cause, detail: Option<String>) -> Diagnosis {
        Diagnosis {
            level: Level::Notice,
            ..Diagnosis::error(cause, detail)
        }
    }
}

/// Everything [`diagnose`] looks at. Start from [`DiagnosisInput::new`] and set what is known.
#[derive(Debug, Clone, Copy)]
pub struct DiagnosisInput<'a> {
    /// The request.
    pub request: &'a RequestFacts,
    /// The final status; `None` when no response arrived.
    pub status: Option<u16>,
    /// What was picked from the body (any of the three error shapes, or a success).
    pub body: Option<&'a BodyFacts>,
    /// The error message from the body, redacted (echoed in the detail).
    pub message: Option<&'a str>,
    /// How a JSON body parsed (`None` for streams).
    pub json: Option<JsonStatus>,
    /// The rate-limit headers.
    pub rate: Option<&'a RateLimit>,
    /// Whether the answer was an SSE stream.
    pub streamed: bool,
    /// For a stream: whether `data: [DONE]` arrived.
    pub stream_done: bool,
    /// How the body ended (`None` when no response arrived).
    pub end: Option<BodyEnd>,
    /// Why no response arrived.
    pub transport: Option<TransportFailure>,
    /// The transport error's causes, redacted (see [`transport_causes`]).
    pub transport_causes: Option<&'a str>,
    /// The region's `/v1/models` list, when the cached lookup is enabled and answered.
    pub region_models: Option<&'a [String]>,
}

impl<'a> DiagnosisInput<'a> {
    /// Nothing known yet but the request.
    pub fn new(request: &'a RequestFacts) -> Self {
        DiagnosisInput {
            request,
            status: None,
            body: None,
            message: None,
            json: None,
            rate: None,
            streamed: false,
            stream_done: false,
            end: None,
            transport: None,
            transport_causes: None,
            region_models: None,
        }
    }
}

/// The causes of a transport error, innermost last (`client error (Connect): tcp connect
/// error: Connection refused (os error 111)`), without the top-level message (which names the
/// URL), redacted with the request's secrets. `None` when it has no source.
pub fn transport_causes(err: &reqwest_middleware::Error, request: &RequestFacts) -> Option<String> {
    let top: &(dyn std::error::Error + 'static) = match err {
        reqwest_middleware::Error::Reqwest(e) => e,
        reqwest_middleware::Error::Middleware(e) => e.as_ref(),
    };
    let mut parts = Vec::new();
    let mut source = top.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    (!parts.is_empty()).then(|| {
        let text = parts.join(": ");
        crate::redact::redact(crate::text::truncate_utf8(&text, 512), &request.secrets).into_owned()
    })
}

impl<'a> DiagnosisInput<'a> {
    /// The input for a response whose body ended, as the observer saw it.
    pub fn of_outcome(
        request: &'a RequestFacts,
        outcome: &'a crate::outcome::ResponseOutcome,
        rate: &'a RateLimit,
        region_models: Option<&'a [String]>,
    ) -> Self {
        DiagnosisInput {
            status: Some(outcome.status),
            body: Some(&outcome.facts),
            message: outcome.error_message.as_deref(),
            json: outcome.json,
            rate: Some(rate),
            streamed: outcome.streamed,
            stream_done: outcome.stream.is_some_and(|s| s.done),
            end: Some(outcome.end),
            region_models,
            ..DiagnosisInput::new(request)
        }
    }
}

/// Whether `model` is an OpenAI model (served in the US region only, the only ones that
/// stream): `gpt-*`, `chatgpt-*`, `o1*`, `o3*`, `o4*`, optionally behind `openai/`.
pub fn is_openai_model(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    let m = m.strip_prefix("openai/").unwrap_or(&m);
    m.starts_with("gpt-")
        || m.starts_with("chatgpt-")
        || ["o1", "o3", "o4"].iter().any(|p| {
            m.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
}

/// The diagnosis of a finished call, or `None` when there is nothing to say (a success that
/// did what was asked, a body the user stopped reading).
pub fn diagnose(input: &DiagnosisInput<'_>) -> Option<Diagnosis> {
    if let Some(failure) = input.transport {
        let causes = input.transport_causes;
        let mut detail = match input.request.server_port {
            Some(port) => format!("{}:{port}", input.request.server_address),
            None => input.request.server_address.clone(),
        };
        if let Some(c) = causes {
            detail.push_str(": ");
            detail.push_str(c);
        }
        if causes.is_some_and(|c| c.contains("scheme is not http")) {
            detail.push_str(
                " (this reqwest client has no TLS support: enable a reqwest TLS feature such as \
                 `rustls` to call https)",
            );
        }
        return Some(Diagnosis::error(
            match failure {
                TransportFailure::Timeout => Cause::Timeout,
                TransportFailure::Connect => Cause::Connect,
                TransportFailure::Other | TransportFailure::Middleware => Cause::RequestFailed,
            },
            Some(detail),
        ));
    }
    let status = input.status?;
    match status {
        200..=299 => success(input),
        401 | 403 => Some(auth(input, status)),
        400 => Some(bad_request(input)),
        404 => Some(not_found(input)),
        429 => Some(Diagnosis::error(
            Cause::RateLimited,
            rate_detail(input.rate),
        )),
        500 if input.request.fields.json_repair || mentions_post_processing(input.message) => Some(
            Diagnosis::error(Cause::PostProcessingFailed, echo(input.message)),
        ),
        500..=599 => Some(Diagnosis::error(
            Cause::UpstreamTransient,
            server_error_detail(input, status),
        )),
        _ => Some(Diagnosis::error(
            Cause::UnexpectedStatus,
            Some(match input.message {
                Some(m) => format!("HTTP {status}: {m}"),
                None => format!("HTTP {status}"),
            }),
        )),
    }
}

fn success(input: &DiagnosisInput<'_>) -> Option<Diagnosis> {
    match input.end? {
        BodyEnd::Failed { timeout: true } => Some(Diagnosis::error(
            Cause::Timeout,
            Some("the body did not arrive in time".to_owned()),
        )),
        BodyEnd::Failed { timeout: false } if input.streamed => Some(Diagnosis::error(
            Cause::StreamInterrupted,
            Some("the connection broke mid-stream".to_owned()),
        )),
        BodyEnd::Failed { timeout: false } => Some(Diagnosis::error(Cause::BodyInterrupted, None)),
        BodyEnd::Dropped => None,
        BodyEnd::Complete if input.streamed && !input.stream_done => Some(Diagnosis::error(
            Cause::StreamInterrupted,
            Some("the stream ended without data: [DONE]".to_owned()),
        )),
        BodyEnd::Complete => match input.json {
            Some(JsonStatus::Truncated) => Some(Diagnosis::error(
                Cause::MalformedResponse,
                Some("the JSON body ended early".to_owned()),
            )),
            Some(JsonStatus::Malformed) => Some(Diagnosis::error(
                Cause::MalformedResponse,
                Some("the body is not JSON".to_owned()),
            )),
            _ if input.request.stream && !input.streamed => Some(Diagnosis::notice(
                Cause::StreamIgnored,
                Some(match &input.request.model {
                    Some(m) => format!("stream: true was sent; {m} answered with one JSON body"),
                    None => "stream: true was sent; the answer was one JSON body".to_owned(),
                }),
            )),
            _ => None,
        },
    }
}

fn auth(input: &DiagnosisInput<'_>, status: u16) -> Diagnosis {
    let auth = &input.request.auth;
    let missing = matches!(auth.authorization, AuthHeader::Missing | AuthHeader::Empty);
    let said = echo(input.message);
    let with = |what: String| match &said {
        Some(m) => Some(format!("{what}; the gateway said: {m}")),
        None => Some(what),
    };
    if missing {
        if let Some(param) = &auth.key_in_query {
            return Diagnosis::error(
                Cause::AuthKeyInQuery,
                with(format!(
                    "HTTP {status}: the key was sent as query parameter `{param}`, and there is \
                     no Authorization header"
                )),
            );
        }
        if let Some(header) = &auth.misnamed_header {
            return Diagnosis::error(
                Cause::AuthHeaderMisspelled,
                with(format!(
                    "HTTP {status}: the key was sent in header `{header}`, which is not \
                     `Authorization`"
                )),
            );
        }
        return Diagnosis::error(
            Cause::AuthMissingKey,
            with(format!("HTTP {status}: no Authorization header was sent")),
        );
    }
    let form = match auth.authorization {
        AuthHeader::Bearer => " (sent as `Bearer <key>`; the documented form is the raw key)",
        AuthHeader::OtherScheme => {
            " (sent with an auth scheme; the documented form is the raw key)"
        }
        _ => "",
    };
    if input.request.region == Region::EU {
        return Diagnosis::error(
            Cause::AuthWrongRegionKey,
            with(format!(
                "HTTP {status} from the EU endpoint for the key in Authorization{form}"
            )),
        );
    }
    Diagnosis::error(
        Cause::AuthInvalidKey,
        with(format!("HTTP {status} for the key in Authorization{form}")),
    )
}

fn bad_request(input: &DiagnosisInput<'_>) -> Diagnosis {
    let fields = &input.request.fields;
    let detail = echo(input.message).or_else(|| Some("HTTP 400 with no message".to_owned()));
    let cause = input
        .message
        .and_then(cause_from_400_message)
        .or_else(|| {
            // No recognisable message: what the request itself shows.
            if !fields.object {
                None
            } else if !matches!(fields.model, Some(JsonKind::String)) {
                Some(Cause::BadRequestMissingModel)
            } else if matches!(fields.messages, Some(k) if k != JsonKind::Array && k != JsonKind::Null)
            {
                Some(Cause::BadRequestMessagesNotArray)
            } else if is_absent(fields.messages) && is_absent(fields.prompt) {
                Some(Cause::BadRequestMissingMessages)
            } else if bad_max_tokens(fields.max_tokens, input.request.max_tokens) {
                Some(Cause::BadRequestMaxTokens)
            } else {
                None
            }
        })
        .unwrap_or(Cause::BadRequestOther);
    Diagnosis::error(cause, detail)
}

fn is_absent(kind: Option<JsonKind>) -> bool {
    matches!(kind, None | Some(JsonKind::Null))
}

/// `max_tokens` present and not a positive integer.
pub(crate) fn bad_max_tokens(kind: Option<JsonKind>, value: Option<i64>) -> bool {
    match kind {
        None | Some(JsonKind::Null) => false,
        Some(JsonKind::Integer) => value.is_none_or(|v| v < 1),
        Some(_) => true,
    }
}

/// The cause a 400 message names, when it names one of the common ones.
fn cause_from_400_message(message: &str) -> Option<Cause> {
    let m = message.to_ascii_lowercase();
    let names = |field: &str| m.contains(field);
    if names("max_tokens") {
        Some(Cause::BadRequestMaxTokens)
    } else if names("messages") && names("prompt") {
        Some(Cause::BadRequestMissingMessages)
    } else if names("messages") && (names("array") || names("type") || names("list")) {
        Some(Cause::BadRequestMessagesNotArray)
    } else if names("model")
        && (names("not supported") || names("unsupported") || names("invalid model"))
    {
        Some(Cause::BadRequestUnsupportedModel)
    } else if names("model") && (names("missing") || names("required")) {
        Some(Cause::BadRequestMissingModel)
    } else {
        None
    }
}

fn not_found(input: &DiagnosisInput<'_>) -> Diagnosis {
    let model = input.request.model.as_deref();
    let said = echo(input.message);
    let with = |what: String| match &said {
        Some(m) => Some(format!("{what}; the gateway said: {m}")),
        None => Some(what),
    };
    let region = &input.request.region;
    if input
        .message
        .is_some_and(|m| m.to_ascii_lowercase().contains("region"))
    {
        return Diagnosis::error(Cause::ModelNotInRegion, said);
    }
    if let Some(m) = model {
        if *region == Region::EU && is_openai_model(m) {
            return Diagnosis::error(
                Cause::ModelNotInRegion,
                with(format!(
                    "{m} is an OpenAI model, served in the US region only"
                )),
            );
        }
        if let Some(listed) = input.region_models {
            if listed.iter().any(|l| l == m) {
                return Diagnosis::error(
                    Cause::ModelNotFound,
                    with(format!(
                        "{m} is in the {region} region's /v1/models list, yet 404"
                    )),
                );
            }
            if let Some(close) = closest(m, listed) {
                return Diagnosis::error(
                    Cause::ModelNotFound,
                    with(format!(
                        "{m} is not in the {region} region's /v1/models list; did you mean {close}?"
                    )),
                );
            }
            if *region != Region::US && is_known_family(m) {
                return Diagnosis::error(
                    Cause::ModelNotInRegion,
                    with(format!(
                        "{m} is not in the {region} region's /v1/models list ({} models), and \
                         nothing there is spelled like it",
                        listed.len()
                    )),
                );
            }
            return Diagnosis::error(
                Cause::ModelNotFound,
                with(format!(
                    "{m} is not in the {region} region's /v1/models list ({} models)",
                    listed.len()
                )),
            );
        }
    }
    Diagnosis::error(Cause::ModelNotFound, said)
}

/// A model family the gateway serves somewhere (so "not here" likely means "not in this
/// region" rather than "no such model").
fn is_known_family(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    is_openai_model(&m) || m.starts_with("claude-") || m.starts_with("gemini-")
}

/// The listed model spelled most like `model`, if close enough to be a typo.
fn closest<'l>(model: &str, listed: &'l [String]) -> Option<&'l str> {
    let model = model.to_ascii_lowercase();
    let limit = (model.len() / 4).clamp(1, 3);
    listed
        .iter()
        .map(|l| {
            (
                crate::request::edit_distance(&model, &l.to_ascii_lowercase()),
                l,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, l)| l.as_str())
}

fn mentions_post_processing(message: Option<&str>) -> bool {
    message.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("post-processing") || m.contains("post_processing") || m.contains("json-repair")
    })
}

fn rate_detail(rate: Option<&RateLimit>) -> Option<String> {
    let rate = rate?;
    let mut parts = Vec::new();
    if let Some(v) = rate.limit {
        parts.push(format!("limit {v}/window"));
    }
    if let Some(v) = rate.remaining {
        parts.push(format!("remaining {v}"));
    }
    if let Some(v) = rate.reset_s {
        parts.push(format!("window resets in {v} s"));
    }
    if let Some(v) = rate.retry_after {
        parts.push(format!("Retry-After {} s", v.as_secs_f64()));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn server_error_detail(input: &DiagnosisInput<'_>, status: u16) -> Option<String> {
    let upstream = input
        .body
        .and_then(|b| b.llm_status_code)
        .map(|c| format!("; the upstream provider answered {c}"))
        .unwrap_or_default();
    let source = match (input.json, input.message) {
        (_, Some(m)) => format!("HTTP {status}: {m}"),
        (Some(JsonStatus::Malformed), None) => {
            format!("HTTP {status} with a non-JSON body (a load balancer or proxy answered)")
        }
        _ => format!("HTTP {status}"),
    };
    Some(format!("{source}{upstream}"))
}

fn echo(message: Option<&str>) -> Option<String> {
    message.map(|m| format!("\"{m}\""))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn facts(url: &str, headers: &[(&str, &str)], body: &str) -> RequestFacts {
        let mut b = reqwest::Client::new().post(url).body(body.to_owned());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        RequestFacts::from_request(&b.build().unwrap())
    }

    const US: &str = "https://llm-gateway.assemblyai.com/v1/chat/completions";
    const EU: &str = "https://llm-gateway.eu.assemblyai.com/v1/chat/completions";
    const OK_BODY: &str =
        r#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}]}"#;
    const KEY: &[(&str, &str)] = &[("authorization", "k3y")];

    fn status_cause(f: &RequestFacts, status: u16, message: Option<&str>) -> Diagnosis {
        diagnose(&DiagnosisInput {
            status: Some(status),
            message,
            end: Some(BodyEnd::Complete),
            json: Some(JsonStatus::Complete),
            ..DiagnosisInput::new(f)
        })
        .unwrap()
    }

    #[test]
    fn auth_causes_come_from_the_request() {
        let gw = Some("Authentication error, API token missing/invalid");
        let f = facts(US, &[], OK_BODY);
        assert_eq!(status_cause(&f, 401, gw).cause, Cause::AuthMissingKey);
        let f = facts(US, &[("authorisation", "k3y")], OK_BODY);
        let d = status_cause(&f, 401, gw);
        assert_eq!(d.cause, Cause::AuthHeaderMisspelled);
        assert!(d.detail.unwrap().contains("`authorisation`"));
        let f = facts(US, &[("x-api-key", "k3y")], OK_BODY);
        assert_eq!(status_cause(&f, 403, gw).cause, Cause::AuthHeaderMisspelled);
        let f = facts(&format!("{US}?api_key=k3y"), &[], OK_BODY);
        assert_eq!(status_cause(&f, 401, gw).cause, Cause::AuthKeyInQuery);
        let f = facts(US, KEY, OK_BODY);
        assert_eq!(status_cause(&f, 401, gw).cause, Cause::AuthInvalidKey);
        let f = facts(US, &[("authorization", "Bearer k3y")], OK_BODY);
        let d = status_cause(&f, 401, None);
        assert_eq!(d.cause, Cause::AuthInvalidKey);
        assert!(d.detail.unwrap().contains("Bearer"));
        let f = facts(EU, KEY, OK_BODY);
        let d = status_cause(&f, 401, gw);
        assert_eq!(d.cause, Cause::AuthWrongRegionKey);
        assert!(d.fix.contains("generated for the EU region"));
        // A misspelled header beside a real one is not the cause.
        let f = facts(
            US,
            &[("authorization", "k3y"), ("authorisation", "k3y")],
            OK_BODY,
        );
        assert_eq!(status_cause(&f, 401, gw).cause, Cause::AuthInvalidKey);
    }

    #[test]
    fn bad_requests_are_named_by_the_message_then_by_the_request() {
        let f = facts(US, KEY, OK_BODY);
        let cases = [
            (
                "Invalid request: missing required field 'model'",
                Cause::BadRequestMissingModel,
            ),
            (
                "Invalid request: 'messages' must be an array",
                Cause::BadRequestMessagesNotArray,
            ),
            (
                "Invalid request: either 'messages' or 'prompt' is required",
                Cause::BadRequestMissingMessages,
            ),
            (
                "Invalid request: 'max_tokens' must be an integer between 1 and 200000",
                Cause::BadRequestMaxTokens,
            ),
            (
                "Model 'foo' is not supported",
                Cause::BadRequestUnsupportedModel,
            ),
            (
                "Invalid request: 'temperature' must be <= 2",
                Cause::BadRequestOther,
            ),
        ];
        for (message, cause) in cases {
            let d = status_cause(&f, 400, Some(message));
            assert_eq!(d.cause, cause, "{message}");
            assert!(d.detail.unwrap().contains(message), "the message is echoed");
        }
        let silent = |body: &str| status_cause(&facts(US, KEY, body), 400, None).cause;
        assert_eq!(silent(r#"{"messages":[]}"#), Cause::BadRequestMissingModel);
        assert_eq!(
            silent(r#"{"model":"m","messages":"hi"}"#),
            Cause::BadRequestMessagesNotArray
        );
        assert_eq!(silent(r#"{"model":"m"}"#), Cause::BadRequestMissingMessages);
        assert_eq!(
            silent(r#"{"model":"m","prompt":"p","max_tokens":0}"#),
            Cause::BadRequestMaxTokens
        );
        assert_eq!(
            silent(r#"{"model":"m","prompt":"p","max_tokens":1.5}"#),
            Cause::BadRequestMaxTokens
        );
        assert_eq!(
            silent(r#"{"model":"m","prompt":"p"}"#),
            Cause::BadRequestOther
        );
        assert_eq!(silent("not json"), Cause::BadRequestOther);
    }

    #[test]
    fn not_found_tells_region_from_spelling() {
        let eu_gpt = facts(EU, KEY, r#"{"model":"gpt-4o","messages":[]}"#);
        assert_eq!(
            status_cause(&eu_gpt, 404, None).cause,
            Cause::ModelNotInRegion
        );
        let us_gpt = facts(US, KEY, r#"{"model":"gpt-9","messages":[]}"#);
        assert_eq!(status_cause(&us_gpt, 404, None).cause, Cause::ModelNotFound);
        let said = status_cause(
            &us_gpt,
            404,
            Some("Model 'gpt-9' is not available in region us"),
        );
        assert_eq!(said.cause, Cause::ModelNotInRegion);

        let listed: Vec<String> = ["claude-sonnet-4-6", "gemini-2.5-flash"]
            .map(String::from)
            .to_vec();
        let with_list = |url: &str, model: &str| {
            let f = facts(url, KEY, &format!(r#"{{"model":"{model}","messages":[]}}"#));
            diagnose(&DiagnosisInput {
                status: Some(404),
                region_models: Some(&listed),
                ..DiagnosisInput::new(&f)
            })
            .unwrap()
        };
        let typo = with_list(EU, "claude-sonet-4-6");
        assert_eq!(typo.cause, Cause::ModelNotFound);
        assert!(typo
            .detail
            .unwrap()
            .contains("did you mean claude-sonnet-4-6?"));
        assert_eq!(
            with_list(EU, "gemini-1.0-ultra-legacy").cause,
            Cause::ModelNotInRegion
        );
        assert_eq!(
            with_list(US, "gemini-1.0-ultra-legacy").cause,
            Cause::ModelNotFound
        );
        assert_eq!(with_list(EU, "llama-3").cause, Cause::ModelNotFound);
    }

    #[test]
    fn rate_limits_and_server_errors() {
        let f = facts(US, KEY, OK_BODY);
        let rate = RateLimit {
            limit: Some(30),
            remaining: Some(0),
            reset_s: Some(7.0),
            retry_after: Some(Duration::from_secs(7)),
            model: None,
        };
        let d = diagnose(&DiagnosisInput {
            status: Some(429),
            rate: Some(&rate),
            ..DiagnosisInput::new(&f)
        })
        .unwrap();
        assert_eq!(d.cause, Cause::RateLimited);
        assert_eq!(
            d.detail.as_deref(),
            Some("limit 30/window, remaining 0, window resets in 7 s, Retry-After 7 s")
        );
        for s in [500, 502, 503, 504] {
            assert_eq!(status_cause(&f, s, None).cause, Cause::UpstreamTransient);
        }
        let html = diagnose(&DiagnosisInput {
            status: Some(502),
            json: Some(JsonStatus::Malformed),
            ..DiagnosisInput::new(&f)
        })
        .unwrap();
        assert!(html.detail.unwrap().contains("load balancer"));
        let repair = facts(
            US,
            KEY,
            r#"{"model":"m","prompt":"p","post_processing_steps":[{"type":"json-repair"}]}"#,
        );
        assert_eq!(
            status_cause(&repair, 500, None).cause,
            Cause::PostProcessingFailed
        );
        assert_eq!(
            status_cause(&repair, 503, None).cause,
            Cause::UpstreamTransient
        );
        assert_eq!(status_cause(&f, 413, None).cause, Cause::UnexpectedStatus);
    }

    #[test]
    fn successes_streams_and_transport() {
        let streamed = facts(
            US,
            KEY,
            r#"{"model":"claude-sonnet-4-6","prompt":"p","stream":true}"#,
        );
        let d = status_cause(&streamed, 200, None);
        assert_eq!((d.cause, d.level), (Cause::StreamIgnored, Level::Notice));
        let ok = facts(US, KEY, OK_BODY);
        let base = DiagnosisInput {
            status: Some(200),
            end: Some(BodyEnd::Complete),
            json: Some(JsonStatus::Complete),
            ..DiagnosisInput::new(&ok)
        };
        assert_eq!(diagnose(&base), None);
        let cause = |i: DiagnosisInput<'_>| diagnose(&i).map(|d| d.cause);
        assert_eq!(
            cause(DiagnosisInput {
                json: Some(JsonStatus::Truncated),
                ..base
            }),
            Some(Cause::MalformedResponse)
        );
        let stream = DiagnosisInput {
            streamed: true,
            json: None,
            ..base
        };
        assert_eq!(cause(stream), Some(Cause::StreamInterrupted));
        assert_eq!(
            cause(DiagnosisInput {
                stream_done: true,
                ..stream
            }),
            None
        );
        assert_eq!(
            cause(DiagnosisInput {
                end: Some(BodyEnd::Failed { timeout: false }),
                ..stream
            }),
            Some(Cause::StreamInterrupted)
        );
        assert_eq!(
            cause(DiagnosisInput {
                end: Some(BodyEnd::Dropped),
                ..stream
            }),
            None
        );
        assert_eq!(
            cause(DiagnosisInput {
                end: Some(BodyEnd::Failed { timeout: true }),
                ..base
            }),
            Some(Cause::Timeout)
        );
        let none = DiagnosisInput::new(&ok);
        assert_eq!(
            cause(DiagnosisInput {
                transport: Some(TransportFailure::Connect),
                ..none
            }),
            Some(Cause::Connect)
        );
        assert_eq!(
            cause(DiagnosisInput {
                transport: Some(TransportFailure::Timeout),
                ..none
            }),
            Some(Cause::Timeout)
        );
        assert_eq!(cause(none), None);
    }

    #[test]
    fn every_cause_has_a_distinct_label_and_a_fix() {
        let mut labels: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Cause::ALL.len());
        for c in Cause::ALL {
            assert!(!c.fix().is_empty() && !c.fix().contains('\n'), "{c}");
        }
    }

    #[test]
    fn openai_models() {
        for m in [
            "gpt-4o",
            "GPT-5",
            "chatgpt-4o-latest",
            "o1",
            "o3-mini",
            "o4-mini",
            "openai/gpt-4.1",
        ] {
            assert!(is_openai_model(m), "{m}");
        }
        for m in ["claude-opus-4-1", "gemini-2.5-pro", "o", "omni", "o10"] {
            assert!(!is_openai_model(m), "{m}");
        }
    }
}

/// The examples that were doc tests before this module became private.
#[cfg(test)]
mod examples {
    #[test]
    fn diagnoses_a_model_not_served_in_the_region() {
        use crate::diagnose::{diagnose, Cause, DiagnosisInput};
        use crate::request::RequestFacts;
        let req = reqwest::Client::new()
            .post("https://llm-gateway.eu.assemblyai.com/v1/chat/completions")
            .header("authorization", "my-key")
            .body(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#)
            .build()
            .unwrap();
        let facts = RequestFacts::from_request(&req);
        let d = diagnose(&DiagnosisInput {
            status: Some(404),
            ..DiagnosisInput::new(&facts)
        })
        .unwrap();
        assert_eq!(d.cause, Cause::ModelNotInRegion);
        assert!(d
            .fix
            .contains("OpenAI models are only available in the US region"));
    }

    #[test]
    fn tells_openai_models() {
        use crate::diagnose::is_openai_model;
        assert!(is_openai_model("gpt-4o-mini") && is_openai_model("o3-mini"));
        assert!(!is_openai_model("claude-sonnet-4-6"));
    }
}
