//! The mistakes users make most with Services, found from the objects and from the per-node
//! forwarding reports: a selector that matches no Pod, a `targetPort` name no Pod declares,
//! Pods that match but are not ready, `externalTrafficPolicy: Local` with no local endpoint
//! anywhere, a LoadBalancer still pending.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use svcplane_api::{LoadBalancerIPPool, PoolConditionType, DEFAULT_LOAD_BALANCER_CLASS};

use super::addresses::requested_lb_ips;
use super::gather::{Gathered, Pools};
use super::report::{Finding, NodeReport, Severity};

/// At most this many Pod names are listed in one finding.
const MAX_NAMES: usize = 5;

fn warning(code: &'static str, message: String) -> Finding {
    Finding {
        code,
        severity: Severity::Warning,
        message,
    }
}

fn names_list(names: &[&str]) -> String {
    let mut text = names
        .iter()
        .take(MAX_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_NAMES {
        text.push_str(&format!(" and {} more", names.len() - MAX_NAMES));
    }
    text
}

/// Everything found. `nodes` must cover every Node (not only a `--node` one), and is empty
/// when the Service is not proxied (`proxied: false`).
pub fn findings(
    gathered: &Gathered,
    nodes: &[NodeReport],
    proxied: bool,
    external_local: bool,
) -> Vec<Finding> {
    let service = &gathered.service;
    let spec = service.spec.clone().unwrap_or_default();
    let namespace = service.metadata.namespace.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if type_ == "ExternalName" {
        return out;
    }
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty());
    if let Some(selector) = selector {
        if gathered.pods.is_empty() {
            let text: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push(warning(
                "SelectorMatchesNoPod",
                format!(
                    "selector {} matches no Pod in namespace {namespace}: the Service has no \
                     endpoints",
                    text.join(",")
                ),
            ));
        } else {
            out.extend(target_port_names(service, &gathered.pods));
            out.extend(pods_not_ready(&gathered.pods));
        }
    }
    if !proxied {
        out.push(Finding {
            code: "NotProxied",
            severity: Severity::Info,
            message: "node agents do not forward for this Service (headless, no ClusterIP, or \
                      another proxy's): clients reach its endpoints directly"
                .into(),
        });
    } else {
        let any_used = nodes.iter().any(|n| {
            n.ports.iter().any(|p| {
                (p.cluster.in_use && p.cluster.endpoints.iter().any(|e| e.used))
                    || (p.local.in_use && p.local.endpoints.iter().any(|e| e.used))
            })
        });
        if !nodes.is_empty() && !any_used && nodes.iter().any(|n| !n.ports.is_empty()) {
            out.push(warning(
                "NoUsableEndpoint",
                "no node forwards to any endpoint: connections to the Service are rejected".into(),
            ));
        }
        if external_local {
            let any_local = nodes.iter().any(|n| {
                n.ports
                    .iter()
                    .any(|p| p.local.endpoints.iter().any(|e| e.used))
            });
            if !any_local {
                out.push(warning(
                    "ExternalLocalWithoutLocalEndpoint",
                    format!(
                        "externalTrafficPolicy: Local, but no node has a local endpoint ({} \
                         nodes checked): external traffic is dropped on every node",
                        nodes.len()
                    ),
                ));
            }
        }
    }
    if type_ == "LoadBalancer" && !has_ingress(service) {
        out.push(warning(
            "LoadBalancerPending",
            format!(
                "the LoadBalancer has no address yet (status.loadBalancer.ingress is empty): {}",
                pending_reason(service, &gathered.namespace_labels, &gathered.pools)
            ),
        ));
    }
    out
}

