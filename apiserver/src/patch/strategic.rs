//! Strategic merge patch (`application/strategic-merge-patch+json`), following upstream
//! `k8s.io/apimachinery/pkg/util/strategicpatch` (`StrategicMergeMapPatch` with
//! `MergeParallelList` and `IgnoreUnmatchedNulls`).
//!
//! Maps merge key by key and `null` deletes a key; lists merge as the kind's
//! [`Schema`] says: lists with `patchStrategy:"merge"` merge items by
//! their `patchMergeKey` (or, for scalars, as a union), other lists are replaced. Directives:
//! `$patch: replace|delete` in a map, `$patch: replace|delete` items in a merging list,
//! `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>` and `$retainKeys`
//! (see the "preserve order in strategic merge patch" design proposal).
//!
//! Where this goes beyond upstream: a value that is new to the object (a new key, or a new
//! item of a merging list) is merged into an empty value instead of being copied verbatim, so
//! nested directives and `null`s never leak into the stored object (upstream relies on the
//! typed decoder to drop them).

use serde_json::{Map, Value};

use super::list_types::{Gvk, SmpList};
use super::schema::{Schema, SchemaAt};
use super::PatchError;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

// Upstream `mergepatch` error texts.
const ERR_BAD_JSON_DOC: &str = "invalid JSON document";
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";
const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Applies a strategic merge patch to `original` using the list semantics of `kind`.
///
/// Both documents must be JSON objects. Upstream serves this patch type only for built-in
/// kinds (custom resources get 415); for other kinds this function still works, treating every
/// list outside `metadata` as atomic, and the caller decides whether to offer it.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    kind: &Gvk,
) -> Result<Value, PatchError> {
    strategic_merge_patch_with_schema(original, patch, &Schema::for_kind(kind))
}

/// As [`strategic_merge_patch`], with an explicit schema.
pub fn strategic_merge_patch_with_schema(
    original: &Value,
    patch: &Value,
    schema: &Schema,
) -> Result<Value, PatchError> {
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadRequest(ERR_BAD_JSON_DOC.into())),
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(ERR_BAD_JSON_DOC.into()));
    };
    Merger
        .merge_map(original, patch.clone(), schema.root())
        .map(Value::Object)
}

/// The recursive merge (upstream `mergeMap` / `mergeSlice` and friends).
struct Merger;

/// How a list's items are identified while merging.
#[derive(Clone, Copy)]
enum ItemKey<'k> {
    Scalar,
    Map(&'k str),
}

