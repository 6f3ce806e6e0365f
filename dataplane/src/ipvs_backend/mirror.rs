//! The backend's memory of what the kernel holds, so a partial sync diffs one Service's rows
//! against it without asking the kernel (a full sync re-reads the kernel into it):
//!
//! - [`IpvsMirror`]: our IPVS virtual services with their destinations, and which Service
//!   owns each;
//! - [`ElementLedger`]: which Services want each element of the nftables sets (an address
//!   shared by two Services stays bound while either wants it).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

use super::nft_table::Element;
use crate::ipvs::{Destination, IpvsOp, ServiceKey, VirtualService};
use crate::model::ServiceName;

/// One of our virtual services as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredService {
    /// Its attributes.
    pub service: VirtualService,
    /// Its destinations (connection counts as last read; not kept up to date).
    pub destinations: HashMap<SocketAddr, Destination>,
}

/// Our IPVS virtual services.
#[derive(Debug, Clone, Default)]
pub struct IpvsMirror {
    services: HashMap<ServiceKey, MirroredService>,
    owners: HashMap<ServiceKey, ServiceName>,
    by_owner: HashMap<ServiceName, BTreeSet<ServiceKey>>,
}

impl IpvsMirror {
    /// The virtual service at `key`, if ours.
    pub fn get(&self, key: &ServiceKey) -> Option<&MirroredService> {
        self.services.get(key)
    }

    /// Every key of ours.
    pub fn keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services.keys()
    }

    /// Number of virtual services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether we hold no virtual service.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The keys last programmed for `owner`.
    pub fn keys_of(&self, owner: &ServiceName) -> impl Iterator<Item = &ServiceKey> {
        self.by_owner.get(owner).into_iter().flatten()
    }

    /// The Service `key` was last programmed for (none for a virtual service found in the
    /// kernel that no Service wants).
    pub fn owner(&self, key: &ServiceKey) -> Option<&ServiceName> {
        self.owners.get(key)
    }

    /// Records a virtual service read from the kernel, with its destinations.
    pub fn insert(&mut self, service: VirtualService, destinations: Vec<Destination>) {
        let destinations = destinations
            .into_iter()
            .map(|d| (d.socket_addr(), d))
            .collect();
        self.services.insert(
            service.key,
            MirroredService {
                service,
                destinations,
            },
        );
    }

    /// Records that `key` is programmed for `owner`.
    pub fn set_owner(&mut self, key: ServiceKey, owner: ServiceName) {
        if let Some(previous) = self.owners.insert(key, owner.clone()) {
            if previous != owner {
                self.unlink(&previous, &key);
            }
        }
        self.by_owner.entry(owner).or_default().insert(key);
    }

    fn unlink(&mut self, owner: &ServiceName, key: &ServiceKey) {
        if let Some(keys) = self.by_owner.get_mut(owner) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    /// Forgets everything (before a full re-read).
    pub fn clear(&mut self) {
        self.services.clear();
        self.owners.clear();
        self.by_owner.clear();
    }

    /// Updates the mirror after the kernel accepted `op`.
    pub fn applied(&mut self, op: &IpvsOp) {
        match op {
            IpvsOp::AddService(service) => {
                self.services.insert(
                    service.key,
                    MirroredService {
                        service: service.clone(),
                        destinations: HashMap::new(),
                    },
                );
            }
            IpvsOp::EditService(service) => {
                if let Some(held) = self.services.get_mut(&service.key) {
                    held.service = service.clone();
                }
            }
            IpvsOp::DelService(key) => {
                self.services.remove(key);
                if let Some(owner) = self.owners.remove(key) {
                    self.unlink(&owner, key);
                }
            }
            IpvsOp::AddDest { service, dest } | IpvsOp::EditDest { service, dest } => {
                if let Some(held) = self.services.get_mut(service) {
                    let entry = held
                        .destinations
                        .entry(dest.socket_addr())
                        .or_insert_with(|| dest.clone());
                    entry.weight = dest.weight;
                    entry.fwd = dest.fwd;
                }
            }
            IpvsOp::DelDest { service, dest } => {
                if let Some(held) = self.services.get_mut(service) {
                    held.destinations.remove(dest);
                }
            }
        }
    }
}

