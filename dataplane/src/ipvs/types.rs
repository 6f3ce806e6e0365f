//! The IPVS table as the node agent sees it: virtual services, their destinations, and the
//! operations that change them; with their translation to and from netlink attributes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::netlink::{
    DestAttr, ServiceAttr, AF_INET, AF_INET6, CONN_F_FWD_MASK, SVC_F_PERSISTENT, SVC_F_SCHED_MASK,
};

/// `IP_VS_SCHEDNAME_MAXLEN` (16) less the terminating NUL.
const SCHED_NAME_MAX: usize = 15;

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `IPPROTO_TCP` (6).
    Tcp,
    /// `IPPROTO_UDP` (17).
    Udp,
    /// `IPPROTO_SCTP` (132).
    Sctp,
}

impl Protocol {
    /// The IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }

    fn from_number(n: u16) -> Option<Self> {
        match n {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            132 => Some(Self::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        })
    }
}

/// What identifies a virtual service in the kernel: protocol, address and port. The address
/// family is the address's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Virtual address (ClusterIP, node address, external or load-balancer IP).
    pub addr: IpAddr,
    /// Virtual port.
    pub port: u16,
}

impl ServiceKey {
    /// A service key.
    pub fn new(protocol: Protocol, addr: IpAddr, port: u16) -> Self {
        Self {
            protocol,
            addr,
            port,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// `TCP 10.96.0.1:443`, `UDP [fd00::a]:53`, as `ipvsadm -Ln` lists them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.protocol,
            SocketAddr::new(self.addr, self.port)
        )
    }
}

/// IPVS scheduler of a virtual service (`--ipvs-scheduler`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// `rr`, kube-proxy's default.
    RoundRobin,
    /// `wrr`.
    WeightedRoundRobin,
    /// `lc`.
    LeastConnection,
    /// `sh`.
    SourceHashing,
    /// `mh`.
    MaglevHashing,
    /// Any other kernel scheduler module (`ip_vs_<name>`), by name.
    Other(String),
}

impl Scheduler {
    /// The scheduler from its kernel name (`rr`, `wrr`, ...).
    pub fn from_name(name: &str) -> Self {
        match name {
            "rr" => Self::RoundRobin,
            "wrr" => Self::WeightedRoundRobin,
            "lc" => Self::LeastConnection,
            "sh" => Self::SourceHashing,
            "mh" => Self::MaglevHashing,
            other => Self::Other(other.to_string()),
        }
    }

