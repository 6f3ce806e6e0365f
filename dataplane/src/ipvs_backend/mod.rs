//! The IPVS backend: executes the desired table with IPVS virtual services over generic
//! netlink ([`crate::ipvs`]), virtual addresses on a dummy link ([`crate::iface`]), one
//! nftables table of its own for what IPVS cannot do ([`nft_table`]), stale UDP conntrack
//! cleanup ([`crate::conntrack`]) and kube-proxy's IPVS sysctls ([`crate::sysctl`]).
//!
//! # How a sync works
//!
//! The backend keeps a mirror of what the kernel holds ([`mirror`]): our virtual services with
//! their destinations, the addresses on the dummy link, the elements of our nftables sets.
//!
//! - A **full** sync (start-up, `--sync-period`, after any failure) reads the kernel again: the
//!   IPVS table (services, and the destinations of ours), the dummy link's addresses and our
//!   nftables table, then diffs the whole desired table against it.
//! - A **partial** sync (`SyncScope::Services`) diffs only the changed Services' rows against
//!   the mirror, without reading the kernel: the netlink messages are proportional to the
//!   change, not to the table.
//!
//! Either way only the difference is written: virtual services added, edited in place
//! (scheduler, persistence) or deleted, destinations added, re-weighted or deleted, addresses
//! bound or unbound, set elements added or deleted. Nothing is flushed and reloaded, so
//! established connections survive syncs and agent restarts.
//!
//! Order of a sync: new set elements first (the record that a virtual service is ours exists
//! before the virtual service), then IPVS operations in batches, then addresses, then set
//! elements no longer wanted; then draining destinations that have no connection left are
//! deleted, and stale UDP conntrack entries of the UDP rows that changed are removed.
//!
//! # What is ours
//!
//! An IPVS virtual service is ours when its `address . protocol . port` is in our nftables set
//! `services-v4`/`-v6` (written before the service is created, removed after it is deleted),
//! or when its address is bound to our dummy link (if somebody deleted the table). A
//! virtual service the desired table wants that already exists is adopted. Virtual services
//! of others are never read beyond the dump, changed or deleted, by syncs or by `--cleanup`.
//!
//! # Graceful termination
//!
//! See [`drain`]: removed TCP destinations go to weight 0 and are deleted once they have no
//! connection or `--ipvs-graceful-termination-timeout` passed; the agent asks for the check
//! through [`Backend::housekeeping_due`]. A restarted agent finds weight-0 destinations the
//! table does not want and drains them again, with a fresh clock.

pub mod addresses;
pub mod desired;
pub mod drain;
pub mod mirror;
pub mod nft_table;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::backend::{Backend, BackendError, SyncReport, SyncScope};
use crate::conntrack::{Conntrack, ServiceDestination, UdpServiceEndpoints};
use crate::iface::{IfaceError, DUMMY_LINK_NAME};
use crate::ipvs::{self, IpvsClient, IpvsError, IpvsOp, OpError, ServiceKey};
use crate::model::{DesiredTable, FrontendKind, ServiceName};
use crate::netlink_batch::NetlinkCounters;
use crate::nft_runner::{NftCounters, NftError, NftRunner};
use crate::sysctl::{ipvs_sysctls, KernelVersion, Sysctls};

use addresses::DummyAddresses;
use desired::{service_wants, ServiceWants, WantedService};
use drain::{Draining, Verdict, DEFAULT_GRACEFUL_TERMINATION_TIMEOUT};
use mirror::{ElementLedger, IpvsMirror};
use nft_table::{
    delete_script, elements_script, parse_listing, Element, Elements, SetKind, TableLayout,
    TABLE_FAMILY, TABLE_NAME,
};
use plan::{plan_ipvs, IpvsPlan};

const BACKEND: &str = "ipvs";

/// Settings of the IPVS backend.
#[derive(Debug, Clone)]
pub struct IpvsOptions {
    /// The dummy link virtual addresses are bound to (`svcplane0`).
    pub interface: String,
    /// `--ipvs-graceful-termination-timeout`: how long a removed TCP destination may keep
    /// connections at weight 0 before it is deleted anyway.
    pub graceful_termination_timeout: Duration,
    /// `--cluster-cidr`: traffic to ClusterIPs from outside is masqueraded.
    pub cluster_cidrs: Vec<IpNet>,
}

impl Default for IpvsOptions {
    fn default() -> Self {
        IpvsOptions {
            interface: DUMMY_LINK_NAME.to_string(),
            graceful_termination_timeout: DEFAULT_GRACEFUL_TERMINATION_TIMEOUT,
            cluster_cidrs: Vec::new(),
        }
    }
}

