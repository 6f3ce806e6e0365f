//! The objects of our tables besides rules: chains (regular and base), sets and maps, their
//! element keys and values, and how each is written on the wire.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::rule::{family_keyword, ip_proto, Rule};
use crate::model::{Family, Protocol};

pub use super::names::Name;

/// Our table's name in both families.
pub const TABLE: &str = "svcplane";

/// The netfilter hook of a base chain (`NF_INET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `NF_INET_PRE_ROUTING`.
    Prerouting,
    /// `NF_INET_LOCAL_IN`.
    Input,
    /// `NF_INET_FORWARD`.
    Forward,
    /// `NF_INET_LOCAL_OUT`.
    Output,
    /// `NF_INET_POST_ROUTING`.
    Postrouting,
}

impl Hook {
    /// `NF_INET_*` value.
    pub fn number(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// What a base chain does: filter or NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    /// `type filter`.
    Filter,
    /// `type nat`.
    Nat,
}

impl ChainType {
    /// The kernel's and `nft`'s name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// How a base chain hooks into netfilter. Priorities are numbers: Debian 12's `nft` 1.0.6
/// refuses names such as `dstnat` in some hooks, and the kernel only knows numbers anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    /// Filter or NAT.
    pub kind: ChainType,
    /// The hook.
    pub hook: Hook,
    /// The priority (`NF_IP_PRI_NAT_DST` is -100, `NF_IP_PRI_NAT_SRC` 100).
    pub priority: i32,
}

/// A chain and the rules it must hold, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    /// The name.
    pub name: Name,
    /// Hook, for a base chain.
    pub base: Option<BaseChain>,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// What a set or map holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    /// `ipv4_addr . inet_proto . inet_service : verdict` (ClusterIPs, external IPs, LB IPs).
    DestinationMap,
    /// `inet_proto . inet_service : verdict` (NodePorts).
    NodePortMap,
    /// `ipv4_addr` (or `ipv6_addr`).
    Addresses,
    /// Client addresses with a timeout, filled by the packet path (`sessionAffinity`).
    Affinity {
        /// `sessionAffinityConfig.clientIP.timeoutSeconds`.
        timeout_seconds: u32,
    },
    /// `numgen` result → endpoint chain, for Service ports with ClientIP affinity and many
    /// endpoints.
    SlotMap,
    /// Slot range (`numgen random mod SLOTS`, [`super::slots`]) → `address . port`: an
    /// interval map whose elements carry no verdict, so rewriting them costs the kernel no
    /// validation of the table.
    Targets,
    /// `address . address` pairs (hairpin: an endpoint reaching itself through a Service).
    AddressPairs,
}

impl SetKind {
    /// Whether the set is a verdict map.
    pub fn is_map(self) -> bool {
        matches!(
            self,
            SetKind::DestinationMap | SetKind::NodePortMap | SetKind::SlotMap | SetKind::Targets
        )
    }

    /// Whether the packet path adds the elements (we never list or diff them).
    pub fn is_dynamic(self) -> bool {
        matches!(self, SetKind::Affinity { .. })
    }
}

/// A set or map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    /// The name.
    pub name: Name,
    /// What it holds.
    pub kind: SetKind,
}

/// `nft`'s data type numbers (`enum datatypes` in nftables' `datatype.h`), which `nft list`
/// uses to print keys; the kernel only stores them.
const TYPE_INTEGER: u32 = 4;
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_MARK: u32 = 19;
/// Bits per component of a concatenated type (`TYPE_BITS`).
const TYPE_BITS: u32 = 6;

/// `NFT_SET_INTERVAL`.
pub const SET_F_INTERVAL: u32 = 0x4;
/// `NFT_SET_MAP`.
pub const SET_F_MAP: u32 = 0x8;
/// `NFT_SET_TIMEOUT`.
pub const SET_F_TIMEOUT: u32 = 0x10;
/// `NFT_SET_EVAL` (`dynamic`).
pub const SET_F_EVAL: u32 = 0x20;
/// `NFT_DATA_VERDICT`.
pub const DATA_VERDICT: u32 = 0xffff_ff00;

fn concat(types: &[u32]) -> u32 {
    types.iter().fold(0, |acc, t| (acc << TYPE_BITS) | t)
}

