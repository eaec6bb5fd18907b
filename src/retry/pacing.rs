//! Proactive pacing: when a response shows a model's window used up, later calls for that
//! model (on that host) wait for the reset instead of earning a 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::ratelimit::RateLimit;

/// Until when each (host, model) window is known to be exhausted.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    exhausted_until: Mutex<HashMap<(String, String), Instant>>,
}

impl Pacer {
    /// Learns from the rate-limit headers of a response for `model` on `host`.
    pub(crate) fn observe(&self, host: &str, model: &str, rate: &RateLimit) {
        let key = (host.to_owned(), model.to_owned());
        let mut map = self
            .exhausted_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match (
            rate.remaining,
            rate.reset_s
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        ) {
            (Some(remaining), Some(reset)) if remaining <= 0 => {
                map.insert(key, Instant::now() + reset);
            }
            (Some(_), _) => {
                map.remove(&key);
            }
            _ => {}
        }
    }

    /// How long a call for `model` on `host` should wait before it is sent.
    pub(crate) fn wait_for(&self, host: &str, model: &str) -> Option<Duration> {
        let map = self
            .exhausted_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let until = map.get(&(host.to_owned(), model.to_owned()))?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }
}
