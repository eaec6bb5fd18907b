//! The record of one call: its span, its metric attributes and its support report, and the
//! one place where the end of a call is recorded, whichever way it ends: rejected before
//! sending, a transport failure, or a response whose body finished (or was dropped). The
//! retry loop records each attempt, wait and fallback through it; the body observer hands it
//! the outcome at the end of the body.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::KeyValue;

use crate::classify::{classify_response, ResponseVerdictInput, TransportFailure};
use crate::content::RequestContent;
use crate::diagnose::{self, Diagnosis, DiagnosisInput, Finding, Severity};
use crate::names::*;
use crate::outcome::ResponseOutcome;
use crate::ratelimit::RateLimit;
use crate::report::{AttemptRecord, PreflightError, ReportHandle};
use crate::request::RequestFacts;
use crate::telemetry::metrics::{AttemptSummary, CallSummary, MetricAttributes};
use crate::telemetry::{self, AttemptSpans, SpanHandle, Spend, Telemetry};

/// What the first attempt showed, kept until it is known whether it gets a span.
struct KeptAttempt {
    sent_at: SystemTime,
    ended_at: SystemTime,
    status: Option<u16>,
    error_type: Option<std::borrow::Cow<'static, str>>,
}

/// One call's recording, from the moment it is known to be a gateway call to its end.
/// Dropped before it ended (the call's future was dropped while the request was out), it
/// marks the span cancelled.
pub(crate) struct CallRecorder {
    facts: Arc<RequestFacts>,
    attributes: MetricAttributes,
    span: SpanHandle,
    report: ReportHandle,
    telemetry: Arc<Telemetry>,
    started: Instant,
    sent_at: SystemTime,
    /// Attempts sent so far.
    attempts: AtomicU32,
    /// The first attempt, while it has no span (see [`CallRecorder::attempt`]).
    first_attempt: Mutex<Option<KeptAttempt>>,
    /// What the response head said, for the diagnosis at the end.
    rate: RateLimit,
    /// The region's model list, looked up for a 404 when allowed.
    region_models: Option<Arc<[String]>>,
    /// The request's captured content (content capture on).
    content: Option<RequestContent>,
    ended: bool,
}

impl CallRecorder {
    /// Starts the call's span and report (the report goes into the request's `ReportSlot`).
    pub(crate) fn start(
        telemetry: &Arc<Telemetry>,
        facts: Arc<RequestFacts>,
        request: &reqwest::Request,
        extensions: &http::Extensions,
    ) -> CallRecorder {
        let attributes = MetricAttributes::of(&facts, &telemetry.metrics.look().models);
        let span = telemetry::call_span(&telemetry.tracer, &facts, &attributes);
        let capture = telemetry.content;
        let report = ReportHandle::start(request, &facts, extensions, capture.is_on());
        let content = capture.is_on().then(|| {
            let body = request.body().and_then(reqwest::Body::as_bytes);
            let max = telemetry.max_content_bytes;
            let content = body
                .map(|b| crate::content::request_content(b, &facts.secrets, max))
                .unwrap_or_default();
            if capture.on_span() {
                telemetry::record_content(&span, Some(&content), None);
            }
            content
        });
        CallRecorder {
            facts,
            attributes,
            span,
            report,
            telemetry: Arc::clone(telemetry),
            started: Instant::now(),
            sent_at: SystemTime::now(),
            attempts: AtomicU32::new(0),
            first_attempt: Mutex::new(None),
            rate: RateLimit::default(),
            region_models: None,
            content,
            ended: false,
        }
    }

    /// The request's facts.
    pub(crate) fn facts(&self) -> &Arc<RequestFacts> {
        &self.facts
    }

    /// The call's report.
    pub(crate) fn report(&self) -> &ReportHandle {
        &self.report
    }

    /// When the call started: what its duration and a stream's time to first chunk count
    /// from.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    // ---- before sending ----------------------------------------------------------------

    /// Pre-flight findings: events on the span, notes in the report.
    pub(crate) fn preflight(&self, findings: &[Finding]) {
        telemetry::record_preflight(&self.span, findings);
        self.report.set_preflight(findings);
    }

