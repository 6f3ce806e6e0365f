//! The nftables table the IPVS backend owns, `inet svcplane-ipvs`, for what IPVS alone cannot
//! do (kube-proxy's IPVS mode uses iptables and ipsets for the same jobs, `proxier.go`
//! `writeIptablesRules`):
//!
//! - **masquerade**: traffic to a virtual service whose row says [`Masquerade::Always`] (and
//!   [`Masquerade::OffClusterSources`] from outside `--cluster-cidr`) is marked before IPVS sees
//!   it and masqueraded after IPVS forwarded it (`KUBE-MARK-MASQ` / `KUBE-POSTROUTING`);
//!   node-originated traffic that picked a virtual address as its source too; and hairpin
//!   traffic, an endpoint reaching itself through a Service (`KUBE-LOOP-BACK`).
//! - **reject** new connections to a bound virtual address on a port no virtual service has,
//!   so the node's own listeners are not reachable through Service addresses
//!   (`KUBE-IPVS-FILTER`, kubernetes#72236).
//! - **`loadBalancerSourceRanges`**: traffic to a LoadBalancer address from other sources is
//!   dropped before IPVS (`KUBE-LOAD-BALANCER-FW` / `KUBE-SOURCE-RANGES-FIREWALL`).
//! - the rules use conntrack (`ct state`), which makes the kernel track connections in this
//!   network namespace, so IPVS (`net.ipv4.vs.conntrack=1`) leaves entries that masquerading
//!   and stale-UDP cleanup need.
//!
//! The set `services-v4`/`-v6` also records which IPVS virtual services svcplane created: it is
//! written before a virtual service is created and after it is deleted, so a restarted agent
//! or `--cleanup` knows what is ours.
//!
//! Everything here is text: the table, element changes, and the reading of `nft -j list`
//! ([`parse_listing`]). Rules never change with Services, only set elements do; each rule
//! carries a comment with the fingerprint of the whole declaration, so a full sync can tell
//! whether the rules in the kernel are this version's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{Family, Protocol};

/// The table's family.
pub const TABLE_FAMILY: &str = "inet";
/// The table's name.
pub const TABLE_NAME: &str = "svcplane-ipvs";
/// The packet mark bit asking for masquerade (kube-proxy's default `--iptables-masquerade-bit`
/// 14, `0x4000`); cleared again when the packet is masqueraded.
pub const MASQUERADE_MARK: u32 = 0x4000;

/// What a set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetKind {
    /// `address . protocol . port` of every IPVS virtual service svcplane created.
    Services,
    /// Addresses bound to the dummy link.
    Vips,
    /// Virtual services whose traffic is always masqueraded.
    Masquerade,
    /// Virtual services whose traffic from outside `--cluster-cidr` is masqueraded.
    MasqueradeOffCluster,
    /// `endpoint . endpoint` of local endpoints: a connection from an endpoint to itself.
    Hairpin,
    /// LoadBalancer virtual services with `loadBalancerSourceRanges`.
    SourceFiltered,
    /// `address . protocol . port . source range` admitted to a filtered LoadBalancer.
    SourceAllowed,
}

/// One set of the table: what it holds, for which family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetId {
    /// What it holds.
    pub kind: SetKind,
    /// Its family.
    pub family: Family,
}

impl SetId {
    /// Every set of the table.
    pub fn all() -> impl Iterator<Item = SetId> {
        use SetKind::*;
        Family::ALL.into_iter().flat_map(|family| {
            [
                Services,
                Vips,
                Masquerade,
                MasqueradeOffCluster,
                Hairpin,
                SourceFiltered,
                SourceAllowed,
            ]
            .into_iter()
            .map(move |kind| SetId { kind, family })
        })
    }

    /// The set's name (`services-v4`).
    pub fn name(self) -> String {
        let base = match self.kind {
            SetKind::Services => "services",
            SetKind::Vips => "vips",
            SetKind::Masquerade => "masquerade",
            SetKind::MasqueradeOffCluster => "masquerade-off-cluster",
            SetKind::Hairpin => "hairpin",
            SetKind::SourceFiltered => "source-filtered",
            SetKind::SourceAllowed => "source-allowed",
        };
        format!("{base}-{}", suffix(self.family))
    }

