//! Proactive pacing: each model's rate-limit window (per region), learned from the
//! `X-RateLimit-*` headers of the responses, and a slot of it reserved before each call is
//! sent: while the window has requests left a call takes one, and once it has none, calls for
//! that model wait for the reset instead of earning a 429. The window lives in this process
//! ([`LocalWindows`]) and, with a shared store (the `redis` feature), in Redis, where every
//! replica reserves from the same window; the local one is what pacing falls back to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::ratelimit::RateLimit;

/// A response that reports a reset this much later than the known one starts a new window.
pub(crate) const NEW_WINDOW_AFTER: Duration = Duration::from_secs(1);

/// Longest reset believed (a window is 60 s; a header saying more is not trusted further).
pub(crate) const MAX_RESET: Duration = Duration::from_secs(3600);

/// A window whose reset passed is assumed to start again, with its limit, for this long,
/// until the first response of the new window says when it resets.
pub(crate) const PROVISIONAL_WINDOW: Duration = Duration::from_secs(60);

/// A call finding a provisional window used up looks again this soon (its real reset comes
/// with the window's first response).
pub(crate) const PROVISIONAL_POLL: Duration = Duration::from_millis(200);

/// What the reservation of a slot said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Send now (a slot was taken, or nothing is known of the window).
    Go,
    /// The window is used up: wait this long, until its reset.
    Wait(Duration),
}

/// One model's window as this process knows it.
#[derive(Debug, Clone, Copy)]
struct Window {
    limit: Option<i64>,
    remaining: i64,
    reset_at: Instant,
    /// Started by a reservation after the last reset, not yet confirmed by a response: its
    /// reset is a guess.
    provisional: bool,
}

/// The windows this process learned, by (region, model).
#[derive(Debug, Default)]
pub(crate) struct LocalWindows {
    windows: Mutex<HashMap<(String, String), Window>>,
}

/// The reset a response reports, if it reports a usable one.
pub(crate) fn reset_of(rate: &RateLimit) -> Option<Duration> {
    rate.reset_s
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(|d| d.min(MAX_RESET))
}

impl LocalWindows {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Learns from the rate-limit headers of a response for `model` in `region`: a new window
    /// replaces the old one; within a window, the lower count of requests left is kept (the
    /// slots reserved by calls still on their way are not in the response's count yet); a
    /// provisional window takes the response's reset.
    pub(crate) fn observe(&self, region: &str, model: &str, rate: &RateLimit) {
        let (Some(remaining), Some(reset)) = (rate.remaining, reset_of(rate)) else {
            return;
        };
        let now = Instant::now();
        let reset_at = now + reset;
        let mut windows = self.lock();
        let key = (region.to_owned(), model.to_owned());
        let old = windows.get(&key).copied();
        let limit = rate.limit.or(old.and_then(|w| w.limit));
        let window = match old {
            Some(w) if w.reset_at > now && w.provisional => Window {
                limit,
                remaining: remaining.min(w.remaining),
                reset_at,
                provisional: false,
            },
            Some(w) if w.reset_at > now && reset_at <= w.reset_at + NEW_WINDOW_AFTER => Window {
                limit,
                remaining: remaining.min(w.remaining),
                reset_at: w.reset_at,
                provisional: false,
            },
            _ => Window {
                limit,
                remaining,
                reset_at,
                provisional: false,
            },
        };
        windows.insert(key, window);
    }

    /// Reserves a slot of `model`'s window in `region` for a call about to be sent. After a
    /// reset, a window with a known limit starts again (provisionally) with this call.
    pub(crate) fn reserve(&self, region: &str, model: &str) -> Slot {
        let now = Instant::now();
        let mut windows = self.lock();
        let Some(w) = windows.get_mut(&(region.to_owned(), model.to_owned())) else {
            return Slot::Go;
        };
        if w.reset_at <= now {
            if let Some(limit) = w.limit {
                *w = Window {
                    limit: Some(limit),
                    remaining: limit - 1,
                    reset_at: now + PROVISIONAL_WINDOW,
                    provisional: true,
                };
            }
            return Slot::Go;
        }
        if w.remaining > 0 {
            w.remaining -= 1;
            return Slot::Go;
        }
        let left = w.reset_at - now;
        Slot::Wait(if w.provisional {
            left.min(PROVISIONAL_POLL)
        } else {
            left
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(remaining: i64, reset_s: f64) -> RateLimit {
        RateLimit {
            limit: Some(3),
            remaining: Some(remaining),
            reset_s: Some(reset_s),
            ..RateLimit::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_reserved_until_the_window_is_used_up_then_calls_wait_for_the_reset() {
        let w = LocalWindows::default();
        assert_eq!(w.reserve("us", "m"), Slot::Go, "nothing known yet");
        w.observe("us", "m", &rate(2, 30.0));
        assert_eq!(w.reserve("us", "m"), Slot::Go);
        assert_eq!(w.reserve("us", "m"), Slot::Go);
        assert_eq!(w.reserve("us", "m"), Slot::Wait(Duration::from_secs(30)));
        assert_eq!(w.reserve("eu", "m"), Slot::Go, "another region's window");
        // A late response of the same window does not give the slots back.
        w.observe("us", "m", &rate(1, 29.5));
        assert!(matches!(w.reserve("us", "m"), Slot::Wait(_)));
        tokio::time::advance(Duration::from_secs(31)).await;
        // The window has reset: it starts again with its limit of 3, provisionally.
        assert_eq!(w.reserve("us", "m"), Slot::Go);
        assert_eq!(w.reserve("us", "m"), Slot::Go);
        assert_eq!(w.reserve("us", "m"), Slot::Go);
        assert_eq!(
            w.reserve("us", "m"),
            Slot::Wait(PROVISIONAL_POLL),
            "look again soon"
        );
        // The new window's first response says when it really resets.
        w.observe("us", "m", &rate(2, 10.0));
        assert_eq!(
            w.reserve("us", "m"),
            Slot::Wait(Duration::from_secs(10)),
            "0 left of the 3"
        );
    }
}
