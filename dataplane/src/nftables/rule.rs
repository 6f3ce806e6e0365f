//! The shapes of rules this backend writes, each one line of `nft` syntax. A rule is encoded
//! into kernel expressions for the netlink batch and printed as `nft` text for logs, tests and
//! the benchmark's baseline file; both come from the same value.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::expr::{self, VerdictCode, REG32_00, REG_1, REG_2, REG_VERDICT};
use super::names::Name;
use super::slots::SLOTS;
use super::wire::Writer;
use crate::model::{Family, Protocol};

/// The mark bit that asks `masquerading` to SNAT a packet (kube-proxy's `--masquerade-bit`
/// default, 14).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// `RTN_LOCAL`, the `fib ... type` of a local address.
const RTN_LOCAL: u32 = 2;
/// `NF_CT_STATE_BIT(IP_CT_NEW)`.
const CT_STATE_NEW: u32 = 8;
/// `IPS_DST_NAT` (`ct status dnat`).
const IPS_DST_NAT: u32 = 0x20;

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `ip daddr . meta l4proto . th dport vmap @MAP`.
    DestinationVmap {
        /// A destination map.
        map: Name,
    },
    /// `ip daddr @ADDRESSES meta l4proto . th dport vmap @MAP`.
    NodePortVmap {
        /// The set of addresses NodePorts listen on.
        addresses: Name,
        /// A NodePort map.
        map: Name,
    },
    /// `[ct state new] jump CHAIN`.
    Jump {
        /// The chain.
        chain: Name,
        /// Only for the first packet of a connection.
        new_only: bool,
    },
    /// `meta mark set mark or 0x4000`.
    Mark,
    /// `ct status dnat ip saddr . ip daddr @SET meta mark set mark or 0x4000` (hairpin: an
    /// endpoint that reached itself through a Service; SET holds `endpoint . endpoint`).
    MarkHairpin {
        /// The address-pair set.
        set: Name,
    },
    /// `fib saddr type local meta mark set mark or 0x4000`.
    MarkFromLocal,
    /// `ip saddr NET return`.
    ReturnFromSource(IpNet),
    /// `drop`.
    Drop,
    /// `meta mark & 0x4000 == 0 return`.
    ReturnUnlessMarked,
    /// `meta mark set mark xor 0x4000`.
    Unmark,
    /// `masquerade fully-random`.
    Masquerade,
    /// `meta l4proto tcp reject with tcp reset`.
    RejectTcp,
    /// `reject` (ICMP or ICMPv6 port unreachable).
    RejectUnreachable,
    /// `ip daddr @SET goto CHAIN`.
    GotoIfDestinationIn {
        /// An address set.
        set: Name,
        /// The chain.
        chain: Name,
    },
    /// `ip saddr @SET goto CHAIN`: a client stuck to an endpoint.
    GotoIfAffine {
        /// The endpoint's affinity set.
        set: Name,
        /// The endpoint's chain.
        chain: Name,
    },
    /// `update @SET { ip saddr }`.
    UpdateAffinity {
        /// The endpoint's affinity set.
        set: Name,
    },
    /// `numgen random mod M 0 goto CHAIN`, or `goto CHAIN` when `modulus` is 1: the i-th of N
    /// such rules (modulus N−i) picks each endpoint with probability 1/N.
    GotoOneIn {
        /// The modulus.
        modulus: u32,
        /// The endpoint's chain.
        chain: Name,
    },
    /// `numgen random mod N vmap @MAP`.
    NumgenVmap {
        /// Number of endpoints.
        modulus: u32,
        /// Index → endpoint chain.
        map: Name,
    },
    /// `meta l4proto PROTOCOL dnat ip to numgen random mod SLOTS map @MAP`: the endpoint
    /// whose slot range holds a random slot ([`super::slots`]).
    DnatToSlot {
        /// The Service port's protocol.
        protocol: Protocol,
        /// Slot range → `address . port`.
        map: Name,
    },
    /// `meta l4proto PROTOCOL dnat to ADDRESS:PORT`.
    Dnat {
        /// The Service port's protocol.
        protocol: Protocol,
        /// Endpoint address.
        address: IpAddr,
        /// Endpoint port.
        port: u16,
    },
}

/// `IPPROTO_*` of a Service protocol.
pub fn ip_proto(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// The `nft` keyword of a family (`ip`, `ip6`).
pub fn family_keyword(family: Family) -> &'static str {
    match family {
        Family::IPv4 => "ip",
        Family::IPv6 => "ip6",
    }
}