    fn key_type(self) -> String {
        let addr = addr_type(self.family);
        match self.kind {
            SetKind::Services
            | SetKind::Masquerade
            | SetKind::MasqueradeOffCluster
            | SetKind::SourceFiltered => format!("{addr} . inet_proto . inet_service"),
            SetKind::Vips => addr.to_string(),
            SetKind::Hairpin => format!("{addr} . {addr}"),
            SetKind::SourceAllowed => format!("{addr} . inet_proto . inet_service . {addr}"),
        }
    }

    /// The type of each part of the key, in order.
    fn key_parts(self) -> Vec<&'static str> {
        let addr = addr_type(self.family);
        match self.kind {
            SetKind::Services
            | SetKind::Masquerade
            | SetKind::MasqueradeOffCluster
            | SetKind::SourceFiltered => vec![addr, "inet_proto", "inet_service"],
            SetKind::Vips => vec![addr],
            SetKind::Hairpin => vec![addr, addr],
            SetKind::SourceAllowed => vec![addr, "inet_proto", "inet_service", addr],
        }
    }

    fn interval(self) -> bool {
        self.kind == SetKind::SourceAllowed
    }

    fn from_name(name: &str) -> Option<SetId> {
        SetId::all().find(|set| set.name() == name)
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

fn suffix(family: Family) -> &'static str {
    match family {
        Family::IPv4 => "v4",
        Family::IPv6 => "v6",
    }
}

fn addr_type(family: Family) -> &'static str {
    match family {
        Family::IPv4 => "ipv4_addr",
        Family::IPv6 => "ipv6_addr",
    }
}

fn ip_keyword(family: Family) -> &'static str {
    match family {
        Family::IPv4 => "ip",
        Family::IPv6 => "ip6",
    }
}

/// One element of one set, in the canonical text both [`element`] functions and
/// [`parse_listing`] produce.
pub type Element = (SetId, String);

/// The elements of every set, by set.
pub type Elements = BTreeMap<SetId, BTreeSet<String>>;

