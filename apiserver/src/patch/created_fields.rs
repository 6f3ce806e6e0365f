//! The `FieldsV1` a create records for its manager, built straight from the new object.
//!
//! A create is an `Update` against nothing: the manager owns everything [`compare`] reports
//! as added or modified between an empty object and the new one. The general path builds
//! that comparison as [`FieldSet`] trees and then encodes them; creates are the hottest write,
//! so this module walks the object once and emits the same JSON directly. It mirrors
//! [`compare`]'s walk step by step (same untracked fields, zero values for always-present
//! fields, set and map lists, atomic values) and gives up (`None`, take the general path) where
//! only the tree merge is exact: two items of a map list with the same key.
//!
//! The property test at the bottom checks this walk against the general path.
//!
//! [`compare`]: super::field_set::compare
//! [`FieldSet`]: super::field_set::FieldSet

use serde_json::{Map, Value};

use super::field_set::{item_key, shape, tracked, FieldPath, PathElement, Shape, Untracked};
use super::list_types::SsaList;
use super::schema::{Schema, SchemaAt};

/// One node's entries before sorting: the `FieldsV1` key and its value.
type Entries = Vec<(String, Value)>;

/// The `FieldsV1` object of everything `new` sets, or `None` when the general path must
/// decide. An empty map means the object sets nothing tracked.
pub fn created_fields_v1(
    schema: &Schema,
    new: &Value,
    untracked: &Untracked<'_>,
) -> Option<Map<String, Value>> {
    if untracked.deep_reset().is_some() {
        return None;
    }
    let empty = Map::new();
    let new = new.as_object().unwrap_or(&empty);
    compare_map(schema.root(), 0, false, new, untracked)
}

/// [`compare`](super::field_set::compare)'s `maps` with an empty old side.
fn compare_map(
    at: SchemaAt,
    depth: usize,
    in_metadata: bool,
    new: &Map<String, Value>,
    untracked: &Untracked<'_>,
) -> Option<Map<String, Value>> {
    let mut entries = Entries::new();
    for (k, nv) in tracked(new, untracked, depth, in_metadata) {
        let child_at = at.field(k);
        let (member, child) = if depth == 0 && k == "metadata" {
            match nv {
                Value::Object(nm) => (false, compare_map(child_at, 1, true, nm, untracked)?),
                _ => continue,
            }
        } else if child_at.is_present() {
            compare_with_zero(child_at, depth + 1, nv, untracked)?
        } else {
            (true, mark_below(child_at, nv)?)
        };
        push(&mut entries, PathElement::Field(k.clone()), member, child);
    }
    finish(entries)
}

/// `values` of an always-present field against its zero value (`{}` for a struct, `null`
/// otherwise): whether the field itself is marked, and what below it is.
fn compare_with_zero(
    at: SchemaAt,
    depth: usize,
    new: &Value,
    untracked: &Untracked<'_>,
) -> Option<(bool, Map<String, Value>)> {
    Some(match new {
        Value::Object(n) if !at.is_atomic_map() => {
            (false, compare_map(at, depth, false, n, untracked)?)
        }
        Value::Array(items) if !matches!(at.list().ssa, SsaList::Atomic) => {
            (false, list_items(at, items)?)
        }
        // `{}` against `{}` and `null` against `null` are unchanged; anything else differs.
        Value::Object(n) => (!n.is_empty(), Map::new()),
        Value::Null => (false, Map::new()),
        _ => (true, Map::new()),
    })
}

/// Every item of a set or map list, each marked with everything below it.
fn list_items(at: SchemaAt, items: &[Value]) -> Option<Map<String, Value>> {
    let mut entries = Entries::new();
    match at.list().ssa {
        SsaList::Atomic => return Some(Map::new()),
        SsaList::Set => {
            for item in items {
                push(
                    &mut entries,
                    PathElement::Value(item.to_string()),
                    true,
                    Map::new(),
                );
            }
        }
        SsaList::Map(keys) => {
            let item_at = at.items();
            for item in items {
                // Items without their keys are not tracked (upstream rejects them earlier).
                if let Ok(pe) = item_key(item, keys, &FieldPath::default()) {
                    push(&mut entries, pe, true, mark_below(item_at, item)?);
                }
            }
        }
    }
    finish(entries)
}

/// Everything below a value, each node a member (the general path's `mark_below`).
fn mark_below(at: SchemaAt, v: &Value) -> Option<Map<String, Value>> {
    match shape(at, v) {
        Shape::Leaf => Some(Map::new()),
        Shape::Map(m) => {
            let mut entries = Entries::with_capacity(m.len());
            for (k, child) in m {
                let below = mark_below(at.field(k), child)?;
                push(&mut entries, PathElement::Field(k.clone()), true, below);
            }
            finish(entries)
        }
        Shape::SetList(_) | Shape::MapList(..) => {
            let Value::Array(items) = v else {
                return Some(Map::new());
            };
            list_items(at, items)
        }
    }
}

/// Adds an element: `{}` when it is only a member, its children (after `".": {}` when it is
/// also a member) when something below it is set, nothing when neither.
fn push(entries: &mut Entries, pe: PathElement, member: bool, child: Map<String, Value>) {
    let value = match (member, child.is_empty()) {
        (false, true) => return,
        (true, true) => Value::Object(Map::new()),
        (false, false) => Value::Object(child),
        (true, false) => {
            let mut m = Map::with_capacity(child.len() + 1);
            m.insert(".".into(), Value::Object(Map::new()));
            m.extend(child);
            Value::Object(m)
        }
    };
    entries.push((pe.fields_v1_key(), value));
}

