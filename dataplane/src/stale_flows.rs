//! Which UDP conntrack flows a sync made stale, from the UDP rows of the changed Services
//! before and after it (kube-proxy's `CleanStaleEntries`, `pkg/proxy/conntrack/cleanup.go`).
//! Backend-independent: the nftables and IPVS backends both hand the result to the conntrack
//! client after a successful sync.
//!
//! UDP has no teardown: a conntrack entry keeps steering a client's datagrams to the endpoint
//! it was NATed to, or past the Service if it was created before the Service had an endpoint.
//! Two cases therefore make flows stale, per destination (a VIP and port, or a NodePort):
//! - an endpoint went away: flows answered by it must go;
//! - the destination gained its first endpoint: flows created meanwhile were not DNATed.
//!
//! In both cases every flow to the destination that is not answered by one of its current
//! endpoints is stale. One difference from upstream, which keeps flows to endpoints that are
//! still *serving*: the desired table only lists the endpoints the proxy selected, so a flow to
//! an endpoint that stays serving but is no longer selected (it became terminating while
//! others are ready) is cleared too, and its next datagram picks a selected endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::conntrack::{ServiceDestination, UdpServiceEndpoints};
use crate::model::{FrontendKind, Protocol, ServiceTable};

/// Where UDP traffic of a Service arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UdpDestination {
    /// A ClusterIP, external IP or load-balancer IP, and the Service port.
    Vip(IpAddr, u16),
    /// A NodePort, on any local address (upstream matches node ports by port alone).
    NodePort(u16),
}

/// Flows to `destination` not answered by one of `endpoints` are stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleUdpFlows {
    /// Where the flows were sent.
    pub destination: UdpDestination,
    /// The endpoints that may answer now (empty: the destination has none).
    pub endpoints: BTreeSet<IpAddr>,
    /// The endpoints that went away (empty when the destination just gained endpoints).
    pub gone: BTreeSet<IpAddr>,
}

impl StaleUdpFlows {
    /// What the conntrack cleaner deletes for these flows: entries to the destination whose
    /// reply does not come from one of the current endpoints.
    pub fn to_conntrack(&self) -> UdpServiceEndpoints {
        let destination = match self.destination {
            UdpDestination::Vip(addr, port) => ServiceDestination::Vip { addr, port },
            UdpDestination::NodePort(port) => ServiceDestination::NodePort { port },
        };
        UdpServiceEndpoints {
            destination,
            serving_endpoints: self.endpoints.iter().copied().collect(),
        }
    }
}

/// One Service's UDP destinations and their endpoint addresses.
pub type UdpRows = BTreeMap<UdpDestination, BTreeSet<IpAddr>>;

/// The UDP destinations of a Service's rows.
pub fn udp_rows(table: Option<&ServiceTable>) -> UdpRows {
    let mut rows = UdpRows::new();
    let Some(table) = table else { return rows };
    for vs in table
        .virtual_servers
        .iter()
        .filter(|vs| vs.key.protocol == Protocol::Udp)
    {
        let destination = match vs.kind {
            FrontendKind::NodePort => UdpDestination::NodePort(vs.key.port),
            _ => UdpDestination::Vip(vs.key.address, vs.key.port),
        };
        rows.entry(destination)
            .or_default()
            .extend(vs.destinations.iter().map(|d| d.address));
    }
    rows
}