    /// The call ends here, not sent: `rejected` (findings of severity reject, at least one)
    /// stopped it. Returns the error the caller gets.
    pub(crate) fn rejected(mut self, rejected: Vec<Finding>) -> reqwest_middleware::Error {
        debug_assert!(rejected.iter().all(|f| f.severity == Severity::Reject));
        let detail = rejected
            .first()
            .map(|f| format!("`{}`: {} (request not sent)", f.field, f.detail));
        let cause = rejected
            .first()
            .map_or(diagnose::Cause::RequestFailed, |f| f.cause);
        let diagnosis = Diagnosis::error(cause, detail);
        self.report.finish_not_sent(diagnosis.clone());
        let err = PreflightError::new(rejected, self.report.report());
        telemetry::record_preflight_rejection(&self.span, &diagnosis, &err.to_string());
        self.log_line(
            None,
            Some(ERROR_TYPE_PREFLIGHT),
            None,
            Some(&diagnosis),
            None,
        );
        self.ended = true;
        reqwest_middleware::Error::middleware(err)
    }

    // ---- attempts ----------------------------------------------------------------------

    /// Sends one HTTP attempt and records what came back in the attempt metrics, the report
    /// and the attempt's span. The span is started when the attempt is sent (a middleware
    /// after ours runs under it) unless this is the first attempt and attempt spans are
    /// recorded only for retried calls: then its times and outcome are kept, and its span is
    /// made, backdated, if a second attempt follows.
    pub(crate) async fn attempt(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
        resends: u32,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let span = self.attempt_span_now(&request, resends);
        let sent_at = SystemTime::now();
        let started = Instant::now();
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let run = next.run(request, extensions);
        let result = span.as_ref().unwrap_or(&self.span).run_under(run).await;
        let elapsed = started.elapsed();
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let error_type = crate::classify::classify_attempt(&result);
        match &span {
            Some(span) => telemetry::end_attempt(span, status, error_type.as_deref(), None),
            None => {
                let kept = KeptAttempt {
                    sent_at,
                    ended_at: SystemTime::now(),
                    status,
                    error_type: error_type.clone(),
                };
                *self.first_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(kept);
            }
        }
        self.telemetry
            .metrics
            .get()
            .record_attempt(&AttemptSummary {
                attributes: &self.attributes,
                status,
                error_type: error_type.as_deref(),
                duration: elapsed,
            });
        self.report
            .push_attempt(AttemptRecord::of(resends, sent_at, elapsed, &result));
        result
    }

    /// The span of an attempt about to be sent, if it gets one now.
    fn attempt_span_now(&self, request: &reqwest::Request, resends: u32) -> Option<SpanHandle> {
        let always = self.telemetry.attempt_spans == AttemptSpans::Always || self.span.is_tracing();
        if !always && resends == 0 {
            return None;
        }
        Some(telemetry::attempt_span(
            &self.telemetry.tracer,
            &self.span,
            request,
            resends,
            None,
        ))
    }

    /// Another attempt will follow (the retry loop says so before it waits): the first
    /// attempt, kept without a span, gets its span now, backdated to when it ran. A call
    /// dropped during the wait keeps it too.
    pub(crate) fn retrying_soon(&self, request: &reqwest::Request) {
        let kept = self
            .first_attempt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(first) = kept {
            let tracer = &self.telemetry.tracer;
            let span = telemetry::attempt_span(tracer, &self.span, request, 0, Some(first.sent_at));
            let error_type = first.error_type.as_deref();
            telemetry::end_attempt(&span, first.status, error_type, Some(first.ended_at));
        }
    }

    /// A wait before the next attempt (an event on the call's span).
    pub(crate) fn waiting(&self, reason: &'static str, wait: Duration, resends: u32) {
        self.span.event(
            EVENT_RETRY_WAIT,
            vec![
                KeyValue::new(LLM_GATEWAY_RETRY_REASON, reason),
                KeyValue::new(LLM_GATEWAY_RETRY_DELAY_S, wait.as_secs_f64()),
                KeyValue::new(HTTP_REQUEST_RESEND_COUNT, i64::from(resends)),
            ],
        );
    }

    /// A re-send is certain (counted once it is: a call dropped while waiting is no retry).
    pub(crate) fn retrying(&self, reason: &'static str) {
        self.telemetry
            .metrics
            .get()
            .record_retry(&self.attributes, reason);
    }

    /// The next attempt goes to the fallback model `to`.
    pub(crate) fn falling_back(&self, from: Option<&str>, to: &str) {
        self.span.event(
            EVENT_FALLBACK,
            vec![
                KeyValue::new(GEN_AI_REQUEST_MODEL, from.unwrap_or_default().to_owned()),
                KeyValue::new(LLM_GATEWAY_FALLBACK_MODEL, to.to_owned()),
            ],
        );
    }

