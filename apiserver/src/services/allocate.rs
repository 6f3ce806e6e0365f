//! ClusterIP and node port allocation for Service create and update, following upstream
//! `pkg/registry/core/service/storage/alloc.go` (`allocateCreate`, `allocateUpdate`).
//!
//! Runs after defaulting and `initIPFamilyFields` (so `ipFamilies` is set) and before
//! validation. Beyond upstream, a last step makes sure every value the Service will hold is
//! either kept from the old object or reserved by this request, whatever validation later
//! accepts, so the allocator state always covers the stored Services.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Service, ServicePort};
use svcplane_allocators::IpFamily;
use svcplane_rules::ip::parse_ip_sloppy;
use svcplane_rules::{needs_hc_node_port, needs_node_port, spec_type};

use super::errors;
use super::holdings::{gets_cluster_ips, holdings, Held, Holdings};
use super::txn::Txn;
use crate::error::ApiError;

/// Allocates what a new Service needs (upstream `allocateCreate` after `initIPFamilyFields`).
pub fn create(txn: &mut Txn<'_>, svc: &mut Service, name: &str) -> Result<(), ApiError> {
    let none = Holdings::default();
    cluster_ips(txn, svc, name, &none)?;
    if needs_node_port(spec_type(svc)) {
        init_node_ports(txn, svc, name)?;
    }
    health_check_node_port(txn, svc, &none)?;
    cover_holdings(txn, svc, name, &none)?;
    Ok(())
}

/// Allocates what an updated Service needs and returns what the update gives up on commit
/// (upstream `allocateUpdate`: `txnUpdateClusterIPs`, `txnUpdateNodePorts`).
pub fn update(
    txn: &mut Txn<'_>,
    svc: &mut Service,
    old: &Service,
    name: &str,
) -> Result<Vec<Held>, ApiError> {
    let old_holdings = holdings(old);
    cluster_ips(txn, svc, name, &old_holdings)?;
    if needs_node_port(spec_type(svc)) {
        update_node_ports(txn, svc, old, name)?;
    }
    health_check_node_port(txn, svc, &old_holdings)?;
    cover_holdings(txn, svc, name, &old_holdings)?;
    let new_holdings = holdings(svc);
    Ok(old_holdings
        .values()
        .filter(|v| !new_holdings.contains(*v))
        .collect())
}

fn family(name: &str) -> IpFamily {
    if name == "IPv6" {
        IpFamily::IPv6
    } else {
        IpFamily::IPv4
    }
}

/// Upstream `allocClusterIPs` (create, and update from ExternalName) and the upgrade case of
/// `updateClusterIPs`: one IP per entry of `ipFamilies`, user-chosen where `clusterIPs` names
/// one, dynamic where it does not. IPs the old object already holds are kept as they are.
fn cluster_ips(
    txn: &mut Txn<'_>,
    svc: &mut Service,
    name: &str,
    old: &Holdings,
) -> Result<(), ApiError> {
    if !gets_cluster_ips(svc) {
        return Ok(());
    }
    let spec = svc.spec.get_or_insert_with(Default::default);
    let families = spec.ip_families.clone().unwrap_or_default();
    let mut ips = spec.cluster_ips.clone().unwrap_or_default();
    // Upstream appends "" markers for families without an IP before allocating, so error
    // messages show them.
    while ips.len() < families.len() {
        ips.push(String::new());
    }
    let mut result = ips.clone();
    for (i, fam) in families.iter().enumerate() {
        if ips[i].is_empty() {
            let ip = txn
                .next_cluster_ip(family(fam))
                .map_err(|e| errors::internal(format!("failed to allocate a serviceIP: {e}")))?;
            result[i] = ip.to_string();
            continue;
        }
        let Some(ip) = parse_ip_sloppy(&ips[i]) else {
            // Validation of clusterIPs ran in initIPFamilyFields; an unparsable value cannot
            // get here, but report it the way the allocator would.
            let err = svcplane_allocators::Error::NotInRange {
                resource: svcplane_allocators::Resource::Ip,
                value: ips[i].clone(),
                range: fam.clone(),
            };
            return Err(errors::cluster_ip_refused(name, &ips, &ips[i], &err));
        };
        let value = Held::ClusterIp(ip);
        if old.contains(value) || txn.took(value) {
            continue;
        }
        txn.cluster_ip(ip)
            .map_err(|e| errors::cluster_ip_refused(name, &ips, &ips[i], &e))?;
    }
    if !result.is_empty() {
        spec.cluster_ip = Some(result[0].clone());
        spec.cluster_ips = Some(result);
    }
    Ok(())
}

