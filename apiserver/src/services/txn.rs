//! One request's allocations, made under the allocator lock and undone if the request fails
//! (upstream's `metaTransaction` of `callbackTransaction`s and `PortAllocationOperation`).
//!
//! Dry runs reserve nothing and mirror upstream's dry-run allocators: a user-chosen ClusterIP
//! is only checked against the range (`dryRunRange.Allocate`), a user-chosen node port only
//! against the allocated set (`PortAllocationOperation.Allocate`), a dynamic ClusterIP is the
//! network address of the range and dynamic node ports are placeholders from 32769 upwards.

use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use svcplane_allocators::{Error, IpFamily, Resource};

use super::holdings::Held;
use super::metrics::AllocatorMetrics;
use super::pools::Pools;
use super::reservation::Reservation;

/// First placeholder node port of a dry run, minus one (upstream `lastPort = 32768`).
const DRY_RUN_PORT_BASE: i32 = 32768;

/// Allocations of one request.
pub struct Txn<'a> {
    pools: &'a mut Pools,
    metrics: &'a AllocatorMetrics,
    dry_run: bool,
    allocated: Vec<Held>,
    /// Every value handed out or reserved by this transaction (in a dry run too).
    taken: Vec<Held>,
}

impl<'a> Txn<'a> {
    /// Starts a transaction on locked pools.
    pub fn new(pools: &'a mut Pools, metrics: &'a AllocatorMetrics, dry_run: bool) -> Self {
        Txn {
            pools,
            metrics,
            dry_run,
            allocated: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Whether this transaction already took `value`.
    pub fn took(&self, value: Held) -> bool {
        self.taken.contains(&value)
    }

    /// Reserves a user-chosen ClusterIP.
    pub fn cluster_ip(&mut self, ip: IpAddr) -> Result<(), Error> {
        let value = Held::ClusterIp(ip);
        let result = if self.dry_run {
            match self.pools.check_allocatable(value) {
                Err(e @ Error::NotInRange { .. }) => Err(e),
                _ => Ok(()),
            }
        } else {
            self.pools.allocate(value)
        };
        self.record(value, result)
    }

    /// Takes the next free ClusterIP of `family`.
    pub fn next_cluster_ip(&mut self, family: IpFamily) -> Result<IpAddr, Error> {
        let Some(alloc) = self.pools.ips.for_family_mut(family) else {
            return Err(Error::RangeFull {
                resource: Resource::Ip,
                range: format!("{family} (not configured)"),
            });
        };
        if self.dry_run {
            let ip = alloc.cidr().network();
            self.taken.push(Held::ClusterIp(ip));
            return Ok(ip);
        }
        let result = alloc.allocate_next();
        match result {
            Ok(ip) => {
                self.allocated.push(Held::ClusterIp(ip));
                self.taken.push(Held::ClusterIp(ip));
                Ok(ip)
            }
            Err(e) => {
                self.metrics.count_error(e.kind());
                Err(e)
            }
        }
    }

    /// Reserves a user-chosen node port.
    pub fn node_port(&mut self, port: i32) -> Result<(), Error> {
        let value = Held::NodePort(port);
        if self.dry_run {
            if self.pools.contains(value) || self.taken.contains(&value) {
                let err = Error::AlreadyAllocated {
                    resource: Resource::Port,
                    value: port.to_string(),
                };
                self.metrics.count_error(err.kind());
                return Err(err);
            }
            self.taken.push(value);
            return Ok(());
        }
        let result = self.pools.allocate(value);
        self.record(value, result)
    }

    /// Takes the next free node port.
    pub fn next_node_port(&mut self) -> Result<i32, Error> {
        if self.dry_run {
            let last = self
                .taken
                .iter()
                .filter_map(|v| match v {
                    Held::NodePort(p) => Some(*p),
                    Held::ClusterIp(_) => None,
                })
                .max()
                .unwrap_or(DRY_RUN_PORT_BASE);
            let port = last + 1;
            self.taken.push(Held::NodePort(port));
            return Ok(port);
        }
        match self.pools.ports.allocate_next() {
            Ok(port) => {
                self.allocated.push(Held::NodePort(port));
                self.taken.push(Held::NodePort(port));
                Ok(port)
            }
            Err(e) => {
                self.metrics.count_error(e.kind());
                Err(e)
            }
        }
    }

    /// Reserves a specific value of either kind.
    pub fn value(&mut self, value: Held) -> Result<(), Error> {
        match value {
            Held::ClusterIp(ip) => self.cluster_ip(ip),
            Held::NodePort(port) => self.node_port(port),
        }
    }

    /// The request failed: frees everything taken.
    pub fn abort(self) {
        for v in self.allocated {
            self.pools.release(v);
        }
    }

    /// The request goes on: hands what was taken, and what the write gives up once it
    /// commits, to a [`Reservation`].
    /// `owner` is the shared handle of the locked pools, which the reservation finishes
    /// against (on commit, or on drop).
    pub fn finish(self, release_on_commit: Vec<Held>, owner: &Arc<Mutex<Pools>>) -> Reservation {
        if self.dry_run {
            return Reservation::none();
        }
        self.pools
            .hold_in_flight(self.allocated.iter().chain(&release_on_commit).copied());
        Reservation::new(self.allocated, release_on_commit, owner.clone())
    }

    fn record(&mut self, value: Held, result: Result<(), Error>) -> Result<(), Error> {
        match result {
            Ok(()) => {
                if !self.dry_run {
                    self.allocated.push(value);
                }
                self.taken.push(value);
                Ok(())
            }
            Err(e) => {
                self.metrics.count_error(e.kind());
                Err(e)
            }
        }
    }
}
