//! The IPVS part of a sync as a pure computation: the virtual services some Services want,
//! against what the mirror says the kernel holds, give the operations to send (and the
//! destinations that start or stop draining). No kernel access: the number of writes of a
//! sync is visible here, and tested here.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::desired::WantedService;
use super::drain::drains_gracefully;
use super::mirror::IpvsMirror;
use crate::ipvs::{Destination, ForwardMethod, IpvsOp, ServiceKey};
use crate::model::ServiceName;

/// Operations for the kernel, in the order they must run, each with the Service it is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpvsPlan {
    /// The operations: virtual services created or edited first, then destinations, then
    /// virtual services deleted.
    pub ops: Vec<IpvsOp>,
    /// For each operation, the Service it is for (`None` for a leftover no Service claims).
    pub owners: Vec<Option<ServiceName>>,
    /// TCP destinations no longer wanted: at weight 0 once the plan ran, to be deleted when
    /// drained.
    pub draining: Vec<(ServiceKey, SocketAddr)>,
    /// Destinations wanted again (their weight restored, or re-created).
    pub wanted_again: Vec<(ServiceKey, SocketAddr)>,
}

impl IpvsPlan {
    fn push(&mut self, op: IpvsOp, owner: Option<&ServiceName>) {
        self.ops.push(op);
        self.owners.push(owner.cloned());
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The plan that gives `wanted` their exact state and deletes the virtual services of
/// `retired` (ours, no longer wanted by their Services). Destinations not wanted are deleted,
/// except TCP ones, which go to weight 0 and are listed in [`IpvsPlan::draining`].
pub fn plan_ipvs<'a>(
    wanted: impl IntoIterator<Item = &'a WantedService>,
    retired: impl IntoIterator<Item = ServiceKey>,
    mirror: &IpvsMirror,
) -> IpvsPlan {
    let mut plan = IpvsPlan::default();
    let mut dest_ops: Vec<(IpvsOp, &ServiceName)> = Vec::new();
    for want in wanted {
        let key = want.service.key;
        let owner = &want.owner;
        let held = mirror.get(&key);
        match held {
            None => plan.push(IpvsOp::AddService(want.service.clone()), Some(owner)),
            Some(held) if held.service != want.service => {
                plan.push(IpvsOp::EditService(want.service.clone()), Some(owner))
            }
            Some(_) => {}
        }
        for (addr, weight) in &want.destinations {
            let dest = Destination::masquerade(addr.ip(), addr.port(), *weight);
            match held.and_then(|h| h.destinations.get(addr)) {
                None => {
                    if held.is_some() {
                        plan.wanted_again.push((key, *addr));
                    }
                    dest_ops.push((IpvsOp::AddDest { service: key, dest }, owner));
                }
                Some(current) => {
                    if current.weight == 0 && *weight != 0 {
                        plan.wanted_again.push((key, *addr));
                    }
                    if current.weight != *weight || current.fwd != ForwardMethod::Masquerade {
                        dest_ops.push((IpvsOp::EditDest { service: key, dest }, owner));
                    }
                }
            }
        }
        let Some(held) = held else { continue };
        let mut unwanted: Vec<&Destination> = held
            .destinations
            .values()
            .filter(|d| !want.destinations.contains_key(&d.socket_addr()))
            .collect();
        unwanted.sort_by_key(|d| d.socket_addr());
        for current in unwanted {
            let addr = current.socket_addr();
            if drains_gracefully(key.protocol) {
                plan.draining.push((key, addr));
                if current.weight != 0 {
                    let mut drained = current.clone();
                    drained.weight = 0;
                    dest_ops.push((
                        IpvsOp::EditDest {
                            service: key,
                            dest: drained,
                        },
                        owner,
                    ));
                }
            } else {
                dest_ops.push((
                    IpvsOp::DelDest {
                        service: key,
                        dest: addr,
                    },
                    owner,
                ));
            }
        }
    }
    for (op, owner) in dest_ops {
        plan.push(op, Some(owner));
    }
    let retired: BTreeSet<ServiceKey> = retired.into_iter().collect();
    for key in retired {
        if mirror.get(&key).is_some() {
            let owner = mirror.owner(&key).cloned();
            plan.push(IpvsOp::DelService(key), owner.as_ref());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ipvs::{Protocol, Scheduler, VirtualService};

    fn key(protocol: Protocol) -> ServiceKey {
        ServiceKey::new(protocol, "10.96.0.10".parse().unwrap(), 80)
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::new([10, 244, 1, last].into(), 8080)
    }

    fn want(protocol: Protocol, dests: &[u8]) -> WantedService {
        WantedService {
            owner: ServiceName::new("ns", "web"),
            service: VirtualService::new(key(protocol), Scheduler::RoundRobin),
            destinations: dests
                .iter()
                .map(|d| (addr(*d), 1))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// A mirror holding exactly what `w` wants, with destination weights overridden.
    fn held(w: &WantedService, weights: &[(u8, u32)]) -> IpvsMirror {
        let mut mirror = IpvsMirror::default();
        let dests = weights
            .iter()
            .map(|(d, weight)| Destination::masquerade(addr(*d).ip(), 8080, *weight))
            .collect();
        mirror.insert(w.service.clone(), dests);
        mirror.set_owner(w.service.key, w.owner.clone());
        mirror
    }

    #[test]
    fn a_new_virtual_service_is_created_before_its_destinations() {
        let w = want(Protocol::Tcp, &[1, 2]);
        let plan = plan_ipvs([&w], [], &IpvsMirror::default());
        let actions: Vec<&str> = plan.ops.iter().map(IpvsOp::action).collect();
        assert_eq!(
            actions,
            vec!["add service", "add destination", "add destination"]
        );
        assert!(plan.owners.iter().all(|o| o.as_ref() == Some(&w.owner)));
    }

    #[test]
    fn what_the_kernel_already_holds_costs_no_operation() {
        let w = want(Protocol::Tcp, &[1, 2]);
        let mirror = held(&w, &[(1, 1), (2, 1)]);
        assert!(plan_ipvs([&w], [], &mirror).is_empty());
    }

    /// One endpoint replaced by another in a table of any size: two operations.
    #[test]
    fn an_endpoint_change_is_one_operation_per_changed_destination() {
        let before = want(Protocol::Tcp, &[1, 2, 3]);
        let mirror = held(&before, &[(1, 1), (2, 1), (3, 1)]);
        let after = want(Protocol::Tcp, &[1, 2, 4]);
        let plan = plan_ipvs([&after], [], &mirror);
        assert_eq!(plan.ops.len(), 2, "{:?}", plan.ops);
        assert!(
            matches!(&plan.ops[0], IpvsOp::AddDest { dest, .. } if dest.socket_addr() == addr(4))
        );
        assert!(
            matches!(&plan.ops[1], IpvsOp::EditDest { dest, .. } if dest.socket_addr() == addr(3) && dest.weight == 0)
        );
        assert_eq!(plan.draining, vec![(key(Protocol::Tcp), addr(3))]);
    }

    /// graceful_termination.go: TCP destinations go to weight 0; UDP and SCTP ones are deleted.
    #[test]
    fn removed_tcp_destinations_drain_and_udp_or_sctp_ones_are_deleted() {
        for protocol in [Protocol::Udp, Protocol::Sctp] {
            let before = want(protocol, &[1, 2]);
            let mirror = held(&before, &[(1, 1), (2, 1)]);
            let plan = plan_ipvs([&want(protocol, &[1])], [], &mirror);
            assert_eq!(
                plan.ops,
                vec![IpvsOp::DelDest {
                    service: key(protocol),
                    dest: addr(2)
                }],
                "{protocol}"
            );
            assert!(plan.draining.is_empty());
        }
        // A TCP destination already at weight 0 keeps draining without a write.
        let before = want(Protocol::Tcp, &[1, 2]);
        let mirror = held(&before, &[(1, 1), (2, 0)]);
        let plan = plan_ipvs([&want(Protocol::Tcp, &[1])], [], &mirror);
        assert!(plan.ops.is_empty());
        assert_eq!(plan.draining, vec![(key(Protocol::Tcp), addr(2))]);
    }

    #[test]
    fn a_draining_destination_wanted_again_gets_its_weight_back() {
        let w = want(Protocol::Tcp, &[1, 2]);
        let mirror = held(&w, &[(1, 1), (2, 0)]);
        let plan = plan_ipvs([&w], [], &mirror);
        assert!(
            matches!(plan.ops.as_slice(), [IpvsOp::EditDest { dest, .. }] if dest.socket_addr() == addr(2) && dest.weight == 1)
        );
        assert_eq!(plan.wanted_again, vec![(key(Protocol::Tcp), addr(2))]);
    }

    #[test]
    fn changed_scheduler_or_affinity_edits_the_service_in_place() {
        let w = want(Protocol::Tcp, &[1]);
        let mirror = held(&w, &[(1, 1)]);
        let mut sticky = w.clone();
        sticky.service = sticky.service.persistent(10800);
        let plan = plan_ipvs([&sticky], [], &mirror);
        assert_eq!(plan.ops, vec![IpvsOp::EditService(sticky.service.clone())]);
        let mut lc = w.clone();
        lc.service.scheduler = Scheduler::LeastConnection;
        assert_eq!(plan_ipvs([&lc], [], &mirror).ops.len(), 1);
    }

    #[test]
    fn retired_virtual_services_are_deleted_last_and_unknown_keys_ignored() {
        let old = want(Protocol::Udp, &[1]);
        let mirror = held(&old, &[(1, 1)]);
        let new = WantedService {
            service: VirtualService::new(
                ServiceKey::new(Protocol::Udp, "10.96.0.11".parse().unwrap(), 53),
                Scheduler::RoundRobin,
            ),
            ..want(Protocol::Udp, &[1])
        };
        let stranger = ServiceKey::new(Protocol::Tcp, "192.0.2.1".parse().unwrap(), 80);
        let plan = plan_ipvs([&new], [old.service.key, stranger], &mirror);
        let actions: Vec<&str> = plan.ops.iter().map(IpvsOp::action).collect();
        assert_eq!(
            actions,
            vec!["add service", "add destination", "delete service"]
        );
        assert_eq!(plan.ops[2], IpvsOp::DelService(old.service.key));
        assert_eq!(plan.owners[2], Some(old.owner.clone()));
    }
}
