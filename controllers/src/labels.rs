//! Label and annotation keys the controllers read and write, and the controllers' limits.
//!
//! The keys are defined once, in [`svcplane_rules::well_known`] (each citing its upstream
//! name); they are re-exported here so the controllers name them in one place.

pub use svcplane_rules::well_known::{
    ANNOTATION_LAST_APPLIED, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ANNOTATION_LEADER_ELECTION,
    ANNOTATION_OVER_CAPACITY, ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE,
    LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_NODE_ROLE_CONTROL_PLANE, LABEL_NODE_ROLE_MASTER,
    LABEL_SERVICE_NAME, LABEL_SKIP_MIRROR, LABEL_TOPOLOGY_ZONE,
    MANAGED_BY_ENDPOINTSLICE_CONTROLLER, MANAGED_BY_MIRRORING_CONTROLLER, OVER_CAPACITY_TRUNCATED,
    RESERVED_MANAGED_BY,
};

/// Upstream `endpoints.kubernetes.io/...` capacity: at most 1000 addresses in one Endpoints
/// object (upstream `maxCapacity` in `pkg/controller/endpoint`).
pub const ENDPOINTS_MAX_CAPACITY: usize = 1000;

/// Default `--max-endpoints-per-slice` (upstream kube-controller-manager default).
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Largest allowed `--max-endpoints-per-slice` (upstream validation): the API's own limit on
/// endpoints in one slice.
pub const MAX_MAX_ENDPOINTS_PER_SLICE: usize = svcplane_rules::MAX_ENDPOINTS_PER_SLICE;

/// Upstream `maxEndpointsPerSubset` of the mirroring controller.
pub const MIRRORING_MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Returns true for the label keys the EndpointSlice controller owns on its slices and never
/// copies from the Service (upstream `isReservedLabelKey`).
pub fn is_reserved_slice_label(key: &str) -> bool {
    key == LABEL_SERVICE_NAME || key == LABEL_MANAGED_BY || key == LABEL_HEADLESS
}
