//! What the server says about when to come back: `Retry-After` first, else
//! `X-RateLimit-Reset` when `X-RateLimit-Remaining` is used up. Pure.

use std::time::Duration;

use crate::ratelimit::RateLimit;

/// Why a call waited before its next attempt (the `llm_gateway.retry.reason` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// The server's `Retry-After`.
    RetryAfter,
    /// `X-RateLimit-Reset` with nothing remaining in the window.
    RateLimitReset,
    /// Exponential backoff with full jitter.
    Backoff,
    /// Proactive pacing: the model's window was known to be exhausted.
    Pacing,
    /// A re-send with the next model of a fallback chain (no wait).
    Fallback,
}

impl WaitReason {
    /// The value recorded on spans and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::RetryAfter => "retry_after",
            WaitReason::RateLimitReset => "rate_limit_reset",
            WaitReason::Backoff => "backoff",
            WaitReason::Pacing => "pacing",
            WaitReason::Fallback => "fallback",
        }
    }
}

/// The wait the server asked for, if any.
pub fn server_wait(rate: &RateLimit) -> Option<(Duration, WaitReason)> {
    if let Some(after) = rate.retry_after {
        return Some((after, WaitReason::RetryAfter));
    }
    match (rate.remaining, rate.reset_s) {
        (Some(remaining), Some(reset)) if remaining <= 0 => Duration::try_from_secs_f64(reset)
            .ok()
            .map(|d| (d, WaitReason::RateLimitReset)),
        _ => None,
    }
}

/// The examples that were doc tests before this module became private.
#[cfg(test)]
mod examples {
    #[test]
    fn reads_the_server_wait() {
        use super::super::{server_wait, WaitReason};
        use crate::ratelimit::RateLimit;
        use std::time::Duration;
        let told = RateLimit {
            retry_after: Some(Duration::from_secs(7)),
            ..Default::default()
        };
        assert_eq!(
            server_wait(&told),
            Some((Duration::from_secs(7), WaitReason::RetryAfter))
        );
        let used_up = RateLimit {
            remaining: Some(0),
            reset_s: Some(4.0),
            ..Default::default()
        };
        assert_eq!(
            server_wait(&used_up),
            Some((Duration::from_secs(4), WaitReason::RateLimitReset))
        );
        let fine = RateLimit {
            remaining: Some(3),
            reset_s: Some(4.0),
            ..Default::default()
        };
        assert_eq!(server_wait(&fine), None);
    }
}