fn proto(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// `address . protocol . port`.
pub fn service_element(address: IpAddr, protocol: Protocol, port: u16) -> String {
    format!("{address} . {} . {port}", proto(protocol))
}

/// `endpoint . endpoint`.
pub fn hairpin_element(endpoint: IpAddr) -> String {
    format!("{endpoint} . {endpoint}")
}

/// `address . protocol . port . range`, the range a host address when it is one.
pub fn source_allowed_element(
    address: IpAddr,
    protocol: Protocol,
    port: u16,
    range: IpNet,
) -> String {
    format!(
        "{} . {}",
        service_element(address, protocol, port),
        prefix_text(range.trunc())
    )
}

fn prefix_text(net: IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// The table's declaration: its sets and rules, which depend only on the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    cluster_cidrs: BTreeMap<Family, Vec<IpNet>>,
    chains: Vec<Chain>,
    fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    name: &'static str,
    base: Option<&'static str>,
    rules: Vec<(String, &'static str)>,
}

impl TableLayout {
    /// The layout for `--cluster-cidr` ranges `cluster_cidrs` (traffic to ClusterIPs from
    /// outside them is masqueraded; none of a family: only hairpin and node traffic is).
    pub fn new(cluster_cidrs: &[IpNet]) -> TableLayout {
        let mut by_family: BTreeMap<Family, Vec<IpNet>> = BTreeMap::new();
        for net in cluster_cidrs {
            by_family
                .entry(Family::of(net.addr()))
                .or_default()
                .push(net.trunc());
        }
        for nets in by_family.values_mut() {
            nets.sort();
            nets.dedup();
        }
        let chains = chains(&by_family);
        let mut layout = TableLayout {
            cluster_cidrs: by_family,
            chains,
            fingerprint: String::new(),
        };
        layout.fingerprint = format!("{:016x}", fnv1a(layout.declaration(false).as_bytes()));
        layout
    }

    /// Whether rows with [`Masquerade::OffClusterSources`](crate::model::Masquerade) of
    /// `family` have a rule (and so set elements): only with `--cluster-cidr` of that family.
    pub fn masquerades_off_cluster(&self, family: Family) -> bool {
        self.cluster_cidrs.contains_key(&family)
    }

    /// The fingerprint of the declaration (sets and rules, without elements).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The comments of this layout's rules, in chain order: what [`parse_listing`] must find
    /// for the kernel's rules to be this layout's.
    pub fn rule_comments(&self) -> Vec<String> {
        self.chains
            .iter()
            .flat_map(|chain| chain.rules.iter().map(|(_, purpose)| self.comment(purpose)))
            .collect()
    }

    fn comment(&self, purpose: &str) -> String {
        format!("svcplane: {purpose} [{}]", self.fingerprint)
    }

    fn declaration(&self, with_comments: bool) -> String {
        let mut out = String::new();
        for set in SetId::all() {
            let _ = writeln!(out, "\tset {set} {{\n\t\ttype {}", set.key_type());
            if set.interval() {
                out.push_str("\t\tflags interval\n");
            }
            out.push_str("\t}\n");
        }
        for chain in &self.chains {
            let _ = writeln!(out, "\tchain {} {{", chain.name);
            if let Some(base) = chain.base {
                let _ = writeln!(out, "\t\t{base}");
            }
            for (rule, purpose) in &chain.rules {
                if with_comments {
                    let _ = writeln!(out, "\t\t{rule} comment \"{}\"", self.comment(purpose));
                } else {
                    let _ = writeln!(out, "\t\t{rule}");
                }
            }
            out.push_str("\t}\n");
        }
        out
    }

    /// A transaction that replaces the whole table with this layout holding `elements`.
    pub fn replace_script(&self, elements: &Elements) -> String {
        let mut out = format!(
            "table {TABLE_FAMILY} {TABLE_NAME} {{}}\ndelete table {TABLE_FAMILY} {TABLE_NAME}\n"
        );
        let _ = writeln!(out, "table {TABLE_FAMILY} {TABLE_NAME} {{");
        out.push_str(&self.declaration(true));
        out.push_str("}\n");
        for (set, members) in elements {
            if !members.is_empty() {
                write_elements(&mut out, "add", *set, members.iter());
            }
        }
        out
    }
}

/// A transaction that adds `adds` and deletes `deletes` (each deleted element must exist: the
/// kernel refuses the whole transaction otherwise).
pub fn elements_script(adds: &[Element], deletes: &[Element]) -> String {
    let mut out = String::new();
    for (verb, list) in [("add", adds), ("delete", deletes)] {
        let mut by_set: BTreeMap<SetId, Vec<&String>> = BTreeMap::new();
        for (set, element) in list {
            by_set.entry(*set).or_default().push(element);
        }
        for (set, members) in by_set {
            write_elements(&mut out, verb, set, members.into_iter());
        }
    }
    out
}

/// A transaction that deletes the table (which must exist).
pub fn delete_script() -> String {
    format!("delete table {TABLE_FAMILY} {TABLE_NAME}\n")
}

fn write_elements<'a>(
    out: &mut String,
    verb: &str,
    set: SetId,
    members: impl Iterator<Item = &'a String>,
) {
    let _ = write!(out, "{verb} element {TABLE_FAMILY} {TABLE_NAME} {set} {{ ");
    for (i, member) in members.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(member);
    }
    out.push_str(" }\n");
}

