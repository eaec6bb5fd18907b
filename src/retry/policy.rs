//! The retry policy: which outcomes are worth another attempt (reqwest-retry's
//! classification), how long to back off (retry-policies' exponential backoff with full
//! jitter), and the limits around them. Builder-style, with defaults right for the gateway.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest_retry::{default_on_request_failure, default_on_request_success, Retryable};
use retry_policies::policies::ExponentialBackoff;
use retry_policies::{Jitter, RetryDecision, RetryPolicy as _};

use super::budget::BudgetConfig;
use crate::error::ConfigError;

/// Decides whether an attempt's outcome is worth retrying. Any
/// `Fn(&reqwest_middleware::Result<reqwest::Response>) -> Option<Retryable>` is one.
pub trait RetryClassifier: Send + Sync + 'static {
    /// `Some(Transient)` to retry, `Some(Fatal)` or `None` not to.
    fn classify(
        &self,
        outcome: &reqwest_middleware::Result<reqwest::Response>,
    ) -> Option<Retryable>;
}

impl<F> RetryClassifier for F
where
    F: Fn(&reqwest_middleware::Result<reqwest::Response>) -> Option<Retryable>
        + Send
        + Sync
        + 'static,
{
    fn classify(
        &self,
        outcome: &reqwest_middleware::Result<reqwest::Response>,
    ) -> Option<Retryable> {
        self(outcome)
    }
}

/// reqwest-retry's classification: 429, 408 and 5xx, connect errors and timeouts are
/// transient; other 4xx are fatal.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRetryClassifier;

impl RetryClassifier for DefaultRetryClassifier {
    fn classify(
        &self,
        outcome: &reqwest_middleware::Result<reqwest::Response>,
    ) -> Option<Retryable> {
        match outcome {
            Ok(response) => default_on_request_success(response),
            Err(error) => default_on_request_failure(error),
        }
    }
}

/// How fallback models are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FallbackMode {
    /// Re-send the request with the next model of the chain (the default): each model's
    /// attempt gets its own span and the choice is ours.
    #[default]
    Resend,
    /// Put the chain into the gateway's own `fallbacks` field on the first attempt and let
    /// the gateway fall back.
    Gateway,
}

/// Retry settings. `Retry::default()` is what the middleware uses unless told otherwise, and
/// what most gateway users want; [`Retry::disabled`] turns retries off.
///
/// ```
/// use std::time::Duration;
/// use llm_gateway_otel::{retry::Retry, GatewayMiddleware};
/// let middleware = GatewayMiddleware::builder()
///     .retry(
///         Retry::default()
///             .max_attempts(4)
///             .backoff(Duration::from_millis(250), Duration::from_secs(10))
///             .max_wait(Duration::from_secs(20))
///             .fallback("claude-sonnet-4-6", ["gemini-2.5-flash"])
///             .disable_gateway_retry(true),
///     )
///     .build()
///     .unwrap();
/// ```
#[derive(Clone)]
pub struct Retry {
    pub(crate) max_attempts: u32,
    pub(crate) min_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) max_wait: Duration,
    pub(crate) deadline: Duration,
    pub(crate) budget: Option<BudgetConfig>,
    pub(crate) fallbacks: HashMap<String, Vec<String>>,
    pub(crate) fallback_mode: FallbackMode,
    pub(crate) disable_gateway_retry: bool,
    pub(crate) pacing: bool,
    pub(crate) classifier: Arc<dyn RetryClassifier>,
    /// False for [`Retry::disabled`]: no attempt loop, no budget, no pacing.
    enabled: bool,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("max_wait", &self.max_wait)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .field("fallbacks", &self.fallbacks)
            .field("fallback_mode", &self.fallback_mode)
            .field("disable_gateway_retry", &self.disable_gateway_retry)
            .field("pacing", &self.pacing)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Default for Retry {
    /// 3 attempts per model; backoff from 500 ms to 30 s with full jitter; server hints up
    /// to 30 s honoured; 120 s per call; retries add at most 20% (+10 per 10 s); no
    /// fallbacks; the gateway's own retry left as the request says; no pacing.
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_wait: Duration::from_secs(30),
            deadline: Duration::from_secs(120),
            budget: Some(BudgetConfig::default()),
            fallbacks: HashMap::new(),
            fallback_mode: FallbackMode::Resend,
            disable_gateway_retry: false,
            pacing: false,
            classifier: Arc::new(DefaultRetryClassifier),
            enabled: true,
        }
    }
}