    /// The kernel name (`IPVS_SVC_ATTR_SCHED_NAME`).
    pub fn name(&self) -> &str {
        match self {
            Self::RoundRobin => "rr",
            Self::WeightedRoundRobin => "wrr",
            Self::LeastConnection => "lc",
            Self::SourceHashing => "sh",
            Self::MaglevHashing => "mh",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A virtual service: where clients connect and how the kernel picks a destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualService {
    /// Protocol, address and port.
    pub key: ServiceKey,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Persistence (`sessionAffinity: ClientIP`): seconds a client stays on its destination;
    /// `None` when the service is not persistent (`IP_VS_SVC_F_PERSISTENT` unset).
    pub persistence_timeout: Option<u32>,
    /// Prefix length that groups clients for persistence: 32 (IPv4) or 128 (IPv6) keeps each
    /// client address on its own, as kube-proxy does.
    pub netmask: u8,
    /// Scheduler-specific flags (`IP_VS_SVC_F_SCHED1..3`, the bits of [`SchedulerFlags`]);
    /// kube-proxy sets `IP_VS_SVC_F_SCHED_MH_PORT` for `mh` so the source port is hashed too.
    pub scheduler_flags: SchedulerFlags,
}

/// The scheduler-specific service flags `IP_VS_SVC_F_SCHED1` (0x08), `SCHED2` (0x10) and
/// `SCHED3` (0x20) of `include/uapi/linux/ip_vs.h`; their meaning depends on the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedulerFlags(u32);

impl SchedulerFlags {
    /// No flag.
    pub const NONE: SchedulerFlags = SchedulerFlags(0);
    /// `IP_VS_SVC_F_SCHED_MH_FALLBACK` (`SCHED1`): `mh` falls back to another destination when
    /// the chosen one is overloaded or has weight 0.
    pub const MH_FALLBACK: SchedulerFlags = SchedulerFlags(0x0008);
    /// `IP_VS_SVC_F_SCHED_MH_PORT` (`SCHED2`): `mh` hashes the source port too (kube-proxy's
    /// `FlagSourceHash` for `--ipvs-scheduler mh`).
    pub const MH_PORT: SchedulerFlags = SchedulerFlags(0x0010);

    /// The flags from their bits; bits outside `SCHED1..3` are dropped.
    pub fn from_bits(bits: u32) -> SchedulerFlags {
        SchedulerFlags(bits & SVC_F_SCHED_MASK)
    }

    /// The bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl VirtualService {
    /// A service that is not persistent, with a host netmask (/32 or /128).
    pub fn new(key: ServiceKey, scheduler: Scheduler) -> Self {
        let netmask = if key.addr.is_ipv4() { 32 } else { 128 };
        Self {
            key,
            scheduler,
            persistence_timeout: None,
            netmask,
            scheduler_flags: SchedulerFlags::NONE,
        }
    }

    /// The same service with client persistence for `timeout_seconds`.
    pub fn persistent(mut self, timeout_seconds: u32) -> Self {
        self.persistence_timeout = Some(timeout_seconds);
        self
    }
}

/// How IPVS forwards to a destination (`IP_VS_CONN_F_FWD_MASK` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMethod {
    /// `IP_VS_CONN_F_MASQ` (0): NAT, the only method svcplane uses (kube-proxy's too).
    Masquerade,
    /// `IP_VS_CONN_F_LOCALNODE` (1).
    Local,
    /// `IP_VS_CONN_F_TUNNEL` (2).
    Tunnel,
    /// `IP_VS_CONN_F_DROUTE` (3).
    DirectRoute,
    /// `IP_VS_CONN_F_BYPASS` (4).
    Bypass,
    /// Any other value of the forwarding bits.
    Other(u32),
}

impl ForwardMethod {
    fn bits(self) -> u32 {
        match self {
            Self::Masquerade => 0,
            Self::Local => 1,
            Self::Tunnel => 2,
            Self::DirectRoute => 3,
            Self::Bypass => 4,
            Self::Other(bits) => bits & CONN_F_FWD_MASK,
        }
    }

    fn from_bits(bits: u32) -> Self {
        match bits & CONN_F_FWD_MASK {
            0 => Self::Masquerade,
            1 => Self::Local,
            2 => Self::Tunnel,
            3 => Self::DirectRoute,
            4 => Self::Bypass,
            other => Self::Other(other),
        }
    }
}

/// A destination (real server) of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Endpoint address.
    pub addr: IpAddr,
    /// Endpoint port.
    pub port: u16,
    /// Scheduling weight; 0 takes no new connections (graceful termination).
    pub weight: u32,
    /// Forwarding method.
    pub fwd: ForwardMethod,
    /// Established connections (read-only; ignored when writing).
    pub active_conns: u32,
    /// Other connections, e.g. TIME_WAIT or UDP (read-only; ignored when writing).
    pub inactive_conns: u32,
    /// Persistence templates pointing at it (read-only; ignored when writing).
    pub persistent_conns: u32,
}

impl Destination {
    /// A masqueraded destination with `weight`, as svcplane programs them.
    pub fn masquerade(addr: IpAddr, port: u16, weight: u32) -> Self {
        Self {
            addr,
            port,
            weight,
            fwd: ForwardMethod::Masquerade,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
        }
    }

    /// Address and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// One change to the kernel's IPVS table, for [`IpvsClient::apply`](super::IpvsClient::apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsOp {
    /// Create a virtual service (`EEXIST` if it exists).
    AddService(VirtualService),
    /// Change scheduler, persistence or netmask of an existing service (`ESRCH` if absent).
    EditService(VirtualService),
    /// Delete a service with its destinations (`ESRCH` if absent).
    DelService(ServiceKey),
    /// Add a destination to a service (`EEXIST` if present, `ESRCH` if no such service).
    AddDest {
        /// The service.
        service: ServiceKey,
        /// The destination.
        dest: Destination,
    },
    /// Change a destination's weight or forwarding method (`ENOENT` if absent).
    EditDest {
        /// The service.
        service: ServiceKey,
        /// The destination, with its new weight.
        dest: Destination,
    },
    /// Remove a destination (`ENOENT` if absent). Its connections are left to expire.
    DelDest {
        /// The service.
        service: ServiceKey,
        /// The destination's address and port.
        dest: SocketAddr,
    },
}

impl IpvsOp {
    /// The service the operation concerns.
    pub fn service(&self) -> ServiceKey {
        match self {
            Self::AddService(svc) | Self::EditService(svc) => svc.key,
            Self::DelService(key) => *key,
            Self::AddDest { service, .. }
            | Self::EditDest { service, .. }
            | Self::DelDest { service, .. } => *service,
        }
    }

