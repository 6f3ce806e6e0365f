//! Attributes nested in `IPVS_CMD_ATTR_DEST` (`IPVS_DEST_ATTR_*`).

use netlink_packet_core::{
    parse_u16, parse_u16_be, parse_u32, DecodeError, DefaultNla, ErrorContext, Nla, NlaBuffer,
    Parseable,
};

use super::parse_inet_addr;

const DEST_ATTR_ADDR: u16 = 1;
const DEST_ATTR_PORT: u16 = 2;
const DEST_ATTR_FWD_METHOD: u16 = 3;
const DEST_ATTR_WEIGHT: u16 = 4;
const DEST_ATTR_U_THRESH: u16 = 5;
const DEST_ATTR_L_THRESH: u16 = 6;
const DEST_ATTR_ACTIVE_CONNS: u16 = 7;
const DEST_ATTR_INACT_CONNS: u16 = 8;
const DEST_ATTR_PERSIST_CONNS: u16 = 9;
const DEST_ATTR_ADDR_FAMILY: u16 = 11;

/// One `IPVS_DEST_ATTR_*` attribute. Integers are in host order here; the wire order of each
/// is noted on its variant. The connection counters are read-only: the kernel ignores them in
/// requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DestAttr {
    /// `IPVS_DEST_ATTR_ADDR` (1): `union nf_inet_addr`, 16 bytes, IPv4 in the first 4.
    Addr([u8; 16]),
    /// `IPVS_DEST_ATTR_PORT` (2, u16 network order).
    Port(u16),
    /// `IPVS_DEST_ATTR_FWD_METHOD` (3, u32 host order): `IP_VS_CONN_F_MASQ` (0) ...
    FwdMethod(u32),
    /// `IPVS_DEST_ATTR_WEIGHT` (4, u32 host order; the kernel's `int`, never negative).
    Weight(u32),
    /// `IPVS_DEST_ATTR_U_THRESH` (5, u32 host order): upper connection threshold, 0 = none.
    UpperThreshold(u32),
    /// `IPVS_DEST_ATTR_L_THRESH` (6, u32 host order): lower connection threshold.
    LowerThreshold(u32),
    /// `IPVS_DEST_ATTR_ACTIVE_CONNS` (7, u32 host order, read-only).
    ActiveConns(u32),
    /// `IPVS_DEST_ATTR_INACT_CONNS` (8, u32 host order, read-only).
    InactiveConns(u32),
    /// `IPVS_DEST_ATTR_PERSIST_CONNS` (9, u32 host order, read-only).
    PersistentConns(u32),
    /// `IPVS_DEST_ATTR_ADDR_FAMILY` (11, u16 host order; Linux >= 3.18).
    AddrFamily(u16),
    /// Anything else (statistics, tunnel settings, newer attributes), as received.
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Addr(_) => 16,
            Self::Port(_) | Self::AddrFamily(_) => 2,
            Self::FwdMethod(_)
            | Self::Weight(_)
            | Self::UpperThreshold(_)
            | Self::LowerThreshold(_)
            | Self::ActiveConns(_)
            | Self::InactiveConns(_)
            | Self::PersistentConns(_) => 4,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Addr(_) => DEST_ATTR_ADDR,
            Self::Port(_) => DEST_ATTR_PORT,
            Self::FwdMethod(_) => DEST_ATTR_FWD_METHOD,
            Self::Weight(_) => DEST_ATTR_WEIGHT,
            Self::UpperThreshold(_) => DEST_ATTR_U_THRESH,
            Self::LowerThreshold(_) => DEST_ATTR_L_THRESH,
            Self::ActiveConns(_) => DEST_ATTR_ACTIVE_CONNS,
            Self::InactiveConns(_) => DEST_ATTR_INACT_CONNS,
            Self::PersistentConns(_) => DEST_ATTR_PERSIST_CONNS,
            Self::AddrFamily(_) => DEST_ATTR_ADDR_FAMILY,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Addr(addr) => buffer[..16].copy_from_slice(addr),
            Self::Port(v) => buffer[..2].copy_from_slice(&v.to_be_bytes()),
            Self::AddrFamily(v) => buffer[..2].copy_from_slice(&v.to_ne_bytes()),
            Self::FwdMethod(v)
            | Self::Weight(v)
            | Self::UpperThreshold(v)
            | Self::LowerThreshold(v)
            | Self::ActiveConns(v)
            | Self::InactiveConns(v)
            | Self::PersistentConns(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl DestAttr {
    pub(super) fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let value = nla.value();
        let u32_attr = |name: &str| parse_u32(value).context(format!("invalid {name}"));
        Ok(match nla.kind() {
            DEST_ATTR_ADDR => {
                Self::Addr(parse_inet_addr(value).context("invalid IPVS_DEST_ATTR_ADDR")?)
            }
            DEST_ATTR_PORT => {
                Self::Port(parse_u16_be(value).context("invalid IPVS_DEST_ATTR_PORT")?)
            }
            DEST_ATTR_FWD_METHOD => Self::FwdMethod(u32_attr("IPVS_DEST_ATTR_FWD_METHOD")?),
            DEST_ATTR_WEIGHT => Self::Weight(u32_attr("IPVS_DEST_ATTR_WEIGHT")?),
            DEST_ATTR_U_THRESH => Self::UpperThreshold(u32_attr("IPVS_DEST_ATTR_U_THRESH")?),
            DEST_ATTR_L_THRESH => Self::LowerThreshold(u32_attr("IPVS_DEST_ATTR_L_THRESH")?),
            DEST_ATTR_ACTIVE_CONNS => Self::ActiveConns(u32_attr("IPVS_DEST_ATTR_ACTIVE_CONNS")?),
            DEST_ATTR_INACT_CONNS => Self::InactiveConns(u32_attr("IPVS_DEST_ATTR_INACT_CONNS")?),
            DEST_ATTR_PERSIST_CONNS => {
                Self::PersistentConns(u32_attr("IPVS_DEST_ATTR_PERSIST_CONNS")?)
            }
            DEST_ATTR_ADDR_FAMILY => {
                Self::AddrFamily(parse_u16(value).context("invalid IPVS_DEST_ATTR_ADDR_FAMILY")?)
            }
            _ => Self::Other(DefaultNla::parse(nla)?),
        })
    }
}
