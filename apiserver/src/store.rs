//! In-memory object storage with one global, monotonically increasing `resourceVersion` and a
//! bounded watch history (the role etcd plus the watch cache play upstream).
//!
//! Objects are kept serialized (like etcd keeps bytes), with their labels and selectable fields
//! extracted once at write time, so lists and watches never re-parse them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::watch;

/// Identity of a resource in storage: objects are stored once per group and resource.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ResourceKey {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

/// One stored object version.
#[derive(Debug)]
pub struct StoredObject {
    /// The `resourceVersion` this version was written at.
    pub rv: u64,
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// The full serialized object, `metadata.resourceVersion` included.
    pub json: Box<str>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Values of the resource's selectable fields (`spec.nodeName`, ...), for field selectors.
    pub fields: Vec<(String, String)>,
    /// `metadata.ownerReferences[*].uid`, for the garbage collector.
    pub owners: Vec<String>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl StoredObject {
    /// Approximate bytes this version holds in memory (its JSON plus what the store indexes).
    pub fn approx_bytes(&self) -> usize {
        const OVERHEAD: usize = 256;
        OVERHEAD
            + self.json.len()
            + self.namespace.len()
            + self.name.len()
            + self.uid.len()
            + self
                .labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 64)
                .sum::<usize>()
            + self
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
            + self.owners.iter().map(|o| o.len() + 24).sum::<usize>()
    }

    /// Parses the stored bytes back into a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).expect("stored objects are valid JSON")
    }

    /// Looks up a field for field selectors (`metadata.name`, `metadata.namespace`, or one of
    /// the resource's selectable fields).
    pub fn field(&self, path: &str) -> Option<String> {
        match path {
            "metadata.name" => Some(self.name.clone()),
            "metadata.namespace" => Some(self.namespace.clone()),
            _ => self
                .fields
                .iter()
                .find(|(k, _)| k == path)
                .map(|(_, v)| v.clone()),
        }
    }
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed; carries its last state.
    Deleted,
}

impl EventType {
    /// Upstream wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change in the global history.
#[derive(Debug)]
pub struct Event {
    /// Global revision of the change (for a delete, a new revision).
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// Which resource.
    pub resource: ResourceKey,
    /// The object after the change (for deletes: the last state, with the delete's revision).
    pub object: Arc<StoredObject>,
    /// The version before the change (for label-selected watches: an object that stops matching
    /// is reported as DELETED, one that starts matching as ADDED, as upstream's watch cache does).
    pub prev: Option<Arc<StoredObject>>,
}

impl Event {
    /// What keeping this event in the history costs, counted against the history's byte
    /// limit: both versions it holds (the previous one is often shared with the event before,
    /// so this over-counts, never under-counts).
    fn approx_bytes(&self) -> usize {
        self.object.approx_bytes() + self.prev.as_ref().map_or(0, |p| p.approx_bytes())
    }
}

/// A write to commit atomically against the current state.
#[derive(Debug)]
pub enum Write {
    /// Create; fails with `Exists` if the name is taken.
    Create(Value),
    /// Replace the object if its current revision is `expected_rv`.
    Update {
        /// Precondition.
        expected_rv: u64,
        /// New content.
        value: Value,
    },
    /// Remove the object if its current revision is `expected_rv`.
    Delete {
        /// Precondition.
        expected_rv: u64,
    },
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Create of an existing name.
    #[error("already exists")]
    Exists,
    /// Update or delete of a missing object.
    #[error("not found")]
    NotFound,
    /// The object changed since the caller read it.
    #[error("conflict")]
    Conflict,
    /// The object could not be serialized.
    #[error("serialization failed: {0}")]
    Serialize(String),
    /// The object nests deeper than [`crate::nesting::MAX_DEPTH`] levels (it could not be read
    /// back); the message names where.
    #[error("{0}")]
    TooDeep(String),
    /// New revisions could not be reserved durably, so none is handed out (a restart could
    /// otherwise hand the same one out again).
    #[error("cannot reserve resourceVersions: {0}")]
    Reserve(String),
    /// The serialized object exceeds [`MAX_OBJECT_BYTES`] (etcd answers
    /// `etcdserver: request is too large`). Carries the object back, so the caller can retry
    /// without its managedFields, as upstream does.
    #[error("etcdserver: request is too large ({size} bytes; the limit is {MAX_OBJECT_BYTES})")]
    TooLarge {
        /// Serialized size.
        size: usize,
        /// The object that did not fit.
        value: Box<Value>,
    },
}

/// Largest object the store keeps, serialized: etcd's default request limit
/// (`--max-request-bytes`, 1.5 MiB), which bounds every object kube-apiserver stores.
pub const MAX_OBJECT_BYTES: usize = 1_572_864;

/// How many revisions one durable reservation covers: a store with a [`RevisionReserver`]
/// writes to disk once per this many commits (under the write lock), and a restart continues
/// after the whole reserved block.
pub const REVISION_BLOCK: u64 = 10_000;

/// Durable record of the revisions a store may hand out (upstream etcd never reuses a
/// revision; a store that snapshots periodically must remember how far it went, or a crash
/// between snapshots would hand acknowledged revisions out again and a client resuming a
/// watch from one would silently miss events).
pub trait RevisionReserver: Send + Sync {
    /// Durably records that revisions up to `upto` may be in use. Called before any of them
    /// is handed out; an error refuses the write.
    fn reserve(&self, upto: u64) -> Result<(), String>;
}

/// Watch start failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The requested revision is older than the retained history (upstream 410 Gone).
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld {
        /// Requested revision.
        requested: u64,
        /// Oldest revision a watch may still start from.
        oldest: u64,
    },
}