impl Merger {
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        at: SchemaAt,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE);
                    self.merge_map(Map::new(), patch, at)
                }
                Some("delete") => Ok(Map::new()),
                _ => Err(bad_patch_type(directive, &patch)),
            };
        }

        self.apply_retain_keys(&mut original, &mut patch)?;
        self.apply_set_element_order(&mut original, &mut patch, at)?;

        for (key, patch_v) in patch {
            let (key, is_delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                Some(rest) => match rest.strip_prefix('/') {
                    Some(k) if !k.is_empty() => (k.to_string(), true),
                    _ => return Err(PatchError::BadRequest(ERR_PRIMITIVE_LIST.into())),
                },
                None => (key, false),
            };
            let field_at = at.field(&key);

            if patch_v.is_null() {
                original.shift_remove(&key);
                continue;
            }
            // Merge in place so the object keeps its key order.
            let Some(slot) = original.get_mut(&key) else {
                if !is_delete_list {
                    let fresh = self.fresh_value(patch_v, field_at)?;
                    original.insert(key, fresh);
                }
                continue;
            };
            let orig_v = std::mem::take(slot);
            let merged = match (orig_v, patch_v) {
                (Value::Object(o), Value::Object(p)) => {
                    Value::Object(self.merge_map(o, p, field_at)?)
                }
                (Value::Array(o), Value::Array(p)) => {
                    Value::Array(self.merge_list_field(o, p, field_at, is_delete_list)?)
                }
                (orig_v, patch_v) => {
                    if is_delete_list {
                        // A deletion list only applies to a list; keep the original value.
                        orig_v
                    } else {
                        self.fresh_value(patch_v, field_at)?
                    }
                }
            };
            if let Some(slot) = original.get_mut(&key) {
                *slot = merged;
            }
        }
        Ok(original)
    }

    /// A patch value that has nothing to merge with: merge it into an empty value so that
    /// directives are interpreted and `null`s dropped.
    fn fresh_value(&self, v: Value, at: SchemaAt) -> Result<Value, PatchError> {
        Ok(match v {
            Value::Object(m) => Value::Object(self.merge_map(Map::new(), m, at)?),
            Value::Array(items) => {
                Value::Array(self.merge_list_field(Vec::new(), items, at, false)?)
            }
            other => other,
        })
    }

    /// `$retainKeys`: drop keys of `original` not listed, after checking that the patch only
    /// sets listed keys (upstream `applyRetainKeysDirective`).
    fn apply_retain_keys(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<(), PatchError> {
        let Some(retain) = patch.remove(RETAIN_KEYS) else {
            return Ok(());
        };
        let Value::Array(retain) = retain else {
            return Err(PatchError::BadRequest(ERR_RETAIN_KEYS.into()));
        };
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        for (k, v) in patch.iter() {
            if v.is_null()
                || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                || k.starts_with(SET_ELEMENT_ORDER)
            {
                continue;
            }
            if !keep.contains(&k.as_str()) {
                return Err(PatchError::BadRequest(ERR_RETAIN_KEYS.into()));
            }
        }
        original.retain(|k, _| keep.contains(&k.as_str()));
        Ok(())
    }

    /// `$setElementOrder/<list>`: merge the list and order the result by the directive, then
    /// the patch, then the live object (upstream `mergePatchIntoOriginal`).
    fn apply_set_element_order(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        at: SchemaAt,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for directive_key in keys {
            let order = patch.remove(&directive_key).unwrap_or(Value::Null);
            let Value::Array(order) = order else {
                return Err(bad_arg_type("[]interface {}", &order));
            };
            let field = match directive_key
                .strip_prefix(SET_ELEMENT_ORDER)
                .and_then(|rest| rest.strip_prefix('/'))
            {
                Some(f) if !f.is_empty() => f.to_string(),
                _ => return Err(PatchError::BadRequest(ERR_SET_ELEMENT_ORDER.into())),
            };
            let field_at = at.field(&field);
            let orig_list = match original.get(&field) {
                None => None,
                Some(Value::Array(a)) => Some(a.clone()),
                Some(other) => return Err(bad_arg_type("[]interface {}", other)),
            };
            let patch_list = match patch.remove(&field) {
                None => None,
                Some(Value::Array(a)) => Some(a),
                Some(other) => return Err(bad_arg_type("[]interface {}", &other)),
            };
            let semantics = field_at.list();
            let key = match semantics.smp {
                SmpList::MergeByKey(k) => ItemKey::Map(k),
                _ => ItemKey::Scalar,
            };
            validate_patch_with_set_order(patch_list.as_deref().unwrap_or(&[]), &order, key)?;

            let merged = match (orig_list.clone(), patch_list) {
                (None, None) => continue,
                (Some(o), None) => o,
                (o, Some(p)) => self.merge_list_field(o.unwrap_or_default(), p, field_at, false)?,
            };
            let (patch_items, server_only) = partition(merged, &order, key)?;
            let ordered = normalize_element_order(
                patch_items,
                server_only,
                &order,
                orig_list.as_deref().unwrap_or(&[]),
                key,
            );
            original.insert(field, Value::Array(ordered));
        }
        Ok(())
    }

    /// Merges a list field according to its patch strategy (upstream `mergeSliceHandler`).
    fn merge_list_field(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        at: SchemaAt,
        is_delete_list: bool,
    ) -> Result<Vec<Value>, PatchError> {
        let semantics = at.list();
        let merge_key = match semantics.smp {
            SmpList::Replace if !is_delete_list => {
                // Atomic list: the patch's list, with nested directives and nulls resolved.
                let item = at.items();
                return patch
                    .into_iter()
                    .map(|v| match v {
                        Value::Object(m) => self.merge_map(Map::new(), m, item).map(Value::Object),
                        other => Ok(other),
                    })
                    .collect();
            }
            SmpList::MergeByKey(k) => Some(k),
            _ => None,
        };
        self.merge_list(original, patch, at, merge_key, is_delete_list)
    }

    /// Upstream `mergeSlice`.
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        at: SchemaAt,
        merge_key: Option<&str>,
        is_delete_list: bool,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let maps = element_kind_is_map(&original, &patch)?;
        if !maps {
            if is_delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.iter().any(|p| json_eq(p, v)))
                    .collect());
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch.iter()) {
                if !merged.iter().any(|m| json_eq(m, v)) {
                    merged.push(v.clone());
                }
            }
            let (patch_items, server_only) = partition(merged, &patch, ItemKey::Scalar)?;
            return Ok(normalize_element_order(
                patch_items,
                server_only,
                &patch,
                &original,
                ItemKey::Scalar,
            ));
        }

        let Some(merge_key) = merge_key else {
            return Err(PatchError::BadRequest(
                "cannot merge lists without merge key for type string".into(),
            ));
        };
        let key = ItemKey::Map(merge_key);
        let (original_after_directives, plain_patch) =
            self.apply_list_directives(original.clone(), patch, merge_key)?;
        let item = at.items();
        let mut merged = original_after_directives;
        for p in plain_patch.iter() {
            let Value::Object(pm) = p else {
                return Err(bad_arg_type("map[string]interface {}", p));
            };
            let Some(kv) = pm.get(merge_key) else {
                return Err(no_merge_key(p, merge_key));
            };
            match find_by_key(&merged, merge_key, kv)? {
                Some(idx) => {
                    let om = match std::mem::take(&mut merged[idx]) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    merged[idx] = Value::Object(self.merge_map(om, pm.clone(), item)?);
                }
                None => merged.push(Value::Object(self.merge_map(
                    Map::new(),
                    pm.clone(),
                    item,
                )?)),
            }
        }
        let (patch_items, server_only) = partition(merged, &plain_patch, key)?;
        Ok(normalize_element_order(
            patch_items,
            server_only,
            &plain_patch,
            &original,
            key,
        ))
    }

    /// Handles `$patch` items of a merging list of maps (upstream
    /// `mergeSliceWithSpecialElements`): returns the original after deletions (or the patch's
    /// plain items for `replace`, with nothing left to merge) and the patch's plain items.
    fn apply_list_directives(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: &str,
    ) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for v in patch {
            let Some(directive) = v.get(DIRECTIVE) else {
                plain.push(v);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let Some(kv) = v.get(merge_key) else {
                        return Err(no_merge_key(&v, merge_key));
                    };
                    let kv = kv.clone();
                    original.retain(|o| !o.get(merge_key).is_some_and(|x| json_eq(x, &kv)));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(PatchError::BadRequest(
                        "merging lists cannot yet be specified in the patch".into(),
                    ))
                }
                _ => {
                    let m = v.as_object().cloned().unwrap_or_default();
                    return Err(bad_patch_type(directive, &m));
                }
            }
        }
        if replace {
            return Ok((Vec::new(), plain));
        }
        Ok((original, plain))
    }
}

