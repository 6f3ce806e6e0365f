//! Label and annotation keys the controllers read and write.
//!
//! Every key mirrors an upstream constant; the doc comment names it.

/// `kubernetes.io/service-name`: links an EndpointSlice to its Service
/// (upstream `discovery.LabelServiceName`).
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// `endpointslice.kubernetes.io/managed-by`: the controller or entity that manages an
/// EndpointSlice (upstream `discovery.LabelManagedBy`).
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";

/// `endpointslice-controller.k8s.io`: managed-by value of kube-controller-manager's
/// EndpointSlice controller (upstream `endpointslice.ControllerName`).
pub const MANAGED_BY_ENDPOINTSLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// `endpointslicemirroring-controller.k8s.io`: managed-by value of the EndpointSlice
/// mirroring controller (upstream `endpointslicemirroring.ControllerName`).
pub const MANAGED_BY_MIRRORING_CONTROLLER: &str = "endpointslicemirroring-controller.k8s.io";

/// `controller`: the managed-by value the seed document reserves for Kubernetes' own control
/// plane; a configured managed-by value may never be this.
pub const RESERVED_MANAGED_BY: &str = "controller";

/// `service.kubernetes.io/headless`: set (empty value) on EndpointSlices and Endpoints of
/// headless Services (upstream `v1.IsHeadlessService`).
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";

/// `endpointslice.kubernetes.io/skip-mirror`: `"true"` on an Endpoints object stops the
/// mirroring controller from mirroring it (upstream `discovery.LabelSkipMirror`).
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";

/// `endpoints.kubernetes.io/over-capacity`: set to `truncated` when an Endpoints object holds
/// only 1000 of more addresses (upstream `v1.EndpointsOverCapacity`).
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

/// The only value of [`ANNOTATION_OVER_CAPACITY`] (upstream `truncated`).
pub const OVER_CAPACITY_TRUNCATED: &str = "truncated";

/// `endpoints.kubernetes.io/last-change-trigger-time`: time of the change that triggered the
/// last write, RFC 3339 (upstream `v1.EndpointsLastChangeTriggerTime`).
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str =
    "endpoints.kubernetes.io/last-change-trigger-time";

/// `kubectl.kubernetes.io/last-applied-configuration`: never mirrored onto EndpointSlices
/// (upstream `v1.LastAppliedConfigAnnotation`).
pub const ANNOTATION_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `control-plane.alpha.kubernetes.io/leader`: Endpoints carrying it are leader-election
/// records, never mirrored (upstream `resourcelock.LeaderElectionRecordAnnotationKey`).
pub const ANNOTATION_LEADER_ELECTION: &str = "control-plane.alpha.kubernetes.io/leader";

/// `service.kubernetes.io/topology-mode`: `Auto` (or `auto`) asks for topology-aware hints
/// allocated by Node CPU share (upstream `v1.AnnotationTopologyMode`, KEP-2433; see
/// [`crate::topology::cache`]).
pub const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";

/// `service.kubernetes.io/topology-aware-hints`: the older spelling of
/// [`ANNOTATION_TOPOLOGY_MODE`]; when present it takes precedence (upstream
/// `v1.DeprecatedAnnotationTopologyAwareHints`).
pub const ANNOTATION_TOPOLOGY_AWARE_HINTS: &str = "service.kubernetes.io/topology-aware-hints";

/// `node-role.kubernetes.io/control-plane`: Nodes carrying it (any value) are left out of
/// the per-zone CPU totals (upstream topologycache `hasExcludedLabels`).
pub const LABEL_NODE_ROLE_CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";

/// `node-role.kubernetes.io/master`: the legacy control-plane role label, excluded like
/// [`LABEL_NODE_ROLE_CONTROL_PLANE`].
pub const LABEL_NODE_ROLE_MASTER: &str = "node-role.kubernetes.io/master";

/// `topology.kubernetes.io/zone`: a Node's zone, copied into `endpoints[].zone`
/// (upstream `v1.LabelTopologyZone`).
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// Upstream `endpoints.kubernetes.io/...` capacity: at most 1000 addresses in one Endpoints
/// object (upstream `maxCapacity` in `pkg/controller/endpoint`).
pub const ENDPOINTS_MAX_CAPACITY: usize = 1000;

/// Default `--max-endpoints-per-slice` (upstream kube-controller-manager default).
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Largest allowed `--max-endpoints-per-slice` (upstream validation; also the API limit).
pub const MAX_MAX_ENDPOINTS_PER_SLICE: usize = 1000;

/// Upstream `maxEndpointsPerSubset` of the mirroring controller.
pub const MIRRORING_MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Returns true for the label keys the EndpointSlice controller owns on its slices and never
/// copies from the Service (upstream `isReservedLabelKey`).
pub fn is_reserved_slice_label(key: &str) -> bool {
    key == LABEL_SERVICE_NAME || key == LABEL_MANAGED_BY || key == LABEL_HEADLESS
}
