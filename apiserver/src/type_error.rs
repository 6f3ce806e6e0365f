//! A request body value of the wrong JSON type, reported as kube-apiserver reports it.
//!
//! Upstream decodes bodies with Go's `encoding/json` (through `sigs.k8s.io/json`), whose
//! `UnmarshalTypeError` names the innermost Go struct, the field's path from the root (JSON
//! names, no list indices, no map keys) and the Go type, e.g. for `spec.ports[0].name: 1`:
//!
//! `json: cannot unmarshal number into Go struct field ServicePort.spec.ports.name of type string`
//!
//! The decoder here is serde (k8s-openapi types), so the position comes from
//! `serde_path_to_error` and the Go struct and type names from the built-in OpenAPI schemas
//! (which carry the Go type names, `io.k8s.api.core.v1.ServicePort`). Errors that are not a
//! type mismatch, or a path the schema cannot follow, are reported as `path: serde message`, so
//! the field is always named.
#![warn(missing_docs)]

use serde_json::{Map, Value};

/// Schema references point here (`#/components/schemas/NAME`).
const REF_PREFIX: &str = "#/components/schemas/";

/// The message for a failed typed decode of `obj` (a `group`/`version` `kind`): upstream's
/// `json: cannot unmarshal ...` for a type mismatch, otherwise the path and serde's message.
pub fn describe(
    group: &str,
    version: &str,
    kind: &str,
    obj: &Value,
    path: &serde_path_to_error::Path,
    error: &serde_json::Error,
) -> String {
    let message = error.to_string();
    let mismatch = message.starts_with("invalid type:")
        || message.starts_with("invalid value: integer")
        || message.starts_with("invalid value: floating point");
    if mismatch {
        let schemas = crate::openapi::builtin_schemas_ref(group, version);
        if let Some(go) = go_unmarshal_error(schemas, group, version, kind, obj, path) {
            return go;
        }
    }
    let at = dotted(path);
    if at.is_empty() {
        message
    } else {
        format!("{at}: {message}")
    }
}

/// Upstream's field notation: `spec.ports[0].name`.
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A schema and, when it came through a `$ref`, the component's name.
struct Resolved<'a> {
    schema: &'a Value,
    name: Option<&'a str>,
}

/// Follows `$ref` (directly or as schemars' single-element `allOf`).
fn resolve<'a>(schemas: &'a Map<String, Value>, schema: &'a Value) -> Resolved<'a> {
    let reference = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match reference.and_then(|r| r.strip_prefix(REF_PREFIX)) {
        Some(name) => match schemas.get_key_value(name) {
            Some((name, target)) => Resolved {
                schema: target,
                name: Some(name.as_str()),
            },
            None => Resolved { schema, name: None },
        },
        None => Resolved { schema, name: None },
    }
}

/// The component of a built-in kind (the one carrying its group-version-kind).
fn kind_schema<'a>(
    schemas: &'a Map<String, Value>,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<(&'a str, &'a Value)> {
    schemas.iter().find_map(|(name, schema)| {
        let matches = schema["x-kubernetes-group-version-kind"]
            .as_array()?
            .iter()
            .any(|g| g["group"] == group && g["version"] == version && g["kind"] == kind);
        matches.then_some((name.as_str(), schema))
    })
}

/// The last dotted segment of a component name: the Go type name (`ServicePort`).
fn go_name(component: &str) -> &str {
    component.rsplit('.').next().unwrap_or(component)
}

/// The Go package-qualified type a component decodes into (`v1.ServicePort`,
/// `intstr.IntOrString`), as Go's `reflect.Type.String()` prints it.
fn go_qualified(component: &str) -> String {
    let mut parts = component.rsplit('.');
    let name = parts.next().unwrap_or(component);
    match parts.next() {
        Some(package) => format!("{package}.{name}"),
        None => name.to_string(),
    }
}

/// How upstream's decoder names the Go type of a field with this schema. Types with their own
/// `UnmarshalJSON` report what they decode internally: `IntOrString` an `int32` (for anything
/// but a string), `Time`/`MicroTime` a `string`.
fn go_type(schemas: &Map<String, Value>, schema: &Value) -> Option<String> {
    let resolved = resolve(schemas, schema);
    if let Some(name) = resolved.name {
        match go_name(name) {
            "IntOrString" => return Some("int32".into()),
            "Time" | "MicroTime" => return Some("string".into()),
            _ => {}
        }
        if resolved.schema["properties"].is_object() {
            return Some(go_qualified(name));
        }
    }
    let schema = resolved.schema;
    if schema["format"] == "int-or-string" {
        return Some("int32".into());
    }
    Some(match schema["type"].as_str()? {
        "string" if schema["format"] == "byte" => "[]uint8".into(),
        "string" => "string".into(),
        "integer" => match schema["format"].as_str() {
            Some("int32") => "int32".into(),
            Some("int64") => "int64".into(),
            _ => "int".into(),
        },
        "number" => "float64".into(),
        "boolean" => "bool".into(),
        "array" => format!("[]{}", go_type(schemas, &schema["items"])?),
        "object" if schema["additionalProperties"].is_object() => {
            format!(
                "map[string]{}",
                go_type(schemas, &schema["additionalProperties"])?
            )
        }
        "object" => "map[string]interface {}".into(),
        _ => return None,
    })
}

