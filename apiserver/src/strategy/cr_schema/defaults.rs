//! Structural-schema defaulting, as upstream
//! `k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting/algorithm.go` (`Default`):
//! a property that is missing, or a non-nullable `null`, gets its schema's `default`; present
//! objects, map values and array items are walked with their own schemas. At the root,
//! `apiVersion`, `kind` and `metadata` are left alone (metadata is `ObjectMeta`).

use serde_json::Value;

use super::schema::Node;

/// Applies the `default`s of `s` to `x`.
pub fn apply(x: &mut Value, s: Node<'_>) {
    match x {
        Value::Object(map) => {
            for (name, property) in s.properties() {
                if s.is_root() && matches!(name.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                let Some(default) = property.default() else {
                    continue;
                };
                let missing = map
                    .get(name)
                    .is_none_or(|v| v.is_null() && !property.nullable());
                if missing {
                    map.insert(name.clone(), default.clone());
                }
            }
            let additional = s.additional_properties().and_then(|c| c.schema());
            for (name, value) in map.iter_mut() {
                if s.is_root() && matches!(name.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                if let Some(child) = s.property(name).and_then(|c| c.schema()) {
                    apply(value, child);
                } else if let Some(child) = additional {
                    fill_null(value, child);
                    apply(value, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(child) = s.items() {
                for item in items {
                    fill_null(item, child);
                    apply(item, child);
                }
            }
        }
        _ => {}
    }
}

/// A non-nullable `null` map value or list item takes its schema's default.
fn fill_null(x: &mut Value, s: Node<'_>) {
    if x.is_null() && !s.nullable() {
        if let Some(default) = s.default() {
            *x = default.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_and_null_properties_get_their_defaults_at_every_level() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"name": {"default": "x"}}},
            "spec": {"type": "object", "properties": {
                "disabled": {"type": "boolean", "default": false},
                "mode": {"type": "string", "default": "a"},
                "keep": {"type": "string", "nullable": true, "default": "k"},
                "blocks": {"type": "array", "items": {"type": "object", "properties": {
                    "weight": {"type": "integer", "default": 1}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object",
                    "properties": {"w": {"type": "integer", "default": 2}}}}}}}});
        let mut obj = json!({"metadata": {}, "spec": {"mode": null, "keep": null,
            "blocks": [{}, {"weight": 5}], "map": {"k": {}}}});
        apply(&mut obj, Node::root(&schema));
        assert_eq!(
            obj,
            json!({"metadata": {}, "spec": {"mode": "a", "keep": null, "disabled": false,
                "blocks": [{"weight": 1}, {"weight": 5}], "map": {"k": {"w": 2}}}})
        );
    }
}