    /// Pacing reserved the call's slot, from the shared store or the local windows, after
    /// waiting `waited` in all.
    pub(crate) fn paced(&self, shared: bool, waited: Duration) {
        let source = if shared { PACING_SHARED } else { PACING_LOCAL };
        self.span
            .set(KeyValue::new(LLM_GATEWAY_PACING_SOURCE, source));
        self.span.set(KeyValue::new(
            LLM_GATEWAY_PACING_WAIT_S,
            waited.as_secs_f64(),
        ));
    }

    /// The shared store could not be used for `operation`; the call used its local state.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn shared_state_unavailable(&self, operation: &'static str, reason: &str) {
        self.span.event(
            EVENT_SHARED_QUOTA_UNAVAILABLE,
            vec![
                KeyValue::new(LLM_GATEWAY_SHARED_QUOTA_OPERATION, operation),
                KeyValue::new(
                    LLM_GATEWAY_SHARED_QUOTA_REASON,
                    crate::text::truncate_utf8(reason, 256).to_owned(),
                ),
            ],
        );
    }

    /// The attempts are over: `resends` re-sends were made, and `stop` says why a retryable
    /// outcome was not retried (if it was one). A call that was re-sent says how often
    /// (`http.request.resend_count`, which the HTTP conventions ask for only then), and
    /// whether the gateway retried each attempt too (`gateway_retries`): only then did both
    /// retry.
    pub(crate) fn attempts_done(
        &self,
        resends: u32,
        stop: Option<&'static str>,
        gateway_retries: bool,
    ) {
        if let Some(stop) = stop {
            self.span
                .set(KeyValue::new(LLM_GATEWAY_RETRY_STOP_REASON, stop));
        }
        if let Some(resend_count) = telemetry::resend_count_attribute(resends) {
            self.span.set(resend_count);
            if gateway_retries {
                self.span
                    .set(KeyValue::new(LLM_GATEWAY_RETRY_GATEWAY_RETRY, true));
            }
        }
    }

    // ---- the end -----------------------------------------------------------------------

    /// The call ends here: no response arrived.
    pub(crate) fn transport_failed(mut self, err: &reqwest_middleware::Error) {
        let failure = TransportFailure::of(err);
        // reqwest's message names the URL, which may carry a key in its query.
        let message = crate::redact::redact(&err.to_string(), &self.facts.secrets).into_owned();
        telemetry::record_transport_failure(
            &self.span,
            failure.error_type(),
            &message,
            &self.attributes,
            self.started.elapsed(),
            self.telemetry.metrics.get(),
        );
        let causes = diagnose::transport_causes(err, &self.facts);
        let diagnosis = diagnose::diagnose(&DiagnosisInput {
            transport: Some(failure).filter(|f| *f != TransportFailure::Middleware),
            transport_causes: causes.as_deref(),
            ..DiagnosisInput::new(&self.facts)
        });
        telemetry::record_diagnosis(&self.span, diagnosis.as_ref());
        self.log_line(
            None,
            Some(failure.error_type()),
            Some(&message),
            diagnosis.as_ref(),
            None,
        );
        self.report
            .finish_transport(failure.error_type(), diagnosis);
        self.span.end();
        self.ended = true;
    }

    /// The response head arrived: its status and rate-limit headers.
    pub(crate) fn head(&mut self, response: &reqwest::Response) {
        let status = response.status().as_u16();
        self.report.set_status(status);
        self.rate = RateLimit::from_headers(response.headers(), SystemTime::now());
        telemetry::record_response_head(&self.span, status, &self.rate);
        if !self.rate.is_empty() {
            self.telemetry
                .metrics
                .get()
                .record_rate_limit(&self.attributes, &self.rate);
        }
    }

    /// The region's model list, for the diagnosis of a 404.
    pub(crate) fn set_region_models(&mut self, models: Option<Arc<[String]>>) {
        self.region_models = models;
    }

    /// The call ends here: the body ended (or was dropped) showing `outcome`.
    pub(crate) fn finished(mut self, outcome: ResponseOutcome) {
        let answered = (200..300).contains(&outcome.status);
        if answered {
            self.attributes
                .answered(&self.telemetry.metrics.get().models);
        }
        let error_type = classify_response(&ResponseVerdictInput {
            status: outcome.status,
            streamed: outcome.streamed,
            stream_done: outcome.stream.is_some_and(|s| s.done),
            json: outcome.json,
            end: outcome.end,
        });
        let spend = self.spend(&outcome, answered && error_type.is_none());
        telemetry::record_outcome(
            &self.span,
            &outcome,
            self.facts.stream,
            error_type.as_ref(),
            spend,
        );
        self.record_content(&outcome);
        let diagnosis = diagnose::diagnose(&DiagnosisInput::of_outcome(
            &self.facts,
            &outcome,
            &self.rate,
            self.region_models.as_deref(),
        ));
        telemetry::record_diagnosis(&self.span, diagnosis.as_ref());
        self.log_line(
            Some(&outcome),
            error_type.as_deref(),
            outcome.error_message.as_deref(),
            diagnosis.as_ref(),
            spend.cost_usd(),
        );
        self.report
            .finish_response(&outcome, error_type.as_deref(), diagnosis);
        self.telemetry.metrics.get().record_call(&CallSummary {
            attributes: &self.attributes,
            outcome: Some(&outcome),
            status: Some(outcome.status),
            error_type: error_type.as_deref(),
            duration: self.started.elapsed(),
            spend,
        });
        self.span.end();
        self.ended = true;
    }

    /// Where the usage came from and what it cost: an answer reports usage, or, for a 2xx
    /// that did not fail (`succeeded`), it is missing when the body ended without one (a
    /// dropped body or a failure says nothing); the cost is priced at the model that served
    /// the call.
    fn spend(&self, outcome: &ResponseOutcome, succeeded: bool) -> Spend {
        let usage = &outcome.facts.usage;
        let reported = usage.input_tokens.is_some() || usage.output_tokens.is_some();
        let source = if reported {
            Some(USAGE_SOURCE_REPORTED)
        } else if succeeded && outcome.read_to_end() {
            Some(USAGE_SOURCE_MISSING)
        } else {
            None
        };
        let prices = &self.telemetry.prices;
        let cost = match outcome.facts.served_model() {
            Some(model) if reported && !prices.is_empty() => prices.cost(model, usage),
            _ => None,
        };
        Spend { source, cost }
    }

    /// With content capture on: the answer's messages on the span and in the event, and the
    /// response in the report.
    fn record_content(&self, outcome: &ResponseOutcome) {
        let capture = self.telemetry.content;
        if !capture.is_on() {
            return;
        }
        let secrets = &self.facts.secrets;
        let max = self.telemetry.max_content_bytes;
        let kept = outcome.kept_body.as_deref();
        let output = kept.and_then(|body| {
            if outcome.streamed {
                crate::content::output_from_sse(body, secrets, max)
            } else {
                crate::content::output_from_json(body, secrets, max)
            }
        });
        if capture.on_span() {
            telemetry::record_content(&self.span, None, output.as_deref());
        }
        if capture.on_event() {
            telemetry::log::emit_content(&self.span, self.content.as_ref(), output.as_deref());
        }
        if let Some(body) = kept {
            let text = crate::content::kept_text(body, outcome.body_bytes, secrets);
            self.report.set_response(text);
        }
    }

    /// The call's log line (see [`crate::CallLog`]): a failure when it has an `error.type`
    /// or an error-level diagnosis.
    fn log_line(
        &self,
        outcome: Option<&ResponseOutcome>,
        error_type: Option<&str>,
        message: Option<&str>,
        diagnosis: Option<&Diagnosis>,
        cost_usd: Option<f64>,
    ) {
        let failed_diagnosis = diagnosis.filter(|d| d.level == diagnose::Level::Error);
        let failed = error_type.is_some() || failed_diagnosis.is_some();
        telemetry::log::emit(&self.telemetry.log, &self.span, failed, || {
            let facts = outcome.map(|o| &o.facts);
            let served = facts
                .and_then(|f| f.served_model())
                .filter(|s| Some(*s) != self.facts.model.as_deref());
            let error = error_type.map(|t| match message {
                Some(m) => format!("{t}: {}", crate::text::truncate_utf8(m, 512)),
                None => t.to_owned(),
            });
            telemetry::log::LogLine {
                sent_at: self.sent_at,
                region: self.facts.region.as_str(),
                model: self.facts.model.as_deref(),
                served_model: served,
                status_code: outcome.map(|o| o.status),
                request_id: facts.and_then(|f| f.request_id.as_deref()),
                error,
                duration: self.started.elapsed(),
                attempts: self.attempts.load(Ordering::Relaxed),
                cause: failed_diagnosis.map(|d| d.cause.as_str()),
                input_tokens: facts.and_then(|f| f.usage.input_tokens),
                output_tokens: facts.and_then(|f| f.usage.output_tokens),
                cost_usd,
                cancelled: outcome.filter(|o| !o.read_to_end()).map(|_| true),
            }
        });
    }
}

impl Drop for CallRecorder {
    fn drop(&mut self) {
        if !self.ended {
            telemetry::record_cancelled(&self.span);
        }
    }
}
