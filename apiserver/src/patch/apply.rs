//! Server-side apply and field ownership (`metadata.managedFields`), following KEP-555 and
//! upstream `sigs.k8s.io/structured-merge-diff` (`merge.Updater.Apply` / `Update`) as wired by
//! `k8s.io/apimachinery/pkg/util/managedfields`.
//!
//! * [`apply`] merges an applied configuration into the live object, gives the applying manager
//!   ownership of exactly the fields it applied (operation `Apply`), removes fields it applied
//!   before and no longer applies unless someone else owns them, and reports conflicts when
//!   another manager owns a field the apply would change.
//! * [`record_update`] records ownership for every other write (create, update, patch):
//!   operation `Update`, the writer takes the fields it changed or added, everyone else loses
//!   them.
//! * For the manager `kubectl` it also does what upstream does for `kubectl apply
//!   --server-side` after client-side apply: conflicts on fields whose live values still match
//!   the `last-applied-configuration` annotation are taken over, and that annotation is
//!   rewritten to the new configuration (`lastAppliedManager`, `lastAppliedUpdater`).
//! * At most ten `Update` entries are kept; older ones merge into `ancient-changes`.
//! * The first apply to an object without managed fields first attributes its fields to
//!   `before-first-apply`.
//!
//! Approximations of upstream, stated: list order after merging follows the applied
//! configuration for shared items and keeps live-only items in place (upstream interleaves
//! slightly differently in corner cases); an `Update` that creates a map or list marks it
//! itself (`".": {}`) unless the table in `list_types` lists it as a field upstream's typed zero
//! object already carries (`spec`, `status`, Pod `spec.containers`, ...), which is only
//! transcribed for the served kinds; custom resources use atomic lists everywhere (upstream
//! reads `x-kubernetes-list-type` from the CRD schema); a `null` in an applied configuration
//! removes the field (the applier still owns it, as upstream).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::created_fields::created_fields_v1;
use super::field_set::{self, FieldPath, FieldSet, PathElement, Untracked};
use super::list_types::{Gvk, SsaList};
use super::schema::{Schema, SchemaAt};

/// Operation recorded in a managed fields entry.
pub const OPERATION_APPLY: &str = "Apply";
/// Operation recorded in a managed fields entry.
pub const OPERATION_UPDATE: &str = "Update";

/// One field that another manager owns and an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation (`Apply` or `Update`).
    pub operation: String,
    /// Its API version (only shown for `Update` managers, as upstream).
    pub api_version: String,
    /// Its subresource, empty for the main resource.
    pub subresource: String,
    /// The field, in upstream's path syntax, e.g. `.spec.ports[port=80,protocol="TCP"].targetPort`.
    pub field: String,
}

impl Conflict {
    /// The manager as upstream's `printManager` shows it: `"name"`, plus
    /// ` with subresource "status"` and ` using v1` for `Update` managers.
    pub fn manager_display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == OPERATION_UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// The `Status.details.causes[].message` upstream sends (cause type
    /// `FieldManagerConflict`, field = [`Conflict::field`]).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_display())
    }
}

/// Error from [`apply`] or [`record_update`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the apply would change: 409 Conflict with one
    /// `FieldManagerConflict` cause per entry.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration is malformed (not an object, `managedFields` set, no
    /// apiVersion/kind): 400.
    #[error("{0}")]
    BadRequest(String),
    /// The applied configuration does not fit the schema (list item without its key fields,
    /// duplicate keys): 422.
    #[error("{0}")]
    Invalid(String),
    /// The live object's managed fields cannot be decoded: 500, as upstream.
    #[error("failed to decode managed fields: {0}")]
    ManagedFields(String),
}

impl ApplyError {
    /// The HTTP status upstream answers with: 409 for conflicts, 400, 422, 500.
    pub fn http_status(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::BadRequest(_) => 400,
            ApplyError::Invalid(_) => 422,
            ApplyError::ManagedFields(_) => 500,
        }
    }
}

