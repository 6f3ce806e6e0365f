//! The nftables backend: the desired table as one nftables table per IP family
//! (`ip svcplane` and `ip6 svcplane`), changed by one kernel transaction per sync.
//!
//! # Design
//!
//! - **A table per family**, as kube-proxy's nftables mode: every map, set and rule is
//!   family-specific anyway (an `inet` table would need each rule twice, guarded by
//!   `meta nfproto`), a kernel without IPv6 still runs IPv4 Services, and the IPv6 table
//!   only exists once a Service has IPv6 rows. We touch no other table; `--cleanup` deletes
//!   ours.
//! - **Netlink batches, not `nft -f`.** Each sync is one `NFNL_MSG_BATCH_BEGIN … END` batch on
//!   a `NETLINK_NETFILTER` socket ([`transaction`]): the kernel commits all of it or none,
//!   and packets see the old or the new table, never a mix. We write the messages ourselves
//!   because `nft` (1.0.6 and later) first lists the whole table into its cache before any
//!   command that names a chain: at 10,000 Services × 10 endpoints that listing alone costs
//!   more than a second of CPU (upstream's partial sync needed 141 ms for one Service at that
//!   size, PR #126013), while our batches carry only the change. Every rule can still be
//!   printed in `nft` syntax ([`plan::script`]) and `nft list table ip svcplane` reads our
//!   table.
//! - **Partial syncs** ([`state::TableState::sync_service`]) diff only the changed Services:
//!   their chains are rewritten (flush + add, atomically) when a rule's fingerprint changed,
//!   their map elements are diffed in memory. Without ClientIP affinity an endpoint change
//!   touches only elements without verdicts (the slot maps of [`slots`] and the hairpin
//!   set), which spares the kernel its whole-table validation at commit (BENCHMARKS.md,
//!   "nftables backend"). Chains no longer used are flushed at once and
//!   deleted in a later sync, at least a second after, in a transaction of their own (older
//!   kernels refuse to delete a chain a just-deleted map element pointed to).
//! - **Full syncs** (start-up, `--sync-period`, after a failure) diff everything against what
//!   the kernel holds ([`kernel::read_table`]): chains, the fingerprint each rule carries in its
//!   user data, sets and map elements. When the `nf_tables` generation is still the one our
//!   last commit produced, nobody changed anything and the dump is skipped. A table whose
//!   hooks or maps were changed by someone else is rebuilt in one transaction.
//! - Endpoint selection is the model's; this backend only writes what each row says (see
//!   [`ruleset`] for the layout and its two departures from upstream).

mod expr;
mod kernel;
mod names;
mod objects;
mod plan;
mod rule;
mod ruleset;
mod slots;
mod socket;
mod state;
mod transaction;
mod wire;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::backend::{Backend, BackendError, SyncReport, SyncScope};
use crate::conntrack::{CleanupReport, Conntrack, UdpServiceEndpoints};
use crate::model::{DesiredTable, Family, ServiceName};
use crate::stale_flows::{stale_udp_flows, udp_rows, StaleUdpFlows, UdpRows};

pub use objects::TABLE;
pub use plan::{script, Op, Plan, PlanBuilder, PlannedOp};
pub use ruleset::CASCADE_MAX;
use ruleset::{render_fixed, render_service, Fixed, FixedObjects};
use socket::NftSocket;
use state::TableState;

const BACKEND: &str = "nftables";
const EPERM: i32 = 1;

/// Settings of the nftables backend.
#[derive(Debug, Clone, Default)]
pub struct NftablesOptions {
    /// `--cluster-cidr`: traffic to ClusterIPs from outside these ranges is masqueraded.
    pub cluster_cidrs: Vec<IpNet>,
}