type ObjKey = (String, String);

/// Where a list page starts in a table: after the `continue` token's key, else at the
/// namespace's first key, else at the beginning.
fn page_start(
    continue_after: Option<(&str, &str)>,
    namespace: Option<&str>,
) -> std::ops::Bound<ObjKey> {
    match (continue_after, namespace) {
        (Some((ns, name)), _) => std::ops::Bound::Excluded((ns.to_string(), name.to_string())),
        (None, Some(ns)) => std::ops::Bound::Included((ns.to_string(), String::new())),
        (None, None) => std::ops::Bound::Unbounded,
    }
}

/// One list page from `entries` in key order (`None` = absent at the listed revision): the
/// objects of `namespace` (all when `None`) that pass `filter`, at most `limit` of them, and
/// whether more follow.
fn take_page<'a>(
    entries: impl Iterator<Item = (&'a ObjKey, Option<&'a Arc<StoredObject>>)>,
    namespace: Option<&str>,
    mut filter: impl FnMut(&StoredObject) -> bool,
    limit: Option<usize>,
) -> (Vec<Arc<StoredObject>>, bool) {
    let mut out = Vec::new();
    for ((ns, _), obj) in entries {
        if let Some(want) = namespace {
            if ns != want {
                if ns.as_str() > want {
                    break;
                }
                continue;
            }
        }
        let Some(obj) = obj else { continue };
        if !filter(obj) {
            continue;
        }
        if limit.is_some_and(|l| out.len() >= l) {
            return (out, true);
        }
        out.push(obj.clone());
    }
    (out, false)
}

/// The `resourceVersion` an object is serialized with before its revision is known.
const RV_PLACEHOLDER: &str = "\u{1}svcplane-rv\u{1}";
/// How [`RV_PLACEHOLDER`] appears in serialized JSON (control characters escaped).
const RV_PLACEHOLDER_JSON: &str = r#""resourceVersion":"\u0001svcplane-rv\u0001""#;

/// Where the revision goes in a prepared object's JSON.
enum RvAt {
    /// Byte offset of [`RV_PLACEHOLDER_JSON`].
    Offset(usize),
    /// The placeholder text also occurs elsewhere: serialize again with the revision.
    Reserialize(Box<Value>),
}

/// An object serialized outside the write lock, waiting for its revision.
struct Prepared {
    json: String,
    rv_at: RvAt,
    object: StoredObject,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    /// With a [`RevisionReserver`]: the highest revision durably reserved.
    reserved_rv: u64,
    tables: HashMap<ResourceKey, BTreeMap<ObjKey, Arc<StoredObject>>>,
    history: VecDeque<Arc<Event>>,
    /// Sum of [`Event::approx_bytes`] over `history`.
    history_bytes: usize,
    /// Watches must start at or after this revision.
    compacted_rv: u64,
    /// Indexes for the garbage collector, kept current on every commit.
    gc: GcIndex,
}

/// What the garbage collector needs without scanning every object.
#[derive(Default)]
struct GcIndex {
    /// `metadata.uid` of every stored object.
    uids: HashSet<Box<str>>,
    /// Objects with owner references.
    owned: BTreeSet<(ResourceKey, ObjKey)>,
    /// Objects with a deletion timestamp.
    deleting: BTreeSet<(ResourceKey, ObjKey)>,
}

