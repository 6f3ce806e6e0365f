//! Sets of field paths, as server-side apply records ownership (upstream
//! `sigs.k8s.io/structured-merge-diff/fieldpath`), with the `FieldsV1` JSON encoding used in
//! `metadata.managedFields[].fieldsV1`.
//!
//! Also the schema-aware walks over objects that produce such sets: [`field_set_of`] (upstream
//! `TypedValue.ToFieldSet`) and [`compare`] (upstream `TypedValue.Compare`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use super::list_types::SsaList;
use super::schema::{Schema, SchemaAt};

/// One step of a field path (upstream `fieldpath.PathElement`). The derived order matches
/// upstream's: field names, then keys, then values, then indices.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a struct or a key of a map: `f:<name>`.
    Field(String),
    /// An item of a `listType=map` list, as the compact JSON object of its key fields with keys
    /// sorted: `k:{"port":80,"protocol":"TCP"}`.
    Key(String),
    /// An item of a `listType=set` list, as compact JSON: `v:"example.com/finalizer"`.
    Value(String),
    /// A list item by position: `i:0` (not produced for the served kinds).
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    pub fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(n) => format!("f:{n}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key.
    pub fn from_fields_v1_key(key: &str) -> Result<PathElement, String> {
        let (prefix, rest) = key
            .split_once(':')
            .ok_or_else(|| format!("unexpected fieldsV1 key {key:?}"))?;
        Ok(match prefix {
            "f" => PathElement::Field(rest.to_string()),
            "k" => {
                let v: Value = serde_json::from_str(rest)
                    .map_err(|e| format!("invalid key in fieldsV1 {key:?}: {e}"))?;
                let Value::Object(m) = v else {
                    return Err(format!("invalid key in fieldsV1 {key:?}: not an object"));
                };
                PathElement::Key(canonical_key(m.into_iter().collect()))
            }
            "v" => {
                let v: Value = serde_json::from_str(rest)
                    .map_err(|e| format!("invalid value in fieldsV1 {key:?}: {e}"))?;
                PathElement::Value(v.to_string())
            }
            "i" => PathElement::Index(
                rest.parse()
                    .map_err(|_| format!("invalid index in fieldsV1 {key:?}"))?,
            ),
            _ => return Err(format!("unexpected fieldsV1 key {key:?}")),
        })
    }
}

/// Compact JSON of key fields sorted by name, as upstream serializes `k:` elements.
pub(crate) fn canonical_key<K: AsRef<str>>(mut fields: Vec<(K, Value)>) -> String {
    fields.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.as_ref().to_string()).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

