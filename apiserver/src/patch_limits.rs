//! Bounds on what a JSON patch (RFC 6902) may do, as kube-apiserver bounds it
//! (`k8s.io/apiserver/pkg/endpoints/handlers/patch.go`): at most 10,000 operations (413
//! RequestEntityTooLarge, "The allowed maximum operations in a JSON patch is 10000, got N"),
//! and `copy` operations may together add at most 3 MiB to the document (upstream sets
//! json-patch's `AccumulatedCopySizeLimit` from `JSONPatchMaxCopyBytes`; the error is
//! "Unable to complete the copy, the accumulated size increase of copy is N, exceeding the limit
//! 3145728" with 422). A few bytes of `copy` could otherwise double the document with each
//! operation. Operations are also kept from nesting the document deeper than
//! [`crate::nesting::MAX_DEPTH`], checked before each one applies.

use json_patch::PatchOperation;
use serde_json::Value;

use crate::nesting::{depth_capped, MAX_DEPTH};

/// Most operations one JSON patch may have (upstream `maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;
/// Most bytes `copy` operations may add to a document (upstream `JSONPatchMaxCopyBytes`).
pub const MAX_COPY_BYTES: usize = 3 * 1024 * 1024;

/// Why a JSON patch was refused.
#[derive(Debug, thiserror::Error)]
pub enum JsonPatchError {
    /// More than [`MAX_JSON_PATCH_OPERATIONS`] operations.
    #[error(
        "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {0}"
    )]
    TooManyOperations(usize),
    /// `copy` operations would add more than [`MAX_COPY_BYTES`].
    #[error("Unable to complete the copy, the accumulated size increase of copy is {0}, exceeding the limit {MAX_COPY_BYTES}")]
    CopyTooLarge(usize),
    /// An operation would nest the document too deeply.
    #[error("operation '/{operation}' failed at path '{path}': the result would nest more than {MAX_DEPTH} levels")]
    TooDeep {
        /// Index of the operation.
        operation: usize,
        /// Its path.
        path: String,
    },
    /// An operation failed (bad path, failed test).
    #[error("operation '/{operation}' failed at path '{path}': {reason}")]
    Failed {
        /// Index of the operation.
        operation: usize,
        /// Its path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Applies `ops` to a copy of `current`, within the limits above.
pub fn apply_json_patch(current: &Value, ops: &[PatchOperation]) -> Result<Value, JsonPatchError> {
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(JsonPatchError::TooManyOperations(ops.len()));
    }
    let mut doc = current.clone();
    let mut copied = 0usize;
    for (i, op) in ops.iter().enumerate() {
        let path = op.path();
        // The value the operation puts at `path`, if it adds one.
        let added = match op {
            PatchOperation::Add(a) => Some(&a.value),
            PatchOperation::Replace(r) => Some(&r.value),
            PatchOperation::Move(m) => doc.pointer(m.from.as_str()),
            PatchOperation::Copy(c) => {
                let source = doc.pointer(c.from.as_str());
                if let Some(source) = source {
                    let remaining = MAX_COPY_BYTES.saturating_sub(copied);
                    match serialized_len_within(source, remaining) {
                        Some(len) => copied += len,
                        None => {
                            let len =
                                serialized_len_within(source, usize::MAX).unwrap_or(usize::MAX);
                            return Err(JsonPatchError::CopyTooLarge(copied.saturating_add(len)));
                        }
                    }
                }
                source
            }
            PatchOperation::Remove(_) | PatchOperation::Test(_) => None,
        };
        if let Some(value) = added {
            if path.count() + depth_capped(value, MAX_DEPTH) > MAX_DEPTH {
                return Err(JsonPatchError::TooDeep {
                    operation: i,
                    path: path.to_string(),
                });
            }
        }
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            JsonPatchError::Failed {
                operation: i,
                path: e.path.to_string(),
                reason: e.kind.to_string(),
            }
        })?;
    }
    Ok(doc)
}

