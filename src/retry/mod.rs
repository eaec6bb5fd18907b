//! The attempt loop: sends a gateway call, and while the outcome is worth it, waits (backoff
//! with full jitter, or the server's `Retry-After` / `X-RateLimit-Reset`, whichever is
//! longer) and sends again, or moves to the next fallback model. Bounded by attempts, a
//! deadline and a budget shared by the client. What to do after an attempt is `decide`'s
//! pure decision; the loop carries it out and records each attempt, wait and fallback through
//! the call's recorder.
//!
//! Only outcomes seen before the response is handed to the user are retried: once a body
//! starts reaching the user (a 2xx, a stream) the call is never re-sent.

pub(crate) mod body;
mod budget;
mod hints;
mod pacing;
mod policy;
#[cfg(feature = "redis")]
mod shared;

use std::time::Duration;

use http::Extensions;
use reqwest_middleware::Next;
use reqwest_retry::Retryable;
use tokio::time::Instant;

pub use budget::BudgetConfig;
pub(crate) use hints::WaitReason;
pub use policy::{DefaultRetryClassifier, FallbackMode, Retry, RetryClassifier};
#[cfg(feature = "redis")]
pub use shared::{SharedQuota, DEFAULT_SHARED_TIMEOUT};

use crate::call::CallRecorder;
use crate::ratelimit::RateLimit;
use crate::request::RequestFacts;
use budget::RetryBudget;
use hints::server_wait;
use pacing::{LocalWindows, Slot};

/// The retry part of the middleware: its settings, and the state every call through the
/// middleware shares (the retry budget, the pacing windows; with a shared store, those of
/// every replica too).
#[derive(Debug)]
pub(crate) struct Retrier {
    settings: Retry,
    budget: Option<RetryBudget>,
    windows: LocalWindows,
    #[cfg(feature = "redis")]
    shared: Option<std::sync::Arc<shared::SharedStore>>,
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
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Done,
    Stop(Stop),
    Wait(Duration, WaitReason),
    Fallback(String),
}

/// What [`decide`] looks at after an attempt.
#[derive(Debug, Clone, Copy)]
struct Situation<'a> {
    /// The classifier said the outcome is worth another attempt.
    retryable: bool,
    status: Option<u16>,
    /// The server's wait (`Retry-After`, `X-RateLimit-Reset`), read for a retryable outcome.
    hint: Option<(Duration, WaitReason)>,
    /// The jittered backoff before the next attempt on the same model.
    backoff: Duration,
    /// Retries already made on the current model.
    retries_on_model: u32,
    /// The next fallback model, when re-sending to one is possible.
    fallback: Option<&'a str>,
    /// Until the call's deadline.
    time_left: Duration,
}

/// The decision after an attempt: done, stop retrying (and why), wait and send again, or
/// send to the next fallback model. Pure.
fn decide(settings: &Retry, s: &Situation<'_>) -> Decision {
    let fall_back = |otherwise: Decision| match s.fallback {
        Some(model) if s.status == Some(429) => Decision::Fallback(model.to_owned()),
        _ => otherwise,
    };
    if !s.retryable {
        return match s.fallback {
            Some(model) if s.status == Some(404) => Decision::Fallback(model.to_owned()),
            _ => Decision::Done,
        };
    }
    let (wait, reason) = match s.hint {
        Some((hint, reason)) if hint >= s.backoff => (hint, reason),
        _ => (s.backoff, WaitReason::Backoff),
    };
    if s.hint.is_some_and(|(hint, _)| hint > settings.max_wait) {
        fall_back(Decision::Stop(Stop::HintExceedsMaxWait))
    } else if s.retries_on_model + 1 >= settings.max_attempts {
        fall_back(Decision::Stop(Stop::MaxAttempts))
    } else if wait > s.time_left {
        Decision::Stop(Stop::Deadline)
    } else {
        Decision::Wait(wait, reason)
    }
}

/// Where a call's attempts stand.
struct Progress {
    /// Whether the gateway retries each attempt too (the body leaves `fallback_config.retry`
    /// on while we retry).
    gateway_retries: bool,
    /// The model the next attempt asks for.
    model: Option<String>,
    next_fallback: usize,
    resends: u32,
    retries_on_model: u32,
    /// With pacing on: whether the last reservation came from the shared store, and the
    /// time waited for windows over all attempts (recorded once, when the attempts end).
    pacing: Option<(bool, Duration)>,
}

