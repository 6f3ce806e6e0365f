//! One process-wide exclusive guard for the heavy tests.
//!
//! Before the merge each test file was its own binary and cargo ran the binaries one after
//! another, so a heavy test only ever shared the machine with tests of its own file. Now every
//! test shares one process, and these would otherwise overlap with each other:
//! - qemu guests (`vm::`): each keeps a core busy under emulation and has boot and script
//!   timeouts;
//! - traffic through network namespaces on the host kernel (`dataplane::nftables_traffic`,
//!   `dataplane::node_agent_nftables`): bounded waits for packets and conntrack;
//! - hostile loads (all of `hostile::clients`; the contention and large-object cases of
//!   `hostile::correctness`): they push thousands of requests or megabytes, and `hostile::clients`
//!   bounds the growth of this process's peak resident memory, which another heavy test's
//!   allocations would inflate (a light test may still run beside it; the bounds, 48–64 MiB,
//!   leave room for one, but a light test that allocates heavily belongs here too);
//! - controller churn (`controllers::churn`): write budgets counted under 1000-pod loads, which
//!   a loaded machine pushes over budget (slower informers see more intermediate states);
//! - tests asserting wall-clock bounds (a few named ones across areas).
//!
//! Each takes [`heavy`] (async) or [`heavy_blocking`] (sync) first and holds the guard for its
//! whole run. Light tests take nothing and may still run beside a heavy one. The lock is tokio's:
//! it is not poisoned when a holder panics, so one failing heavy test does not fail the others.

use std::sync::LazyLock;

use tokio::sync::{Mutex, MutexGuard};

static HEAVY: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));

/// Waits until no other heavy test runs; hold the guard for the test's duration.
pub async fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().await
}

/// [`heavy`] for a test without a runtime (must not be called from inside one).
pub fn heavy_blocking() -> MutexGuard<'static, ()> {
    HEAVY.blocking_lock()
}