/// Kernel traffic of the backend so far, for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpvsStats {
    /// The IPVS netlink socket's counters (messages, sends, receives; dumps included).
    pub ipvs_netlink: NetlinkCounters,
    /// IPVS changes sent (adds, edits, deletes).
    pub ipvs_operations: u64,
    /// Addresses bound or unbound.
    pub address_changes: u64,
    /// Set elements added or deleted (a table replacement counts its elements).
    pub nft_element_changes: u64,
    /// `nft` runs.
    pub nft: NftCounters,
}

/// What `--cleanup` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Virtual services deleted.
    pub virtual_services: usize,
    /// Whether our nftables table existed and was deleted.
    pub table: bool,
    /// Whether the dummy link existed and was deleted.
    pub link: bool,
    /// Virtual services found and left alone (not ours).
    pub foreign_left: usize,
}

/// The IPVS backend. See the module documentation.
pub struct IpvsBackend {
    options: IpvsOptions,
    layout: TableLayout,
    ipvs: IpvsClient,
    dummy: DummyAddresses,
    nft: NftRunner,
    conntrack: Option<Conntrack>,
    mirror: IpvsMirror,
    ledger: ElementLedger,
    /// Elements of our sets as the kernel holds them.
    nft_held: BTreeSet<Element>,
    /// Addresses on the dummy link.
    bound: BTreeSet<IpAddr>,
    link_index: Option<u32>,
    /// Addresses of the node's other links (never bound to the dummy link).
    node_addresses: HashSet<IpAddr>,
    /// Whether our nftables table exists with this version's sets and rules.
    rules_current: bool,
    draining: Draining,
    last_drain_check: Instant,
    /// Whether the mirror is known to match the kernel (false: the next sync reads it).
    primed: bool,
    stats: IpvsStats,
}