fn addr_bytes(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Offset and length of the source (or destination) address in the network header.
fn address_field(family: Family, source: bool) -> (u32, u32) {
    match (family, source) {
        (Family::IPv4, true) => (12, 4),
        (Family::IPv4, false) => (16, 4),
        (Family::IPv6, true) => (8, 16),
        (Family::IPv6, false) => (24, 16),
    }
}

fn load_address(w: &mut Writer, family: Family, source: bool, dreg: u32) {
    let (offset, len) = address_field(family, source);
    expr::payload(w, dreg, expr::NETWORK_HEADER, offset, len);
}

fn set_mark(w: &mut Writer) {
    expr::meta_load(w, REG_1, expr::META_MARK);
    expr::bitwise(
        w,
        REG_1,
        REG_1,
        &(!MASQUERADE_MARK).to_ne_bytes(),
        &MASQUERADE_MARK.to_ne_bytes(),
    );
    expr::meta_set(w, expr::META_MARK, REG_1);
}

/// `NFPROTO_IPV4` / `NFPROTO_IPV6`.
fn nfproto(family: Family) -> u32 {
    match family {
        Family::IPv4 => 2,
        Family::IPv6 => 10,
    }
}

/// The 4-byte register after an address of `family` loaded into `REG_1`.
fn reg_after_address(family: Family) -> u32 {
    match family {
        Family::IPv4 => REG32_00 + 1,
        Family::IPv6 => REG32_00 + 4,
    }
}

impl Rule {
    /// Appends the rule's expressions (the contents of `NFTA_RULE_EXPRESSIONS`).
    pub fn encode(&self, family: Family, w: &mut Writer) {
        match self {
            Rule::DestinationVmap { map } => {
                load_address(w, family, false, REG_1);
                let next = reg_after_address(family);
                expr::meta_load(w, next, expr::META_L4PROTO);
                expr::payload(w, next + 1, expr::TRANSPORT_HEADER, 2, 2);
                expr::lookup(w, map, REG_1, Some(REG_VERDICT));
            }
            Rule::NodePortVmap { addresses, map } => {
                load_address(w, family, false, REG_1);
                expr::lookup(w, addresses, REG_1, None);
                expr::meta_load(w, REG_1, expr::META_L4PROTO);
                expr::payload(w, REG32_00 + 1, expr::TRANSPORT_HEADER, 2, 2);
                expr::lookup(w, map, REG_1, Some(REG_VERDICT));
            }
            Rule::Jump { chain, new_only } => {
                if *new_only {
                    expr::ct_state(w, REG_1);
                    expr::bitwise(w, REG_1, REG_1, &CT_STATE_NEW.to_ne_bytes(), &[0; 4]);
                    expr::cmp(w, REG_1, expr::CMP_NEQ, &[0; 4]);
                }
                expr::verdict(w, VerdictCode::Jump, Some(chain));
            }
            Rule::Mark => set_mark(w),
            Rule::MarkHairpin { set } => {
                expr::ct_status(w, REG_1);
                expr::bitwise(w, REG_1, REG_1, &IPS_DST_NAT.to_ne_bytes(), &[0; 4]);
                expr::cmp(w, REG_1, expr::CMP_NEQ, &[0; 4]);
                load_address(w, family, true, REG_1);
                load_address(w, family, false, reg_after_address(family));
                expr::lookup(w, set, REG_1, None);
                set_mark(w);
            }
            Rule::MarkFromLocal => {
                expr::fib_addrtype(w, REG_1, true);
                expr::cmp(w, REG_1, expr::CMP_EQ, &RTN_LOCAL.to_ne_bytes());
                set_mark(w);
            }
            Rule::ReturnFromSource(net) => {
                if net.prefix_len() > 0 {
                    load_address(w, family, true, REG_1);
                    if net.prefix_len() < net.max_prefix_len() {
                        let mask = addr_bytes(net.netmask());
                        let zero = vec![0; mask.len()];
                        expr::bitwise(w, REG_1, REG_1, &mask, &zero);
                    }
                    expr::cmp(w, REG_1, expr::CMP_EQ, &addr_bytes(net.network()));
                }
                expr::verdict(w, VerdictCode::Return, None);
            }
            Rule::Drop => expr::verdict(w, VerdictCode::Drop, None),
            Rule::ReturnUnlessMarked => {
                expr::meta_load(w, REG_1, expr::META_MARK);
                expr::bitwise(w, REG_1, REG_1, &MASQUERADE_MARK.to_ne_bytes(), &[0; 4]);
                expr::cmp(w, REG_1, expr::CMP_EQ, &[0; 4]);
                expr::verdict(w, VerdictCode::Return, None);
            }
            Rule::Unmark => {
                expr::meta_load(w, REG_1, expr::META_MARK);
                expr::bitwise(
                    w,
                    REG_1,
                    REG_1,
                    &u32::MAX.to_ne_bytes(),
                    &MASQUERADE_MARK.to_ne_bytes(),
                );
                expr::meta_set(w, expr::META_MARK, REG_1);
            }
            Rule::Masquerade => expr::masquerade_fully_random(w),
            Rule::RejectTcp => {
                expr::meta_load(w, REG_1, expr::META_L4PROTO);
                expr::cmp(w, REG_1, expr::CMP_EQ, &[ip_proto(Protocol::Tcp)]);
                expr::reject(w, 1, 0);
            }
            Rule::RejectUnreachable => {
                // ICMP_PORT_UNREACH (3) / ICMPV6_PORT_UNREACH (4).
                let code = match family {
                    Family::IPv4 => 3,
                    Family::IPv6 => 4,
                };
                expr::reject(w, 0, code);
            }
            Rule::GotoIfDestinationIn { set, chain } => {
                load_address(w, family, false, REG_1);
                expr::lookup(w, set, REG_1, None);
                expr::verdict(w, VerdictCode::Goto, Some(chain));
            }
            Rule::GotoIfAffine { set, chain } => {
                load_address(w, family, true, REG_1);
                expr::lookup(w, set, REG_1, None);
                expr::verdict(w, VerdictCode::Goto, Some(chain));
            }
            Rule::UpdateAffinity { set } => {
                load_address(w, family, true, REG_1);
                expr::dynset_update(w, set, REG_1);
            }
            Rule::GotoOneIn { modulus, chain } => {
                if *modulus > 1 {
                    expr::numgen_random(w, REG_1, *modulus);
                    expr::cmp(w, REG_1, expr::CMP_EQ, &[0; 4]);
                }
                expr::verdict(w, VerdictCode::Goto, Some(chain));
            }
            Rule::NumgenVmap { modulus, map } => {
                expr::numgen_random(w, REG_1, *modulus);
                expr::lookup(w, map, REG_1, Some(REG_VERDICT));
            }
            Rule::DnatToSlot { protocol, map } => {
                expr::meta_load(w, REG_1, expr::META_L4PROTO);
                expr::cmp(w, REG_1, expr::CMP_EQ, &[ip_proto(*protocol)]);
                expr::numgen_random(w, REG_1, SLOTS);
                expr::hton32(w, REG_1);
                // The value is `address . port`: the address from REG_1 on, the port in the
                // 4-byte register after it (as `nft` loads a concatenation).
                expr::lookup(w, map, REG_1, Some(REG_1));
                expr::dnat(w, nfproto(family), REG_1, reg_after_address(family));
            }
            Rule::Dnat {
                protocol,
                address,
                port,
            } => {
                expr::meta_load(w, REG_1, expr::META_L4PROTO);
                expr::cmp(w, REG_1, expr::CMP_EQ, &[ip_proto(*protocol)]);
                expr::immediate(w, REG_1, &addr_bytes(*address));
                expr::immediate(w, REG_2, &port.to_be_bytes());
                expr::dnat(w, nfproto(family), REG_1, REG_2);
            }
        }
    }

    /// The rule in `nft` syntax for `family`.
    pub fn text(&self, family: Family) -> RuleText<'_> {
        RuleText { rule: self, family }
    }
}

