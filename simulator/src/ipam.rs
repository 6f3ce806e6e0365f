//! Address blocks: a Node's pod CIDRs from the cluster CIDRs (kube-controller-manager's
//! `nodeipam` range allocator), and a Pod's addresses from its Node's pod CIDRs (the network
//! plugin's host-local IPAM).

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

/// The Node's pod CIDRs: `spec.podCIDRs`, or `spec.podCIDR` when only that is set; entries
/// that do not parse are ignored (the API server validates them).
pub(crate) fn node_pod_cidrs(node: &Node) -> Vec<IpNet> {
    let spec = node.spec.as_ref();
    let listed = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    let single = spec.and_then(|s| s.pod_cidr.clone());
    let texts = if listed.is_empty() {
        single.into_iter().collect()
    } else {
        listed
    };
    texts.iter().filter_map(|t| t.parse().ok()).collect()
}

/// The first block of `cluster` with prefix length `prefix` that overlaps none of `taken`;
/// `None` when the cluster CIDR is used up or `prefix` is shorter than the cluster's.
pub(crate) fn next_free_block(cluster: IpNet, prefix: u8, taken: &[IpNet]) -> Option<IpNet> {
    let mut blocks = cluster.subnets(prefix).ok()?;
    // Each taken block can rule out at most a run of candidates it overlaps; the first
    // candidate overlapping nothing is the answer, so this ends quickly even in a /64 space.
    blocks.find(|block| !taken.iter().any(|t| overlaps(*t, *block)))
}

fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The lowest free address of `cidr` for a Pod: not the network address, not the first host
/// (the node's bridge or gateway, as CNI's bridge plugin takes it), not the IPv4 broadcast
/// address, and not in `used`.
pub(crate) fn next_free_ip(cidr: IpNet, used: &HashSet<IpAddr>) -> Option<IpAddr> {
    cidr.hosts()
        .filter(|ip| *ip != cidr.network())
        .skip(1)
        .find(|ip| !used.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_are_handed_out_in_order_around_taken_ones() {
        let cluster = net("10.244.0.0/16");
        assert_eq!(
            next_free_block(cluster, 24, &[]),
            Some(net("10.244.0.0/24"))
        );
        let taken = [
            net("10.244.0.0/24"),
            net("10.244.1.0/24"),
            net("10.244.3.0/24"),
        ];
        assert_eq!(
            next_free_block(cluster, 24, &taken),
            Some(net("10.244.2.0/24"))
        );
        // A taken block larger than the node mask rules out every block inside it.
        assert_eq!(
            next_free_block(cluster, 24, &[net("10.244.0.0/17")]),
            Some(net("10.244.128.0/24"))
        );
        let v6 = net("fd00:10:244::/56");
        assert_eq!(
            next_free_block(v6, 64, &[net("fd00:10:244::/64")]),
            Some(net("fd00:10:244:1::/64"))
        );
    }

    #[test]
    fn an_exhausted_cluster_cidr_or_a_mask_shorter_than_it_gives_nothing() {
        let cluster = net("10.244.0.0/23");
        let taken = [net("10.244.0.0/24"), net("10.244.1.0/24")];
        assert_eq!(next_free_block(cluster, 24, &taken), None);
        assert_eq!(next_free_block(cluster, 16, &[]), None);
    }

    #[test]
    fn pod_addresses_skip_network_gateway_broadcast_and_used() {
        let cidr = net("10.244.1.0/30");
        let mut used = HashSet::new();
        assert_eq!(
            next_free_ip(cidr, &used),
            Some("10.244.1.2".parse().unwrap())
        );
        used.insert("10.244.1.2".parse().unwrap());
        // .3 is the broadcast address of the /30: nothing is left.
        assert_eq!(next_free_ip(cidr, &used), None);
        let v6 = net("fd00:10:244:1::/64");
        assert_eq!(
            next_free_ip(v6, &HashSet::new()),
            Some("fd00:10:244:1::2".parse().unwrap())
        );
    }
}