/// What the last sync did, beyond [`SyncReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncDetails {
    /// Whether the kernel's table was read (a full sync after someone else committed).
    pub read_kernel: bool,
    /// Whether a table was rebuilt because its fixed part had been changed.
    pub rebuilt: bool,
    /// Stale chains deleted before the sync.
    pub stale_chains_deleted: usize,
    /// Netlink messages of the main transaction.
    pub messages: usize,
    /// Bytes of the main transaction.
    pub bytes: usize,
    /// The UDP flows the sync made stale.
    pub stale_udp_flows: Vec<StaleUdpFlows>,
    /// What the conntrack cleanup after the sync did (`None`: nothing was stale, or the
    /// cleanup failed and said so in the log).
    pub conntrack: Option<CleanupReport>,
    /// Time spent in this process deciding the operations (rendering, diffing, and reading
    /// the kernel's table when the sync had to).
    pub plan_time: Duration,
    /// Of `plan_time`, the time spent reading the kernel's table back.
    pub read_time: Duration,
    /// Time spent encoding the operations as a netlink batch.
    pub encode_time: Duration,
    /// Time between handing the batch to the kernel and its answer (the kernel applies a
    /// batch inside `send`): the transaction's cost in the kernel.
    pub kernel_time: Duration,
}

/// The nftables backend.
#[derive(Debug)]
pub struct NftablesBackend {
    socket: NftSocket,
    names: Fixed,
    fixed: [FixedObjects; 2],
    tables: [TableState; 2],
    cluster_cidrs: Vec<IpNet>,
    /// The `nf_tables` generation right after our last commit, when no one else committed
    /// in between: while it is current, what we hold in memory is what the kernel holds.
    trusted_generation: Option<u32>,
    synced_once: bool,
    udp: HashMap<ServiceName, UdpRows>,
    /// Opened with the nf_tables socket, in the same network namespace; `None` when the
    /// kernel has no ctnetlink (then stale UDP entries expire on their own).
    conntrack: Option<Conntrack>,
    last: SyncDetails,
}

fn kernel_error(
    operation: impl Into<String>,
    service: Option<ServiceName>,
    source: io::Error,
) -> BackendError {
    BackendError::kernel(BACKEND, operation, service, None, source)
}

fn index(family: Family) -> usize {
    match family {
        Family::IPv4 => 0,
        Family::IPv6 => 1,
    }
}

