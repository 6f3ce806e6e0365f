//! The repair audit of upstream's ClusterIP and NodePort repair controllers
//! (`pkg/registry/core/service/ipallocator/controller/repair.go`,
//! `pkg/registry/core/service/portallocator/controller/repair.go`).
//!
//! Each pass rebuilds the bitmaps from all stored Services and compares them with the live
//! allocators: values two Services claim (`ClusterIPAlreadyAllocated`,
//! `PortAlreadyAllocated`), values outside the configured ranges (`ClusterIPOutOfRange`,
//! `PortOutOfRange`), unparsable or unconfigured-family IPs (`ClusterIPNotValid`), values a
//! Service holds that the allocator lost (`ClusterIPNotAllocated`, `PortNotAllocated`:
//! re-allocated), and values allocated with no owner (leaks: released after
//! [`REPAIRS_BEFORE_LEAK_CLEANUP`] consecutive passes, as upstream). Problems on a Service
//! become Warning Events on it and every problem counts in
//! `svcplane_allocator_errors_total{kind}`.
//!
//! The audit ([`audit`]) is a pure function over the Services and the allocators; the pass
//! ([`ServiceAllocations::repair_pass`]) applies it under the allocator lock and returns the
//! findings, which the repair task (`crate::repair_task`) records as Events through the write
//! pipeline.

use std::collections::HashMap;
use std::time::Duration;

use svcplane_allocators::{Error, IpFamily};

use super::holdings::{holdings, Held, Holdings};
use super::pools::Pools;
use super::service_json::decode_service;
use super::ServiceAllocations;
use crate::store::{ResourceKey, Store};

/// Consecutive passes that must find a value leaked before it is released (upstream
/// `numRepairsBeforeLeakCleanup`), so in-flight deletes are not mistaken for leaks.
pub const REPAIRS_BEFORE_LEAK_CLEANUP: u32 = 3;

/// How often the background audit runs (kube-apiserver repairs every 3 minutes).
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(180);

/// `reportingController` of ClusterIP events (upstream's recorder name).
pub const IP_REPAIR_CONTROLLER: &str = "ipallocator-repair-controller";
/// `reportingController` of node port events.
pub const PORT_REPAIR_CONTROLLER: &str = "portallocator-repair-controller";

/// A stored Service as the audit sees it.
#[derive(Debug, Clone)]
pub struct StoredService {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// What it holds.
    pub holdings: Holdings,
}

/// One problem on one Service, reported as a Warning Event on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Service namespace.
    pub namespace: String,
    /// Service name.
    pub name: String,
    /// Service uid.
    pub uid: String,
    /// Service resourceVersion.
    pub resource_version: String,
    /// Event reason, as upstream (`ClusterIPAlreadyAllocated`, `PortOutOfRange`, ...).
    pub reason: &'static str,
    /// Event action (`ClusterIPAllocation` or `PortAllocation`).
    pub action: &'static str,
    /// Event message, as upstream words it.
    pub message: String,
    /// Metric label of `svcplane_allocator_errors_total`: `Duplicate`, `OutOfRange`,
    /// `NotAllocated` or `Invalid`.
    pub kind: &'static str,
    /// The recording controller.
    pub controller: &'static str,
}

/// What a pure audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Problems on Services.
    pub findings: Vec<Finding>,
    /// Values a Service holds that the allocators do not have (to allocate).
    pub not_allocated: Vec<Held>,
    /// Values allocated that no Service holds and no in-flight write owns.
    pub leaked: Vec<Held>,
}

/// The result of one repair pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Problems on Services (each also written as an Event).
    pub findings: Vec<Finding>,
    /// Values re-allocated because a Service holds them.
    pub repaired: Vec<Held>,
    /// Leaked values flagged in this pass and kept for now.
    pub leaks_flagged: Vec<Held>,
    /// Leaked values released in this pass.
    pub leaks_released: Vec<Held>,
}

