//! Validation of a custom resource against its version's `openAPIV3Schema`, as upstream runs
//! kube-openapi's `validate.SchemaValidator` (`k8s.io/kube-openapi/pkg/validation/validate`:
//! `schema.go`, `type.go`, `validator.go`, `slice_validator.go`, `object_validator.go`, the
//! messages of `pkg/validation/errors/schema.go`) and turns its results into field errors
//! (`apiextensions-apiserver/pkg/apiserver/validation/validation.go`,
//! `kubeOpenAPIResultToFieldErrors`).
//!
//! Per node, in upstream's order: `type` (with `nullable`; `x-kubernetes-int-or-string` is
//! `integer,string`), `maxLength` / `minLength` / `pattern` (the first failing one),
//! `multipleOf` / `minimum` / `maximum`, array items then `minItems` / `maxItems` /
//! `uniqueItems`, `enum`, then `minProperties` / `maxProperties`, map values, properties and
//! `required`. Formats are not checked (upstream strips `int32`/`int64` and checks only a few
//! string formats). On update, a subtree equal to the old object's is not reported
//! (`CRDValidationRatcheting`, on by default since 1.30: `ratcheting.go` discards the errors
//! of values `DeepEqual` to their correlated old value; map-list items correlate by keys,
//! other list items do not).

use serde_json::Value;

use super::field_errors::SchemaError;
use super::schema::{find_by_keys, Node};

/// The schema errors of `obj` (`old` on update, for ratcheting).
pub fn validate(obj: &Value, schema: &Value, old: Option<&Value>) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    node(obj, Node::root(schema), "", old, &mut errors);
    errors
}

/// The field path of a validator path (upstream trims the `.` its required and map-value
/// paths start with at the root).
fn field(path: &str) -> String {
    path.strip_prefix('.').unwrap_or(path).to_string()
}

/// The JSON type upstream's `schemaInfoForType` reports for a decoded value.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn node(x: &Value, s: Node<'_>, path: &str, old: Option<&Value>, out: &mut Vec<SchemaError>) {
    if old == Some(x) {
        return;
    }
    let types = s.types();
    if x.is_null() {
        if !types.is_empty() && !types.contains(&"null") && !s.nullable() {
            type_error(path, &types, "null", out);
        }
        enumeration(x, s, path, out);
        return;
    }
    type_check(x, &types, path, out);
    match x {
        Value::String(text) => string(text, s, path, out),
        Value::Number(_) => number(x, s, path, out),
        Value::Array(items) => array(items, s, path, old, out),
        _ => {}
    }
    enumeration(x, s, path, out);
    if let Value::Object(map) = x {
        object(map, s, path, old, out);
    }
}

fn type_error(path: &str, types: &[&str], found: &str, out: &mut Vec<SchemaError>) {
    let message = format!(
        "{path} in body must be of type {}: {}",
        types.join(","),
        svcplane_rules::field_error::go_quote(found)
    );
    out.push(SchemaError::type_invalid(
        field(path),
        &Value::String(found.into()),
        &message,
    ));
}

/// Upstream `typeValidator`: an integral float passes as an integer, an integer as a number.
fn type_check(x: &Value, types: &[&str], path: &str, out: &mut Vec<SchemaError>) {
    if types.is_empty() {
        return;
    }
    let found = type_of(x);
    let float_int = found == "number"
        && x.as_f64().is_some_and(|f| f.fract() == 0.0)
        && types.contains(&"integer");
    let int_float = found == "integer" && types.contains(&"number");
    if !(types.contains(&found) || float_int || int_float) {
        type_error(path, types, found, out);
    }
}

/// Upstream `stringValidator`: only the first failing rule is reported.
fn string(text: &str, s: Node<'_>, path: &str, out: &mut Vec<SchemaError>) {
    let length = text.chars().count() as i64;
    let value = Value::String(text.into());
    if let Some(max) = s.int("maxLength") {
        if length > max {
            out.push(SchemaError::too_long(field(path), max));
            return;
        }
    }
    if let Some(min) = s.int("minLength") {
        if length < min {
            let message = format!("{path} in body should be at least {min} chars long");
            out.push(SchemaError::invalid(field(path), &value, &message));
            return;
        }
    }
    if let Some(pattern) = s.str("pattern").filter(|p| !p.is_empty()) {
        // An invalid pattern is rejected when the CRD is written; here it matches nothing
        // and everything alike, so it is skipped.
        if pattern_matches(pattern, text) == Some(false) {
            let message = format!("{path} in body should match '{pattern}'");
            out.push(SchemaError::invalid(field(path), &value, &message));
        }
    }
}

/// Patterns compiled at most once per process, as go-openapi's validator caches them
/// (`validate/pattern.go`'s `compileRegexp`): a CRD's few patterns are matched on every write.
/// The cache is cleared when it holds [`PATTERN_CACHE_LIMIT`] patterns (CRDs come and go).
static PATTERNS: std::sync::Mutex<Option<std::collections::HashMap<String, Option<regex::Regex>>>> =
    std::sync::Mutex::new(None);

