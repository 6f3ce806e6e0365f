//! What the node agent's IPVS tests in the VM share: the guest's network (backends and a client
//! in namespaces behind veth pairs, the node's own addresses on a link of their own), manifest
//! builders, and a parser of `ipvsadm -Ln` written from its output format, independent of the
//! agent's code.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The node the agent runs as, and its addresses (on the guest link `node0`).
pub const NODE: &str = "vm-node";
pub const NODE_IP: &str = "192.168.100.10";
pub const NODE_IP6: &str = "fd00:100::10";

/// Guest network. Namespaces b1 and b2 are backends (b1 on this node, b2 "on node-b" as far
/// as the EndpointSlices say; both are reachable from here), c1 is the client. Each sits
/// behind a veth pair to the root namespace, which routes (IPv4 and IPv6). The node's
/// addresses are on a dummy link `node0`. Backends answer with their name on TCP and UDP 8080
/// and TCP 8081 (IPv6). ICMP rate limits are off so every reject is seen.
pub const TOPOLOGY: &str = r#"
set -e
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.icmp_ratelimit=0 \
  net.ipv6.icmp.ratelimit=0
ip link add node0 type dummy
ip link set node0 up
ip addr add 192.168.100.10/32 dev node0
ip -6 addr add fd00:100::10/128 dev node0 nodad
n=0
for ns in b1 b2 c1; do
  n=$((n + 1))
  ip netns add $ns
  ip link add v$ns type veth peer name eth0 netns $ns
  ip addr add 10.244.$n.1/24 dev v$ns
  ip -6 addr add fd00:244:$n::1/64 dev v$ns nodad
  ip link set v$ns up
  ip -n $ns link set lo up
  ip -n $ns link set eth0 up
  ip -n $ns addr add 10.244.$n.2/24 dev eth0
  ip -n $ns -6 addr add fd00:244:$n::2/64 dev eth0 nodad
  ip -n $ns route add default via 10.244.$n.1
  ip -n $ns -6 route add default via fd00:244:$n::1
  ip netns exec $ns sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
done
for b in b1 b2; do
  ip netns exec $b svcplane-nettest serve --name $b --tcp 0.0.0.0:8080 --udp 0.0.0.0:8080 \
    --tcp [::]:8081 --lifetime-ms 600000 >/tmp/$b.log 2>&1 &
done
retry 100 0.1 grep -q ready /tmp/b1.log
retry 100 0.1 grep -q ready /tmp/b2.log
"#;

/// The Node objects: this node (with both addresses) and another one.
pub fn nodes() -> String {
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  name: {NODE}
  labels: {{topology.kubernetes.io/zone: zone-a}}
status:
  addresses:
  - {{type: InternalIP, address: {NODE_IP}}}
  - {{type: InternalIP, address: "{NODE_IP6}"}}
---
apiVersion: v1
kind: Node
metadata:
  name: node-b
  labels: {{topology.kubernetes.io/zone: zone-b}}
status:
  addresses:
  - {{type: InternalIP, address: 192.168.100.11}}
"#
    )
}

