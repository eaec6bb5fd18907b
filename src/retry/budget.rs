//! A retry budget shared by every call through one middleware: over a sliding window,
//! retries may add at most a fraction of the requests sent (plus a small floor, so a quiet
//! client can still retry). Under an outage retries stop growing the load.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Number of slots the window is divided into.
pub(crate) const SLOTS: usize = 10;

/// The budget's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per first attempt in the window (0.2 = retries add at most 20%).
    pub ratio: f64,
    /// Retries always allowed per window, whatever the traffic.
    pub min_retries: u32,
    /// Length of the sliding window.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.2,
            min_retries: 10,
            window: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    /// Which window slot (time / slot length) these counts belong to.
    epoch: u64,
    requests: u64,
    retries: u64,
}

/// The budget's state: request and retry counts per slot of the window.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    config: BudgetConfig,
    origin: Instant,
    slots: Mutex<[Slot; SLOTS]>,
}

impl RetryBudget {
    pub(crate) fn new(config: BudgetConfig) -> RetryBudget {
        RetryBudget {
            config,
            origin: Instant::now(),
            slots: Mutex::new([Slot::default(); SLOTS]),
        }
    }

    fn epoch(&self) -> u64 {
        let slot = (self.config.window / SLOTS as u32).max(Duration::from_millis(1));
        (self.origin.elapsed().as_nanos() / slot.as_nanos()) as u64
    }

    /// Counts a first attempt.
    pub(crate) fn record_request(&self) {
        self.update(|slot| slot.requests += 1);
    }

    /// Takes one retry from the budget; `false` when the budget is spent.
    pub(crate) fn try_retry(&self) -> bool {
        let epoch = self.epoch();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let live = slots.iter().filter(|s| s.epoch + SLOTS as u64 > epoch);
        let (requests, retries) = live.fold((0, 0), |(q, r), s| (q + s.requests, r + s.retries));
        let allowed = self.config.ratio * requests as f64 + f64::from(self.config.min_retries);
        if (retries + 1) as f64 > allowed {
            return false;
        }
        Self::slot(&mut slots, epoch).retries += 1;
        true
    }

    fn update(&self, f: impl FnOnce(&mut Slot)) {
        let epoch = self.epoch();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        f(Self::slot(&mut slots, epoch));
    }

    fn slot(slots: &mut [Slot; SLOTS], epoch: u64) -> &mut Slot {
        let slot = &mut slots[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                ..Slot::default()
            };
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded_by_the_ratio_and_the_floor() {
        let budget = RetryBudget::new(BudgetConfig {
            ratio: 0.2,
            min_retries: 2,
            window: Duration::from_secs(10),
        });
        for _ in 0..100 {
            budget.record_request();
        }
        let granted = (0..100).filter(|_| budget.try_retry()).count();
        assert_eq!(granted, 22, "20% of 100 plus the floor of 2");
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides() {
        let budget = RetryBudget::new(BudgetConfig {
            ratio: 0.0,
            min_retries: 1,
            window: Duration::from_secs(10),
        });
        assert!(budget.try_retry());
        assert!(!budget.try_retry());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(budget.try_retry(), "the old retry left the window");
    }
}
