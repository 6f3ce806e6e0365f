//! A plan: the operations of one transaction, in the order the kernel needs them (objects
//! exist before anything refers to them; chains are emptied before the sets their rules used
//! are deleted). Pure data, so tests count and read what a sync would write.

use std::fmt;
use std::sync::Arc;

use super::objects::{BaseChain, Edge, ElementValue, Key, Name, SetSpec};
use super::rule::Rule;
use crate::model::{Family, ServiceName};

/// One operation on one family's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Delete the whole table (a rebuild).
    DeleteTable,
    /// Create the table (no-op when it exists).
    AddTable,
    /// Create a set or map.
    AddSet(SetSpec),
    /// Create a chain (no-op when it exists with the same hook).
    AddChain(Name, Option<BaseChain>),
    /// Delete every rule of a chain.
    FlushChain(Name),
    /// Append a rule.
    AddRule(Name, Rule),
    /// Delete a set element.
    DeleteElement(Name, Key),
    /// Add a set element.
    AddElement(Name, Key, ElementValue),
    /// Delete a set or map.
    DeleteSet(Name),
    /// Delete an empty, unreferenced chain.
    DeleteChain(Name),
}

impl Op {
    fn phase(&self) -> usize {
        match self {
            Op::DeleteTable => 0,
            Op::AddTable => 1,
            Op::AddSet(_) => 2,
            Op::AddChain(..) => 3,
            Op::FlushChain(_) => 4,
            Op::AddRule(..) => 5,
            Op::DeleteElement(..) => 6,
            Op::AddElement(..) => 7,
            Op::DeleteSet(_) => 8,
            Op::DeleteChain(_) => 9,
        }
    }
}

const PHASES: usize = 10;

/// An operation with its family and, when it is one Service's, the Service (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOp {
    /// The table's family.
    pub family: Family,
    /// The operation.
    pub op: Op,
    /// The Service it is for (shared by all of that Service's operations: a full sync plans
    /// hundreds of thousands of operations).
    pub service: Option<Arc<ServiceName>>,
}

impl fmt::Display for PlannedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = super::rule::family_keyword(self.family);
        let t = super::objects::TABLE;
        match &self.op {
            Op::DeleteTable => write!(f, "delete table {ip} {t}"),
            Op::AddTable => write!(f, "add table {ip} {t}"),
            Op::AddSet(s) => write!(
                f,
                "add {} {ip} {t} {} {{ {} }}",
                if s.kind.is_map() { "map" } else { "set" },
                s.name,
                s.kind.text(self.family)
            ),
            Op::AddChain(name, _) => write!(f, "add chain {ip} {t} {name}"),
            Op::FlushChain(name) => write!(f, "flush chain {ip} {t} {name}"),
            Op::AddRule(chain, rule) => {
                write!(f, "add rule {ip} {t} {chain} {}", rule.text(self.family))
            }
            Op::DeleteElement(set, key) => {
                write!(f, "delete element {ip} {t} {set} {{ {key} }}")
            }
            Op::AddElement(set, key, None) => write!(f, "add element {ip} {t} {set} {{ {key} }}"),
            Op::AddElement(set, key, Some(v)) => {
                write!(f, "add element {ip} {t} {set} {{ {key} : {v} }}")
            }
            Op::DeleteSet(name) => write!(f, "delete set {ip} {t} {name}"),
            Op::DeleteChain(name) => write!(f, "delete chain {ip} {t} {name}"),
        }
    }
}

/// An operation and the Service it belongs to.
type Entry = (Op, Option<Arc<ServiceName>>);

/// Operations per chunk of a [`Phase`] (a power of two: a chunk's vector grows by doubling
/// and stops at exactly this capacity).
const CHUNK: usize = 4096;

/// The operations of one phase, in chunks: encoding frees each chunk once it is written
/// into the batch, so a full sync never holds its whole plan and its whole batch at once
/// (~24 MiB and ~17 MiB at 10,000 Services).
#[derive(Debug, Default)]
struct Phase {
    /// Every chunk but the last holds exactly [`CHUNK`] operations.
    chunks: Vec<Vec<Entry>>,
    len: usize,
}

impl Phase {
    fn push(&mut self, entry: Entry) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(entry),
            _ => self.chunks.push(vec![entry]),
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn truncate(&mut self, len: usize) {
        while self.len > len {
            let last = self
                .chunks
                .last_mut()
                .expect("len counts the chunks' entries");
            let cut = (self.len - len).min(last.len());
            last.truncate(last.len() - cut);
            self.len -= cut;
            if last.is_empty() {
                self.chunks.pop();
            }
        }
    }

    /// The operations in order; each chunk is freed once its operations are taken.
    fn into_entries(self) -> impl Iterator<Item = Entry> {
        self.chunks.into_iter().flatten()
    }
}

/// A point in a [`PlanBuilder`]'s history: how many operations each phase held.
#[derive(Debug, Clone)]
pub struct PlanMark([[usize; PHASES]; 2]);

/// Operations collected per family and phase; [`PlanBuilder::finish`] orders them.
#[derive(Debug, Default)]
pub struct PlanBuilder {
    phases: [[Phase; PHASES]; 2],
    /// The Service of the last push: a Service's operations come in runs and share its name.
    last_service: Option<Arc<ServiceName>>,
}

fn family_index(family: Family) -> usize {
    match family {
        Family::IPv4 => 0,
        Family::IPv6 => 1,
    }
}