/// About how many bytes `value` takes as JSON (every string counted without escapes, so
/// never more than its real length), if that is at most `limit`: computed by walking the
/// value, never touching string contents, and stopping as soon as it passes `limit`.
pub fn serialized_len_within(value: &Value, limit: usize) -> Option<usize> {
    fn walk(v: &Value, total: &mut usize, limit: usize) -> Option<()> {
        *total += match v {
            Value::Null | Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u.checked_ilog10().unwrap_or(0) as usize + 1,
                (None, Some(i)) => i.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 2,
                // Floats are rare in objects: format them.
                _ => n.to_string().len(),
            },
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                *total += 2 + items.len().saturating_sub(1);
                for item in items {
                    walk(item, total, limit)?;
                }
                0
            }
            Value::Object(map) => {
                *total += 2 + map.len().saturating_sub(1);
                for (k, item) in map {
                    *total += k.len() + 3;
                    walk(item, total, limit)?;
                }
                0
            }
        };
        if *total > limit {
            return None;
        }
        Some(())
    }
    let mut total = 0;
    walk(value, &mut total, limit)?;
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<PatchOperation> {
        serde_json::from_value::<json_patch::Patch>(v)
            .expect("patch")
            .0
    }

    #[test]
    fn copies_of_a_document_into_itself_stop_at_the_copy_limit() {
        let current = json!({"metadata": {"name": "amp", "labels": {"a": "b".repeat(100)}}});
        let patch: Vec<Value> = (0..20)
            .map(|i| json!({"op": "copy", "from": "/metadata", "path": format!("/metadata/c{i}")}))
            .collect();
        let err = apply_json_patch(&current, &ops(Value::Array(patch))).expect_err("refused");
        match err {
            JsonPatchError::CopyTooLarge(n) => assert!(n > MAX_COPY_BYTES, "{n}"),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn copies_within_the_limit_apply() {
        let current = json!({"a": {"b": 1}});
        let doc = apply_json_patch(
            &current,
            &ops(json!([{"op": "copy", "from": "/a", "path": "/c"}])),
        )
        .expect("applies");
        assert_eq!(doc, json!({"a": {"b": 1}, "c": {"b": 1}}));
    }

    #[test]
    fn more_operations_than_upstream_allows_are_refused() {
        let patch: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let err =
            apply_json_patch(&json!({"a": 1}), &ops(Value::Array(patch))).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn operations_may_not_nest_the_document_past_the_limit() {
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        let current = json!({"a": deep});
        // Copying the 101-level subtree under itself would make it 200+ levels deep.
        let path = format!("/a{}", "/0".repeat(99));
        let err = apply_json_patch(
            &current,
            &ops(json!([{"op": "copy", "from": "/a", "path": path}])),
        )
        .expect_err("refused");
        assert!(
            matches!(err, JsonPatchError::TooDeep { operation: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_failed_operation_names_its_index_and_path() {
        let err = apply_json_patch(
            &json!({"a": 1}),
            &ops(json!([{"op": "test", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}])),
        )
        .expect_err("fails");
        assert_eq!(
            err.to_string(),
            "operation '/1' failed at path '/b': path is invalid"
        );
    }

    #[test]
    fn serialized_length_is_exact_without_escapes_and_stops_at_the_limit() {
        let v = json!({"a": [1, -20, 1.5, "xy", true, false], "b": null, "c": {}, "d": []});
        let text = serde_json::to_string(&v).expect("json");
        assert_eq!(serialized_len_within(&v, 1000), Some(text.len()));
        assert_eq!(serialized_len_within(&v, text.len()), Some(text.len()));
        assert_eq!(serialized_len_within(&v, text.len() - 1), None);
        // Escapes are not counted: never more than the real length.
        let escaped = json!({"q": "a\"b\n"});
        let real = serde_json::to_string(&escaped).expect("json").len();
        assert!(serialized_len_within(&escaped, 1000).expect("within") < real);
    }
}
