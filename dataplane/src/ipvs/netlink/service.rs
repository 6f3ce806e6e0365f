//! Attributes nested in `IPVS_CMD_ATTR_SERVICE` (`IPVS_SVC_ATTR_*`).

use netlink_packet_core::{
    parse_string, parse_u16, parse_u16_be, parse_u32, DecodeError, DefaultNla, ErrorContext, Nla,
    NlaBuffer, Parseable,
};

use super::parse_inet_addr;

const SVC_ATTR_AF: u16 = 1;
const SVC_ATTR_PROTOCOL: u16 = 2;
const SVC_ATTR_ADDR: u16 = 3;
const SVC_ATTR_PORT: u16 = 4;
const SVC_ATTR_FWMARK: u16 = 5;
const SVC_ATTR_SCHED_NAME: u16 = 6;
const SVC_ATTR_FLAGS: u16 = 7;
const SVC_ATTR_TIMEOUT: u16 = 8;
const SVC_ATTR_NETMASK: u16 = 9;
const SVC_ATTR_PE_NAME: u16 = 11;

/// One `IPVS_SVC_ATTR_*` attribute. Integers are in host order here; the wire order of each
/// is noted on its variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServiceAttr {
    /// `IPVS_SVC_ATTR_AF` (1, u16 host order): `AF_INET` or `AF_INET6`.
    Af(u16),
    /// `IPVS_SVC_ATTR_PROTOCOL` (2, u16 host order): `IPPROTO_TCP`, `IPPROTO_UDP`, `IPPROTO_SCTP`.
    Protocol(u16),
    /// `IPVS_SVC_ATTR_ADDR` (3): `union nf_inet_addr`, 16 bytes, IPv4 in the first 4.
    Addr([u8; 16]),
    /// `IPVS_SVC_ATTR_PORT` (4, u16 network order).
    Port(u16),
    /// `IPVS_SVC_ATTR_FWMARK` (5, u32 host order): firewall-mark services (never ours).
    Fwmark(u32),
    /// `IPVS_SVC_ATTR_SCHED_NAME` (6): NUL-terminated, at most 15 characters.
    SchedName(String),
    /// `IPVS_SVC_ATTR_FLAGS` (7): `struct ip_vs_flags { __u32 flags; __u32 mask; }`, host
    /// order. The kernel applies `(old & !mask) | (flags & mask)`; dumps report `mask = !0`.
    Flags { flags: u32, mask: u32 },
    /// `IPVS_SVC_ATTR_TIMEOUT` (8, u32 host order): persistence timeout in seconds.
    Timeout(u32),
    /// `IPVS_SVC_ATTR_NETMASK` (9): the 4 bytes the kernel keeps in `svc->netmask` as-is
    /// (`nla_get_be32`): an IPv4 mask in network order, or an IPv6 prefix length in host order.
    Netmask([u8; 4]),
    /// `IPVS_SVC_ATTR_PE_NAME` (11): persistence engine name (e.g. "sip"; never ours).
    PeName(String),
    /// Anything else (statistics `IPVS_SVC_ATTR_STATS`/`STATS64`, newer attributes), as received.
    Other(DefaultNla),
}

impl Nla for ServiceAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Af(_) | Self::Protocol(_) | Self::Port(_) => 2,
            Self::Addr(_) => 16,
            Self::Fwmark(_) | Self::Timeout(_) | Self::Netmask(_) => 4,
            Self::SchedName(name) | Self::PeName(name) => name.len() + 1,
            Self::Flags { .. } => 8,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Af(_) => SVC_ATTR_AF,
            Self::Protocol(_) => SVC_ATTR_PROTOCOL,
            Self::Addr(_) => SVC_ATTR_ADDR,
            Self::Port(_) => SVC_ATTR_PORT,
            Self::Fwmark(_) => SVC_ATTR_FWMARK,
            Self::SchedName(_) => SVC_ATTR_SCHED_NAME,
            Self::Flags { .. } => SVC_ATTR_FLAGS,
            Self::Timeout(_) => SVC_ATTR_TIMEOUT,
            Self::Netmask(_) => SVC_ATTR_NETMASK,
            Self::PeName(_) => SVC_ATTR_PE_NAME,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Af(v) | Self::Protocol(v) => buffer[..2].copy_from_slice(&v.to_ne_bytes()),
            Self::Port(v) => buffer[..2].copy_from_slice(&v.to_be_bytes()),
            Self::Addr(addr) => buffer[..16].copy_from_slice(addr),
            Self::Fwmark(v) | Self::Timeout(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            Self::Netmask(raw) => buffer[..4].copy_from_slice(raw),
            Self::SchedName(name) | Self::PeName(name) => {
                buffer[..name.len()].copy_from_slice(name.as_bytes());
                buffer[name.len()] = 0;
            }
            Self::Flags { flags, mask } => {
                buffer[..4].copy_from_slice(&flags.to_ne_bytes());
                buffer[4..8].copy_from_slice(&mask.to_ne_bytes());
            }
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl ServiceAttr {
    pub(super) fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let value = nla.value();
        Ok(match nla.kind() {
            SVC_ATTR_AF => Self::Af(parse_u16(value).context("invalid IPVS_SVC_ATTR_AF")?),
            SVC_ATTR_PROTOCOL => {
                Self::Protocol(parse_u16(value).context("invalid IPVS_SVC_ATTR_PROTOCOL")?)
            }
            SVC_ATTR_ADDR => {
                Self::Addr(parse_inet_addr(value).context("invalid IPVS_SVC_ATTR_ADDR")?)
            }
            SVC_ATTR_PORT => Self::Port(parse_u16_be(value).context("invalid IPVS_SVC_ATTR_PORT")?),
            SVC_ATTR_FWMARK => {
                Self::Fwmark(parse_u32(value).context("invalid IPVS_SVC_ATTR_FWMARK")?)
            }
            SVC_ATTR_SCHED_NAME => {
                Self::SchedName(parse_string(value).context("invalid IPVS_SVC_ATTR_SCHED_NAME")?)
            }
            SVC_ATTR_FLAGS => {
                if value.len() != 8 {
                    return Err(DecodeError::from(format!(
                        "invalid IPVS_SVC_ATTR_FLAGS: {} bytes, expected 8",
                        value.len()
                    )));
                }
                Self::Flags {
                    flags: parse_u32(&value[..4])?,
                    mask: parse_u32(&value[4..])?,
                }
            }
            SVC_ATTR_TIMEOUT => {
                Self::Timeout(parse_u32(value).context("invalid IPVS_SVC_ATTR_TIMEOUT")?)
            }
            SVC_ATTR_NETMASK => Self::Netmask(value.try_into().map_err(|_| {
                DecodeError::from(format!(
                    "invalid IPVS_SVC_ATTR_NETMASK: {} bytes, expected 4",
                    value.len()
                ))
            })?),
            SVC_ATTR_PE_NAME => {
                Self::PeName(parse_string(value).context("invalid IPVS_SVC_ATTR_PE_NAME")?)
            }
            _ => Self::Other(DefaultNla::parse(nla)?),
        })
    }
}
