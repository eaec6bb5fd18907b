//! Support reports: for any observed call, what the gateway's support asks for (request_id,
//! model requested and served, region, timestamp, status, full error body, the attempts made
//! and a minimal reproducing payload with the key redacted), plus the diagnosis. One call away:
//!
//! * from a response: [`SupportReportExt::support_report`] (a snapshot) or
//!   [`SupportReportExt::support_report_handle`] (a live [`ReportHandle`] to read after the
//!   body, since reading the body consumes the response). For a non-2xx answer the body is
//!   read ahead, so the report is complete as soon as the response is returned; for a 2xx the
//!   `request_id` arrives with the body.
//! * from an error: [`SupportReportExt::support_report`] on a pre-flight error, or a
//!   [`ReportSlot`] passed with the request, which the middleware fills in every case
//!   (transport failures included).
//!
//! A report renders as JSON ([`SupportReport::to_json`]) and as the plain text a user pastes
//! into a support email ([`SupportReport::to_text`]). Everything in it went through
//! [`crate::redact`]; the `Authorization` header is never part of it.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::diagnose::{Diagnosis, Finding, Level};
use crate::outcome::ResponseOutcome;
use crate::redact::redact;
use crate::request::RequestFacts;
use crate::rfc3339::rfc3339_utc;

/// Longest string kept in the reproducing payload (longer ones are cut, the cut marked).
pub const MAX_PAYLOAD_STRING: usize = 2000;
/// Target size of the whole reproducing payload; past it, strings are cut much shorter.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// With content capture on, the bound of the whole payload (then kept whole up to it) and of
/// the response kept.
pub const MAX_FULL_PAYLOAD_BYTES: usize = crate::content::MAX_CAPTURED_RESPONSE;
/// One HTTP attempt of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// 0 for the first attempt, then 1, 2, ... (`http.request.resend_count`).
    pub resend_count: u32,
    /// The status, when a response arrived.
    pub status: Option<u16>,
    /// `error.type` of the attempt (a status code of 400 and up, or a transport class).
    pub error_type: Option<String>,
    /// When the attempt was sent.
    pub started_at: SystemTime,
    /// Until the response head (or the failure).
    pub duration: Duration,
}

impl AttemptRecord {
    /// The record of an attempt that returned `result`.
    pub(crate) fn of(
        resend_count: u32,
        started_at: SystemTime,
        duration: Duration,
        result: &reqwest_middleware::Result<reqwest::Response>,
    ) -> AttemptRecord {
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let error_type = crate::classify::classify_attempt(result).map(|t| t.into_owned());
        AttemptRecord {
            resend_count,
            status,
            error_type,
            started_at,
            duration,
        }
    }
}

impl Serialize for AttemptRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AttemptRecord", 5)?;
        st.serialize_field("resend_count", &self.resend_count)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("error_type", &self.error_type)?;
        st.serialize_field("started_at", &rfc3339_utc(self.started_at))?;
        st.serialize_field("duration_ms", &(self.duration.as_secs_f64() * 1e3))?;
        st.end()
    }
}

/// A pre-flight finding as it appears in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightNote {
    /// The cause label.
    pub cause: String,
    /// The field at fault.
    pub field: String,
    /// `reject` or `warning`.
    pub severity: String,
    /// What was seen.
    pub detail: String,
    /// The fix.
    pub fix: String,
}

impl From<&Finding> for PreflightNote {
    fn from(f: &Finding) -> Self {
        PreflightNote {
            cause: f.cause.as_str().to_owned(),
            field: f.field.to_owned(),
            severity: f.severity.as_str().to_owned(),
            detail: f.detail.clone(),
            fix: f.fix().to_owned(),
        }
    }
}

