//! What one family's table holds, in memory, and the diff that brings it to what the desired
//! table wants. A partial sync diffs only the changed Services against their recorded
//! footprint; a full sync diffs everything against what the kernel reports (or against this
//! record when nothing else has touched `nf_tables` since our last commit).
//!
//! Shared map and set elements are *claimed* by Services: each element key remembers every
//! Service that wants it, and the Service whose name sorts first decides its value, so two
//! Services fighting over a NodePort always resolve the same way whatever the order of events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::objects::{
    BaseChain, ChainSpec, ElementValue, Key, Name, SetSpec, SetWire, SET_F_INTERVAL,
};
use super::plan::{Op, PlanBuilder};
use super::rule::{fingerprint, Rule};
use super::ruleset::{FixedObjects, ServiceObjects};
use super::wire::Writer;
use crate::model::{Family, ServiceName};

/// How long a stale chain stays (flushed) before it is deleted: kernels before 6.2 notice
/// only some time after a transaction that a map element no longer points to a chain, and
/// refuse to delete it meanwhile (upstream waits one second too).
pub const STALE_CHAIN_GRACE: Duration = Duration::from_secs(1);

/// A chain as the kernel holds it: its hook and the fingerprints of its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldChain {
    /// Hook, for a base chain.
    pub base: Option<BaseChain>,
    /// Fingerprint of each rule, in order (0 for a rule we did not write).
    pub rules: Vec<u64>,
}

/// What a family's table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Chains by name.
    pub chains: HashMap<Name, HeldChain>,
    /// Sets and maps by name, as declared.
    pub sets: HashMap<Name, SetWire>,
    /// Elements of the sets whose elements we manage.
    pub elements: HashMap<Name, Elements>,
    /// The kernel listed elements we could not have written: the table is rebuilt.
    pub unreadable: bool,
}

/// Sets of at most this many elements keep them in a sorted vector of exactly their size.
const SMALL_SET: usize = 64;

/// One set's elements. Most of our sets are a Service's slot map of ~20 elements, rewritten
/// whole: a vector of exactly that size (sorted by key) instead of a hash table (which held 32
/// buckets for 20 elements: ~0.6 KiB more per Service, ~6 MiB at 10,000 Services); shared
/// sets, with up to one element per endpoint of the node's Services, in a hash table.
#[derive(Debug, Clone)]
pub enum Elements {
    /// Up to [`SMALL_SET`] elements, sorted by key.
    Small(Vec<(Key, ElementValue)>),
    /// More.
    Large(HashMap<Key, ElementValue>),
}

impl Default for Elements {
    fn default() -> Self {
        Elements::Small(Vec::new())
    }
}

impl PartialEq for Elements {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Elements {}

impl Elements {
    /// Elements already sorted by key, without duplicates, kept as given (no copy).
    fn from_sorted(sorted: Vec<(Key, ElementValue)>) -> Elements {
        debug_assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
        if sorted.len() <= SMALL_SET {
            Elements::Small(sorted)
        } else {
            Elements::Large(sorted.into_iter().collect())
        }
    }

    /// Number of elements.
    fn len(&self) -> usize {
        match self {
            Elements::Small(v) => v.len(),
            Elements::Large(m) => m.len(),
        }
    }

    /// The value of `key`, when present.
    pub fn get(&self, key: &Key) -> Option<&ElementValue> {
        match self {
            Elements::Small(v) => v
                .binary_search_by(|(k, _)| k.cmp(key))
                .ok()
                .map(|i| &v[i].1),
            Elements::Large(m) => m.get(key),
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    /// Adds or replaces an element.
    pub fn insert(&mut self, key: Key, value: ElementValue) {
        match self {
            Elements::Small(v) => match v.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(i) => v[i].1 = value,
                Err(_) if v.len() >= SMALL_SET => {
                    let mut m: HashMap<Key, ElementValue> = std::mem::take(v).into_iter().collect();
                    m.insert(key, value);
                    *self = Elements::Large(m);
                }
                Err(i) => v.insert(i, (key, value)),
            },
            Elements::Large(m) => {
                m.insert(key, value);
            }
        }
    }

    /// Removes an element.
    pub fn remove(&mut self, key: &Key) {
        match self {
            Elements::Small(v) => {
                if let Ok(i) = v.binary_search_by(|(k, _)| k.cmp(key)) {
                    v.remove(i);
                }
            }
            Elements::Large(m) => {
                m.remove(key);
            }
        }
    }

    /// Every element, in no particular order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&Key, &ElementValue)> + '_> {
        match self {
            Elements::Small(v) => Box::new(v.iter().map(|(k, v)| (k, v))),
            Elements::Large(m) => Box::new(m.iter()),
        }
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> + '_ {
        self.iter().map(|(k, _)| k)
    }
}

/// Fingerprints of `rules` as written for `family`.
pub fn rule_fingerprints(family: Family, rules: &[Rule], scratch: &mut Writer) -> Vec<u64> {
    rules
        .iter()
        .map(|r| {
            *scratch = Writer::new();
            r.encode(family, scratch);
            fingerprint(family, scratch.bytes())
        })
        .collect()
}

/// Whether a set is an interval map (slot ranges).
fn is_interval(wire: &SetWire) -> bool {
    wire.flags & SET_F_INTERVAL != 0
}

/// Plans the change of the interval map `set` from `have` to `want` (sorted by key: slot
/// order, an end before a start at the same slot) and records the result in `have`: only
/// deletions when `want` is a subset of `have`, else every element deleted and `want` added.
fn rewrite_interval_set(
    plan: &mut PlanBuilder,
    family: Family,
    set: &Name,
    have: &mut Elements,
    want: Vec<(Key, ElementValue)>,
    service: Option<&ServiceName>,
) {
    // Only deletions (the last endpoints went away, or an edge between two ranges that
    // merged): deleting never trips the tree's overlap checks.
    let shrink = want.iter().all(|(k, v)| have.get(k) == Some(v));
    let mut gone: Vec<Key> = if shrink {
        let keep: HashSet<&Key> = want.iter().map(|(k, _)| k).collect();
        have.keys().filter(|k| !keep.contains(k)).copied().collect()
    } else {
        have.keys().copied().collect()
    };
    gone.sort();
    for key in gone {
        plan.push(family, Op::DeleteElement(set.clone(), key), service);
        have.remove(&key);
    }
    if shrink {
        return;
    }
    for (key, value) in &want {
        plan.push(
            family,
            Op::AddElement(set.clone(), *key, value.clone()),
            service,
        );
    }
    // `have` is empty now: the wanted vector (exactly its size) becomes the record.
    *have = Elements::from_sorted(want);
}

/// Who claims one element, in name order: the first decides its value. Almost always one
/// Service, so that one is kept inline (a vector per element cost a heap block of ~48 bytes
/// each, ~6 MiB at 10,000 Services × 10 endpoints; a `BTreeMap` node per element, before
/// that, ~1 KiB each).
#[derive(Debug, Clone)]
enum Claimants {
    /// One claimant.
    One(Arc<ServiceName>, ElementValue),
    /// None (until the key is forgotten), or several, in name order.
    Many(Vec<(Arc<ServiceName>, ElementValue)>),
}

impl Default for Claimants {
    fn default() -> Self {
        Claimants::Many(Vec::new())
    }
}

impl Claimants {
    /// Adds `name`'s claim, or changes the value it wants.
    fn add(&mut self, name: &Arc<ServiceName>, value: ElementValue) {
        match self {
            Claimants::One(n, v) if **n == **name => *v = value,
            Claimants::One(..) => {
                let Claimants::One(n, v) = std::mem::take(self) else {
                    unreachable!("matched above")
                };
                let mut many = Vec::with_capacity(2);
                many.push((n, v));
                *self = Claimants::Many(many);
                self.add(name, value);
            }
            Claimants::Many(many) if many.is_empty() => {
                *self = Claimants::One(name.clone(), value);
            }
            Claimants::Many(many) => match many.binary_search_by(|(n, _)| (**n).cmp(&**name)) {
                Ok(i) => many[i].1 = value,
                Err(i) => {
                    many.reserve_exact(1);
                    many.insert(i, (name.clone(), value));
                }
            },
        }
    }