/// The set attributes the kernel checks: flags, key type and length, data type, timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetWire {
    /// `NFTA_SET_FLAGS`.
    pub flags: u32,
    /// `NFTA_SET_KEY_TYPE`.
    pub key_type: u32,
    /// `NFTA_SET_KEY_LEN`.
    pub key_len: u32,
    /// `NFTA_SET_DATA_TYPE`, for maps.
    pub data_type: Option<u32>,
    /// `NFTA_SET_DATA_LEN`, for maps of values (not verdicts).
    pub data_len: Option<u32>,
    /// `NFTA_SET_TIMEOUT` in milliseconds.
    pub timeout_ms: Option<u64>,
}

impl SetKind {
    /// How a set of this kind is declared in `family`.
    pub fn wire(self, family: Family) -> SetWire {
        let (addr_type, addr_len) = match family {
            Family::IPv4 => (TYPE_IPADDR, 4),
            Family::IPv6 => (TYPE_IP6ADDR, 16),
        };
        let map = |key_type, key_len| SetWire {
            flags: SET_F_MAP,
            key_type,
            key_len,
            data_type: Some(DATA_VERDICT),
            data_len: None,
            timeout_ms: None,
        };
        match self {
            SetKind::DestinationMap => map(
                concat(&[addr_type, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE]),
                addr_len + 8,
            ),
            SetKind::NodePortMap => map(concat(&[TYPE_INET_PROTOCOL, TYPE_INET_SERVICE]), 8),
            SetKind::SlotMap => map(TYPE_MARK, 4),
            SetKind::Targets => SetWire {
                flags: SET_F_MAP | SET_F_INTERVAL,
                key_type: TYPE_INTEGER,
                key_len: 4,
                data_type: Some(concat(&[addr_type, TYPE_INET_SERVICE])),
                data_len: Some(addr_len + 4),
                timeout_ms: None,
            },
            SetKind::Addresses => SetWire {
                flags: 0,
                key_type: addr_type,
                key_len: addr_len,
                data_type: None,
                data_len: None,
                timeout_ms: None,
            },
            SetKind::AddressPairs => SetWire {
                flags: 0,
                key_type: concat(&[addr_type, addr_type]),
                key_len: 2 * addr_len,
                data_type: None,
                data_len: None,
                timeout_ms: None,
            },
            SetKind::Affinity { timeout_seconds } => SetWire {
                flags: SET_F_TIMEOUT | SET_F_EVAL,
                key_type: addr_type,
                key_len: addr_len,
                data_type: None,
                data_len: None,
                timeout_ms: Some(u64::from(timeout_seconds) * 1000),
            },
        }
    }

    /// `NFTA_SET_USERDATA`: how `nft` should print and type-check the set. For
    /// [`SetKind::Targets`] these are the bytes `nft` 1.0.6 writes for `typeof numgen random
    /// mod 2 : ip daddr . tcp dport` (libnftnl's `NFTNL_UDATA_SET_*` TLVs, numbers in host
    /// order: written on little-endian hosts only); without them `nft` would list the map as
    /// `type integer`, which it cannot read back.
    pub fn userdata(self, family: Family) -> Option<&'static [u8]> {
        if cfg!(target_endian = "big") || self != SetKind::Targets {
            return None;
        }
        Some(match family {
            Family::IPv4 => &TARGETS_UDATA_V4,
            Family::IPv6 => &TARGETS_UDATA_V6,
        })
    }

    /// The declaration in `nft` syntax (inside `{ }`).
    pub fn text(self, family: Family) -> String {
        let addr = match family {
            Family::IPv4 => "ipv4_addr",
            Family::IPv6 => "ipv6_addr",
        };
        match self {
            SetKind::DestinationMap => {
                format!("type {addr} . inet_proto . inet_service : verdict ;")
            }
            SetKind::NodePortMap => "type inet_proto . inet_service : verdict ;".into(),
            SetKind::SlotMap => "typeof numgen random mod 2 : verdict ;".into(),
            SetKind::Targets => {
                let ip = family_keyword(family);
                format!("typeof numgen random mod 2 : {ip} daddr . tcp dport ; flags interval ;")
            }
            SetKind::Addresses => format!("type {addr} ;"),
            SetKind::AddressPairs => format!("type {addr} . {addr} ;"),
            SetKind::Affinity { timeout_seconds } => {
                format!("type {addr} ; flags dynamic,timeout ; timeout {timeout_seconds}s ;")
            }
        }
    }
}