/// Upstream `getConflictMessage`.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_display(),
            c.field
        );
    }
    let mut by_manager: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(c.manager_display())
            .or_default()
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.into_iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Parameters of a server-side apply (`PATCH` with `application/apply-patch+yaml`).
#[derive(Debug, Clone)]
pub struct ApplyOptions<'a> {
    /// The `fieldManager` query parameter.
    pub manager: &'a str,
    /// The `force` query parameter: take over conflicting fields instead of failing.
    pub force: bool,
    /// The subresource written (`Some("status")`), recorded in the entry as upstream does.
    pub subresource: Option<&'a str>,
    /// Dotted field paths the write may not touch and that are never owned through it
    /// (upstream "reset fields", e.g. `status` on the main resource of a kind with a status
    /// subresource, `spec` on `/status`). See [`reset_fields`].
    pub reset_fields: &'a [&'a str],
    /// The time recorded in the entry.
    pub now: Timestamp,
}

/// Parameters of a non-apply write recorded with [`record_update`].
#[derive(Debug, Clone)]
pub struct UpdateOptions<'a> {
    /// The `fieldManager` query parameter, or the server's default name for the client.
    pub manager: &'a str,
    /// The API version the client wrote.
    pub api_version: &'a str,
    /// The subresource written (`Some("status")`).
    pub subresource: Option<&'a str>,
    /// As [`ApplyOptions::reset_fields`].
    pub reset_fields: &'a [&'a str],
    /// The time recorded in the entry.
    pub now: Timestamp,
}

/// Upstream's limit on `fieldManager` length (`FieldManagerMaxLength`).
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The manager name upstream uses for a write without `fieldManager`: the User-Agent up to
/// its first `/`, without non-printable characters, cut to 128 bytes (upstream
/// `prefixFromUserAgent`), e.g. `kubectl/v1.32.0 (linux/amd64)` gives `kubectl`.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Upstream's reset fields for the served kinds (`GetResetFields` of their registry
/// strategies): on the main resource of a kind with a status subresource, `status` is not
/// writable; on `/status`, `spec` is not (and for Pods `metadata.deletionTimestamp` and
/// `metadata.ownerReferences`, for CustomResourceDefinitions all of `metadata`).
pub fn reset_fields(gvk: &Gvk, subresource: Option<&str>) -> &'static [&'static str] {
    let kind = (gvk.group.as_str(), gvk.kind.as_str());
    let has_status =
        crate::kinds::find(&gvk.group, &gvk.version, &gvk.kind).is_some_and(|k| k.status);
    match (subresource, kind) {
        (Some("status"), ("", "Pod")) => &[
            "spec",
            "metadata.deletionTimestamp",
            "metadata.ownerReferences",
        ],
        (Some("status"), ("apiextensions.k8s.io", "CustomResourceDefinition")) => {
            &["spec", "metadata"]
        }
        (Some("status"), _) => &["spec"],
        _ if has_status => &["status"],
        _ => &[],
    }
}

/// Identity of a manager entry (upstream `BuildManagerIdentifier`): API version only counts
/// for `Update` entries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ManagerId {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
}

#[derive(Debug, Clone)]
struct ManagerEntry {
    /// API version the set was recorded in (for `Apply`, the latest applied version).
    api_version: String,
    time: Option<String>,
    set: FieldSet,
}

type Managers = BTreeMap<ManagerId, ManagerEntry>;

fn id(manager: &str, operation: &str, api_version: &str, subresource: Option<&str>) -> ManagerId {
    ManagerId {
        manager: manager.to_string(),
        operation: operation.to_string(),
        api_version: if operation == OPERATION_APPLY {
            String::new()
        } else {
            api_version.to_string()
        },
        subresource: subresource.unwrap_or_default().to_string(),
    }
}