/// Upstream `shouldAllocateNodePorts`: NodePort always, LoadBalancer unless
/// `allocateLoadBalancerNodePorts: false`.
fn should_allocate_node_ports(svc: &Service) -> bool {
    match spec_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc
            .spec
            .as_ref()
            .and_then(|s| s.allocate_load_balancer_node_ports)
            .unwrap_or(true),
        _ => false,
    }
}

fn node_port_of(p: &ServicePort) -> i32 {
    p.node_port.unwrap_or(0)
}

/// Upstream `initNodePorts`: ports with the same `port` number (a TCP and a UDP port) share
/// one node port; a user-chosen node port on any of them is used for all.
fn init_node_ports(txn: &mut Txn<'_>, svc: &mut Service, name: &str) -> Result<(), ApiError> {
    let should = should_allocate_node_ports(svc);
    let Some(ports) = svc.spec.as_mut().and_then(|s| s.ports.as_mut()) else {
        return Ok(());
    };
    let mut by_port: HashMap<i32, i32> = HashMap::new();
    for i in 0..ports.len() {
        let current = node_port_of(&ports[i]);
        if current == 0 && !should {
            continue;
        }
        let number = ports[i].port;
        let shared = by_port.get(&number).copied().unwrap_or(0);
        if shared == 0 {
            let requested = ports
                .iter()
                .find(|p| p.port == number && node_port_of(p) != 0)
                .map(node_port_of)
                .unwrap_or(0);
            let np = if requested != 0 {
                txn.node_port(requested)
                    .map_err(|e| errors::node_port_refused(name, i, requested, &e))?;
                requested
            } else {
                txn.next_node_port()
                    .map_err(|e| errors::internal(format!("failed to allocate a nodePort: {e}")))?
            };
            ports[i].node_port = Some(np);
            by_port.insert(number, np);
        } else if current != shared {
            if current == 0 {
                ports[i].node_port = Some(shared);
            } else {
                txn.node_port(current)
                    .map_err(|e| errors::node_port_refused(name, i, current, &e))?;
            }
        }
    }
    Ok(())
}

/// Upstream `updateNodePorts`: new user-chosen node ports are reserved, missing ones are
/// allocated; old ones the update drops are released on commit (by the caller's diff).
fn update_node_ports(
    txn: &mut Txn<'_>,
    svc: &mut Service,
    old: &Service,
    name: &str,
) -> Result<(), ApiError> {
    let should = should_allocate_node_ports(svc);
    let old_numbers: HashSet<i32> = old
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(node_port_of)
        .filter(|p| *p != 0)
        .collect();
    let Some(ports) = svc.spec.as_mut().and_then(|s| s.ports.as_mut()) else {
        return Ok(());
    };
    let mut reserved: HashSet<i32> = HashSet::new();
    let mut seen: Vec<(String, i32)> = Vec::new();
    for (i, port) in ports.iter_mut().enumerate() {
        let current = node_port_of(port);
        if current == 0 && !should {
            continue;
        }
        let np = if current != 0 {
            if !old_numbers.contains(&current) && !reserved.contains(&current) {
                txn.node_port(current)
                    .map_err(|e| errors::node_port_refused(name, i, current, &e))?;
                reserved.insert(current);
            }
            current
        } else {
            let np = txn
                .next_node_port()
                .map_err(|e| errors::internal(format!("failed to allocate a nodePort: {e}")))?;
            port.node_port = Some(np);
            np
        };
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
        if seen.contains(&(protocol.clone(), np)) {
            return Err(errors::internal(format!(
                "duplicate nodePort: {{{protocol} {np}}}"
            )));
        }
        seen.push((protocol, np));
    }
    Ok(())
}

/// Upstream `NeedsHealthCheck`.
fn needs_hc(svc: &Service) -> bool {
    let etp = svc
        .spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        .unwrap_or("");
    needs_hc_node_port(spec_type(svc), etp)
}