/// Which boundary of a range a [`Key::SlotEdge`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Edge {
    /// One past the range's last slot.
    End,
    /// The range's first slot.
    Start,
}

/// Key byte order (host), data byte order, then `typeof numgen random mod 2`.
const TARGETS_UDATA_HEAD: [u8; 40] = [
    0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x1a, 0x00, 0x04,
    0x17, 0x00, 0x00, 0x00, 0x01, 0x12, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x00,
    0x00, 0x00, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00,
];

/// `NFTA_SET_USERDATA` of a [`SetKind::Targets`] map: [`TARGETS_UDATA_HEAD`], then
/// `typeof … : FAMILY daddr . tcp dport` (the payload's protocol and field differ per
/// family), then "not an interval value".
const fn targets_udata(payload: [u8; 2]) -> [u8; 100] {
    let tail: [u8; 60] = [
        0x04, 0x34, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x14, 0x00, 0x04, 0x07,
        0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x04, payload[0], 0x00, 0x00, 0x00, 0x01, 0x04,
        payload[1], 0x00, 0x00, 0x00, 0x01, 0x14, 0x00, 0x04, 0x07, 0x00, 0x00, 0x00, 0x01, 0x0c,
        0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00,
        0x00, 0x00, 0x00,
    ];
    let mut out = [0u8; 100];
    let mut i = 0;
    while i < 40 {
        out[i] = TARGETS_UDATA_HEAD[i];
        i += 1;
    }
    while i < 100 {
        out[i] = tail[i - 40];
        i += 1;
    }
    out
}

const TARGETS_UDATA_V4: [u8; 100] = targets_udata([0x0c, 0x0c]);
const TARGETS_UDATA_V6: [u8; 100] = targets_udata([0x0d, 0x09]);

/// A set element's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Address, protocol, port.
    Destination(IpAddr, Protocol, u16),
    /// Protocol and port.
    NodePort(Protocol, u16),
    /// An address.
    Address(IpAddr),
    /// A `numgen` result.
    Slot(u32),
    /// A boundary of a slot range of a [`SetKind::Targets`] map: ranges are a start element
    /// carrying the value and an end element one past their last slot
    /// (`NFT_SET_ELEM_INTERVAL_END`), as `nft` writes them. Keys sort by slot, an end before
    /// a start at the same slot: the order the kernel's interval tree accepts them in.
    SlotEdge(u32, Edge),
    /// `ADDRESS . ADDRESS` in a [`SetKind::AddressPairs`] set: an endpoint as source and
    /// destination of one packet (hairpin).
    Hairpin(IpAddr),
}

fn pad4(bytes: &mut Vec<u8>) {
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
}

fn proto_of(number: u8) -> Option<Protocol> {
    match number {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    }
}

