//! The attempt loop: sends a gateway call, and while the outcome is worth it, waits (backoff
//! with full jitter, or the server's `Retry-After` / `X-RateLimit-Reset`, whichever is
//! longer) and sends again, or moves to the next fallback model. Bounded by attempts, a
//! deadline and a budget shared by the client. Each attempt has its own span; each wait is
//! an event on the call's span.
//!
//! Only outcomes seen before the response is handed to the user are retried: once a body
//! starts reaching the user (a 2xx, a stream) the call is never re-sent.

pub mod body;
mod budget;
mod hints;
mod pacing;
mod policy;

use std::time::Duration;

use http::Extensions;
use opentelemetry::KeyValue;
use reqwest_middleware::Next;
use reqwest_retry::Retryable;
use tokio::time::Instant;

pub use budget::BudgetConfig;
pub use hints::{server_wait, WaitReason};
pub use policy::{DefaultRetryClassifier, FallbackMode, Retry, RetryClassifier};

pub(crate) use budget::RetryBudget;
pub(crate) use pacing::Pacer;

use crate::config::Config;
use crate::names::*;
use crate::ratelimit::RateLimit;
use crate::report::{AttemptRecord, ReportHandle};
use crate::request::RequestFacts;
use crate::telemetry::{self, SpanHandle};

/// Shared state of the retry feature: the settings, the client-wide budget and pacer.
#[derive(Debug)]
pub(crate) struct RetryState {
    pub(crate) settings: Retry,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) pacer: Pacer,
}

impl RetryState {
    pub(crate) fn new(settings: Retry) -> RetryState {
        RetryState {
            budget: settings.budget.map(RetryBudget::new),
            pacer: Pacer::default(),
            settings,
        }
    }
}

/// Why retries stopped although the outcome was retryable (`llm_gateway.retry.stop_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    MaxAttempts,
    Deadline,
    Budget,
    HintExceedsMaxWait,
    BodyNotClonable,
}

impl Stop {
    fn as_str(self) -> &'static str {
        match self {
            Stop::MaxAttempts => "max_attempts",
            Stop::Deadline => "deadline",
            Stop::Budget => "budget",
            Stop::HintExceedsMaxWait => "hint_exceeds_max_wait",
            Stop::BodyNotClonable => "body_not_clonable",
        }
    }
}

/// What to do after an attempt.
enum Decision {
    Done,
    Stop(Stop),
    Wait(Duration, WaitReason),
    Fallback(String),
}

