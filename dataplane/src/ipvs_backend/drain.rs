//! Graceful termination of IPVS destinations, as kube-proxy's
//! `pkg/proxy/ipvs/graceful_termination.go`: a destination the table no longer wants is not
//! deleted at once when it is a TCP one; its weight goes to 0 (no new connections), and it is
//! deleted once its connections are gone (`ActiveConn + InActConn == 0`) or, unlike upstream
//! (which can keep a weight-0 destination forever behind one long-lived connection), once
//! `--ipvs-graceful-termination-timeout` has passed. UDP and SCTP destinations are deleted at
//! once (upstream `IsRsGracefulTerminationNeeded`: true for TCP only; established UDP flows are
//! dropped by `expire_nodest_conn=1` and their conntrack entries cleaned).
//!
//! This module is the bookkeeping and the decision; the backend reads the connection counts
//! and deletes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::ipvs::{Destination, Protocol, ServiceKey};

/// Default `--ipvs-graceful-termination-timeout`: IPVS's own default timeout of an established
/// TCP connection (900 s, `ipvsadm --set`), so by default no connection IPVS would still
/// forward is cut by the deletion; lower it to bound how long a removed endpoint keeps its
/// weight-0 slot.
pub const DEFAULT_GRACEFUL_TERMINATION_TIMEOUT: Duration = Duration::from_secs(900);

/// How often draining destinations are checked between syncs (upstream checks every minute,
/// `rsCheckDeleteInterval`; a check costs one destination dump per affected virtual service).
pub const DRAIN_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Whether removing a destination of this protocol waits for its connections (upstream
/// `IsRsGracefulTerminationNeeded`).
pub fn drains_gracefully(protocol: Protocol) -> bool {
    protocol == Protocol::Tcp
}

/// What to do with a draining destination now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it at weight 0.
    Keep,
    /// Delete it: no connection left.
    Drained,
    /// Delete it: the timeout passed with connections left.
    TimedOut,
}

/// The destinations being drained and since when.
#[derive(Debug, Clone)]
pub struct Draining {
    timeout: Duration,
    since: HashMap<(ServiceKey, SocketAddr), Instant>,
}

impl Draining {
    /// No destination draining yet; drains end after `timeout` at the latest.
    pub fn new(timeout: Duration) -> Draining {
        Draining {
            timeout,
            since: HashMap::new(),
        }
    }

    /// Records that `dest` of `service` drains from `now` on (an earlier start is kept: a
    /// destination seen again at weight 0 does not restart its clock).
    pub fn begin(&mut self, service: ServiceKey, dest: SocketAddr, now: Instant) {
        self.since.entry((service, dest)).or_insert(now);
    }

    /// The destination is wanted again (its weight restored) or gone.
    pub fn end(&mut self, service: ServiceKey, dest: SocketAddr) {
        self.since.remove(&(service, dest));
    }

    /// The whole virtual service is gone.
    pub fn end_service(&mut self, service: ServiceKey) {
        self.since.retain(|(key, _), _| *key != service);
    }

    /// Whether `dest` of `service` is draining.
    pub fn contains(&self, service: ServiceKey, dest: SocketAddr) -> bool {
        self.since.contains_key(&(service, dest))
    }

    /// Number of destinations draining.
    pub fn len(&self) -> usize {
        self.since.len()
    }