    /// Drops `name`'s claim.
    fn remove(&mut self, name: &ServiceName) {
        match self {
            Claimants::One(n, _) if **n == *name => *self = Claimants::default(),
            Claimants::One(..) => {}
            Claimants::Many(many) => many.retain(|(n, _)| **n != *name),
        }
    }

    /// The value the first claimant wants; `None` when nobody claims the element.
    fn first(&self) -> Option<&ElementValue> {
        match self {
            Claimants::One(_, v) => Some(v),
            Claimants::Many(many) => many.first().map(|(_, v)| v),
        }
    }
}

/// Claims by set, then by element key (one map per shared set: keying one map by
/// `(set, key)` repeated the set's name in every entry).
type Claims = HashMap<Name, HashMap<Key, Claimants>>;

/// What one Service put into the table, to take it out again.
#[derive(Debug, Clone, Default)]
struct Footprint {
    chains: Vec<Name>,
    sets: Vec<Name>,
    claims: Vec<(Name, Key)>,
}

/// One family's table: what it holds, who claims what, and the chains waiting for deletion.
#[derive(Debug, Clone)]
pub struct TableState {
    family: Family,
    /// `None` while the table does not exist.
    held: Option<Held>,
    claims: Claims,
    /// Each Service's footprint, under the one copy of its name its claims share.
    services: HashMap<Arc<ServiceName>, Footprint>,
    stale: HashMap<Name, Instant>,
    scratch: Writer,
}

impl TableState {
    /// A table not created yet.
    pub fn new(family: Family) -> TableState {
        TableState {
            family,
            held: None,
            claims: HashMap::new(),
            services: HashMap::new(),
            stale: HashMap::new(),
            scratch: Writer::new(),
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Stale chains flushed at least [`STALE_CHAIN_GRACE`] before `now`.
    pub fn expired_stale(&self, now: Instant) -> Vec<Name> {
        let mut out: Vec<Name> = self
            .stale
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= STALE_CHAIN_GRACE)
            .map(|(n, _)| n.clone())
            .collect();
        out.sort();
        out
    }

    /// Records that `chains` were deleted (or that deleting them failed: either way they are
    /// no longer tracked; a full sync finds any left behind).
    pub fn forget_stale(&mut self, chains: &[Name]) {
        for name in chains {
            self.stale.remove(name);
            if let Some(held) = &mut self.held {
                held.chains.remove(name);
            }
        }
    }

    /// Takes what we believe the table holds, to use it in place of a kernel dump.
    pub fn take_held(&mut self) -> Option<Held> {
        self.held.take()
    }

    /// Forgets everything (after `--cleanup`, or when the table is gone).
    pub fn reset(&mut self) {
        self.held = None;
        self.claims.clear();
        self.services.clear();
        self.stale.clear();
    }

    /// Plans the creation of the table with its fixed part (when it does not exist).
    pub fn ensure_table(&mut self, plan: &mut PlanBuilder, fixed: &FixedObjects) {
        if self.held.is_some() {
            return;
        }
        let mut held = Held::default();
        plan.push(self.family, Op::AddTable, None);
        for set in &fixed.sets {
            self.add_set(plan, &mut held, set, None);
        }
        for chain in &fixed.chains {
            self.add_chain(plan, &mut held, chain, None);
        }
        self.held = Some(held);
    }

    fn add_set(
        &self,
        plan: &mut PlanBuilder,
        held: &mut Held,
        set: &SetSpec,
        service: Option<&ServiceName>,
    ) {
        plan.push(self.family, Op::AddSet(set.clone()), service);
        held.sets
            .insert(set.name.clone(), set.kind.wire(self.family));
        if !set.kind.is_dynamic() {
            held.elements.entry(set.name.clone()).or_default();
        }
    }

    fn add_chain(
        &mut self,
        plan: &mut PlanBuilder,
        held: &mut Held,
        chain: &ChainSpec,
        service: Option<&ServiceName>,
    ) {
        plan.push(
            self.family,
            Op::AddChain(chain.name.clone(), chain.base),
            service,
        );
        for rule in &chain.rules {
            plan.push(
                self.family,
                Op::AddRule(chain.name.clone(), rule.clone()),
                service,
            );
        }
        let rules = rule_fingerprints(self.family, &chain.rules, &mut self.scratch);
        held.chains.insert(
            chain.name.clone(),
            HeldChain {
                base: chain.base,
                rules,
            },
        );
        self.stale.remove(&chain.name);
    }

    /// Plans one Service's change: `new` is its rendered part (`None` when it has no rows of
    /// this family any more). Only its chains, sets and claimed elements are touched.
    pub fn sync_service(
        &mut self,
        plan: &mut PlanBuilder,
        name: &ServiceName,
        new: Option<ServiceObjects>,
        now: Instant,
    ) {
        let Some(mut held) = self.held.take() else {
            debug_assert!(new.is_none(), "ensure_table before adding rows");
            return;
        };
        let (shared, old) = self
            .services
            .remove_entry(name)
            .unwrap_or_else(|| (Arc::new(name.clone()), Footprint::default()));
        let new = new.unwrap_or_default();
        let mut footprint = Footprint::default();

        let new_sets: HashSet<&Name> = new.sets.iter().map(|s| &s.name).collect();
        for set in &new.sets {
            if held.sets.get(&set.name) != Some(&set.kind.wire(self.family)) {
                self.add_set(plan, &mut held, set, Some(name));
            }
            footprint.sets.push(set.name.clone());
        }
        let new_chains: HashSet<&Name> = new.chains.iter().map(|c| &c.name).collect();
        for chain in &new.chains {
            let rules = rule_fingerprints(self.family, &chain.rules, &mut self.scratch);
            match held.chains.get_mut(&chain.name) {
                None => self.add_chain(plan, &mut held, chain, Some(name)),
                Some(current) if current.rules == rules => {}
                Some(current) => {
                    if !current.rules.is_empty() {
                        plan.push(self.family, Op::FlushChain(chain.name.clone()), Some(name));
                    }
                    for rule in &chain.rules {
                        plan.push(
                            self.family,
                            Op::AddRule(chain.name.clone(), rule.clone()),
                            Some(name),
                        );
                    }
                    current.rules = rules;
                }
            }
            self.stale.remove(&chain.name);
            footprint.chains.push(chain.name.clone());
        }
        for chain in old.chains.iter().filter(|c| !new_chains.contains(c)) {
            self.retire_chain(plan, &mut held, chain, Some(name), now);
        }
        for set in old.sets.iter().filter(|s| !new_sets.contains(s)) {
            if held.sets.remove(set).is_some() {
                held.elements.remove(set);
                plan.push(self.family, Op::DeleteSet(set.clone()), Some(name));
            }
        }

        for (set, want) in new.elements {
            self.settle_own_set(plan, &mut held, &set, want, Some(name));
        }

        let mut touched: Vec<(Name, Key)> = Vec::new();
        for (set, key) in old.claims {
            if let Some(claimants) = self.claims.get_mut(&set).and_then(|m| m.get_mut(&key)) {
                claimants.remove(name);
                touched.push((set, key));
            }
        }
        for (set, key, value) in new.claims {
            let claimants = self
                .claims
                .entry(set.clone())
                .or_default()
                .entry(key)
                .or_default();
            claimants.add(&shared, value);
            footprint.claims.push((set.clone(), key));
            touched.push((set, key));
        }
        touched.sort();
        touched.dedup();
        for (set, key) in touched {
            self.settle_element(plan, &mut held, &set, key, Some(name));
        }
        if !(footprint.chains.is_empty()
            && footprint.sets.is_empty()
            && footprint.claims.is_empty())
        {
            self.services.insert(shared, footprint);
        }
        self.held = Some(held);
    }

    /// Flushes a chain no longer wanted and starts its grace period.
    fn retire_chain(
        &mut self,
        plan: &mut PlanBuilder,
        held: &mut Held,
        chain: &Name,
        service: Option<&ServiceName>,
        now: Instant,
    ) {
        if let Some(current) = held.chains.get_mut(chain) {
            if !current.rules.is_empty() {
                plan.push(self.family, Op::FlushChain(chain.clone()), service);
                current.rules.clear();
            }
            self.stale.entry(chain.clone()).or_insert(now);
        }
    }

    /// Brings one of a Service's own maps (claimed by nobody else) in line with `want`,
    /// its elements in key order.
    fn settle_own_set(
        &mut self,
        plan: &mut PlanBuilder,
        held: &mut Held,
        set: &Name,
        want: Vec<(Key, ElementValue)>,
        service: Option<&ServiceName>,
    ) {
        let interval = held.sets.get(set).is_some_and(is_interval);
        let Some(have) = held.elements.get_mut(set) else {
            return;
        };
        if want.len() == have.len() && want.iter().all(|(k, v)| have.get(k) == Some(v)) {
            return;
        }
        if interval {
            rewrite_interval_set(plan, self.family, set, have, want, service);
            return;
        }
        let keep: HashSet<&Key> = want.iter().map(|(k, _)| k).collect();
        let mut gone: Vec<Key> = have
            .iter()
            .filter(|(k, _)| !keep.contains(k))
            .map(|(k, _)| *k)
            .collect();
        gone.sort();
        for key in gone {
            plan.push(self.family, Op::DeleteElement(set.clone(), key), service);
            have.remove(&key);
        }
        for (key, value) in want {
            match have.get(&key) {
                Some(current) if *current == value => continue,
                Some(_) => {
                    plan.push(self.family, Op::DeleteElement(set.clone(), key), service);
                }
                None => {}
            }
            plan.push(
                self.family,
                Op::AddElement(set.clone(), key, value.clone()),
                service,
            );
            have.insert(key, value);
        }
    }

    /// The value the first claimant of `key` in `set` wants, forgetting a key nobody claims.
    fn wanted(&mut self, set: &Name, key: Key) -> Option<ElementValue> {
        let by_key = self.claims.get_mut(set)?;
        match by_key.get(&key).map(Claimants::first) {
            Some(Some(value)) => Some(value.clone()),
            Some(None) => {
                by_key.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Brings one element in line with its first claimant.
    fn settle_element(
        &mut self,
        plan: &mut PlanBuilder,
        held: &mut Held,
        set: &Name,
        key: Key,
        service: Option<&ServiceName>,
    ) {
        let wanted = self.wanted(set, key);
        let Some(elements) = held.elements.get_mut(set) else {
            return; // the set itself is gone
        };
        let current = elements.get(&key);
        if current == wanted.as_ref() {
            return;
        }
        if current.is_some() {
            plan.push(self.family, Op::DeleteElement(set.clone(), key), service);
            elements.remove(&key);
        }
        if let Some(value) = wanted {
            plan.push(
                self.family,
                Op::AddElement(set.clone(), key, value.clone()),
                service,
            );
            elements.insert(key, value);
        }
    }

    /// Plans a full sync: the fixed part and every Service's part against `kernel`, what
    /// the kernel holds (`None`: no table). Anything of ours the kernel holds and nobody
    /// wants is removed; a table whose fixed part or sets were changed by someone else is
    /// rebuilt in the same transaction. Returns whether it was rebuilt.
    ///
    /// `services` yields every Service's rendered part; it is walked once, one Service at a
    /// time (a Service's objects are dropped once planned: at 10,000 Services keeping them all
    /// cost tens of MiB at the sync's memory peak), and a second time only when a Service's
    /// set or chain turns out to conflict with the kernel's (the table is then rebuilt).
    pub fn sync_full<F, I>(
        &mut self,
        plan: &mut PlanBuilder,
        fixed: &FixedObjects,
        services: F,
        kernel: Option<Held>,
        now: Instant,
    ) -> bool
    where
        F: Fn() -> I,
        I: Iterator<Item = (ServiceName, ServiceObjects)>,
    {
        let stale_before = std::mem::take(&mut self.stale);
        self.claims.clear();
        self.services.clear();
        self.held = None;
        if kernel.is_none() && services().next().is_none() {
            return false;
        }
        let conflicts = |k: &Held| {
            k.unreadable
                || fixed.sets.iter().any(|s| set_conflicts(k, s, self.family))
                || fixed.chains.iter().any(|c| chain_conflicts(k, c))
        };
        let start = match kernel {
            Some(k) if conflicts(&k) => Start::Rebuild,
            Some(k) => Start::Kernel(k),
            None => Start::Empty,
        };
        if matches!(start, Start::Rebuild) {
            let rebuilt = self.plan_full(plan, fixed, services(), start, &stale_before, now);
            debug_assert!(rebuilt.is_ok(), "a rebuild conflicts with nothing");
            return true;
        }
        let mark = plan.mark();
        match self.plan_full(plan, fixed, services(), start, &stale_before, now) {
            Ok(()) => false,
            Err(Conflict) => {
                plan.rollback(&mark);
                self.stale.clear();
                self.claims.clear();
                self.services.clear();
                let rebuilt =
                    self.plan_full(plan, fixed, services(), Start::Rebuild, &stale_before, now);
                debug_assert!(rebuilt.is_ok(), "a rebuild conflicts with nothing");
                true
            }
        }
    }

    /// One pass of [`TableState::sync_full`] from `start`; `Err` when a Service's set or
    /// chain conflicts with what the kernel holds (only when starting from the kernel's).
    fn plan_full(
        &mut self,
        plan: &mut PlanBuilder,
        fixed: &FixedObjects,
        services: impl Iterator<Item = (ServiceName, ServiceObjects)>,
        start: Start,
        stale_before: &HashMap<Name, Instant>,
        now: Instant,
    ) -> Result<(), Conflict> {
        let check = matches!(start, Start::Kernel(_));
        let mut held = match start {
            Start::Rebuild => {
                plan.push(self.family, Op::DeleteTable, None);
                plan.push(self.family, Op::AddTable, None);
                Held::default()
            }
            Start::Kernel(k) => k,
            Start::Empty => {
                plan.push(self.family, Op::AddTable, None);
                Held::default()
            }
        };
        let mut wanted_sets: HashSet<Name> = HashSet::new();
        let mut wanted_chains: HashSet<Name> = HashSet::new();
        // Sets whose elements their Service settled (its own maps); the rest hold claims.
        let mut own_sets: HashSet<Name> = HashSet::new();

        for set in &fixed.sets {
            self.want_set(plan, &mut held, set, None);
            wanted_sets.insert(set.name.clone());
        }
        for chain in &fixed.chains {
            self.want_chain(plan, &mut held, chain, None);
            wanted_chains.insert(chain.name.clone());
        }
        for (name, objects) in services {
            if check
                && (objects
                    .sets
                    .iter()
                    .any(|s| set_conflicts(&held, s, self.family))
                    || objects.chains.iter().any(|c| chain_conflicts(&held, c)))
            {
                self.held = None;
                return Err(Conflict);
            }
            for set in &objects.sets {
                self.want_set(plan, &mut held, set, Some(&name));
                wanted_sets.insert(set.name.clone());
            }
            for chain in &objects.chains {
                self.want_chain(plan, &mut held, chain, Some(&name));
                wanted_chains.insert(chain.name.clone());
            }
            let ServiceObjects {
                chains,
                sets,
                claims,
                elements,
            } = objects;
            let mut elements: HashMap<Name, Vec<(Key, ElementValue)>> =
                elements.into_iter().collect();
            for set in &sets {
                if let Some(have) = held.elements.get_mut(&set.name) {
                    let want = elements.remove(&set.name).unwrap_or_default();
                    let interval = held.sets.get(&set.name).is_some_and(is_interval);
                    diff_elements(plan, self.family, &set.name, have, want, interval);
                    own_sets.insert(set.name.clone());
                }
            }
            let name = Arc::new(name);
            let mut footprint = Footprint {
                chains: chains.into_iter().map(|c| c.name).collect(),
                sets: sets.into_iter().map(|s| s.name).collect(),
                claims: Vec::with_capacity(claims.len()),
            };
            for (set, key, value) in claims {
                let claimants = self
                    .claims
                    .entry(set.clone())
                    .or_default()
                    .entry(key)
                    .or_default();
                claimants.add(&name, value);
                footprint.claims.push((set, key));
            }
            self.services.insert(name, footprint);
        }
        let unwanted: Vec<Name> = held
            .chains
            .keys()
            .filter(|c| !wanted_chains.contains(*c))
            .cloned()
            .collect();
        for chain in unwanted {
            if let Some(since) = stale_before.get(&chain) {
                self.stale.insert(chain.clone(), *since);
            }
            self.retire_chain(plan, &mut held, &chain, None, now);
        }
        let unwanted_sets: Vec<Name> = held
            .sets
            .keys()
            .filter(|s| !wanted_sets.contains(*s))
            .cloned()
            .collect();
        for set in unwanted_sets {
            held.sets.remove(&set);
            held.elements.remove(&set);
            plan.push(self.family, Op::DeleteSet(set), None);
        }

        // The shared sets: every element as its first claimant wants it.
        let mut shared: Vec<Name> = held
            .elements
            .keys()
            .filter(|s| !own_sets.contains(*s))
            .cloned()
            .collect();
        shared.sort();
        for set in &shared {
            let interval = held.sets.get(set).is_some_and(is_interval);
            let have = held.elements.get_mut(set).expect("listed above");
            if interval {
                // Not a layout we write (claims go to hash sets); diffed whole all the same.
                let mut want: Vec<(Key, ElementValue)> = self
                    .claims
                    .get(set)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, c)| Some((*k, c.first()?.clone())))
                    .collect();
                want.sort_by_key(|(k, _)| *k);
                diff_elements(plan, self.family, set, have, want, true);
                continue;
            }
            let claimed = self.claims.get(set);
            let mut gone: Vec<Key> = have
                .iter()
                .filter(|(k, v)| claimed.and_then(|m| m.get(*k)?.first()) != Some(*v))
                .map(|(k, _)| *k)
                .collect();
            gone.sort();
            for key in gone {
                plan.push(self.family, Op::DeleteElement(set.clone(), key), None);
                have.remove(&key);
            }
        }
        let mut add: Vec<(&Name, Key, &ElementValue)> = self
            .claims
            .iter()
            .filter(|(set, _)| {
                !own_sets.contains(*set) && !held.sets.get(*set).is_some_and(is_interval)
            })
            .filter_map(|(set, by_key)| Some((set, by_key, held.elements.get(set)?)))
            .flat_map(|(set, by_key, have)| {
                by_key.iter().filter_map(move |(key, claimants)| {
                    let value = claimants.first()?;
                    (!have.contains_key(key)).then_some((set, *key, value))
                })
            })
            .collect();
        add.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (set, key, value) in add {
            plan.push(
                self.family,
                Op::AddElement(set.clone(), key, value.clone()),
                None,
            );
            held.elements
                .get_mut(set)
                .expect("filtered above")
                .insert(key, value.clone());
        }
        self.held = Some(held);
        Ok(())
    }

    /// A wanted set, in a full sync: added when the table lacks it.
    fn want_set(
        &mut self,
        plan: &mut PlanBuilder,
        held: &mut Held,
        set: &SetSpec,
        service: Option<&ServiceName>,
    ) {
        if !held.sets.contains_key(&set.name) {
            self.add_set(plan, held, set, service);
        } else if !set.kind.is_dynamic() {
            held.elements.entry(set.name.clone()).or_default();
        }
    }

    /// A wanted chain, in a full sync: added, or rewritten when its rules differ.
    fn want_chain(
        &mut self,
        plan: &mut PlanBuilder,
        held: &mut Held,
        chain: &ChainSpec,
        service: Option<&ServiceName>,
    ) {
        let rules = rule_fingerprints(self.family, &chain.rules, &mut self.scratch);
        match held.chains.get_mut(&chain.name) {
            None => self.add_chain(plan, held, chain, service),
            Some(current) if current.rules == rules => {}
            Some(current) => {
                if !current.rules.is_empty() {
                    plan.push(self.family, Op::FlushChain(chain.name.clone()), service);
                }
                for rule in &chain.rules {
                    plan.push(
                        self.family,
                        Op::AddRule(chain.name.clone(), rule.clone()),
                        service,
                    );
                }
                current.rules = rules;
            }
        }
    }
}

/// Where a full sync starts from.
enum Start {
    /// The kernel's table, as read (or as we hold it).
    Kernel(Held),
    /// No table yet.
    Empty,
    /// The kernel's table, replaced whole.
    Rebuild,
}

/// A Service's set or chain conflicts with the kernel's: the table must be rebuilt.
#[derive(Debug)]
struct Conflict;

/// Whether the kernel holds `set` with another type.
fn set_conflicts(k: &Held, set: &SetSpec, family: Family) -> bool {
    k.sets
        .get(&set.name)
        .is_some_and(|w| *w != set.kind.wire(family))
}

/// Whether the kernel holds `chain` with another hook.
fn chain_conflicts(k: &Held, chain: &ChainSpec) -> bool {
    k.chains
        .get(&chain.name)
        .is_some_and(|held| held.base != chain.base)
}

/// Plans the change of one set's elements from `have` to `want` (sorted by key) in a full
/// sync, and records it in `have`.
fn diff_elements(
    plan: &mut PlanBuilder,
    family: Family,
    set: &Name,
    have: &mut Elements,
    want: Vec<(Key, ElementValue)>,
    interval: bool,
) {
    let same = want.len() == have.len() && want.iter().all(|(k, v)| have.get(k) == Some(v));
    if same {
        return;
    }
    if interval {
        rewrite_interval_set(plan, family, set, have, want, None);
        return;
    }
    let keep: HashMap<&Key, &ElementValue> = want.iter().map(|(k, v)| (k, v)).collect();
    let mut gone: Vec<Key> = have
        .iter()
        .filter(|(k, v)| keep.get(k) != Some(v))
        .map(|(k, _)| *k)
        .collect();
    gone.sort();
    for key in gone {
        plan.push(family, Op::DeleteElement(set.clone(), key), None);
        have.remove(&key);
    }
    for (key, value) in want {
        if !have.contains_key(&key) {
            plan.push(
                family,
                Op::AddElement(set.clone(), key, value.clone()),
                None,
            );
            have.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Destination, EndpointSet, FrontendKind, Masquerade, Protocol, Scheduler, ServicePortName,
        ServiceTable, VirtualKey, VirtualServer,
    };
    use crate::nftables::objects::{Edge, Value};
    use crate::nftables::ruleset::{render_fixed, render_service, Fixed};
    use std::sync::Arc;

    fn dest(ip: &str) -> Destination {
        Destination {
            address: ip.parse().unwrap(),
            port: 8080,
            weight: 1,
            local: true,
            ready: true,
        }
    }

    fn row(
        service: &str,
        kind: FrontendKind,
        addr: &str,
        port: u16,
        eps: &[&str],
    ) -> VirtualServer {
        VirtualServer {
            key: VirtualKey {
                address: addr.parse().unwrap(),
                protocol: Protocol::Tcp,
                port,
            },
            kind,
            service_port: Arc::new(ServicePortName {
                service: ServiceName::new("ns", service),
                port: "http".into(),
                protocol: Protocol::Tcp,
            }),
            scheduler: Scheduler::RoundRobin,
            affinity_timeout: None,
            endpoint_set: EndpointSet::Cluster,
            destinations: eps.iter().map(|e| dest(e)).collect(),
            source_ranges: Arc::from([]),
            masquerade: Masquerade::OffClusterSources,
        }
    }

    fn table(service: &str, rows: Vec<VirtualServer>) -> ServiceTable {
        ServiceTable {
            service: ServiceName::new("ns", service),
            virtual_servers: rows,
            health_check: None,
        }
    }

    struct Fixture {
        state: TableState,
        names: Fixed,
        fixed: FixedObjects,
    }

    impl Fixture {
        fn new() -> Fixture {
            let names = Fixed::default();
            let fixed = render_fixed(Family::IPv4, &names, &[]);
            let mut state = TableState::new(Family::IPv4);
            let mut plan = PlanBuilder::new();
            state.ensure_table(&mut plan, &fixed);
            Fixture {
                state,
                names,
                fixed,
            }
        }

        fn sync(&mut self, t: &ServiceTable) -> Vec<Op> {
            let mut plan = PlanBuilder::new();
            let objects = render_service(Family::IPv4, t, &self.names, false);
            self.state
                .sync_service(&mut plan, &t.service, Some(objects), Instant::now());
            plan.finish().into_ops().into_iter().map(|p| p.op).collect()
        }

        fn remove(&mut self, service: &str) -> Vec<Op> {
            let mut plan = PlanBuilder::new();
            self.state.sync_service(
                &mut plan,
                &ServiceName::new("ns", service),
                None,
                Instant::now(),
            );
            plan.finish().into_ops().into_iter().map(|p| p.op).collect()
        }
    }

    fn count(ops: &[Op], f: impl Fn(&Op) -> bool) -> usize {
        ops.iter().filter(|o| f(o)).count()
    }

    #[test]
    fn elements_behave_as_a_map_below_and_above_the_small_set_size() {
        let mut elements = Elements::default();
        let mut reference: HashMap<Key, ElementValue> = HashMap::new();
        // Inserted out of order, past SMALL_SET, then removed down again: the sorted
        // vector and the hash table must answer the same.
        for i in (0..(2 * SMALL_SET as u32)).rev() {
            let key = Key::Slot(i * 7 % 200);
            let value = Some(Value::Target("10.0.0.1".parse().unwrap(), i as u16));
            elements.insert(key, value.clone());
            reference.insert(key, value);
            if i % 3 == 0 {
                elements.remove(&Key::Slot(i));
                reference.remove(&Key::Slot(i));
            }
            assert_eq!(elements.len(), reference.len());
        }
        assert!(matches!(elements, Elements::Large(_)));
        for (k, v) in &reference {
            assert_eq!(elements.get(k), Some(v));
        }
        assert_eq!(elements.iter().count(), reference.len());
        assert!(!elements.contains_key(&Key::Slot(1000)));
        let small = Elements::from_sorted(vec![(Key::Slot(1), None), (Key::Slot(2), None)]);
        assert!(matches!(small, Elements::Small(ref v) if v.capacity() == 2));
        assert_eq!(small, {
            let mut e = Elements::default();
            e.insert(Key::Slot(2), None);
            e.insert(Key::Slot(1), None);
            e
        });
    }

    #[test]
    fn claimants_keep_name_order_and_hand_the_value_to_the_next() {
        let a = Arc::new(ServiceName::new("ns", "a"));
        let b = Arc::new(ServiceName::new("ns", "b"));
        let va = Some(Value::Target("10.0.0.1".parse().unwrap(), 1));
        let vb = Some(Value::Target("10.0.0.2".parse().unwrap(), 2));
        let mut c = Claimants::default();
        assert_eq!(c.first(), None);
        c.add(&b, vb.clone());
        assert_eq!(c.first(), Some(&vb));
        c.add(&a, va.clone());
        assert_eq!(c.first(), Some(&va), "a sorts first");
        c.remove(&a);
        assert_eq!(c.first(), Some(&vb));
        c.remove(&b);
        assert_eq!(c.first(), None);
        c.add(&a, None);
        assert!(matches!(c, Claimants::One(..)));
    }

    #[test]
    fn a_new_service_adds_its_chains_rules_and_elements() {
        let mut fx = Fixture::new();
        let ops = fx.sync(&table(
            "web",
            vec![row(
                "web",
                FrontendKind::ClusterIP,
                "10.96.0.1",
                80,
                &["10.0.0.1", "10.0.0.2"],
            )],
        ));
        // A policy chain with its one rule, and its slot map.
        assert_eq!(count(&ops, |o| matches!(o, Op::AddChain(..))), 1);
        assert_eq!(count(&ops, |o| matches!(o, Op::AddRule(..))), 1);
        assert_eq!(count(&ops, |o| matches!(o, Op::AddSet(..))), 1);
        // service-ips, cluster-ips (no masquerade element without --cluster-cidr), two
        // ranges (start and end each) and two hairpin pairs.
        assert_eq!(count(&ops, |o| matches!(o, Op::AddElement(..))), 8);
        assert_eq!(ops.len(), 11);
        let slots: Vec<_> = ops
            .iter()
            .filter_map(|o| match o {
                Op::AddElement(_, Key::SlotEdge(slot, edge), value) => Some((*slot, *edge, value)),
                _ => None,
            })
            .collect();
        let target = |ip: &str| Some(Value::Target(ip.parse().unwrap(), 8080));
        assert_eq!(
            slots,
            vec![
                (0, Edge::Start, &target("10.0.0.1")),
                (360_360, Edge::End, &None),
                (360_360, Edge::Start, &target("10.0.0.2")),
                (720_720, Edge::End, &None),
            ],
            "ranges in slot order, an end before the start at the same slot"
        );
    }

    #[test]
    fn only_this_nodes_endpoints_get_a_hairpin_pair() {
        // Upstream's IPVS proxier fills KUBE-LOOP-BACK from local endpoints only: a Pod on
        // another node never sends a packet this node DNATs back to it.
        let mut fx = Fixture::new();
        let mut web = row(
            "web",
            FrontendKind::ClusterIP,
            "10.96.0.1",
            80,
            &["10.0.0.1", "10.0.0.2"],
        );
        let mut destinations = web.destinations.to_vec();
        destinations[1].local = false;
        web.destinations = destinations.into();
        let ops = fx.sync(&table("web", vec![web]));
        let pairs: Vec<_> = ops
            .iter()
            .filter_map(|o| match o {
                Op::AddElement(_, Key::Hairpin(address), _) => Some(address.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(pairs, vec!["10.0.0.1"]);
    }

    #[test]
    fn the_same_rows_again_write_nothing() {
        let mut fx = Fixture::new();
        let t = table(
            "web",
            vec![row(
                "web",
                FrontendKind::ClusterIP,
                "10.96.0.1",
                80,
                &["10.0.0.1"],
            )],
        );
        fx.sync(&t);
        assert!(fx.sync(&t).is_empty());
    }

    fn only_elements(ops: &[Op]) -> bool {
        ops.iter()
            .all(|o| matches!(o, Op::AddElement(..) | Op::DeleteElement(..)))
    }

    fn elements_have_no_verdict(ops: &[Op]) -> bool {
        ops.iter().all(|o| match o {
            Op::AddElement(_, _, value) => {
                !matches!(value, Some(Value::Goto(_)) | Some(Value::Jump(_)))
            }
            _ => true,
        })
    }

    #[test]
    fn an_endpoint_change_writes_only_elements_without_verdicts() {
        let mut fx = Fixture::new();
        let eps = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
        let web = |eps: &[&str]| {
            table(
                "web",
                vec![row("web", FrontendKind::ClusterIP, "10.96.0.1", 80, eps)],
            )
        };
        fx.sync(&web(&eps));
        // 3 → 2: the ranges move, the map is rewritten (6 edges out, 4 in) and the hairpin
        // pair of the gone endpoint deleted.
        let ops = fx.sync(&web(&eps[..2]));
        assert!(
            only_elements(&ops) && elements_have_no_verdict(&ops),
            "{ops:?}"
        );
        assert_eq!(count(&ops, |o| matches!(o, Op::DeleteElement(..))), 7);
        assert_eq!(count(&ops, |o| matches!(o, Op::AddElement(..))), 4);
        // 2 → 1 keeps the first start and the last end: two deletions (the edges between
        // the ranges) and the hairpin pair, nothing added.
        let ops = fx.sync(&web(&eps[..1]));
        assert!(only_elements(&ops), "{ops:?}");
        assert_eq!(count(&ops, |o| matches!(o, Op::DeleteElement(..))), 3);
        assert_eq!(
            count(&ops, |o| matches!(o, Op::AddElement(..))),
            0,
            "{ops:?}"
        );
        // 1 → 3 again.
        let ops = fx.sync(&web(&eps));
        assert!(
            only_elements(&ops) && elements_have_no_verdict(&ops),
            "{ops:?}"
        );
        let later = Instant::now() + STALE_CHAIN_GRACE;
        assert!(fx.state.expired_stale(later).is_empty());
    }

    #[test]
    fn with_affinity_removing_one_endpoint_rewrites_the_policy_chain_and_retires_the_endpoint_chain(
    ) {
        let mut fx = Fixture::new();
        let eps = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
        let sticky = |eps: &[&str]| {
            let mut r = row("web", FrontendKind::ClusterIP, "10.96.0.1", 80, eps);
            r.affinity_timeout = Some(30);
            table("web", vec![r])
        };
        fx.sync(&sticky(&eps));
        let ops = fx.sync(&sticky(&eps[..2]));
        // Flush the policy chain and the gone endpoint's chain; 2 affinity + 2 selection
        // rules; the gone endpoint's affinity set and hairpin pair.
        assert_eq!(count(&ops, |o| matches!(o, Op::FlushChain(..))), 2);
        assert_eq!(count(&ops, |o| matches!(o, Op::AddRule(..))), 4);
        assert_eq!(count(&ops, |o| matches!(o, Op::DeleteSet(..))), 1);
        assert_eq!(count(&ops, |o| matches!(o, Op::DeleteElement(..))), 1);
        assert_eq!(ops.len(), 8, "{ops:?}");
        let later = Instant::now() + STALE_CHAIN_GRACE;
        assert_eq!(fx.state.expired_stale(later).len(), 1);
    }

    #[test]
    fn the_first_service_by_name_owns_a_contested_node_port_and_hands_it_over() {
        let mut fx = Fixture::new();
        let np = |s: &str, ep: &str| {
            table(
                s,
                vec![row(s, FrontendKind::NodePort, "192.168.0.1", 30080, &[ep])],
            )
        };
        fx.sync(&np("b", "10.0.0.2"));
        // `a` sorts first: it takes the element over.
        let ops = fx.sync(&np("a", "10.0.0.1"));
        let replaced = ops.iter().any(|o| {
            matches!(o, Op::AddElement(set, Key::NodePort(Protocol::Tcp, 30080), Some(Value::Goto(c)))
                if &**set == "service-nodeports" && c.contains("/a/"))
        });
        assert!(replaced, "{ops:?}");
        // `b` changing does not touch the element `a` owns.
        let ops = fx.sync(&np("b", "10.0.0.3"));
        assert!(
            !ops.iter().any(|o| matches!(o, Op::AddElement(set, ..) | Op::DeleteElement(set, ..) if &**set == "service-nodeports")),
            "{ops:?}"
        );
        // `a` leaving hands it back to `b`.
        let ops = fx.remove("a");
        let back = ops.iter().any(|o| {
            matches!(o, Op::AddElement(set, _, Some(Value::Goto(c))) if &**set == "service-nodeports" && c.contains("/b/"))
        });
        assert!(back, "{ops:?}");
        // The node address stays in nodeport-ips while `b` has rows on it.
        assert!(!ops
            .iter()
            .any(|o| matches!(o, Op::DeleteElement(set, _) if &**set == "nodeport-ips")));
    }

    #[test]
    fn a_full_sync_against_an_identical_table_plans_nothing() {
        let mut fx = Fixture::new();
        let t = table(
            "web",
            vec![row(
                "web",
                FrontendKind::ClusterIP,
                "10.96.0.1",
                80,
                &["10.0.0.1"],
            )],
        );
        fx.sync(&t);
        let held = fx.state.take_held();
        let mut plan = PlanBuilder::new();
        let objects = render_service(Family::IPv4, &t, &fx.names, false);
        let rebuilt = fx.state.sync_full(
            &mut plan,
            &fx.fixed,
            || std::iter::once((t.service.clone(), objects.clone())),
            held,
            Instant::now(),
        );
        assert!(!rebuilt);
        assert!(plan.is_empty(), "{:?}", plan.finish());
    }

    #[test]
    fn a_service_set_of_another_type_in_the_kernel_rebuilds_the_table_once() {
        let mut fx = Fixture::new();
        let web = table(
            "web",
            vec![row(
                "web",
                FrontendKind::ClusterIP,
                "10.96.0.1",
                80,
                &["10.0.0.1", "10.0.0.2"],
            )],
        );
        let other = table(
            "other",
            vec![row(
                "other",
                FrontendKind::ClusterIP,
                "10.96.0.2",
                80,
                &["10.0.0.3"],
            )],
        );
        fx.sync(&other);
        fx.sync(&web);
        let mut held = fx.state.take_held().expect("table exists");
        let objects = render_service(Family::IPv4, &web, &fx.names, false);
        let slot_map = objects.sets[0].name.clone();
        held.sets.get_mut(&slot_map).expect("web's slot map").flags ^= 1;
        // `other` sorts first: planned before the conflict is found on `web`.
        let services = || {
            [&other, &web].into_iter().map(|t| {
                (
                    t.service.clone(),
                    render_service(Family::IPv4, t, &fx.names, false),
                )
            })
        };
        let mut plan = PlanBuilder::new();
        let rebuilt =
            fx.state
                .sync_full(&mut plan, &fx.fixed, services, Some(held), Instant::now());
        assert!(rebuilt);
        let ops: Vec<Op> = plan.finish().into_ops().into_iter().map(|p| p.op).collect();
        assert_eq!(ops[..2], [Op::DeleteTable, Op::AddTable]);
        assert_eq!(count(&ops, |o| matches!(o, Op::DeleteTable)), 1);
        // Everything once, as from an empty table: nothing of the abandoned pass remains.
        let mut fresh = TableState::new(Family::IPv4);
        let mut expected = PlanBuilder::new();
        fresh.sync_full(&mut expected, &fx.fixed, services, None, Instant::now());
        let expected: Vec<Op> = expected
            .finish()
            .into_ops()
            .into_iter()
            .map(|p| p.op)
            .collect();
        assert_eq!(ops[1..], expected[..]);
    }
}