/// Every stored Service with its holdings, in store order (namespace, name).
pub fn stored_services(store: &Store) -> Vec<StoredService> {
    let key = ResourceKey {
        group: String::new(),
        plural: "services".into(),
    };
    let (_, items, _) = store.list(&key, None, |_| true, None, None);
    items
        .iter()
        .filter_map(|obj| {
            let value = obj.value();
            match decode_service(&value) {
                Ok(svc) => Some(StoredService {
                    namespace: obj.namespace.clone(),
                    name: obj.name.clone(),
                    uid: obj.uid.clone(),
                    resource_version: obj.rv.to_string(),
                    holdings: holdings(&svc),
                }),
                Err(err) => {
                    tracing::warn!(namespace = %obj.namespace, name = %obj.name, err = %err.message,
                        "stored Service does not decode; skipped by the repair audit");
                    None
                }
            }
        })
        .collect()
}

fn finding(
    svc: &StoredService,
    value: Held,
    reason: &'static str,
    kind: &'static str,
    message: String,
) -> Finding {
    let (action, controller) = match value {
        Held::ClusterIp(_) => ("ClusterIPAllocation", IP_REPAIR_CONTROLLER),
        Held::NodePort(_) => ("PortAllocation", PORT_REPAIR_CONTROLLER),
    };
    Finding {
        namespace: svc.namespace.clone(),
        name: svc.name.clone(),
        uid: svc.uid.clone(),
        resource_version: svc.resource_version.clone(),
        reason,
        action,
        message,
        kind,
        controller,
    }
}

/// Rebuilds the allocators from `services` and compares them with `live` (upstream
/// `runOnce`). Pure: `live` is not changed.
pub fn audit(live: &Pools, services: &[StoredService]) -> Audit {
    let mut rebuilt = live.empty_like();
    let mut out = Audit::default();
    for svc in services {
        for ip in &svc.holdings.invalid_cluster_ips {
            // Any ClusterIp value picks the ClusterIP action and controller.
            out.findings.push(finding(
                svc,
                Held::ClusterIp(std::net::Ipv4Addr::UNSPECIFIED.into()),
                "ClusterIPNotValid",
                "Invalid",
                format!("Cluster IP {ip} is not a valid IP; please recreate service"),
            ));
        }
        for value in svc.holdings.values() {
            let result = rebuilt.allocate(value);
            let problem = match (value, result) {
                (_, Ok(())) => {
                    if !live.contains(value) {
                        out.not_allocated.push(value);
                        Some(match value {
                            Held::ClusterIp(ip) => (
                                "ClusterIPNotAllocated",
                                "NotAllocated",
                                format!("Cluster IP [{}]:{ip} is not allocated; repairing", IpFamily::of(&ip)),
                            ),
                            Held::NodePort(p) => (
                                "PortNotAllocated",
                                "NotAllocated",
                                format!("Port {p} is not allocated; repairing"),
                            ),
                        })
                    } else {
                        None
                    }
                }
                (Held::ClusterIp(ip), Err(Error::AlreadyAllocated { .. })) => Some((
                    "ClusterIPAlreadyAllocated",
                    "Duplicate",
                    format!(
                        "Cluster IP [{}]:{ip} was assigned to multiple services; please recreate service",
                        IpFamily::of(&ip)
                    ),
                )),
                (Held::ClusterIp(ip), Err(_)) => {
                    let family = IpFamily::of(&ip);
                    Some(match live.ips.for_family(family) {
                        Some(alloc) => (
                            "ClusterIPOutOfRange",
                            "OutOfRange",
                            format!(
                                "Cluster IP [{family}]:{ip} is not within the service CIDR {}; please recreate service",
                                alloc.cidr()
                            ),
                        ),
                        None => (
                            "ClusterIPNotValid",
                            "Invalid",
                            format!(
                                "Cluster IP {ip}({family}) is of ip family that is no longer configured on cluster; please recreate service"
                            ),
                        ),
                    })
                }
                (Held::NodePort(p), Err(Error::AlreadyAllocated { .. })) => Some((
                    "PortAlreadyAllocated",
                    "Duplicate",
                    format!("Port {p} was assigned to multiple services; please recreate service"),
                )),
                (Held::NodePort(p), Err(_)) => Some((
                    "PortOutOfRange",
                    "OutOfRange",
                    format!(
                        "Port {p} is not within the port range {}; please recreate service",
                        live.ports.range()
                    ),
                )),
            };
            if let Some((reason, kind, message)) = problem {
                out.findings
                    .push(finding(svc, value, reason, kind, message));
            }
        }
    }
    out.leaked = live
        .allocated()
        .into_iter()
        .filter(|v| !rebuilt.contains(*v) && !live.is_in_flight(*v))
        .collect();
    out
}