impl IpvsBackend {
    /// Opens the kernel interfaces and sets kube-proxy's IPVS sysctls. A kernel without IPVS
    /// gives [`BackendError::Unavailable`] suggesting `--backend nftables`; so does a machine
    /// without the `nft` command. Like every call of a backend, this blocks: call it from a
    /// blocking context, not from inside an async task.
    pub fn new(options: IpvsOptions) -> Result<IpvsBackend, BackendError> {
        let ipvs = open_ipvs()?;
        let nft = NftRunner::new();
        nft.version().map_err(|e| BackendError::Unavailable {
            backend: BACKEND,
            reason: format!(
                "{e} (the IPVS backend keeps an nftables table for masquerading and filtering)"
            ),
        })?;
        let kernel = KernelVersion::running()
            .map_err(|e| BackendError::kernel(BACKEND, "read the kernel version", None, None, e))?;
        Sysctls::proc()
            .ensure(&ipvs_sysctls(kernel))
            .map_err(|e| BackendError::kernel(BACKEND, "set IPVS sysctls", None, None, e))?;
        let dummy = DummyAddresses::open(&options.interface)
            .map_err(|e| BackendError::kernel(BACKEND, "open rtnetlink", None, None, e))?;
        let conntrack = match Conntrack::open() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "conntrack unavailable: stale UDP entries will not be cleaned");
                None
            }
        };
        Ok(IpvsBackend {
            layout: TableLayout::new(&options.cluster_cidrs),
            draining: Draining::new(options.graceful_termination_timeout),
            options,
            ipvs,
            dummy,
            nft,
            conntrack,
            mirror: IpvsMirror::default(),
            ledger: ElementLedger::default(),
            nft_held: BTreeSet::new(),
            bound: BTreeSet::new(),
            link_index: None,
            node_addresses: HashSet::new(),
            rules_current: false,
            last_drain_check: Instant::now(),
            primed: false,
            stats: IpvsStats::default(),
        })
    }

    /// Kernel traffic so far.
    pub fn stats(&self) -> IpvsStats {
        IpvsStats {
            ipvs_netlink: self.ipvs.counters(),
            nft: self.nft.counters(),
            ..self.stats
        }
    }

    /// Destinations currently draining.
    pub fn draining(&self) -> usize {
        self.draining.len()
    }

    /// Reads the kernel into the mirror: our nftables table, the dummy link and its
    /// addresses, the IPVS table (destinations of our services only). `wanted` are the keys
    /// the desired table wants (adopted if they exist).
    fn read_kernel(&mut self, wanted: &HashSet<ServiceKey>) -> Result<(), BackendError> {
        let listing = match self
            .nft
            .list_json(&["table", TABLE_FAMILY, TABLE_NAME])
            .map_err(nft_failure("read the nftables table"))?
        {
            Some(json) => Some(parse_listing(&json).map_err(|e| {
                BackendError::kernel(BACKEND, "read the nftables table", None, None, e)
            })?),
            None => None,
        };
        self.nft_held = listing
            .iter()
            .flat_map(|l| l.elements.iter())
            .flat_map(|(set, members)| members.iter().map(|m| (*set, m.clone())))
            .collect();
        self.rules_current = listing.as_ref().is_some_and(|l| l.matches(&self.layout));

        let link = self
            .dummy
            .link()
            .map_err(iface_failure("read the dummy link", None))?;
        self.link_index = link.map(|l| l.index);
        self.bound = match self.link_index {
            Some(index) => self
                .dummy
                .addresses(index)
                .map_err(iface_failure("read the dummy link's addresses", None))?,
            None => BTreeSet::new(),
        };
        self.node_addresses = self
            .dummy
            .addresses_elsewhere(self.link_index)
            .map_err(iface_failure("read the node's addresses", None))?
            .into_iter()
            .collect();

        let recorded: HashSet<ServiceKey> = self
            .nft_held
            .iter()
            .filter(|(set, _)| set.kind == SetKind::Services)
            .filter_map(|(_, text)| parse_service_element(text))
            .collect();
        let services = self
            .ipvs
            .services()
            .map_err(ipvs_failure("read the IPVS table"))?;
        let owners: HashMap<ServiceKey, ServiceName> = self
            .mirror
            .keys()
            .filter_map(|k| self.mirror.owner(k).map(|o| (*k, o.clone())))
            .collect();
        self.mirror.clear();
        for service in services {
            let key = service.key;
            let ours = recorded.contains(&key) || self.bound.contains(&key.addr);
            if !ours && !wanted.contains(&key) {
                continue;
            }
            if !ours {
                tracing::warn!(virtual_service = %key, "adopting an IPVS virtual service svcplane did not create: the table wants it");
            }
            let destinations = self
                .ipvs
                .destinations(&key)
                .map_err(ipvs_failure("read IPVS destinations"))?;
            self.mirror.insert(service, destinations);
            if let Some(owner) = owners.get(&key) {
                self.mirror.set_owner(key, owner.clone());
            }
        }
        self.primed = true;
        Ok(())
    }

    fn sync_table(
        &mut self,
        table: &DesiredTable,
        scope: &SyncScope,
    ) -> Result<SyncReport, BackendError> {
        let full = matches!(scope, SyncScope::Full) || !self.primed;
        let mut report = SyncReport::default();
        let mut failures = Failures::default();

        // What the scope wants, per Service.
        let names: Vec<ServiceName> = match (full, scope) {
            (false, SyncScope::Services(names)) => names.iter().cloned().collect(),
            _ => table.services().map(|s| s.service.clone()).collect(),
        };
        if full {
            // Wants depend on the node's addresses, read with the kernel.
            let wanted_keys: HashSet<ServiceKey> = table
                .virtual_servers()
                .map(|vs| {
                    ServiceKey::new(
                        desired::ipvs_protocol(vs.key.protocol),
                        vs.key.address,
                        vs.key.port,
                    )
                })
                .collect();
            self.read_kernel(&wanted_keys)?;
        }
        let wants: Vec<(ServiceName, ServiceWants)> = names
            .iter()
            .map(|name| {
                let wants = table
                    .service(name)
                    .map(|rows| service_wants(rows, &self.layout, &self.node_addresses))
                    .unwrap_or_default();
                (name.clone(), wants)
            })
            .collect();
        let wanted_keys: HashSet<ServiceKey> = wants
            .iter()
            .flat_map(|(_, w)| w.services.iter().map(|s| s.service.key))
            .collect();

        // Elements: what to add now and delete at the end; and, in a partial sync, the
        // addresses the Services started or stopped wanting.
        let mut vip_changes: (Vec<Element>, Vec<Element>) = (Vec::new(), Vec::new());
        let (element_adds, element_deletes) = if full {
            self.ledger.clear();
            for (name, w) in &wants {
                self.ledger.replace(name, w.elements.clone());
            }
            let wanted: BTreeSet<Element> = self.ledger.wanted().cloned().collect();
            (
                wanted
                    .difference(&self.nft_held)
                    .cloned()
                    .collect::<Vec<_>>(),
                self.nft_held
                    .difference(&wanted)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        } else {
            let mut adds = Vec::new();
            let mut deletes = Vec::new();
            for (name, w) in &wants {
                let change = self.ledger.replace(name, w.elements.clone());
                adds.extend(change.added);
                deletes.extend(change.removed);
            }
            let is_vip = |(set, _): &&Element| set.kind == SetKind::Vips;
            vip_changes.0 = adds.iter().filter(is_vip).cloned().collect();
            vip_changes.1 = deletes
                .iter()
                .filter(is_vip)
                .filter(|e| !self.ledger.is_wanted(e))
                .cloned()
                .collect();
            // A Service may drop an element another one of the scope adds.
            deletes.retain(|e| !self.ledger.is_wanted(e) && self.nft_held.contains(e));
            adds.retain(|e| !self.nft_held.contains(e));
            (adds, deletes)
        };

        // Phase 1: the table and new elements (the record of new virtual services).
        if full && !self.rules_current {
            let mut elements: Elements = BTreeMap::new();
            for (set, member) in self.nft_held.iter().chain(element_adds.iter()) {
                elements.entry(*set).or_default().insert(member.clone());
            }
            let script = self.layout.replace_script(&elements);
            self.nft
                .apply(&script)
                .map_err(nft_failure("create the nftables table"))?;
            tracing::info!(table = TABLE_NAME, "nftables table (re)created");
            self.stats.nft_element_changes +=
                elements.values().map(|m| m.len() as u64).sum::<u64>();
            report.operations += 1 + element_adds.len();
            self.nft_held.extend(element_adds.iter().cloned());
            self.rules_current = true;
        } else if !element_adds.is_empty() {
            self.nft
                .apply(&elements_script(&element_adds, &[]))
                .map_err(nft_failure("add nftables set elements"))?;
            self.stats.nft_element_changes += element_adds.len() as u64;
            report.operations += element_adds.len();
            self.nft_held.extend(element_adds.iter().cloned());
        }

        // Phase 2: the dummy link and IPVS.
        if full || self.link_index.is_none() {
            let existed = self.link_index.is_some();
            let link = self
                .dummy
                .ensure_link()
                .map_err(iface_failure("create the dummy link", None))?;
            if !existed {
                report.operations += 1;
            }
            self.link_index = Some(link.index);
        }
        let retired: Vec<ServiceKey> = if full {
            self.mirror
                .keys()
                .filter(|k| !wanted_keys.contains(k))
                .copied()
                .collect()
        } else {
            names
                .iter()
                .flat_map(|n| self.mirror.keys_of(n))
                .filter(|k| !wanted_keys.contains(k))
                .copied()
                .collect()
        };
        let wanted_services: Vec<&WantedService> =
            wants.iter().flat_map(|(_, w)| w.services.iter()).collect();
        // Planned and sent a bounded number of virtual services at a time, so a full sync of
        // a large table never holds every operation, its owner and its outcome at once (the
        // peak of the agent's memory at 10,000 Services; BENCHMARKS.md, "IPVS"). Retired
        // virtual services go last, after every creation, as one plan would order them.
        let mut ipvs_run = IpvsRun::default();
        for batch in wanted_services.chunks(SERVICES_PER_IPVS_PLAN) {
            let plan = plan_ipvs(batch.iter().copied(), [], &self.mirror);
            self.run_ipvs_plan(plan, &mut ipvs_run, &mut report, &mut failures)?;
        }
        let plan = plan_ipvs([], retired.iter().copied(), &self.mirror);
        self.run_ipvs_plan(plan, &mut ipvs_run, &mut report, &mut failures)?;
        for want in &wanted_services {
            if self.mirror.get(&want.service.key).is_some() {
                self.mirror.set_owner(want.service.key, want.owner.clone());
            }
        }
        for key in &retired {
            self.draining.end_service(*key);
        }
        let IpvsRun {
            touched_udp,
            fresh_drains,
        } = ipvs_run;

        // Phase 3: addresses.
        let wanted_vips: BTreeSet<IpAddr> = self
            .ledger
            .wanted()
            .filter(|(set, _)| set.kind == SetKind::Vips)
            .filter_map(|(_, text)| text.parse().ok())
            .collect();
        let (bind, unbind): (Vec<IpAddr>, Vec<IpAddr>) = if full {
            (
                wanted_vips.difference(&self.bound).copied().collect(),
                self.bound.difference(&wanted_vips).copied().collect(),
            )
        } else {
            let vips = |list: &Vec<Element>| -> Vec<IpAddr> {
                list.iter()
                    .filter(|(set, _)| set.kind == SetKind::Vips)
                    .filter_map(|(_, text)| text.parse().ok())
                    .collect()
            };
            (
                vips(&vip_changes.0)
                    .into_iter()
                    .filter(|a| !self.bound.contains(a))
                    .collect(),
                vips(&vip_changes.1)
                    .into_iter()
                    .filter(|a| self.bound.contains(a))
                    .collect(),
            )
        };
        let index = self.link_index.expect("the link exists after phase 2");
        let owner_of_address: HashMap<IpAddr, ServiceName> = wants
            .iter()
            .flat_map(|(name, w)| {
                w.elements
                    .iter()
                    .filter(|(set, _)| set.kind == SetKind::Vips)
                    .filter_map(move |(_, text)| text.parse().ok().map(|a| (a, name.clone())))
            })
            .collect();
        if !bind.is_empty() {
            let outcome = self.dummy.add(index, &bind);
            self.stats.address_changes += bind.len() as u64;
            report.operations += bind.len();
            let failed: HashSet<IpAddr> = outcome.failed.iter().map(|(a, _)| a.addr).collect();
            self.bound
                .extend(bind.iter().filter(|a| !failed.contains(a)));
            for (address, error) in outcome.failed {
                failures.address(
                    "bind address",
                    owner_of_address.get(&address.addr).cloned(),
                    address.addr,
                    error,
                );
            }
        }
        if !unbind.is_empty() {
            let outcome = self.dummy.remove(index, &unbind);
            self.stats.address_changes += unbind.len() as u64;
            report.operations += unbind.len();
            let failed: HashSet<IpAddr> = outcome.failed.iter().map(|(a, _)| a.addr).collect();
            for address in unbind.iter().filter(|a| !failed.contains(a)) {
                self.bound.remove(address);
            }
            for (address, error) in outcome.failed {
                failures.address("unbind address", None, address.addr, error);
            }
        }

        // Phase 4: elements no longer wanted (after the virtual services they record).
        let element_deletes: Vec<Element> = element_deletes
            .into_iter()
            .filter(|(set, text)| {
                // Keep the record of a virtual service whose deletion failed.
                set.kind != SetKind::Services
                    || parse_service_element(text).is_none_or(|k| self.mirror.get(&k).is_none())
            })
            .collect();
        if !element_deletes.is_empty() {
            self.nft
                .apply(&elements_script(&[], &element_deletes))
                .map_err(nft_failure("delete nftables set elements"))?;
            self.stats.nft_element_changes += element_deletes.len() as u64;
            report.operations += element_deletes.len();
            for element in &element_deletes {
                self.nft_held.remove(element);
            }
        }

        // Phase 5: destinations that just started draining and have no connection go now.
        report.operations += self.check_drains(fresh_drains, &mut failures)?;

        // Phase 6: stale UDP conntrack entries of the UDP rows that changed.
        if !touched_udp.is_empty() {
            report.conntrack_deleted += self.clean_udp(table, &touched_udp);
        }

        if let Some(error) = failures.into_error() {
            self.primed = false;
            return Err(error);
        }
        Ok(report)
    }

    /// Sends one IPVS plan and records its outcome: the mirror follows every operation that
    /// took effect, failures are collected, destinations wanted again stop draining and
    /// destinations no longer wanted start.
    fn run_ipvs_plan(
        &mut self,
        plan: IpvsPlan,
        run: &mut IpvsRun,
        report: &mut SyncReport,
        failures: &mut Failures,
    ) -> Result<(), BackendError> {
        if !plan.is_empty() {
            let outcomes = self
                .ipvs
                .apply(&plan.ops)
                .map_err(ipvs_failure("apply IPVS changes"))?;
            self.stats.ipvs_operations += plan.ops.len() as u64;
            report.operations += plan.ops.len();
            for ((op, owner), outcome) in plan.ops.iter().zip(plan.owners).zip(outcomes) {
                match outcome {
                    Ok(()) => self.mirror.applied(op),
                    // Deleting what is already gone is what was wanted.
                    Err(e) if e.not_found() && is_delete(op) => self.mirror.applied(op),
                    Err(e) => failures.ipvs(op, owner, e),
                }
                if op.service().protocol == ipvs::Protocol::Udp {
                    run.touched_udp.insert(op.service());
                }
            }
        }
        let now = Instant::now();
        for (key, dest) in plan.wanted_again {
            self.draining.end(key, dest);
        }
        for (key, dest) in plan.draining {
            self.draining.begin(key, dest, now);
            run.fresh_drains.insert(key);
        }
        Ok(())
    }

    /// Deletes the draining destinations of `services` that are drained or timed out.
    /// Returns the operations sent.
    fn check_drains(
        &mut self,
        services: impl IntoIterator<Item = ServiceKey>,
        failures: &mut Failures,
    ) -> Result<usize, BackendError> {
        let now = Instant::now();
        let mut ops = Vec::new();
        for key in services {
            let draining = self.draining.destinations_of(key);
            if draining.is_empty() {
                continue;
            }
            let current: HashMap<SocketAddr, ipvs::Destination> = self
                .ipvs
                .destinations(&key)
                .map_err(ipvs_failure("read IPVS destinations"))?
                .into_iter()
                .map(|d| (d.socket_addr(), d))
                .collect();
            for addr in draining {
                match current.get(&addr) {
                    None => self.draining.end(key, addr),
                    Some(dest) if dest.weight != 0 => self.draining.end(key, addr),
                    Some(dest) => match self.draining.verdict(key, dest, now) {
                        Verdict::Keep => {}
                        verdict => {
                            tracing::debug!(virtual_service = %key, destination = %addr, ?verdict, "deleting a drained destination");
                            ops.push(IpvsOp::DelDest {
                                service: key,
                                dest: addr,
                            });
                        }
                    },
                }
            }
        }
        self.last_drain_check = now;
        if ops.is_empty() {
            return Ok(0);
        }
        let outcomes = self
            .ipvs
            .apply(&ops)
            .map_err(ipvs_failure("delete drained IPVS destinations"))?;
        self.stats.ipvs_operations += ops.len() as u64;
        for (op, outcome) in ops.iter().zip(outcomes) {
            match outcome {
                Err(e) if !e.not_found() => {
                    let owner = self.mirror.owner(&op.service()).cloned();
                    failures.ipvs(op, owner, e);
                }
                _ => {
                    self.mirror.applied(op);
                    if let IpvsOp::DelDest { service, dest } = op {
                        self.draining.end(*service, *dest);
                    }
                }
            }
        }
        Ok(ops.len())
    }

    /// Removes stale conntrack entries of the UDP rows `keys` of the table (kube-proxy's
    /// `CleanStaleEntries`: flows to the row's address and port answered by an address that is
    /// not one of its destinations); failures are logged, as kube-proxy does.
    fn clean_udp(&mut self, table: &DesiredTable, keys: &BTreeSet<ServiceKey>) -> usize {
        let Some(conntrack) = self.conntrack.as_mut() else {
            return 0;
        };
        let mut rows: Vec<UdpServiceEndpoints> = Vec::new();
        for vs in table.virtual_servers() {
            let key = ServiceKey::new(
                desired::ipvs_protocol(vs.key.protocol),
                vs.key.address,
                vs.key.port,
            );
            if !keys.contains(&key) {
                continue;
            }
            let destination = if vs.kind == FrontendKind::NodePort {
                ServiceDestination::NodePort { port: vs.key.port }
            } else {
                ServiceDestination::Vip {
                    addr: vs.key.address,
                    port: vs.key.port,
                }
            };
            rows.push(UdpServiceEndpoints {
                destination,
                serving_endpoints: vs.destinations.iter().map(|d| d.address).collect(),
            });
        }
        if rows.is_empty() {
            // Only deleted rows: kube-proxy cleans entries of existing Services only.
            return 0;
        }
        match conntrack.clean_stale_udp(&rows) {
            Ok(cleaned) => {
                if cleaned.stale > 0 {
                    tracing::debug!(
                        stale = cleaned.stale,
                        deleted = cleaned.deletions.deleted,
                        "stale UDP conntrack entries"
                    );
                }
                cleaned.deletions.deleted
            }
            Err(e) => {
                tracing::error!(error = %e, "cleaning stale UDP conntrack entries failed");
                0
            }
        }
    }
}