/// What support needs about one call, and what went wrong. Every text in it is redacted.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use llm_gateway_otel::SupportReportExt;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(llm_gateway_otel::GatewayMiddleware::default())
///     .build();
/// let response = client
///     .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
///     .header("authorization", std::env::var("ASSEMBLYAI_API_KEY")?)
///     .body(r#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}]}"#)
///     .send()
///     .await?;
/// if !response.status().is_success() {
///     let report = response.support_report().expect("an observed call");
///     println!("{}", report.to_text()); // paste into an email to support@assemblyai.com
///     println!("{}", report.to_json());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SupportReport {
    /// The gateway's `request_id` (from the body; missing until a 2xx body has been read, and
    /// on errors that carry none).
    pub request_id: Option<String>,
    /// The `model` of the request.
    pub model_requested: Option<String>,
    /// The model that served the call (differs after a fallback).
    pub model_served: Option<String>,
    /// `us`, `eu`, `unknown` or the configured label.
    pub region: String,
    /// `host[:port]` the call went to.
    pub endpoint: String,
    /// When the request was sent, RFC 3339 UTC.
    pub timestamp: String,
    /// `ok`, `failed`, `in_progress` (the body is still being read) or `not_sent` (a
    /// fail-fast pre-flight check stopped it).
    pub outcome: String,
    /// The final HTTP status.
    pub status: Option<u16>,
    /// `error.type` of the call.
    pub error_type: Option<String>,
    /// The diagnosed cause (also `stream_ignored` on a success).
    pub cause: Option<String>,
    /// The one-line fix.
    pub fix: Option<String>,
    /// Specifics: the gateway's message, rate-limit numbers, a likely model name.
    pub detail: Option<String>,
    /// The error message from the body.
    pub error_message: Option<String>,
    /// The full error body, bounded by the middleware's error-body limit, redacted.
    pub error_body: Option<String>,
    /// Pre-flight findings.
    pub preflight: Vec<PreflightNote>,
    /// The HTTP attempts made.
    pub attempts: Vec<AttemptRecord>,
    /// A minimal reproducing request payload: the body sent, with secrets redacted, strings
    /// cut at 2000 bytes and arrays at 50 elements (each
    /// cut marked in place and listed in `payload_notes`). With content capture on
    /// ([`ContentCapture`](crate::ContentCapture)), the full payload, bounded at 1 MiB.
    pub payload: Option<Value>,
    /// What was cut from or could not be kept of the payload.
    pub payload_notes: Vec<String>,
    /// With content capture on: the full response body of a 2xx answer (a stream's events as
    /// they came), redacted, bounded at 1 MiB with the cut marked. What support asks for
    /// with the payload and the `request_id` on a quality issue.
    pub response: Option<String>,
}

impl SupportReport {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The subject line of a support email.
    pub fn subject(&self) -> String {
        let id = self.request_id.as_deref().unwrap_or("without request_id");
        let model = self.model_requested.as_deref().unwrap_or("no model");
        let what = match (self.status, self.cause.as_deref()) {
            (Some(s), Some(c)) => format!("{s} {c}"),
            (Some(s), None) => s.to_string(),
            (None, Some(c)) => c.to_owned(),
            (None, None) => self.outcome.clone(),
        };
        format!(
            "LLM Gateway request {id}: {what} ({model}, {} region)",
            self.region
        )
    }

    /// The plain text for a support email: a subject line, then one field per line, the
    /// error body and the reproducing payload.
    pub fn to_text(&self) -> String {
        let mut t = format!("Subject: {}\n\n", self.subject());
        let or_none = |v: Option<&str>| v.unwrap_or("(none)").to_owned();
        let mut line = |k: &str, v: String| {
            let _ = writeln!(t, "{k:<16}{v}");
        };
        line("request_id:", or_none(self.request_id.as_deref()));
        line("model:", or_none(self.model_requested.as_deref()));
        if self.model_served.is_some() && self.model_served != self.model_requested {
            line("served by:", or_none(self.model_served.as_deref()));
        }
        line("region:", format!("{} ({})", self.region, self.endpoint));
        line("timestamp:", self.timestamp.clone());
        line("outcome:", self.outcome.clone());
        line(
            "status:",
            self.status
                .map_or("(no response)".to_owned(), |s| s.to_string()),
        );
        if let Some(c) = &self.cause {
            line("cause:", c.clone());
        }
        if let Some(f) = &self.fix {
            line("fix:", f.clone());
        }
        if let Some(d) = &self.detail {
            line("detail:", d.clone());
        }
        if let Some(m) = &self.error_message {
            line("error message:", m.clone());
        }
        for p in &self.preflight {
            line(
                "pre-flight:",
                format!("{} {} `{}`: {}", p.severity, p.cause, p.field, p.detail),
            );
        }
        for a in &self.attempts {
            line(
                "attempt:",
                format!(
                    "#{} at {}: {} in {:.1} ms",
                    a.resend_count,
                    rfc3339_utc(a.started_at),
                    match (a.status, &a.error_type) {
                        (Some(s), _) => format!("HTTP {s}"),
                        (None, Some(e)) => e.clone(),
                        (None, None) => "no response".to_owned(),
                    },
                    a.duration.as_secs_f64() * 1e3
                ),
            );
        }
        if let Some(body) = &self.error_body {
            let _ = writeln!(t, "\nerror body:\n{body}");
        }
        if let Some(p) = &self.payload {
            let pretty = serde_json::to_string_pretty(p).unwrap_or_default();
            let _ = writeln!(
                t,
                "\nrequest payload (API key and key-like strings redacted):\n{pretty}"
            );
        }
        for n in &self.payload_notes {
            let _ = writeln!(t, "payload note: {n}");
        }
        if let Some(r) = &self.response {
            let _ = writeln!(
                t,
                "\nresponse (API key and key-like strings redacted):\n{r}"
            );
        }
        t
    }
}

