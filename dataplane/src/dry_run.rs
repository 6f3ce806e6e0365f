//! The dry-run backend: touches no kernel; the agent prints or serves the table instead.

use crate::backend::{Backend, BackendError, SyncReport, SyncScope};
use crate::model::DesiredTable;

/// Counts what a real backend would do and programs nothing.
#[derive(Debug, Default)]
pub struct DryRunBackend {
    syncs: u64,
}

impl DryRunBackend {
    /// A new dry-run backend.
    pub fn new() -> DryRunBackend {
        DryRunBackend::default()
    }

    /// Syncs performed so far.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }
}

impl Backend for DryRunBackend {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn sync(
        &mut self,
        table: &DesiredTable,
        scope: &SyncScope,
    ) -> Result<SyncReport, BackendError> {
        self.syncs += 1;
        let operations = match scope {
            SyncScope::Full => table.len(),
            SyncScope::Services(names) => names
                .iter()
                .filter_map(|n| table.service(n))
                .map(|s| s.virtual_servers.len())
                .sum(),
        };
        Ok(SyncReport {
            operations,
            conntrack_deleted: 0,
        })
    }

    fn cleanup(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}
