//! What one Service's rows of the desired table ask of the kernel, in the kernel's terms:
//! IPVS virtual services with their destinations, and elements of the backend's nftables sets
//! (which also say which addresses the dummy link must hold). A translation only: the rows
//! already carry every decision (endpoints, scheduler, affinity, masquerade policy).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::nft_table::{
    hairpin_element, service_element, source_allowed_element, Element, SetId, SetKind, TableLayout,
};
use crate::ipvs::{self, SchedulerFlags, ServiceKey, VirtualService};
use crate::model::{
    Family, FrontendKind, Masquerade, Protocol, Scheduler, ServiceName, ServiceTable, VirtualServer,
};

/// One IPVS virtual service the table wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedService {
    /// The Service whose row it is.
    pub owner: ServiceName,
    /// Scheduler, persistence, flags.
    pub service: VirtualService,
    /// Destinations and their weights.
    pub destinations: BTreeMap<SocketAddr, u32>,
}

/// Everything one Service wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceWants {
    /// Its virtual services, by key.
    pub services: Vec<WantedService>,
    /// Its elements of the nftables sets; the `vips` ones are the addresses to bind.
    pub elements: BTreeSet<Element>,
}

/// The IPVS protocol of a Service port's protocol.
pub fn ipvs_protocol(protocol: Protocol) -> ipvs::Protocol {
    match protocol {
        Protocol::Tcp => ipvs::Protocol::Tcp,
        Protocol::Udp => ipvs::Protocol::Udp,
        Protocol::Sctp => ipvs::Protocol::Sctp,
    }
}

/// The IPVS virtual service for a row's scheduler and affinity. `mh` also hashes the source
/// port, as kube-proxy's `FlagSourceHash` (`proxier.go`); ClientIP affinity is persistence
/// with the affinity timeout and a host netmask, so each client address sticks on its own.
pub fn virtual_service(row: &VirtualServer) -> VirtualService {
    let key = ServiceKey::new(
        ipvs_protocol(row.key.protocol),
        row.key.address,
        row.key.port,
    );
    let mut service = VirtualService::new(key, ipvs::Scheduler::from_name(row.scheduler.as_str()));
    if row.scheduler == Scheduler::MaglevHashing {
        service.scheduler_flags = SchedulerFlags::MH_PORT;
    }
    if let Some(timeout) = row.affinity_timeout {
        service = service.persistent(timeout);
    }
    service
}

/// What `rows` want. Addresses in `node_addresses` (held by other interfaces of this node) are
/// not bound to the dummy link, as kube-proxy does not bind an address "that exists on another
/// interface"; NodePort rows are on node addresses and never bound.
pub fn service_wants(
    rows: &ServiceTable,
    layout: &TableLayout,
    node_addresses: &HashSet<IpAddr>,
) -> ServiceWants {
    let mut wants = ServiceWants::default();
    for row in &rows.virtual_servers {
        let service = virtual_service(row);
        let destinations = row
            .destinations
            .iter()
            .map(|d| (SocketAddr::new(d.address, d.port), d.weight))
            .collect();
        wants
            .elements
            .extend(row_elements(row, layout, node_addresses));
        wants.services.push(WantedService {
            owner: rows.service.clone(),
            service,
            destinations,
        });
    }
    wants.services.sort_by_key(|w| w.service.key);
    wants
}

fn row_elements(
    row: &VirtualServer,
    layout: &TableLayout,
    node_addresses: &HashSet<IpAddr>,
) -> Vec<Element> {
    let family = Family::of(row.key.address);
    let set = |kind| SetId { kind, family };
    let key = service_element(row.key.address, row.key.protocol, row.key.port);
    let mut elements = vec![(set(SetKind::Services), key.clone())];
    if row.kind != FrontendKind::NodePort && !node_addresses.contains(&row.key.address) {
        elements.push((set(SetKind::Vips), row.key.address.to_string()));
    }
    match row.masquerade {
        Masquerade::Always => elements.push((set(SetKind::Masquerade), key.clone())),
        Masquerade::OffClusterSources if layout.masquerades_off_cluster(family) => {
            elements.push((set(SetKind::MasqueradeOffCluster), key.clone()))
        }
        Masquerade::OffClusterSources | Masquerade::Never => {}
    }
    for dest in row.destinations.iter().filter(|d| d.local) {
        elements.push((set(SetKind::Hairpin), hairpin_element(dest.address)));
    }
    if row.kind == FrontendKind::LoadBalancer && !row.source_ranges.is_empty() {
        elements.push((set(SetKind::SourceFiltered), key));
        for range in outermost(&row.source_ranges) {
            elements.push((
                set(SetKind::SourceAllowed),
                source_allowed_element(row.key.address, row.key.protocol, row.key.port, range),
            ));
        }
    }
    elements
}