    /// The destination the operation concerns, for destination operations.
    pub fn dest(&self) -> Option<SocketAddr> {
        match self {
            Self::AddService(_) | Self::EditService(_) | Self::DelService(_) => None,
            Self::AddDest { dest, .. } | Self::EditDest { dest, .. } => Some(dest.socket_addr()),
            Self::DelDest { dest, .. } => Some(*dest),
        }
    }

    /// What the operation does, in words (`add service`, `delete destination`...).
    pub fn action(&self) -> &'static str {
        match self {
            Self::AddService(_) => "add service",
            Self::EditService(_) => "edit service",
            Self::DelService(_) => "delete service",
            Self::AddDest { .. } => "add destination",
            Self::EditDest { .. } => "edit destination",
            Self::DelDest { .. } => "delete destination",
        }
    }
}

/// What `IPVS_CMD_GET_INFO` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpvsInfo {
    /// IPVS version as (major, minor, patch), e.g. (1, 2, 1).
    pub version: (u8, u8, u8),
    /// Size of the kernel's connection hash table (`ip_vs_conn_tab_size`).
    pub conn_table_size: u32,
}

// ---- Encoding -------------------------------------------------------------------------------

fn address_family(addr: IpAddr) -> u16 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// `union nf_inet_addr`: IPv4 in the first 4 bytes, the rest zero.
fn inet_addr(addr: IpAddr) -> [u8; 16] {
    let mut raw = [0u8; 16];
    match addr {
        IpAddr::V4(v4) => raw[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => raw = v6.octets(),
    }
    raw
}

fn ip_from_inet(family: u16, raw: [u8; 16]) -> Result<IpAddr, String> {
    match family {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(raw))),
        other => Err(format!("unknown address family {other}")),
    }
}

/// `IPVS_SVC_ATTR_NETMASK` for a prefix length: IPv4 keeps a network-order mask, IPv6 the
/// prefix length as a host-order integer (`ip_vs_add_service` checks 1..=128 on it).
fn netmask_raw(addr: IpAddr, prefix: u8) -> [u8; 4] {
    match addr {
        IpAddr::V4(_) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            mask.to_be_bytes()
        }
        IpAddr::V6(_) => u32::from(prefix).to_ne_bytes(),
    }
}

fn netmask_prefix(family: u16, raw: [u8; 4]) -> Result<u8, String> {
    if family == AF_INET {
        let mask = u32::from_be_bytes(raw);
        if mask.leading_ones() + mask.trailing_zeros() != 32 {
            return Err(format!(
                "IPVS_SVC_ATTR_NETMASK {} is not a contiguous IPv4 mask",
                Ipv4Addr::from(mask)
            ));
        }
        Ok(mask.leading_ones() as u8)
    } else {
        let prefix = u32::from_ne_bytes(raw);
        u8::try_from(prefix)
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| format!("IPVS_SVC_ATTR_NETMASK {prefix} is not an IPv6 prefix length"))
    }
}

impl ServiceKey {
    /// The attributes that identify the service (`ip_vs_genl_parse_service` without
    /// `full_entry`).
    pub(crate) fn identity_attrs(&self) -> Vec<ServiceAttr> {
        vec![
            ServiceAttr::Af(address_family(self.addr)),
            ServiceAttr::Protocol(u16::from(self.protocol.number())),
            ServiceAttr::Addr(inet_addr(self.addr)),
            ServiceAttr::Port(self.port),
        ]
    }
}

