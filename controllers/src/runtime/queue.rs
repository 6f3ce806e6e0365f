//! A per-key work queue like client-go's rate-limited delaying work queue: a key is queued at
//! most once, never processed by two workers at once (re-adds while processing are replayed
//! after `done`), can be delayed (`add_after`, used for `--endpoint-updates-batch-period`
//! coalescing: the earliest deadline wins), and failed keys back off exponentially.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
struct State {
    ready: VecDeque<String>,
    queued: HashSet<String>,
    delayed: BTreeSet<(Instant, String)>,
    delayed_at: HashMap<String, Instant>,
    processing: HashSet<String>,
    dirty: HashSet<String>,
    failures: HashMap<String, u32>,
    shutdown: bool,
}

/// The queue. Cheap to share behind an `Arc`.
pub struct WorkQueue {
    state: Mutex<State>,
    notify: Notify,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl WorkQueue {
    /// A queue whose failure backoff starts at `backoff_base` and doubles up to `backoff_max`.
    pub fn new(backoff_base: Duration, backoff_max: Duration) -> Self {
        WorkQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            backoff_base,
            backoff_max,
        }
    }

    fn add_locked(&self, st: &mut State, key: String) {
        if st.shutdown {
            return;
        }
        if let Some(at) = st.delayed_at.remove(&key) {
            st.delayed.remove(&(at, key.clone()));
        }
        if st.processing.contains(&key) {
            st.dirty.insert(key);
            return;
        }
        if st.queued.insert(key.clone()) {
            st.ready.push_back(key);
            self.notify.notify_one();
        }
    }

    /// Queues a key now.
    pub fn add(&self, key: impl Into<String>) {
        let mut st = self.state.lock();
        self.add_locked(&mut st, key.into());
    }

    /// Queues a key after `delay`; an earlier pending deadline for the same key wins, and a
    /// key already queued now stays queued now.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            return self.add(key);
        }
        let mut st = self.state.lock();
        if st.shutdown || st.queued.contains(&key) {
            return;
        }
        let at = Instant::now() + delay;
        match st.delayed_at.get(&key) {
            Some(existing) if *existing <= at => {}
            Some(existing) => {
                let existing = *existing;
                st.delayed.remove(&(existing, key.clone()));
                st.delayed.insert((at, key.clone()));
                st.delayed_at.insert(key, at);
                self.notify.notify_one();
            }
            None => {
                st.delayed.insert((at, key.clone()));
                st.delayed_at.insert(key, at);
                self.notify.notify_one();
            }
        }
    }

    /// Re-queues a failed key after its exponential backoff.
    pub fn add_rate_limited(&self, key: &str) {
        let failures = {
            let mut st = self.state.lock();
            let f = st.failures.entry(key.to_string()).or_insert(0);
            *f += 1;
            *f
        };
        let exp = failures.saturating_sub(1).min(30);
        let delay = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        self.add_after(key, delay);
    }

    /// Clears the failure count of a key (after a successful sync).
    pub fn forget(&self, key: &str) {
        self.state.lock().failures.remove(key);
    }

    #[cfg(test)]
    /// Number of failures recorded for a key.
    pub fn failures(&self, key: &str) -> u32 {
        self.state.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Waits for the next key. `None` after shutdown.
    pub async fn get(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_deadline = {
                let mut st = self.state.lock();
                if st.shutdown {
                    return None;
                }
                let now = Instant::now();
                while let Some((at, key)) = st.delayed.first().cloned() {
                    if at > now {
                        break;
                    }
                    st.delayed.pop_first();
                    st.delayed_at.remove(&key);
                    if st.processing.contains(&key) {
                        st.dirty.insert(key);
                    } else if st.queued.insert(key.clone()) {
                        st.ready.push_back(key);
                    }
                }
                if let Some(key) = st.ready.pop_front() {
                    st.queued.remove(&key);
                    st.processing.insert(key.clone());
                    if !st.ready.is_empty() {
                        // Let another idle worker pick up the rest.
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
                st.delayed.first().map(|(at, _)| *at)
            };
            match next_deadline {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks a key processed; a re-add that happened meanwhile is queued now.
    pub fn done(&self, key: &str) {
        let mut st = self.state.lock();
        st.processing.remove(key);
        if st.dirty.remove(key) && !st.shutdown && st.queued.insert(key.to_string()) {
            st.ready.push_back(key.to_string());
            self.notify.notify_one();
        }
    }

    /// Keys waiting now or later (queue depth).
    pub fn len(&self) -> usize {
        let st = self.state.lock();
        st.ready.len() + st.delayed.len() + st.dirty.len()
    }

    #[cfg(test)]
    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: `get` returns `None` from now on.
    pub fn shutdown(&self) {
        self.state.lock().shutdown = true;
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn q() -> WorkQueue {
        WorkQueue::new(Duration::from_millis(10), Duration::from_secs(1))
    }

    #[tokio::test]
    async fn duplicate_adds_coalesce() {
        let q = q();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.unwrap(), "a");
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn re_add_while_processing_is_replayed_after_done() {
        let q = q();
        q.add("a");
        let k = q.get().await.unwrap();
        q.add("a");
        assert_eq!(q.state.lock().ready.len(), 0, "not handed out twice");
        q.done(&k);
        assert_eq!(q.get().await.unwrap(), "a");
    }

    #[tokio::test(start_paused = true)]
    async fn batch_period_coalesces_and_earliest_deadline_wins() {
        let q = q();
        let start = Instant::now();
        q.add_after("svc", Duration::from_millis(500));
        q.add_after("svc", Duration::from_millis(800));
        q.add_after("svc", Duration::from_millis(300));
        let k = q.get().await.unwrap();
        assert_eq!(k, "svc");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(400),
            "{waited:?}"
        );
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially() {
        let q = q();
        q.add("a");
        let k = q.get().await.unwrap();
        let start = Instant::now();
        q.add_rate_limited(&k);
        q.done(&k);
        let k = q.get().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(10));
        let start = Instant::now();
        q.add_rate_limited(&k);
        q.done(&k);
        q.get().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(q.failures("a"), 2);
        q.forget("a");
        assert_eq!(q.failures("a"), 0);
    }

    #[tokio::test]
    async fn shutdown_wakes_waiting_workers() {
        let q = Arc::new(q());
        let q2 = q.clone();
        let h = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.shutdown();
        assert!(h.await.unwrap().is_none());
    }
}