/// Decodes `metadata.managedFields` (absent or null: no managers).
fn decode_managed_fields(obj: &Value) -> Result<Managers, String> {
    let mut out = Managers::new();
    let entries = match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("managedFields must be a list".into()),
    };
    for (i, e) in entries.iter().enumerate() {
        let Value::Object(e) = e else {
            return Err(format!("managedFields[{i}] must be an object"));
        };
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
        let set = match e.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => {
                if !matches!(s("fieldsType"), "FieldsV1") {
                    return Err(format!(
                        "managedFields[{i}]: invalid fieldsType {:?}, expected FieldsV1",
                        s("fieldsType")
                    ));
                }
                FieldSet::from_fields_v1(v).map_err(|e| format!("managedFields[{i}]: {e}"))?
            }
        };
        let op = s("operation");
        let sub = s("subresource");
        let mid = id(
            s("manager"),
            op,
            s("apiVersion"),
            (!sub.is_empty()).then_some(sub),
        );
        let time = e.get("time").and_then(Value::as_str).map(str::to_string);
        match out.get_mut(&mid) {
            Some(existing) => existing.set = existing.set.union(&set),
            None => {
                out.insert(
                    mid,
                    ManagerEntry {
                        api_version: s("apiVersion").to_string(),
                        time,
                        set,
                    },
                );
            }
        }
    }
    Ok(out)
}

/// Encodes managers as `metadata.managedFields`, sorted as upstream
/// `sortEncodedManagedFields` (operation, time, manager, apiVersion, subresource).
fn encode_managed_fields(managers: &Managers) -> Vec<Value> {
    let mut entries: Vec<(&ManagerId, &ManagerEntry)> =
        managers.iter().filter(|(_, e)| !e.set.is_empty()).collect();
    entries.sort_by(|(a, ea), (b, eb)| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| {
                ea.time
                    .as_deref()
                    .unwrap_or("")
                    .cmp(eb.time.as_deref().unwrap_or(""))
            })
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| ea.api_version.cmp(&eb.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    entries
        .into_iter()
        .map(|(mid, e)| entry_json(mid, &e.api_version, e.time.as_deref(), e.set.to_fields_v1()))
        .collect()
}

/// One `managedFields` entry, fields in upstream's order.
fn entry_json(mid: &ManagerId, api_version: &str, time: Option<&str>, fields_v1: Value) -> Value {
    let mut m = Map::new();
    m.insert("manager".into(), Value::String(mid.manager.clone()));
    m.insert("operation".into(), Value::String(mid.operation.clone()));
    m.insert("apiVersion".into(), Value::String(api_version.to_string()));
    if let Some(t) = time {
        m.insert("time".into(), Value::String(t.to_string()));
    }
    m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
    m.insert("fieldsV1".into(), fields_v1);
    if !mid.subresource.is_empty() {
        m.insert("subresource".into(), Value::String(mid.subresource.clone()));
    }
    Value::Object(m)
}

fn set_managed_fields(obj: &mut Value, managers: &Managers) {
    put_managed_fields(obj, encode_managed_fields(managers));
}

/// Stores encoded entries in `metadata.managedFields` (removing the field when there are none).
fn put_managed_fields(obj: &mut Value, encoded: Vec<Value>) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if encoded.is_empty() {
            meta.shift_remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(encoded));
        }
    }
}

/// Upstream keeps at most this many `Update` entries (`DefaultMaxUpdateManagers`).
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// Manager name of the bucket the oldest `Update` entries are merged into.
pub const ANCIENT_CHANGES_MANAGER: &str = "ancient-changes";

/// Merges the oldest `Update` entries, per API version, into an `ancient-changes` entry until
/// at most [`MAX_UPDATE_MANAGERS`] remain (upstream `capManagersManager`).
fn cap_update_managers(managers: &mut Managers) {
    let mut updaters: Vec<(Option<String>, ManagerId)> = managers
        .iter()
        .filter(|(id, _)| id.operation == OPERATION_UPDATE)
        .map(|(id, e)| (e.time.clone(), id.clone()))
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|(ta, a), (tb, b)| {
        ta.as_deref()
            .unwrap_or("")
            .cmp(tb.as_deref().unwrap_or(""))
            .then_with(|| a.cmp(b))
    });
    let mut remaining = updaters.len();
    let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
    for (time, mid) in updaters {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(version) = managers.get(&mid).map(|e| e.api_version.clone()) else {
            continue;
        };
        let bucket = id(ANCIENT_CHANGES_MANAGER, OPERATION_UPDATE, &version, None);
        match first_of_version.get(&version) {
            Some(first) => {
                if !managers.contains_key(&bucket) {
                    if let Some(e) = managers.remove(first) {
                        managers.insert(bucket.clone(), e);
                    }
                }
                if let Some(e) = managers.remove(&mid) {
                    if let Some(b) = managers.get_mut(&bucket) {
                        b.set = std::mem::take(&mut b.set).union_owned(e.set);
                        b.time = time;
                    }
                }
                remaining -= 1;
            }
            None => {
                first_of_version.insert(version, mid);
            }
        }
    }
}