/// Whether the elements of the lists are maps (true) or scalars (false); errors on lists of
/// lists and mixed element types (upstream `sliceElementType`).
fn element_kind_is_map(a: &[Value], b: &[Value]) -> Result<bool, PatchError> {
    let mut kind: Option<u8> = None;
    for v in a.iter().chain(b.iter()) {
        let k = match v {
            Value::Array(_) => return Err(PatchError::Unprocessable(ERR_NO_LIST_OF_LISTS.into())),
            Value::Object(_) => 0,
            Value::String(_) => 1,
            Value::Number(_) => 2,
            Value::Bool(_) => 3,
            Value::Null => 4,
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PatchError::BadRequest(format!(
                    "list element types are not identical: [{} {}]",
                    go_fmt(&Value::Array(a.to_vec())),
                    go_fmt(&Value::Array(b.to_vec()))
                )))
            }
            _ => {}
        }
    }
    Ok(kind == Some(0))
}

/// Index of the map in `list` whose merge key equals `value`.
fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(PatchError::BadRequest(format!(
                "value for key {i} is not a map."
            )));
        };
        if m.get(key).is_some_and(|x| json_eq(x, value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Position of an item in an ordering list, by merge key (maps) or value (scalars).
fn index_in(order: &[Value], item: &Value, key: ItemKey) -> Option<usize> {
    match key {
        ItemKey::Scalar => order.iter().position(|o| json_eq(o, item)),
        ItemKey::Map(k) => {
            let kv = item.get(k)?;
            order
                .iter()
                .position(|o| o.get(k).is_some_and(|x| json_eq(x, kv)))
        }
    }
}

/// Splits merged items into those present in `by` and the rest (upstream
/// `partitionMapsByPresentInList` / `partitionPrimitivesByPresentInList`).
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: ItemKey,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        if let ItemKey::Map(k) = key {
            if v.get(k).is_none() {
                return Err(no_merge_key(&v, k));
            }
        }
        if index_in(by, &v, key).is_some() {
            present.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((present, server_only))
}

/// Sorts patch items by `patch_order` and server-only items by `server_order`, then
/// interleaves them (upstream `normalizeElementOrder` + `mergeSortedSlice`): a server-only item
/// goes before a patch item only when both appear in the live list in that order.
fn normalize_element_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: ItemKey,
) -> Vec<Value> {
    patch_items.sort_by_key(|v| index_in(patch_order, v, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index_in(server_order, v, key).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let li = index_in(server_order, l, key);
                let ri = index_in(server_order, r, key);
                match (li, ri) {
                    (Some(li), Some(ri)) if li < ri => out.extend(left.next()),
                    _ => out.extend(right.next()),
                }
            }
        }
    }
    out
}