/// The stale flows between one Service's UDP rows `before` and `after` a sync.
pub fn stale_udp_flows(before: &UdpRows, after: &UdpRows) -> Vec<StaleUdpFlows> {
    let empty = BTreeSet::new();
    let destinations: BTreeSet<&UdpDestination> = before.keys().chain(after.keys()).collect();
    let mut out = Vec::new();
    for destination in destinations {
        let old = before.get(destination).unwrap_or(&empty);
        let new = after.get(destination).unwrap_or(&empty);
        let gone: BTreeSet<IpAddr> = old.difference(new).copied().collect();
        let gained_first = old.is_empty() && !new.is_empty();
        if !gone.is_empty() || gained_first {
            out.push(StaleUdpFlows {
                destination: *destination,
                endpoints: new.clone(),
                gone,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(entries: &[(UdpDestination, &[&str])]) -> UdpRows {
        entries
            .iter()
            .map(|(d, ips)| (*d, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
            .collect()
    }

    fn vip() -> UdpDestination {
        UdpDestination::Vip("10.96.0.10".parse().unwrap(), 53)
    }

    #[test]
    fn a_removed_endpoint_makes_its_flows_stale() {
        // cleanup.go: flows whose reply comes from an endpoint the Service no longer has.
        let before = rows(&[(vip(), &["10.244.1.5", "10.244.2.7"])]);
        let after = rows(&[(vip(), &["10.244.2.7"])]);
        let stale = stale_udp_flows(&before, &after);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].destination, vip());
        assert_eq!(
            stale[0].gone,
            BTreeSet::from(["10.244.1.5".parse::<IpAddr>().unwrap()])
        );
        assert_eq!(stale[0].endpoints.len(), 1);
    }

    #[test]
    fn replacing_the_only_endpoint_leaves_the_new_one_as_the_only_answer() {
        let before = rows(&[(UdpDestination::NodePort(30053), &["10.244.1.5"])]);
        let after = rows(&[(UdpDestination::NodePort(30053), &["10.244.1.9"])]);
        let stale = stale_udp_flows(&before, &after);
        assert_eq!(stale.len(), 1);
        assert_eq!(
            stale[0].endpoints,
            BTreeSet::from(["10.244.1.9".parse::<IpAddr>().unwrap()])
        );
    }

    #[test]
    fn gaining_the_first_endpoint_clears_flows_created_without_one() {
        // cleanup.go: a Service that had no endpoints (its datagrams were not DNATed).
        let stale = stale_udp_flows(&rows(&[(vip(), &[])]), &rows(&[(vip(), &["10.244.1.5"])]));
        assert_eq!(stale.len(), 1);
        assert!(stale[0].gone.is_empty());
        let stale = stale_udp_flows(&UdpRows::new(), &rows(&[(vip(), &["10.244.1.5"])]));
        assert_eq!(stale.len(), 1, "a new Service counts as gaining endpoints");
    }

    #[test]
    fn adding_endpoints_to_a_served_destination_makes_nothing_stale() {
        let before = rows(&[(vip(), &["10.244.1.5"])]);
        let after = rows(&[(vip(), &["10.244.1.5", "10.244.2.7"])]);
        assert!(stale_udp_flows(&before, &after).is_empty());
        assert!(stale_udp_flows(&before, &before).is_empty());
    }

    #[test]
    fn stale_flows_become_conntrack_destinations_served_by_the_current_endpoints() {
        let before = rows(&[
            (vip(), &["10.244.1.5"]),
            (UdpDestination::NodePort(30053), &["10.244.1.5"]),
        ]);
        let after = rows(&[
            (vip(), &["10.244.2.7"]),
            (UdpDestination::NodePort(30053), &["10.244.2.7"]),
        ]);
        let services: Vec<UdpServiceEndpoints> = stale_udp_flows(&before, &after)
            .iter()
            .map(StaleUdpFlows::to_conntrack)
            .collect();
        let serving = std::collections::HashSet::from(["10.244.2.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            services,
            vec![
                UdpServiceEndpoints {
                    destination: ServiceDestination::Vip {
                        addr: "10.96.0.10".parse().unwrap(),
                        port: 53
                    },
                    serving_endpoints: serving.clone(),
                },
                UdpServiceEndpoints {
                    destination: ServiceDestination::NodePort { port: 30053 },
                    serving_endpoints: serving,
                },
            ]
        );
    }

    #[test]
    fn a_deleted_service_makes_all_its_flows_stale() {
        let before = rows(&[(vip(), &["10.244.1.5"])]);
        let stale = stale_udp_flows(&before, &UdpRows::new());
        assert_eq!(stale.len(), 1);
        assert!(stale[0].endpoints.is_empty());
    }
}