fn chains(cluster_cidrs: &BTreeMap<Family, Vec<IpNet>>) -> Vec<Chain> {
    let mut input = Vec::new();
    let mut mark = Vec::new();
    let mut postrouting = vec![(
        format!(
            "meta mark & {MASQUERADE_MARK:#x} == {MASQUERADE_MARK:#x} \
             meta mark set meta mark & {:#x} masquerade",
            !MASQUERADE_MARK
        ),
        "masquerade marked service traffic",
    )];
    for family in Family::ALL {
        let ip = ip_keyword(family);
        let s = suffix(family);
        let key = format!("{ip} daddr . meta l4proto . th dport");
        input.push((
            format!("{key} @source-filtered-{s} {key} . {ip} saddr != @source-allowed-{s} drop"),
            "loadBalancerSourceRanges",
        ));
        input.push((
            format!("ct state new {ip} daddr @vips-{s} {key} != @services-{s} reject"),
            "reject ports of service addresses that no virtual service has",
        ));
        let set_mark = format!("meta mark set meta mark | {MASQUERADE_MARK:#x}");
        mark.push((
            format!("{key} @masquerade-{s} {set_mark}"),
            "always masqueraded services",
        ));
        if let Some(cidrs) = cluster_cidrs.get(&family) {
            let list: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
            mark.push((
                format!(
                    "{key} @masquerade-off-cluster-{s} {ip} saddr != {{ {} }} {set_mark}",
                    list.join(", ")
                ),
                "traffic from outside --cluster-cidr",
            ));
        }
        mark.push((
            format!("{ip} saddr @vips-{s} {key} @services-{s} {set_mark}"),
            "node traffic from a service address",
        ));
        postrouting.push((
            format!("{ip} saddr . {ip} daddr @hairpin-{s} masquerade"),
            "hairpin: an endpoint reaching itself through a service",
        ));
    }
    vec![
        Chain {
            name: "filter-input",
            // Before IPVS, which takes packets for virtual services at LOCAL_IN priority 99.
            base: Some("type filter hook input priority filter; policy accept;"),
            rules: input,
        },
        Chain {
            name: "nat-prerouting",
            base: Some("type nat hook prerouting priority dstnat; policy accept;"),
            rules: vec![("jump mark-for-masquerade".into(), "service traffic")],
        },
        Chain {
            name: "nat-output",
            base: Some("type nat hook output priority -100; policy accept;"),
            rules: vec![("jump mark-for-masquerade".into(), "node service traffic")],
        },
        Chain {
            name: "mark-for-masquerade",
            base: None,
            rules: mark,
        },
        Chain {
            name: "nat-postrouting",
            base: Some("type nat hook postrouting priority srcnat; policy accept;"),
            rules: postrouting,
        },
    ]
}

/// 64-bit FNV-1a: a stable fingerprint (the standard library's hasher may change between
/// releases, and the fingerprint outlives the process in the kernel).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The table as the kernel holds it, read from `nft -j list table inet svcplane-ipvs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Elements of the sets this layout knows (sets of other names are ignored).
    pub elements: Elements,
    /// Rule comments, in listing order.
    pub rule_comments: Vec<String>,
    /// Names of the sets found.
    pub sets: BTreeSet<String>,
}

impl Listing {
    /// Whether the rules and sets are those of `layout` (element contents aside).
    pub fn matches(&self, layout: &TableLayout) -> bool {
        let mut found = self.rule_comments.clone();
        let mut wanted = layout.rule_comments();
        found.sort();
        wanted.sort();
        let sets: BTreeSet<String> = SetId::all().map(SetId::name).collect();
        found == wanted && self.sets == sets
    }
}

/// An `nft -j` listing that is not what this code writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nft -j list table {TABLE_FAMILY} {TABLE_NAME}: {0}")]
pub struct ListingError(pub String);

/// Reads the JSON listing of the table: elements of known sets in canonical text, and rule
/// comments.
pub fn parse_listing(json: &serde_json::Value) -> Result<Listing, ListingError> {
    let objects = json
        .get("nftables")
        .and_then(|v| v.as_array())
        .ok_or_else(|| ListingError("no \"nftables\" array".into()))?;
    let mut listing = Listing::default();
    for object in objects {
        if let Some(set) = object.get("set") {
            let name = set
                .get("name")
                .and_then(|v| v.as_str())
                .ok_or_else(|| ListingError("a set without a name".into()))?;
            listing.sets.insert(name.to_string());
            let Some(id) = SetId::from_name(name) else {
                continue;
            };
            let members = listing.elements.entry(id).or_default();
            let parts = id.key_parts();
            for elem in set
                .get("elem")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                let text = element_text(elem, &parts)
                    .map_err(|e| ListingError(format!("set {name}: element {elem}: {e}")))?;
                members.insert(text);
            }
        } else if let Some(rule) = object.get("rule") {
            if let Some(comment) = rule.get("comment").and_then(|v| v.as_str()) {
                listing.rule_comments.push(comment.to_string());
            } else {
                listing.rule_comments.push(String::new());
            }
        }
    }
    Ok(listing)
}

