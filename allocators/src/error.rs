//! The crate's one error type.
//!
//! Display strings of the runtime variants are exactly upstream's
//! (`pkg/registry/core/service/ipallocator` and `portallocator`), so the API
//! server can wrap them into the same 422 messages a kube-apiserver v1.32
//! returns, e.g. `failed to allocate IP 10.0.0.5: provided IP is already
//! allocated`.

use std::fmt;

/// What kind of value an allocator hands out; picks the wording of [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A Service ClusterIP (`spec.clusterIPs`).
    Ip,
    /// A Service NodePort (`spec.ports[*].nodePort`, `spec.healthCheckNodePort`).
    Port,
    /// A raw offset of a [`crate::RangeBitmap`] (no Kubernetes meaning).
    Offset,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Ip => "IP",
            Resource::Port => "port",
            Resource::Offset => "offset",
        })
    }
}

/// Errors of the ClusterIP and NodePort allocators.
///
/// Variant names are stable: they are used as metric labels (see [`Error::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No free value is left (upstream `ErrFull`: "range is full").
    #[error("range is full")]
    RangeFull {
        /// IP or port.
        resource: Resource,
        /// The range, e.g. `10.0.0.0/24` or `30000-32767`.
        range: String,
    },
    /// The value is already taken (upstream `ErrAllocated`).
    #[error("provided {resource} is already allocated")]
    AlreadyAllocated {
        /// IP or port.
        resource: Resource,
        /// The value as the user wrote it, e.g. `10.0.0.5` or `30962`.
        value: String,
    },
    /// The value is outside the allocatable range (upstream `ErrNotInRange`).
    ///
    /// For ClusterIPs this includes the network address and, for IPv4, the
    /// broadcast address of the CIDR.
    #[error("{}", not_in_range_message(*.resource, .value, .range))]
    NotInRange {
        /// IP or port.
        resource: Resource,
        /// The rejected value.
        value: String,
        /// The valid range, e.g. `10.0.0.0/24` or `30000-32767`.
        range: String,
    },
    /// A range (CIDR, port range, flag value) cannot be used; `reason` is a
    /// complete sentence, worded as kube-apiserver words it where it has a message.
    #[error("{reason}")]
    InvalidRange {
        /// IP or port.
        resource: Resource,
        /// The range or flag value as given.
        range: String,
        /// Why it is refused.
        reason: String,
    },
    /// A snapshot belongs to another range (upstream `ErrMismatchedNetwork`).
    #[error("{}", mismatched_range_message(*.resource))]
    MismatchedRange {
        /// IP or port.
        resource: Resource,
        /// The allocator's range.
        expected: String,
        /// The snapshot's range.
        found: String,
    },
    /// Snapshot bytes are truncated, of another format, or inconsistent.
    #[error("invalid {resource} allocation snapshot: {reason}")]
    InvalidSnapshot {
        /// IP, port or offset.
        resource: Resource,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Stable variant name, for metric labels and log fields
    /// (`svcplane_allocator_errors_total{kind="AlreadyAllocated"}`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::RangeFull { .. } => "RangeFull",
            Error::AlreadyAllocated { .. } => "AlreadyAllocated",
            Error::NotInRange { .. } => "NotInRange",
            Error::InvalidRange { .. } => "InvalidRange",
            Error::MismatchedRange { .. } => "MismatchedRange",
            Error::InvalidSnapshot { .. } => "InvalidSnapshot",
        }
    }

    /// Re-labels a bitmap-level error (offsets) as an error about `resource`
    /// values, with the value and range spelled the way users see them.
    pub(crate) fn relabel(self, resource: Resource, value: String, range: &str) -> Error {
        match self {
            Error::RangeFull { .. } => Error::RangeFull {
                resource,
                range: range.to_string(),
            },
            Error::AlreadyAllocated { .. } => Error::AlreadyAllocated { resource, value },
            Error::NotInRange { .. } => Error::NotInRange {
                resource,
                value,
                range: range.to_string(),
            },
            Error::InvalidSnapshot { reason, .. } => Error::InvalidSnapshot { resource, reason },
            other => other,
        }
    }
}

/// Upstream wording differs between the two allocators (ipallocator names the IP).
fn not_in_range_message(resource: Resource, value: &str, range: &str) -> String {
    match resource {
        Resource::Ip => format!(
            "the provided IP ({value}) is not in the valid range. The range of valid IPs is {range}"
        ),
        Resource::Port => format!(
            "provided port is not in the valid range. The range of valid ports is {range}"
        ),
        Resource::Offset => format!(
            "the provided offset ({value}) is not in the valid range. The range of valid offsets is {range}"
        ),
    }
}

/// Upstream `ErrMismatchedNetwork` of each allocator.
fn mismatched_range_message(resource: Resource) -> &'static str {
    match resource {
        Resource::Ip => "the provided network does not match the current range",
        Resource::Port => "the provided port range does not match the current port range",
        Resource::Offset => "the provided range does not match the current range",
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
