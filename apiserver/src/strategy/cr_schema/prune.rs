//! Pruning of the fields a structural schema does not declare, as upstream
//! `k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go`
//! (`PruneWithOptions` with `TrackUnknownFieldPaths`), and the removal of non-nullable nulls
//! without a default (`schema/defaulting/prunenulls.go`).
//!
//! * The resource root is treated as an embedded resource: `apiVersion`, `kind` and
//!   `metadata` are never pruned there (metadata is handled as `ObjectMeta`).
//! * `x-kubernetes-preserve-unknown-fields: true` keeps undeclared fields, but declared ones
//!   are still walked with their own schemas.
//! * `x-kubernetes-embedded-resource: true` objects keep `apiVersion`, `kind`, `metadata`.
//! * `additionalProperties` (maps) keep their keys; the values are walked with its schema.
//! * Unknown paths use upstream's notation (`spec.foo`, `spec.items[0].bar`) and come out
//!   sorted, as `PruneWithOptions` sorts them.

use serde_json::{Map, Value};

use super::schema::Node;

/// The keys the root (and every embedded resource) keeps whatever its schema says.
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Removes from the resource `obj` every field `schema` does not declare; returns their
/// paths, sorted.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let root = Node::root(schema);
    let mut walk = Walk::default();
    walk.prune(obj, Some(root));
    walk.unknown.sort();
    walk.unknown
}

/// The paths [`prune`] would remove, without changing `obj`.
pub fn unknown_paths(obj: &Value, schema: &Value) -> Vec<String> {
    prune(&mut obj.clone(), schema)
}

/// The state of one pruning walk: the path to the current value and what was removed.
#[derive(Default)]
struct Walk {
    path: Vec<String>,
    unknown: Vec<String>,
}

impl Walk {
    fn path_with_key(&self, key: &str) -> String {
        let mut p = self.path.concat();
        if !p.is_empty() {
            p.push('.');
        }
        p.push_str(key);
        p
    }

    fn push_key(&mut self, key: &str) {
        let sep = if self.path.is_empty() { "" } else { "." };
        self.path.push(format!("{sep}{key}"));
    }

    fn push_index(&mut self, index: usize) {
        self.path.push(format!("[{index}]"));
    }

    fn prune(&mut self, x: &mut Value, s: Option<Node<'_>>) {
        if let Some(s) = s.filter(|s| s.preserve_unknown_fields()) {
            self.skip_prune(x, s);
            return;
        }
        match x {
            Value::Object(map) => {
                let Some(s) = s else {
                    for key in std::mem::take(map).keys() {
                        self.unknown.push(self.path_with_key(key));
                    }
                    return;
                };
                self.prune_object(map, s);
            }
            Value::Array(items) => {
                let item_schema = s.and_then(|s| s.items());
                for (i, item) in items.iter_mut().enumerate() {
                    self.push_index(i);
                    self.prune(item, item_schema);
                    self.path.pop();
                }
            }
            _ => {}
        }
    }

    /// Prunes the value of field `key` of an object with schema `s` by the field's own schema.
    /// Returns whether the field is declared (an embedded resource's `apiVersion`, `kind` and
    /// `metadata` always are, and are left alone).
    fn prune_field(&mut self, key: &str, value: &mut Value, s: Node<'_>) -> bool {
        if s.embedded_resource() && META_FIELDS.contains(&key) {
            return true;
        }
        let Some(child) = s.property(key).or_else(|| s.additional_properties()) else {
            return false;
        };
        self.push_key(key);
        self.prune(value, child.schema());
        self.path.pop();
        true
    }

    fn prune_object(&mut self, map: &mut Map<String, Value>, s: Node<'_>) {
        let mut removed = Vec::new();
        for (key, value) in map.iter_mut() {
            if !self.prune_field(key, value, s) {
                if !META_FIELDS.contains(&key.as_str()) || !self.path.is_empty() {
                    self.unknown.push(self.path_with_key(key));
                }
                removed.push(key.clone());
            }
        }
        for key in removed {
            map.shift_remove(&key);
        }
    }