/// The ranges not inside another of the list: two CIDRs nest or are disjoint, so what is left
/// is disjoint (an interval set refuses overlapping elements).
fn outermost(ranges: &[IpNet]) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = ranges.iter().map(IpNet::trunc).collect();
    nets.sort_by_key(|n| (n.prefix_len(), n.network()));
    nets.dedup();
    let mut kept: Vec<IpNet> = Vec::new();
    for net in nets {
        if !kept.iter().any(|outer| outer.contains(&net)) {
            kept.push(net);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Destination, EndpointSet, ServicePortName, VirtualKey};

    fn row(kind: FrontendKind, address: &str, masquerade: Masquerade) -> VirtualServer {
        let service = ServiceName::new("default", "web");
        VirtualServer {
            key: VirtualKey {
                address: address.parse().unwrap(),
                protocol: Protocol::Tcp,
                port: 80,
            },
            kind,
            service_port: Arc::new(ServicePortName {
                service,
                port: "http".into(),
                protocol: Protocol::Tcp,
            }),
            scheduler: Scheduler::RoundRobin,
            affinity_timeout: None,
            endpoint_set: EndpointSet::Cluster,
            destinations: Arc::from([
                Destination {
                    address: "10.244.1.2".parse().unwrap(),
                    port: 8080,
                    weight: 1,
                    local: true,
                    ready: true,
                },
                Destination {
                    address: "10.244.2.2".parse().unwrap(),
                    port: 8080,
                    weight: 1,
                    local: false,
                    ready: true,
                },
            ]),
            source_ranges: Arc::from([]),
            masquerade,
        }
    }

    fn table(rows: Vec<VirtualServer>) -> ServiceTable {
        ServiceTable {
            service: ServiceName::new("default", "web"),
            virtual_servers: rows,
            health_check: None,
        }
    }

    fn names(wants: &ServiceWants) -> Vec<String> {
        wants
            .elements
            .iter()
            .map(|(set, e)| format!("{set} {e}"))
            .collect()
    }

    #[test]
    fn a_cluster_ip_row_is_one_virtual_service_a_bound_address_and_hairpin_for_local_endpoints() {
        let layout = TableLayout::new(&[]);
        let wants = service_wants(
            &table(vec![row(
                FrontendKind::ClusterIP,
                "10.96.0.10",
                Masquerade::OffClusterSources,
            )]),
            &layout,
            &HashSet::new(),
        );
        assert_eq!(wants.services.len(), 1);
        let wanted = &wants.services[0];
        assert_eq!(wanted.service.scheduler, ipvs::Scheduler::RoundRobin);
        assert_eq!(wanted.service.persistence_timeout, None);
        assert_eq!(
            wanted
                .destinations
                .keys()
                .map(|d| d.to_string())
                .collect::<Vec<_>>(),
            vec!["10.244.1.2:8080", "10.244.2.2:8080"]
        );
        // No --cluster-cidr: off-cluster masquerade has no rule, so no element.
        assert_eq!(
            names(&wants),
            vec![
                "services-v4 10.96.0.10 . tcp . 80",
                "vips-v4 10.96.0.10",
                "hairpin-v4 10.244.1.2 . 10.244.1.2",
            ]
        );
        let with_cidr = TableLayout::new(&["10.244.0.0/16".parse().unwrap()]);
        let wants = service_wants(
            &table(vec![row(
                FrontendKind::ClusterIP,
                "10.96.0.10",
                Masquerade::OffClusterSources,
            )]),
            &with_cidr,
            &HashSet::new(),
        );
        assert!(names(&wants).contains(&"masquerade-off-cluster-v4 10.96.0.10 . tcp . 80".into()));
    }

    /// kube-proxy binds ClusterIPs, external IPs and load-balancer IPs to kube-ipvs0, never node
    /// addresses (NodePorts, or an external IP that is a node address).
    #[test]
    fn node_ports_and_node_addresses_are_not_bound() {
        let layout = TableLayout::new(&[]);
        let node: HashSet<IpAddr> = ["192.168.0.10".parse().unwrap()].into();
        let wants = service_wants(
            &table(vec![
                row(FrontendKind::NodePort, "192.168.0.10", Masquerade::Always),
                row(FrontendKind::ExternalIP, "192.168.0.10", Masquerade::Always),
            ]),
            &layout,
            &node,
        );
        assert!(
            !names(&wants).iter().any(|n| n.starts_with("vips-")),
            "{:?}",
            names(&wants)
        );
        assert!(names(&wants).contains(&"masquerade-v4 192.168.0.10 . tcp . 80".into()));
    }

    #[test]
    fn affinity_is_persistence_and_mh_hashes_the_source_port() {
        let mut r = row(FrontendKind::ClusterIP, "fd00::10", Masquerade::Never);
        r.affinity_timeout = Some(10800);
        r.scheduler = Scheduler::MaglevHashing;
        let service = virtual_service(&r);
        assert_eq!(service.persistence_timeout, Some(10800));
        assert_eq!(service.netmask, 128, "each client address on its own");
        assert_eq!(service.scheduler, ipvs::Scheduler::MaglevHashing);
        assert_eq!(service.scheduler_flags, SchedulerFlags::MH_PORT);
    }

    #[test]
    fn load_balancer_source_ranges_keep_only_outermost_ranges() {
        let mut r = row(
            FrontendKind::LoadBalancer,
            "203.0.113.7",
            Masquerade::Always,
        );
        r.source_ranges = Arc::from([
            "10.0.0.0/8".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
            "192.168.1.77/24".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
        let wants = service_wants(&table(vec![r]), &TableLayout::new(&[]), &HashSet::new());
        let n = names(&wants);
        assert!(
            n.contains(&"source-filtered-v4 203.0.113.7 . tcp . 80".into()),
            "{n:?}"
        );
        let allowed: Vec<&String> = n
            .iter()
            .filter(|e| e.starts_with("source-allowed"))
            .collect();
        assert_eq!(
            allowed,
            vec![
                "source-allowed-v4 203.0.113.7 . tcp . 80 . 10.0.0.0/8",
                "source-allowed-v4 203.0.113.7 . tcp . 80 . 192.168.1.0/24",
            ]
        );
    }
}
