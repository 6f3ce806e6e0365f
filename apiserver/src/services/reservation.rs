//! What one Service write took from the allocators and what it gives up once it commits.

use super::holdings::Held;
use super::ServiceAllocations;

/// Values a write reserved, released again if the write does not commit; and values the
/// write gives up (an update's old node ports, a released secondary ClusterIP), released only
/// when it commits (upstream `ReleaseDeferred`).
#[derive(Debug, Default)]
#[must_use = "a reservation must be committed or rolled back"]
pub struct Reservation {
    allocated: Vec<Held>,
    release_on_commit: Vec<Held>,
    dry_run: bool,
}

impl Reservation {
    pub(crate) fn new(allocated: Vec<Held>, release_on_commit: Vec<Held>) -> Self {
        Reservation {
            allocated,
            release_on_commit,
            dry_run: false,
        }
    }

    pub(crate) fn dry_run() -> Self {
        Reservation {
            allocated: Vec::new(),
            release_on_commit: Vec::new(),
            dry_run: true,
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
    pub fn commit(mut self, allocations: &ServiceAllocations) {
        self.finish(allocations, true);
    }

    /// The write failed: free what was allocated, keep what the update would have given up.
    pub fn rollback(mut self, allocations: &ServiceAllocations) {
        self.finish(allocations, false);
    }

    fn finish(&mut self, allocations: &ServiceAllocations, commit: bool) {
        if self.is_empty() {
            return;
        }
        let allocated = std::mem::take(&mut self.allocated);
        let release = std::mem::take(&mut self.release_on_commit);
        allocations.finish(allocated, release, commit);
    }

    fn is_empty(&self) -> bool {
        self.dry_run || (self.allocated.is_empty() && self.release_on_commit.is_empty())
    }
}

impl Drop for Reservation {
    /// A reservation dropped without commit or rollback is a bug in the caller: its values stay
    /// allocated (and marked in flight) until a restart rebuilds the state.
    fn drop(&mut self) {
        if !self.is_empty() {
            tracing::error!(
                allocated = ?self.allocated,
                release_on_commit = ?self.release_on_commit,
                "Service allocation reservation dropped without commit or rollback"
            );
        }
    }
}
