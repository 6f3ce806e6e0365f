//! The IPVS generic netlink family ("IPVS", version 1) on the wire, written from the kernel's
//! `include/uapi/linux/ip_vs.h` and the attribute policies of `net/netfilter/ipvs/ip_vs_ctl.c`.
//!
//! Messages are `genlmsghdr` + attributes; the meaning of the top-level attributes depends on
//! the command: service and destination commands carry the nested `IPVS_CMD_ATTR_SERVICE` /
//! `IPVS_CMD_ATTR_DEST`, while the `GET_INFO` reply (`IPVS_CMD_SET_INFO`) carries
//! `IPVS_INFO_ATTR_*` at the top level with the same attribute numbers.

mod dest;
mod service;

pub(crate) use dest::DestAttr;
pub(crate) use service::ServiceAttr;

use netlink_packet_core::{
    parse_u32, DecodeError, DefaultNla, Emitable, ErrorContext, Nla, NlaBuffer, NlasIterator,
    Parseable, ParseableParametrized, NLA_F_NESTED,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

/// `IPVS_GENL_NAME`.
pub(crate) const FAMILY_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub(crate) const FAMILY_VERSION: u8 = 1;

/// `AF_INET` / `AF_INET6` as IPVS carries them (`IPVS_SVC_ATTR_AF`, `IPVS_DEST_ATTR_ADDR_FAMILY`).
pub(crate) const AF_INET: u16 = 2;
pub(crate) const AF_INET6: u16 = 10;

/// `IP_VS_SVC_F_PERSISTENT`: the service keeps a client on one destination for `timeout`.
pub(crate) const SVC_F_PERSISTENT: u32 = 0x0001;
/// `IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2 | IP_VS_SVC_F_SCHED3`: scheduler-specific flags.
pub(crate) const SVC_F_SCHED_MASK: u32 = 0x0038;
/// `IP_VS_CONN_F_FWD_MASK`: the forwarding-method bits of a destination's connection flags.
pub(crate) const CONN_F_FWD_MASK: u32 = 0x0007;

/// `IPVS_CMD_*`: the commands of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpvsCommand {
    /// `IPVS_CMD_NEW_SERVICE` (1): add a service; also every service of a dump.
    NewService,
    /// `IPVS_CMD_SET_SERVICE` (2): edit a service.
    SetService,
    /// `IPVS_CMD_DEL_SERVICE` (3).
    DelService,
    /// `IPVS_CMD_GET_SERVICE` (4): one service, or all with `NLM_F_DUMP`.
    GetService,
    /// `IPVS_CMD_NEW_DEST` (5): add a destination; also every destination of a dump.
    NewDest,
    /// `IPVS_CMD_SET_DEST` (6): edit a destination.
    SetDest,
    /// `IPVS_CMD_DEL_DEST` (7).
    DelDest,
    /// `IPVS_CMD_GET_DEST` (8): the destinations of one service (dump only).
    GetDest,
    /// `IPVS_CMD_SET_INFO` (14): only used as the reply to `GET_INFO`.
    SetInfo,
    /// `IPVS_CMD_GET_INFO` (15).
    GetInfo,
    /// Any other command number.
    Other(u8),
}

impl From<IpvsCommand> for u8 {
    fn from(cmd: IpvsCommand) -> u8 {
        match cmd {
            IpvsCommand::NewService => 1,
            IpvsCommand::SetService => 2,
            IpvsCommand::DelService => 3,
            IpvsCommand::GetService => 4,
            IpvsCommand::NewDest => 5,
            IpvsCommand::SetDest => 6,
            IpvsCommand::DelDest => 7,
            IpvsCommand::GetDest => 8,
            IpvsCommand::SetInfo => 14,
            IpvsCommand::GetInfo => 15,
            IpvsCommand::Other(n) => n,
        }
    }
}

impl From<u8> for IpvsCommand {
    fn from(n: u8) -> Self {
        match n {
            1 => Self::NewService,
            2 => Self::SetService,
            3 => Self::DelService,
            4 => Self::GetService,
            5 => Self::NewDest,
            6 => Self::SetDest,
            7 => Self::DelDest,
            8 => Self::GetDest,
            14 => Self::SetInfo,
            15 => Self::GetInfo,
            n => Self::Other(n),
        }
    }
}

impl IpvsCommand {
    /// Whether the top-level attributes are `IPVS_INFO_ATTR_*` rather than `IPVS_CMD_ATTR_*`.
    fn carries_info(self) -> bool {
        matches!(self, Self::SetInfo | Self::GetInfo)
    }
}

