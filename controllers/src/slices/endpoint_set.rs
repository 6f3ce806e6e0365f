//! Desired endpoints of a selector-based Service, computed from its Pods and their Nodes.
//!
//! Mirrors upstream `podToEndpoint`, `ShouldPodBeInEndpoints`, `ShouldSetHostname`,
//! `getAddressTypesForService` and the `EndpointSet` keyed like upstream `hashEndpoint`
//! (addresses, hostname, targetRef namespace/name), so that condition or topology changes
//! are in-place updates rather than remove+add.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

use crate::slices::port_map::{endpoint_ports, PortMapKey};
use crate::topology::hints::{apply_hints, HintPolicy};

/// `addressType: IPv4`.
pub const ADDRESS_TYPE_IPV4: &str = "IPv4";
/// `addressType: IPv6`.
pub const ADDRESS_TYPE_IPV6: &str = "IPv6";

/// Identity of an endpoint within a port group (upstream `endpointHash`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointKey {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

impl EndpointKey {
    /// Key of an endpoint; address order does not matter.
    pub fn of(endpoint: &Endpoint) -> Self {
        let mut addresses = endpoint.addresses.clone();
        addresses.sort();
        let (namespace, name) = endpoint
            .target_ref
            .as_ref()
            .map(|r| {
                (
                    r.namespace.clone().unwrap_or_default(),
                    r.name.clone().unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        EndpointKey {
            addresses,
            hostname: endpoint.hostname.clone().unwrap_or_default(),
            namespace,
            name,
        }
    }
}

/// A set of endpoints keyed by [`EndpointKey`], iterated in key order (deterministic plans).
pub type EndpointSet = BTreeMap<EndpointKey, Endpoint>;

/// Inserts an endpoint into a set.
pub fn insert_endpoint(set: &mut EndpointSet, endpoint: Endpoint) {
    set.insert(EndpointKey::of(&endpoint), endpoint);
}

/// True when two endpoints with the same key carry the same data (upstream
/// `EndpointsEqualBeyondHash`, plus `hints` because we compute hints up front): nodeName,
/// zone, the three conditions, targetRef ignoring resourceVersion, and hints.
pub fn endpoints_equal_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let cond = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut r| {
            r.resource_version = None;
            r
        })
    };
    let hints = |e: &Endpoint| {
        e.hints
            .as_ref()
            .filter(|h| {
                h.for_zones.as_ref().is_some_and(|z| !z.is_empty())
                    || h.for_nodes.as_ref().is_some_and(|n| !n.is_empty())
            })
            .map(|h| {
                (
                    h.for_zones
                        .iter()
                        .flatten()
                        .map(|z| z.name.clone())
                        .collect::<Vec<_>>(),
                    h.for_nodes
                        .iter()
                        .flatten()
                        .map(|n| n.name.clone())
                        .collect::<Vec<_>>(),
                )
            })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && cond(a) == cond(b)
        && target(a) == target(b)
        && hints(a) == hints(b)
}

/// Pod `Ready` condition is `True` (upstream `IsPodReady`).
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// Pod phase is `Succeeded` or `Failed` (upstream `isPodTerminal`).
pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// Pod has `metadata.deletionTimestamp`.
pub fn is_pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The Pod's IPs: `status.podIPs`, falling back to `status.podIP`.
pub fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<String> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    status
        .pod_ip
        .iter()
        .filter(|ip| !ip.is_empty())
        .cloned()
        .collect()
}

/// Upstream `ShouldPodBeInEndpoints`: not terminal, has an IP, and, unless
/// `include_terminating`, not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if is_pod_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || !is_pod_terminating(pod)
}

/// Upstream `ShouldSetHostname`: the Pod sets `hostname` and its `subdomain` names the
/// Service in the same namespace.
pub fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let spec = pod.spec.as_ref();
    let hostname = spec.and_then(|s| s.hostname.as_deref()).unwrap_or("");
    let subdomain = spec.and_then(|s| s.subdomain.as_deref()).unwrap_or("");
    !hostname.is_empty()
        && Some(subdomain) == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