    /// Whether nothing drains.
    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }

    /// The virtual services with draining destinations.
    pub fn services(&self) -> Vec<ServiceKey> {
        let mut keys: Vec<ServiceKey> = self.since.keys().map(|(key, _)| *key).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The draining destinations of `service`.
    pub fn destinations_of(&self, service: ServiceKey) -> Vec<SocketAddr> {
        let mut dests: Vec<SocketAddr> = self
            .since
            .keys()
            .filter(|(key, _)| *key == service)
            .map(|(_, dest)| *dest)
            .collect();
        dests.sort();
        dests
    }

    /// When a check is next worth making: after [`DRAIN_CHECK_INTERVAL`] from `last_check`,
    /// or earlier when a timeout expires before; `None` when nothing drains.
    pub fn next_check(&self, last_check: Instant) -> Option<Instant> {
        let earliest_timeout = self
            .since
            .values()
            .map(|start| *start + self.timeout)
            .min()?;
        Some(earliest_timeout.min(last_check + DRAIN_CHECK_INTERVAL))
    }

    /// The verdict for `dest` of `service` as the kernel reports it now.
    pub fn verdict(&self, service: ServiceKey, dest: &Destination, now: Instant) -> Verdict {
        let connections = u64::from(dest.active_conns) + u64::from(dest.inactive_conns);
        if connections == 0 {
            return Verdict::Drained;
        }
        let started = self
            .since
            .get(&(service, dest.socket_addr()))
            .copied()
            .unwrap_or(now);
        if now.saturating_duration_since(started) >= self.timeout {
            Verdict::TimedOut
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new(Protocol::Tcp, "10.96.0.10".parse().unwrap(), 80)
    }

    fn dest(active: u32, inactive: u32) -> Destination {
        let mut d = Destination::masquerade("10.244.1.2".parse().unwrap(), 8080, 0);
        d.active_conns = active;
        d.inactive_conns = inactive;
        d
    }

    /// Rows: upstream `IsRsGracefulTerminationNeeded` (graceful_termination.go deleteRsFunc).
    #[test]
    fn only_tcp_destinations_drain_gracefully() {
        assert!(drains_gracefully(Protocol::Tcp));
        assert!(!drains_gracefully(Protocol::Udp), "UDP: deleted at once");
        assert!(
            !drains_gracefully(Protocol::Sctp),
            "SCTP: deleted at once, as upstream"
        );
    }

    /// deleteRsFunc: `ActiveConn + InactiveConn != 0` keeps the destination.
    #[test]
    fn a_destination_is_deleted_when_active_and_inactive_connections_are_zero() {
        let t0 = Instant::now();
        let mut draining = Draining::new(Duration::from_secs(60));
        let d = dest(0, 0).socket_addr();
        draining.begin(key(), d, t0);
        assert_eq!(draining.verdict(key(), &dest(1, 0), t0), Verdict::Keep);
        assert_eq!(
            draining.verdict(key(), &dest(0, 3), t0),
            Verdict::Keep,
            "TIME_WAIT connections count"
        );
        assert_eq!(draining.verdict(key(), &dest(0, 0), t0), Verdict::Drained);
    }

    #[test]
    fn the_timeout_ends_a_drain_that_connections_keep_open() {
        let t0 = Instant::now();
        let mut draining = Draining::new(Duration::from_secs(30));
        draining.begin(key(), dest(0, 0).socket_addr(), t0);
        let busy = dest(2, 0);
        assert_eq!(
            draining.verdict(key(), &busy, t0 + Duration::from_secs(29)),
            Verdict::Keep
        );
        assert_eq!(
            draining.verdict(key(), &busy, t0 + Duration::from_secs(30)),
            Verdict::TimedOut
        );
        // A zero timeout deletes at once.
        let at_once = Draining::new(Duration::ZERO);
        assert_eq!(at_once.verdict(key(), &busy, t0), Verdict::TimedOut);
    }

    #[test]
    fn seeing_a_drain_again_keeps_its_start_and_ending_it_forgets_it() {
        let t0 = Instant::now();
        let mut draining = Draining::new(Duration::from_secs(30));
        let d = dest(0, 0).socket_addr();
        draining.begin(key(), d, t0);
        draining.begin(key(), d, t0 + Duration::from_secs(20));
        assert_eq!(
            draining.verdict(key(), &dest(1, 0), t0 + Duration::from_secs(31)),
            Verdict::TimedOut,
            "the clock started at the first sighting"
        );
        draining.end(key(), d);
        assert!(draining.is_empty());
        draining.begin(key(), d, t0);
        draining.end_service(key());
        assert!(!draining.contains(key(), d));
    }

    #[test]
    fn checks_are_due_every_interval_or_at_the_first_timeout() {
        let t0 = Instant::now();
        let mut draining = Draining::new(Duration::from_secs(2));
        assert_eq!(draining.next_check(t0), None, "nothing drains");
        draining.begin(key(), dest(0, 0).socket_addr(), t0);
        assert_eq!(draining.next_check(t0), Some(t0 + Duration::from_secs(2)));
        let mut long = Draining::new(Duration::from_secs(600));
        long.begin(key(), dest(0, 0).socket_addr(), t0);
        assert_eq!(long.next_check(t0), Some(t0 + DRAIN_CHECK_INTERVAL));
        assert_eq!(long.services(), vec![key()]);
        assert_eq!(long.destinations_of(key()), vec![dest(0, 0).socket_addr()]);
    }
}