/// How Go's decoder describes the JSON value it could not store (`UnmarshalTypeError.Value`):
/// the JSON kind, plus the literal for a number a numeric Go type cannot hold.
fn go_value(value: &Value, target: &str) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
        Value::Number(_) => {
            let numeric = target.starts_with("int") || target.starts_with("float");
            if numeric {
                "number "
            } else {
                "number"
            }
        }
    }
}

/// `json: cannot unmarshal VALUE into Go struct field STRUCT.PATH of type TYPE`, or `None`
/// when the schema cannot follow the path.
fn go_unmarshal_error(
    schemas: &Map<String, Value>,
    group: &str,
    version: &str,
    kind: &str,
    obj: &Value,
    path: &serde_path_to_error::Path,
) -> Option<String> {
    use serde_path_to_error::Segment;
    let (kind_name, mut schema) = kind_schema(schemas, group, version, kind)?;
    let mut current_struct = go_name(kind_name);
    let mut field_struct = None;
    let mut fields: Vec<&str> = Vec::new();
    let mut value = obj;
    // The component the current schema is (for struct names of nested fields).
    let mut current_name = Some(kind_name);
    for seg in path.iter() {
        let here = resolve(schemas, schema);
        if let Some(name) = here.name.or(current_name) {
            current_struct = go_name(name);
        }
        match seg {
            Segment::Map { key } => {
                value = value.get(key)?;
                if let Some(prop) = here.schema["properties"].get(key) {
                    // A struct field: Go records the struct and pushes the field name.
                    field_struct = Some(current_struct);
                    fields.push(key);
                    schema = prop;
                } else if here.schema["additionalProperties"].is_object() {
                    // A map value: Go pushes nothing.
                    schema = &here.schema["additionalProperties"];
                } else {
                    return None;
                }
            }
            Segment::Seq { index } => {
                value = value.get(*index)?;
                schema = &here.schema["items"];
                if schema.is_null() {
                    return None;
                }
            }
            Segment::Enum { .. } | Segment::Unknown => return None,
        }
        current_name = resolve(schemas, schema).name;
    }
    let target = go_type(schemas, schema)?;
    let mut what = go_value(value, &target).to_string();
    if what == "number " {
        what.push_str(&value.to_string());
    }
    Some(match field_struct {
        Some(s) => format!(
            "json: cannot unmarshal {what} into Go struct field {s}.{} of type {target}",
            fields.join(".")
        ),
        None => format!("json: cannot unmarshal {what} into Go value of type {target}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Decodes `obj` as a Service and describes the failure.
    fn service_error(obj: Value) -> String {
        let err = serde_path_to_error::deserialize::<_, k8s_openapi::api::core::v1::Service>(&obj)
            .expect_err("a type error");
        describe("", "v1", "Service", &obj, err.path(), err.inner())
    }

    fn svc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec})
    }

    #[test]
    fn type_mismatches_read_like_go_encoding_json() {
        let cases = [
            (
                svc(json!({"ports": [{"name": 1, "port": 80}]})),
                "json: cannot unmarshal number into Go struct field ServicePort.spec.ports.name of type string",
            ),
            (
                svc(json!({"ports": [{"port": 99999999999_i64}]})),
                "json: cannot unmarshal number 99999999999 into Go struct field ServicePort.spec.ports.port of type int32",
            ),
            (
                svc(json!({"ports": [{"port": 1.5}]})),
                "json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.port of type int32",
            ),
            (
                svc(json!({"ports": [{"port": "80"}]})),
                "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32",
            ),
            (
                svc(json!({"ports": [{"port": 80, "targetPort": true}]})),
                "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32",
            ),
            (
                svc(json!({"ports": {"port": 80}})),
                "json: cannot unmarshal object into Go struct field ServiceSpec.spec.ports of type []v1.ServicePort",
            ),
            (
                svc(json!({"selector": {"app": 1}})),
                "json: cannot unmarshal number into Go struct field ServiceSpec.spec.selector of type string",
            ),
            (
                svc(json!({"selector": ["app"]})),
                "json: cannot unmarshal array into Go struct field ServiceSpec.spec.selector of type map[string]string",
            ),
            (
                svc(json!({"externalIPs": [1]})),
                "json: cannot unmarshal number into Go struct field ServiceSpec.spec.externalIPs of type string",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"a": 1}}}),
                "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "creationTimestamp": 5}}),
                "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Service", "metadata": "s"}),
                "json: cannot unmarshal string into Go struct field Service.metadata of type v1.ObjectMeta",
            ),
            (
                svc(json!({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": "x"}}})),
                "json: cannot unmarshal string into Go struct field ClientIPConfig.spec.sessionAffinityConfig.clientIP.timeoutSeconds of type int32",
            ),
        ];
        for (obj, expected) in cases {
            assert_eq!(service_error(obj.clone()), expected, "{obj}");
        }
    }

    #[test]
    fn other_decode_errors_still_name_the_field() {
        let obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "!!!"}});
        let err = serde_path_to_error::deserialize::<_, k8s_openapi::api::core::v1::Secret>(&obj)
            .expect_err("bad base64");
        let msg = describe("", "v1", "Secret", &obj, err.path(), err.inner());
        assert!(msg.starts_with("data.a: "), "{msg}");
    }
}