impl VirtualService {
    /// Checks what the kernel would refuse with a bare `EINVAL`, naming the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let name = self.scheduler.name();
        if name.is_empty() || name.len() > SCHED_NAME_MAX || name.contains('\0') {
            return Err(format!(
                "scheduler {name:?}: must be 1 to {SCHED_NAME_MAX} bytes without NUL"
            ));
        }
        let max = if self.key.addr.is_ipv4() { 32 } else { 128 };
        let min = if self.key.addr.is_ipv4() { 0 } else { 1 };
        if !(min..=max).contains(&self.netmask) {
            return Err(format!(
                "netmask /{}: must be {min} to {max} for this address family",
                self.netmask
            ));
        }
        Ok(())
    }

    /// Every attribute `IPVS_CMD_NEW_SERVICE` / `SET_SERVICE` require (`full_entry`). Flags are
    /// sent with a full mask, so an edit also clears persistence and scheduler flags not set
    /// here, as kube-proxy's library does.
    pub(crate) fn full_attrs(&self) -> Vec<ServiceAttr> {
        let mut attrs = self.key.identity_attrs();
        let persistent = self.persistence_timeout.is_some();
        attrs.extend([
            ServiceAttr::SchedName(self.scheduler.name().to_string()),
            ServiceAttr::Flags {
                flags: if persistent { SVC_F_PERSISTENT } else { 0 } | self.scheduler_flags.bits(),
                mask: u32::MAX,
            },
            ServiceAttr::Timeout(self.persistence_timeout.unwrap_or(0)),
            ServiceAttr::Netmask(netmask_raw(self.key.addr, self.netmask)),
        ]);
        attrs
    }

    /// Reads a service from a dump. `Ok(None)` for services svcplane never creates and cannot
    /// describe: firewall-mark services and protocols other than TCP, UDP and SCTP.
    pub(crate) fn from_attrs(attrs: &[ServiceAttr]) -> Result<Option<Self>, String> {
        let mut af = None;
        let mut protocol = None;
        let mut addr = None;
        let mut port = None;
        let mut fwmark = 0;
        let mut scheduler = None;
        let mut flags = 0;
        let mut timeout = 0;
        let mut netmask = None;
        for attr in attrs {
            match attr {
                ServiceAttr::Af(v) => af = Some(*v),
                ServiceAttr::Protocol(v) => protocol = Some(*v),
                ServiceAttr::Addr(v) => addr = Some(*v),
                ServiceAttr::Port(v) => port = Some(*v),
                ServiceAttr::Fwmark(v) => fwmark = *v,
                ServiceAttr::SchedName(v) => scheduler = Some(Scheduler::from_name(v)),
                ServiceAttr::Flags { flags: f, .. } => flags = *f,
                ServiceAttr::Timeout(v) => timeout = *v,
                ServiceAttr::Netmask(v) => netmask = Some(*v),
                ServiceAttr::PeName(_) | ServiceAttr::Other(_) => {}
            }
        }
        let af = af.ok_or("IPVS_SVC_ATTR_AF missing")?;
        if fwmark != 0 {
            return Ok(None);
        }
        let protocol = protocol.ok_or("IPVS_SVC_ATTR_PROTOCOL missing")?;
        let Some(protocol) = Protocol::from_number(protocol) else {
            return Ok(None);
        };
        let addr = ip_from_inet(af, addr.ok_or("IPVS_SVC_ATTR_ADDR missing")?)?;
        let key = ServiceKey::new(protocol, addr, port.ok_or("IPVS_SVC_ATTR_PORT missing")?);
        let in_service = |e: String| format!("{key}: {e}");
        let scheduler =
            scheduler.ok_or_else(|| in_service("IPVS_SVC_ATTR_SCHED_NAME missing".into()))?;
        let netmask = netmask
            .ok_or_else(|| in_service("IPVS_SVC_ATTR_NETMASK missing".into()))
            .and_then(|raw| netmask_prefix(af, raw).map_err(in_service))?;
        Ok(Some(Self {
            key,
            scheduler,
            persistence_timeout: (flags & SVC_F_PERSISTENT != 0).then_some(timeout),
            netmask,
            scheduler_flags: SchedulerFlags::from_bits(flags),
        }))
    }
}

impl Destination {
    /// Checks what the kernel would refuse with a bare `EINVAL`, naming the field.
    pub(crate) fn validate(&self, service: &ServiceKey) -> Result<(), String> {
        if self.addr.is_ipv4() != service.addr.is_ipv4() {
            return Err(format!(
                "address {}: family differs from the service's (mixed families need tunnelling)",
                self.addr
            ));
        }
        if self.weight > i32::MAX as u32 {
            return Err(format!(
                "weight {}: must be at most {}",
                self.weight,
                i32::MAX
            ));
        }
        Ok(())
    }

    /// Every attribute `IPVS_CMD_NEW_DEST` / `SET_DEST` require (`full_entry`); thresholds 0 (none).
    pub(crate) fn full_attrs(&self) -> Vec<DestAttr> {
        vec![
            DestAttr::Addr(inet_addr(self.addr)),
            DestAttr::Port(self.port),
            DestAttr::FwdMethod(self.fwd.bits()),
            DestAttr::Weight(self.weight),
            DestAttr::UpperThreshold(0),
            DestAttr::LowerThreshold(0),
            DestAttr::AddrFamily(address_family(self.addr)),
        ]
    }

