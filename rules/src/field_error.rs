//! Field errors mirroring upstream `k8s.io/apimachinery/pkg/util/validation/field`.
//!
//! The `Display` output matches upstream `(*field.Error).Error()` byte for byte for the
//! value shapes svcplane produces (strings, integers, string slices, pre-rendered Go
//! structs), so users see the same message from `svcplane validate`, the webhook and the
//! embedded API server as from a real kube-apiserver.

use std::fmt;

/// The kind of a field error (upstream `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `field.Required`: "Required value".
    Required,
    /// `field.Invalid`: "Invalid value".
    Invalid,
    /// `field.NotSupported`: "Unsupported value".
    NotSupported,
    /// `field.Duplicate`: "Duplicate value".
    Duplicate,
    /// `field.Forbidden`: "Forbidden".
    Forbidden,
    /// `field.TooLong`: "Too long".
    TooLong,
    /// `field.TooMany`: "Too many".
    TooMany,
    /// `field.InternalError`: "Internal error".
    Internal,
}

impl ErrorKind {
    /// The human string upstream prints (`ErrorType.String()`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::Internal => "Internal error",
        }
    }

    /// The `metav1.StatusCause.reason` (upstream `CauseType(err.Type)`).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// Whether upstream prints the bad value for this kind (`ErrorBody`).
    fn shows_value(self) -> bool {
        matches!(
            self,
            ErrorKind::Invalid
                | ErrorKind::NotSupported
                | ErrorKind::Duplicate
                | ErrorKind::TooMany
        )
    }
}

/// A rejected value, rendered like Go's `%v`/`%q`/`%#v` in upstream `ErrorBody`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    /// A string (Go `%q`): `"foo"`.
    Str(String),
    /// An integer (Go `%v`): `80`.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A slice of strings of the named Go type, rendered `%#v`: `[]string{"a", "b"}`.
    StrList {
        /// Go type name, e.g. `[]string` or `[]core.IPFamily`.
        go_type: &'static str,
        /// The items.
        items: Vec<String>,
    },
    /// A nil pointer or nil interface: `null`.
    Null,
    /// A value pre-rendered in Go syntax (used for struct keys such as `core.ServicePort{...}`).
    Raw(String),
}

impl BadValue {
    /// A `[]string` value.
    pub fn strings(items: &[String]) -> Self {
        BadValue::StrList {
            go_type: "[]string",
            items: items.to_vec(),
        }
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => f.write_str(&go_quote(s)),
            BadValue::Int(i) => write!(f, "{i}"),
            BadValue::Bool(b) => write!(f, "{b}"),
            BadValue::StrList { go_type, items } => {
                // Go prints a nil slice as `[]string(nil)`; svcplane only reports non-nil ones
                // unless empty, where `[]string{}` and `[]string(nil)` both occur upstream.
                if items.is_empty() {
                    return write!(f, "{go_type}(nil)");
                }
                write!(f, "{go_type}{{")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&go_quote(item))?;
                }
                f.write_str("}")
            }
            BadValue::Null => f.write_str("null"),
            BadValue::Raw(s) => f.write_str(s),
        }
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        BadValue::Str(s.to_string())
    }
}
impl From<String> for BadValue {
    fn from(s: String) -> Self {
        BadValue::Str(s)
    }
}
impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        BadValue::Str(s.clone())
    }
}
impl From<i32> for BadValue {
    fn from(i: i32) -> Self {
        BadValue::Int(i64::from(i))
    }
}
impl From<i64> for BadValue {
    fn from(i: i64) -> Self {
        BadValue::Int(i)
    }
}
impl From<usize> for BadValue {
    fn from(i: usize) -> Self {
        BadValue::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

/// Quote a string the way Go's `strconv.Quote` does for the characters that matter here.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One validation error on one field (upstream `*field.Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `spec.ports[1].name`.
    pub field: String,
    /// What is wrong.
    pub kind: ErrorKind,
    /// The offending value, when upstream reports one.
    pub bad_value: Option<BadValue>,
    /// Extra detail, e.g. `must be between 1 and 65535, inclusive`.
    pub detail: String,
}

impl FieldError {
    fn new(
        kind: ErrorKind,
        field: impl Into<String>,
        bad_value: Option<BadValue>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind,
            bad_value,
            detail: detail.into(),
        }
    }

