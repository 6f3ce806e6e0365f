//! The pure plan of the LoadBalancer IPAM controller: from the pools, the Namespaces' labels
//! and the Services, every served Service's `status.loadBalancer.ingress`, every pool's
//! status, and the Events. No API call; the controller applies the result.
//!
//! Order makes the plan deterministic: pools oldest first (then by name), Services oldest
//! first (then by namespace and name). Addresses Services already hold are kept first (for
//! every Service, before any new allocation), so a Service never loses its address to a
//! newer one; new addresses are then handed out lowest free first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use svcplane_api::{LoadBalancerIPPool, LoadBalancerIPPoolStatus, LOAD_BALANCER_IPS_ANNOTATION};

use super::pools::{self, ActivePool, Pools};
use super::service_view::{self as view, family_name, ClassConfig};
use crate::reconciler::PlannedEvent;
use crate::recorder::object_ref;

/// `ipMode` of the addresses we assign: traffic is delivered with the VIP as destination
/// (KEP-1860; `VIP` is also the default when the field is unset).
pub const IP_MODE_VIP: &str = "VIP";

/// Everything the plan reads.
pub struct PlanInput<'a> {
    /// Which Services are ours.
    pub config: &'a ClassConfig,
    /// All pools.
    pub pools: &'a [Arc<LoadBalancerIPPool>],
    /// Labels of every Namespace by name (a missing Namespace has no labels).
    pub namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// All Services.
    pub services: &'a [Arc<Service>],
    /// `lastTransitionTime` of conditions that change now.
    pub now: Time,
}

/// A Service whose `status.loadBalancer.ingress` must change.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusWrite {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID (for the stale-cache overlay and Events).
    pub uid: Option<String>,
    /// The resourceVersion the plan read: the write is conditional on it.
    pub resource_version: Option<String>,
    /// The whole new list (empty clears it).
    pub ingress: Vec<LoadBalancerIngress>,
    /// Addresses newly handed out by this write (`svcplane_lb_ipam_allocations_total`).
    pub allocated: usize,
}

/// A pool's new status.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolReport {
    /// The pool's name.
    pub name: String,
    /// The status it should have.
    pub status: LoadBalancerIPPoolStatus,
    /// Whether that differs from the stored status.
    pub changed: bool,
}

/// What the plan decided.
#[derive(Debug, Default)]
pub struct IpamPlan {
    /// Services whose ingress changes.
    pub services: Vec<StatusWrite>,
    /// Every pool, in plan order.
    pub pools: Vec<PoolReport>,
    /// Events on Services (the controller records each once while it stays planned).
    pub events: Vec<PlannedEvent>,
}

/// Who holds an address: sharing needs the same key on both sides and no common port.
#[derive(Debug, Clone)]
struct Holder {
    key: Option<String>,
    ports: Vec<(String, i32)>,
}

/// MetalLB's sharing rule: an address is shared only between Services carrying the same
/// `allow-shared-ip` key whose `(protocol, port)` pairs do not clash.
fn compatible(holders: &[Holder], key: Option<&str>, ports: &[(String, i32)]) -> bool {
    if holders.is_empty() {
        return true;
    }
    let Some(key) = key else {
        return false;
    };
    holders
        .iter()
        .all(|h| h.key.as_deref() == Some(key) && !h.ports.iter().any(|p| ports.contains(p)))
}

/// One served Service during planning.
struct Entry<'a> {
    svc: &'a Service,
    ns_labels: &'a BTreeMap<String, String>,
    families: Vec<bool>,
    requested: view::Requested,
    holder: Holder,
    addrs: BTreeMap<bool, IpAddr>,
    allocated: usize,
}

impl Entry<'_> {
    fn selected_by(&self, pools: &[&LoadBalancerIPPool], pool: &ActivePool) -> bool {
        let labels = self.svc.metadata.labels.clone().unwrap_or_default();
        pools[pool.index].spec.selects(&labels, self.ns_labels)
    }

    fn event(&self, warning: bool, reason: &'static str, message: String) -> PlannedEvent {
        PlannedEvent {
            object: object_ref(
                "Service",
                self.svc.metadata.namespace.as_deref().unwrap_or_default(),
                self.svc.metadata.name.as_deref().unwrap_or_default(),
                self.svc.metadata.uid.clone(),
            ),
            warning,
            reason,
            message,
        }
    }
}