impl Backend for IpvsBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn sync(
        &mut self,
        table: &DesiredTable,
        scope: &SyncScope,
    ) -> Result<SyncReport, BackendError> {
        self.sync_table(table, scope)
            .inspect_err(|_| self.primed = false)
    }

    fn cleanup(&mut self) -> Result<(), BackendError> {
        let report = cleanup_with(Some(&mut self.ipvs), &self.dummy, &mut self.nft)?;
        log_cleanup(&report);
        self.mirror.clear();
        self.ledger.clear();
        self.nft_held.clear();
        self.bound.clear();
        self.link_index = None;
        self.draining = Draining::new(self.options.graceful_termination_timeout);
        self.primed = false;
        Ok(())
    }

    fn housekeeping_due(&self) -> Option<Instant> {
        self.draining.next_check(self.last_drain_check)
    }

    fn housekeeping(&mut self) -> Result<SyncReport, BackendError> {
        if !self.primed {
            return Ok(SyncReport::default());
        }
        let mut failures = Failures::default();
        let services = self.draining.services();
        let operations = self
            .check_drains(services, &mut failures)
            .inspect_err(|_| self.primed = false)?;
        if let Some(error) = failures.into_error() {
            self.primed = false;
            return Err(error);
        }
        Ok(SyncReport {
            operations,
            conntrack_deleted: 0,
        })
    }
}

