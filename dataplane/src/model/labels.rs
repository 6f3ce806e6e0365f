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

/// `service.kubernetes.io/service-proxy-name` (upstream `apis.LabelServiceProxyName`): a Service
/// or EndpointSlice carrying it belongs to another service proxy; kube-proxy's informers select
/// only objects without it.
pub const LABEL_SERVICE_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";

/// `service.kubernetes.io/headless` (upstream `v1.IsHeadlessService`): set on the EndpointSlices
/// of headless Services; kube-proxy's informers select only slices without it.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
