//! Pre-flight checks: before a request leaves, cheap checks of what the gateway would reject
//! (missing `model`, `messages` as a string, no key, a misspelled `Authorization` header, the
//! key in the URL, an OpenAI model sent to the EU host) or silently ignore (`stream: true` for
//! a model that does not stream, the `Bearer` prefix). Pure: facts in, findings out.
//!
//! The middleware records each finding as a `llm_gateway.preflight` span event and, with
//! [`PreflightMode::FailFast`], refuses to send a request with a [`Severity::Reject`] finding.

use std::fmt;

use super::{bad_max_tokens, is_openai_model, Cause};
use crate::region::Region;
use crate::request::{AuthFacts, AuthHeader, JsonKind, RequestFacts};

/// What the middleware does with pre-flight findings.
///
/// ```
/// use llm_gateway_otel::{GatewayMiddleware, PreflightMode};
/// let strict = GatewayMiddleware::builder()
///     .preflight(PreflightMode::FailFast)
///     .build()
///     .unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreflightMode {
    /// No checks.
    Off,
    /// Record findings as span events and send the request anyway (the default).
    #[default]
    Warn,
    /// Record findings, and do not send a request with a [`Severity::Reject`] finding: the
    /// call returns a [`PreflightError`](crate::PreflightError) naming the field and the fix.
    FailFast,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The gateway would reject the request (400, 401, 404).
    Reject,
    /// The gateway would accept it but ignore part of it, or it is not the documented form.
    Warning,
}

impl Severity {
    /// `reject` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Reject => "reject",
            Severity::Warning => "warning",
        }
    }
}

/// One pre-flight finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What the gateway would answer (the cause the call would fail with).
    pub cause: Cause,
    /// The field, header or part of the URL at fault (`model`, `messages`, `Authorization`).
    pub field: &'static str,
    /// Reject or warning.
    pub severity: Severity,
    /// What was seen (names only, never a value).
    pub detail: String,
}

impl Finding {
    /// The one-line fix.
    pub fn fix(&self) -> &'static str {
        self.cause.fix()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {} — {}", self.field, self.detail, self.fix())
    }
}

/// The findings for a request about to be sent (empty when nothing is wrong).
pub fn preflight(facts: &RequestFacts) -> Vec<Finding> {
    let mut out = Findings(Vec::new());
    if facts.fields.object {
        check_body(&mut out, facts);
    }
    check_auth(&mut out, &facts.auth);
    if let Some(model) = facts.model.as_deref() {
        check_model(&mut out, facts, model);
    }
    out.0
}

/// The findings gathered so far.
struct Findings(Vec<Finding>);

impl Findings {
    fn find(&mut self, cause: Cause, field: &'static str, severity: Severity, detail: String) {
        self.0.push(Finding {
            cause,
            field,
            severity,
            detail,
        });
    }
}

/// A JSON object body: `model`, `messages` (or `prompt`) and `max_tokens` as the gateway
/// wants them.
fn check_body(out: &mut Findings, facts: &RequestFacts) {
    let fields = &facts.fields;
    match fields.model {
        None | Some(JsonKind::Null) => out.find(
            Cause::BadRequestMissingModel,
            "model",
            Severity::Reject,
            "the body has no `model`".to_owned(),
        ),
        Some(JsonKind::String) => {}
        Some(kind) => out.find(
            Cause::BadRequestMissingModel,
            "model",
            Severity::Reject,
            format!("`model` is a {}, not a string", kind.as_str()),
        ),
    }
    match (fields.messages, fields.prompt) {
        (Some(kind), _) if kind != JsonKind::Array && kind != JsonKind::Null => out.find(
            Cause::BadRequestMessagesNotArray,
            "messages",
            Severity::Reject,
            format!("`messages` is a {}, not an array", kind.as_str()),
        ),
        (None | Some(JsonKind::Null), None | Some(JsonKind::Null)) => out.find(
            Cause::BadRequestMissingMessages,
            "messages",
            Severity::Reject,
            "the body has neither `messages` nor `prompt`".to_owned(),
        ),
        _ => {}
    }
    if bad_max_tokens(fields.max_tokens, facts.max_tokens) {
        out.find(
            Cause::BadRequestMaxTokens,
            "max_tokens",
            Severity::Reject,
            "`max_tokens` is not a positive integer".to_owned(),
        );
    }
}

