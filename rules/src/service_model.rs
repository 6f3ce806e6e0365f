//! Small read-only views of a Service used by defaulting and validation (upstream
//! `pkg/api/service/util.go`, `pkg/registry/core/service/storage` helpers).

use k8s_openapi::api::core::v1::Service;

/// `spec.type`, or `""` when unset.
pub fn spec_type(svc: &Service) -> &str {
    svc.spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("")
}

/// Upstream `isHeadlessService`: type ClusterIP with `clusterIP: None`.
pub fn is_headless(svc: &Service) -> bool {
    let spec = match svc.spec.as_ref() {
        Some(s) => s,
        None => return false,
    };
    spec.type_.as_deref() == Some("ClusterIP") && spec.cluster_ip.as_deref() == Some("None")
}

/// Upstream `needsClusterIP`: every type but ExternalName.
pub fn needs_cluster_ip(ty: &str) -> bool {
    ty != "ExternalName"
}

/// Upstream `needsNodePort`: NodePort and LoadBalancer.
pub fn needs_node_port(ty: &str) -> bool {
    ty == "NodePort" || ty == "LoadBalancer"
}

/// Upstream `NeedsHealthCheck` / `needsHCNodePort`: LoadBalancer with `externalTrafficPolicy: Local`.
pub fn needs_hc_node_port(ty: &str, external_traffic_policy: &str) -> bool {
    ty == "LoadBalancer" && external_traffic_policy == "Local"
}

/// Upstream `ExternallyAccessible`: LoadBalancer, NodePort, or ClusterIP with externalIPs.
pub fn externally_accessible(ty: &str, external_ips: &[String]) -> bool {
    ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && !external_ips.is_empty())
}

/// Upstream validation's `isHeadlessService`: `clusterIPs` is exactly `["None"]`, any type.
/// (The warnings code uses [`is_headless`] instead, as upstream does.)
pub fn is_headless_cluster_ips(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ips.as_deref())
        .is_some_and(|ips| ips.len() == 1 && ips[0] == "None")
}

/// `spec`, borrowed when present (validation reads it without cloning).
pub fn spec_of(svc: &Service) -> std::borrow::Cow<'_, k8s_openapi::api::core::v1::ServiceSpec> {
    match &svc.spec {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(Default::default()),
    }
}

/// An annotation value.
pub fn annotation<'a>(svc: &'a Service, key: &str) -> Option<&'a String> {
    svc.metadata.annotations.as_ref().and_then(|a| a.get(key))
}
