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
use svcplane_webhook::ip::parse_ip_sloppy;
use svcplane_webhook::service_model::{needs_hc_node_port, needs_node_port, spec_type};

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