/// Formats a time as upstream `metav1.Time` (RFC 3339, seconds, UTC).
fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Removes reset fields deeper than the walks skip (the walks already skip untracked fields
/// and top-level or `metadata.*` reset fields).
fn filter_deep(set: FieldSet, untracked: &Untracked<'_>) -> FieldSet {
    match untracked.deep_reset() {
        Some(deep) => set.recursive_difference(&deep),
        None => set,
    }
}

/// Server-side apply: merges `applied` into `live` (or creates from it when `live` is `None`)
/// and returns the new object with updated `metadata.managedFields`.
///
/// Errors: [`ApplyError::Conflicts`] when another manager owns a field the apply changes and
/// `force` is false (upstream message `Apply failed with 1 conflict: conflict with "m" using
/// v1: .spec.x`); [`ApplyError::BadRequest`] / [`ApplyError::Invalid`] for malformed
/// configurations.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    opts: &ApplyOptions<'_>,
) -> Result<Value, ApplyError> {
    let Value::Object(_) = applied else {
        return Err(ApplyError::BadRequest(
            "applied configuration must be a JSON object".into(),
        ));
    };
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let Some(gvk) = Gvk::of(applied) else {
        return Err(ApplyError::BadRequest(
            "apiVersion and kind must be set in an applied configuration".into(),
        ));
    };
    let api_version = gvk.api_version();
    let schema = Schema::for_kind(&gvk);

    let untracked = Untracked::new(opts.reset_fields);
    let config_set = field_set::field_set_of(&schema, applied, &untracked)
        .map_err(|e| ApplyError::Invalid(e.0))?;
    let config_set = filter_deep(config_set, &untracked);

    let empty = Value::Object(Map::new());
    let live_v = live.unwrap_or(&empty);
    let mut managers = match live {
        Some(l) => decode_managed_fields(l).map_err(ApplyError::ManagedFields)?,
        None => Managers::new(),
    };
    if let (Some(l), true) = (live, managers.is_empty()) {
        // An existing object nobody manages yet: its fields are first attributed to
        // `before-first-apply` (upstream `skipNonAppliedManager`).
        let mut attributed = l.clone();
        record_update(
            None,
            &mut attributed,
            &UpdateOptions {
                manager: BEFORE_FIRST_APPLY_MANAGER,
                api_version: &api_version,
                subresource: opts.subresource,
                reset_fields: opts.reset_fields,
                now: opts.now,
            },
        );
        managers = decode_managed_fields(&attributed).map_err(ApplyError::ManagedFields)?;
    }

    // Merge the configuration into the live object.
    let mut merged = merge_value(schema.root(), Some(live_v), applied)
        .unwrap_or_else(|| Value::Object(Map::new()));

    // The applier now owns exactly what it applied.
    let me = id(
        opts.manager,
        OPERATION_APPLY,
        &api_version,
        opts.subresource,
    );
    let last_set = managers.get(&me).map(|e| e.set.clone());
    let previous_time = managers.get(&me).and_then(|e| e.time.clone());
    managers.insert(
        me.clone(),
        ManagerEntry {
            api_version: api_version.clone(),
            time: previous_time,
            set: config_set,
        },
    );

    // Prune what it applied before and no longer applies, unless someone owns it.
    if let Some(last_set) = last_set {
        let owned = managers
            .values()
            .fold(FieldSet::new(), |acc, e| acc.union(&e.set));
        for path in last_set.difference(&owned).paths() {
            if owned.has_descendant(&path.0) {
                continue;
            }
            remove_path(schema.root(), &mut merged, &path.0);
        }
    }

    // Who loses what: conflicts for changed fields owned by others.
    let comparison = field_set::compare(&schema, live_v, &merged, &untracked);
    let changed = filter_deep(
        comparison.modified.union_owned(comparison.added),
        &untracked,
    );
    let removed = filter_deep(comparison.removed, &untracked);
    let mut conflicts: Vec<(Conflict, FieldPath)> = Vec::new();
    for (mid, entry) in &managers {
        if *mid == me {
            continue;
        }
        for path in entry.set.intersection(&changed).paths() {
            let conflict = Conflict {
                manager: mid.manager.clone(),
                operation: mid.operation.clone(),
                api_version: entry.api_version.clone(),
                subresource: mid.subresource.clone(),
                field: path.to_string(),
            };
            conflicts.push((conflict, path));
        }
    }
    if !conflicts.is_empty() && !opts.force {
        // kubectl upgrading from client-side apply: fields whose live values still match
        // the last-applied annotation are taken over (upstream `lastAppliedManager`).
        let allowed = match live {
            Some(l) if opts.manager == KUBECTL_MANAGER => {
                allowed_by_last_applied(&schema, l, &untracked)
            }
            _ => None,
        };
        let remaining: Vec<Conflict> = conflicts
            .into_iter()
            .filter(|(_, path)| !allowed.as_ref().is_some_and(|a| a.has(&path.0)))
            .map(|(c, _)| c)
            .collect();
        if !remaining.is_empty() {
            return Err(ApplyError::Conflicts(remaining));
        }
    }
    for (mid, entry) in managers.iter_mut() {
        if *mid == me {
            continue;
        }
        entry.set = entry.set.difference(&changed).difference(&removed);
    }
    managers.retain(|_, e| !e.set.is_empty());
    cap_update_managers(&mut managers);

    if opts.manager == KUBECTL_MANAGER {
        update_last_applied(&mut merged, applied);
    }

    // Upstream only refreshes the applier's time when the object changed.
    let object_changed = live.is_none() || strip_managed(live_v) != strip_managed(&merged);
    if let Some(e) = managers.get_mut(&me) {
        if object_changed || e.time.is_none() {
            e.time = Some(format_time(opts.now));
        }
    }
    set_managed_fields(&mut merged, &managers);
    Ok(merged)
}

