//! Field errors as upstream's apimachinery `field.Error` renders them
//! (`staging/src/k8s.io/apimachinery/pkg/util/validation/field/errors.go`, v0.32:
//! `ErrorBody`, `TypeInvalid`, `NotSupported`, `TooLong`, `TooMany`, `Duplicate`), with
//! values printed as Go prints the `interface{}` values of an unstructured object.

use serde_json::Value;
use svcplane_rules::field_error::go_quote;
use svcplane_rules::FieldError;

/// One error of a custom resource's validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// The field path (`spec.blocks[0].cidr`).
    pub field: String,
    /// The `StatusCause.reason` (`FieldValueInvalid`, `FieldValueTypeInvalid`, ...).
    pub reason: &'static str,
    /// The message without the field (upstream `ErrorBody()`).
    pub body: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body)
    }
}

impl From<&FieldError> for SchemaError {
    fn from(e: &FieldError) -> Self {
        SchemaError {
            field: e.field.clone(),
            reason: e.kind.reason(),
            body: e.body(),
        }
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

impl SchemaError {
    /// `field.Required(path, "")`.
    pub fn required(field: String) -> Self {
        SchemaError {
            field,
            reason: "FieldValueRequired",
            body: "Required value".into(),
        }
    }

    /// `field.Invalid(path, value, detail)`.
    pub fn invalid(field: String, value: &Value, detail: &str) -> Self {
        SchemaError {
            field,
            reason: "FieldValueInvalid",
            body: with_detail(format!("Invalid value: {}", go_value(value)), detail),
        }
    }

    /// `field.TypeInvalid(path, value, detail)`: printed as "Invalid value".
    pub fn type_invalid(field: String, value: &Value, detail: &str) -> Self {
        SchemaError {
            field,
            reason: "FieldValueTypeInvalid",
            body: with_detail(format!("Invalid value: {}", go_value(value)), detail),
        }
    }

    /// `field.NotSupported(path, value, valid)`.
    pub fn not_supported(field: String, value: &Value, valid: &[String]) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        SchemaError {
            field,
            reason: "FieldValueNotSupported",
            body: with_detail(format!("Unsupported value: {}", go_value(value)), &detail),
        }
    }

    /// `field.TooLong(path, _, max)` (the value is omitted).
    pub fn too_long(field: String, max: i64) -> Self {
        let detail = if max >= 0 {
            format!("may not be more than {max} bytes")
        } else {
            "value is too long".into()
        };
        SchemaError {
            field,
            reason: "FieldValueTooLong",
            body: format!("Too long: {detail}"),
        }
    }

    /// `field.TooMany(path, actual, max)`.
    pub fn too_many(field: String, actual: i64, max: i64) -> Self {
        let detail = if max >= 0 {
            format!("must have at most {max} items")
        } else {
            "has too many items".into()
        };
        SchemaError {
            field,
            reason: "FieldValueTooMany",
            body: format!("Too many: {actual}: {detail}"),
        }
    }

    /// `field.Duplicate(path, value)`.
    pub fn duplicate(field: String, value: &Value) -> Self {
        SchemaError {
            field,
            reason: "FieldValueDuplicate",
            body: format!("Duplicate value: {}", go_value(value)),
        }
    }
}

/// A value as `ErrorBody` prints an unstructured `interface{}`: strings `%q`, numbers and
/// booleans `%v`, `null`, and maps and slices `%#v`.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => go_sharp(v),
        other => go_scalar(other),
    }
}

fn go_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => match n.as_u64() {
                Some(u) => u.to_string(),
                None => go_float(n.as_f64().unwrap_or_default()),
            },
        },
        _ => go_sharp(v),
    }
}

/// Go's `%#v` of an unstructured map or slice.
fn go_sharp(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", go_quote(k), go_sharp(&map[k])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Null => "interface {}(nil)".into(),
        other => go_scalar(other),
    }
}

/// Go's `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, the shortest digits, in
/// exponent form when the exponent is below -4 or at least 6 (Go's `ftoa.go`: `eprec = 6`
/// for the shortest precision).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        // Rust's `{:e}` is `1e6`; Go writes `1e+06` (at least two exponent digits).
        let s = format!("{f:e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or_default();
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", e.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_read_like_upstreams() {
        assert_eq!(
            SchemaError::type_invalid(
                "spec.disabled".into(),
                &json!("string"),
                "spec.disabled in body must be of type boolean: \"string\""
            )
            .to_string(),
            "spec.disabled: Invalid value: \"string\": spec.disabled in body must be of type boolean: \"string\""
        );
        assert_eq!(
            SchemaError::not_supported("spec.x".into(), &json!("foo"), &["a".into(), "b".into()])
                .to_string(),
            "spec.x: Unsupported value: \"foo\": supported values: \"a\", \"b\""
        );
        assert_eq!(
            SchemaError::too_long("spec.x".into(), 5).to_string(),
            "spec.x: Too long: may not be more than 5 bytes"
        );
        assert_eq!(
            SchemaError::too_many("spec.x".into(), 3, 2).to_string(),
            "spec.x: Too many: 3: must have at most 2 items"
        );
        assert_eq!(
            SchemaError::required("spec.x".into()).to_string(),
            "spec.x: Required value"
        );
    }

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(go_value(&json!(1.5)), "1.5");
        assert_eq!(go_value(&json!(7)), "7");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(
            go_value(&json!({"name": "a", "port": 1})),
            "map[string]interface {}{\"name\":\"a\", \"port\":1}"
        );
    }
}