    /// Under `x-kubernetes-preserve-unknown-fields`: undeclared fields stay, declared ones
    /// are pruned by their own schemas (upstream `skipPrune`).
    fn skip_prune(&mut self, x: &mut Value, s: Node<'_>) {
        match x {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    self.prune_field(key, value, s);
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = s.items() {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.push_index(i);
                        self.skip_prune(item, item_schema);
                        self.path.pop();
                    }
                }
            }
            _ => {}
        }
    }
}

/// Upstream `PruneNonNullableNullsWithoutDefaults`: a `null` whose schema is neither
/// `nullable` nor has a `default` is removed (one with a default is defaulted later).
pub fn prune_non_nullable_nulls(x: &mut Value, s: Option<Node<'_>>) {
    match x {
        Value::Object(map) => {
            let mut removed = Vec::new();
            for (key, value) in map.iter_mut() {
                let child = s.and_then(|s| {
                    s.property(key)
                        .or_else(|| s.additional_properties())
                        .and_then(|c| c.schema())
                });
                let drop = value.is_null()
                    && child.is_some_and(|c| !c.nullable() && c.default().is_none());
                if drop {
                    removed.push(key.clone());
                } else {
                    prune_non_nullable_nulls(value, child);
                }
            }
            for key in removed {
                map.shift_remove(&key);
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items());
            for item in items {
                prune_non_nullable_nulls(item, item_schema);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "blocks": {"type": "array", "items": {"type": "object", "properties": {
                    "cidr": {"type": "string"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                          "properties": {"typed": {"type": "object", "properties": {
                              "a": {"type": "string"}}}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                             "properties": {"spec": {"type": "object"}}}}},
            "status": {"type": "object", "properties": {"used": {"type": "integer"}}}}})
    }

    #[test]
    fn undeclared_fields_are_removed_and_reported_sorted() {
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "Pool", "metadata": {"name": "a"},
            "spec": {"zeta": 1, "blocks": [{"cidr": "10.0.0.0/24", "foo": true}],
                     "labels": {"any": "kept"}},
            "status": {"used": 1, "bar": {}}, "top": 1});
        let unknown = prune(&mut obj, &pool_schema());
        assert_eq!(
            unknown,
            ["spec.blocks[0].foo", "spec.zeta", "status.bar", "top"]
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "Pool", "metadata": {"name": "a"},
                   "spec": {"blocks": [{"cidr": "10.0.0.0/24"}], "labels": {"any": "kept"}},
                   "status": {"used": 1}})
        );
    }

    #[test]
    fn preserve_unknown_fields_keeps_undeclared_but_prunes_declared_subtrees() {
        let mut obj = json!({"spec": {"extra": {"free": {"x": 1}, "typed": {"a": "1", "b": 2}}}});
        let unknown = prune(&mut obj, &pool_schema());
        assert_eq!(unknown, ["spec.extra.typed.b"]);
        assert_eq!(
            obj,
            json!({"spec": {"extra": {"free": {"x": 1}, "typed": {"a": "1"}}}})
        );
    }

    #[test]
    fn embedded_resources_keep_their_type_and_metadata() {
        let mut obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"}, "spec": {}, "other": 1}}});
        let unknown = prune(&mut obj, &pool_schema());
        assert_eq!(unknown, ["spec.template.other"]);
        assert_eq!(obj["spec"]["template"]["kind"], "Pod");
    }

    #[test]
    fn nested_meta_field_names_are_pruned_outside_embedded_resources() {
        let mut obj = json!({"spec": {"kind": "x"}});
        assert_eq!(prune(&mut obj, &pool_schema()), ["spec.kind"]);
    }

    #[test]
    fn a_preserving_root_keeps_everything() {
        let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        let mut obj = json!({"spec": {"anything": [1, {"a": 2}]}});
        assert!(prune(&mut obj, &schema).is_empty());
        assert_eq!(obj["spec"]["anything"][1]["a"], 2);
    }

    #[test]
    fn non_nullable_nulls_without_default_are_removed() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string", "nullable": true},
                           "c": {"type": "string", "default": "x"}}}}});
        let mut obj = json!({"spec": {"a": null, "b": null, "c": null}});
        prune_non_nullable_nulls(&mut obj, Some(Node::root(&schema)));
        assert_eq!(obj, json!({"spec": {"b": null, "c": null}}));
    }
}