/// Upstream `allocHealthCheckNodePort` / `updateHealthCheckNodePort`: a LoadBalancer with
/// `externalTrafficPolicy: Local` gets a health-check node port (the requested one, or any).
/// Release of a no longer needed one happens through the caller's diff.
fn health_check_node_port(
    txn: &mut Txn<'_>,
    svc: &mut Service,
    old: &Holdings,
) -> Result<(), ApiError> {
    if !needs_hc(svc) {
        return Ok(());
    }
    let spec = svc.spec.get_or_insert_with(Default::default);
    let hc = spec.health_check_node_port.unwrap_or(0);
    if hc == 0 {
        let port = txn.next_node_port().map_err(|e| {
            errors::internal(format!(
                "failed to allocate a HealthCheck NodePort {hc}: {e}"
            ))
        })?;
        spec.health_check_node_port = Some(port);
        return Ok(());
    }
    let value = Held::NodePort(hc);
    if old.contains(value) {
        return Ok(());
    }
    if txn.took(value) {
        // Also one of this Service's node ports: upstream's `Allocate` fails the same way.
        return Err(errors::internal(format!(
            "failed to allocate requested HealthCheck NodePort {hc}: provided port is already allocated"
        )));
    }
    txn.node_port(hc).map_err(|e| {
        errors::internal(format!(
            "failed to allocate requested HealthCheck NodePort {hc}: {e}"
        ))
    })
}

