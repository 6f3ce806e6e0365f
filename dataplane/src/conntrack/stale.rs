//! Which UDP conntrack entries are stale: kube-proxy's `CleanStaleEntries` rule
//! (`pkg/proxy/conntrack/cleanup.go`), as a pure function over a dump.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// `IPPROTO_UDP`.
pub(crate) const IPPROTO_UDP: u8 = 17;

/// One direction of a flow: source and destination, address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    /// Source.
    pub src: SocketAddr,
    /// Destination.
    pub dst: SocketAddr,
}

/// A conntrack entry of a UDP flow (what `conntrack -L -p udp` lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConntrackEntry {
    /// The original direction: client → address it sent to (the Service VIP or node port).
    pub original: FlowTuple,
    /// The reply direction: for a DNATed flow its source is the endpoint that answers.
    pub reply: FlowTuple,
    /// Conntrack zone (`CTA_ZONE`), 0 by default.
    pub zone: u16,
}

impl fmt::Display for ConntrackEntry {
    /// `udp 10.0.0.2:40000 -> 10.96.0.10:53 reply 10.244.1.5:53 -> 10.0.0.2:40000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "udp {} -> {} reply {} -> {}",
            self.original.src, self.original.dst, self.reply.src, self.reply.dst
        )?;
        if self.zone != 0 {
            write!(f, " zone {}", self.zone)?;
        }
        Ok(())
    }
}

/// Where UDP traffic for one Service port arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceDestination {
    /// A Service IP and port: ClusterIP, external IP or load-balancer IP.
    Vip {
        /// The address.
        addr: IpAddr,
        /// The Service port.
        port: u16,
    },
    /// A NodePort, on whatever local address the client used.
    NodePort {
        /// The node port.
        port: u16,
    },
}

/// A UDP Service destination and the endpoints that may answer traffic sent to it: its
/// serving endpoints (ready or not, terminating or not, whatever the traffic policies; as
/// kube-proxy, so that established flows are treated like TCP's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpServiceEndpoints {
    /// Where the traffic arrives.
    pub destination: ServiceDestination,
    /// IPs of the serving endpoints.
    pub serving_endpoints: HashSet<IpAddr>,
}

