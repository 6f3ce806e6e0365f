//! The node agent's settings that shape the desired table (kube-proxy's flags of the same
//! meaning).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Serialize;

use super::family::Family;

/// The IPVS scheduler for every virtual server (`--ipvs-scheduler`; kube-proxy accepts the
/// same names and defaults to `rr`). The nftables backend always spreads uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Scheduler {
    /// Round robin.
    #[default]
    RoundRobin,
    /// Weighted round robin.
    WeightedRoundRobin,
    /// Least connection.
    LeastConnection,
    /// Weighted least connection.
    WeightedLeastConnection,
    /// Source hashing.
    SourceHashing,
    /// Destination hashing.
    DestinationHashing,
    /// Maglev hashing.
    MaglevHashing,
    /// Shortest expected delay.
    ShortestExpectedDelay,
    /// Never queue.
    NeverQueue,
}

impl Scheduler {
    /// The kernel's name (`ip_vs_<name>` module).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::RoundRobin => "rr",
            Scheduler::WeightedRoundRobin => "wrr",
            Scheduler::LeastConnection => "lc",
            Scheduler::WeightedLeastConnection => "wlc",
            Scheduler::SourceHashing => "sh",
            Scheduler::DestinationHashing => "dh",
            Scheduler::MaglevHashing => "mh",
            Scheduler::ShortestExpectedDelay => "sed",
            Scheduler::NeverQueue => "nq",
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scheduler name the agent does not know.
#[derive(Debug, Clone, thiserror::Error)]
#[error("--ipvs-scheduler: unknown scheduler {0:?} (expected one of rr, wrr, lc, wlc, sh, dh, mh, sed, nq)")]
pub struct UnknownScheduler(pub String);

impl FromStr for Scheduler {
    type Err = UnknownScheduler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "" | "rr" => Scheduler::RoundRobin,
            "wrr" => Scheduler::WeightedRoundRobin,
            "lc" => Scheduler::LeastConnection,
            "wlc" => Scheduler::WeightedLeastConnection,
            "sh" => Scheduler::SourceHashing,
            "dh" => Scheduler::DestinationHashing,
            "mh" => Scheduler::MaglevHashing,
            "sed" => Scheduler::ShortestExpectedDelay,
            "nq" => Scheduler::NeverQueue,
            other => return Err(UnknownScheduler(other.to_string())),
        })
    }
}

/// Which node addresses NodePorts listen on (`--nodeport-addresses`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NodePortAddresses {
    /// Every InternalIP and ExternalIP of the Node (kube-proxy's IPVS default: all node IPs).
    #[default]
    All,
    /// The Node's primary address of each family, its first InternalIP, else its first
    /// ExternalIP (kube-proxy's `primary`, the nftables mode's default upstream).
    Primary,
    /// Node addresses inside any of these CIDRs; a family none of them is of is not filtered
    /// (upstream `NewNodePortAddresses` adds `0.0.0.0/0` or `::/0` for it).
    Cidrs(Vec<IpNet>),
}

/// A `--nodeport-addresses` value that is neither `primary` nor a CIDR list.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "--nodeport-addresses: {0:?} is not a CIDR (expected comma-separated CIDRs, or \"primary\")"
)]
pub struct InvalidNodePortAddresses(pub String);

impl FromStr for NodePortAddresses {
    type Err = InvalidNodePortAddresses;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(NodePortAddresses::All);
        }
        if s == "primary" {
            return Ok(NodePortAddresses::Primary);
        }
        s.split(',')
            .map(|part| {
                part.trim()
                    .parse::<IpNet>()
                    .map(|n| n.trunc())
                    .map_err(|_| InvalidNodePortAddresses(part.trim().to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(NodePortAddresses::Cidrs)
    }
}

impl NodePortAddresses {
    /// The node addresses NodePorts of `family` listen on, in the Node's order.
    pub fn select(&self, addresses: &[IpAddr], primary: &[IpAddr], family: Family) -> Vec<IpAddr> {
        let of_family = |ip: &&IpAddr| Family::of(**ip) == family;
        match self {
            NodePortAddresses::All => addresses.iter().filter(of_family).copied().collect(),
            NodePortAddresses::Primary => primary.iter().filter(of_family).copied().collect(),
            NodePortAddresses::Cidrs(cidrs) => {
                let cidrs: Vec<&IpNet> = cidrs
                    .iter()
                    .filter(|c| Family::of(c.addr()) == family)
                    .collect();
                addresses
                    .iter()
                    .filter(of_family)
                    .filter(|ip| cidrs.is_empty() || cidrs.iter().any(|c| c.contains(*ip)))
                    .copied()
                    .collect()
            }
        }
    }
}

/// Everything besides the API objects that decides the desired table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyConfig {
    /// This node's name (`--node-name`).
    pub node_name: String,
    /// `--ipvs-scheduler`.
    pub scheduler: Scheduler,
    /// `--nodeport-addresses`.
    pub nodeport_addresses: NodePortAddresses,
    /// `--cluster-cidr`: traffic to a ClusterIP from outside these ranges is masqueraded
    /// (kube-proxy's `--cluster-cidr`); empty means only hairpin traffic is.
    pub cluster_cidrs: Vec<IpNet>,
    /// `--masquerade-all`: masquerade all traffic to ClusterIPs.
    pub masquerade_all: bool,
}
