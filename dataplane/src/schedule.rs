//! When to sync: kube-proxy's `BoundedFrequencyRunner`. Changes ask for a sync; syncs run at
//! most `burst` at once and then one per `--min-sync-period`; a full resync runs at least
//! every `--sync-period` even without changes. Pure: the caller passes the clock.

use std::time::{Duration, Instant};

/// The sync schedule's state.
#[derive(Debug, Clone)]
pub struct SyncSchedule {
    min_interval: Duration,
    max_interval: Duration,
    burst: u32,
    tokens: f64,
    refilled_at: Instant,
    last_full: Instant,
    requested: bool,
}

/// What kind of sync is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Changes are waiting.
    Changes,
    /// The periodic full resync.
    Periodic,
}

impl SyncSchedule {
    /// A schedule starting at `now` with a full bucket. `burst` is at least 1; a zero
    /// `min_interval` disables rate limiting.
    pub fn new(min_interval: Duration, max_interval: Duration, burst: u32, now: Instant) -> Self {
        let burst = burst.max(1);
        SyncSchedule {
            min_interval,
            max_interval,
            burst,
            tokens: f64::from(burst),
            refilled_at: now,
            last_full: now,
            requested: false,
        }
    }

    /// Records that something changed and a sync is wanted.
    pub fn request(&mut self) {
        self.requested = true;
    }

    /// Whether a change is waiting for a sync.
    pub fn is_requested(&self) -> bool {
        self.requested
    }

    fn refill(&mut self, now: Instant) {
        if self.min_interval.is_zero() {
            self.tokens = f64::from(self.burst);
            return;
        }
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens = (self.tokens + elapsed.as_secs_f64() / self.min_interval.as_secs_f64())
            .min(f64::from(self.burst));
        self.refilled_at = now;
    }

    /// When the next sync should start: as soon as a token is available if changes wait,
    /// else at the periodic resync.
    pub fn next_due(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let periodic = self.last_full + self.max_interval;
        if !self.requested {
            return periodic;
        }
        let token_at = if self.tokens >= 1.0 {
            now
        } else {
            now + self.min_interval.mul_f64(1.0 - self.tokens)
        };
        token_at.min(periodic)
    }

    /// Takes the sync that is due at `now`, if any, consuming a token.
    pub fn take(&mut self, now: Instant) -> Option<Due> {
        if self.next_due(now) > now {
            return None;
        }
        let due = if now >= self.last_full + self.max_interval {
            Due::Periodic
        } else {
            Due::Changes
        };
        self.tokens = (self.tokens - 1.0).max(0.0);
        self.requested = false;
        Some(due)
    }

    /// Records that a full sync completed at `now` (resets the periodic timer).
    pub fn full_done(&mut self, now: Instant) {
        self.last_full = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn burst_syncs_run_at_once_then_one_per_min_sync_period() {
        let t0 = Instant::now();
        let mut s = SyncSchedule::new(MIN, MAX, 2, t0);
        for _ in 0..2 {
            s.request();
            assert_eq!(s.take(t0), Some(Due::Changes));
        }
        s.request();
        assert_eq!(s.take(t0), None, "third sync within the burst window waits");
        assert_eq!(s.next_due(t0), t0 + MIN);
        assert_eq!(s.take(t0 + MIN), Some(Due::Changes));
    }

    #[test]
    fn no_sync_without_changes_until_the_sync_period() {
        let t0 = Instant::now();
        let mut s = SyncSchedule::new(MIN, MAX, 2, t0);
        assert_eq!(s.take(t0 + Duration::from_secs(5)), None);
        assert_eq!(s.next_due(t0), t0 + MAX);
        assert_eq!(s.take(t0 + MAX), Some(Due::Periodic));
        s.full_done(t0 + MAX);
        assert_eq!(s.next_due(t0 + MAX), t0 + MAX + MAX);
    }

    #[test]
    fn zero_min_sync_period_never_delays() {
        let t0 = Instant::now();
        let mut s = SyncSchedule::new(Duration::ZERO, MAX, 1, t0);
        for _ in 0..100 {
            s.request();
            assert_eq!(s.take(t0), Some(Due::Changes));
        }
    }
}