impl fmt::Display for SupportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A live handle on one call's report: cheap to clone, filled in as the call goes (attempts,
/// then the outcome when the body ends). Put in the response's extensions and in a
/// [`ReportSlot`].
///
/// It keeps the request body (a copy when it is small, else a reference-counted clone of a
/// reusable body's bytes) until the report is rendered, so that the payload is built only
/// when someone asks.
#[derive(Clone)]
pub struct ReportHandle(Arc<Mutex<ReportState>>);

struct ReportState {
    /// Shared with the call's body observer: one read of the request per call.
    facts: Arc<RequestFacts>,
    sent_at: SystemTime,
    body: Option<reqwest::Body>,
    /// Content capture is on: the payload is kept whole, and the response.
    full: bool,
    response: Option<String>,
    outcome: &'static str,
    status: Option<u16>,
    request_id: Option<String>,
    model_served: Option<String>,
    error_type: Option<String>,
    diagnosis: Option<Diagnosis>,
    error_message: Option<String>,
    error_body: Option<String>,
    preflight: Vec<PreflightNote>,
    attempts: Vec<AttemptRecord>,
}

impl fmt::Debug for ReportHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("ReportHandle")
            .field("outcome", &st.outcome)
            .field("status", &st.status)
            .field("request_id", &st.request_id)
            .finish_non_exhaustive()
    }
}

/// Request bodies up to this size are copied into the report; larger ones are shared.
const COPIED_BODY_LIMIT: usize = 16 * 1024;

/// The request body as the report keeps it (`None` for a stream). A small body is copied:
/// one allocation, cheaper than `Request::try_clone`, which is the only way to share a body's
/// bytes and also clones the URL, every header and the extensions. A large body is shared
/// through that clone (no byte copy; the cloned rest is dropped at once).
fn keep_body(request: &reqwest::Request) -> Option<reqwest::Body> {
    let bytes = request.body()?.as_bytes()?;
    if bytes.len() <= COPIED_BODY_LIMIT {
        return Some(reqwest::Body::from(bytes::Bytes::copy_from_slice(bytes)));
    }
    request.try_clone().and_then(|mut r| r.body_mut().take())
}

impl ReportHandle {
    /// Starts the report of a call about to be sent, and puts it in the request's
    /// [`ReportSlot`] if there is one.
    pub(crate) fn start(
        request: &reqwest::Request,
        facts: &Arc<RequestFacts>,
        extensions: &http::Extensions,
        full: bool,
    ) -> ReportHandle {
        let handle = ReportHandle(Arc::new(Mutex::new(ReportState {
            facts: Arc::clone(facts),
            sent_at: SystemTime::now(),
            body: keep_body(request),
            full,
            response: None,
            outcome: "in_progress",
            status: None,
            request_id: None,
            model_served: None,
            error_type: None,
            diagnosis: None,
            error_message: None,
            error_body: None,
            preflight: Vec::new(),
            attempts: Vec::new(),
        })));
        if let Some(slot) = extensions.get::<ReportSlot>() {
            slot.set(handle.clone());
        }
        handle
    }

