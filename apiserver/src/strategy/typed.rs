//! Typed decoding in the write rules: the 400 upstream answers when a built-in object does
//! not decode into its type ([`crate::kinds::Typed`] decodes, [`crate::type_error`] words the
//! error), and typed mutation and decoding for the strategies' own rules.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use super::ObjectKind;
use crate::error::ApiError;
use crate::kinds::Typed;

/// The fields of `obj` the type does not declare, in upstream's notation
/// (`spec.ports[0].foo`) and document order; a value of the wrong JSON type is a 400.
pub fn unknown_fields(
    typed: Typed,
    kind: &ObjectKind<'_>,
    obj: &Value,
) -> Result<Vec<String>, ApiError> {
    typed.unknown_paths(obj).map_err(|e| {
        let why = crate::type_error::describe(
            kind.group,
            kind.version,
            kind.kind,
            obj,
            &e.path,
            &e.error,
        );
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {why}",
            kind.kind, kind.version, kind.kind
        ))
    })
}

/// Runs a typed mutation on a JSON object; objects that do not decode are left unchanged
/// (their type errors are reported by the unknown-field check or validation).
pub fn mutate<T: DeserializeOwned + Serialize, R: Default>(
    obj: &mut Value,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    let Ok(mut typed) = T::deserialize(&*obj) else {
        return R::default();
    };
    let out = f(&mut typed);
    if let Ok(v) = serde_json::to_value(&typed) {
        *obj = v;
    }
    out
}

/// Decodes a typed object for validation; a 400 as upstream when it does not decode.
pub fn decode<T: DeserializeOwned>(kind: &ObjectKind<'_>, obj: &Value) -> Result<T, ApiError> {
    T::deserialize(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {e}",
            kind.kind, kind.version, kind.kind
        ))
    })
}