/// The key: in the `Authorization` header, raw, and nowhere else.
fn check_auth(out: &mut Findings, auth: &AuthFacts) {
    let no_key_header = matches!(auth.authorization, AuthHeader::Missing | AuthHeader::Empty);
    let auth_severity = if no_key_header {
        Severity::Reject
    } else {
        Severity::Warning
    };
    if let Some(param) = &auth.key_in_query {
        out.find(
            Cause::AuthKeyInQuery,
            "url",
            auth_severity,
            format!("the URL's query has a `{param}` parameter"),
        );
    }
    if let (Some(header), true) = (&auth.misnamed_header, no_key_header) {
        out.find(
            Cause::AuthHeaderMisspelled,
            "Authorization",
            Severity::Reject,
            format!("header `{header}` is sent, but no `Authorization`"),
        );
    }
    match auth.authorization {
        AuthHeader::Missing | AuthHeader::Empty
            if auth.key_in_query.is_none() && auth.misnamed_header.is_none() =>
        {
            out.find(
                Cause::AuthMissingKey,
                "Authorization",
                Severity::Reject,
                if auth.authorization == AuthHeader::Empty {
                    "the `Authorization` header is empty".to_owned()
                } else {
                    "no `Authorization` header".to_owned()
                },
            )
        }
        AuthHeader::Bearer => out.find(
            Cause::AuthBearerPrefix,
            "Authorization",
            Severity::Warning,
            "`Authorization: Bearer <key>`; the documented form is the raw key".to_owned(),
        ),
        _ => {}
    }
}