impl ServiceAllocations {
    /// One repair pass without side effects outside the allocators: audits under the lock,
    /// re-allocates values Services hold, counts leaks and releases those found
    /// [`REPAIRS_BEFORE_LEAK_CLEANUP`] times in a row. Returns the findings; the repair task
    /// (`crate::repair_task`) records them as Events.
    pub fn repair_pass(&self, store: &Store) -> RepairReport {
        let mut pools = self.pools.lock();
        // Listed under the lock: no allocation or release can happen in between, so a value
        // a listed Service holds cannot look "not allocated" because of a racing delete.
        let services = stored_services(store);
        let found = audit(&pools, &services);
        let mut report = RepairReport {
            findings: found.findings,
            ..Default::default()
        };
        for v in found.not_allocated {
            if pools.allocate(v).is_ok() {
                report.repaired.push(v);
            }
        }
        let mut leaks = self.leaks.lock();
        let mut next: HashMap<Held, u32> = HashMap::new();
        for v in found.leaked {
            let count = leaks.get(&v).copied().unwrap_or(0) + 1;
            if count == 1 {
                self.metrics.count_error("Leak");
            }
            if count >= REPAIRS_BEFORE_LEAK_CLEANUP {
                pools.release(v);
                tracing::warn!(value = %v, "allocated value appears to have leaked: cleaning up");
                report.leaks_released.push(v);
            } else {
                tracing::warn!(value = %v, "allocated value may have leaked: flagging for later clean up");
                next.insert(v, count);
                report.leaks_flagged.push(v);
            }
        }
        *leaks = next;
        for f in &report.findings {
            self.metrics.count_error(f.kind);
            tracing::warn!(namespace = %f.namespace, name = %f.name, reason = f.reason, "{}", f.message);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use svcplane_allocators::{DualStackClusterIps, PortRange};

    use super::*;

    fn stored(name: &str, ips: &[&str], ports: &[i32]) -> StoredService {
        StoredService {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            resource_version: "1".into(),
            holdings: Holdings {
                cluster_ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
                invalid_cluster_ips: Vec::new(),
                node_ports: ports.iter().copied().collect::<BTreeSet<_>>(),
            },
        }
    }

    fn pools(values: &[Held]) -> Pools {
        let mut p = Pools::new(
            DualStackClusterIps::parse("10.0.0.0/24").unwrap(),
            PortRange::parse("30000-32767").unwrap(),
        );
        for v in values {
            p.allocate(*v).unwrap();
        }
        p
    }

    fn ip(s: &str) -> Held {
        Held::ClusterIp(s.parse().unwrap())
    }

    #[test]
    fn consistent_state_has_nothing_to_report() {
        let live = pools(&[ip("10.0.0.5"), Held::NodePort(30005)]);
        let a = audit(&live, &[stored("a", &["10.0.0.5"], &[30005])]);
        assert_eq!(a, Audit::default());
    }

    /// Rows: (upstream event reason, Services, live allocations, expected reasons in order,
    /// expected not-allocated values, expected leaks).
    #[test]
    fn audit_table() {
        type Row = (
            &'static str,
            Vec<StoredService>,
            Vec<Held>,
            Vec<(&'static str, &'static str)>,
            Vec<Held>,
            Vec<Held>,
        );
        let rows: Vec<Row> = vec![
            (
                "ClusterIPAlreadyAllocated: the second owner is reported",
                vec![
                    stored("a", &["10.0.0.5"], &[]),
                    stored("b", &["10.0.0.5"], &[]),
                ],
                vec![ip("10.0.0.5")],
                vec![("b", "ClusterIPAlreadyAllocated")],
                vec![],
                vec![],
            ),
            (
                "PortAlreadyAllocated",
                vec![stored("a", &[], &[30100]), stored("b", &[], &[30100])],
                vec![Held::NodePort(30100)],
                vec![("b", "PortAlreadyAllocated")],
                vec![],
                vec![],
            ),
            (
                "ClusterIPOutOfRange and PortOutOfRange",
                vec![stored("a", &["10.1.0.5"], &[40000])],
                vec![],
                vec![("a", "ClusterIPOutOfRange"), ("a", "PortOutOfRange")],
                vec![],
                vec![],
            ),
            (
                "ClusterIPNotValid: family not configured",
                vec![stored("a", &["fd00::5"], &[])],
                vec![],
                vec![("a", "ClusterIPNotValid")],
                vec![],
                vec![],
            ),
            (
                "ClusterIPNotAllocated and PortNotAllocated: repaired",
                vec![stored("a", &["10.0.0.6"], &[30006])],
                vec![],
                vec![("a", "ClusterIPNotAllocated"), ("a", "PortNotAllocated")],
                vec![ip("10.0.0.6"), Held::NodePort(30006)],
                vec![],
            ),
            (
                "leak: allocated, owned by no Service",
                vec![stored("a", &["10.0.0.5"], &[])],
                vec![ip("10.0.0.5"), ip("10.0.0.9"), Held::NodePort(31000)],
                vec![],
                vec![],
                vec![ip("10.0.0.9"), Held::NodePort(31000)],
            ),
        ];
        for (rule, services, live, reasons, not_allocated, leaked) in rows {
            let a = audit(&pools(&live), &services);
            let got: Vec<(&str, &str)> = a
                .findings
                .iter()
                .map(|f| (f.name.as_str(), f.reason))
                .collect();
            assert_eq!(got, reasons, "{rule}");
            assert_eq!(a.not_allocated, not_allocated, "{rule}");
            assert_eq!(a.leaked, leaked, "{rule}");
        }
    }

    #[test]
    fn in_flight_values_are_not_leaks() {
        let mut live = pools(&[ip("10.0.0.9")]);
        live.hold_in_flight([ip("10.0.0.9")]);
        assert!(audit(&live, &[]).leaked.is_empty());
        live.end_in_flight([ip("10.0.0.9")]);
        assert_eq!(audit(&live, &[]).leaked, vec![ip("10.0.0.9")]);
    }

    #[test]
    fn messages_are_worded_as_upstream() {
        let a = audit(
            &pools(&[ip("10.0.0.5"), Held::NodePort(30100)]),
            &[
                stored("a", &["10.0.0.5"], &[30100]),
                stored("b", &["10.0.0.5"], &[30100, 40000]),
            ],
        );
        let messages: Vec<&str> = a.findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "Cluster IP [IPv4]:10.0.0.5 was assigned to multiple services; please recreate service",
                "Port 30100 was assigned to multiple services; please recreate service",
                "Port 40000 is not within the port range 30000-32767; please recreate service",
            ]
        );
        assert_eq!(a.findings[1].controller, PORT_REPAIR_CONTROLLER);
        assert_eq!(a.findings[1].action, "PortAllocation");
    }
}