/// Patterns the cache keeps at most.
const PATTERN_CACHE_LIMIT: usize = 1024;

/// Whether `text` matches `pattern`; `None` for a pattern that does not compile.
fn pattern_matches(pattern: &str, text: &str) -> Option<bool> {
    let compiled = {
        let mut cache = PATTERNS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let cache = cache.get_or_insert_with(Default::default);
        if !cache.contains_key(pattern) {
            if cache.len() >= PATTERN_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(pattern.to_string(), regex::Regex::new(pattern).ok());
        }
        // A `Regex` clone shares the compiled program; matching runs outside the lock.
        cache[pattern].clone()
    };
    compiled.map(|re| re.is_match(text))
}

/// A bound as the message prints it: integer data is compared with, and shows, the bound
/// truncated to an integer (upstream `MaximumNativeType` and friends).
fn bound_text(x: &Value, bound: f64) -> String {
    if x.is_i64() || x.is_u64() {
        (bound as i64).to_string()
    } else {
        super::field_errors::go_float(bound)
    }
}

/// Upstream `numberValidator`: `multipleOf`, then `minimum`, then `maximum`.
fn number(x: &Value, s: Node<'_>, path: &str, out: &mut Vec<SchemaError>) {
    let integral = x.is_i64();
    let data = x.as_f64().unwrap_or_default();
    if let Some(factor) = s.number("multipleOf").filter(|f| *f > 0.0) {
        let fails = if integral && factor.fract() == 0.0 {
            x.as_i64().unwrap_or_default() % (factor as i64) != 0
        } else {
            (data / factor).fract() != 0.0
        };
        if fails {
            let message = format!(
                "{path} in body should be a multiple of {}",
                bound_text(x, factor)
            );
            out.push(SchemaError::invalid(field(path), x, &message));
        }
    }
    let cmp = |bound: f64| -> std::cmp::Ordering {
        if integral {
            x.as_i64().unwrap_or_default().cmp(&(bound as i64))
        } else {
            data.partial_cmp(&bound)
                .unwrap_or(std::cmp::Ordering::Equal)
        }
    };
    if let Some(min) = s.number("minimum") {
        let exclusive = s.bool("exclusiveMinimum");
        let order = cmp(min);
        if order.is_lt() || (exclusive && order.is_eq()) {
            let relation = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let message = format!("{path} in body should be {relation} {}", bound_text(x, min));
            out.push(SchemaError::invalid(field(path), x, &message));
        }
    }
    if let Some(max) = s.number("maximum") {
        let exclusive = s.bool("exclusiveMaximum");
        let order = cmp(max);
        if order.is_gt() || (exclusive && order.is_eq()) {
            let relation = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            let message = format!("{path} in body should be {relation} {}", bound_text(x, max));
            out.push(SchemaError::invalid(field(path), x, &message));
        }
    }
}

/// Upstream `schemaSliceValidator`: the items, then `minItems`, `maxItems`, `uniqueItems`.
fn array(
    items: &[Value],
    s: Node<'_>,
    path: &str,
    old: Option<&Value>,
    out: &mut Vec<SchemaError>,
) {
    if let Some(item_schema) = s.items() {
        let keys = s.list_map_keys();
        let old_items = old.and_then(Value::as_array);
        for (i, item) in items.iter().enumerate() {
            // Ratcheting correlates map-list items by their keys, no other list items.
            let old_item = match (s.str("x-kubernetes-list-type"), old_items, item.as_object()) {
                (Some("map"), Some(old_items), Some(item)) if !keys.is_empty() => {
                    find_by_keys(old_items, item, &keys)
                }
                _ => None,
            };
            node(item, item_schema, &format!("{path}[{i}]"), old_item, out);
        }
    }
    let size = items.len() as i64;
    if let Some(min) = s.int("minItems") {
        if size < min {
            let message = format!("{path} in body should have at least {min} items");
            out.push(SchemaError::invalid(
                field(path),
                &Value::from(size),
                &message,
            ));
        }
    }
    if let Some(max) = s.int("maxItems") {
        if size > max {
            out.push(SchemaError::too_many(field(path), size, max));
        }
    }
    if s.bool("uniqueItems") {
        let duplicated = items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].contains(a));
        if duplicated {
            let message = format!("{path} in body shouldn't contain duplicates");
            out.push(SchemaError::invalid(
                field(path),
                &Value::String(String::new()),
                &message,
            ));
        }
    }
}

/// Upstream `basicCommonValidator`: `enum` (strings listed as they are, other values as JSON).
fn enumeration(x: &Value, s: Node<'_>, path: &str, out: &mut Vec<SchemaError>) {
    let Some(values) = s.enum_values() else {
        return;
    };
    let matches = values.iter().any(|v| {
        v == x || matches!((v.as_f64(), x.as_f64()), (Some(a), Some(b)) if a == b && !x.is_null())
    });
    if matches {
        return;
    }
    let listed: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    out.push(SchemaError::not_supported(field(path), x, &listed));
}