/// One element value in canonical text; `parts` are the key's types.
fn element_text(value: &serde_json::Value, parts: &[&str]) -> Result<String, String> {
    use serde_json::Value;
    let part = parts.first().copied().unwrap_or_default();
    match value {
        Value::String(s) if part == "inet_proto" => protocol_name(s),
        Value::Number(n) if part == "inet_proto" => protocol_name(&n.to_string()),
        Value::String(s) => Ok(match s.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => s.clone(),
        }),
        Value::Number(n) => Ok(n.to_string()),
        Value::Object(map) => {
            if let Some(values) = map.get("concat").and_then(|v| v.as_array()) {
                if values.len() != parts.len() {
                    return Err(format!(
                        "{} parts, the set's key has {}",
                        values.len(),
                        parts.len()
                    ));
                }
                let texts: Result<Vec<String>, String> = values
                    .iter()
                    .zip(parts)
                    .map(|(v, part)| element_text(v, std::slice::from_ref(part)))
                    .collect();
                return Ok(texts?.join(" . "));
            }
            if let Some(prefix) = map.get("prefix") {
                let addr = prefix
                    .get("addr")
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .ok_or("prefix without an address")?;
                let len = prefix
                    .get("len")
                    .and_then(|v| v.as_u64())
                    .and_then(|l| u8::try_from(l).ok())
                    .ok_or("prefix without a length")?;
                let net = IpNet::new(addr, len).map_err(|e| e.to_string())?;
                return Ok(prefix_text(net));
            }
            if let Some(range) = map.get("range").and_then(|v| v.as_array()) {
                let ends: Result<Vec<String>, String> =
                    range.iter().map(|end| element_text(end, parts)).collect();
                return Ok(ends?.join("-"));
            }
            if let Some(inner) = map.get("elem").and_then(|e| e.get("val")) {
                return element_text(inner, parts);
            }
            Err("unknown element form".into())
        }
        other => Err(format!("unexpected value {other}")),
    }
}

