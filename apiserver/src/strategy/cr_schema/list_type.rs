//! The `x-kubernetes-list-type` invariants, as upstream
//! `k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype/validation.go`
//! (`ValidateListSetsAndMaps`): a `set` has no repeated item and a `map` no two items with
//! the same `x-kubernetes-list-map-keys` values; the second occurrence is reported as a
//! `Duplicate value` (a map key as the map of its key fields).

use serde_json::{Map, Value};

use super::field_errors::SchemaError;
use super::schema::Node;

/// The list-type errors of the resource `obj`.
pub fn validate(obj: &Value, schema: &Value) -> Vec<SchemaError> {
    let mut out = Vec::new();
    if let Value::Object(map) = obj {
        object(map, Node::root(schema), "", &mut out);
    }
    out
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn object(map: &Map<String, Value>, s: Node<'_>, path: &str, out: &mut Vec<SchemaError>) {
    if let Some(additional) = s.additional_properties().and_then(|c| c.schema()) {
        for (key, value) in map {
            // `field.Path.Key`: `path[key]`.
            value_of(value, additional, &format!("{path}[{key}]"), out);
        }
    }
    for (key, value) in map {
        if let Some(property) = s.property(key).and_then(|c| c.schema()) {
            value_of(value, property, &child(path, key), out);
        }
    }
}

fn value_of(x: &Value, s: Node<'_>, path: &str, out: &mut Vec<SchemaError>) {
    match x {
        Value::Array(items) => array(items, s, path, out),
        Value::Object(map) => object(map, s, path, out),
        _ => {}
    }
}

fn array(items: &[Value], s: Node<'_>, path: &str, out: &mut Vec<SchemaError>) {
    match s.str("x-kubernetes-list-type") {
        Some("set") => {
            for i in second_occurrences(items) {
                out.push(SchemaError::duplicate(format!("{path}[{i}]"), &items[i]));
            }
        }
        Some("map") => map_list(items, s, path, out),
        _ => {}
    }
    if let Some(item_schema) = s.items() {
        for (i, item) in items.iter().enumerate() {
            value_of(item, item_schema, &format!("{path}[{i}]"), out);
        }
    }
}

/// The indices where a value occurs for the second time (upstream reports only those).
fn second_occurrences(items: &[Value]) -> Vec<usize> {
    items
        .iter()
        .enumerate()
        .filter(|(i, x)| items[..*i].iter().filter(|y| y == x).count() == 1)
        .map(|(i, _)| i)
        .collect()
}

fn map_list(items: &[Value], s: Node<'_>, path: &str, out: &mut Vec<SchemaError>) {
    if let Some(i) = items.iter().position(|x| !x.is_null() && !x.is_object()) {
        out.push(SchemaError::invalid(
            format!("{path}[{i}]"),
            &items[i],
            "must be an object for an array of list-type map",
        ));
        return;
    }
    let key_fields = s.list_map_keys();
    let keys: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for field in &key_fields {
                if let Some(v) = x.get(*field) {
                    key.insert((*field).to_string(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in second_occurrences(&keys) {
        out.push(SchemaError::duplicate(format!("{path}[{i}]"), &keys[i]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repeated_set_items_and_map_keys_are_duplicates() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {
                "tags": {"type": "array", "x-kubernetes-list-type": "set",
                         "items": {"type": "string"}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object"}}}}}});
        let obj = json!({"spec": {"tags": ["a", "b", "a", "a"],
            "ports": [{"name": "http", "port": 1}, {"name": "http", "port": 2}]}});
        let got: Vec<String> = validate(&obj, &schema)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "spec.tags[2]: Duplicate value: \"a\"",
                "spec.ports[1]: Duplicate value: map[string]interface {}{\"name\":\"http\"}"
            ]
        );
    }
}