    /// The attributes that identify a destination (`IPVS_CMD_DEL_DEST`).
    pub(crate) fn identity_attrs(dest: SocketAddr) -> Vec<DestAttr> {
        vec![
            DestAttr::Addr(inet_addr(dest.ip())),
            DestAttr::Port(dest.port()),
            DestAttr::AddrFamily(address_family(dest.ip())),
        ]
    }

    /// Reads a destination of a service of family `service_af` from a dump.
    pub(crate) fn from_attrs(attrs: &[DestAttr], service_af: u16) -> Result<Self, String> {
        let mut addr = None;
        let mut port = None;
        let mut af = service_af;
        let mut dest = Destination::masquerade(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0, 0);
        let mut weight = None;
        for attr in attrs {
            match attr {
                DestAttr::Addr(v) => addr = Some(*v),
                DestAttr::Port(v) => port = Some(*v),
                DestAttr::AddrFamily(v) => af = *v,
                DestAttr::FwdMethod(v) => dest.fwd = ForwardMethod::from_bits(*v),
                DestAttr::Weight(v) => weight = Some(*v),
                DestAttr::ActiveConns(v) => dest.active_conns = *v,
                DestAttr::InactiveConns(v) => dest.inactive_conns = *v,
                DestAttr::PersistentConns(v) => dest.persistent_conns = *v,
                DestAttr::UpperThreshold(_) | DestAttr::LowerThreshold(_) | DestAttr::Other(_) => {}
            }
        }
        dest.addr = ip_from_inet(af, addr.ok_or("IPVS_DEST_ATTR_ADDR missing")?)?;
        dest.port = port.ok_or("IPVS_DEST_ATTR_PORT missing")?;
        dest.weight = weight.ok_or_else(|| {
            format!(
                "destination {}: IPVS_DEST_ATTR_WEIGHT missing",
                dest.socket_addr()
            )
        })?;
        Ok(dest)
    }
}

pub(crate) fn service_family(key: &ServiceKey) -> u16 {
    address_family(key.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_netmask_is_a_network_order_mask() {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(netmask_raw(v4, 32), [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(netmask_raw(v4, 24), [0xff, 0xff, 0xff, 0x00]);
        assert_eq!(netmask_raw(v4, 0), [0, 0, 0, 0]);
        for prefix in 0..=32 {
            assert_eq!(netmask_prefix(AF_INET, netmask_raw(v4, prefix)), Ok(prefix));
        }
        assert!(netmask_prefix(AF_INET, [0xff, 0x00, 0xff, 0x00]).is_err());
    }

    #[test]
    fn ipv6_netmask_is_a_host_order_prefix_length() {
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(netmask_raw(v6, 128), 128u32.to_ne_bytes());
        assert_eq!(netmask_prefix(AF_INET6, 64u32.to_ne_bytes()), Ok(64));
        assert!(netmask_prefix(AF_INET6, 129u32.to_ne_bytes()).is_err());
    }

    #[test]
    fn scheduler_names_round_trip() {
        for name in ["rr", "wrr", "lc", "sh", "mh", "dh"] {
            assert_eq!(Scheduler::from_name(name).name(), name);
        }
        assert_eq!(Scheduler::from_name("mh"), Scheduler::MaglevHashing);
    }

    #[test]
    fn invalid_services_and_destinations_name_the_field() {
        let key = ServiceKey::new(Protocol::Tcp, "10.96.0.1".parse().unwrap(), 80);
        let long = VirtualService::new(key, Scheduler::Other("a-very-long-scheduler".into()));
        assert!(long.validate().unwrap_err().contains("scheduler"));
        let mut mask = VirtualService::new(key, Scheduler::RoundRobin);
        mask.netmask = 33;
        assert!(mask.validate().unwrap_err().contains("netmask /33"));
        let v6 = Destination::masquerade("fd00::1".parse().unwrap(), 80, 1);
        assert!(v6.validate(&key).unwrap_err().contains("fd00::1"));
        let heavy = Destination::masquerade("10.0.0.1".parse().unwrap(), 80, u32::MAX);
        assert!(heavy.validate(&key).unwrap_err().contains("weight"));
    }

    #[test]
    fn service_key_displays_like_ipvsadm() {
        let v4 = ServiceKey::new(Protocol::Udp, "10.96.0.10".parse().unwrap(), 53);
        let v6 = ServiceKey::new(Protocol::Tcp, "fd00::a".parse().unwrap(), 443);
        assert_eq!(v4.to_string(), "UDP 10.96.0.10:53");
        assert_eq!(v6.to_string(), "TCP [fd00::a]:443");
    }
}