impl PlanBuilder {
    /// An empty plan.
    pub fn new() -> PlanBuilder {
        PlanBuilder::default()
    }

    /// Adds an operation for `family`, on behalf of `service` when given.
    pub fn push(&mut self, family: Family, op: Op, service: Option<&ServiceName>) {
        let phase = op.phase();
        let service = service.map(|name| match &self.last_service {
            Some(last) if **last == *name => last.clone(),
            _ => {
                let shared = Arc::new(name.clone());
                self.last_service = Some(shared.clone());
                shared
            }
        });
        self.phases[family_index(family)][phase].push((op, service));
    }

    /// Whether nothing was planned.
    pub fn is_empty(&self) -> bool {
        self.phases.iter().flatten().all(Phase::is_empty)
    }

    /// Where the plan stands now, to [`PlanBuilder::rollback`] to.
    pub fn mark(&self) -> PlanMark {
        PlanMark(
            self.phases
                .each_ref()
                .map(|family| family.each_ref().map(Phase::len)),
        )
    }

    /// Forgets every operation pushed since `mark`.
    pub fn rollback(&mut self, mark: &PlanMark) {
        for (phases, lens) in self.phases.iter_mut().zip(&mark.0) {
            for (phase, len) in phases.iter_mut().zip(lens) {
                phase.truncate(*len);
            }
        }
        self.last_service = None;
    }

    /// The operations in transaction order: IPv4's table, then IPv6's, each phase by phase.
    /// The phases are kept as they were collected, not copied into one vector: a full sync
    /// at 10,000 Services plans ~350,000 operations, and the copy held them twice at the
    /// sync's memory peak (BENCHMARKS.md, "nftables backend").
    pub fn finish(self) -> Plan {
        let mut plan = Plan::default();
        for (index, phases) in self.phases.into_iter().enumerate() {
            let family = if index == 0 {
                Family::IPv4
            } else {
                Family::IPv6
            };
            for phase in phases {
                plan.push_part(family, phase);
            }
        }
        plan
    }
}

/// A finished plan: its operations in transaction order, in runs of one family.
#[derive(Debug, Default)]
pub struct Plan {
    parts: Vec<(Family, Phase)>,
    len: usize,
}

impl Plan {
    /// A plan of `ops`, in their order.
    pub fn from_ops(ops: Vec<PlannedOp>) -> Plan {
        let mut plan = Plan::default();
        let mut run = Phase::default();
        let mut family = None;
        for op in ops {
            if family.is_some_and(|f| f != op.family) {
                plan.push_part(family.take().expect("checked"), std::mem::take(&mut run));
            }
            family = Some(op.family);
            run.push((op.op, op.service));
        }
        if let Some(family) = family {
            plan.push_part(family, run);
        }
        plan
    }

    fn push_part(&mut self, family: Family, ops: Phase) {
        if ops.is_empty() {
            return;
        }
        self.len += ops.len();
        self.parts.push((family, ops));
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no operation.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The operations in order, as one vector.
    pub fn into_ops(self) -> Vec<PlannedOp> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self);
        out
    }
}

impl IntoIterator for Plan {
    type Item = PlannedOp;
    type IntoIter = Box<dyn Iterator<Item = PlannedOp>>;

    /// The operations in order, each part's memory freed as it is consumed.
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.parts.into_iter().flat_map(|(family, ops)| {
            ops.into_entries().map(move |(op, service)| PlannedOp {
                family,
                op,
                service,
            })
        }))
    }
}

/// Renders a plan as an `nft -f` script (for logs, tests and the benchmark's baseline).
/// A range of an interval map is one element in `nft` syntax, two in the plan (its start
/// carrying the value, then its end).
pub fn script(ops: &[PlannedOp]) -> String {
    let mut out = String::new();
    let ip = |op: &PlannedOp| super::rule::family_keyword(op.family);
    let t = super::objects::TABLE;
    for (i, op) in ops.iter().enumerate() {
        let end_of = |set: &Name| match ops.get(i + 1).map(|next| &next.op) {
            Some(Op::AddElement(s, Key::SlotEdge(end, Edge::End), _))
            | Some(Op::DeleteElement(s, Key::SlotEdge(end, Edge::End)))
                if s == set =>
            {
                Some(*end)
            }
            _ => None,
        };
        match &op.op {
            Op::AddElement(_, Key::SlotEdge(_, Edge::End), _)
            | Op::DeleteElement(_, Key::SlotEdge(_, Edge::End)) => continue,
            Op::AddElement(set, Key::SlotEdge(start, Edge::Start), value) => {
                let end = end_of(set).unwrap_or(start + 1);
                let value = value
                    .as_ref()
                    .map(|v| format!(" : {v}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "add element {} {t} {set} {{ {start}-{}{value} }}",
                    ip(op),
                    end - 1
                ));
            }
            Op::DeleteElement(set, Key::SlotEdge(start, Edge::Start)) => {
                let end = end_of(set).unwrap_or(start + 1);
                out.push_str(&format!(
                    "delete element {} {t} {set} {{ {start}-{} }}",
                    ip(op),
                    end - 1
                ));
            }
            Op::AddChain(name, Some(base)) => {
                out.push_str(&super::objects::chain_text(
                    op.family,
                    &super::objects::ChainSpec {
                        name: name.clone(),
                        base: Some(*base),
                        rules: Vec::new(),
                    },
                ));
            }
            _ => out.push_str(&op.to_string()),
        }
        out.push('\n');
    }
    out
}