    fn lock(&self) -> MutexGuard<'_, ReportState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The report as of now.
    pub fn report(&self) -> SupportReport {
        let st = self.lock();
        let secrets = &st.facts.secrets;
        let clean = |s: &Option<String>| s.as_deref().map(|v| redact(v, secrets).into_owned());
        let (payload, payload_notes) = reproducing_payload(st.body.as_ref(), secrets, st.full);
        SupportReport {
            request_id: clean(&st.request_id),
            model_requested: clean(&st.facts.model),
            model_served: clean(&st.model_served),
            region: st.facts.region.as_str().to_owned(),
            endpoint: match st.facts.server_port {
                Some(p) => format!("{}:{p}", st.facts.server_address),
                None => st.facts.server_address.clone(),
            },
            timestamp: rfc3339_utc(st.sent_at),
            outcome: st.outcome.to_owned(),
            status: st.status,
            error_type: st.error_type.clone(),
            cause: st.diagnosis.as_ref().map(|d| d.cause.as_str().to_owned()),
            fix: st.diagnosis.as_ref().map(|d| d.fix.to_owned()),
            detail: st.diagnosis.as_ref().and_then(|d| clean(&d.detail)),
            error_message: clean(&st.error_message),
            error_body: clean(&st.error_body),
            preflight: st.preflight.clone(),
            attempts: st.attempts.clone(),
            payload,
            payload_notes,
            response: st.response.clone(),
        }
    }

    /// The response as content capture kept it (redacted and bounded already).
    pub(crate) fn set_response(&self, response: String) {
        self.lock().response = Some(response);
    }

    /// Appends one HTTP attempt (the retry loop calls this once per attempt).
    pub(crate) fn push_attempt(&self, attempt: AttemptRecord) {
        self.lock().attempts.push(attempt);
    }

    pub(crate) fn set_preflight(&self, findings: &[Finding]) {
        self.lock().preflight = findings.iter().map(PreflightNote::from).collect();
    }

    /// The request was not sent: a fail-fast pre-flight check stopped it.
    pub(crate) fn finish_not_sent(&self, diagnosis: Diagnosis) {
        let mut st = self.lock();
        st.outcome = "not_sent";
        st.error_type = Some(crate::names::ERROR_TYPE_PREFLIGHT.to_owned());
        st.diagnosis = Some(diagnosis);
    }

    /// No response arrived.
    pub(crate) fn finish_transport(&self, error_type: &str, diagnosis: Option<Diagnosis>) {
        let mut st = self.lock();
        st.outcome = "failed";
        st.error_type = Some(error_type.to_owned());
        st.diagnosis = diagnosis;
    }

    /// The response's body ended (or was dropped).
    pub(crate) fn finish_response(
        &self,
        o: &ResponseOutcome,
        error_type: Option<&str>,
        diagnosis: Option<Diagnosis>,
    ) {
        let mut st = self.lock();
        let failed =
            error_type.is_some() || diagnosis.as_ref().is_some_and(|d| d.level == Level::Error);
        st.outcome = if failed { "failed" } else { "ok" };
        st.status = Some(o.status);
        st.request_id = o.facts.request_id.clone();
        st.model_served = o.facts.served_model().map(str::to_owned);
        st.error_type = error_type.map(str::to_owned);
        st.diagnosis = diagnosis;
        st.error_message = o.error_message.clone();
        st.error_body = o.error_body.clone();
    }

    /// The status is known as soon as the head arrives (the rest when the body ends).
    pub(crate) fn set_status(&self, status: u16) {
        self.lock().status = Some(status);
    }
}