/// Checks that the patch list's items appear in `$setElementOrder` in the same relative
/// order (upstream `validatePatchWithSetOrderList`).
fn validate_patch_with_set_order(
    patch: &[Value],
    order: &[Value],
    key: ItemKey,
) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = match key {
        ItemKey::Map(_) => patch
            .iter()
            .filter(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"))
            .collect(),
        ItemKey::Scalar => patch.iter().collect(),
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        let equal = match key {
            ItemKey::Scalar => json_eq(non_delete[pi], &order[oi]),
            ItemKey::Map(k) => {
                let l = non_delete[pi]
                    .get(k)
                    .ok_or_else(|| no_merge_key(non_delete[pi], k))?;
                let r = order[oi]
                    .get(k)
                    .ok_or_else(|| no_merge_key(&order[oi], k))?;
                json_eq(l, r)
            }
        };
        if equal {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(PatchError::BadRequest(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_fmt(&Value::Array(patch.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

/// JSON equality that treats numerically equal numbers as equal (`80` and `80.0`), like Go's
/// comparison of decoded `float64`s.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn no_merge_key(m: &Value, key: &str) -> PatchError {
    PatchError::BadRequest(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(m)
    ))
}

fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> PatchError {
    PatchError::BadRequest(format!(
        "unknown patch type: {} in map: {}",
        go_fmt(directive),
        go_fmt(&Value::Object(m.clone()))
    ))
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    let actual_type = match actual {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    PatchError::BadRequest(format!(
        "expected a {expected}, but received a {actual_type}"
    ))
}

/// Formats a JSON value the way Go's `%v` prints the decoded `interface{}`.
pub(crate) fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_fmt).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_fmt(&m[k])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}