/// Manager that owns an unmanaged object's fields before its first apply.
pub const BEFORE_FIRST_APPLY_MANAGER: &str = "before-first-apply";

/// The manager name `kubectl apply --server-side` uses.
pub const KUBECTL_MANAGER: &str = "kubectl";
/// Upstream's limit on the total size of an object's annotations (256 KiB).
use svcplane_rules::meta::TOTAL_ANNOTATION_SIZE_LIMIT;
/// The annotation client-side `kubectl apply` keeps its last applied configuration in.
pub use svcplane_rules::well_known::ANNOTATION_LAST_APPLIED as LAST_APPLIED_ANNOTATION;

fn last_applied_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Fields of the last-applied configuration whose values the live object still has
/// (upstream `allowedConflictsFromLastApplied`).
fn allowed_by_last_applied(
    schema: &Schema,
    live: &Value,
    untracked: &Untracked<'_>,
) -> Option<FieldSet> {
    let last_applied: Value = serde_json::from_str(last_applied_of(live)?).ok()?;
    let set = field_set::field_set_of(schema, &last_applied, untracked).ok()?;
    let diff = field_set::compare(schema, &last_applied, live, untracked);
    Some(
        set.difference(&diff.modified)
            .difference(&diff.added)
            .difference(&diff.removed),
    )
}

