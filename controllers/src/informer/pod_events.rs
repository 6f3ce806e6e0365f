//! Pod events → the Services to sync, shared by the EndpointSlice and Endpoints controllers
//! (upstream `endpointutil.GetServicesToUpdate` and `podEndpointsChanged`).

use crate::context::Context;
use crate::informer::cache::InformerEvent;
use crate::informer::cached_pod::CachedPod;

/// True when a Pod changed in a way that matters to endpoints (the cached Pods hold exactly
/// those fields, so anything but the resourceVersion counts; like upstream
/// `podEndpointsChanged`, a new Ready `lastTransitionTime` alone does not).
pub fn pod_changed(old: &CachedPod, new: &CachedPod) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || old.metadata.uid != new.metadata.uid
        || (
            &old.node_name,
            &old.hostname,
            &old.subdomain,
            &old.ports,
            &old.phase,
            &old.pod_ip,
            &old.pod_ips,
            &old.ready,
        ) != (
            &new.node_name,
            &new.hostname,
            &new.subdomain,
            &new.ports,
            &new.phase,
            &new.pod_ip,
            &new.pod_ips,
            &new.ready,
        )
}

/// Service keys to sync for a Pod event (upstream `GetServicesToUpdate`: Services matching
/// the new labels, plus those matching the old labels when the labels changed).
pub fn services_for_pod_event(ctx: &Context, event: &InformerEvent<CachedPod>) -> Vec<String> {
    match event {
        InformerEvent::Applied { old, new } => {
            let ns = new.metadata.namespace.as_deref().unwrap_or_default();
            if let Some(old) = old {
                if !pod_changed(old, new) {
                    return Vec::new();
                }
                let mut keys = ctx
                    .caches
                    .services_selecting(ns, new.metadata.labels.as_ref());
                if old.metadata.labels != new.metadata.labels {
                    keys.extend(
                        ctx.caches
                            .services_selecting(ns, old.metadata.labels.as_ref()),
                    );
                    keys.sort();
                    keys.dedup();
                }
                keys
            } else {
                ctx.caches
                    .services_selecting(ns, new.metadata.labels.as_ref())
            }
        }
        InformerEvent::Deleted(pod) => ctx.caches.services_selecting(
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.labels.as_ref(),
        ),
        InformerEvent::Listed { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::informer::cached_pod::PodInterner;
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(rv: &str, ready: &str, since: &str) -> CachedPod {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    last_transition_time: Some(Time(since.parse().unwrap())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        CachedPod::from_pod(pod, &PodInterner::new())
    }

    /// Upstream `podEndpointsChanged`: readiness counts, its transition time alone does not.
    #[test]
    fn pod_changed_ignores_resource_version_and_ready_transition_time_alone() {
        let base = pod("1", "True", "2025-01-01T00:00:00Z");
        let cases = [
            (
                "resourceVersion only",
                pod("2", "True", "2025-01-01T00:00:00Z"),
                false,
            ),
            (
                "ready time only",
                pod("2", "True", "2025-01-02T00:00:00Z"),
                false,
            ),
            ("readiness", pod("2", "False", "2025-01-02T00:00:00Z"), true),
        ];
        for (name, new, want) in cases {
            assert_eq!(pod_changed(&base, &new), want, "{name}");
        }
    }
}