/// `--cleanup` without a running backend: removes our virtual services (when the kernel has
/// IPVS), our nftables table and the dummy link `interface`, and nothing else.
pub fn cleanup(interface: &str) -> Result<CleanupReport, BackendError> {
    let mut ipvs = match IpvsClient::open() {
        Ok(client) => Some(client),
        Err(IpvsError::NotAvailable { .. }) => None,
        Err(e) => return Err(BackendError::kernel(BACKEND, "open IPVS", None, None, e)),
    };
    let dummy = DummyAddresses::open(interface)
        .map_err(|e| BackendError::kernel(BACKEND, "open rtnetlink", None, None, e))?;
    let mut nft = NftRunner::new();
    let report = cleanup_with(ipvs.as_mut(), &dummy, &mut nft)?;
    log_cleanup(&report);
    Ok(report)
}

fn log_cleanup(report: &CleanupReport) {
    tracing::info!(
        virtual_services = report.virtual_services,
        table = report.table,
        link = report.link,
        foreign_left = report.foreign_left,
        "IPVS backend cleaned up"
    );
}

fn cleanup_with(
    ipvs: Option<&mut IpvsClient>,
    dummy: &DummyAddresses,
    nft: &mut NftRunner,
) -> Result<CleanupReport, BackendError> {
    let mut report = CleanupReport::default();
    let listing = match nft.list_json(&["table", TABLE_FAMILY, TABLE_NAME]) {
        Ok(Some(json)) => Some(parse_listing(&json).map_err(|e| {
            BackendError::kernel(BACKEND, "read the nftables table", None, None, e)
        })?),
        Ok(None) => None,
        // Without nft there is no table of ours to read or delete.
        Err(NftError::NotInstalled { .. }) => None,
        Err(e) => {
            return Err(BackendError::kernel(
                BACKEND,
                "read the nftables table",
                None,
                None,
                e,
            ))
        }
    };
    let recorded: HashSet<ServiceKey> = listing
        .iter()
        .flat_map(|l| l.elements.iter())
        .filter(|(set, _)| set.kind == SetKind::Services)
        .flat_map(|(_, members)| members.iter())
        .filter_map(|text| parse_service_element(text))
        .collect();
    let link = dummy
        .link()
        .map_err(iface_failure("read the dummy link", None))?;
    let bound: BTreeSet<IpAddr> = match &link {
        Some(link) => dummy
            .addresses(link.index)
            .map_err(iface_failure("read the dummy link's addresses", None))?,
        None => BTreeSet::new(),
    };
    if let Some(ipvs) = ipvs {
        let services = ipvs
            .services()
            .map_err(ipvs_failure("read the IPVS table"))?;
        let ops: Vec<IpvsOp> = services
            .iter()
            .filter(|s| recorded.contains(&s.key) || bound.contains(&s.key.addr))
            .map(|s| IpvsOp::DelService(s.key))
            .collect();
        report.foreign_left = services.len() - ops.len();
        let outcomes = ipvs
            .apply(&ops)
            .map_err(ipvs_failure("delete IPVS virtual services"))?;
        let mut failures = Failures::default();
        for (op, outcome) in ops.iter().zip(outcomes) {
            match outcome {
                Ok(()) => report.virtual_services += 1,
                Err(e) if e.not_found() => {}
                Err(e) => failures.ipvs(op, None, e),
            }
        }
        if let Some(error) = failures.into_error() {
            return Err(error);
        }
    }
    if listing.is_some() {
        nft.apply(&delete_script())
            .map_err(nft_failure("delete the nftables table"))?;
        report.table = true;
    }
    report.link = dummy
        .delete_link()
        .map_err(iface_failure("delete the dummy link", None))?;
    Ok(report)
}