impl Retry {
    /// No retries, no fallbacks, no pacing: every call is sent once and its outcome, a 429 or
    /// a 503 included, reaches the caller as it came. For callers that retry by themselves
    /// (or must never send a request twice). The other settings of a disabled `Retry` are
    /// not used.
    ///
    /// ```
    /// use llm_gateway_otel::{retry::Retry, GatewayMiddleware};
    /// let middleware = GatewayMiddleware::builder()
    ///     .retry(Retry::disabled())
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn disabled() -> Self {
        Retry {
            max_attempts: 1,
            budget: None,
            enabled: false,
            ..Retry::default()
        }
    }

    /// Whether calls go through the attempt loop (false only for [`Retry::disabled`]).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Attempts per model, the first included (1 = no retry). Must be at least 1.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Exponential backoff bounds: the first retry waits up to `min`, doubling up to `max`
    /// (full jitter: a uniform wait between 0 and the bound).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// The longest server-requested wait (`Retry-After`, `X-RateLimit-Reset`) that is slept;
    /// a longer one ends the retries at once (or moves to a fallback model).
    pub fn max_wait(mut self, max: Duration) -> Self {
        self.max_wait = max;
        self
    }

    /// The total time one call may take across its attempts and waits.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The shared retry budget (see [`BudgetConfig`]).
    pub fn budget(mut self, budget: BudgetConfig) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No retry budget: every call may use all its attempts.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Models to try, in order, when `model` is rate limited beyond `max_wait` (or out of
    /// attempts on a 429), or not served in the region (404).
    pub fn fallback<I, S>(mut self, model: impl Into<String>, chain: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fallbacks
            .insert(model.into(), chain.into_iter().map(Into::into).collect());
        self
    }

    /// How fallbacks are tried (default: [`FallbackMode::Resend`]).
    pub fn fallback_mode(mut self, mode: FallbackMode) -> Self {
        self.fallback_mode = mode;
        self
    }

    /// Set `fallback_config.retry: false` in outgoing bodies. The gateway retries a failed
    /// call once by itself by default; with client retries on, every attempt of ours can
    /// become two upstream. When this is off and both retry, the span says so
    /// (`llm_gateway.retry.gateway_retry = true`).
    pub fn disable_gateway_retry(mut self, disable: bool) -> Self {
        self.disable_gateway_retry = disable;
        self
    }

    /// When a response shows a model's window used up, later calls for that model wait for
    /// the reset (at most `max_wait`) instead of earning a 429.
    pub fn pacing(mut self, on: bool) -> Self {
        self.pacing = on;
        self
    }

    /// Replace the classification of outcomes.
    pub fn classifier(mut self, classifier: impl RetryClassifier) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError::new(m));
        if self.max_attempts == 0 {
            return fail("retry max_attempts must be at least 1".into());
        }
        if self.min_backoff > self.max_backoff {
            return fail(format!(
                "retry backoff min {:?} is above max {:?}",
                self.min_backoff, self.max_backoff
            ));
        }
        if let Some(b) = &self.budget {
            if !(b.ratio.is_finite() && b.ratio >= 0.0) || b.window.is_zero() {
                return fail(format!(
                    "retry budget {b:?}: ratio must be >= 0 and window > 0"
                ));
            }
        }
        Ok(())
    }

    /// The jittered backoff before retry number `n_past_retries + 1` on the same model.
    pub(crate) fn backoff_for(&self, n_past_retries: u32) -> Duration {
        let policy: ExponentialBackoff = ExponentialBackoff::builder()
            .retry_bounds(self.min_backoff, self.max_backoff)
            .jitter(Jitter::Full)
            .build_with_max_retries(u32::MAX);
        let now = SystemTime::now();
        match policy.should_retry(now, n_past_retries) {
            RetryDecision::Retry { execute_after } => {
                execute_after.duration_since(now).unwrap_or_default()
            }
            RetryDecision::DoNotRetry => self.max_backoff,
        }
    }
}
