//! Property tests of the proxy model over random Services (types, policies, families, ports,
//! affinity, external and load-balancer IPs) and random EndpointSlices (conditions, nodes,
//! hints, duplicates across slices, unlabelled and FQDN slices):
//!
//! - the table never holds an endpoint the rules exclude (not ready while a ready one exists,
//!   remote under a Local policy, hinted elsewhere while topology applies, wrong family, wrong
//!   port name or protocol), and every destination is an endpoint of the Service;
//! - the table equals an oracle written here from the rules (kube-proxy's `CategorizeEndpoints`,
//!   the slice merge, and the owner of a contested address);
//! - feeding the same final objects in any order, with deletes, re-adds, stale versions, label
//!   moves and re-list `retain` in between, ends in the table a fresh model computes;
//! - every `commit` reports exactly the Services whose rows changed.

mod fixtures;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};

use fixtures::{ep, node, slice, svc, Slice, Svc, NODE};
use proptest::prelude::*;
use svcplane_dataplane::model::{
    render_text, DesiredTable, EndpointSet, ProxyConfig, ProxyModel, ServiceName,
};

const ZONES: [&str; 3] = ["", "zone-a", "zone-b"];
const NODES: [&str; 3] = [NODE, "node-b", "node-c"];
const PORT_NAMES: [&str; 3] = ["http", "dns", "metrics"];
const EXTERNAL_IPS: [&str; 4] = ["198.51.100.1", "198.51.100.2", "2001:db8::a", "2001:db8::b"];
const INGRESS_IPS: [&str; 4] = [
    "203.0.113.10",
    "203.0.113.11",
    "2001:db8::10",
    "2001:db8::11",
];
const NODE_V4: [&str; 2] = ["192.168.0.1", "203.0.113.1"];
const NODE_V6: &str = "fd00::1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ClusterIP,
    NodePort,
    LoadBalancer,
    ExternalName,
    Headless,
}

#[derive(Debug, Clone)]
struct GenPort {
    name: &'static str,
    udp: bool,
}

#[derive(Debug, Clone)]
struct GenService {
    kind: Kind,
    v4: bool,
    v6: bool,
    ports: Vec<GenPort>,
    itp_local: bool,
    etp_local: bool,
    affinity: Option<Option<i32>>,
    external_ips: Vec<usize>,
    ingress: Vec<(usize, Option<&'static str>)>,
    health_check: bool,
}

#[derive(Debug, Clone)]
struct GenEndpoint {
    address: u8,
    ready: Option<bool>,
    serving: Option<bool>,
    terminating: Option<bool>,
    node: Option<usize>,
    zone_hints: Option<Vec<usize>>,
    node_hints: Option<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct GenSlicePort {
    name: &'static str,
    udp: bool,
    number: Option<i32>,
}

#[derive(Debug, Clone)]
struct GenSlice {
    service: usize,
    suffix: u8,
    v6: bool,
    fqdn: bool,
    labelled: bool,
    ports: Vec<GenSlicePort>,
    endpoints: Vec<GenEndpoint>,
}

#[derive(Debug, Clone)]
struct World {
    services: Vec<GenService>,
    slices: Vec<GenSlice>,
    zone: usize,
    nodeport_addresses: usize,
}

fn service_name(i: usize) -> String {
    format!("svc-{i}")
}

fn cluster_ip(i: usize, v6: bool) -> String {
    if v6 {
        format!("fd00:96::{}", i + 1)
    } else {
        format!("10.96.0.{}", i + 1)
    }
}

fn endpoint_address(address: u8, v6: bool) -> String {
    if v6 {
        format!("fd00:1::{address}")
    } else {
        format!("10.1.0.{address}")
    }
}

fn node_port(service: usize, port: usize) -> i32 {
    30000 + (service as i32) * 10 + port as i32
}

fn nodeport_flag(i: usize) -> &'static str {
    ["", "primary", "192.168.0.0/16", "fd00::/16"][i]
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::ClusterIP),
        3 => Just(Kind::NodePort),
        3 => Just(Kind::LoadBalancer),
        1 => Just(Kind::ExternalName),
        1 => Just(Kind::Headless),
    ]
}