/// The IPVS client, or why the backend cannot run here.
fn open_ipvs() -> Result<IpvsClient, BackendError> {
    IpvsClient::open().map_err(|e| match e {
        IpvsError::NotAvailable { reason } => BackendError::Unavailable {
            backend: BACKEND,
            reason: format!(
                "the kernel has no IPVS ({reason}): load the ip_vs module, \
                 or run the node agent with --backend nftables"
            ),
        },
        other => BackendError::kernel(BACKEND, "open IPVS", None, None, other),
    })
}

/// Whether the kernel has IPVS (the generic netlink family answers).
pub fn ipvs_available() -> Result<bool, BackendError> {
    match IpvsClient::open() {
        Ok(_) => Ok(true),
        Err(IpvsError::NotAvailable { .. }) => Ok(false),
        Err(e) => Err(BackendError::kernel(BACKEND, "open IPVS", None, None, e)),
    }
}

fn is_delete(op: &IpvsOp) -> bool {
    matches!(op, IpvsOp::DelService(_) | IpvsOp::DelDest { .. })
}

/// `address . protocol . port` back to a key.
fn parse_service_element(text: &str) -> Option<ServiceKey> {
    let mut parts = text.split(" . ");
    let addr: IpAddr = parts.next()?.parse().ok()?;
    let protocol = match parts.next()? {
        "tcp" => ipvs::Protocol::Tcp,
        "udp" => ipvs::Protocol::Udp,
        "sctp" => ipvs::Protocol::Sctp,
        _ => return None,
    };
    let port: u16 = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some(ServiceKey::new(protocol, addr, port))
}