impl GcIndex {
    fn remove(&mut self, resource: &ResourceKey, key: &ObjKey, obj: &StoredObject) {
        self.uids.remove(obj.uid.as_str());
        if !obj.owners.is_empty() {
            self.owned.remove(&(resource.clone(), key.clone()));
        }
        if obj.deleting {
            self.deleting.remove(&(resource.clone(), key.clone()));
        }
    }

    fn add(&mut self, resource: &ResourceKey, key: &ObjKey, obj: &StoredObject) {
        self.uids.insert(obj.uid.as_str().into());
        if !obj.owners.is_empty() {
            self.owned.insert((resource.clone(), key.clone()));
        }
        if obj.deleting {
            self.deleting.insert((resource.clone(), key.clone()));
        }
    }
}

/// Work for the garbage collector, computed from the store's indexes.
#[derive(Debug, Default)]
pub struct GcWork {
    /// Objects with owner references to objects that no longer exist, with those uids.
    pub orphans: Vec<(ResourceKey, Arc<StoredObject>, Vec<String>)>,
    /// Objects being deleted.
    pub deleting: Vec<(ResourceKey, Arc<StoredObject>)>,
    /// Dependents of each object being deleted, by the owner's uid.
    pub dependents: HashMap<String, Vec<(ResourceKey, Arc<StoredObject>)>>,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: RwLock<Inner>,
    /// The newest revision, for watchers and fresh reads to wait on.
    revision: watch::Sender<u64>,
    history_limit: usize,
    history_bytes_limit: usize,
    selectable: HashMap<ResourceKey, Vec<String>>,
    reserver: std::sync::OnceLock<Box<dyn RevisionReserver>>,
}

/// Default of [`Store::with_history_bytes_limit`]: 256 MiB of retained versions.
pub const DEFAULT_HISTORY_BYTES_LIMIT: usize = 256 * 1024 * 1024;

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a dotted path as a field-selector string value (`spec.unschedulable` → `false`).
fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => match path {
            "spec.unschedulable" => "false".into(),
            _ => String::new(),
        },
        other => other.to_string(),
    }
}

impl Store {
    /// A store keeping at most `history_limit` events (and [`DEFAULT_HISTORY_BYTES_LIMIT`]
    /// bytes of them) for watch resumption.
    /// `selectable` lists, per resource, the extra fields usable in field selectors.
    pub fn new(history_limit: usize, selectable: HashMap<ResourceKey, Vec<String>>) -> Self {
        Store {
            inner: RwLock::new(Inner::default()),
            revision: watch::Sender::new(0),
            history_limit: history_limit.max(1),
            history_bytes_limit: DEFAULT_HISTORY_BYTES_LIMIT,
            selectable,
            reserver: std::sync::OnceLock::new(),
        }
    }

    /// Makes every later revision durably reserved before use, and continues after
    /// `reserved` (the high-water mark a previous run reserved), so no revision handed out
    /// before a restart or crash is ever handed out again. Set once, before serving.
    pub fn reserve_revisions_with(&self, reserver: Box<dyn RevisionReserver>, reserved: u64) {
        let mut inner = self.inner.write();
        if reserved > inner.rv {
            inner.rv = reserved;
            // Nothing before the restart is in the history: watches from older revisions
            // get 410 Gone and relist.
            inner.compacted_rv = inner.compacted_rv.max(reserved);
        }
        inner.reserved_rv = inner.rv;
        if self.reserver.set(reserver).is_err() {
            tracing::warn!("revision reservations were already configured; keeping the first");
        }
    }

    /// Bounds the watch history by the bytes of the versions it holds too: the oldest events
    /// are compacted once the retained ones exceed `bytes` (the newest event is always kept).
    pub fn with_history_bytes_limit(mut self, bytes: usize) -> Self {
        self.history_bytes_limit = bytes;
        self
    }

    /// The newest revision.
    pub fn current_rv(&self) -> u64 {
        self.inner.read().rv
    }

    /// Bytes the retained watch history holds (as counted against its limit).
    pub fn history_bytes(&self) -> usize {
        self.inner.read().history_bytes
    }

