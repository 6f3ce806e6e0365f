//! ClusterIP and NodePort allocation for Services, run inside Service create, update and
//! delete as kube-apiserver's Service REST storage does (`pkg/registry/core/service/storage`),
//! plus the repair audit of upstream's ipallocator and portallocator repair controllers.
//!
//! Write path (the Service strategy calls these): [`ServiceAllocations::allocate_create`] and
//! [`ServiceAllocations::allocate_update`] default the Service (the webhook crate's
//! `default_service`, `prepare_service_create` / `prepare_service_update` and
//! `init_ip_family_fields`), allocate, and return a [`Reservation`] that the write pipeline
//! commits after the store write; dropped uncommitted, it rolls back.
//! [`ServiceAllocations::release`] frees a deleted Service's values. The lock is held only
//! while allocating or releasing.
//!
//! Allocation state lives in memory and is rebuilt from the stored Services after a state
//! file is loaded ([`ServiceAllocations::rebuild`]), which is what upstream's repair
//! controller does for kube-apiserver at start.

// `ApiError` is the crate's error type and the write pipeline calls these functions with it; its
// size is a crate-wide question (clippy's `result_large_err`), not this module's.
#![allow(clippy::result_large_err)]

mod allocate;
mod errors;
pub mod holdings;
mod metrics;
mod pools;
pub mod repair;
mod reservation;
mod service_json;
mod txn;
mod usage;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use svcplane_allocators::{DualStackClusterIps, PortRange};
use svcplane_rules::{
    default_service, init_ip_family_fields, prepare_service_create, prepare_service_update,
    ClusterFamilies,
};

pub use holdings::Held;
pub use metrics::AllocatorMetrics;
pub use repair::{Finding, RepairReport};
pub use reservation::Reservation;

use crate::error::ApiError;
use pools::Pools;
use txn::Txn;

/// Allocation state for Services: the allocators of `--service-cluster-ip-range` and
/// `--service-node-port-range`.
pub struct ServiceAllocations {
    pools: Arc<Mutex<Pools>>,
    families: ClusterFamilies,
    cluster_ip_range: String,
    node_port_range: String,
    metrics: AllocatorMetrics,
    /// Repair audit: how many consecutive audits found each value leaked.
    leaks: Mutex<HashMap<Held, u32>>,
}

impl std::fmt::Debug for ServiceAllocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAllocations")
            .field("cluster_ip_range", &self.cluster_ip_range)
            .field("node_port_range", &self.node_port_range)
            .finish_non_exhaustive()
    }
}

impl ServiceAllocations {
    /// Allocators for the given `--service-cluster-ip-range` (one CIDR, or two of different
    /// families) and `--service-node-port-range`.
    ///
    /// Errors: [`crate::Error::InvalidRange`] naming the flag, with kube-apiserver's message
    /// (e.g. `specified --service-cluster-ip-range is too large; for 32-bit addresses, the
    /// mask must be >= 12`, `end port cannot be less than start port: 32767-30000`).
    pub fn new(cluster_ip_range: &str, node_port_range: &str) -> Result<Self, crate::Error> {
        let ips = DualStackClusterIps::parse(cluster_ip_range).map_err(|e| {
            crate::Error::InvalidRange {
                flag: "--service-cluster-ip-range",
                message: e.to_string(),
            }
        })?;
        let ports = PortRange::parse(node_port_range).map_err(|e| crate::Error::InvalidRange {
            flag: "--service-node-port-range",
            message: e.to_string(),
        })?;
        let families = ClusterFamilies {
            primary: ips.primary_family().as_str().to_string(),
            secondary: ips.secondary().map(|a| a.family().as_str().to_string()),
        };
        let pools = Arc::new(Mutex::new(Pools::new(ips, ports)));
        Ok(ServiceAllocations {
            metrics: AllocatorMetrics::new(pools.clone()),
            pools,
            families,
            cluster_ip_range: cluster_ip_range.to_string(),
            node_port_range: node_port_range.to_string(),
            leaks: Mutex::new(HashMap::new()),
        })
    }

    /// The configured ranges, as given.
    pub fn ranges(&self) -> (&str, &str) {
        (&self.cluster_ip_range, &self.node_port_range)
    }

    /// The cluster's service IP families (primary first).
    pub fn families(&self) -> &ClusterFamilies {
        &self.families
    }

    /// The metrics (register [`AllocatorMetrics::collector`] in the server's registry).
    pub fn metrics(&self) -> &AllocatorMetrics {
        &self.metrics
    }

    /// Defaults a new Service and allocates its ClusterIPs, node ports and health-check node
    /// port (upstream `BeginCreate` → `allocateCreate`). A dry run reserves nothing.
    ///
    /// Errors: 400 when the body does not decode as a Service; 422 for IP-family problems
    /// and refused user-chosen values, with upstream's messages; 500 when a range is full
    /// (as upstream). Nothing stays allocated on error.
    pub fn allocate_create(&self, svc: &mut Value, dry_run: bool) -> Result<Reservation, ApiError> {
        let name = crate::metadata::name(svc).to_string();
        let mut typed = service_json::decode_service(svc)?;
        default_service(&mut typed);
        prepare_service_create(&mut typed);
        let errs = init_ip_family_fields(&mut typed, None, &self.families);
        if !errs.is_empty() {
            return Err(errors::invalid(&name, &errs));
        }
        let reservation = {
            let mut pools = self.pools.lock();
            let mut txn = Txn::new(&mut pools, &self.metrics, dry_run);
            match allocate::create(&mut txn, &mut typed, &name) {
                Ok(()) => txn.finish(Vec::new(), &self.pools),
                Err(e) => {
                    txn.abort();
                    return Err(e);
                }
            }
        };
        service_json::write_spec(svc, &typed);
        Ok(reservation)
    }