impl fmt::Display for PathElement {
    /// Upstream `PathElement.String`: `.name`, `[port=80,protocol="TCP"]`, `[="v"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(n) => write!(f, ".{n}"),
            PathElement::Key(k) => {
                let parsed: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = parsed.iter().map(|(n, v)| format!("{n}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A full field path from the object root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// Builds a path of plain field names, e.g. `["metadata", "labels"]`.
    pub fn fields(names: &[&str]) -> FieldPath {
        FieldPath(
            names
                .iter()
                .map(|n| PathElement::Field(n.to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// A set of field paths stored as a tree (upstream `fieldpath.Set`): `members` are paths that
/// end at this node, `children` hold paths that continue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// True when the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.child_mut(first).insert(rest),
        }
    }

    /// The node at a path, created when missing.
    fn node_mut(&mut self, path: &[PathElement]) -> &mut FieldSet {
        match path.split_first() {
            None => self,
            Some((first, rest)) => self.child_mut(first).node_mut(rest),
        }
    }

    /// The child node for an element, created when missing (without cloning the element
    /// when it exists).
    fn child_mut(&mut self, pe: &PathElement) -> &mut FieldSet {
        if !self.children.contains_key(pe) {
            self.children.insert(pe.clone(), FieldSet::new());
        }
        self.children.get_mut(pe).expect("inserted above")
    }

    /// Whether the set holds exactly this path.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether the set holds this path or any path below it.
    pub fn has_prefix(&self, path: &[PathElement]) -> bool {
        match path {
            [] => !self.is_empty(),
            [first, rest @ ..] => {
                (rest.is_empty() && self.members.contains(first))
                    || self.children.get(first).is_some_and(|c| c.has_prefix(rest))
            }
        }
    }

    /// Whether the set holds a path strictly below this one.
    pub fn has_descendant(&self, path: &[PathElement]) -> bool {
        match path {
            [] => !self.is_empty(),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|c| c.has_descendant(rest)),
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (k, c) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// Paths in either set, consuming both (no copies of shared subtrees).
    pub fn union_owned(mut self, other: FieldSet) -> FieldSet {
        if self.is_empty() {
            return other;
        }
        self.members.extend(other.members);
        for (k, c) in other.children {
            match self.children.remove(&k) {
                Some(mine) => {
                    self.children.insert(k, mine.union_owned(c));
                }
                None => {
                    self.children.insert(k, c);
                }
            }
        }
        self
    }

    /// Paths in `self` that are not in `other` (upstream `Set.Difference`).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Paths in `self` that are neither in `other` nor below one of its paths (upstream
    /// `Set.RecursiveDifference`).
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (k, c) in &self.children {
            if other.members.contains(k) {
                continue;
            }
            let d = match other.children.get(k) {
                Some(o) => c.recursive_difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every path of the set, in upstream's iteration order (members, then children).
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(FieldPath(p));
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Encodes the set as a `FieldsV1` object: each element maps to an object of its
    /// children, with `".": {}` when the element is itself a member and has children.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        self.write_fields_v1(&mut out);
        Value::Object(out)
    }

    fn write_fields_v1(&self, out: &mut Map<String, Value>) {
        let mut members = self.members.iter().peekable();
        let mut children = self
            .children
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .peekable();
        loop {
            let take_child = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(m), Some((c, _))) => c <= m,
            };
            if take_child {
                let Some((k, c)) = children.next() else { break };
                let mut inner = Map::new();
                if members.peek() == Some(&k) {
                    members.next();
                    inner.insert(".".into(), Value::Object(Map::new()));
                }
                c.write_fields_v1(&mut inner);
                out.insert(k.fields_v1_key(), Value::Object(inner));
            } else if let Some(m) = members.next() {
                out.insert(m.fields_v1_key(), Value::Object(Map::new()));
            }
        }
    }

    /// Decodes a `FieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let Value::Object(m) = v else {
            return Err("fieldsV1 must be an object".into());
        };
        let mut out = FieldSet::new();
        for (k, child) in m {
            if k == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(k)?;
            let Value::Object(cm) = child else {
                return Err(format!("fieldsV1 entry {k:?} must be an object"));
            };
            if cm.is_empty() || cm.contains_key(".") {
                out.members.insert(pe.clone());
            }
            let sub = FieldSet::from_fields_v1(child)?;
            if !sub.is_empty() {
                out.children.insert(pe, sub);
            }
        }
        Ok(out)
    }
}

/// Error while walking an object for server-side apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError(pub String);

/// Default values of list-map key fields that upstream's schemas declare (`protocol`
/// defaults to `TCP` for Service and container ports), used when an item omits them.
fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| Value::String("TCP".into()))
}

/// The `k:` element identifying an item of a `listType=map` list, or an error naming the
/// missing key field.
pub(crate) fn item_key(
    item: &Value,
    keys: &[&str],
    path: &FieldPath,
) -> Result<PathElement, WalkError> {
    let Value::Object(m) = item else {
        return Err(WalkError(format!(
            "{path}: expected map items in associative list"
        )));
    };
    let mut fields = Vec::with_capacity(keys.len());
    for k in keys {
        match m.get(*k).cloned().or_else(|| key_default(k)) {
            Some(v) => fields.push((*k, v)),
            None => {
                return Err(WalkError(format!(
                    "{path}: associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                )))
            }
        }
    }
    Ok(PathElement::Key(canonical_key(fields)))
}

/// Fields the walks skip because upstream never tracks them (`stripMetaManager`) or the
/// write may not touch them (reset fields given as top-level or `metadata.*` names).
#[derive(Debug, Clone, Copy)]
pub struct Untracked<'a> {
    reset: &'a [&'a str],
}

/// `metadata` fields upstream strips from every managed set.
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

impl<'a> Untracked<'a> {
    /// Untracked fields plus the given reset fields (dotted paths).
    pub fn new(reset: &'a [&'a str]) -> Untracked<'a> {
        Untracked { reset }
    }

