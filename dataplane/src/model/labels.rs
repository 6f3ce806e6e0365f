//! Label and annotation keys the proxy reads, each an upstream constant.

/// `kubernetes.io/service-name`: the Service an EndpointSlice belongs to (upstream
/// `discovery.LabelServiceName`). Slices without it are not proxied.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// `endpoints.kubernetes.io/last-change-trigger-time` (upstream
/// `v1.EndpointsLastChangeTriggerTime`): network programming latency starts here.
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str =
    "endpoints.kubernetes.io/last-change-trigger-time";

/// `topology.kubernetes.io/zone` on a Node (upstream `v1.LabelTopologyZone`).
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