fn nft_failure(operation: &'static str) -> impl Fn(NftError) -> BackendError {
    move |e| BackendError::kernel(BACKEND, operation, None, None, e)
}

fn ipvs_failure(operation: &'static str) -> impl Fn(IpvsError) -> BackendError {
    move |e| BackendError::kernel(BACKEND, operation, None, None, e)
}

fn iface_failure(
    operation: &'static str,
    address: Option<IpAddr>,
) -> impl Fn(IfaceError) -> BackendError {
    move |e| BackendError::kernel(BACKEND, operation, None, address.map(|a| a.to_string()), e)
}

/// Virtual services at most in one IPVS plan of a sync (about 11 operations each at 10
/// destinations): bounds the operations, owners and outcomes held at once.
const SERVICES_PER_IPVS_PLAN: usize = 512;

/// What the IPVS plans of one sync touched, for the phases after them.
#[derive(Debug, Default)]
struct IpvsRun {
    /// UDP virtual services changed: their stale conntrack entries are cleaned.
    touched_udp: BTreeSet<ServiceKey>,
    /// Virtual services with destinations that just started draining.
    fresh_drains: BTreeSet<ServiceKey>,
}

/// The operations of a sync the kernel refused: the first is reported, naming its Service and
/// address, with the count of the others.
#[derive(Default)]
struct Failures {
    first: Option<BackendError>,
    more: usize,
}