/// nft lists a protocol by name when the machine has `/etc/protocols`, by number otherwise.
fn protocol_name(text: &str) -> Result<String, String> {
    Ok(match text {
        "tcp" | "6" => "tcp",
        "udp" | "17" => "udp",
        "sctp" | "132" => "sctp",
        other => return Err(format!("protocol {other:?} is not tcp, udp or sctp")),
    }
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(set: SetKind) -> SetId {
        SetId {
            kind: set,
            family: Family::IPv4,
        }
    }

    #[test]
    fn elements_are_written_as_nft_reads_them() {
        let vip: IpAddr = "10.96.0.10".parse().unwrap();
        assert_eq!(
            service_element(vip, Protocol::Udp, 53),
            "10.96.0.10 . udp . 53"
        );
        assert_eq!(
            service_element("fd00::a".parse().unwrap(), Protocol::Sctp, 9),
            "fd00::a . sctp . 9"
        );
        assert_eq!(
            hairpin_element("10.244.1.2".parse().unwrap()),
            "10.244.1.2 . 10.244.1.2"
        );
        // Ranges are truncated to their network; a host range is a plain address, as nft lists it.
        assert_eq!(
            source_allowed_element(vip, Protocol::Tcp, 80, "192.168.7.9/16".parse().unwrap()),
            "10.96.0.10 . tcp . 80 . 192.168.0.0/16"
        );
        assert_eq!(
            source_allowed_element(vip, Protocol::Tcp, 80, "10.1.2.3/32".parse().unwrap()),
            "10.96.0.10 . tcp . 80 . 10.1.2.3"
        );
    }

    /// What `nft -j list table` (nftables 1.0.6) printed for a table of this layout, trimmed.
    const LISTING: &str = r#"{"nftables": [
      {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
      {"table": {"family": "inet", "name": "svcplane-ipvs", "handle": 2}},
      {"set": {"family": "inet", "name": "services-v4", "table": "svcplane-ipvs", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 6, "elem": [{"concat": ["10.96.0.10", "udp", 53]}, {"concat": ["10.96.0.10", "tcp", 80]}]}},
      {"set": {"family": "inet", "name": "services-v6", "table": "svcplane-ipvs", "type": ["ipv6_addr", "inet_proto", "inet_service"], "handle": 7, "elem": [{"concat": ["fd00::10", "tcp", 80]}]}},
      {"set": {"family": "inet", "name": "vips-v4", "table": "svcplane-ipvs", "type": "ipv4_addr", "handle": 8, "elem": ["10.96.0.10"]}},
      {"set": {"family": "inet", "name": "source-allowed-v4", "table": "svcplane-ipvs", "type": ["ipv4_addr", "inet_proto", "inet_service", "ipv4_addr"], "handle": 10, "flags": ["interval"], "elem": [{"concat": ["10.0.0.1", "tcp", 80, {"prefix": {"addr": "192.168.0.0", "len": 16}}]}, {"concat": ["10.0.0.1", "tcp", 80, "10.1.2.3"]}, {"concat": ["10.0.0.2", "tcp", 80, {"prefix": {"addr": "0.0.0.0", "len": 0}}]}]}},
      {"set": {"family": "inet", "name": "somebody-elses", "table": "svcplane-ipvs", "type": "ipv4_addr", "handle": 12}},
      {"chain": {"family": "inet", "table": "svcplane-ipvs", "name": "filter-input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "svcplane-ipvs", "chain": "filter-input", "handle": 20, "expr": [], "comment": "svcplane: x [00]"}},
      {"rule": {"family": "inet", "table": "svcplane-ipvs", "chain": "filter-input", "handle": 21, "expr": []}}
    ]}"#;

    #[test]
    fn a_listing_reads_back_in_the_canonical_element_text() {
        let json: serde_json::Value = serde_json::from_str(LISTING).unwrap();
        let listing = parse_listing(&json).unwrap();
        let services = &listing.elements[&v4(SetKind::Services)];
        assert_eq!(
            services.iter().cloned().collect::<Vec<_>>(),
            vec!["10.96.0.10 . tcp . 80", "10.96.0.10 . udp . 53"]
        );
        let allowed = &listing.elements[&v4(SetKind::SourceAllowed)];
        let vip: IpAddr = "10.0.0.1".parse().unwrap();
        for range in ["192.168.0.0/16", "10.1.2.3/32"] {
            let written = source_allowed_element(vip, Protocol::Tcp, 80, range.parse().unwrap());
            assert!(allowed.contains(&written), "{written} in {allowed:?}");
        }
        assert!(allowed.contains("10.0.0.2 . tcp . 80 . 0.0.0.0/0"));
        assert_eq!(
            listing.elements[&v4(SetKind::Vips)],
            BTreeSet::from(["10.96.0.10".to_string()])
        );
        assert!(listing.sets.contains("somebody-elses"));
        assert_eq!(
            listing.rule_comments,
            vec!["svcplane: x [00]".to_string(), String::new()]
        );
    }

    /// Without `/etc/protocols` (the test VM), nft lists protocols by number.
    #[test]
    fn protocols_listed_by_number_read_as_names() {
        let json = serde_json::json!({"nftables": [
            {"set": {"name": "masquerade-v4", "elem": [{"concat": ["10.96.0.10", 1, 53]}]}}
        ]});
        let err = parse_listing(&json).unwrap_err();
        assert!(err.to_string().contains("masquerade-v4"), "{err}");
        let json = serde_json::json!({"nftables": [
            {"set": {"name": "services-v4", "elem": [{"concat": ["10.96.0.10", 17, 53]}]}},
            {"set": {"name": "source-allowed-v6", "elem": [
                {"concat": ["fd00::1", "132", 9, {"prefix": {"addr": "fd00:1::", "len": 64}}]}]}}
        ]});
        let listing = parse_listing(&json).unwrap();
        assert!(listing.elements[&v4(SetKind::Services)].contains("10.96.0.10 . udp . 53"));
        let v6 = SetId {
            kind: SetKind::SourceAllowed,
            family: Family::IPv6,
        };
        assert!(listing.elements[&v6].contains("fd00::1 . sctp . 9 . fd00:1::/64"));
    }

    #[test]
    fn a_listing_of_other_rules_or_sets_does_not_match_the_layout() {
        let layout = TableLayout::new(&[]);
        let json: serde_json::Value = serde_json::from_str(LISTING).unwrap();
        assert!(!parse_listing(&json).unwrap().matches(&layout));
        let exact = Listing {
            elements: Elements::new(),
            rule_comments: layout.rule_comments(),
            sets: SetId::all().map(SetId::name).collect(),
        };
        assert!(exact.matches(&layout));
        // Another --cluster-cidr is another declaration: every comment changes.
        let other = TableLayout::new(&["10.244.0.0/16".parse().unwrap()]);
        assert_ne!(layout.fingerprint(), other.fingerprint());
        assert!(!exact.matches(&other));
    }

    #[test]
    fn malformed_listings_are_errors_naming_the_set() {
        let bad = serde_json::json!({"nftables": [{"set": {"name": "vips-v4", "elem": [true]}}]});
        let err = parse_listing(&bad).unwrap_err();
        assert!(err.to_string().contains("vips-v4"), "{err}");
        assert!(parse_listing(&serde_json::json!({})).is_err());
    }

    #[test]
    fn off_cluster_masquerade_has_a_rule_only_with_cluster_cidrs_of_the_family() {
        let layout = TableLayout::new(&["10.244.0.0/16".parse().unwrap()]);
        assert!(layout.masquerades_off_cluster(Family::IPv4));
        assert!(!layout.masquerades_off_cluster(Family::IPv6));
        let script = layout.replace_script(&Elements::new());
        assert!(script.contains("@masquerade-off-cluster-v4 ip saddr != { 10.244.0.0/16 }"));
        assert!(!script.contains("@masquerade-off-cluster-v6 ip6 saddr"));
        let none = TableLayout::new(&[]).replace_script(&Elements::new());
        assert!(!none.contains("saddr != {"));
    }

    #[test]
    fn replace_script_recreates_the_table_atomically_with_its_elements() {
        let layout = TableLayout::new(&[]);
        let mut elements = Elements::new();
        elements
            .entry(v4(SetKind::Vips))
            .or_default()
            .extend(["10.96.0.1".to_string(), "10.96.0.2".to_string()]);
        elements.insert(v4(SetKind::Hairpin), BTreeSet::new());
        let script = layout.replace_script(&elements);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], "table inet svcplane-ipvs {}");
        assert_eq!(lines[1], "delete table inet svcplane-ipvs");
        assert!(script.contains("add element inet svcplane-ipvs vips-v4 { 10.96.0.1, 10.96.0.2 }"));
        assert!(
            !script.contains("hairpin-v4 { "),
            "empty sets get no element statement"
        );
        for comment in layout.rule_comments() {
            assert!(
                script.contains(&format!("comment \"{comment}\"")),
                "{comment}"
            );
        }
    }

    #[test]
    fn element_changes_are_grouped_by_set_adds_first() {
        let adds = vec![
            (v4(SetKind::Services), "10.96.0.1 . tcp . 80".to_string()),
            (v4(SetKind::Services), "10.96.0.1 . tcp . 443".to_string()),
        ];
        let deletes = vec![(v4(SetKind::Vips), "10.96.0.9".to_string())];
        assert_eq!(
            elements_script(&adds, &deletes),
            "add element inet svcplane-ipvs services-v4 { 10.96.0.1 . tcp . 80, 10.96.0.1 . tcp . 443 }\n\
             delete element inet svcplane-ipvs vips-v4 { 10.96.0.9 }\n"
        );
        assert_eq!(elements_script(&[], &[]), "");
    }
}
