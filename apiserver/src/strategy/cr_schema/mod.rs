//! Custom resources against their version's structural schema, as kube-apiserver's
//! apiextensions-apiserver treats them: on every write the object is pruned of undeclared
//! fields (those are the request's unknown fields for `fieldValidation`), non-nullable nulls
//! are dropped, `default`s are applied, and the result is validated against the
//! `openAPIV3Schema` (422 naming each field). Upstream's order is the decoder's
//! (`customresource_handler.go`, `unstructuredSchemaCoercer.apply`: prune, drop nulls, coerce
//! `ObjectMeta`; then `unstructuredDefaulter`), then the strategy's `Validate`
//! (`pkg/registry/customresource/strategy.go`: `ObjectMeta`, the schema, list types).
//!
//! One job per module: [`prune`], [`defaults`], [`validate`], [`list_type`]; the schema view
//! is [`schema`], the error wording [`field_errors`].

mod defaults;
mod field_errors;
mod list_type;
mod prune;
mod schema;
mod validate;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

pub use field_errors::SchemaError;

use crate::error::{ApiError, Cause};
use crate::kinds::Typed;

use super::ObjectKind;

/// Whether a version has a schema to enforce (upstream requires one for `apiextensions.k8s.io/v1`;
/// without it nothing is pruned, defaulted or validated).
fn has_schema(schema: &Value) -> bool {
    schema.is_object()
}

/// The fields of `obj` its schema does not declare, as upstream reports them: the pruned
/// paths, sorted, then those of `metadata` that `ObjectMeta` does not declare.
pub fn unknown_fields(obj: &Value, schema: &Value) -> Vec<String> {
    let mut unknown = if has_schema(schema) {
        prune::unknown_paths(obj, schema)
    } else {
        Vec::new()
    };
    unknown.extend(unknown_metadata(obj));
    unknown
}

/// Removes what [`unknown_fields`] reports.
pub fn drop_unknown_fields(obj: &mut Value, schema: &Value) {
    if has_schema(schema) {
        prune::prune(obj, schema);
    }
    if let Some(meta) = obj.get_mut("metadata").filter(|m| m.is_object()) {
        Typed::of::<ObjectMeta>().drop_unknown_fields(meta);
    }
}

/// `metadata` fields `ObjectMeta` does not declare (`metadata.foo`; upstream
/// `objectmeta.GetObjectMetaWithOptions` with `ReturnUnknownFieldPaths`). A metadata that
/// does not decode reports nothing here; validation answers for it.
fn unknown_metadata(obj: &Value) -> Vec<String> {
    let Some(meta) = obj.get("metadata").filter(|m| m.is_object()) else {
        return Vec::new();
    };
    let mut paths = Typed::of::<ObjectMeta>()
        .unknown_paths(meta)
        .unwrap_or_default();
    paths.sort();
    paths.into_iter().map(|p| format!("metadata.{p}")).collect()
}

/// What a decoded write goes through before validation: pruning, dropping non-nullable
/// nulls without a default, defaulting, and pruning again (a default cannot bring back an
/// undeclared field).
pub fn coerce(obj: &mut Value, schema: &Value) {
    if !has_schema(schema) {
        return;
    }
    prune::prune(obj, schema);
    prune::prune_non_nullable_nulls(obj, Some(schema::Node::root(schema)));
    defaults::apply(obj, schema::Node::root(schema));
    prune::prune(obj, schema);
}

/// The schema errors of `obj`: the `openAPIV3Schema` (ratcheted against `old` on update) and
/// the list types (on update only when the old object had none, as upstream).
pub fn errors(obj: &Value, schema: &Value, old: Option<&Value>) -> Vec<SchemaError> {
    if !has_schema(schema) {
        return Vec::new();
    }
    let mut errors = validate::validate(obj, schema, old);
    if old.is_none_or(|old| list_type::validate(old, schema).is_empty()) {
        errors.extend(list_type::validate(obj, schema));
    }
    errors
}

/// Upstream's `errors.NewInvalid(kind.GroupKind(), name, errs)`: 422 `Invalid`, the message
/// `Kind.group "name" is invalid: ...` (repeated messages once, several in brackets), one
/// cause per error.
pub fn invalid(kind: &ObjectKind<'_>, name: &str, errors: &[SchemaError]) -> ApiError {
    let qualified = if kind.group.is_empty() {
        kind.kind.to_string()
    } else {
        format!("{}.{}", kind.kind, kind.group)
    };
    let mut seen = std::collections::HashSet::new();
    let messages: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    let quoted = svcplane_rules::field_error::go_quote(name);
    let message = match messages.len() {
        0 => format!("{qualified} {quoted} is invalid"),
        1 => format!("{qualified} {quoted} is invalid: {}", messages[0]),
        _ => format!("{qualified} {quoted} is invalid: [{}]", messages.join(", ")),
    };
    let causes = errors
        .iter()
        .map(|e| Cause {
            reason: e.reason.into(),
            message: e.body.clone(),
            field: e.field.clone(),
        })
        .collect();
    ApiError::invalid(kind.group, kind.kind, name, message, causes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["size"],
            "properties": {"size": {"type": "integer", "default": 1, "maximum": 3},
                           "mode": {"type": "string", "default": "a"}}}}})
    }

    #[test]
    fn coercion_prunes_drops_nulls_and_defaults() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K",
            "metadata": {"name": "n"}, "spec": {"mode": null, "foo": 1}, "bar": 2});
        coerce(&mut obj, &schema());
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                   "spec": {"size": 1, "mode": "a"}})
        );
    }

    #[test]
    fn unknown_fields_list_pruned_paths_then_metadata() {
        let obj = json!({"metadata": {"name": "n", "zz": 1}, "spec": {"foo": 1}, "bar": 2});
        assert_eq!(
            unknown_fields(&obj, &schema()),
            ["bar", "spec.foo", "metadata.zz"]
        );
        let mut obj = obj;
        drop_unknown_fields(&mut obj, &schema());
        assert_eq!(obj, json!({"metadata": {"name": "n"}, "spec": {}}));
    }

    #[test]
    fn without_a_schema_nothing_but_metadata_is_checked() {
        let obj = json!({"spec": {"foo": 1}});
        assert!(unknown_fields(&obj, &Value::Null).is_empty());
        assert!(errors(&obj, &Value::Null, None).is_empty());
    }

    #[test]
    fn invalid_is_a_422_naming_the_qualified_kind_and_each_field() {
        let kind = ObjectKind {
            group: "svcplane.io",
            version: "v1alpha1",
            kind: "LoadBalancerIPPool",
        };
        let errs = errors(&json!({"spec": {"size": 5}}), &schema(), None);
        let err = invalid(&kind, "x", &errs);
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "LoadBalancerIPPool.svcplane.io \"x\" is invalid: spec.size: Invalid value: 5: spec.size in body should be less than or equal to 3"
        );
        assert_eq!(err.details.causes[0].field, "spec.size");
        assert_eq!(err.details.causes[0].reason, "FieldValueInvalid");
    }
}