/// A top-level attribute of an IPVS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpvsAttr {
    /// `IPVS_CMD_ATTR_SERVICE` (1, nested).
    Service(Vec<ServiceAttr>),
    /// `IPVS_CMD_ATTR_DEST` (2, nested).
    Dest(Vec<DestAttr>),
    /// `IPVS_INFO_ATTR_VERSION` (1, u32): `IP_VS_VERSION_CODE`, 0x00MMmmpp.
    InfoVersion(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (2, u32): size of the connection hash table.
    InfoConnTabSize(u32),
    /// An attribute this code does not interpret, kept as received.
    Other(DefaultNla),
}

const CMD_ATTR_SERVICE: u16 = 1;
const CMD_ATTR_DEST: u16 = 2;
const INFO_ATTR_VERSION: u16 = 1;
const INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Service(attrs) => attrs.as_slice().buffer_len(),
            Self::Dest(attrs) => attrs.as_slice().buffer_len(),
            Self::InfoVersion(_) | Self::InfoConnTabSize(_) => 4,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            // The kernel parses these with the liberal nested parser, which accepts the
            // NLA_F_NESTED flag; setting it keeps the messages valid for strict parsers too.
            Self::Service(_) => CMD_ATTR_SERVICE | NLA_F_NESTED,
            Self::Dest(_) => CMD_ATTR_DEST | NLA_F_NESTED,
            Self::InfoVersion(_) => INFO_ATTR_VERSION,
            Self::InfoConnTabSize(_) => INFO_ATTR_CONN_TAB_SIZE,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Service(attrs) => attrs.as_slice().emit(buffer),
            Self::Dest(attrs) => attrs.as_slice().emit(buffer),
            Self::InfoVersion(v) | Self::InfoConnTabSize(v) => {
                buffer[..4].copy_from_slice(&v.to_ne_bytes())
            }
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl IpvsAttr {
    fn parse(nla: &NlaBuffer<&[u8]>, cmd: IpvsCommand) -> Result<Self, DecodeError> {
        let value = nla.value();
        Ok(match (cmd.carries_info(), nla.kind()) {
            (true, INFO_ATTR_VERSION) => {
                Self::InfoVersion(parse_u32(value).context("invalid IPVS_INFO_ATTR_VERSION")?)
            }
            (true, INFO_ATTR_CONN_TAB_SIZE) => Self::InfoConnTabSize(
                parse_u32(value).context("invalid IPVS_INFO_ATTR_CONN_TAB_SIZE")?,
            ),
            (false, CMD_ATTR_SERVICE) => Self::Service(
                parse_nested(value, ServiceAttr::parse).context("invalid IPVS_CMD_ATTR_SERVICE")?,
            ),
            (false, CMD_ATTR_DEST) => Self::Dest(
                parse_nested(value, DestAttr::parse).context("invalid IPVS_CMD_ATTR_DEST")?,
            ),
            _ => Self::Other(DefaultNla::parse(nla)?),
        })
    }
}

/// Parses every attribute of a nested attribute's value with `parse`.
fn parse_nested<T>(
    value: &[u8],
    parse: impl Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    NlasIterator::new(value)
        .map(|nla| nla.and_then(|nla| parse(&nla)))
        .collect()
}

/// The payload of an IPVS generic netlink message: command and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IpvsMessage {
    pub cmd: IpvsCommand,
    pub attrs: Vec<IpvsAttr>,
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCommand::from(header.cmd);
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| IpvsAttr::parse(&nla, cmd)))
            .collect::<Result<Vec<_>, _>>()
            .context("invalid IPVS message attributes")?;
        Ok(Self { cmd, attrs })
    }
}

impl IpvsMessage {
    /// The service attributes of the message, if it has them.
    pub fn service(&self) -> Option<&[ServiceAttr]> {
        self.attrs.iter().find_map(|attr| match attr {
            IpvsAttr::Service(attrs) => Some(attrs.as_slice()),
            _ => None,
        })
    }

    /// The destination attributes of the message, if it has them.
    pub fn dest(&self) -> Option<&[DestAttr]> {
        self.attrs.iter().find_map(|attr| match attr {
            IpvsAttr::Dest(attrs) => Some(attrs.as_slice()),
            _ => None,
        })
    }
}

/// Reads a 16-byte `union nf_inet_addr`; the kernel also accepts (and some tools send) only the
/// 4 bytes of an IPv4 address.
fn parse_inet_addr(value: &[u8]) -> Result<[u8; 16], DecodeError> {
    let mut addr = [0u8; 16];
    match value.len() {
        4 | 16 => {
            addr[..value.len()].copy_from_slice(value);
            Ok(addr)
        }
        n => Err(DecodeError::from(format!(
            "address of {n} bytes (expected 16, or 4 for IPv4)"
        ))),
    }
}

#[cfg(test)]
mod tests;