fn arb_ports() -> impl Strategy<Value = Vec<GenPort>> {
    (
        0usize..=3,
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 3),
    )
        .prop_map(|(count, unnamed, udp)| {
            (0..count)
                .map(|i| GenPort {
                    name: if count == 1 && unnamed {
                        ""
                    } else {
                        PORT_NAMES[i]
                    },
                    udp: udp[i],
                })
                .collect()
        })
}

fn arb_service() -> impl Strategy<Value = GenService> {
    (
        arb_kind(),
        prop_oneof![Just((true, false)), Just((false, true)), Just((true, true))],
        arb_ports(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(None)), Just(Some(Some(60)))],
        prop::collection::vec(0usize..4, 0..3),
        prop::collection::vec(
            (
                0usize..4,
                prop_oneof![Just(None), Just(Some("VIP")), Just(Some("Proxy"))],
            ),
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(
                kind,
                (v4, v6),
                ports,
                itp_local,
                etp_local,
                affinity,
                external_ips,
                ingress,
                health_check,
            )| {
                GenService {
                    kind,
                    v4,
                    v6,
                    ports,
                    itp_local,
                    etp_local,
                    affinity,
                    external_ips,
                    ingress,
                    health_check,
                }
            },
        )
}

fn arb_hints(options: usize) -> impl Strategy<Value = Option<Vec<usize>>> {
    prop_oneof![
        2 => Just(None),
        3 => prop::collection::vec(0..options, 0..3).prop_map(Some),
    ]
}

fn arb_endpoint() -> impl Strategy<Value = GenEndpoint> {
    (
        1u8..=6,
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(0usize..3),
        arb_hints(ZONES.len()),
        arb_hints(NODES.len()),
    )
        .prop_map(
            |(address, ready, serving, terminating, node, zone_hints, node_hints)| GenEndpoint {
                address,
                ready,
                serving,
                terminating,
                node,
                zone_hints,
                node_hints,
            },
        )
}

fn arb_slice_port() -> impl Strategy<Value = GenSlicePort> {
    (
        prop::sample::select(vec!["", "http", "dns", "metrics"]),
        any::<bool>(),
        prop_oneof![8 => (8000i32..8003).prop_map(Some), 1 => Just(None), 1 => Just(Some(0))],
    )
        .prop_map(|(name, udp, number)| GenSlicePort { name, udp, number })
}

fn arb_slice(services: usize) -> impl Strategy<Value = GenSlice> {
    (
        0..services,
        0u8..4,
        any::<bool>(),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.9),
        prop::collection::vec(arb_slice_port(), 0..3),
        prop::collection::vec(arb_endpoint(), 0..5),
    )
        .prop_map(
            |(service, suffix, v6, fqdn, labelled, ports, endpoints)| GenSlice {
                service,
                suffix,
                v6,
                fqdn,
                labelled,
                ports,
                endpoints,
            },
        )
}

fn arb_world() -> impl Strategy<Value = World> {
    prop::collection::vec(arb_service(), 1..5).prop_flat_map(|services| {
        let n = services.len();
        (
            Just(services),
            prop::collection::vec(arb_slice(n), 0..7),
            0usize..ZONES.len(),
            0usize..4,
        )
            .prop_map(|(services, slices, zone, nodeport_addresses)| {
                // One version per slice name: later duplicates of a name are dropped.
                let mut seen = HashSet::new();
                let slices = slices
                    .into_iter()
                    .filter(|s| seen.insert((s.service, s.suffix)))
                    .collect();
                World {
                    services,
                    slices,
                    zone,
                    nodeport_addresses,
                }
            })
    })
}

// ---------------------------------------------------------------------------------------------
// Generated values → API objects.