impl NftablesBackend {
    /// Opens the netlink socket and checks that this process may program `nf_tables`.
    pub fn new(options: NftablesOptions) -> Result<NftablesBackend, BackendError> {
        let unavailable = |reason: String| BackendError::Unavailable {
            backend: BACKEND,
            reason,
        };
        let mut socket = NftSocket::open().map_err(|e| {
            unavailable(format!(
                "cannot open a netfilter netlink socket ({e}); is nf_tables in the kernel?"
            ))
        })?;
        match kernel::generation(&mut socket) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(EPERM) => {
                return Err(unavailable(
                    "programming nf_tables needs CAP_NET_ADMIN (run as root)".into(),
                ))
            }
            Err(e) => {
                return Err(unavailable(format!(
                "the kernel does not answer nf_tables requests ({e}); is nf_tables in the kernel?"
            )))
            }
        }
        let conntrack = Conntrack::open()
            .inspect_err(|error| {
                tracing::warn!(%error, "no conntrack netlink: stale UDP entries will not be cleaned after syncs")
            })
            .ok();
        let names = Fixed::default();
        let fixed = Family::ALL.map(|f| render_fixed(f, &names, &options.cluster_cidrs));
        Ok(NftablesBackend {
            socket,
            names,
            fixed,
            tables: Family::ALL.map(TableState::new),
            cluster_cidrs: options.cluster_cidrs,
            trusted_generation: None,
            synced_once: false,
            udp: HashMap::new(),
            conntrack,
            last: SyncDetails::default(),
        })
    }

    /// What the last sync did.
    pub fn last_sync(&self) -> &SyncDetails {
        &self.last
    }

    /// The operations a sync would run now, without running them (for tests, debugging and
    /// the benchmark's baseline script). Reads the kernel like a sync; changes nothing.
    pub fn plan(
        &mut self,
        table: &DesiredTable,
        scope: &SyncScope,
    ) -> Result<Vec<PlannedOp>, BackendError> {
        let saved = (self.tables.clone(), self.last.clone());
        let mut plan = PlanBuilder::new();
        let result = self.plan_into(&mut plan, table, scope, Instant::now());
        (self.tables, self.last) = saved;
        result.map(|()| plan.finish().into_ops())
    }

    fn plan_into(
        &mut self,
        plan: &mut PlanBuilder,
        table: &DesiredTable,
        scope: &SyncScope,
        now: Instant,
    ) -> Result<(), BackendError> {
        let full = *scope == SyncScope::Full || !self.synced_once;
        if full {
            let current = kernel::generation(&mut self.socket)
                .map_err(|e| kernel_error("read the nf_tables generation", None, e))?;
            let trust = self.synced_once && self.trusted_generation == Some(current);
            self.last.read_kernel = !trust;
            for family in Family::ALL {
                let state = &mut self.tables[index(family)];
                let kernel = if trust {
                    state.take_held()
                } else {
                    let started = Instant::now();
                    let held = kernel::read_table(&mut self.socket, family).map_err(|e| {
                        kernel_error(format!("list table {family} {TABLE}"), None, e)
                    })?;
                    self.last.read_time += started.elapsed();
                    held
                };
                let masq = ruleset::has_family(&self.cluster_cidrs, family);
                let names = &self.names;
                let services = || {
                    table
                        .services()
                        .filter(move |s| ruleset::has_rows(s, family))
                        .map(move |s| (s.service.clone(), render_service(family, s, names, masq)))
                };
                self.last.rebuilt |=
                    state.sync_full(plan, &self.fixed[index(family)], services, kernel, now);
            }
        } else if let SyncScope::Services(names) = scope {
            for family in Family::ALL {
                let masq = ruleset::has_family(&self.cluster_cidrs, family);
                let state = &mut self.tables[index(family)];
                for name in names {
                    let new = table
                        .service(name)
                        .filter(|s| ruleset::has_rows(s, family))
                        .map(|s| render_service(family, s, &self.names, masq));
                    if new.is_some() {
                        state.ensure_table(plan, &self.fixed[index(family)]);
                    }
                    state.sync_service(plan, name, new, now);
                }
            }
        }
        Ok(())
    }

    /// Deletes the stale chains whose grace period is over, in a transaction of their own.
    fn delete_expired_stale(&mut self, now: Instant) -> usize {
        let mut plan = PlanBuilder::new();
        let mut expired: Vec<(Family, Vec<objects::Name>)> = Vec::new();
        for state in &self.tables {
            let chains = state.expired_stale(now);
            for chain in &chains {
                plan.push(state.family(), Op::DeleteChain(chain.clone()), None);
            }
            if !chains.is_empty() {
                expired.push((state.family(), chains));
            }
        }
        if plan.is_empty() {
            return 0;
        }
        let ops = plan.finish();
        let count = ops.len();
        let deleted = match self.run(ops) {
            Ok(()) => count,
            Err(err) => {
                // Left for the next full sync to find; the sync itself goes on.
                tracing::warn!(error = %err, "could not delete stale nftables chains");
                self.trusted_generation = None;
                0
            }
        };
        for (family, chains) in expired {
            self.tables[index(family)].forget_stale(&chains);
        }
        deleted
    }

    /// Sends `ops` as one transaction.
    fn run(&mut self, ops: Plan) -> Result<(), BackendError> {
        let before = kernel::generation(&mut self.socket).ok();
        let first_seq = self
            .socket
            .reserve_seq(ops.len() as u32 + 2)
            .wrapping_add(1);
        let started = Instant::now();
        let batch = transaction::encode(ops, first_seq);
        self.last.encode_time = started.elapsed();
        self.last.messages = batch.messages.len();
        self.last.bytes = batch.len;
        let started = Instant::now();
        let rejections = self
            .socket
            .send_batch(&batch.parts)
            .map_err(|e| kernel_error("send the transaction", None, e))?;
        self.last.kernel_time = started.elapsed();
        if let Some(first) = rejections.first() {
            self.trusted_generation = None;
            let source = io::Error::from_raw_os_error(first.errno);
            return Err(match batch.rejected(first) {
                Some((op, count)) => {
                    let what = if count > 1 {
                        format!("{op} (and {} more elements)", count - 1)
                    } else {
                        op.to_string()
                    };
                    kernel_error(what, op.service.as_deref().cloned(), source)
                }
                None => kernel_error("commit the transaction", None, source),
            });
        }
        let after = kernel::generation(&mut self.socket).ok();
        self.trusted_generation = match (before, after) {
            (Some(b), Some(a)) if a == b.wrapping_add(1) => Some(a),
            _ => None,
        };
        Ok(())
    }

    fn stale_flows(&mut self, table: &DesiredTable, scope: &SyncScope) -> Vec<StaleUdpFlows> {
        let names: BTreeSet<ServiceName> = match scope {
            SyncScope::Services(names) => names.clone(),
            SyncScope::Full => table
                .services()
                .map(|s| s.service.clone())
                .chain(self.udp.keys().cloned())
                .collect(),
        };
        let mut out = Vec::new();
        for name in names {
            let after = udp_rows(table.service(&name).map(|s| s.as_ref()));
            let before = self.udp.remove(&name).unwrap_or_default();
            out.extend(stale_udp_flows(&before, &after));
            if !after.is_empty() {
                self.udp.insert(name, after);
            }
        }
        out
    }

    /// Deletes the conntrack entries of `flows` (kube-proxy's `CleanStaleEntries` after a
    /// sync). A failure is logged, not returned: the ruleset is committed already, and the
    /// entries time out on their own (`nf_conntrack_udp_timeout`).
    fn clean_conntrack(&mut self, flows: &[StaleUdpFlows]) -> Option<CleanupReport> {
        if flows.is_empty() {
            return None;
        }
        let services: Vec<UdpServiceEndpoints> =
            flows.iter().map(StaleUdpFlows::to_conntrack).collect();
        let conntrack = self.conntrack.as_mut()?;
        let result = conntrack.clean_stale_udp(&services);
        match result {
            Ok(report) => {
                for (entry, errno) in &report.deletions.failed {
                    tracing::warn!(%entry, %errno, "could not delete a stale UDP conntrack entry");
                }
                tracing::debug!(
                    destinations = services.len(),
                    deleted = report.deletions.deleted,
                    "stale UDP conntrack entries cleaned"
                );
                Some(report)
            }
            Err(error) => {
                tracing::warn!(%error, destinations = services.len(),
                    "stale UDP conntrack cleanup failed; the entries expire on their own");
                None
            }
        }
    }
}