/// A rule printed in `nft` syntax.
pub struct RuleText<'a> {
    rule: &'a Rule,
    family: Family,
}

impl fmt::Display for RuleText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = family_keyword(self.family);
        let mark = format!("meta mark set mark or {MASQUERADE_MARK:#x}");
        match self.rule {
            Rule::DestinationVmap { map } => {
                write!(f, "{ip} daddr . meta l4proto . th dport vmap @{map}")
            }
            Rule::NodePortVmap { addresses, map } => write!(
                f,
                "{ip} daddr @{addresses} meta l4proto . th dport vmap @{map}"
            ),
            Rule::Jump { chain, new_only } => {
                if *new_only {
                    f.write_str("ct state new ")?;
                }
                write!(f, "jump {chain}")
            }
            Rule::Mark => f.write_str(&mark),
            Rule::MarkHairpin { set } => {
                write!(f, "ct status dnat {ip} saddr . {ip} daddr @{set} {mark}")
            }
            Rule::MarkFromLocal => write!(f, "fib saddr type local {mark}"),
            Rule::ReturnFromSource(net) if net.prefix_len() == 0 => f.write_str("return"),
            Rule::ReturnFromSource(net) => write!(f, "{ip} saddr {net} return"),
            Rule::Drop => f.write_str("drop"),
            Rule::ReturnUnlessMarked => {
                write!(f, "meta mark & {MASQUERADE_MARK:#x} == 0 return")
            }
            Rule::Unmark => write!(f, "meta mark set mark xor {MASQUERADE_MARK:#x}"),
            Rule::Masquerade => f.write_str("masquerade fully-random"),
            Rule::RejectTcp => f.write_str("meta l4proto tcp reject with tcp reset"),
            Rule::RejectUnreachable => f.write_str("reject"),
            Rule::GotoIfDestinationIn { set, chain } => {
                write!(f, "{ip} daddr @{set} goto {chain}")
            }
            Rule::GotoIfAffine { set, chain } => write!(f, "{ip} saddr @{set} goto {chain}"),
            Rule::UpdateAffinity { set } => write!(f, "update @{set} {{ {ip} saddr }}"),
            Rule::GotoOneIn { modulus, chain } if *modulus <= 1 => write!(f, "goto {chain}"),
            Rule::GotoOneIn { modulus, chain } => {
                write!(f, "numgen random mod {modulus} 0 goto {chain}")
            }
            Rule::NumgenVmap { modulus, map } => {
                write!(f, "numgen random mod {modulus} vmap @{map}")
            }
            Rule::DnatToSlot { protocol, map } => {
                let proto = protocol.as_str().to_ascii_lowercase();
                write!(
                    f,
                    "meta l4proto {proto} dnat {ip} to numgen random mod {SLOTS} map @{map}"
                )
            }
            Rule::Dnat {
                protocol,
                address,
                port,
            } => {
                let proto = protocol.as_str().to_ascii_lowercase();
                match address {
                    IpAddr::V4(a) => write!(f, "meta l4proto {proto} dnat to {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "meta l4proto {proto} dnat to [{a}]:{port}"),
                }
            }
        }
    }
}