    /// `field.Required(path, detail)`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Required, field, None, detail)
    }

    /// `field.Invalid(path, value, detail)`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// `field.NotSupported(path, value, validValues)`: the detail lists the quoted values.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<BadValue>,
        valid: &[&str],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorKind::NotSupported, field, Some(value.into()), detail)
    }

    /// `field.Duplicate(path, value)`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorKind::Duplicate, field, Some(value.into()), "")
    }

    /// `field.Forbidden(path, detail)`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, field, None, detail)
    }

    /// `field.TooLong(path, value, max)` (value omitted, as upstream does).
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(
            ErrorKind::TooLong,
            field,
            None,
            format!("may not be more than {max} {unit}"),
        )
    }

    /// `field.TooMany(path, actual, max)`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            ErrorKind::TooMany,
            field,
            Some(BadValue::from(actual)),
            format!("must have at most {max} {unit}"),
        )
    }

    /// `field.InternalError(path, err)`.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, field, None, detail)
    }

    /// The message without the field (upstream `ErrorBody()`), used as `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = self.kind.as_str().to_string();
        if self.kind.shows_value() {
            s.push_str(": ");
            match &self.bad_value {
                Some(v) => s.push_str(&v.to_string()),
                None => s.push_str("null"),
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// The outcome of validating one object: field errors (reject when non-empty) and warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Field errors; the object is rejected when this is non-empty.
    pub errors: Vec<FieldError>,
    /// Warnings returned to the client (`Warning` headers / AdmissionResponse `warnings`).
    pub warnings: Vec<String>,
}

impl Verdict {
    /// Whether the object is allowed.
    pub fn allowed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Upstream's 422 `Status.message` (`errors.NewInvalid`): `Service "foo" is invalid: ...`.
///
/// `kind` is the qualified kind as upstream prints it (`Service`,
/// `EndpointSlice.discovery.k8s.io`). Several errors are joined as `[e1, e2]` after removing
/// duplicate messages, like `utilerrors.NewAggregate(...).Error()`.
pub fn invalid_message(kind: &str, name: &str, errs: &[FieldError]) -> String {
    let mut seen = std::collections::HashSet::new();
    let msgs: Vec<String> = errs
        .iter()
        .map(ToString::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    let quoted = go_quote(name);
    match msgs.len() {
        0 => format!("{kind} {quoted} is invalid"),
        1 => format!("{kind} {quoted} is invalid: {}", msgs[0]),
        _ => format!("{kind} {quoted} is invalid: [{}]", msgs.join(", ")),
    }
}

/// A field path builder (upstream `field.Path`): `spec.ports[0].name`, `metadata.annotations[key]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// A root path.
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    /// A child field.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return Path(name.to_string());
        }
        Path(format!("{}.{name}", self.0))
    }

    /// A list index.
    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// A map key.
    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }

    /// The rendered path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}
impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_renders_like_upstream() {
        let e = FieldError::required("spec.ports[1].name", "");
        assert_eq!(e.to_string(), "spec.ports[1].name: Required value");
        assert_eq!(e.kind.reason(), "FieldValueRequired");
    }

    #[test]
    fn invalid_int_renders_bare() {
        let e = FieldError::invalid(
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
            0,
            "must be greater than 0 and less than 86400",
        );
        assert_eq!(
            e.to_string(),
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"
        );
    }

    #[test]
    fn not_supported_lists_quoted_values() {
        let e = FieldError::not_supported(
            "spec.type",
            "Foo",
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        );
        assert_eq!(
            e.to_string(),
            r#"spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#
        );
    }

    #[test]
    fn string_slices_render_like_go_sharp_v() {
        let e = FieldError::invalid(
            "spec.clusterIPs",
            BadValue::strings(&["10.0.0.5".into(), "10.0.0.6".into()]),
            "x",
        );
        assert_eq!(
            e.to_string(),
            r#"spec.clusterIPs: Invalid value: []string{"10.0.0.5", "10.0.0.6"}: x"#
        );
    }

    #[test]
    fn forbidden_and_too_many_bodies() {
        assert_eq!(
            FieldError::forbidden("spec.x", "may not").body(),
            "Forbidden: may not"
        );
        assert_eq!(
            FieldError::too_many("endpoints", 1001, 1000).body(),
            "Too many: 1001: must have at most 1000 items"
        );
        assert_eq!(
            FieldError::too_long("metadata.annotations", 262144).body(),
            "Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn invalid_message_one_and_many() {
        let a = FieldError::required("spec.ports", "");
        let b = FieldError::required("spec.type", "");
        assert_eq!(
            invalid_message("Service", "foo", std::slice::from_ref(&a)),
            r#"Service "foo" is invalid: spec.ports: Required value"#
        );
        assert_eq!(
            invalid_message("Service", "foo", &[a.clone(), b, a]),
            r#"Service "foo" is invalid: [spec.ports: Required value, spec.type: Required value]"#
        );
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }
}