impl Backend for NftablesBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn sync(
        &mut self,
        table: &DesiredTable,
        scope: &SyncScope,
    ) -> Result<SyncReport, BackendError> {
        let now = Instant::now();
        self.last = SyncDetails::default();
        self.last.stale_chains_deleted = self.delete_expired_stale(now);
        let planning = Instant::now();
        let mut plan = PlanBuilder::new();
        if let Err(err) = self.plan_into(&mut plan, table, scope, now) {
            self.synced_once = false;
            return Err(err);
        }
        let ops = plan.finish();
        self.last.plan_time = planning.elapsed();
        let operations = ops.len();
        if !ops.is_empty() {
            if let Err(err) = self.run(ops) {
                // What we hold in memory is now wrong: the next sync reads the kernel.
                self.synced_once = false;
                return Err(err);
            }
        }
        self.synced_once = true;
        let first = self.udp.is_empty() && *scope == SyncScope::Full;
        let stale = self.stale_flows(table, scope);
        // At start-up every UDP destination "gains" endpoints; flows from before the agent
        // started were already DNATed by the previous table, so nothing is stale then.
        self.last.stale_udp_flows = if first { Vec::new() } else { stale };
        let flows = std::mem::take(&mut self.last.stale_udp_flows);
        self.last.conntrack = self.clean_conntrack(&flows);
        self.last.stale_udp_flows = flows;
        Ok(SyncReport {
            operations,
            conntrack_deleted: self
                .last
                .conntrack
                .as_ref()
                .map_or(0, |report| report.deletions.deleted),
        })
    }

    fn cleanup(&mut self) -> Result<(), BackendError> {
        // Creating then deleting makes the transaction succeed whether the table exists.
        let ops = Plan::from_ops(
            Family::ALL
                .into_iter()
                .flat_map(|family| {
                    [Op::AddTable, Op::DeleteTable].map(|op| PlannedOp {
                        family,
                        op,
                        service: None,
                    })
                })
                .collect(),
        );
        self.run(ops)?;
        for state in &mut self.tables {
            state.reset();
        }
        self.udp.clear();
        self.synced_once = false;
        Ok(())
    }
}