/// A stable 64-bit fingerprint of encoded bytes (FNV-1a): it is written into each rule's
/// user data, so a later dump tells whether the kernel still holds the rule we wrote.
pub fn fingerprint(family: Family, encoded: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(match family {
        Family::IPv4 => 4,
        Family::IPv6 => 6,
    });
    for b in encoded {
        eat(*b);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rules_print_as_nft_syntax() {
        let chain: Name = Arc::from("endpoint-X-ns/s/tcp/__10.0.0.1/80");
        let cases: Vec<(Rule, Family, &str)> = vec![
            (
                Rule::DestinationVmap {
                    map: Arc::from("service-ips"),
                },
                Family::IPv6,
                "ip6 daddr . meta l4proto . th dport vmap @service-ips",
            ),
            (
                Rule::GotoOneIn {
                    modulus: 3,
                    chain: chain.clone(),
                },
                Family::IPv4,
                "numgen random mod 3 0 goto endpoint-X-ns/s/tcp/__10.0.0.1/80",
            ),
            (
                Rule::GotoOneIn {
                    modulus: 1,
                    chain: chain.clone(),
                },
                Family::IPv4,
                "goto endpoint-X-ns/s/tcp/__10.0.0.1/80",
            ),
            (
                Rule::Dnat {
                    protocol: Protocol::Udp,
                    address: "fd00::5".parse().unwrap(),
                    port: 53,
                },
                Family::IPv6,
                "meta l4proto udp dnat to [fd00::5]:53",
            ),
            (
                Rule::ReturnFromSource("10.0.0.0/8".parse().unwrap()),
                Family::IPv4,
                "ip saddr 10.0.0.0/8 return",
            ),
            (
                Rule::MarkHairpin {
                    set: Arc::from("hairpin"),
                },
                Family::IPv4,
                "ct status dnat ip saddr . ip daddr @hairpin meta mark set mark or 0x4000",
            ),
            (
                Rule::DnatToSlot {
                    protocol: Protocol::Tcp,
                    map: Arc::from("service-X"),
                },
                Family::IPv6,
                "meta l4proto tcp dnat ip6 to numgen random mod 720720 map @service-X",
            ),
        ];
        for (rule, family, text) in cases {
            assert_eq!(rule.text(family).to_string(), text);
        }
    }

    #[test]
    fn fingerprints_differ_by_family_and_content() {
        let mut a = Writer::new();
        Rule::Drop.encode(Family::IPv4, &mut a);
        let mut b = Writer::new();
        Rule::Mark.encode(Family::IPv4, &mut b);
        assert_ne!(
            fingerprint(Family::IPv4, a.bytes()),
            fingerprint(Family::IPv4, b.bytes())
        );
        assert_ne!(
            fingerprint(Family::IPv4, a.bytes()),
            fingerprint(Family::IPv6, a.bytes())
        );
    }
}