    /// A receiver that changes whenever a write commits (its value is the new revision).
    pub fn revisions(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Waits until the store has reached revision `rv`, for at most `timeout` (upstream's watch
    /// cache blocks reads at a newer revision for 3 s). Returns the current revision on timeout.
    pub async fn wait_for_revision(
        &self,
        rv: u64,
        timeout: std::time::Duration,
    ) -> Result<(), u64> {
        let mut revisions = self.revisions();
        let _ = tokio::time::timeout(timeout, async {
            let _ = revisions.wait_for(|current| *current >= rv).await;
        })
        .await;
        let current = self.current_rv();
        if current >= rv {
            Ok(())
        } else {
            Err(current)
        }
    }

    /// The oldest revision a watch may start from.
    pub fn compacted_rv(&self) -> u64 {
        self.inner.read().compacted_rv
    }

    /// Extracts what the store indexes and serializes the object with a placeholder
    /// `resourceVersion`, so the costly part of a write runs before the write lock is taken.
    /// `new`: the object comes from a write (not from a delete's last state or a snapshot), so
    /// it must fit [`MAX_OBJECT_BYTES`].
    fn prepare(
        &self,
        resource: &ResourceKey,
        mut value: Value,
        new: bool,
    ) -> Result<Prepared, StoreError> {
        // Stored versions are parsed again ([`StoredObject::value`]), which fails past the
        // JSON parser's depth limit: refuse them here, the one place every write passes.
        if let Some(at) = crate::nesting::too_deep(&value, crate::nesting::MAX_DEPTH) {
            return Err(StoreError::TooDeep(crate::nesting::too_deep_message(&at)));
        }
        value["metadata"]["resourceVersion"] = Value::String(RV_PLACEHOLDER.into());
        let meta = &value["metadata"];
        let namespace = meta["namespace"].as_str().unwrap_or_default().to_string();
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        let uid = meta["uid"].as_str().unwrap_or_default().to_string();
        let labels = string_map(&meta["labels"]);
        let owners = meta["ownerReferences"]
            .as_array()
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| r["uid"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let deleting = meta["deletionTimestamp"].is_string();
        let fields = self
            .selectable
            .get(resource)
            .map(|paths| {
                // Empty values are not kept: a missing field matches as "" (upstream).
                paths
                    .iter()
                    .map(|p| (p.clone(), field_value(&value, p)))
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let json =
            serde_json::to_string(&value).map_err(|e| StoreError::Serialize(e.to_string()))?;
        if new && json.len() > MAX_OBJECT_BYTES {
            return Err(StoreError::TooLarge {
                size: json.len(),
                value: Box::new(value),
            });
        }
        let mut found = json.match_indices(RV_PLACEHOLDER_JSON).map(|(at, _)| at);
        // Exactly one occurrence is the one set above; anything else (an object carrying the
        // placeholder text itself) is serialized again once the revision is known.
        let rv_at = match (found.next(), found.next()) {
            (Some(at), None) => RvAt::Offset(at),
            _ => RvAt::Reserialize(Box::new(value)),
        };
        Ok(Prepared {
            json,
            rv_at,
            object: StoredObject {
                rv: 0,
                namespace,
                name,
                uid,
                json: Box::from(""),
                labels,
                fields,
                owners,
                deleting,
            },
        })
    }

    /// The stored object at revision `rv`: the placeholder replaced by the revision.
    fn finish(prepared: Prepared, rv: u64) -> Result<StoredObject, StoreError> {
        let Prepared {
            json,
            rv_at,
            mut object,
        } = prepared;
        object.rv = rv;
        object.json = match rv_at {
            RvAt::Offset(at) => {
                let (head, tail) = json
                    .split_at_checked(at)
                    .and_then(|(head, rest)| Some((head, rest.strip_prefix(RV_PLACEHOLDER_JSON)?)))
                    .ok_or_else(|| {
                        StoreError::Serialize("resourceVersion placeholder lost".into())
                    })?;
                let rv_text = rv.to_string();
                let mut out = String::with_capacity(json.len() + rv_text.len());
                out.push_str(head);
                out.push_str(r#""resourceVersion":""#);
                out.push_str(&rv_text);
                out.push('"');
                out.push_str(tail);
                out.into_boxed_str()
            }
            RvAt::Reserialize(mut value) => {
                value["metadata"]["resourceVersion"] = Value::String(rv.to_string());
                serde_json::to_string(&value)
                    .map_err(|e| StoreError::Serialize(e.to_string()))?
                    .into_boxed_str()
            }
        };
        Ok(object)
    }

    /// Reads one object.
    pub fn get(
        &self,
        resource: &ResourceKey,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<StoredObject>> {
        let inner = self.inner.read();
        inner
            .tables
            .get(resource)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Lists objects of a resource (optionally one namespace), sorted by namespace and name,
    /// starting after `continue_after`, with the revision the list is consistent at.
    pub fn list(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
        filter: impl FnMut(&StoredObject) -> bool,
        continue_after: Option<(&str, &str)>,
        limit: Option<usize>,
    ) -> (u64, Vec<Arc<StoredObject>>, bool) {
        let inner = self.inner.read();
        let rv = inner.rv;
        let Some(table) = inner.tables.get(resource) else {
            return (rv, Vec::new(), false);
        };
        let start = page_start(continue_after, namespace);
        let entries = table
            .range((start, std::ops::Bound::Unbounded))
            .map(|(key, obj)| (key, Some(obj)));
        let (out, more) = take_page(entries, namespace, filter, limit);
        (rv, out, more)
    }

    /// Lists like [`Store::list`], but as the objects were at revision `at_rv` (the revision of
    /// a chunked list's first page): upstream serves every `continue` page from one consistent
    /// etcd snapshot. The state at `at_rv` is the live table with each key changed since then
    /// rolled back to the version before its first later change (from the watch history).
    /// `Err(oldest)` when `at_rv` is older than the retained history (upstream 410 Expired).
    pub fn list_at(
        &self,
        resource: &ResourceKey,
        namespace: Option<&str>,
        filter: impl FnMut(&StoredObject) -> bool,
        continue_after: Option<(&str, &str)>,
        limit: Option<usize>,
        at_rv: u64,
    ) -> Result<(Vec<Arc<StoredObject>>, bool), u64> {
        let inner = self.inner.read();
        if at_rv < inner.compacted_rv {
            return Err(inner.compacted_rv + 1);
        }
        // Keys changed after `at_rv`: their state at `at_rv` (None = absent then).
        let mut rolled_back: BTreeMap<ObjKey, Option<Arc<StoredObject>>> = BTreeMap::new();
        let first_later = inner.history.partition_point(|e| e.rv <= at_rv);
        for ev in inner.history.iter().skip(first_later) {
            if &ev.resource != resource {
                continue;
            }
            let key = (ev.object.namespace.clone(), ev.object.name.clone());
            rolled_back.entry(key).or_insert_with(|| ev.prev.clone());
        }
        let empty = BTreeMap::new();
        let table = inner.tables.get(resource).unwrap_or(&empty);
        let start = page_start(continue_after, namespace);
        // Walk the live table and the rolled-back keys together, in key order, so a page
        // costs what a live page costs plus the keys changed since `at_rv`.
        let mut live = table
            .range((start.clone(), std::ops::Bound::Unbounded))
            .peekable();
        let mut then = rolled_back
            .range((start, std::ops::Bound::Unbounded))
            .peekable();
        let entries = std::iter::from_fn(|| {
            Some(match (live.peek(), then.peek()) {
                (None, None) => return None,
                (Some((lk, _)), Some((tk, _))) if tk <= lk => {
                    if tk == lk {
                        live.next();
                    }
                    let (tk, old) = then.next().expect("peeked");
                    (tk, old.as_ref())
                }
                (Some(_), _) => {
                    let (lk, obj) = live.next().expect("peeked");
                    (lk, Some(obj))
                }
                (None, Some(_)) => {
                    let (tk, old) = then.next().expect("peeked");
                    (tk, old.as_ref())
                }
            })
        });
        Ok(take_page(entries, namespace, filter, limit))
    }

    /// Counts objects of a resource.
    pub fn count(&self, resource: &ResourceKey) -> usize {
        self.inner
            .read()
            .tables
            .get(resource)
            .map_or(0, |t| t.len())
    }

    /// Commits one write atomically: assigns the next revision, records the event and notifies
    /// watchers. Returns the stored version (for deletes, the removed object).
    pub fn commit(
        &self,
        resource: &ResourceKey,
        namespace: &str,
        name: &str,
        write: Write,
    ) -> Result<Arc<StoredObject>, StoreError> {
        /// What must hold of the current version for the write to go ahead.
        enum Expect {
            Absent,
            AtRevision(u64),
        }
        // Serialize before taking the lock: concurrent writers only contend on the commit.
        let (prepared, expect) = match write {
            Write::Create(value) => (Some(self.prepare(resource, value, true)?), Expect::Absent),
            Write::Update { expected_rv, value } => (
                Some(self.prepare(resource, value, true)?),
                Expect::AtRevision(expected_rv),
            ),
            Write::Delete { expected_rv } => (None, Expect::AtRevision(expected_rv)),
        };
        let mut inner = self.inner.write();
        let key = (namespace.to_string(), name.to_string());
        let current = inner
            .tables
            .get(resource)
            .and_then(|t| t.get(&key))
            .cloned();
        match (&expect, &current) {
            (Expect::Absent, Some(_)) => return Err(StoreError::Exists),
            (Expect::AtRevision(_), None) => return Err(StoreError::NotFound),
            (Expect::AtRevision(want), Some(cur)) if cur.rv != *want => {
                return Err(StoreError::Conflict)
            }
            _ => {}
        }
        let rv = inner.rv + 1;
        if let Some(reserver) = self.reserver.get() {
            if rv > inner.reserved_rv {
                let upto = rv + REVISION_BLOCK - 1;
                reserver.reserve(upto).map_err(StoreError::Reserve)?;
                inner.reserved_rv = upto;
            }
        }
        let (kind, prepared) = match (prepared, &current) {
            (Some(p), None) => (EventType::Added, p),
            (Some(p), Some(_)) => (EventType::Modified, p),
            // The DELETED event carries the last state at the delete's revision, as upstream.
            (None, Some(cur)) => (
                EventType::Deleted,
                self.prepare(resource, cur.value(), false)?,
            ),
            (None, None) => return Err(StoreError::NotFound),
        };
        let stored = Arc::new(Self::finish(prepared, rv)?);
        inner.rv = rv;
        if let Some(cur) = &current {
            inner.gc.remove(resource, &key, cur);
        }
        if kind != EventType::Deleted {
            inner.gc.add(resource, &key, &stored);
        }
        let table = inner.tables.entry(resource.clone()).or_default();
        if kind == EventType::Deleted {
            table.remove(&key);
        } else {
            table.insert(key, stored.clone());
        }
        let event = Arc::new(Event {
            rv,
            kind,
            resource: resource.clone(),
            object: stored.clone(),
            prev: current,
        });
        inner.history_bytes += event.approx_bytes();
        inner.history.push_back(event);
        // Compact the oldest events beyond either limit, keeping at least the newest one.
        while inner.history.len() > self.history_limit
            || (inner.history_bytes > self.history_bytes_limit && inner.history.len() > 1)
        {
            let Some(old) = inner.history.pop_front() else {
                break;
            };
            inner.history_bytes -= old.approx_bytes();
            inner.compacted_rv = old.rv;
        }
        self.revision.send_replace(rv);
        Ok(stored)
    }

    /// Checks that a watch may start after revision `from_rv` (its events are still retained).
    pub fn check_watch_start(&self, from_rv: u64) -> Result<(), WatchError> {
        let inner = self.inner.read();
        if from_rv < inner.compacted_rv {
            return Err(WatchError::TooOld {
                requested: from_rv,
                oldest: inner.compacted_rv + 1,
            });
        }
        Ok(())
    }

    /// Up to `max` retained events after revision `after`, oldest first: what a watcher at
    /// `after` reads next. `Err` when events after `after` were already compacted (the watcher
    /// fell behind the history; it must start again).
    pub fn events_after(&self, after: u64, max: usize) -> Result<Vec<Arc<Event>>, WatchError> {
        let inner = self.inner.read();
        if after < inner.compacted_rv {
            return Err(WatchError::TooOld {
                requested: after,
                oldest: inner.compacted_rv + 1,
            });
        }
        let start = inner.history.partition_point(|e| e.rv <= after);
        Ok(inner.history.range(start..).take(max).cloned().collect())
    }

    /// The current state of a resource for a watch starting now: every existing object (as
    /// the synthetic ADDED events upstream sends) and the revision they are consistent at.
    pub fn snapshot(&self, resource: &ResourceKey) -> (u64, Vec<Arc<StoredObject>>) {
        let inner = self.inner.read();
        let objects = inner
            .tables
            .get(resource)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        (inner.rv, objects)
    }

    /// The garbage collector's work: orphaned dependents, objects being deleted and their
    /// dependents, from indexes (no scan of all objects).
    pub fn gc_work(&self) -> GcWork {
        let inner = self.inner.read();
        let get = |(res, key): &(ResourceKey, ObjKey)| {
            inner.tables.get(res).and_then(|t| t.get(key)).cloned()
        };
        let mut work = GcWork::default();
        let mut deleting_uids = HashSet::new();
        for entry in &inner.gc.deleting {
            if let Some(obj) = get(entry) {
                deleting_uids.insert(obj.uid.clone());
                work.deleting.push((entry.0.clone(), obj));
            }
        }
        for entry in &inner.gc.owned {
            let Some(obj) = get(entry) else { continue };
            let missing: Vec<String> = obj
                .owners
                .iter()
                .filter(|u| !inner.gc.uids.contains(u.as_str()))
                .cloned()
                .collect();
            for owner in obj.owners.iter().filter(|u| deleting_uids.contains(*u)) {
                work.dependents
                    .entry(owner.clone())
                    .or_default()
                    .push((entry.0.clone(), obj.clone()));
            }
            if !missing.is_empty() {
                work.orphans.push((entry.0.clone(), obj, missing));
            }
        }
        work
    }

    /// Forgets all history: every watch resuming from an older revision gets 410 Gone
    /// (fault injection, and what etcd compaction does to a real server).
    pub fn compact_all(&self) {
        let mut inner = self.inner.write();
        inner.history.clear();
        inner.history_bytes = 0;
        inner.compacted_rv = inner.rv;
    }

    /// Every stored object, for snapshots.
    pub fn dump(&self) -> (u64, Vec<(ResourceKey, Arc<StoredObject>)>) {
        let inner = self.inner.read();
        let mut out = Vec::new();
        for (key, table) in &inner.tables {
            for obj in table.values() {
                out.push((key.clone(), obj.clone()));
            }
        }
        (inner.rv, out)
    }

    /// Loads objects from a snapshot into an empty store (no events are emitted).
    pub fn restore(&self, rv: u64, objects: Vec<(ResourceKey, Value)>) -> Result<(), StoreError> {
        let mut inner = self.inner.write();
        let mut max_rv = rv;
        for (key, value) in objects {
            let obj_rv = value["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(rv);
            max_rv = max_rv.max(obj_rv);
            let stored = Self::finish(self.prepare(&key, value, false)?, obj_rv)?;
            let obj_key = (stored.namespace.clone(), stored.name.clone());
            inner.gc.add(&key, &obj_key, &stored);
            inner
                .tables
                .entry(key)
                .or_default()
                .insert(obj_key, Arc::new(stored));
        }
        inner.rv = max_rv;
        inner.compacted_rv = max_rv;
        self.revision.send_replace(max_rv);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn configmaps() -> ResourceKey {
        ResourceKey {
            group: String::new(),
            plural: "configmaps".into(),
        }
    }

    fn stored_value(obj: &StoredObject) -> Value {
        serde_json::from_str(&obj.json).expect("stored JSON parses")
    }

    #[test]
    fn objects_nesting_deeper_than_can_be_read_back_are_refused_naming_where() {
        let store = Store::new(100, HashMap::new());
        let mut deep = json!("leaf");
        // metadata-less levels below data.x: the object is 2 + 126 = 128 levels deep.
        for _ in 0..126 {
            deep = json!([deep]);
        }
        let cm = json!({"metadata": {"name": "a", "namespace": "ns"}, "data": {"x": deep}});
        let err = store
            .commit(&configmaps(), "ns", "a", Write::Create(cm))
            .expect_err("refused");
        assert!(matches!(err, StoreError::TooDeep(_)), "{err}");
        assert!(err.to_string().starts_with("data.x[0]"), "{err}");
        assert_eq!(store.current_rv(), 0, "nothing was written");
    }

    #[test]
    fn committed_objects_carry_their_revision_in_the_stored_json() {
        let store = Store::new(100, HashMap::new());
        let cm = json!({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "7"}, "data": {"k": "v"}});
        let created = store
            .commit(&configmaps(), "ns", "a", Write::Create(cm.clone()))
            .expect("create");
        assert_eq!(
            stored_value(&created)["metadata"]["resourceVersion"],
            json!(created.rv.to_string())
        );
        assert_eq!(stored_value(&created)["data"], json!({"k": "v"}));
        let updated = store
            .commit(
                &configmaps(),
                "ns",
                "a",
                Write::Update {
                    expected_rv: created.rv,
                    value: cm,
                },
            )
            .expect("update");
        assert!(updated.rv > created.rv);
        assert_eq!(
            stored_value(&updated)["metadata"]["resourceVersion"],
            json!(updated.rv.to_string())
        );
        let deleted = store
            .commit(
                &configmaps(),
                "ns",
                "a",
                Write::Delete {
                    expected_rv: updated.rv,
                },
            )
            .expect("delete");
        assert_eq!(
            stored_value(&deleted)["metadata"]["resourceVersion"],
            json!(deleted.rv.to_string())
        );
    }

    #[test]
    fn placeholder_text_inside_an_object_is_kept_verbatim() {
        let store = Store::new(100, HashMap::new());
        let cm = json!({
            "metadata": {"name": "a", "namespace": "ns"},
            "data": {"resourceVersion": RV_PLACEHOLDER},
        });
        let created = store
            .commit(&configmaps(), "ns", "a", Write::Create(cm))
            .expect("create");
        let v = stored_value(&created);
        assert_eq!(
            v["metadata"]["resourceVersion"],
            json!(created.rv.to_string())
        );
        assert_eq!(v["data"]["resourceVersion"], json!(RV_PLACEHOLDER));
    }

    /// Records every reservation; fails once `fail` is set.
    #[derive(Default)]
    struct Reservations {
        upto: parking_lot::Mutex<Vec<u64>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl RevisionReserver for Arc<Reservations> {
        fn reserve(&self, upto: u64) -> Result<(), String> {
            if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
                return Err("disk full".into());
            }
            self.upto.lock().push(upto);
            Ok(())
        }
    }

    fn create(store: &Store, name: &str) -> Result<Arc<StoredObject>, StoreError> {
        let cm = json!({"metadata": {"name": name, "namespace": "ns"}});
        store.commit(&configmaps(), "ns", name, Write::Create(cm))
    }

    #[test]
    fn revisions_are_reserved_in_blocks_before_use_and_continue_after_the_reserved_mark() {
        let log = Arc::new(Reservations::default());
        let store = Store::new(100, HashMap::new());
        // A previous run reserved up to 20_000 (and may have handed all of it out).
        store.reserve_revisions_with(Box::new(log.clone()), 20_000);
        assert_eq!(store.current_rv(), 20_000);
        assert_eq!(store.compacted_rv(), 20_000, "older watches must relist");
        let first = create(&store, "a").unwrap();
        assert_eq!(first.rv, 20_001);
        assert_eq!(*log.upto.lock(), vec![20_000 + REVISION_BLOCK]);
        for i in 0..REVISION_BLOCK {
            create(&store, &format!("b{i}")).unwrap();
        }
        assert_eq!(
            *log.upto.lock(),
            vec![20_000 + REVISION_BLOCK, 20_000 + 2 * REVISION_BLOCK],
            "one reservation per block"
        );
        // Every revision handed out was reserved first.
        assert!(store.current_rv() <= *log.upto.lock().last().unwrap());
    }

    #[test]
    fn a_failed_reservation_refuses_the_write_and_hands_out_nothing() {
        let log = Arc::new(Reservations::default());
        let store = Store::new(100, HashMap::new());
        store.reserve_revisions_with(Box::new(log.clone()), 0);
        log.fail.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(create(&store, "a"), Err(StoreError::Reserve(_))));
        assert_eq!(store.current_rv(), 0);
        assert_eq!(store.count(&configmaps()), 0);
        log.fail.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(create(&store, "a").unwrap().rv, 1);
    }

    #[test]
    fn failed_preconditions_leave_the_store_unchanged() {
        let store = Store::new(100, HashMap::new());
        let cm = json!({"metadata": {"name": "a", "namespace": "ns"}});
        let created = store
            .commit(&configmaps(), "ns", "a", Write::Create(cm.clone()))
            .expect("create");
        let rv = store.current_rv();
        assert_eq!(
            store
                .commit(&configmaps(), "ns", "a", Write::Create(cm.clone()))
                .err(),
            Some(StoreError::Exists)
        );
        assert_eq!(
            store
                .commit(
                    &configmaps(),
                    "ns",
                    "a",
                    Write::Update {
                        expected_rv: created.rv + 5,
                        value: cm.clone(),
                    },
                )
                .err(),
            Some(StoreError::Conflict)
        );
        assert_eq!(
            store
                .commit(&configmaps(), "ns", "b", Write::Delete { expected_rv: 1 })
                .err(),
            Some(StoreError::NotFound)
        );
        assert_eq!(store.current_rv(), rv);
        assert_eq!(store.count(&configmaps()), 1);
    }
}