    fn top(&self, key: &str) -> bool {
        key == "apiVersion" || key == "kind" || self.reset.contains(&key)
    }

    fn metadata(&self, key: &str) -> bool {
        STRIPPED_METADATA.contains(&key)
            || self
                .reset
                .iter()
                .any(|r| r.strip_prefix("metadata.") == Some(key))
    }

    /// Whether a field at `depth` (0 = top level) under `parent` is skipped.
    fn skips(&self, depth: usize, in_metadata: bool, key: &str) -> bool {
        (depth == 0 && self.top(key)) || (depth == 1 && in_metadata && self.metadata(key))
    }

    /// Reset fields deeper than the walks can skip, removed afterwards.
    pub(crate) fn deep_reset(&self) -> Option<FieldSet> {
        let deep: Vec<&&str> = self
            .reset
            .iter()
            .filter(|r| {
                let n = r.split('.').count();
                n > 2 || (n == 2 && !r.starts_with("metadata."))
            })
            .collect();
        if deep.is_empty() {
            return None;
        }
        let mut set = FieldSet::new();
        for r in deep {
            let parts: Vec<&str> = r.split('.').collect();
            set.insert(&FieldPath::fields(&parts).0);
        }
        Some(set)
    }
}

/// How a value is walked.
pub(crate) enum Shape<'v> {
    Leaf,
    Map(&'v Map<String, Value>),
    SetList(&'v [Value]),
    MapList(&'v [Value], &'static [&'static str]),
}

pub(crate) fn shape(at: SchemaAt, v: &Value) -> Shape<'_> {
    match v {
        Value::Object(m) if !m.is_empty() && !at.is_atomic_map() => Shape::Map(m),
        Value::Array(items) if !items.is_empty() => match at.list().ssa {
            SsaList::Atomic => Shape::Leaf,
            SsaList::Set => Shape::SetList(items),
            SsaList::Map(keys) => Shape::MapList(items, keys),
        },
        _ => Shape::Leaf,
    }
}

/// Iterates the fields of an object's top level or `metadata` that the walks consider.
pub(crate) fn tracked<'m>(
    m: &'m Map<String, Value>,
    untracked: &'m Untracked<'_>,
    depth: usize,
    in_metadata: bool,
) -> impl Iterator<Item = (&'m String, &'m Value)> + 'm {
    m.iter()
        .filter(move |(k, _)| !untracked.skips(depth, in_metadata, k))
}

/// The set of fields an object sets: leaves and list items (upstream `ToFieldSet`). Maps and
/// structs themselves are not members unless empty or atomic. Untracked fields are skipped.
pub fn field_set_of(
    schema: &Schema,
    v: &Value,
    untracked: &Untracked<'_>,
) -> Result<FieldSet, WalkError> {
    let mut set = FieldSet::new();
    if let Value::Object(m) = v {
        let root = schema.root();
        for (k, child) in tracked(m, untracked, 0, false) {
            let at = root.field(k);
            let mut path = FieldPath(vec![PathElement::Field(k.clone())]);
            if k == "metadata" {
                // `metadata` itself is never owned, only what is inside it.
                if let Value::Object(meta) = child {
                    for (mk, mv) in tracked(meta, untracked, 1, true) {
                        path.0.push(PathElement::Field(mk.clone()));
                        walk_set(at.field(mk), mv, &mut path, &mut set)?;
                        path.0.pop();
                    }
                }
                continue;
            }
            walk_set(at, child, &mut path, &mut set)?;
        }
    }
    Ok(set)
}