impl Failures {
    fn push(&mut self, error: BackendError) {
        if self.first.is_none() {
            self.first = Some(error);
        } else {
            self.more += 1;
        }
    }

    fn ipvs(&mut self, op: &IpvsOp, owner: Option<ServiceName>, error: OpError) {
        let address = match op.dest() {
            Some(dest) => format!("{} destination {dest}", op.service()),
            None => op.service().to_string(),
        };
        tracing::warn!(service = ?owner.as_ref().map(ToString::to_string), %address, %error, "IPVS operation refused");
        self.push(BackendError::kernel(
            BACKEND,
            op.action(),
            owner,
            Some(address),
            error,
        ));
    }

    fn address(
        &mut self,
        operation: &'static str,
        owner: Option<ServiceName>,
        address: IpAddr,
        error: IfaceError,
    ) {
        tracing::warn!(%address, %error, "{operation} refused");
        self.push(BackendError::kernel(
            BACKEND,
            operation,
            owner,
            Some(address.to_string()),
            error,
        ));
    }

    fn into_error(self) -> Option<BackendError> {
        let first = self.first?;
        if self.more == 0 {
            return Some(first);
        }
        Some(match first {
            BackendError::Kernel(mut failure) => {
                failure.operation = format!(
                    "{} (and {} more failed operations)",
                    failure.operation, self.more
                );
                BackendError::Kernel(failure)
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_elements_parse_back_to_keys() {
        let key = parse_service_element("10.96.0.10 . udp . 53").unwrap();
        assert_eq!(
            key,
            ServiceKey::new(ipvs::Protocol::Udp, "10.96.0.10".parse().unwrap(), 53)
        );
        let v6 = parse_service_element("fd00::a . sctp . 9").unwrap();
        assert_eq!(v6.protocol, ipvs::Protocol::Sctp);
        for bad in [
            "10.96.0.10 . tcp",
            "10.96.0.10 . icmp . 1",
            "x . tcp . 1",
            "1.2.3.4 . tcp . 1 . 2",
        ] {
            assert_eq!(parse_service_element(bad), None, "{bad}");
        }
    }

    #[test]
    fn several_failures_report_the_first_with_a_count() {
        let mut failures = Failures::default();
        let key = ServiceKey::new(ipvs::Protocol::Tcp, "10.96.0.10".parse().unwrap(), 80);
        let op = IpvsOp::DelService(key);
        let error = |errno| OpError {
            action: "delete service",
            service: key,
            dest: None,
            cause: ipvs::OpCause::Kernel {
                errno,
                message: None,
            },
        };
        failures.ipvs(
            &op,
            Some(ServiceName::new("ns", "web")),
            error(ipvs::Errno::EPERM),
        );
        failures.ipvs(&op, None, error(ipvs::Errno::EBUSY));
        let message = failures.into_error().unwrap().to_string();
        assert!(message.contains("Service ns/web"), "{message}");
        assert!(message.contains("TCP 10.96.0.10:80"), "{message}");
        assert!(message.contains("and 1 more"), "{message}");
        assert!(Failures::default().into_error().is_none());
    }
}