/// A Service in `default` with `spec` (YAML lines indented by 2) and optional `status`.
pub fn service(name: &str, spec: &str, status: &str) -> String {
    let mut out = format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n"
    );
    for line in spec.trim_matches('\n').lines() {
        let _ = writeln!(out, "  {line}");
    }
    if !status.is_empty() {
        out.push_str("status:\n");
        for line in status.trim_matches('\n').lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// An endpoint of a slice: address and the node it runs on.
pub struct Ep<'a>(pub &'a str, pub &'a str);

/// The backends: b1 on this node, b2 on node-b.
pub const B1: Ep<'static> = Ep("10.244.1.2", NODE);
pub const B2: Ep<'static> = Ep("10.244.2.2", "node-b");
pub const B1_6: Ep<'static> = Ep("fd00:244:1::2", NODE);
pub const B2_6: Ep<'static> = Ep("fd00:244:2::2", "node-b");

/// An EndpointSlice of Service `service` (managed, ready endpoints) with `ports` given as
/// `(name, protocol, port)`.
pub fn slice(
    name: &str,
    service: &str,
    address_type: &str,
    ports: &[(&str, &str, u16)],
    endpoints: &[Ep<'_>],
) -> String {
    let mut out = format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  \
         namespace: default\n  labels:\n    kubernetes.io/service-name: {service}\n    \
         endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io\n\
         addressType: {address_type}\nports:\n"
    );
    for (port_name, protocol, port) in ports {
        let _ = writeln!(
            out,
            "- {{name: \"{port_name}\", protocol: {protocol}, port: {port}}}"
        );
    }
    if endpoints.is_empty() {
        out.push_str("endpoints: []\n");
    } else {
        out.push_str("endpoints:\n");
    }
    for Ep(address, node) in endpoints {
        let _ = writeln!(
            out,
            "- {{addresses: [\"{address}\"], nodeName: {node}, conditions: {{ready: true, serving: true, terminating: false}}}}"
        );
    }
    out
}

/// One virtual service of `ipvsadm -Ln`: its header fields and its real servers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// `TCP 10.96.0.10:80`.
    pub service: String,
    /// `rr`, or `rr persistent 600`.
    pub scheduling: String,
    /// `10.244.1.2:8080 Masq 1`, sorted.
    pub reals: Vec<String>,
}

/// Real servers with their counters: `(address, forward, weight, active, inactive)`.
pub type Real = (String, String, u32, u32, u32);

/// Parses `ipvsadm -Ln`: after the three header lines, a line per virtual service
/// (`PROT  ADDR:PORT SCHED [flags...]`) followed by `  -> ADDR:PORT FWD WEIGHT ACT INACT`.
pub fn parse_ipvsadm(text: &str) -> BTreeMap<String, (String, Vec<Real>)> {
    let mut table: BTreeMap<String, (String, Vec<Real>)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["IP", "Virtual", ..] | ["Prot", ..] | ["->", "RemoteAddress:Port", ..] | [] => {}
            ["->", addr, fwd, weight, active, inactive] => {
                let service = current.as_ref().expect("a real server follows its service");
                table.get_mut(service).unwrap().1.push((
                    addr.to_string(),
                    fwd.to_string(),
                    weight.parse().expect("weight"),
                    active.parse().expect("active"),
                    inactive.parse().expect("inactive"),
                ));
            }
            [proto, addr, rest @ ..] if ["TCP", "UDP", "SCTP", "FWM"].contains(proto) => {
                let key = format!("{proto} {addr}");
                table.insert(key.clone(), (rest.join(" "), Vec::new()));
                current = Some(key);
            }
            other => panic!("unexpected ipvsadm line {other:?} in:\n{text}"),
        }
    }
    table
}

/// The table as [`Listed`] rows without counters, sorted.
pub fn listed(text: &str) -> BTreeSet<Listed> {
    parse_ipvsadm(text)
        .into_iter()
        .map(|(service, (scheduling, reals))| {
            let mut reals: Vec<String> = reals
                .into_iter()
                .map(|(addr, fwd, weight, _, _)| format!("{addr} {fwd} {weight}"))
                .collect();
            reals.sort();
            Listed {
                service,
                scheduling,
                reals,
            }
        })
        .collect()
}

/// A row of an expected table.
pub fn row(service: &str, scheduling: &str, reals: &[&str]) -> Listed {
    let mut reals: Vec<String> = reals.iter().map(|r| r.to_string()).collect();
    reals.sort();
    Listed {
        service: service.to_string(),
        scheduling: scheduling.to_string(),
        reals,
    }
}

/// Probe output lines counted by answer, without the summary.
pub fn answers(section: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in section.lines().filter(|l| !l.starts_with("summary ")) {
        *counts.entry(line.to_string()).or_insert(0) += 1;
    }
    counts
}

/// `answers` expected: `name` → count.
pub fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