/// Beyond upstream: every value the Service will hold must be kept from the old object or
/// reserved by this request (upstream relies on validation rejecting the other cases, e.g. a
/// changed `clusterIP` or a `nodePort` on a ClusterIP Service; here the allocator state stays
/// consistent even before validation runs).
fn cover_holdings(
    txn: &mut Txn<'_>,
    svc: &Service,
    name: &str,
    old: &Holdings,
) -> Result<(), ApiError> {
    let wanted = holdings(svc);
    for value in wanted.values() {
        if old.contains(value) || txn.took(value) {
            continue;
        }
        txn.value(value).map_err(|e| match value {
            Held::ClusterIp(ip) => {
                let ips = svc
                    .spec
                    .as_ref()
                    .and_then(|s| s.cluster_ips.clone())
                    .unwrap_or_default();
                errors::cluster_ip_refused(name, &ips, &ip.to_string(), &e)
            }
            Held::NodePort(port) => {
                let index = svc
                    .spec
                    .as_ref()
                    .and_then(|s| s.ports.as_ref())
                    .and_then(|ps| ps.iter().position(|p| node_port_of(p) == port));
                match index {
                    Some(i) => errors::node_port_refused(name, i, port, &e),
                    None => errors::internal(format!(
                        "failed to allocate requested HealthCheck NodePort {port}: {e}"
                    )),
                }
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::{Held, ServiceAllocations};

    fn alloc(ranges: &str) -> ServiceAllocations {
        ServiceAllocations::new(ranges, "30000-32767").expect("valid ranges")
    }

    fn svc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"}, "spec": spec})
    }

    fn ip(s: &str) -> Held {
        Held::ClusterIp(s.parse().unwrap())
    }

    /// Create rows: (upstream rule, spec, expected ClusterIP count, expected node port count,
    /// health-check node port expected).
    #[test]
    fn create_allocates_per_type_and_policy() {
        let rows: &[(&str, Value, usize, usize, bool)] = &[
            (
                "allocClusterIPs: ClusterIP gets one IP",
                json!({"ports": [{"port": 80}]}),
                1,
                0,
                false,
            ),
            (
                "allocClusterIPs: headless gets none",
                json!({"clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 80}]}),
                0,
                0,
                false,
            ),
            (
                "allocClusterIPs: ExternalName gets none",
                json!({"type": "ExternalName", "externalName": "x.example"}),
                0,
                0,
                false,
            ),
            (
                "initIPFamilyFields: RequireDualStack gets both families",
                json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}),
                2,
                0,
                false,
            ),
            (
                "initNodePorts: one per port",
                json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}),
                1,
                2,
                false,
            ),
            (
                "initNodePorts: TCP and UDP of one port share",
                json!({"type": "NodePort", "ports": [{"name": "a", "port": 53, "protocol": "UDP"}, {"name": "b", "port": 53}]}),
                1,
                1,
                false,
            ),
            (
                "shouldAllocateNodePorts: LB with allocateLoadBalancerNodePorts false",
                json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
                1,
                0,
                false,
            ),
            (
                "allocHealthCheckNodePort: LB Local",
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
                1,
                1,
                true,
            ),
        ];
        for (rule, spec, ips, ports, hc) in rows {
            let a = alloc("10.0.0.0/24,fd00::/120");
            let mut obj = svc(spec.clone());
            let r = a.allocate_create(&mut obj, false).expect(rule);
            let held = r.allocated().to_vec();
            r.commit();
            let got_ips = held
                .iter()
                .filter(|h| matches!(h, Held::ClusterIp(_)))
                .count();
            assert_eq!(got_ips, *ips, "{rule}: {held:?}");
            let hc_port = obj["spec"]["healthCheckNodePort"].as_i64().unwrap_or(0);
            assert_eq!(hc_port != 0, *hc, "{rule}: {obj}");
            let node_ports = held.len() - got_ips - usize::from(*hc);
            assert_eq!(node_ports, *ports, "{rule}: {held:?}");
            assert_eq!(a.allocated().len(), held.len(), "{rule}");
        }
    }

    #[test]
    fn dry_run_reports_upstream_placeholders_and_reserves_nothing() {
        let a = alloc("10.0.0.0/24");
        let mut obj = svc(
            json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}),
        );
        let r = a.allocate_create(&mut obj, true).unwrap();
        assert!(r.allocated().is_empty());
        r.commit();
        assert_eq!(obj["spec"]["clusterIP"], "10.0.0.0");
        assert_eq!(obj["spec"]["ports"][0]["nodePort"], 32769);
        assert_eq!(obj["spec"]["ports"][1]["nodePort"], 32770);
        assert!(a.allocated().is_empty());
    }

    /// Update rows: (upstream rule, old spec, new spec, values freed on commit, values taken).
    #[test]
    fn update_releases_on_commit_and_allocates_what_is_new() {
        let a = alloc("10.0.0.0/24,fd00::/120");
        let mut old = svc(
            json!({"type": "NodePort", "clusterIP": "10.0.0.20", "ports": [{"name": "a", "port": 80, "nodePort": 30080}]}),
        );
        a.allocate_create(&mut old, false).unwrap().commit();
        let rows: &[(&str, Value, Vec<Held>, usize)] = &[
            (
                "txnUpdateNodePorts: NodePort to ClusterIP frees node ports",
                json!({"type": "ClusterIP"}),
                vec![Held::NodePort(30080)],
                0,
            ),
            (
                "updateClusterIPs case B: to ExternalName frees the IPs",
                json!({"type": "ExternalName", "externalName": "x.example"}),
                vec![ip("10.0.0.20"), Held::NodePort(30080)],
                0,
            ),
            (
                "updateClusterIPs case C: upgrade allocates the secondary",
                json!({"ipFamilyPolicy": "RequireDualStack"}),
                vec![],
                1,
            ),
            (
                "updateNodePorts: a changed node port frees the old one",
                json!({"ports": [{"name": "a", "port": 80, "nodePort": 30081}]}),
                vec![Held::NodePort(30080)],
                1,
            ),
            (
                "patchAllocatedValues: an omitted node port is kept",
                json!({"ports": [{"name": "a", "port": 80}]}),
                vec![],
                0,
            ),
        ];
        for (rule, patch, freed, taken) in rows {
            let mut new = old.clone();
            json_patch::merge(&mut new, &json!({"spec": patch}));
            let r = a.allocate_update(&mut new, &old, false).expect(rule);
            assert_eq!(r.release_on_commit(), freed.as_slice(), "{rule}");
            assert_eq!(r.allocated().len(), *taken, "{rule}: {:?}", r.allocated());
            // Rolled back: the old Service keeps everything.
            drop(r);
            assert_eq!(a.allocated().len(), 2, "{rule}");
        }
        // Downgrade after an upgrade frees the secondary only on commit.
        let mut dual = old.clone();
        json_patch::merge(
            &mut dual,
            &json!({"spec": {"ipFamilyPolicy": "RequireDualStack"}}),
        );
        a.allocate_update(&mut dual, &old, false).unwrap().commit();
        let v6 = dual["spec"]["clusterIPs"][1].as_str().unwrap().to_string();
        let mut single = dual.clone();
        json_patch::merge(
            &mut single,
            &json!({"spec": {"ipFamilyPolicy": "SingleStack"}}),
        );
        let r = a.allocate_update(&mut single, &dual, false).unwrap();
        assert_eq!(r.release_on_commit(), &[ip(&v6)]);
        assert!(a.is_allocated(ip(&v6)), "kept until commit");
        r.commit();
        assert!(!a.is_allocated(ip(&v6)));
        assert_eq!(single["spec"]["clusterIPs"], json!(["10.0.0.20"]));
    }
}