/// Sends the call once, without the attempt loop ([`Retry::disabled`]).
pub(crate) async fn send_once(
    call: &CallRecorder,
    request: reqwest::Request,
    extensions: &mut Extensions,
    next: Next<'_>,
) -> reqwest_middleware::Result<reqwest::Response> {
    let result = call.attempt(request, extensions, next, 0).await;
    call.attempts_done(0, None, false);
    result
}

impl Retrier {
    pub(crate) fn new(settings: Retry) -> Retrier {
        Retrier {
            budget: settings.budget.map(RetryBudget::new),
            windows: LocalWindows::default(),
            settings,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// Shares the pacing windows and the retry budget through `config`'s store; failures
    /// to reach it are counted in `unavailable`.
    #[cfg(feature = "redis")]
    pub(crate) fn with_shared(
        mut self,
        config: &SharedQuota,
        unavailable: opentelemetry::metrics::Counter<u64>,
    ) -> Result<Retrier, crate::error::ConfigError> {
        let store = shared::SharedStore::new(config, unavailable)?;
        self.shared = Some(std::sync::Arc::new(store));
        Ok(self)
    }

    /// Sends the call, with retries and fallbacks.
    pub(crate) async fn send(
        &self,
        call: &CallRecorder,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let facts = std::sync::Arc::clone(call.facts());
        let deadline = Instant::now() + self.settings.deadline;
        let chain = self.chain_of(&facts);
        let gateway_retries = prepare_body(&self.settings, &facts, &mut request, chain);
        self.record_request();
        let mut at = Progress {
            gateway_retries,
            model: facts.model.clone(),
            next_fallback: 0,
            resends: 0,
            retries_on_model: 0,
            pacing: None,
        };
        loop {
            if let Some((shared, waited)) = self
                .pace(call, &facts, at.model.as_deref(), deadline, at.resends)
                .await
            {
                let before = at.pacing.map_or(Duration::ZERO, |(_, w)| w);
                at.pacing = Some((shared, before + waited));
            }
            let spare = request.try_clone();
            let result = call
                .attempt(request, extensions, next.clone(), at.resends)
                .await;
            // The rate-limit headers are read only when something uses them: pacing, or a
            // retry's wait.
            let rate = || {
                result
                    .as_ref()
                    .ok()
                    .map(|r| RateLimit::from_headers(r.headers(), std::time::SystemTime::now()))
            };
            if self.settings.pacing {
                if let Some(rate) = rate() {
                    self.observe(call, &facts, at.model.as_deref(), &rate).await;
                }
            }
            let decision = self.after(&result, rate, &at, chain, deadline);
            let (decision, again) = match (decision, spare) {
                (Decision::Done, _) => return done(call, &at, None, result),
                (Decision::Stop(stop), _) => return done(call, &at, Some(stop), result),
                (_, None) => return done(call, &at, Some(Stop::BodyNotClonable), result),
                (decision, Some(again)) => {
                    if !self.try_retry(call).await {
                        return done(call, &at, Some(Stop::Budget), result);
                    }
                    (decision, again)
                }
            };
            drop(result);
            request = again;
            call.retrying_soon(&request);
            self.carry_out(call, decision, &mut at, &mut request).await;
        }
    }

    /// The fallback chain of the call's model.
    fn chain_of(&self, facts: &RequestFacts) -> &[String] {
        facts
            .model
            .as_ref()
            .and_then(|m| self.settings.fallbacks.get(m))
            .map_or(&[], Vec::as_slice)
    }

    /// With pacing on, reserves a slot of the model's window before an attempt, and waits
    /// for the window's reset when it is used up (then reserves again), `max_wait` at most.
    /// Returns whether the slot came from the shared store, and the time waited.
    async fn pace(
        &self,
        call: &CallRecorder,
        facts: &RequestFacts,
        model: Option<&str>,
        deadline: Instant,
        resends: u32,
    ) -> Option<(bool, Duration)> {
        let (true, Some(model)) = (self.settings.pacing, model) else {
            return None;
        };
        let region = facts.region.as_str();
        let mut waited = Duration::ZERO;
        let shared = loop {
            let (slot, shared) = match self.reserve_shared(call, region, model).await {
                Some(slot) => (slot, true),
                None => (self.windows.reserve(region, model), false),
            };
            let Slot::Wait(wait) = slot else {
                break shared;
            };
            // Past `max_wait` (or the deadline) the call is sent anyway: the caller would
            // rather risk a 429 than wait that long.
            if waited + wait > self.settings.max_wait || Instant::now() + wait >= deadline {
                break shared;
            }
            if waited.is_zero() {
                call.waiting(WaitReason::Pacing.as_str(), wait, resends);
            }
            tokio::time::sleep(wait).await;
            waited += wait;
        };
        Some((shared, waited))
    }

    /// A slot of the shared window, or `None` when there is no shared store or it is away
    /// (the call then says so and uses the local window).
    async fn reserve_shared(&self, call: &CallRecorder, region: &str, model: &str) -> Option<Slot> {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.shared {
            match store.reserve(region, model).await {
                Ok(slot) => return Some(slot),
                Err(e) => call.shared_state_unavailable(e.operation, &e.reason),
            }
        }
        let _ = (call, region, model);
        None
    }

    /// Learns the window of the model a response describes (`X-RateLimit-Model`, else the one
    /// asked for), locally and in the shared store.
    async fn observe(
        &self,
        call: &CallRecorder,
        facts: &RequestFacts,
        asked: Option<&str>,
        rate: &RateLimit,
    ) {
        let Some(model) = rate.model.as_deref().or(asked) else {
            return;
        };
        let region = facts.region.as_str();
        self.windows.observe(region, model, rate);
        #[cfg(feature = "redis")]
        if let Some(store) = &self.shared {
            if let Err(e) = store.observe(region, model, rate).await {
                call.shared_state_unavailable(e.operation, &e.reason);
            }
        }
        let _ = call;
    }

    /// Counts a first attempt in the budget (and in the shared one, in batches sent without
    /// waiting for them).
    fn record_request(&self) {
        let Some(budget) = &self.budget else { return };
        budget.record_request();
        #[cfg(feature = "redis")]
        if let (Some(store), Some(config)) = (&self.shared, self.settings.budget) {
            if let Some(batch) = store.count_request() {
                let store = std::sync::Arc::clone(store);
                tokio::spawn(async move {
                    // A failure is counted by the store; the local count stands in meanwhile.
                    let _ = store.record_requests(&config, batch).await;
                });
            }
        }
    }

    /// Takes a retry from the budget: the replicas' shared one when the store answers, else
    /// this process's.
    async fn try_retry(&self, call: &CallRecorder) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        #[cfg(feature = "redis")]
        if let (Some(store), Some(config)) = (&self.shared, self.settings.budget) {
            match store.try_retry(&config).await {
                Ok(granted) => return granted,
                Err(e) => call.shared_state_unavailable(e.operation, &e.reason),
            }
        }
        let _ = call;
        budget.try_retry()
    }

    /// Decides what comes after an attempt that returned `result` (its rate-limit headers
    /// read by `rate`, when needed).
    fn after(
        &self,
        result: &reqwest_middleware::Result<reqwest::Response>,
        read_rate: impl Fn() -> Option<RateLimit>,
        at: &Progress,
        chain: &[String],
        deadline: Instant,
    ) -> Decision {
        let s = &self.settings;
        let retryable = matches!(s.classifier.classify(result), Some(Retryable::Transient));
        let situation = Situation {
            retryable,
            status: result.as_ref().ok().map(|r| r.status().as_u16()),
            hint: if retryable {
                read_rate().as_ref().and_then(server_wait)
            } else {
                None
            },
            backoff: if retryable {
                s.backoff_for(at.retries_on_model)
            } else {
                Duration::ZERO
            },
            retries_on_model: at.retries_on_model,
            fallback: (s.fallback_mode == FallbackMode::Resend)
                .then(|| chain.get(at.next_fallback))
                .flatten()
                .map(String::as_str),
            time_left: deadline.saturating_duration_since(Instant::now()),
        };
        decide(s, &situation)
    }

    /// Waits, or moves `request` to the fallback model, before the next attempt.
    async fn carry_out(
        &self,
        call: &CallRecorder,
        decision: Decision,
        at: &mut Progress,
        request: &mut reqwest::Request,
    ) {
        match decision {
            Decision::Wait(wait, reason) => {
                call.waiting(reason.as_str(), wait, at.resends);
                tokio::time::sleep(wait).await;
                // Counted once the re-send is certain: a call dropped while waiting is not a retry.
                call.retrying(reason.as_str());
                at.retries_on_model += 1;
            }
            Decision::Fallback(to) => {
                call.falling_back(at.model.as_deref(), &to);
                call.retrying(WaitReason::Fallback.as_str());
                at.next_fallback += 1;
                at.retries_on_model = 0;
                // Once per model: later retries re-send this rewritten body as it is.
                rewrite_body(request, |b| body::with_model(b, &to));
                at.model = Some(to);
            }
            Decision::Done | Decision::Stop(_) => {}
        }
        at.resends += 1;
    }
}

/// The attempts are over: records how many re-sends were made and why they stopped.
fn done(
    call: &CallRecorder,
    at: &Progress,
    stop: Option<Stop>,
    result: reqwest_middleware::Result<reqwest::Response>,
) -> reqwest_middleware::Result<reqwest::Response> {
    if let Some((shared, waited)) = at.pacing {
        call.paced(shared, waited);
    }
    call.attempts_done(at.resends, stop.map(Stop::as_str), at.gateway_retries);
    result
}

/// Body changes made once, before the first attempt: the gateway's `fallbacks` field, and
/// `fallback_config.retry: false` when asked for. Says whether the gateway retries too (it
/// is not told not to, and we retry).
fn prepare_body(
    settings: &Retry,
    facts: &RequestFacts,
    request: &mut reqwest::Request,
    chain: &[String],
) -> bool {
    if settings.fallback_mode == FallbackMode::Gateway && !chain.is_empty() {
        rewrite_body(request, |b| body::with_gateway_fallbacks(b, chain));
    }
    if settings.disable_gateway_retry {
        rewrite_body(request, body::without_gateway_retry);
        false
    } else if settings.max_attempts > 1 {
        // Read with the request's facts when the body is a JSON object (a gateway-fallbacks
        // rewrite above leaves `fallback_config` as it was); parsed here otherwise.
        facts.gateway_retries.unwrap_or_else(|| {
            request
                .body()
                .and_then(|b| b.as_bytes())
                .is_some_and(body::gateway_retries)
        })
    } else {
        false
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

#[cfg(test)]
mod tests {
    use super::*;

    fn situation() -> Situation<'static> {
        Situation {
            retryable: true,
            status: Some(503),
            hint: None,
            backoff: Duration::from_millis(300),
            retries_on_model: 0,
            fallback: None,
            time_left: Duration::from_secs(120),
        }
    }

    #[test]
    fn a_retryable_outcome_waits_the_longer_of_backoff_and_hint() {
        let settings = Retry::default();
        let d = decide(&settings, &situation());
        assert_eq!(
            d,
            Decision::Wait(Duration::from_millis(300), WaitReason::Backoff)
        );
        let hinted = Situation {
            hint: Some((Duration::from_secs(7), WaitReason::RetryAfter)),
            ..situation()
        };
        let d = decide(&settings, &hinted);
        assert_eq!(
            d,
            Decision::Wait(Duration::from_secs(7), WaitReason::RetryAfter)
        );
    }

    #[test]
    fn limits_stop_the_retries_and_say_why() {
        let settings = Retry::default();
        let last = Situation {
            retries_on_model: 2,
            ..situation()
        };
        assert_eq!(decide(&settings, &last), Decision::Stop(Stop::MaxAttempts));
        let too_long = Situation {
            hint: Some((Duration::from_secs(31), WaitReason::RetryAfter)),
            ..situation()
        };
        assert_eq!(
            decide(&settings, &too_long),
            Decision::Stop(Stop::HintExceedsMaxWait)
        );
        let late = Situation {
            time_left: Duration::from_millis(100),
            ..situation()
        };
        assert_eq!(decide(&settings, &late), Decision::Stop(Stop::Deadline));
    }

    #[test]
    fn a_429_beyond_max_wait_or_attempts_and_a_404_move_to_the_fallback() {
        let settings = Retry::default();
        let limited = Situation {
            status: Some(429),
            hint: Some((Duration::from_secs(60), WaitReason::RetryAfter)),
            fallback: Some("gemini-2.5-flash"),
            ..situation()
        };
        assert_eq!(
            decide(&settings, &limited),
            Decision::Fallback("gemini-2.5-flash".into())
        );
        let not_here = Situation {
            retryable: false,
            status: Some(404),
            fallback: Some("gemini-2.5-flash"),
            ..situation()
        };
        assert_eq!(
            decide(&settings, &not_here),
            Decision::Fallback("gemini-2.5-flash".into())
        );
        // A 503 out of attempts stops: fallbacks are for rate limits and regions.
        let out = Situation {
            retries_on_model: 2,
            fallback: Some("gemini-2.5-flash"),
            ..situation()
        };
        assert_eq!(decide(&settings, &out), Decision::Stop(Stop::MaxAttempts));
        let fine = Situation {
            retryable: false,
            status: Some(200),
            ..situation()
        };
        assert_eq!(decide(&settings, &fine), Decision::Done);
    }
}