/// Sends the call, with retries and fallbacks when the middleware has them.
pub(crate) async fn send(
    config: &Config,
    call: &SpanHandle,
    facts: &RequestFacts,
    report: &ReportHandle,
    mut request: reqwest::Request,
    extensions: &mut Extensions,
    next: Next<'_>,
) -> reqwest_middleware::Result<reqwest::Response> {
    let sender = Sender {
        config,
        call,
        facts,
        report,
    };
    let Some(retry) = config.retry.as_ref() else {
        let result = sender.attempt(request, extensions, next, 0).await;
        return finish(call, 0, result);
    };
    let settings = &retry.settings;
    let deadline = Instant::now() + settings.deadline;
    let chain: &[String] = facts
        .model
        .as_ref()
        .and_then(|m| settings.fallbacks.get(m))
        .map_or(&[], Vec::as_slice);
    prepare_body(settings, call, facts, &mut request, chain);
    if let Some(budget) = &retry.budget {
        budget.record_request();
    }
    let host = facts.server_address.as_str();
    let mut model = facts.model.clone();
    let mut next_fallback = 0;
    let mut resends: u32 = 0;
    let mut retries_on_model: u32 = 0;
    loop {
        if settings.pacing {
            if let Some(wait) = model.as_deref().and_then(|m| retry.pacer.wait_for(host, m)) {
                if wait <= settings.max_wait && Instant::now() + wait < deadline {
                    wait_event(call, WaitReason::Pacing, wait, resends);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let spare = request.try_clone();
        let result = sender
            .attempt(request, extensions, next.clone(), resends)
            .await;
        // The rate-limit headers are read only when something uses them: the pacer (only
        // consulted when pacing is on) or a retry's wait.
        let read_rate = || {
            result
                .as_ref()
                .ok()
                .map(|r| RateLimit::from_headers(r.headers(), std::time::SystemTime::now()))
        };
        if settings.pacing {
            if let (Some(rate), Some(m)) = (read_rate(), model.as_deref()) {
                retry.pacer.observe(host, m, &rate);
            }
        }
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let can_fall_back =
            settings.fallback_mode == FallbackMode::Resend && next_fallback < chain.len();
        let decision = match settings.classifier.classify(&result) {
            Some(Retryable::Transient) => {
                let hint = read_rate().as_ref().and_then(server_wait);
                let backoff = settings.backoff_for(retries_on_model);
                let (wait, reason) = match hint {
                    Some((h, reason)) if h >= backoff => (h, reason),
                    _ => (backoff, WaitReason::Backoff),
                };
                let rate_limited = status == Some(429);
                if hint.is_some_and(|(h, _)| h > settings.max_wait) {
                    if rate_limited && can_fall_back {
                        Decision::Fallback(chain[next_fallback].clone())
                    } else {
                        Decision::Stop(Stop::HintExceedsMaxWait)
                    }
                } else if retries_on_model + 1 >= settings.max_attempts {
                    if rate_limited && can_fall_back {
                        Decision::Fallback(chain[next_fallback].clone())
                    } else {
                        Decision::Stop(Stop::MaxAttempts)
                    }
                } else if Instant::now() + wait > deadline {
                    Decision::Stop(Stop::Deadline)
                } else {
                    Decision::Wait(wait, reason)
                }
            }
            _ if status == Some(404) && can_fall_back => {
                Decision::Fallback(chain[next_fallback].clone())
            }
            _ => Decision::Done,
        };
        let (decision, mut again) = match (decision, spare) {
            (Decision::Done, _) => return finish(call, resends, result),
            (Decision::Stop(stop), _) => return stop_with(call, stop, resends, result),
            (_, None) => return stop_with(call, Stop::BodyNotClonable, resends, result),
            (_, Some(_)) if retry.budget.as_ref().is_some_and(|b| !b.try_retry()) => {
                return stop_with(call, Stop::Budget, resends, result);
            }
            (decision, Some(again)) => (decision, again),
        };
        drop(result);
        match decision {
            Decision::Wait(wait, reason) => {
                wait_event(call, reason, wait, resends);
                tokio::time::sleep(wait).await;
                // Counted once the re-send is certain: a call dropped while waiting is not a retry.
                config.metrics.record_retry(facts, reason.as_str());
                retries_on_model += 1;
            }
            Decision::Fallback(to) => {
                call.event(
                    EVENT_FALLBACK,
                    vec![
                        KeyValue::new(GEN_AI_REQUEST_MODEL, model.clone().unwrap_or_default()),
                        KeyValue::new(LLM_GATEWAY_FALLBACK_MODEL, to.clone()),
                    ],
                );
                config
                    .metrics
                    .record_retry(facts, WaitReason::Fallback.as_str());
                next_fallback += 1;
                retries_on_model = 0;
                // Once per model: later retries re-send this rewritten body as it is.
                rewrite_body(&mut again, |b| body::with_model(b, &to));
                model = Some(to);
            }
            Decision::Done | Decision::Stop(_) => {}
        }
        request = again;
        resends += 1;
    }
}

/// What every attempt of one call shares.
struct Sender<'a> {
    config: &'a Config,
    call: &'a SpanHandle,
    facts: &'a RequestFacts,
    report: &'a ReportHandle,
}

impl Sender<'_> {
    /// One HTTP attempt under its own span, recorded in the call's report too.
    async fn attempt(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        resends: u32,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let span =
            telemetry::attempt_span(&self.config.tracer, self.call, &request, i64::from(resends));
        let sent_at = std::time::SystemTime::now();
        let started = std::time::Instant::now();
        let result = span.run_under(next.run(request, extensions)).await;
        let elapsed = started.elapsed();
        telemetry::end_attempt(&span, &result, self.facts, elapsed, &self.config.metrics);
        let record = AttemptRecord::of(resends, sent_at, elapsed, &result);
        self.report.push_attempt(record);
        result
    }
}

fn finish(
    call: &SpanHandle,
    resends: u32,
    result: reqwest_middleware::Result<reqwest::Response>,
) -> reqwest_middleware::Result<reqwest::Response> {
    call.set(KeyValue::new(HTTP_REQUEST_RESEND_COUNT, i64::from(resends)));
    result
}

fn stop_with(
    call: &SpanHandle,
    stop: Stop,
    resends: u32,
    result: reqwest_middleware::Result<reqwest::Response>,
) -> reqwest_middleware::Result<reqwest::Response> {
    call.set(KeyValue::new(LLM_GATEWAY_RETRY_STOP_REASON, stop.as_str()));
    finish(call, resends, result)
}

fn wait_event(call: &SpanHandle, reason: WaitReason, wait: Duration, resends: u32) {
    call.event(
        EVENT_RETRY_WAIT,
        vec![
            KeyValue::new(LLM_GATEWAY_RETRY_REASON, reason.as_str()),
            KeyValue::new(LLM_GATEWAY_RETRY_DELAY_S, wait.as_secs_f64()),
            KeyValue::new(HTTP_REQUEST_RESEND_COUNT, i64::from(resends)),
        ],
    );
}

/// Body changes made once, before the first attempt: the gateway's `fallbacks` field, and
/// `fallback_config.retry: false` when asked for; otherwise a note when both the gateway and
/// we retry.
fn prepare_body(
    settings: &Retry,
    call: &SpanHandle,
    facts: &RequestFacts,
    request: &mut reqwest::Request,
    chain: &[String],
) {
    if settings.fallback_mode == FallbackMode::Gateway && !chain.is_empty() {
        rewrite_body(request, |b| body::with_gateway_fallbacks(b, chain));
    }
    if settings.disable_gateway_retry {
        rewrite_body(request, body::without_gateway_retry);
    } else if settings.max_attempts > 1 {
        // Read with the request's facts when the body is a JSON object (a gateway-fallbacks
        // rewrite above leaves `fallback_config` as it was); parsed here otherwise.
        let gateway_retries = facts.gateway_retries.unwrap_or_else(|| {
            request
                .body()
                .and_then(|b| b.as_bytes())
                .is_some_and(body::gateway_retries)
        });
        if gateway_retries {
            call.set(KeyValue::new(LLM_GATEWAY_RETRY_GATEWAY_RETRY, true));
        }
    }
}

/// Replaces a buffered JSON body by `edit(body)`; streaming or non-JSON bodies stay as they are.
fn rewrite_body(request: &mut reqwest::Request, edit: impl FnOnce(&[u8]) -> Option<Vec<u8>>) {
    let Some(new) = request.body().and_then(|b| b.as_bytes()).and_then(edit) else {
        return;
    };
    request.headers_mut().remove(http::header::CONTENT_LENGTH);
    *request.body_mut() = Some(reqwest::Body::from(new));
}
