//! The allocator state behind one lock: a ClusterIP allocator per configured family, the node
//! port allocator, and the values that in-flight writes own (so the repair audit does not
//! mistake them for leaks).

use std::collections::HashMap;
use std::net::IpAddr;

use svcplane_allocators::{
    DualStackClusterIps, Error, IpFamily, NodePortAllocator, PortRange, Resource,
};

use super::holdings::Held;

/// Allocators of one API server.
#[derive(Debug, Clone)]
pub struct Pools {
    /// ClusterIP allocators, primary family first.
    pub ips: DualStackClusterIps,
    /// The node port allocator (`spec.ports[*].nodePort`, `spec.healthCheckNodePort`).
    pub ports: NodePortAllocator,
    /// Values owned by reservations that are neither committed nor rolled back yet.
    in_flight: HashMap<Held, u32>,
}

impl Pools {
    /// Empty allocators over the given ranges.
    pub fn new(ips: DualStackClusterIps, ports: PortRange) -> Self {
        Pools {
            ips,
            ports: NodePortAllocator::new(ports),
            in_flight: HashMap::new(),
        }
    }

    /// Empty allocators over the same ranges as `self` (what a rebuild starts from).
    pub fn empty_like(&self) -> Self {
        let cidrs: Vec<_> = self.ips.allocators().map(|a| a.cidr()).collect();
        let ips = DualStackClusterIps::new(cidrs[0], cidrs.get(1).copied())
            .expect("ranges of an existing allocator are valid");
        Pools::new(ips, self.ports.range())
    }

    /// The configured CIDRs, comma-separated (for messages about unconfigured families).
    pub fn cidrs(&self) -> String {
        self.ips
            .allocators()
            .map(|a| a.cidr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reserves a specific value.
    ///
    /// Errors: the allocator's `NotInRange` (also for an IP of an unconfigured family) or
    /// `AlreadyAllocated`.
    pub fn allocate(&mut self, value: Held) -> Result<(), Error> {
        match value {
            Held::ClusterIp(ip) => match self.ips.for_ip_mut(ip) {
                Some(alloc) => alloc.allocate(ip),
                None => Err(self.unconfigured(ip)),
            },
            Held::NodePort(port) => self.ports.allocate(port),
        }
    }

    /// Whether [`allocate`](Self::allocate) would succeed, without reserving.
    pub fn check_allocatable(&self, value: Held) -> Result<(), Error> {
        match value {
            Held::ClusterIp(ip) => match self.ips.for_family(IpFamily::of(&ip)) {
                Some(alloc) => alloc.check_allocatable(ip),
                None => Err(self.unconfigured(ip)),
            },
            Held::NodePort(port) => self.ports.check_allocatable(port),
        }
    }

    /// Frees a value; returns whether it was allocated. Values outside every range (an IP of
    /// a family no longer configured, a port outside a narrowed range) are ignored, as
    /// upstream's `Release` ignores them.
    pub fn release(&mut self, value: Held) -> bool {
        match value {
            Held::ClusterIp(ip) => self
                .ips
                .for_ip_mut(ip)
                .and_then(|a| a.release(ip).ok())
                .unwrap_or(false),
            Held::NodePort(port) => self.ports.release(port).unwrap_or(false),
        }
    }

    /// Whether a value is allocated.
    pub fn contains(&self, value: Held) -> bool {
        match value {
            Held::ClusterIp(ip) => self
                .ips
                .for_family(IpFamily::of(&ip))
                .is_some_and(|a| a.contains(ip)),
            Held::NodePort(port) => self.ports.contains(port),
        }
    }

    /// Every allocated value: ClusterIPs (primary family first), then node ports.
    pub fn allocated(&self) -> Vec<Held> {
        let mut out: Vec<Held> = self
            .ips
            .allocators()
            .flat_map(|a| a.iter().map(Held::ClusterIp))
            .collect();
        out.extend(self.ports.iter().map(Held::NodePort));
        out
    }

    /// Marks values as owned by an in-flight reservation.
    pub fn hold_in_flight(&mut self, values: impl IntoIterator<Item = Held>) {
        for v in values {
            *self.in_flight.entry(v).or_insert(0) += 1;
        }
    }

    /// Ends in-flight ownership of values.
    pub fn end_in_flight(&mut self, values: impl IntoIterator<Item = Held>) {
        for v in values {
            if let Some(n) = self.in_flight.get_mut(&v) {
                *n -= 1;
                if *n == 0 {
                    self.in_flight.remove(&v);
                }
            }
        }
    }

    /// Whether an in-flight reservation owns the value.
    pub fn is_in_flight(&self, value: Held) -> bool {
        self.in_flight.contains_key(&value)
    }

    fn unconfigured(&self, ip: IpAddr) -> Error {
        Error::NotInRange {
            resource: Resource::Ip,
            value: ip.to_string(),
            range: self.cidrs(),
        }
    }
}
