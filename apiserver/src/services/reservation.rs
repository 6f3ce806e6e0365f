//! What one Service write took from the allocators and what it gives up once it commits.

use std::sync::Arc;

use parking_lot::Mutex;

use super::holdings::Held;
use super::pools::Pools;

/// Values a write reserved, released again if the write does not commit; and values the
/// write gives up (an update's old node ports, a released secondary ClusterIP), released only
/// when it commits (upstream `ReleaseDeferred`).
///
/// A reservation that is dropped without [`commit`](Self::commit) rolls back: what it
/// allocated is freed and what it would have given up is kept (upstream's
/// `metaTransaction.Revert` on every failure path of `BeginCreate` / `BeginUpdate`). The write
/// pipeline therefore commits on the one success path and never rolls back by hand.
#[derive(Default)]
#[must_use = "a reservation rolls back when dropped: commit it once the write is stored"]
pub struct Reservation {
    allocated: Vec<Held>,
    release_on_commit: Vec<Held>,
    /// The pools to finish against; `None` for an empty or dry-run reservation, and once
    /// finished.
    pools: Option<Arc<Mutex<Pools>>>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("allocated", &self.allocated)
            .field("release_on_commit", &self.release_on_commit)
            .finish_non_exhaustive()
    }
}

impl Reservation {
    /// A reservation holding nothing (resources without allocation, dry runs, status writes).
    pub fn none() -> Self {
        Reservation::default()
    }

    pub(crate) fn new(
        allocated: Vec<Held>,
        release_on_commit: Vec<Held>,
        pools: Arc<Mutex<Pools>>,
    ) -> Self {
        Reservation {
            allocated,
            release_on_commit,
            pools: Some(pools),
        }
    }

    /// Values this write allocated.
    pub fn allocated(&self) -> &[Held] {
        &self.allocated
    }

    /// Values this write frees when it commits.
    pub fn release_on_commit(&self) -> &[Held] {
        &self.release_on_commit
    }

    /// The write committed: keep what was allocated and free what the update gave up.
    pub fn commit(mut self) {
        self.finish(true);
    }

    /// Ends the in-flight marks; on commit frees `release_on_commit`, on rollback frees
    /// `allocated`. Runs once: the pools are taken.
    fn finish(&mut self, commit: bool) {
        let Some(pools) = self.pools.take() else {
            return;
        };
        if self.allocated.is_empty() && self.release_on_commit.is_empty() {
            return;
        }
        let allocated = std::mem::take(&mut self.allocated);
        let release = std::mem::take(&mut self.release_on_commit);
        let mut pools = pools.lock();
        pools.end_in_flight(allocated.iter().chain(&release).copied());
        let to_free = if commit { release } else { allocated };
        for v in to_free {
            pools.release(v);
        }
    }
}

impl Drop for Reservation {
    /// Not committed: the write failed (or was a dry run), so roll back.
    fn drop(&mut self) {
        self.finish(false);
    }
}