fn has_ingress(service: &Service) -> bool {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

/// Named `targetPort`s no selected Pod declares with the port's protocol: the EndpointSlice
/// controller leaves such Pods out of that port (upstream `podutil.FindPort` matches
/// `containers[].ports[].name` and protocol).
fn target_port_names(service: &Service, pods: &[Pod]) -> Vec<Finding> {
    let spec = service.spec.clone().unwrap_or_default();
    let mut out = Vec::new();
    for port in spec.ports.iter().flatten() {
        let Some(IntOrString::String(name)) = &port.target_port else {
            continue;
        };
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let declared = pods.iter().any(|pod| {
            pod.spec.iter().flat_map(|s| &s.containers).any(|c| {
                c.ports.iter().flatten().any(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
            })
        });
        if !declared {
            let label = port.name.clone().unwrap_or_else(|| port.port.to_string());
            out.push(warning(
                "TargetPortNameNotDeclared",
                format!(
                    "port {label} targets the port name {name:?} ({protocol}), which no \
                     selected Pod declares in spec.containers[].ports[].name: this port has no \
                     endpoints"
                ),
            ));
        }
    }
    out
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Selected Pods that are not Ready (finished Pods are not counted: they never come back).
fn pods_not_ready(pods: &[Pod]) -> Option<Finding> {
    let running: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .collect();
    let not_ready: Vec<&str> = running
        .iter()
        .filter(|p| !pod_ready(p))
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    if not_ready.is_empty() {
        return None;
    }
    Some(warning(
        "PodsNotReady",
        format!(
            "{} of {} selected Pods are not ready ({}): they get no traffic unless nothing \
             is ready and they are terminating but still serving",
            not_ready.len(),
            running.len(),
            names_list(&not_ready)
        ),
    ))
}

fn pool_name(pool: &LoadBalancerIPPool) -> &str {
    pool.metadata.name.as_deref().unwrap_or_default()
}

/// Why a LoadBalancer Service has no address, when the objects show it.
pub fn pending_reason(
    service: &Service,
    namespace_labels: &BTreeMap<String, String>,
    pools: &Pools,
) -> String {
    let spec = service.spec.clone().unwrap_or_default();
    if let Some(class) = spec
        .load_balancer_class
        .as_deref()
        .filter(|c| *c != DEFAULT_LOAD_BALANCER_CLASS)
    {
        return format!(
            "its loadBalancerClass {class} is not svcplane's ({DEFAULT_LOAD_BALANCER_CLASS}), so \
             the implementation of that class must assign one"
        );
    }
    let mut reasons = Vec::new();
    if spec.load_balancer_class.is_none() {
        reasons.push(format!(
            "it has no loadBalancerClass (svcplane's LoadBalancer IPAM serves \
             {DEFAULT_LOAD_BALANCER_CLASS}, and class-less Services only when configured as \
             the cluster default)"
        ));
    }
    match pools {
        Pools::NotInstalled => {
            reasons.push("the LoadBalancerIPPool CRD is not installed".into());
        }
        Pools::Unavailable(message) => {
            reasons.push(format!("LoadBalancerIPPools cannot be listed ({message})"));
        }
        Pools::Listed(list) if list.is_empty() => {
            reasons.push("no LoadBalancerIPPool exists".into());
        }
        Pools::Listed(list) => {
            let labels = service.metadata.labels.clone().unwrap_or_default();
            let selecting: Vec<&LoadBalancerIPPool> = list
                .iter()
                .filter(|p| p.spec.selects(&labels, namespace_labels))
                .collect();
            if selecting.is_empty() {
                reasons.push(
                    "no LoadBalancerIPPool selects it (serviceSelector / namespaceSelector)".into(),
                );
            } else if selecting.iter().all(|p| p.spec.disabled) {
                let names: Vec<&str> = selecting.iter().map(|p| pool_name(p)).collect();
                reasons.push(format!(
                    "every pool that selects it is disabled ({})",
                    names.join(", ")
                ));
            } else {
                for (ip, _) in requested_lb_ips(service) {
                    let held = selecting.iter().any(|p| {
                        p.spec
                            .address_blocks()
                            .is_ok_and(|blocks| blocks.iter().any(|b| b.contains(ip)))
                    });
                    if !held {
                        reasons.push(format!(
                            "the requested address {ip} is in no pool that selects it"
                        ));
                    }
                }
                for pool in selecting.iter().filter(|p| exhausted(p)) {
                    reasons.push(format!("pool {} is exhausted", pool_name(pool)));
                }
            }
        }
    }
    if reasons.is_empty() {
        "no obvious reason; see the Service's Events (kubectl describe)".into()
    } else {
        reasons.join("; ")
    }
}

fn exhausted(pool: &LoadBalancerIPPool) -> bool {
    pool.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == PoolConditionType::Exhausted.as_str() && c.status == "True")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    fn pod(name: &str, ready: bool, port_name: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": 8080}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        }))
        .unwrap()
    }

    fn gathered(service: Service, pods: Vec<Pod>, pools: Pools) -> Gathered {
        Gathered {
            service,
            slices: Vec::new(),
            pods,
            nodes: Vec::new(),
            namespace_labels: BTreeMap::new(),
            pools,
            service_cidrs: Vec::new(),
        }
    }

    fn codes(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn bad_target_port_name_and_unready_pods_are_flagged() {
        let svc = service(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.0.0.5",
                     "ports": [{"name": "http", "port": 80, "targetPort": "htttp"}]},
        }));
        let g = gathered(
            svc,
            vec![pod("a", true, "http"), pod("b", false, "http")],
            Pools::NotInstalled,
        );
        let found = findings(&g, &[], true, false);
        assert_eq!(codes(&found), ["TargetPortNameNotDeclared", "PodsNotReady"]);
        assert!(
            found[0].message.contains("\"htttp\""),
            "{}",
            found[0].message
        );
        assert!(
            found[1].message.starts_with("1 of 2"),
            "{}",
            found[1].message
        );
    }

    #[test]
    fn selector_matching_nothing_is_flagged_and_named() {
        let svc = service(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "wbe"}, "clusterIP": "10.0.0.5", "ports": [{"port": 80}]},
        }));
        let found = findings(
            &gathered(svc, vec![], Pools::NotInstalled),
            &[],
            true,
            false,
        );
        assert_eq!(codes(&found), ["SelectorMatchesNoPod"]);
        assert!(found[0].message.contains("app=wbe"));
        assert!(found[0].message.contains("namespace shop"));
    }

    #[test]
    fn pending_load_balancer_of_another_class_says_so() {
        let svc = service(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
                     "clusterIP": "10.0.0.5", "ports": [{"port": 80}]},
        }));
        let reason = pending_reason(&svc, &BTreeMap::new(), &Pools::Listed(vec![]));
        assert!(
            reason.contains("example.com/lb is not svcplane's"),
            "{reason}"
        );
    }

    #[test]
    fn pending_load_balancer_names_missing_crd_and_unselecting_pools() {
        let svc = service(json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "front"}},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": DEFAULT_LOAD_BALANCER_CLASS,
                     "clusterIP": "10.0.0.5", "ports": [{"port": 80}]},
        }));
        let reason = pending_reason(&svc, &BTreeMap::new(), &Pools::NotInstalled);
        assert_eq!(reason, "the LoadBalancerIPPool CRD is not installed");
        let pool: LoadBalancerIPPool = serde_json::from_value(json!({
            "apiVersion": "svcplane.io/v1alpha1", "kind": "LoadBalancerIPPool",
            "metadata": {"name": "back"},
            "spec": {"blocks": [{"cidr": "192.0.2.0/28"}],
                     "serviceSelector": {"matchLabels": {"tier": "back"}}},
        }))
        .unwrap();
        let reason = pending_reason(&svc, &BTreeMap::new(), &Pools::Listed(vec![pool]));
        assert!(
            reason.contains("no LoadBalancerIPPool selects it"),
            "{reason}"
        );
    }
}
