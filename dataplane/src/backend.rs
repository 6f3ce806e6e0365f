//! The interface every forwarding backend implements. A backend executes the desired table:
//! it reads what the kernel holds, applies the difference, and never re-decides which
//! endpoints a Service uses (that is [`crate::model`]'s job alone).

use std::collections::BTreeSet;

use crate::model::{DesiredTable, ServiceName};

/// How much of the table a sync must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncScope {
    /// Read the kernel's whole state and repair every difference (start-up, the periodic
    /// `--sync-period` resync, and after a failed sync).
    Full,
    /// Only these Services' rows changed since the last successful sync; everything else is
    /// known to be in place.
    Services(BTreeSet<ServiceName>),
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Kernel write operations issued (netlink messages, rule or element changes).
    pub operations: usize,
    /// Stale UDP conntrack entries deleted.
    pub conntrack_deleted: usize,
}

/// A backend failure.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The kernel lacks what the backend needs (a module, a netlink family, a tool).
    #[error("the {backend} backend cannot run on this machine: {reason}")]
    Unavailable {
        /// `ipvs`, `nftables`.
        backend: &'static str,
        /// What is missing and what to do about it.
        reason: String,
    },
    /// The kernel refused an operation.
    #[error(transparent)]
    Kernel(Box<KernelFailure>),
}

/// An operation the kernel refused, naming the Service and address concerned when known.
#[derive(Debug, thiserror::Error)]
#[error("{backend}: {operation}{}: {source}", context_suffix(.service, .address))]
pub struct KernelFailure {
    /// `ipvs`, `nftables`.
    pub backend: &'static str,
    /// What was attempted (`add virtual server`, `load ruleset`...).
    pub operation: String,
    /// The Service concerned.
    pub service: Option<ServiceName>,
    /// The address concerned (`TCP 10.96.0.1:443`, `10.244.1.5:8080`).
    pub address: Option<String>,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl BackendError {
    /// A kernel failure.
    pub fn kernel(
        backend: &'static str,
        operation: impl Into<String>,
        service: Option<ServiceName>,
        address: Option<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BackendError {
        BackendError::Kernel(Box::new(KernelFailure {
            backend,
            operation: operation.into(),
            service,
            address,
            source: source.into(),
        }))
    }

    /// Stable name of the variant, for metric labels.
    pub fn metric_label(&self) -> &'static str {
        match self {
            BackendError::Unavailable { .. } => "unavailable",
            BackendError::Kernel(_) => "kernel",
        }
    }
}

fn context_suffix(service: &Option<ServiceName>, address: &Option<String>) -> String {
    match (service, address) {
        (Some(s), Some(a)) => format!(" (Service {s}, {a})"),
        (Some(s), None) => format!(" (Service {s})"),
        (None, Some(a)) => format!(" ({a})"),
        (None, None) => String::new(),
    }
}

/// A forwarding backend. Calls are blocking (netlink sockets, `nft` processes); the agent
/// runs them off the async runtime, one at a time.
pub trait Backend: Send {
    /// `ipvs`, `nftables`, `dry-run`.
    fn name(&self) -> &'static str;

    /// Brings the kernel in line with `table`.
    fn sync(&mut self, table: &DesiredTable, scope: &SyncScope)
        -> Result<SyncReport, BackendError>;

    /// Removes everything this backend ever created, and nothing else (`--cleanup`).
    fn cleanup(&mut self) -> Result<(), BackendError>;

    /// When the backend next wants [`Backend::housekeeping`] called, between syncs (the IPVS
    /// backend: to delete draining destinations once drained); `None` when nothing waits.
    fn housekeeping_due(&self) -> Option<std::time::Instant> {
        None
    }

    /// Work that is due between syncs (see [`Backend::housekeeping_due`]). Blocking, like
    /// [`Backend::sync`].
    fn housekeeping(&mut self) -> Result<SyncReport, BackendError> {
        Ok(SyncReport::default())
    }
}