/// Upstream `objectValidator`: `minProperties` / `maxProperties`, the values of a map, the
/// declared properties, then `required`.
fn object(
    map: &serde_json::Map<String, Value>,
    s: Node<'_>,
    path: &str,
    old: Option<&Value>,
    out: &mut Vec<SchemaError>,
) {
    let count = map.len() as i64;
    if let Some(min) = s.int("minProperties") {
        if count < min {
            let message = format!("{path} in body should have at least {min} properties");
            out.push(SchemaError::invalid(
                field(path),
                &Value::from(count),
                &message,
            ));
        }
    }
    if let Some(max) = s.int("maxProperties") {
        if count > max {
            out.push(SchemaError::too_many(field(path), count, max));
        }
    }
    let old_child = |key: &str| old.and_then(|o| o.get(key));
    if let Some(additional) = s.additional_properties().and_then(|c| c.schema()) {
        for (key, value) in map {
            if s.property(key).is_none() {
                node(
                    value,
                    additional,
                    &format!("{path}.{key}"),
                    old_child(key),
                    out,
                );
            }
        }
    }
    for (name, property) in s.properties() {
        if let Some(value) = map.get(name) {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            node(value, property, &child, old_child(name), out);
        }
    }
    for required in s.required() {
        if !map.contains_key(required) {
            out.push(SchemaError::required(field(&format!("{path}.{required}"))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["blocks"],
            "properties": {
                "blocks": {"type": "array", "minItems": 1, "maxItems": 2,
                           "items": {"type": "string"}},
                "disabled": {"type": "boolean"},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5, "minLength": 2},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1.5},
                "target": {"x-kubernetes-int-or-string": true},
                "maybe": {"type": "string", "nullable": true},
                "tags": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
                "labels": {"type": "object", "maxProperties": 1, "minProperties": 1,
                           "additionalProperties": {"type": "string"}}}}}})
    }

    fn messages(obj: Value) -> Vec<String> {
        validate(&obj, &schema(), None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_valid_object_has_no_errors() {
        assert!(messages(
            json!({"spec": {"blocks": ["x"], "disabled": true, "mode": "a",
            "name": "abc", "port": 80, "ratio": 1.0, "target": "http", "maybe": null,
            "tags": ["a", "b"], "labels": {"k": "v"}}})
        )
        .is_empty());
        assert!(
            messages(json!({"spec": {"blocks": ["x"], "target": 8080, "port": 80.0}})).is_empty()
        );
    }

    #[test]
    fn each_rule_reports_upstreams_message() {
        assert_eq!(
            messages(json!({"spec": {}})),
            ["spec.blocks: Required value"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "disabled": "string"}})),
            ["spec.disabled: Invalid value: \"string\": spec.disabled in body must be of type boolean: \"string\""]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "mode": "foo"}})),
            ["spec.mode: Unsupported value: \"foo\": supported values: \"a\", \"b\""]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "name": "ab1"}})),
            ["spec.name: Invalid value: \"ab1\": spec.name in body should match '^[a-z]+$'"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "name": "abcdef"}})),
            ["spec.name: Too long: may not be more than 5 bytes"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "name": "a"}})),
            ["spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "port": 70000}})),
            ["spec.port: Invalid value: 70000: spec.port in body should be less than or equal to 65535"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "port": 0}})),
            ["spec.port: Invalid value: 0: spec.port in body should be greater than or equal to 1"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "ratio": 1.5}})),
            ["spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "target": true}})),
            ["spec.target: Invalid value: \"boolean\": spec.target in body must be of type integer,string: \"boolean\""]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": []}})),
            ["spec.blocks: Invalid value: 0: spec.blocks in body should have at least 1 items"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["a", "b", "c"]}})),
            ["spec.blocks: Too many: 3: must have at most 2 items"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "tags": ["a", "a"]}})),
            ["spec.tags: Invalid value: \"\": spec.tags in body shouldn't contain duplicates"]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "labels": {"a": "1", "b": 2}}})),
            [
                "spec.labels: Too many: 2: must have at most 1 items",
                "spec.labels.b: Invalid value: \"integer\": spec.labels.b in body must be of type string: \"integer\""
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": ["x"], "disabled": null}})),
            ["spec.disabled: Invalid value: \"null\": spec.disabled in body must be of type boolean: \"null\""]
        );
        assert_eq!(
            messages(json!({"spec": {"blocks": [1]}})),
            ["spec.blocks[0]: Invalid value: \"integer\": spec.blocks[0] in body must be of type string: \"integer\""]
        );
    }

    #[test]
    fn unchanged_invalid_values_ratchet_on_update() {
        let old = json!({"spec": {"blocks": ["x"], "mode": "legacy", "port": 0}});
        let new = json!({"spec": {"blocks": ["x", "y"], "mode": "legacy", "port": 0}});
        assert!(validate(&new, &schema(), Some(&old)).is_empty());
        let changed = json!({"spec": {"blocks": ["x"], "mode": "other", "port": 0}});
        let errors: Vec<String> = validate(&changed, &schema(), Some(&old))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            ["spec.mode: Unsupported value: \"other\": supported values: \"a\", \"b\""]
        );
    }
}