    /// Defaults an updated Service and allocates or releases what the change needs (upstream
    /// `BeginUpdate` → `allocateUpdate`): type changes allocate or give up ClusterIPs and node
    /// ports, adding the secondary family allocates its IP, values the update drops are freed
    /// when the reservation commits.
    ///
    /// Errors: as [`allocate_create`](Self::allocate_create).
    pub fn allocate_update(
        &self,
        new: &mut Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<Reservation, ApiError> {
        let name = crate::metadata::name(new).to_string();
        let mut typed = service_json::decode_service(new)?;
        let old_typed = service_json::decode_service(old)?;
        default_service(&mut typed);
        prepare_service_update(&mut typed, &old_typed);
        let errs = init_ip_family_fields(&mut typed, Some(&old_typed), &self.families);
        if !errs.is_empty() {
            return Err(errors::invalid(&name, &errs));
        }
        let reservation = {
            let mut pools = self.pools.lock();
            let mut txn = Txn::new(&mut pools, &self.metrics, dry_run);
            match allocate::update(&mut txn, &mut typed, &old_typed, &name) {
                Ok(release) => txn.finish(release, &self.pools),
                Err(e) => {
                    txn.abort();
                    return Err(e);
                }
            }
        };
        service_json::write_spec(new, &typed);
        Ok(reservation)
    }

    /// Releases everything a deleted Service held.
    pub fn release(&self, svc: &Value) {
        let typed = match service_json::decode_service(svc) {
            Ok(t) => t,
            Err(err) => {
                tracing::warn!(%err, "cannot read a deleted Service to release its allocations");
                return;
            }
        };
        let held = holdings::holdings(&typed);
        let mut pools = self.pools.lock();
        for v in held.values() {
            if !pools.release(v) {
                tracing::debug!(value = %v, "released value was not allocated");
            }
        }
    }

    /// The first address of the primary range, reserved for `default/kubernetes`
    /// (upstream `ServiceIPRange` → `GetIndexedIP(cidr, 1)`).
    pub fn first_address(&self) -> Option<String> {
        self.pools
            .lock()
            .ips
            .kubernetes_service_ip()
            .map(|ip| ip.to_string())
    }

    /// Per-range usage for `/debug/allocators`.
    pub fn usage_json(&self) -> Value {
        usage::usage_json(
            &self.pools.lock(),
            &self.cluster_ip_range,
            &self.node_port_range,
        )
    }

    /// Whether a value is allocated.
    pub fn is_allocated(&self, value: Held) -> bool {
        self.pools.lock().contains(value)
    }

    /// Every allocated value (ClusterIPs, then node ports).
    pub fn allocated(&self) -> Vec<Held> {
        self.pools.lock().allocated()
    }

    /// Rebuilds allocation state from the stored Services (after loading a state file).
    /// Values that cannot be allocated (duplicates, outside the configured ranges) are
    /// logged; the repair audit reports them as Events.
    pub fn rebuild(&self, store: &crate::store::Store) {
        let mut pools = self.pools.lock();
        let mut fresh = pools.empty_like();
        for svc in repair::stored_services(store) {
            for v in svc.holdings.values() {
                if let Err(err) = fresh.allocate(v) {
                    tracing::warn!(namespace = %svc.namespace, name = %svc.name, value = %v, %err,
                        "cannot restore a Service's allocation");
                }
            }
        }
        *pools = fresh;
        self.leaks.lock().clear();
        tracing::info!(
            allocated = pools.allocated().len(),
            "rebuilt Service allocations from the store"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_flags_name_the_flag_with_kube_apiserver_messages() {
        let rows = [
            ("10.0.0.0/8", "30000-32767", "--service-cluster-ip-range: specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12"),
            ("10.0.0.0/24,10.1.0.0/24", "30000-32767", "--service-cluster-ip-range: --service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family"),
            ("bogus", "30000-32767", "--service-cluster-ip-range: service-cluster-ip-range[0] is not a valid cidr"),
            ("10.0.0.0/24", "32767-30000", "--service-node-port-range: end port cannot be less than start port: 32767-30000"),
        ];
        for (ips, ports, message) in rows {
            let err = ServiceAllocations::new(ips, ports).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn first_address_is_the_primary_range_network_plus_one() {
        let a = ServiceAllocations::new("fd00::/112,10.0.0.0/24", "").unwrap();
        assert_eq!(a.first_address().as_deref(), Some("fd00::1"));
        assert_eq!(a.families().primary, "IPv6");
        assert_eq!(a.families().secondary.as_deref(), Some("IPv4"));
    }
}