fn service_object(i: usize, s: &GenService) -> Svc {
    let mut ips = Vec::new();
    if s.v4 {
        ips.push(cluster_ip(i, false));
    }
    if s.v6 {
        ips.push(cluster_ip(i, true));
    }
    let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    let mut o = svc(&service_name(i)).cluster_ips(&ip_refs);
    o = match s.kind {
        Kind::ClusterIP => o,
        Kind::NodePort => o.type_("NodePort"),
        Kind::LoadBalancer => o.type_("LoadBalancer"),
        Kind::ExternalName => o
            .type_("ExternalName")
            .set("/spec/externalName", serde_json::json!("x.example.com")),
        Kind::Headless => o.headless(),
    };
    for (p, port) in s.ports.iter().enumerate() {
        let protocol = if port.udp { "UDP" } else { "TCP" };
        let number = 80 + p as i32;
        o = match s.kind {
            Kind::NodePort | Kind::LoadBalancer => {
                o.node_port(port.name, protocol, number, node_port(i, p))
            }
            _ => o.port(port.name, protocol, number),
        };
    }
    if s.itp_local {
        o = o.itp_local();
    }
    if s.etp_local {
        o = o.etp_local();
    }
    if let Some(timeout) = s.affinity {
        o = o.client_ip_affinity(timeout);
    }
    if !s.external_ips.is_empty() {
        let list: Vec<&str> = s.external_ips.iter().map(|x| EXTERNAL_IPS[*x]).collect();
        o = o.external_ips(&list);
    }
    for (ip, mode) in &s.ingress {
        o = o.ingress(INGRESS_IPS[*ip], *mode);
    }
    if s.health_check {
        o = o.health_check_node_port(32000 + i as i32);
    }
    o
}

fn slice_name(s: &GenSlice) -> String {
    format!("{}-{}", service_name(s.service), s.suffix)
}

fn slice_object(s: &GenSlice) -> Slice {
    let mut o = slice(&service_name(s.service), &slice_name(s));
    if s.fqdn {
        o = o.address_type("FQDN");
    } else if s.v6 {
        o = o.ipv6();
    }
    if !s.labelled {
        o = o.without_label("kubernetes.io/service-name");
    }
    for p in &s.ports {
        let mut port =
            serde_json::json!({"name": p.name, "protocol": if p.udp { "UDP" } else { "TCP" }});
        if let Some(n) = p.number {
            port["port"] = serde_json::json!(n);
        }
        o = o.raw_port(port);
    }
    for e in &s.endpoints {
        let mut x =
            ep(&endpoint_address(e.address, s.v6)).conditions(e.ready, e.serving, e.terminating);
        x = match e.node {
            Some(n) => x.node(NODES[n]),
            None => x.no_node(),
        };
        if let Some(z) = &e.zone_hints {
            let names: Vec<&str> = z.iter().map(|i| ZONES[*i]).collect();
            x = x.for_zones(&names);
        }
        if let Some(n) = &e.node_hints {
            let names: Vec<&str> = n.iter().map(|i| NODES[*i]).collect();
            x = x.for_nodes(&names);
        }
        o = o.ep(x);
    }
    o
}

fn node_object(zone: usize) -> fixtures::NodeObj {
    let n = node(NODE)
        .internal(NODE_V4[0])
        .internal(NODE_V6)
        .external(NODE_V4[1]);
    if ZONES[zone].is_empty() {
        n
    } else {
        n.zone(ZONES[zone])
    }
}

fn config_for(world: &World) -> ProxyConfig {
    ProxyConfig {
        node_name: NODE.into(),
        nodeport_addresses: nodeport_flag(world.nodeport_addresses)
            .parse()
            .expect("valid flag"),
        ..ProxyConfig::default()
    }
}