/// A per-request place for the report, for calls that end in an error (a transport failure,
/// a fail-fast pre-flight check) and so return no response to ask. Pass it with
/// `reqwest_middleware::RequestBuilder::with_extension`; the middleware fills it for every
/// observed call.
///
/// ```no_run
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) {
/// use llm_gateway_otel::ReportSlot;
/// let slot = ReportSlot::new();
/// let result = client
///     .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
///     .with_extension(slot.clone())
///     .body(r#"{"model":"claude-sonnet-4-6","messages":[]}"#)
///     .send()
///     .await;
/// if result.is_err() {
///     if let Some(report) = slot.report() {
///         eprintln!("{}", report.to_text());
///     }
/// }
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ReportSlot(Arc<Mutex<Option<ReportHandle>>>);

impl fmt::Debug for ReportSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReportSlot").field(&self.handle()).finish()
    }
}

impl ReportSlot {
    /// An empty slot.
    pub fn new() -> ReportSlot {
        ReportSlot::default()
    }

    fn set(&self, handle: ReportHandle) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    /// The live handle, once the middleware saw the call.
    pub fn handle(&self) -> Option<ReportHandle> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The report as of now, once the middleware saw the call.
    pub fn report(&self) -> Option<SupportReport> {
        self.handle().map(|h| h.report())
    }
}