/// `IPv4` or `IPv6` for a textual IP; `None` if it does not parse.
pub fn address_type_of(ip: &str) -> Option<&'static str> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(ADDRESS_TYPE_IPV4),
        IpAddr::V6(_) => Some(ADDRESS_TYPE_IPV6),
    }
}

/// Canonical text of an IP (parsed and re-printed, as upstream does).
pub fn canonical_ip(ip: &str) -> Option<String> {
    ip.parse::<IpAddr>().ok().map(|a| a.to_string())
}

/// True when the Service has a cluster IP (not headless, upstream `isServiceIPSet`).
pub fn is_service_ip_set(service: &Service) -> bool {
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// `spec.publishNotReadyAddresses`.
pub fn publish_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// Address types a Service gets slices for (upstream `getAddressTypesForService`): from
/// `spec.ipFamilies`; without them the family of the cluster IP; a headless Service without
/// families gets both.
pub fn address_types_for_service(service: &Service) -> Vec<&'static str> {
    let spec = service.spec.clone().unwrap_or_default();
    let mut types = Vec::new();
    for family in spec.ip_families.iter().flatten() {
        let t = match family.as_str() {
            "IPv4" => ADDRESS_TYPE_IPV4,
            "IPv6" => ADDRESS_TYPE_IPV6,
            _ => continue,
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if !types.is_empty() {
        types.sort();
        return types;
    }
    if is_service_ip_set(service) {
        let ip = spec.cluster_ip.unwrap_or_default();
        return vec![address_type_of(&ip).unwrap_or(ADDRESS_TYPE_IPV4)];
    }
    vec![ADDRESS_TYPE_IPV4, ADDRESS_TYPE_IPV6]
}

/// Builds the EndpointSlice endpoint for a Pod (upstream `podToEndpoint`): addresses of the
/// address type, `ready` = publishNotReadyAddresses or (Ready and not terminating),
/// `serving` = Ready, `terminating` = being deleted, nodeName, zone of the Node, targetRef,
/// hostname for matching subdomains, and hints per [`HintPolicy`].
pub fn pod_to_endpoint(
    pod: &Pod,
    zone: Option<&str>,
    service: &Service,
    address_type: &str,
    hints: HintPolicy,
) -> Endpoint {
    let serving = is_pod_ready(pod);
    let terminating = is_pod_terminating(pod);
    let ready = publish_not_ready(service) || (serving && !terminating);
    let addresses = pod_ips(pod)
        .iter()
        .filter(|ip| address_type_of(ip) == Some(address_type))
        .filter_map(|ip| canonical_ip(ip))
        .collect();
    let spec = pod.spec.as_ref();
    let node_name = spec
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    let hostname = if should_set_hostname(pod, service) {
        spec.and_then(|s| s.hostname.clone())
    } else {
        None
    };
    let mut endpoint = Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        node_name,
        zone: zone.filter(|z| !z.is_empty()).map(String::from),
        hostname,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    apply_hints(hints, &mut endpoint);
    endpoint
}

/// What the cache knows about a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeLookup {
    /// The Node is not in the cache.
    Missing,
    /// The Node exists, with its `topology.kubernetes.io/zone` label if set.
    Found(Option<String>),
}

/// Endpoints of one port set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortGroup {
    /// The resolved ports (order as in the Service).
    pub ports: Vec<EndpointPort>,
    /// The endpoints.
    pub endpoints: EndpointSet,
}

/// Desired endpoints of a Service for one address type, grouped by port set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredEndpoints {
    /// Groups by [`PortMapKey`].
    pub groups: BTreeMap<PortMapKey, PortGroup>,
    /// Pods left out because their Node is missing: `(pod, node)`.
    pub missing_nodes: Vec<(String, String)>,
}