fn walk_set(
    at: SchemaAt,
    v: &Value,
    path: &mut FieldPath,
    set: &mut FieldSet,
) -> Result<(), WalkError> {
    match shape(at, v) {
        Shape::Leaf => set.insert(&path.0),
        Shape::Map(m) => {
            for (k, child) in m {
                path.0.push(PathElement::Field(k.clone()));
                walk_set(at.field(k), child, path, set)?;
                path.0.pop();
            }
        }
        Shape::SetList(items) => {
            for item in items {
                path.0.push(PathElement::Value(item.to_string()));
                set.insert(&path.0);
                path.0.pop();
            }
        }
        Shape::MapList(items, keys) => {
            let item_at = at.items();
            let mut seen = BTreeSet::new();
            for item in items {
                let pe = item_key(item, keys, path)?;
                if !seen.insert(pe.clone()) {
                    return Err(WalkError(format!("{path}: duplicate entries for key {pe}")));
                }
                path.0.push(pe);
                set.insert(&path.0);
                if let Value::Object(m) = item {
                    for (k, child) in m {
                        path.0.push(PathElement::Field(k.clone()));
                        walk_set(item_at.field(k), child, path, set)?;
                        path.0.pop();
                    }
                }
                path.0.pop();
            }
        }
    }
    Ok(())
}

/// Fields that differ between two versions of an object (upstream `typed.Comparison`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Paths present only in the new object (including new maps and list items themselves).
    pub added: FieldSet,
    /// Paths present only in the old object.
    pub removed: FieldSet,
}

/// Compares two objects field by field, skipping untracked fields.
pub fn compare(schema: &Schema, old: &Value, new: &Value, untracked: &Untracked<'_>) -> Comparison {
    let mut c = Comparison::default();
    let empty = Map::new();
    let old_m = old.as_object().unwrap_or(&empty);
    let new_m = new.as_object().unwrap_or(&empty);
    let mut walk = CompareWalk {
        c: &mut c,
        untracked,
    };
    walk.maps(
        schema.root(),
        0,
        false,
        old_m,
        new_m,
        &mut FieldPath::default(),
    );
    c
}

struct CompareWalk<'c, 'u> {
    c: &'c mut Comparison,
    untracked: &'u Untracked<'u>,
}

impl CompareWalk<'_, '_> {
    fn maps(
        &mut self,
        at: SchemaAt,
        depth: usize,
        in_metadata: bool,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        path: &mut FieldPath,
    ) {
        for (k, ov) in tracked(old, self.untracked, depth, in_metadata) {
            path.0.push(PathElement::Field(k.clone()));
            let child_at = at.field(k);
            let child_meta = depth == 0 && k == "metadata";
            match new.get(k) {
                Some(nv) => self.values(child_at, depth + 1, child_meta, ov, nv, path),
                // A field upstream's typed objects always carry compares with its zero value.
                None if child_at.is_present() => {
                    self.values(child_at, depth + 1, child_meta, ov, &zero_like(ov), path)
                }
                None => mark_all(child_at, ov, path, &mut self.c.removed),
            }
            path.0.pop();
        }
        for (k, nv) in tracked(new, self.untracked, depth, in_metadata) {
            if old.contains_key(k) {
                continue;
            }
            path.0.push(PathElement::Field(k.clone()));
            let child_at = at.field(k);
            if depth == 0 && k == "metadata" {
                // New metadata: walk it with the metadata filter.
                if let Value::Object(nm) = nv {
                    self.maps(child_at, 1, true, &Map::new(), nm, path);
                }
            } else if child_at.is_present() {
                self.values(child_at, depth + 1, false, &zero_like(nv), nv, path);
            } else {
                mark_all(child_at, nv, path, &mut self.c.added);
            }
            path.0.pop();
        }
    }

    fn values(
        &mut self,
        at: SchemaAt,
        depth: usize,
        in_metadata: bool,
        old: &Value,
        new: &Value,
        path: &mut FieldPath,
    ) {
        match (old, new) {
            (Value::Object(o), Value::Object(n)) if !at.is_atomic_map() => {
                self.maps(at, depth, in_metadata, o, n, path)
            }
            // Set and map lists compare item by item; a null list counts as empty (upstream
            // dereferences null lists).
            (Value::Array(_) | Value::Null, Value::Array(_) | Value::Null)
                if (old.is_array() || new.is_array())
                    && !matches!(at.list().ssa, SsaList::Atomic) =>
            {
                let o = old.as_array().map(Vec::as_slice).unwrap_or(&[]);
                let n = new.as_array().map(Vec::as_slice).unwrap_or(&[]);
                self.lists(at, depth, o, n, path);
            }
            _ => {
                if old != new {
                    self.c.modified.insert(&path.0);
                }
            }
        }
    }