/// The support report, one call away from a response or an error.
///
/// ```no_run
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> Result<(), Box<dyn std::error::Error>> {
/// use llm_gateway_otel::SupportReportExt;
/// let response = client
///     .post("https://llm-gateway.assemblyai.com/v1/chat/completions")
///     .body(r#"{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}]}"#)
///     .send()
///     .await?;
/// let handle = response.support_report_handle(); // keep it: reading the body consumes the response
/// let text = response.text().await?;
/// if let Some(h) = handle {
///     println!("request_id {:?}", h.report().request_id); // filled once the body was read
/// }
/// # Ok(()) }
/// ```
pub trait SupportReportExt {
    /// The report as of now; `None` for calls the middleware did not observe.
    fn support_report(&self) -> Option<SupportReport>;
    /// A live handle on the report; `None` when there is none to follow.
    fn support_report_handle(&self) -> Option<ReportHandle>;
}

impl SupportReportExt for reqwest::Response {
    fn support_report(&self) -> Option<SupportReport> {
        self.support_report_handle().map(|h| h.report())
    }

    fn support_report_handle(&self) -> Option<ReportHandle> {
        self.extensions().get::<ReportHandle>().cloned()
    }
}

impl SupportReportExt for reqwest_middleware::Error {
    /// The report carried by a [`PreflightError`](PreflightError); for a
    /// transport failure use a [`ReportSlot`].
    fn support_report(&self) -> Option<SupportReport> {
        match self {
            reqwest_middleware::Error::Middleware(e) => e
                .downcast_ref::<PreflightError>()
                .map(|p| p.report().clone()),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }

    fn support_report_handle(&self) -> Option<ReportHandle> {
        None
    }
}

/// The request body as a bounded, redacted JSON value, and notes on what was cut: strings
/// at [`MAX_PAYLOAD_STRING`] bytes and the whole at [`MAX_PAYLOAD_BYTES`], or with content
/// capture on (`full`), the whole payload up to [`MAX_FULL_PAYLOAD_BYTES`].
fn reproducing_payload(
    body: Option<&reqwest::Body>,
    secrets: &[String],
    full: bool,
) -> (Option<Value>, Vec<String>) {
    // With capture on, the payload is kept whole up to its bound: no string or array cut.
    let bounds = if full {
        crate::content::Bounds {
            string: MAX_FULL_PAYLOAD_BYTES,
            array: usize::MAX,
            total: MAX_FULL_PAYLOAD_BYTES,
        }
    } else {
        crate::content::Bounds {
            string: MAX_PAYLOAD_STRING,
            array: crate::content::MAX_ARRAY,
            total: MAX_PAYLOAD_BYTES,
        }
    };
    let mut notes = Vec::new();
    let Some(bytes) = body.and_then(reqwest::Body::as_bytes) else {
        notes.push("the request body was a stream (or absent) and was not kept".to_owned());
        return (None, notes);
    };
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        let text = String::from_utf8_lossy(bytes);
        let clean = redact(&text, secrets);
        notes.push(format!(
            "the request body is not JSON ({} bytes)",
            bytes.len()
        ));
        let kept = crate::content::cut(&clean, bounds.string, &mut notes, "body");
        return (Some(Value::String(kept)), notes);
    };
    let bounded = crate::content::bound_value(&value, secrets, bounds, &mut notes);
    (Some(bounded), notes)
}

/// The error a [`PreflightMode::FailFast`](crate::diagnose::PreflightMode::FailFast) call returns instead of sending the request (inside
/// `reqwest_middleware::Error::Middleware`). It names the field and the fix, and carries the
/// call's [`SupportReport`].
///
/// ```no_run
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) {
/// use llm_gateway_otel::SupportReportExt;
/// match client.post("https://llm-gateway.assemblyai.com/v1/chat/completions").send().await {
///     Err(e) => {
///         eprintln!("{e}"); // names the field and the fix
///         if let Some(report) = e.support_report() {
///             eprintln!("{}", report.to_text());
///         }
///     }
///     Ok(_) => {}
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PreflightError {
    findings: Vec<Finding>,
    report: Box<SupportReport>,
}

impl PreflightError {
    pub(crate) fn new(findings: Vec<Finding>, report: SupportReport) -> Self {
        PreflightError {
            findings,
            report: Box::new(report),
        }
    }

    /// The findings that stopped the request (severity [`Severity::Reject`](crate::diagnose::Severity::Reject)).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The support report of the call that was not sent.
    pub fn report(&self) -> &SupportReport {
        &self.report
    }
}

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LLM gateway pre-flight check failed, request not sent: ")?;
        for (i, finding) in self.findings.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{finding}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PreflightError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: &str, secrets: &[&str]) -> (Value, Vec<String>) {
        let body = reqwest::Body::from(body.to_owned());
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let (v, notes) = reproducing_payload(Some(&body), &secrets, false);
        (v.unwrap(), notes)
    }

    #[test]
    fn payload_redacts_keys_and_key_like_strings() {
        let key = "5f0e3c9a7b1d4e2f8a6c0b9d3e7f1a2c";
        let body = format!(
            r#"{{"model":"m","api_key":"{key}","messages":[{{"role":"user","content":"my key is {key} and sk-abcdefghijklmnopqrstu"}}],"max_tokens":5}}"#
        );
        let (v, notes) = payload(&body, &["plain-secret"]);
        let text = v.to_string();
        assert!(
            !text.contains(key) && !text.contains("sk-abcdefghijklmnop"),
            "{text}"
        );
        assert_eq!(v["api_key"], crate::redact::REDACTED);
        assert_eq!(v["max_tokens"], 5, "max_tokens is not a secret");
        assert!(notes.is_empty(), "{notes:?}");
        let (v, _) = payload(r#"{"prompt":"tell plain-secret"}"#, &["plain-secret"]);
        assert_eq!(v["prompt"], "tell [REDACTED]");
    }

    #[test]
    fn payload_is_bounded_and_the_cuts_are_marked() {
        let long = "a".repeat(5000);
        let messages: Vec<Value> = (0..120)
            .map(|i| serde_json::json!({"role": "user", "content": format!("turn {i} {long}")}))
            .collect();
        let body = serde_json::json!({"model": "m", "messages": messages}).to_string();
        let (v, notes) = payload(&body, &[]);
        let kept = v["messages"].as_array().unwrap();
        assert_eq!(
            kept.len(),
            crate::content::MAX_ARRAY + 1,
            "first, marker, last 49"
        );
        assert!(kept[0]["content"].as_str().unwrap().starts_with("turn 0 "));
        assert_eq!(kept[1], "…[70 elements omitted]");
        assert!(kept[50]["content"]
            .as_str()
            .unwrap()
            .starts_with("turn 119 "));
        assert!(kept[50]["content"]
            .as_str()
            .unwrap()
            .contains("…[truncated: "));
        assert!(
            v.to_string().len() <= MAX_PAYLOAD_BYTES,
            "{}",
            v.to_string().len()
        );
        assert!(
            notes.iter().any(|n| n.contains("messages: 120 elements")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_non_json_body_is_kept_as_redacted_text() {
        let (v, notes) = payload("model=m&key=5f0e3c9a7b1d4e2f8a6c0b9d3e7f1a2c", &[]);
        assert_eq!(v, Value::String("model=m&key=[REDACTED]".to_owned()));
        assert!(notes[0].contains("not JSON"));
    }
}