/// Rewrites the last-applied annotation, when the object has one, to the applied
/// configuration without that annotation, encoded as Go's `json.Encoder` would (sorted keys,
/// HTML characters escaped, trailing newline) (upstream `lastAppliedUpdater`).
fn update_last_applied(merged: &mut Value, applied: &Value) {
    if last_applied_of(merged).is_none() {
        return;
    }
    let mut config = applied.clone();
    if let Some(annotations) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.shift_remove(LAST_APPLIED_ANNOTATION);
    }
    let encoded = go_json(&config) + "\n";
    let Some(annotations) = merged
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    annotations.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(encoded));
    let total: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        annotations.shift_remove(LAST_APPLIED_ANNOTATION);
    }
}

/// Compact JSON with object keys sorted and `<`, `>`, `&`, U+2028, U+2029 escaped, as Go's
/// `encoding/json` writes a decoded object.
fn go_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn strip_managed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    v
}

/// Records field ownership for a non-apply write (create, update, patch) by `manager`, in
/// `new.metadata.managedFields`: the manager takes the fields it changed or added (operation
/// `Update`), every other manager loses them and the fields the write removed.
///
/// As upstream, managed fields sent in the request body are used as the starting point when
/// they are non-empty and valid (that is how clients reset them, e.g. with `[{}]`); otherwise
/// the old object's are kept.
pub fn record_update(old: Option<&Value>, new: &mut Value, opts: &UpdateOptions<'_>) {
    let from_request = if opts.subresource.is_none() {
        decode_managed_fields(new).ok().filter(|m| !m.is_empty())
    } else {
        None
    };
    let schema = Gvk::of(new)
        .or_else(|| old.and_then(Gvk::of))
        .map(|g| Schema::for_kind(&g))
        .unwrap_or_else(Schema::unstructured);
    let untracked = Untracked::new(opts.reset_fields);
    let me = id(
        opts.manager,
        OPERATION_UPDATE,
        opts.api_version,
        opts.subresource,
    );
    // A create with no managed fields of its own: the manager owns everything it set.
    if old.is_none() && from_request.is_none() {
        if let Some(fields) = created_fields_v1(&schema, new, &untracked) {
            let entries = if fields.is_empty() {
                Vec::new()
            } else {
                let time = format_time(opts.now);
                vec![entry_json(
                    &me,
                    opts.api_version,
                    Some(&time),
                    Value::Object(fields),
                )]
            };
            put_managed_fields(new, entries);
            return;
        }
    }
    let mut managers = from_request.unwrap_or_else(|| {
        old.and_then(|o| decode_managed_fields(o).ok())
            .unwrap_or_default()
    });

    let empty = Value::Object(Map::new());
    let comparison = field_set::compare(&schema, old.unwrap_or(&empty), new, &untracked);
    let changed = filter_deep(
        comparison.modified.union_owned(comparison.added),
        &untracked,
    );
    let removed = filter_deep(comparison.removed, &untracked);

    if !changed.is_empty() || !removed.is_empty() {
        for entry in managers.values_mut() {
            entry.set = entry.set.difference(&changed).difference(&removed);
        }
    }
    if !changed.is_empty() {
        let entry = managers.entry(me).or_insert_with(|| ManagerEntry {
            api_version: opts.api_version.to_string(),
            time: None,
            set: FieldSet::new(),
        });
        entry.set = std::mem::take(&mut entry.set).union_owned(changed);
        entry.api_version = opts.api_version.to_string();
        entry.time = Some(format_time(opts.now));
    }
    managers.retain(|_, e| !e.set.is_empty());
    cap_update_managers(&mut managers);
    set_managed_fields(new, &managers);
}

// ---------------------------------------------------------------------------------------------
// Merging an applied configuration into the live object (upstream `TypedValue.Merge`).

/// Merges `applied` over `live` at a schema position; `None` means the field is removed.
fn merge_value(at: SchemaAt, live: Option<&Value>, applied: &Value) -> Option<Value> {
    match (live, applied) {
        (_, Value::Null) => None,
        (Some(Value::Object(l)), Value::Object(a)) if !at.is_atomic_map() => {
            let mut out = l.clone();
            for (k, av) in a {
                match merge_value(at.field(k), l.get(k), av) {
                    Some(v) => {
                        out.insert(k.clone(), v);
                    }
                    None => {
                        out.shift_remove(k);
                    }
                }
            }
            Some(Value::Object(out))
        }
        (Some(Value::Array(l)), Value::Array(a)) => Some(Value::Array(merge_list(at, l, a))),
        (_, a) => Some(without_nulls(at, a)),
    }
}