    /// Compares the items of a set or map list.
    fn lists(
        &mut self,
        at: SchemaAt,
        depth: usize,
        o: &[Value],
        n: &[Value],
        path: &mut FieldPath,
    ) {
        match at.list().ssa {
            SsaList::Atomic => {
                if o != n {
                    self.c.modified.insert(&path.0);
                }
            }
            SsaList::Set => {
                for item in o {
                    if !n.contains(item) {
                        path.0.push(PathElement::Value(item.to_string()));
                        self.c.removed.insert(&path.0);
                        path.0.pop();
                    }
                }
                for item in n {
                    if !o.contains(item) {
                        path.0.push(PathElement::Value(item.to_string()));
                        self.c.added.insert(&path.0);
                        path.0.pop();
                    }
                }
            }
            SsaList::Map(keys) => {
                let item_at = at.items();
                let keyed = |items: &[Value], path: &FieldPath| -> Vec<(PathElement, usize)> {
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| item_key(item, keys, path).ok().map(|k| (k, i)))
                        .collect()
                };
                let old_items = keyed(o, path);
                let new_items = keyed(n, path);
                // Items are matched by key through an index, so comparing two versions of a
                // long list (thousands of Service ports) stays linear.
                let new_index: HashMap<&PathElement, usize> =
                    new_items.iter().map(|(k, i)| (k, *i)).collect();
                let old_keys: HashSet<&PathElement> = old_items.iter().map(|(k, _)| k).collect();
                for (k, oi) in &old_items {
                    path.0.push(k.clone());
                    match new_index.get(k) {
                        Some(ni) => self.values(item_at, depth + 1, false, &o[*oi], &n[*ni], path),
                        None => mark_all(item_at, &o[*oi], path, &mut self.c.removed),
                    }
                    path.0.pop();
                }
                for (k, ni) in &new_items {
                    if old_keys.contains(k) {
                        continue;
                    }
                    path.0.push(k.clone());
                    mark_all(item_at, &n[*ni], path, &mut self.c.added);
                    path.0.pop();
                }
            }
        }
    }
}

/// The zero value upstream's typed objects carry for an always-present field: `null` for a
/// list, `{}` for a struct.
fn zero_like(v: &Value) -> Value {
    match v {
        Value::Object(_) => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

/// Marks a value that exists on one side only: the node itself and everything below it.
fn mark_all(at: SchemaAt, v: &Value, path: &mut FieldPath, set: &mut FieldSet) {
    let Some((last, prefix)) = path.0.split_last() else {
        return;
    };
    let mut below = FieldSet::new();
    mark_below(at, v, &mut below);
    let parent = set.node_mut(prefix);
    parent.members.insert(last.clone());
    if !below.is_empty() {
        let child = parent.child_mut(last);
        *child = std::mem::take(child).union_owned(below);
    }
}
/// Every path below a value, relative to it, each node a member.
fn mark_below(at: SchemaAt, v: &Value, node: &mut FieldSet) {
    let add = |pe: PathElement, child_at: SchemaAt, child: &Value, node: &mut FieldSet| {
        let mut below = FieldSet::new();
        mark_below(child_at, child, &mut below);
        if !below.is_empty() {
            node.children.insert(pe.clone(), below);
        }
        node.members.insert(pe);
    };
    match shape(at, v) {
        Shape::Leaf => {}
        Shape::Map(m) => {
            for (k, child) in m {
                add(PathElement::Field(k.clone()), at.field(k), child, node);
            }
        }
        Shape::SetList(items) => {
            for item in items {
                node.members.insert(PathElement::Value(item.to_string()));
            }
        }
        Shape::MapList(items, keys) => {
            let item_at = at.items();
            for item in items {
                // Items without their keys cannot be tracked; upstream rejects them earlier.
                if let Ok(pe) = item_key(item, keys, &FieldPath::default()) {
                    add(pe, item_at, item, node);
                }
            }
        }
    }
}