impl DesiredEndpoints {
    /// Total number of desired endpoints.
    pub fn len(&self) -> usize {
        self.groups.values().map(|g| g.endpoints.len()).sum()
    }
}

/// Computes the desired endpoints of `service` for `address_type` from the Pods matching its
/// selector (upstream `reconcileByAddressType`, first half). Pods on a Node missing from
/// the cache are skipped (and reported) unless `publishNotReadyAddresses` is set.
pub fn desired_endpoints<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
    nodes: &dyn Fn(&str) -> NodeLookup,
    address_type: &str,
) -> DesiredEndpoints {
    let hints = HintPolicy::for_service(service);
    let mut out = DesiredEndpoints::default();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        let key = PortMapKey::new(&ports);
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        let zone = match nodes(node_name) {
            NodeLookup::Found(zone) => zone,
            NodeLookup::Missing => {
                if !publish_not_ready(service) {
                    out.missing_nodes.push((
                        pod.metadata.name.clone().unwrap_or_default(),
                        node_name.to_string(),
                    ));
                    continue;
                }
                None
            }
        };
        let endpoint = pod_to_endpoint(pod, zone.as_deref(), service, address_type, hints);
        let group = out.groups.entry(key).or_insert_with(|| PortGroup {
            ports,
            endpoints: EndpointSet::new(),
        });
        if !endpoint.addresses.is_empty() {
            insert_endpoint(&mut group.endpoints, endpoint);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::{
        PodCondition, PodIP, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    /// A running, ready pod with one IP per given address on `node`.
    pub(crate) fn pod(name: &str, ips: &[&str], ready: bool, node: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: ips.first().map(|s| s.to_string()),
                pod_ips: Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    /// A ClusterIP Service `web` selecting `app=web`, port 80 → 8080.
    pub(crate) fn service() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                cluster_ip: Some("10.96.0.10".into()),
                ip_families: Some(vec!["IPv4".into()]),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080),
                    ),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn zone_a(_: &str) -> NodeLookup {
        NodeLookup::Found(Some("zone-a".into()))
    }

    fn conditions(e: &Endpoint) -> (bool, bool, bool) {
        let c = e.conditions.clone().unwrap();
        (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
    }

    #[test]
    fn pods_without_ips_or_terminal_are_skipped() {
        let mut no_ip = pod("a", &[], true, "n1");
        no_ip.status.as_mut().unwrap().pod_ip = None;
        let mut done = pod("b", &["10.0.0.2"], true, "n1");
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let mut failed = pod("c", &["10.0.0.3"], true, "n1");
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        let ok = pod("d", &["10.0.0.4"], true, "n1");
        let d = desired_endpoints(&service(), [&no_ip, &done, &failed, &ok], &zone_a, "IPv4");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn endpoint_conditions_follow_upstream_pod_to_endpoint() {
        let svc = service();
        let mut pnr = service();
        pnr.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let ready = pod("r", &["10.0.0.1"], true, "n1");
        let unready = pod("u", &["10.0.0.2"], false, "n1");
        let mut terminating = pod("t", &["10.0.0.3"], true, "n1");
        terminating.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        let cases = [
            ("ready pod", &svc, &ready, (true, true, false)),
            ("unready pod", &svc, &unready, (false, false, false)),
            (
                "terminating ready pod is serving, not ready",
                &svc,
                &terminating,
                (false, true, true),
            ),
            (
                "publishNotReadyAddresses forces ready",
                &pnr,
                &unready,
                (true, false, false),
            ),
            (
                "publishNotReadyAddresses forces ready when terminating",
                &pnr,
                &terminating,
                (true, true, true),
            ),
        ];
        for (why, s, p, want) in cases {
            let e = pod_to_endpoint(p, Some("zone-a"), s, "IPv4", HintPolicy::None);
            assert_eq!(conditions(&e), want, "{why}");
        }
    }

    #[test]
    fn endpoint_carries_node_zone_and_target_ref() {
        let e = pod_to_endpoint(
            &pod("p", &["10.0.0.1"], true, "node-1"),
            Some("zone-b"),
            &service(),
            "IPv4",
            HintPolicy::None,
        );
        assert_eq!(e.node_name.as_deref(), Some("node-1"));
        assert_eq!(e.zone.as_deref(), Some("zone-b"));
        let r = e.target_ref.unwrap();
        assert_eq!(
            (
                r.kind.as_deref(),
                r.name.as_deref(),
                r.namespace.as_deref(),
                r.uid.as_deref()
            ),
            (Some("Pod"), Some("p"), Some("default"), Some("uid-p"))
        );
        assert!(e.hostname.is_none());
    }

    #[test]
    fn hostname_set_only_when_subdomain_matches_service() {
        let mut p = pod("p", &["10.0.0.1"], true, "n1");
        p.spec.as_mut().unwrap().hostname = Some("db-0".into());
        p.spec.as_mut().unwrap().subdomain = Some("web".into());
        let e = pod_to_endpoint(&p, None, &service(), "IPv4", HintPolicy::None);
        assert_eq!(e.hostname.as_deref(), Some("db-0"));
        p.spec.as_mut().unwrap().subdomain = Some("other".into());
        let e = pod_to_endpoint(&p, None, &service(), "IPv4", HintPolicy::None);
        assert!(e.hostname.is_none());
    }

    #[test]
    fn dual_stack_pod_splits_addresses_by_type() {
        let p = pod("p", &["10.0.0.1", "fd00::1"], true, "n1");
        let v4 = pod_to_endpoint(&p, None, &service(), "IPv4", HintPolicy::None);
        let v6 = pod_to_endpoint(&p, None, &service(), "IPv6", HintPolicy::None);
        assert_eq!(v4.addresses, vec!["10.0.0.1"]);
        assert_eq!(v6.addresses, vec!["fd00::1"]);
    }

    #[test]
    fn address_types_follow_ip_families() {
        let mut s = service();
        assert_eq!(address_types_for_service(&s), vec!["IPv4"]);
        s.spec.as_mut().unwrap().ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
        assert_eq!(address_types_for_service(&s), vec!["IPv4", "IPv6"]);
        s.spec.as_mut().unwrap().ip_families = None;
        s.spec.as_mut().unwrap().cluster_ip = Some("fd00::10".into());
        assert_eq!(address_types_for_service(&s), vec!["IPv6"]);
        s.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        assert_eq!(address_types_for_service(&s), vec!["IPv4", "IPv6"]);
    }

    #[test]
    fn missing_node_skips_pod_unless_publish_not_ready() {
        let p = pod("p", &["10.0.0.1"], true, "gone");
        let missing = |_: &str| NodeLookup::Missing;
        let d = desired_endpoints(&service(), [&p], &missing, "IPv4");
        assert_eq!(d.len(), 0);
        assert_eq!(d.missing_nodes, vec![("p".to_string(), "gone".to_string())]);
        let mut pnr = service();
        pnr.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let d = desired_endpoints(&pnr, [&p], &missing, "IPv4");
        assert_eq!(d.len(), 1);
        assert!(d.missing_nodes.is_empty());
    }

    #[test]
    fn equality_ignores_target_ref_resource_version_but_not_conditions() {
        let a = pod_to_endpoint(
            &pod("p", &["10.0.0.1"], true, "n1"),
            None,
            &service(),
            "IPv4",
            HintPolicy::None,
        );
        let mut b = a.clone();
        b.target_ref.as_mut().unwrap().resource_version = Some("42".into());
        assert!(endpoints_equal_beyond_key(&a, &b));
        b.conditions.as_mut().unwrap().ready = Some(false);
        assert!(!endpoints_equal_beyond_key(&a, &b));
        assert_eq!(EndpointKey::of(&a), EndpointKey::of(&b));
    }
}