/// A configured value with no live counterpart: drop `null` fields in maps.
fn without_nulls(at: SchemaAt, v: &Value) -> Value {
    match v {
        Value::Object(m) if !at.is_atomic_map() => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(at.field(k), v)))
                .collect(),
        ),
        Value::Array(items) => {
            let item_at = at.items();
            Value::Array(items.iter().map(|i| without_nulls(item_at, i)).collect())
        }
        other => other.clone(),
    }
}

/// Identity of a list item for merging, by the list's SSA type, as its `FieldsV1` key.
fn list_item_id(at: SchemaAt, item: &Value) -> Option<String> {
    match at.list().ssa {
        SsaList::Atomic => None,
        SsaList::Set => Some(PathElement::Value(item.to_string()).fields_v1_key()),
        SsaList::Map(keys) => field_set::item_key(item, keys, &FieldPath::default())
            .ok()
            .map(|pe| pe.fields_v1_key()),
    }
}

/// Merges lists: atomic lists are replaced; for sets and maps, live-only items keep their
/// place and shared or new items follow the applied order.
fn merge_list(at: SchemaAt, live: &[Value], applied: &[Value]) -> Vec<Value> {
    let item_at = at.items();
    if matches!(at.list().ssa, SsaList::Atomic) {
        return applied.iter().map(|v| without_nulls(item_at, v)).collect();
    }
    let live_ids: Vec<Option<String>> = live.iter().map(|v| list_item_id(at, v)).collect();
    let applied_ids: Vec<Option<String>> = applied.iter().map(|v| list_item_id(at, v)).collect();
    let in_applied: BTreeSet<&String> = applied_ids.iter().flatten().collect();
    let mut out = Vec::with_capacity(live.len() + applied.len());
    let mut emitted: BTreeSet<String> = BTreeSet::new();
    let (mut i, mut j) = (0, 0);
    while i < live.len() || j < applied.len() {
        if i < live.len() {
            match &live_ids[i] {
                Some(id) if emitted.contains(id) => {
                    i += 1;
                    continue;
                }
                Some(id) if in_applied.contains(id) => {}
                _ => {
                    out.push(live[i].clone());
                    i += 1;
                    continue;
                }
            }
        }
        if j < applied.len() {
            let lhs = applied_ids[j].as_ref().and_then(|aid| {
                live_ids
                    .iter()
                    .position(|l| l.as_ref() == Some(aid))
                    .map(|p| &live[p])
            });
            if let Some(v) = merge_value(item_at, lhs, &applied[j]) {
                out.push(v);
            }
            if let Some(aid) = &applied_ids[j] {
                emitted.insert(aid.clone());
            }
            j += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Removes the field or list item at `path` from `obj`, if present.
fn remove_path(at: SchemaAt, obj: &mut Value, path: &[PathElement]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (first, obj) {
        (PathElement::Field(name), Value::Object(m)) => {
            if rest.is_empty() {
                m.shift_remove(name);
            } else if let Some(child) = m.get_mut(name) {
                remove_path(at.field(name), child, rest);
            }
        }
        (PathElement::Key(_) | PathElement::Value(_), Value::Array(items)) => {
            let wanted = first.fields_v1_key();
            let Some(pos) = items
                .iter()
                .position(|it| list_item_id(at, it).as_deref() == Some(wanted.as_str()))
            else {
                return;
            };
            if rest.is_empty() {
                items.remove(pos);
            } else {
                remove_path(at.items(), &mut items[pos], rest);
            }
        }
        (PathElement::Index(i), Value::Array(items)) if *i < items.len() => {
            if rest.is_empty() {
                items.remove(*i);
            } else {
                remove_path(at.items(), &mut items[*i], rest);
            }
        }
        _ => {}
    }
}