/// The plan (see the module documentation).
pub fn plan(input: &PlanInput<'_>) -> IpamPlan {
    let mut pool_refs: Vec<&LoadBalancerIPPool> = input.pools.iter().map(|p| p.as_ref()).collect();
    pool_refs.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
    });
    let mut prepared = pools::prepare(&pool_refs);
    let mut services: Vec<&Service> = input.services.iter().map(|s| s.as_ref()).collect();
    services.sort_by(|a, b| {
        let key = |s: &&Service| {
            (
                s.metadata.creation_timestamp.clone(),
                s.metadata.namespace.clone(),
                s.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let no_labels = BTreeMap::new();
    let mut entries: Vec<Entry<'_>> = services
        .iter()
        .filter(|svc| view::served(svc, input.config))
        .map(|svc| Entry {
            svc,
            ns_labels: svc
                .metadata
                .namespace
                .as_ref()
                .and_then(|ns| input.namespaces.get(ns))
                .unwrap_or(&no_labels),
            families: view::families(svc),
            requested: view::requested(svc),
            holder: Holder {
                key: view::share_key(svc).map(String::from),
                ports: view::ports(svc),
            },
            addrs: BTreeMap::new(),
            allocated: 0,
        })
        .collect();
    let mut holders: BTreeMap<IpAddr, Vec<Holder>> = BTreeMap::new();
    let mut events = Vec::new();

    // 1. Keep what Services hold, oldest Service first.
    for entry in &mut entries {
        for ip in view::held(entry.svc) {
            let v4 = ip.is_ipv4();
            if !entry.families.contains(&v4) || entry.addrs.contains_key(&v4) {
                continue;
            }
            if entry.requested.by_family.get(&v4).is_some_and(|r| *r != ip) {
                continue; // the Service asks for another address now
            }
            let here = holders.get(&ip).map(Vec::as_slice).unwrap_or_default();
            if !compatible(here, entry.holder.key.as_deref(), &entry.holder.ports) {
                continue; // held twice (e.g. written by two instances): the older keeps it
            }
            let Some(pool) = find_pool(&mut prepared, &pool_refs, entry, ip, true) else {
                continue; // no longer in a valid pool that selects the Service
            };
            mark(pool, ip);
            holders.entry(ip).or_default().push(entry.holder.clone());
            entry.addrs.insert(v4, ip);
        }
    }

    // 2. Hand out what is missing.
    for entry in &mut entries {
        if entry.requested.deprecated_field {
            events.push(entry.event(
                true,
                "DeprecatedField",
                format!(
                    "spec.loadBalancerIP is deprecated (Kubernetes v1.24); use the annotation \
                     {LOAD_BALANCER_IPS_ANNOTATION}"
                ),
            ));
        }
        for problem in &entry.requested.problems {
            events.push(entry.event(true, "InvalidRequest", problem.clone()));
        }
        for requested_family in entry.requested.by_family.keys() {
            if !entry.families.contains(requested_family) {
                events.push(entry.event(
                    true,
                    "AllocationFailed",
                    format!(
                        "an {} address is requested but the Service's ipFamilies do not \
                         include {}",
                        family_name(*requested_family),
                        family_name(*requested_family)
                    ),
                ));
            }
        }
        for v4 in entry.families.clone() {
            if entry.addrs.contains_key(&v4) {
                continue;
            }
            let got = match entry.requested.by_family.get(&v4).copied() {
                Some(ip) => allocate_requested(&mut prepared, &pool_refs, &holders, entry, ip),
                None => allocate_any(&mut prepared, &pool_refs, &holders, entry, v4),
            };
            match got {
                Ok((ip, pool_name)) => {
                    holders.entry(ip).or_default().push(entry.holder.clone());
                    entry.addrs.insert(v4, ip);
                    entry.allocated += 1;
                    events.push(entry.event(
                        false,
                        "IPAllocated",
                        format!("Assigned IP {ip} from LoadBalancerIPPool {pool_name}"),
                    ));
                }
                Err(message) => events.push(entry.event(true, "AllocationFailed", message)),
            }
        }
    }

    // 3. Status writes: served Services get their addresses in ipFamilies order; other
    // Services that are no longer `type: LoadBalancer` lose addresses of our pools.
    let mut writes = Vec::new();
    for entry in &entries {
        let ips: Vec<IpAddr> = entry
            .families
            .iter()
            .filter_map(|v4| entry.addrs.get(v4).copied())
            .collect();
        if let Some(write) = status_write(entry.svc, &ips, entry.allocated) {
            writes.push(write);
        }
    }
    for svc in &services {
        if view::is_load_balancer(svc) {
            continue; // ours were handled above; other classes are never written
        }
        let held = view::held(svc);
        let keep: Vec<IpAddr> = held
            .iter()
            .copied()
            .filter(|ip| !prepared.iter().flatten().any(|p| p.locate(*ip).is_some()))
            .collect();
        if keep.len() != held.len() {
            if let Some(write) = status_write(svc, &keep, 0) {
                writes.push(write);
            }
        }
    }

    let pools = pool_refs
        .iter()
        .zip(&prepared)
        .map(|(pool, state)| {
            let status = pools::status(pool, state, &input.now);
            let changed = pool.status.as_ref() != Some(&status);
            PoolReport {
                name: pool.metadata.name.clone().unwrap_or_default(),
                status,
                changed,
            }
        })
        .collect();
    IpamPlan {
        services: writes,
        pools,
        events,
    }
}

/// The valid pool that selects the Service and hands out `ip` (disabled pools only when
/// `keep`: a disabled pool keeps what Services hold).
fn find_pool<'p>(
    prepared: &'p mut Pools,
    pool_refs: &[&LoadBalancerIPPool],
    entry: &Entry<'_>,
    ip: IpAddr,
    keep: bool,
) -> Option<&'p mut ActivePool> {
    prepared.iter_mut().flatten().find(|p| {
        (keep || !p.disabled) && p.locate(ip).is_some() && entry.selected_by(pool_refs, p)
    })
}

/// Marks `ip` held in its pool (already marked when shared).
fn mark(pool: &mut ActivePool, ip: IpAddr) {
    if let Some((block, offset)) = pool.locate(ip) {
        let _ = pool.blocks[block].bitmap.allocate(offset);
    }
}

fn pool_name(pool_refs: &[&LoadBalancerIPPool], pool: &ActivePool) -> String {
    pool_refs[pool.index]
        .metadata
        .name
        .clone()
        .unwrap_or_default()
}

/// A requested address: in an enabled valid pool that selects the Service, and free or
/// shareable.
fn allocate_requested(
    prepared: &mut Pools,
    pool_refs: &[&LoadBalancerIPPool],
    holders: &BTreeMap<IpAddr, Vec<Holder>>,
    entry: &Entry<'_>,
    ip: IpAddr,
) -> Result<(IpAddr, String), String> {
    let Some(pool) = find_pool(prepared, pool_refs, entry, ip, false) else {
        return Err(format!(
            "requested address {ip} is in no enabled, valid LoadBalancerIPPool that selects \
             this Service"
        ));
    };
    let here = holders.get(&ip).map(Vec::as_slice).unwrap_or_default();
    if !compatible(here, entry.holder.key.as_deref(), &entry.holder.ports) {
        return Err(format!(
            "requested address {ip} is in use by another Service (sharing needs the same \
             svcplane.io/allow-shared-ip value on both and no common protocol and port)"
        ));
    }
    mark(pool, ip);
    Ok((ip, pool_name(pool_refs, pool)))
}

/// Any address of family `v4`: one shared with Services of the same key when allowed, else
/// the lowest free address of the first enabled pool that selects the Service.
fn allocate_any(
    prepared: &mut Pools,
    pool_refs: &[&LoadBalancerIPPool],
    holders: &BTreeMap<IpAddr, Vec<Holder>>,
    entry: &Entry<'_>,
    v4: bool,
) -> Result<(IpAddr, String), String> {
    if entry.holder.key.is_some() {
        let shared = holders.iter().find(|(ip, here)| {
            ip.is_ipv4() == v4 && compatible(here, entry.holder.key.as_deref(), &entry.holder.ports)
        });
        if let Some((ip, _)) = shared {
            if let Some(pool) = find_pool(prepared, pool_refs, entry, *ip, false) {
                return Ok((*ip, pool_name(pool_refs, pool)));
            }
        }
    }
    let mut candidates = Vec::new();
    for pool in prepared.iter_mut().flatten() {
        if pool.disabled || !pool.has_family(v4) || !entry.selected_by(pool_refs, pool) {
            continue;
        }
        if let Some(ip) = pool.allocate(v4) {
            return Ok((ip, pool_name(pool_refs, pool)));
        }
        candidates.push(pool.index);
    }
    let family = family_name(v4);
    if candidates.is_empty() {
        return Err(format!(
            "no enabled, valid LoadBalancerIPPool with {family} addresses selects this Service"
        ));
    }
    let mut names = Vec::new();
    for pool in prepared.iter_mut().flatten() {
        if candidates.contains(&pool.index) {
            *pool.exhausted.entry(v4).or_default() += 1;
            names.push(pool_name(pool_refs, pool));
        }
    }
    Err(format!(
        "no free {family} address in LoadBalancerIPPool {}",
        names.join(", ")
    ))
}

/// The write that gives `svc` exactly `ips` (existing entries for these addresses keep their
/// other fields, e.g. `ports`), or `None` when it has them already.
fn status_write(svc: &Service, ips: &[IpAddr], allocated: usize) -> Option<StatusWrite> {
    let current: &[LoadBalancerIngress] = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default();
    let ingress: Vec<LoadBalancerIngress> = ips
        .iter()
        .map(|ip| {
            let text = ip.to_string();
            let mut entry = current
                .iter()
                .find(|i| i.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) == Some(*ip))
                .cloned()
                .unwrap_or_default();
            entry.ip = Some(text);
            entry.hostname = None;
            entry.ip_mode = Some(IP_MODE_VIP.into());
            entry
        })
        .collect();
    if ingress.as_slice() == current {
        return None;
    }
    Some(StatusWrite {
        namespace: svc.metadata.namespace.clone().unwrap_or_default(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone(),
        resource_version: svc.metadata.resource_version.clone(),
        ingress,
        allocated,
    })
}

#[cfg(test)]
mod tests;