fn fresh_model(world: &World) -> ProxyModel {
    let mut m = ProxyModel::new(config_for(world));
    m.set_node(&node_object(world.zone).build());
    for (i, s) in world.services.iter().enumerate() {
        m.upsert_service(&service_object(i, s).build());
    }
    for s in &world.slices {
        m.upsert_slice(&slice_object(s).build());
    }
    m.commit();
    m
}

// ---------------------------------------------------------------------------------------------
// The oracle: the rules, written from the documentation of kube-proxy's behaviour.

/// A slice port of the oracle: (name, UDP?, IPv6?).
type PortKey = (&'static str, bool, bool);

#[derive(Debug, Clone)]
struct Candidate {
    address: IpAddr,
    port: u16,
    ready: bool,
    serving: bool,
    terminating: bool,
    local: bool,
    zone_hints: Option<BTreeSet<&'static str>>,
    node_hints: Option<BTreeSet<&'static str>>,
}

fn hints(list: &Option<Vec<usize>>, names: &[&'static str]) -> Option<BTreeSet<&'static str>> {
    list.as_ref()
        .filter(|l| !l.is_empty())
        .map(|l| l.iter().map(|i| names[*i]).collect())
}

/// Merged endpoints of Service `service` per (port name, UDP?, IPv6?): slices in name order,
/// endpoints in slice order; a later copy of an address:port replaces the earlier one unless it
/// is terminating.
fn merged(world: &World, service: usize) -> BTreeMap<PortKey, Vec<Candidate>> {
    let mut slices: Vec<&GenSlice> = world
        .slices
        .iter()
        .filter(|s| s.service == service && s.labelled && !s.fqdn)
        .collect();
    slices.sort_by_key(|s| slice_name(s));
    let mut out: BTreeMap<PortKey, BTreeMap<(IpAddr, u16), Candidate>> = BTreeMap::new();
    for s in slices {
        for p in &s.ports {
            let Some(number) = p.number.filter(|n| *n > 0) else {
                continue;
            };
            let set = out.entry((p.name, p.udp, s.v6)).or_default();
            for e in &s.endpoints {
                let c = Candidate {
                    address: endpoint_address(e.address, s.v6).parse().expect("ip"),
                    port: number as u16,
                    ready: e.ready.unwrap_or(true),
                    serving: e.serving.unwrap_or(true),
                    terminating: e.terminating.unwrap_or(false),
                    local: e.node == Some(0),
                    zone_hints: hints(&e.zone_hints, &ZONES),
                    node_hints: hints(&e.node_hints, &NODES),
                };
                let key = (c.address, c.port);
                if !set.contains_key(&key) || !c.terminating {
                    set.insert(key, c);
                }
            }
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_values().collect()))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    None,
    Node,
    Zone,
}

fn topology(candidates: &[Candidate], zone: &str) -> Topology {
    let ready: Vec<&Candidate> = candidates.iter().filter(|c| c.ready).collect();
    if ready.is_empty() {
        return Topology::None;
    }
    let all_node = ready.iter().all(|c| c.node_hints.is_some());
    let for_node = ready
        .iter()
        .any(|c| c.node_hints.as_ref().is_some_and(|h| h.contains(NODE)));
    let all_zone = ready.iter().all(|c| c.zone_hints.is_some());
    let for_zone = ready
        .iter()
        .any(|c| c.zone_hints.as_ref().is_some_and(|h| h.contains(zone)));
    if all_node && for_node {
        Topology::Node
    } else if all_zone && for_zone {
        Topology::Zone
    } else {
        Topology::None
    }
}

/// (cluster set, local set) as `address:port` strings.
fn sets(candidates: &[Candidate], zone: &str) -> (Vec<String>, Vec<String>) {
    let show = |c: &&Candidate| SocketAddr::new(c.address, c.port).to_string();
    let mode = topology(candidates, zone);
    let mut cluster: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.ready)
        .filter(|c| match mode {
            Topology::None => true,
            Topology::Node => c.node_hints.as_ref().is_some_and(|h| h.contains(NODE)),
            Topology::Zone => c.zone_hints.as_ref().is_some_and(|h| h.contains(zone)),
        })
        .collect();
    if cluster.is_empty() {
        cluster = candidates
            .iter()
            .filter(|c| c.serving && c.terminating)
            .collect();
    }
    let mut local: Vec<&Candidate> = candidates.iter().filter(|c| c.local && c.ready).collect();
    if local.is_empty() {
        local = candidates
            .iter()
            .filter(|c| c.local && c.serving && c.terminating)
            .collect();
    }
    (
        cluster.iter().map(show).collect(),
        local.iter().map(show).collect(),
    )
}

fn node_ips(flag: usize, v6: bool) -> Vec<&'static str> {
    match (nodeport_flag(flag), v6) {
        ("", false) | ("fd00::/16", false) => NODE_V4.to_vec(),
        ("primary", false) | ("192.168.0.0/16", false) => vec![NODE_V4[0]],
        (_, true) => vec![NODE_V6],
        _ => unreachable!(),
    }
}

fn is_v6(ip: &str) -> bool {
    ip.contains(':')
}

/// Expected table: key → (owning Service, destinations), and health checks.
#[allow(clippy::type_complexity)]
fn oracle(
    world: &World,
) -> (
    BTreeMap<String, (String, Vec<String>)>,
    BTreeMap<String, usize>,
) {
    let zone = ZONES[world.zone];
    // key → claimers (service name → destinations)
    let mut claims: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut health = BTreeMap::new();
    for (i, s) in world.services.iter().enumerate() {
        if matches!(s.kind, Kind::ExternalName | Kind::Headless) {
            continue;
        }
        let name = service_name(i);
        let endpoints = merged(world, i);
        let has_external_ips = !s.external_ips.is_empty();
        let etp_local = s.etp_local
            && (matches!(s.kind, Kind::NodePort | Kind::LoadBalancer) || has_external_ips);
        let mut own: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut local_ready_max = 0;
        for v6 in [false, true] {
            if !(if v6 { s.v6 } else { s.v4 }) {
                continue;
            }
            let local_ready: BTreeSet<IpAddr> = endpoints
                .iter()
                .filter(|((_, _, fam), _)| *fam == v6)
                .flat_map(|(_, list)| list.iter())
                .filter(|c| c.ready && c.local)
                .map(|c| c.address)
                .collect();
            local_ready_max = local_ready_max.max(local_ready.len());
            let external: Vec<&str> = s
                .external_ips
                .iter()
                .map(|x| EXTERNAL_IPS[*x])
                .filter(|ip| is_v6(ip) == v6)
                .collect();
            let lb: Vec<&str> = if s.kind == Kind::LoadBalancer {
                s.ingress
                    .iter()
                    .filter(|(_, mode)| mode.is_none_or(|m| m == "VIP"))
                    .map(|(x, _)| INGRESS_IPS[*x])
                    .filter(|ip| is_v6(ip) == v6)
                    .collect()
            } else {
                vec![]
            };
            for (p, port) in s.ports.iter().enumerate() {
                let protocol = if port.udp { "UDP" } else { "TCP" };
                let number = 80 + p as u16;
                let candidates = endpoints
                    .get(&(port.name, port.udp, v6))
                    .cloned()
                    .unwrap_or_default();
                let (cluster, local) = sets(&candidates, zone);
                let internal = if s.itp_local { &local } else { &cluster };
                let ext = if etp_local { &local } else { &cluster };
                let key = |ip: &str, n: u16| {
                    format!("{protocol} {}", SocketAddr::new(ip.parse().expect("ip"), n))
                };
                own.insert(key(&cluster_ip(i, v6), number), internal.clone());
                for ip in external.iter().chain(lb.iter()) {
                    own.entry(key(ip, number)).or_insert_with(|| ext.clone());
                }
                if matches!(s.kind, Kind::NodePort | Kind::LoadBalancer) {
                    for ip in node_ips(world.nodeport_addresses, v6) {
                        own.insert(key(ip, node_port(i, p) as u16), ext.clone());
                    }
                }
            }
        }
        if s.kind == Kind::LoadBalancer && etp_local && s.health_check {
            health.insert(name.clone(), local_ready_max);
        }
        for (k, v) in own {
            claims.entry(k).or_default().insert(name.clone(), v);
        }
    }
    let table = claims
        .into_iter()
        .map(|(k, mut by_service)| {
            let (owner, dests) = by_service.pop_first().expect("a claimer");
            (k, (owner, dests))
        })
        .collect();
    (table, health)
}

fn model_view(table: &DesiredTable) -> BTreeMap<String, (String, Vec<String>)> {
    table
        .virtual_servers()
        .map(|vs| {
            (
                vs.key.to_string(),
                (
                    vs.service_port.service.name.clone(),
                    fixtures::destinations(vs),
                ),
            )
        })
        .collect()
}

fn model_health(table: &DesiredTable) -> BTreeMap<String, usize> {
    table
        .services()
        .filter_map(|s| {
            s.health_check
                .as_ref()
                .map(|h| (s.service.name.clone(), h.local_endpoints))
        })
        .collect()
}

/// The rules checked one by one on the model's own output.
fn check_exclusion_rules(world: &World, table: &DesiredTable) -> Result<(), TestCaseError> {
    let zone = ZONES[world.zone];
    for vs in table.virtual_servers() {
        let service: usize = vs.service_port.service.name["svc-".len()..]
            .parse()
            .expect("generated name");
        let v6 = vs.key.address.is_ipv6();
        let udp = vs.service_port.protocol.as_str() == "UDP";
        let endpoints = merged(world, service);
        let port_name: &str = &vs.service_port.port;
        let candidates: Vec<Candidate> = endpoints
            .iter()
            .filter(|((n, u, f), _)| *n == port_name && *u == udp && *f == v6)
            .flat_map(|(_, l)| l.iter().cloned())
            .collect();
        let mode = topology(&candidates, zone);
        for d in vs.destinations.iter() {
            prop_assert_eq!(
                d.address.is_ipv6(),
                v6,
                "{}: wrong family {}",
                vs.key,
                d.address
            );
            let found = candidates
                .iter()
                .find(|c| c.address == d.address && c.port == d.port);
            prop_assert!(
                found.is_some(),
                "{}: {}:{} is not an endpoint of {} with port {:?}",
                vs.key,
                d.address,
                d.port,
                vs.service_port,
                port_name
            );
            let c = found.expect("checked");
            prop_assert_eq!(d.ready, c.ready, "{}: readiness reported", vs.key);
            prop_assert_eq!(d.local, c.local, "{}: locality reported", vs.key);
            match vs.endpoint_set {
                EndpointSet::Local => {
                    prop_assert!(
                        c.local,
                        "{}: remote {} under a Local policy",
                        vs.key,
                        d.address
                    );
                    if !c.ready {
                        prop_assert!(
                            c.serving && c.terminating,
                            "{}: {} neither ready nor serving-terminating",
                            vs.key,
                            d.address
                        );
                        prop_assert!(
                            !candidates.iter().any(|o| o.local && o.ready),
                            "{}: not-ready {} while a local ready endpoint exists",
                            vs.key,
                            d.address
                        );
                    }
                }
                EndpointSet::Cluster => {
                    if c.ready {
                        match mode {
                            Topology::Zone => prop_assert!(
                                c.zone_hints.as_ref().is_some_and(|h| h.contains(zone)),
                                "{}: {} hinted for another zone",
                                vs.key,
                                d.address
                            ),
                            Topology::Node => prop_assert!(
                                c.node_hints.as_ref().is_some_and(|h| h.contains(NODE)),
                                "{}: {} hinted for another node",
                                vs.key,
                                d.address
                            ),
                            Topology::None => {}
                        }
                    } else {
                        prop_assert!(
                            c.serving && c.terminating,
                            "{}: {} neither ready nor serving-terminating",
                            vs.key,
                            d.address
                        );
                        prop_assert!(
                            !candidates.iter().any(|o| o.ready),
                            "{}: not-ready {} while a ready endpoint exists",
                            vs.key,
                            d.address
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Event sequences for the order-independence property.

#[derive(Debug, Clone)]
enum Event {
    Service(Svc),
    DeleteService(usize),
    Slice(Slice),
    DeleteSlice(String),
    Node(fixtures::NodeObj),
    Commit,
}

/// A stale version of a Service: other policies and no external addresses.
fn stale_service(i: usize, s: &GenService) -> Svc {
    let mut older = s.clone();
    older.itp_local = !s.itp_local;
    older.etp_local = !s.etp_local;
    older.external_ips.clear();
    older.ingress.clear();
    service_object(i, &older)
}

/// A stale version of a slice: its endpoints reversed and halved, or labelled for another
/// Service (the label moves back in the final version).
fn stale_slice(s: &GenSlice, services: usize, relabel: bool) -> Slice {
    let mut older = s.clone();
    if relabel {
        let other = (s.service + 1) % services;
        return slice_object(&older).label("kubernetes.io/service-name", &service_name(other));
    }
    older.endpoints.reverse();
    older.endpoints.truncate(older.endpoints.len() / 2);
    slice_object(&older)
}

#[derive(Debug, Clone)]
struct Script {
    /// Per object: whether a stale version comes first, whether it is deleted and re-added.
    stale: Vec<bool>,
    deleted: Vec<bool>,
    relabel: Vec<bool>,
    /// Interleaving: a permutation key per event.
    order: Vec<u32>,
    commits: Vec<bool>,
    /// An extra Service and slice that the final re-list no longer lists.
    extras: bool,
}

fn arb_script() -> impl Strategy<Value = Script> {
    (
        prop::collection::vec(any::<bool>(), 16),
        prop::collection::vec(any::<bool>(), 16),
        prop::collection::vec(any::<bool>(), 16),
        prop::collection::vec(any::<u32>(), 64),
        prop::collection::vec(prop::bool::weighted(0.3), 64),
        any::<bool>(),
    )
        .prop_map(|(stale, deleted, relabel, order, commits, extras)| Script {
            stale,
            deleted,
            relabel,
            order,
            commits,
            extras,
        })
}

/// Per-object event lists (each ends with the object's final version), interleaved by the
/// script's permutation keys while keeping each object's own order.
fn events(world: &World, script: &Script) -> Vec<Event> {
    let mut per_object: Vec<Vec<Event>> = Vec::new();
    let flag = |v: &Vec<bool>, i: usize| v[i % v.len()];
    for (i, s) in world.services.iter().enumerate() {
        let mut list = Vec::new();
        if flag(&script.stale, i) {
            list.push(Event::Service(stale_service(i, s)));
        }
        if flag(&script.deleted, i) {
            list.push(Event::Service(service_object(i, s)));
            list.push(Event::DeleteService(i));
        }
        list.push(Event::Service(service_object(i, s)));
        per_object.push(list);
    }
    for (j, s) in world.slices.iter().enumerate() {
        let k = j + world.services.len();
        let mut list = Vec::new();
        if flag(&script.stale, k) {
            list.push(Event::Slice(stale_slice(
                s,
                world.services.len(),
                flag(&script.relabel, k),
            )));
        }
        if flag(&script.deleted, k) {
            list.push(Event::Slice(slice_object(s)));
            list.push(Event::DeleteSlice(slice_name(s)));
        }
        list.push(Event::Slice(slice_object(s)));
        per_object.push(list);
    }
    per_object.push(vec![
        Event::Node(node_object((world.zone + 1) % ZONES.len())),
        Event::Node(node_object(world.zone)),
    ]);
    // Interleave: sort all events by key, then give each object's positions back its own
    // events in order.
    let mut tagged: Vec<(u32, usize)> = Vec::new();
    let mut n = 0;
    for (o, list) in per_object.iter().enumerate() {
        for _ in list {
            tagged.push((
                script.order[n % script.order.len()].wrapping_add(n as u32),
                o,
            ));
            n += 1;
        }
    }
    tagged.sort();
    let mut next = vec![0usize; per_object.len()];
    let mut out = Vec::new();
    for (idx, (_, o)) in tagged.into_iter().enumerate() {
        out.push(per_object[o][next[o]].clone());
        next[o] += 1;
        if script.commits[idx % script.commits.len()] {
            out.push(Event::Commit);
        }
    }
    out
}

/// Applies a commit and checks that it reports exactly the Services whose rows changed.
fn commit_checked(m: &mut ProxyModel) -> Result<(), TestCaseError> {
    let before = m.table().clone();
    let changes = m.commit();
    let after = m.table();
    let mut names: BTreeSet<ServiceName> = BTreeSet::new();
    names.extend(before.services().map(|s| s.service.clone()));
    names.extend(after.services().map(|s| s.service.clone()));
    let changed: BTreeSet<ServiceName> = names
        .into_iter()
        .filter(|n| before.service(n).map(|t| &**t) != after.service(n).map(|t| &**t))
        .collect();
    prop_assert_eq!(&changes.services, &changed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_table_never_holds_an_endpoint_the_rules_exclude(world in arb_world()) {
        let m = fresh_model(&world);
        check_exclusion_rules(&world, m.table())?;
    }

    #[test]
    fn the_table_equals_the_oracle(world in arb_world()) {
        let m = fresh_model(&world);
        let (want, want_health) = oracle(&world);
        prop_assert_eq!(model_view(m.table()), want);
        prop_assert_eq!(model_health(m.table()), want_health);
    }

    #[test]
    fn any_order_of_updates_ends_in_the_table_of_a_fresh_model(
        world in arb_world(),
        script in arb_script(),
    ) {
        let fresh = fresh_model(&world);
        let mut m = ProxyModel::new(config_for(&world));
        if script.extras {
            m.upsert_service(&svc("zz-extra").cluster_ips(&["10.96.9.9"]).port("", "TCP", 80)
                .external_ips(&[EXTERNAL_IPS[0]]).build());
            m.upsert_slice(&slice(&service_name(0), "zz-extra-slice").port("http", "TCP", 8000)
                .port("", "TCP", 8000).ep(ep("10.1.0.1").node(NODE)).build());
            commit_checked(&mut m)?;
        }
        for event in events(&world, &script) {
            match event {
                Event::Service(s) => { m.upsert_service(&s.build()); }
                Event::DeleteService(i) => m.delete_service("default", &service_name(i)),
                Event::Slice(s) => m.upsert_slice(&s.build()),
                Event::DeleteSlice(n) => m.delete_slice("default", &n),
                Event::Node(n) => m.set_node(&n.build()),
                Event::Commit => commit_checked(&mut m)?,
            }
        }
        if script.extras {
            let services: HashSet<ServiceName> = (0..world.services.len())
                .map(|i| ServiceName::new("default", service_name(i)))
                .collect();
            let slices: HashSet<(String, String)> = world.slices.iter()
                .map(|s| ("default".to_string(), slice_name(s)))
                .collect();
            m.retain_services(&services);
            m.retain_slices(&slices);
        }
        commit_checked(&mut m)?;
        prop_assert!(!m.has_pending());
        prop_assert_eq!(model_view(m.table()), model_view(fresh.table()));
        prop_assert_eq!(render_text(m.table(), m.node()), render_text(fresh.table(), fresh.node()));
        let a: Vec<_> = m.table().services().map(|s| (**s).clone()).collect();
        let b: Vec<_> = fresh.table().services().map(|s| (**s).clone()).collect();
        prop_assert_eq!(a, b);
    }
}