impl Key {
    /// The key as register data: each part of a concatenation padded to 4 bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        let addr = |out: &mut Vec<u8>, a: &IpAddr| match a {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        };
        match self {
            Key::Destination(a, proto, port) => {
                addr(&mut out, a);
                out.push(ip_proto(*proto));
                pad4(&mut out);
                out.extend_from_slice(&port.to_be_bytes());
                pad4(&mut out);
            }
            Key::NodePort(proto, port) => {
                out.push(ip_proto(*proto));
                pad4(&mut out);
                out.extend_from_slice(&port.to_be_bytes());
                pad4(&mut out);
            }
            Key::Address(a) => addr(&mut out, a),
            Key::Slot(i) => out.extend_from_slice(&i.to_ne_bytes()),
            // Interval keys compare as big-endian bytes; the rule turns the slot into
            // network order (`byteorder hton`) before the lookup.
            Key::SlotEdge(i, _) => out.extend_from_slice(&i.to_be_bytes()),
            Key::Hairpin(a) => {
                addr(&mut out, a);
                addr(&mut out, a);
            }
        }
        out
    }

    /// Whether the element is the end of an interval (`NFT_SET_ELEM_INTERVAL_END`).
    pub fn is_interval_end(&self) -> bool {
        matches!(self, Key::SlotEdge(_, Edge::End))
    }

    /// Reads a key the kernel listed for a set of `kind` in `family`; `None` when it is not
    /// one we could have written.
    /// `interval_end` is the element's `NFT_SET_ELEM_INTERVAL_END` flag.
    pub fn parse(kind: SetKind, family: Family, raw: &[u8], interval_end: bool) -> Option<Key> {
        let addr_len = match family {
            Family::IPv4 => 4,
            Family::IPv6 => 16,
        };
        let addr = |b: &[u8]| -> Option<IpAddr> {
            match family {
                Family::IPv4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
                Family::IPv6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
            }
        };
        match kind {
            SetKind::DestinationMap if raw.len() == addr_len + 8 => Some(Key::Destination(
                addr(&raw[..addr_len])?,
                proto_of(raw[addr_len])?,
                u16::from_be_bytes([raw[addr_len + 4], raw[addr_len + 5]]),
            )),
            SetKind::NodePortMap if raw.len() == 8 => Some(Key::NodePort(
                proto_of(raw[0])?,
                u16::from_be_bytes([raw[4], raw[5]]),
            )),
            SetKind::Addresses if raw.len() == addr_len => Some(Key::Address(addr(raw)?)),
            SetKind::SlotMap if raw.len() == 4 => {
                Some(Key::Slot(u32::from_ne_bytes(raw.try_into().ok()?)))
            }
            SetKind::Targets if raw.len() == 4 => {
                let slot = u32::from_be_bytes(raw.try_into().ok()?);
                let edge = if interval_end { Edge::End } else { Edge::Start };
                Some(Key::SlotEdge(slot, edge))
            }
            SetKind::AddressPairs if raw.len() == 2 * addr_len => {
                let (a, b) = raw.split_at(addr_len);
                (a == b).then_some(Key::Hairpin(addr(a)?))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = |p: &Protocol| p.as_str().to_ascii_lowercase();
        match self {
            Key::Destination(a, p, port) => write!(f, "{a} . {} . {port}", proto(p)),
            Key::NodePort(p, port) => write!(f, "{} . {port}", proto(p)),
            Key::Address(a) => write!(f, "{a}"),
            Key::Slot(i) => write!(f, "{i}"),
            Key::SlotEdge(i, Edge::Start) => write!(f, "{i}"),
            Key::SlotEdge(i, Edge::End) => write!(f, "end {i}"),
            Key::Hairpin(a) => write!(f, "{a} . {a}"),
        }
    }
}

/// A map element's value: a verdict, or (in a [`SetKind::Targets`] map) an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// `goto CHAIN`.
    Goto(Name),
    /// `jump CHAIN`.
    Jump(Name),
    /// `ADDRESS . PORT`, a DNAT target. Writing it does not make the kernel re-validate the
    /// table (only jump/goto verdicts do).
    Target(IpAddr, u16),
}

impl Value {
    /// The target as register data: the address, then the port padded to 4 bytes.
    pub fn target_bytes(address: IpAddr, port: u16) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        match address {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
        out.extend_from_slice(&port.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// Reads a target the kernel listed for `family`.
    pub fn parse_target(family: Family, raw: &[u8]) -> Option<Value> {
        let addr_len = match family {
            Family::IPv4 => 4,
            Family::IPv6 => 16,
        };
        if raw.len() != addr_len + 4 {
            return None;
        }
        let address = match family {
            Family::IPv4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&raw[..4]).ok()?)),
            Family::IPv6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&raw[..16]).ok()?)),
        };
        let port = u16::from_be_bytes([raw[addr_len], raw[addr_len + 1]]);
        Some(Value::Target(address, port))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Goto(c) => write!(f, "goto {c}"),
            Value::Jump(c) => write!(f, "jump {c}"),
            Value::Target(a, port) => write!(f, "{a} . {port}"),
        }
    }
}

/// An element's value: a verdict or target in a map, nothing in a plain set.
pub type ElementValue = Option<Value>;

/// `add chain` in `nft` syntax.
pub fn chain_text(family: Family, chain: &ChainSpec) -> String {
    let ip = family_keyword(family);
    match chain.base {
        None => format!("add chain {ip} {TABLE} {}", chain.name),
        Some(base) => format!(
            "add chain {ip} {TABLE} {} {{ type {} hook {} priority {} ; policy accept ; }}",
            chain.name,
            base.kind.as_str(),
            base.hook.keyword(),
            base.priority
        ),
    }
}