/// Which Services want each nftables set element.
#[derive(Debug, Clone, Default)]
pub struct ElementLedger {
    by_service: HashMap<ServiceName, BTreeSet<Element>>,
    wanted_by: HashMap<Element, u32>,
}

/// The elements a change of wants adds to and removes from the kernel's sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElementChange {
    /// Elements nobody wanted before.
    pub added: Vec<Element>,
    /// Elements nobody wants any more.
    pub removed: Vec<Element>,
}

impl ElementLedger {
    /// Replaces what `service` wants; returns the elements that appear and disappear overall.
    pub fn replace(&mut self, service: &ServiceName, wants: BTreeSet<Element>) -> ElementChange {
        let previous = if wants.is_empty() {
            self.by_service.remove(service).unwrap_or_default()
        } else {
            self.by_service
                .insert(service.clone(), wants.clone())
                .unwrap_or_default()
        };
        let mut change = ElementChange::default();
        for element in wants.difference(&previous) {
            let count = self.wanted_by.entry(element.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                change.added.push(element.clone());
            }
        }
        for element in previous.difference(&wants) {
            if let Some(count) = self.wanted_by.get_mut(element) {
                *count -= 1;
                if *count == 0 {
                    self.wanted_by.remove(element);
                    change.removed.push(element.clone());
                }
            }
        }
        change
    }

    /// Every element some Service wants.
    pub fn wanted(&self) -> impl Iterator<Item = &Element> {
        self.wanted_by.keys()
    }

    /// Whether some Service wants `element`.
    pub fn is_wanted(&self, element: &Element) -> bool {
        self.wanted_by.contains_key(element)
    }

    /// Forgets everything (before a full sync rebuilds it).
    pub fn clear(&mut self) {
        self.by_service.clear();
        self.wanted_by.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{Protocol, Scheduler};
    use crate::ipvs_backend::nft_table::{SetId, SetKind};
    use crate::model::Family;

    fn vip(text: &str) -> Element {
        (
            SetId {
                kind: SetKind::Vips,
                family: Family::IPv4,
            },
            text.to_string(),
        )
    }

    #[test]
    fn a_shared_element_stays_until_the_last_service_drops_it() {
        let a = ServiceName::new("ns", "a");
        let b = ServiceName::new("ns", "b");
        let mut ledger = ElementLedger::default();
        let change = ledger.replace(&a, [vip("10.0.0.1"), vip("10.0.0.2")].into());
        assert_eq!(change.added.len(), 2);
        let change = ledger.replace(&b, [vip("10.0.0.1")].into());
        assert_eq!(change, ElementChange::default(), "already wanted by a");
        let change = ledger.replace(&a, BTreeSet::new());
        assert_eq!(
            change.removed,
            vec![vip("10.0.0.2")],
            "10.0.0.1 is still b's"
        );
        assert!(ledger.is_wanted(&vip("10.0.0.1")));
        let change = ledger.replace(&b, BTreeSet::new());
        assert_eq!(change.removed, vec![vip("10.0.0.1")]);
        assert_eq!(ledger.wanted().count(), 0);
    }

    #[test]
    fn applied_operations_update_services_destinations_and_owners() {
        let key = ServiceKey::new(Protocol::Tcp, "10.96.0.1".parse().unwrap(), 80);
        let owner = ServiceName::new("ns", "web");
        let dest = Destination::masquerade("10.244.1.2".parse().unwrap(), 8080, 1);
        let mut mirror = IpvsMirror::default();
        mirror.applied(&IpvsOp::AddService(VirtualService::new(
            key,
            Scheduler::RoundRobin,
        )));
        mirror.set_owner(key, owner.clone());
        mirror.applied(&IpvsOp::AddDest {
            service: key,
            dest: dest.clone(),
        });
        let mut drained = dest.clone();
        drained.weight = 0;
        mirror.applied(&IpvsOp::EditDest {
            service: key,
            dest: drained,
        });
        assert_eq!(
            mirror.get(&key).unwrap().destinations[&dest.socket_addr()].weight,
            0
        );
        assert_eq!(mirror.keys_of(&owner).collect::<Vec<_>>(), vec![&key]);
        mirror.applied(&IpvsOp::DelService(key));
        assert!(mirror.is_empty());
        assert_eq!(mirror.keys_of(&owner).count(), 0);
        assert_eq!(mirror.owner(&key), None);
    }
}