/// The model against the region and the stream flag.
fn check_model(out: &mut Findings, facts: &RequestFacts, model: &str) {
    let openai = is_openai_model(model);
    if openai && facts.region == Region::EU {
        out.find(
            Cause::ModelNotInRegion,
            "model",
            Severity::Reject,
            format!("{model} is an OpenAI model, sent to the EU endpoint"),
        );
    }
    if facts.stream && !openai {
        out.find(
            Cause::StreamIgnored,
            "stream",
            Severity::Warning,
            format!("`stream: true` for {model}, which is not an OpenAI model"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, headers: &[(&str, &str)], body: &str) -> Vec<(Cause, Severity)> {
        let mut b = reqwest::Client::new().post(url).body(body.to_owned());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        preflight(&RequestFacts::from_request(&b.build().unwrap()))
            .into_iter()
            .map(|f| (f.cause, f.severity))
            .collect()
    }

    const US: &str = "https://llm-gateway.assemblyai.com/v1/chat/completions";
    const EU: &str = "https://llm-gateway.eu.assemblyai.com/v1/chat/completions";
    const KEY: &[(&str, &str)] = &[("authorization", "k3y")];
    const OK: &str = r#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}]}"#;
    use Severity::*;

    #[test]
    fn a_good_request_has_no_findings() {
        assert_eq!(check(US, KEY, OK), []);
        assert_eq!(
            check(US, KEY, r#"{"model":"m","prompt":"p","max_tokens":5}"#),
            []
        );
        assert_eq!(
            check(US, KEY, r#"{"model":"gpt-4o","prompt":"p","stream":true}"#),
            []
        );
        assert_eq!(check(EU, KEY, OK), []);
    }

    #[test]
    fn body_checks() {
        assert_eq!(
            check(US, KEY, r#"{"messages":[]}"#),
            [(Cause::BadRequestMissingModel, Reject)]
        );
        assert_eq!(
            check(US, KEY, r#"{"model":7,"prompt":"p"}"#),
            [(Cause::BadRequestMissingModel, Reject)]
        );
        assert_eq!(
            check(US, KEY, r#"{"model":"m","messages":"hi"}"#),
            [(Cause::BadRequestMessagesNotArray, Reject)]
        );
        assert_eq!(
            check(US, KEY, r#"{"model":"m","messages":null}"#),
            [(Cause::BadRequestMissingMessages, Reject)]
        );
        assert_eq!(
            check(US, KEY, r#"{"model":"m","prompt":"p","max_tokens":-1}"#),
            [(Cause::BadRequestMaxTokens, Reject)]
        );
        // A body that is not JSON is not described, so not checked.
        assert_eq!(check(US, KEY, "not json"), []);
    }

    #[test]
    fn auth_checks() {
        assert_eq!(check(US, &[], OK), [(Cause::AuthMissingKey, Reject)]);
        assert_eq!(
            check(US, &[("authorization", "")], OK),
            [(Cause::AuthMissingKey, Reject)]
        );
        for typo in ["Authorisation", "Authorizaton", "autorization", "X-Api-Key"] {
            assert_eq!(
                check(US, &[(typo, "k3y")], OK),
                [(Cause::AuthHeaderMisspelled, Reject)],
                "{typo}"
            );
        }
        assert_eq!(
            check(
                US,
                &[("authorization", "k3y"), ("authorisation", "k3y")],
                OK
            ),
            []
        );
        assert_eq!(
            check(&format!("{US}?api_key=k3y"), &[], OK),
            [(Cause::AuthKeyInQuery, Reject)]
        );
        assert_eq!(
            check(&format!("{US}?token=k3y"), KEY, OK),
            [(Cause::AuthKeyInQuery, Warning)]
        );
        assert_eq!(
            check(US, &[("authorization", "Bearer k3y")], OK),
            [(Cause::AuthBearerPrefix, Warning)]
        );
        // Headers far from "authorization" are not typos.
        assert_eq!(
            check(US, &[("authorization", "k3y"), ("x-request-id", "1")], OK),
            []
        );
    }

    #[test]
    fn model_and_stream_checks() {
        assert_eq!(
            check(EU, KEY, r#"{"model":"gpt-4o","messages":[]}"#),
            [(Cause::ModelNotInRegion, Reject)]
        );
        assert_eq!(
            check(
                US,
                KEY,
                r#"{"model":"claude-sonnet-4-6","messages":[],"stream":true}"#
            ),
            [(Cause::StreamIgnored, Warning)]
        );
    }

    #[test]
    fn findings_name_the_field_and_never_a_value() {
        let req = reqwest::Client::new()
            .post(format!("{US}?api_key=sekrit-value"))
            .header("Authorisation", "sekrit-value")
            .body(r#"{"model":"m","messages":"sekrit-value"}"#)
            .build()
            .unwrap();
        let findings = preflight(&RequestFacts::from_request(&req));
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let text = text.join("\n");
        assert!(
            text.contains("`messages`") && text.contains("api_key"),
            "{text}"
        );
        assert!(!text.contains("sekrit"), "{text}");
    }
}

/// The examples that were doc tests before this module became private.
#[cfg(test)]
mod examples {
    #[test]
    fn finds_what_the_gateway_would_reject() {
        use crate::diagnose::{preflight, Cause, Severity};
        use crate::request::RequestFacts;
        let req = reqwest::Client::new()
            .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
            .header("Authorisation", "my-key")
            .body(r#"{"model":"claude-sonnet-4-6","messages":"What is the capital of France?"}"#)
            .build()
            .unwrap();
        let findings = preflight(&RequestFacts::from_request(&req));
        let causes: Vec<Cause> = findings.iter().map(|f| f.cause).collect();
        assert_eq!(
            causes,
            [
                Cause::BadRequestMessagesNotArray,
                Cause::AuthHeaderMisspelled
            ]
        );
        assert!(findings.iter().all(|f| f.severity == Severity::Reject));
    }
}