/// Sorts a node's entries the way the set orders its elements (one element type per node, so
/// by key text). Equal set values collapse; two map-list items with one key give up.
fn finish(mut entries: Entries) -> Option<Map<String, Value>> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Map::with_capacity(entries.len());
    for (k, v) in entries {
        if let Some(existing) = out.get(&k) {
            if existing == &v && k.starts_with("v:") {
                continue;
            }
            return None;
        }
        out.insert(k, v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::field_set::compare;
    use crate::patch::Gvk;
    use proptest::prelude::*;
    use serde_json::json;

    /// What the general path records for a create: compare against `{}`, added ∪ modified.
    fn general(schema: &Schema, new: &Value, untracked: &Untracked<'_>) -> Value {
        let c = compare(schema, &json!({}), new, untracked);
        c.modified.union_owned(c.added).to_fields_v1()
    }

    fn schema_of(v: &Value) -> Schema {
        Gvk::of(v)
            .map(|g| Schema::for_kind(&g))
            .unwrap_or_else(Schema::unstructured)
    }

    fn assert_same(obj: &Value, reset: &[&str]) {
        let schema = schema_of(obj);
        let untracked = Untracked::new(reset);
        let fast = created_fields_v1(&schema, obj, &untracked).map(Value::Object);
        if let Some(fast) = fast {
            let slow = general(&schema, obj, &untracked);
            assert_eq!(
                serde_json::to_string(&fast).unwrap(),
                serde_json::to_string(&slow).unwrap(),
                "object {obj}"
            );
        }
    }

    #[test]
    fn created_pod_fields_match_general_comparison() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u",
                "labels": {"app": "web", "tier": "x"}, "annotations": {"a": "b"},
                "finalizers": ["example.com/f", "example.com/a", "example.com/f"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "1"}]},
            "spec": {
                "nodeName": "node-1",
                "containers": [
                    {"name": "main", "image": "img", "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"containerPort": 53, "protocol": "UDP"}],
                     "env": [{"name": "B", "value": "1"}, {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                     "resources": {"limits": {"cpu": "1"}, "requests": {}},
                     "args": ["a", "b"]},
                    {"name": "side", "image": "img2"}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "securityContext": {},
                "hostNetwork": false,
                "nodeSelector": null,
            },
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]},
        });
        assert_same(&pod, &["status"]);
        assert_same(&pod, &[]);
        assert!(created_fields_v1(&schema_of(&pod), &pod, &Untracked::new(&["status"])).is_some());
    }

    #[test]
    fn created_service_and_slice_fields_match_general_comparison() {
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "labels": {}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}, {"port": 80, "protocol": "UDP"}],
                "ipFamilies": ["IPv4"], "clusterIPs": [], "type": "ClusterIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}}},
        });
        assert_same(&svc, &["status"]);
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": "s-", "ownerReferences": [{"uid": "a", "name": "s", "kind": "Service", "apiVersion": "v1", "controller": true}]},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 80}],
        });
        assert_same(&slice, &[]);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": ""}, "binaryData": {}});
        assert_same(&cm, &[]);
        let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "finalizers": ["x"]}, "spec": {"list": [1, 2], "m": {"k": null}}});
        assert_same(&cr, &[]);
    }

    #[test]
    fn duplicate_map_list_keys_take_the_general_path() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "a", "args": ["y"]}]}});
        let schema = schema_of(&pod);
        assert!(created_fields_v1(&schema, &pod, &Untracked::new(&["status"])).is_none());
    }

    /// Random objects over field names the schemas give meaning to.
    fn arb_value(depth: u32) -> BoxedStrategy<Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..3).prop_map(|n| json!(n)),
            prop::sample::select(vec!["TCP", "UDP", "a", "b", ""]).prop_map(|s| json!(s)),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        let names = prop::sample::select(vec![
            "spec",
            "metadata",
            "status",
            "containers",
            "ports",
            "name",
            "containerPort",
            "protocol",
            "port",
            "labels",
            "finalizers",
            "ownerReferences",
            "uid",
            "env",
            "value",
            "selector",
            "volumes",
            "tolerations",
            "key",
            "ipFamilies",
            "nodeSelector",
            "resources",
            "limits",
            "generation",
            "managedFields",
            "kind",
        ]);
        prop_oneof![
            2 => leaf,
            1 => prop::collection::vec(arb_value(depth - 1), 0..4).prop_map(Value::Array),
            2 => prop::collection::vec((names, arb_value(depth - 1)), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
        .boxed()
    }

    proptest! {
        #[test]
        fn created_fields_equal_general_comparison_for_random_objects(
            body in prop::collection::vec((prop::sample::select(vec!["spec", "metadata", "status", "data", "ports", "endpoints"]), arb_value(4)), 0..4),
            kind in prop::sample::select(vec![("v1", "Pod"), ("v1", "Service"), ("discovery.k8s.io/v1", "EndpointSlice"), ("example.com/v1", "Widget")]),
            reset_status in any::<bool>(),
        ) {
            let mut obj: Map<String, Value> = body.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            obj.insert("apiVersion".into(), json!(kind.0));
            obj.insert("kind".into(), json!(kind.1));
            let reset: &[&str] = if reset_status { &["status"] } else { &[] };
            assert_same(&Value::Object(obj), reset);
        }
    }
}