/// The entries of `entries` that kube-proxy's `CleanStaleEntries` deletes: UDP flows whose
/// original destination is a Service destination of `services` and whose reply comes from
/// an address that is not one of its serving endpoints. That covers flows DNATed to an endpoint
/// that went away and flows that were never DNATed (created while the Service had no
/// endpoint), which would otherwise black-hole the client until they time out.
///
/// Two refinements of upstream, both deleting a subset of what it deletes: a VIP matches on
/// address *and* port (upstream keys the VIP by address only, one port's endpoint set
/// overwriting another's), and when several entries of `services` name the same destination
/// their endpoint sets are united (upstream keeps the last). A NodePort matches on the
/// destination port alone, whatever the destination address, as upstream does.
pub fn stale_entries(
    entries: &[ConntrackEntry],
    services: &[UdpServiceEndpoints],
) -> Vec<ConntrackEntry> {
    let mut by_vip: HashMap<(IpAddr, u16), HashSet<IpAddr>> = HashMap::new();
    let mut by_node_port: HashMap<u16, HashSet<IpAddr>> = HashMap::new();
    for service in services {
        let serving = service.serving_endpoints.iter().copied();
        match service.destination {
            ServiceDestination::Vip { addr, port } => {
                by_vip.entry((addr, port)).or_default().extend(serving)
            }
            ServiceDestination::NodePort { port } => {
                by_node_port.entry(port).or_default().extend(serving)
            }
        }
    }
    entries
        .iter()
        .filter(|entry| {
            let dst = entry.original.dst;
            let answered_by = entry.reply.src.ip();
            let stale_vip = by_vip
                .get(&(dst.ip(), dst.port()))
                .is_some_and(|serving| !serving.contains(&answered_by));
            let stale_node_port = by_node_port
                .get(&dst.port())
                .is_some_and(|serving| !serving.contains(&answered_by));
            stale_vip || stale_node_port
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: &str, to: &str, answered_by: &str) -> ConntrackEntry {
        let client: SocketAddr = client.parse().unwrap();
        ConntrackEntry {
            original: FlowTuple {
                src: client,
                dst: to.parse().unwrap(),
            },
            reply: FlowTuple {
                src: answered_by.parse().unwrap(),
                dst: client,
            },
            zone: 0,
        }
    }

    fn vip(addr: &str, port: u16, serving: &[&str]) -> UdpServiceEndpoints {
        UdpServiceEndpoints {
            destination: ServiceDestination::Vip {
                addr: addr.parse().unwrap(),
                port,
            },
            serving_endpoints: serving.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn node_port(port: u16, serving: &[&str]) -> UdpServiceEndpoints {
        UdpServiceEndpoints {
            destination: ServiceDestination::NodePort { port },
            serving_endpoints: serving.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    /// Each row: an entry, whether `CleanStaleEntries` deletes it, and the upstream rule.
    #[test]
    fn stale_entries_follow_clean_stale_entries() {
        let services = [
            vip("10.96.0.10", 53, &["10.244.1.5"]),
            vip("fd00:96::10", 53, &["fd00:244::5"]),
            vip("203.0.113.7", 53, &["10.244.1.5"]), // a load-balancer IP of the same Service
            node_port(30053, &["10.244.1.5"]),
        ];
        let rows = [
            // orig-dst is a Service IP, reply-src a serving endpoint: kept.
            (
                entry("10.0.0.2:4000", "10.96.0.10:53", "10.244.1.5:53"),
                false,
            ),
            // reply-src an endpoint that is gone: deleted (filterForNAT).
            (
                entry("10.0.0.2:4001", "10.96.0.10:53", "10.244.9.9:53"),
                true,
            ),
            // never DNATed (no endpoint when the flow started): reply-src is the VIP: deleted.
            (
                entry("10.0.0.2:4002", "10.96.0.10:53", "10.96.0.10:53"),
                true,
            ),
            // IPv6 the same way.
            (
                entry("[fd00::2]:4000", "[fd00:96::10]:53", "[fd00:244::5]:53"),
                false,
            ),
            (
                entry("[fd00::2]:4001", "[fd00:96::10]:53", "[fd00:244::9]:53"),
                true,
            ),
            // load-balancer IP with a gone endpoint: deleted.
            (
                entry("198.51.100.1:5000", "203.0.113.7:53", "10.244.7.7:53"),
                true,
            ),
            // NodePort on any local address with a gone endpoint: deleted (filterForPortNAT).
            (
                entry("198.51.100.1:5001", "192.168.1.10:30053", "10.244.7.7:53"),
                true,
            ),
            (
                entry("198.51.100.1:5002", "192.168.1.11:30053", "10.244.1.5:53"),
                false,
            ),
            // Not a Service destination: kept.
            (
                entry("10.0.0.2:4003", "10.96.0.11:53", "10.244.9.9:53"),
                false,
            ),
            // The VIP on another port (not a port of this Service): kept.
            (
                entry("10.0.0.2:4004", "10.96.0.10:5353", "10.244.9.9:5353"),
                false,
            ),
        ];
        let entries: Vec<ConntrackEntry> = rows.iter().map(|(e, _)| *e).collect();
        let stale = stale_entries(&entries, &services);
        for (entry, want) in rows {
            assert_eq!(stale.contains(&entry), want, "{entry}");
        }
    }

    #[test]
    fn a_service_with_no_serving_endpoint_has_every_flow_stale() {
        let services = [vip("10.96.0.10", 53, &[])];
        let entries = [entry("10.0.0.2:4000", "10.96.0.10:53", "10.244.1.5:53")];
        assert_eq!(stale_entries(&entries, &services), entries.to_vec());
    }

    #[test]
    fn endpoint_sets_naming_the_same_destination_are_united() {
        let services = [
            vip("10.96.0.10", 53, &["10.244.1.5"]),
            vip("10.96.0.10", 53, &["10.244.2.5"]),
        ];
        let entries = [
            entry("10.0.0.2:4000", "10.96.0.10:53", "10.244.1.5:53"),
            entry("10.0.0.2:4001", "10.96.0.10:53", "10.244.2.5:53"),
        ];
        assert!(stale_entries(&entries, &services).is_empty());
    }
}
