//! The strategy of a built-in kind without rules of its own: its k8s-openapi type (typed and
//! strict decoding), the `required` fields of its OpenAPI schema, and upstream's common
//! `ObjectMeta` rules (`ValidateObjectMeta` / `ValidateObjectMetaUpdate` in
//! `k8s.io/apimachinery/pkg/api/validation/objectmeta.go`). Errors are a 422 naming each
//! field, as upstream's.

use serde_json::{Map, Value};
use svcplane_rules::field_error::Path;
use svcplane_rules::meta::{validate_annotations, validate_labels};
use svcplane_rules::FieldError;

use super::{verdict, NameRule, ObjectKind, Strategy, Typed};
use crate::error::ApiError;

/// Typed decoding, schema `required` fields and the common metadata rules.
#[derive(Debug)]
pub struct BuiltinSchema {
    /// The kind's k8s-openapi type.
    pub typed: Typed,
    /// Name rule (`ValidateObjectMeta`'s `nameFn`).
    pub name_rule: NameRule,
    /// Whether objects live in namespaces (`metadata.namespace` required, else forbidden).
    pub namespaced: bool,
    /// Whether the kind has a `/status` subresource: a create's status is dropped (upstream
    /// workload strategies' `PrepareForCreate` reset it) and `metadata.generation` tracks
    /// spec changes.
    pub has_status: bool,
    /// Upstream's defaulting of the kind (`SetDefaults_*`), on create and spec updates.
    pub defaults: Option<fn(&mut Value)>,
}

impl Strategy for BuiltinSchema {
    fn tracks_generation(&self) -> bool {
        self.has_status
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Vec<String> {
        if self.has_status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        self.default_fields(obj);
        Vec::new()
    }

    fn default_fields(&self, obj: &mut Value) {
        if let Some(defaults) = self.defaults {
            defaults(obj);
        }
    }

    fn name_rule(&self) -> NameRule {
        self.name_rule
    }

    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let errors = common_errors(kind, self.name_rule, self.namespaced, obj, old);
        verdict(kind, obj, &errors, Vec::new)
    }

    fn typed(&self) -> Option<Typed> {
        Some(self.typed)
    }
}

/// The rules every built-in kind gets: upstream's `ValidateObjectMeta` (or
/// `ValidateObjectMetaUpdate`) and the `required` fields of the kind's OpenAPI schema.
pub fn common_errors(
    kind: &ObjectKind<'_>,
    name_rule: NameRule,
    namespaced: bool,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let mut errors = object_meta_errors(name_rule, namespaced, obj, old);
    errors.extend(required_errors(kind, obj));
    errors
}

fn string_map(v: &Value) -> Option<std::collections::BTreeMap<String, String>> {
    v.as_object().map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    })
}

/// Upstream `ValidateObjectMeta` (create) and `ValidateObjectMetaUpdate` (update): name by
/// `name_rule`, namespace by scope, labels, annotations, finalizers; name and namespace
/// immutable.
pub(super) fn object_meta_errors(
    name_rule: NameRule,
    namespaced: bool,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let meta = &obj["metadata"];
    let path = Path::new("metadata");
    let mut errs = Vec::new();
    let name = meta["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for m in name_rule(name) {
            errs.push(FieldError::invalid(path.child("name"), name, m));
        }
    }
    let namespace = meta["namespace"].as_str().unwrap_or_default();
    if namespaced && namespace.is_empty() {
        errs.push(FieldError::required(path.child("namespace"), ""));
    } else if !namespaced && !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }
    errs.extend(validate_labels(
        string_map(&meta["labels"]).as_ref(),
        &path.child("labels"),
    ));
    errs.extend(validate_annotations(
        string_map(&meta["annotations"]).as_ref(),
        &path.child("annotations"),
    ));
    for (i, f) in meta["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = f.as_str().unwrap_or_default();
        for m in svcplane_rules::names::is_qualified_name(f) {
            errs.push(FieldError::invalid(path.child("finalizers").index(i), f, m));
        }
    }
    if let Some(old) = old {
        for field in ["name", "namespace"] {
            let new_value = meta[field].as_str().unwrap_or_default();
            if old["metadata"][field].as_str().unwrap_or_default() != new_value {
                errs.push(FieldError::invalid(
                    path.child(field),
                    new_value,
                    "field is immutable",
                ));
            }
        }
    }
    errs
}

/// The kind's OpenAPI schema: `required` properties that are absent (or null) are
/// `Required value` errors. Integer and boolean properties are left out: Go decodes them to
/// their zero value and upstream validates that value, not presence.
fn required_errors(kind: &ObjectKind<'_>, obj: &Value) -> Vec<FieldError> {
    let schemas = crate::openapi::builtin_schemas_ref(kind.group, kind.version);
    let gvk = crate::openapi::gvk_extension(kind.group, kind.version, kind.kind);
    let Some(root) = schemas
        .values()
        .find(|s| s.get("x-kubernetes-group-version-kind") == Some(&gvk))
    else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    walk(schemas, root, obj, &Path::new(""), &mut errs, 0);
    errs
}

/// Follows `$ref` (directly or as the single `allOf` entry upstream uses).
fn resolve<'a>(schemas: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    let reference = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => schemas.get(name).unwrap_or(schema),
        None => schema,
    }
}

fn walk(
    schemas: &Map<String, Value>,
    schema: &Value,
    value: &Value,
    path: &Path,
    errs: &mut Vec<FieldError>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let schema = resolve(schemas, schema);
    match value {
        Value::Object(fields) => {
            let Some(props) = schema["properties"].as_object() else {
                return;
            };
            for required in schema["required"].as_array().into_iter().flatten() {
                let Some(name) = required.as_str() else {
                    continue;
                };
                let present = fields.get(name).is_some_and(|v| !v.is_null());
                let prop = props.get(name).map(|p| resolve(schemas, p));
                let scalar_zero = prop.is_some_and(|p| {
                    matches!(p["type"].as_str(), Some("integer" | "boolean" | "number"))
                });
                if !present && !scalar_zero {
                    errs.push(FieldError::required(path.child(name), ""));
                }
            }
            for (name, v) in fields {
                if let Some(prop) = props.get(name) {
                    walk(schemas, prop, v, &path.child(name), errs, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(schemas, item_schema, v, &path.index(i), errs, depth + 1);
                }
            }
        }
        _ => {}
    }
}
