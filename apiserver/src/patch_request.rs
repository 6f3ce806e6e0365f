//! PATCH requests: choosing the patch type from `Content-Type` and applying it to the stored
//! object with the right semantics (RFC 7386 merge, RFC 6902 JSON patch, strategic merge,
//! server-side apply).

use serde_json::Value;

use crate::error::{ApiError, Cause};
use crate::patch::apply::reset_fields;
use crate::patch::{ApplyError, ApplyOptions, Gvk, PatchError};
use crate::resources::ResourceInfo;

/// Patch types upstream accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in types only).
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// Maps a `Content-Type` to a patch type; anything else is a 415.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let base = content_type.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// Decodes the patch document.
pub fn decode_patch(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the patch body is empty"));
    }
    let value: Value = match kind {
        PatchKind::Apply => svcplane_rules::bounded_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?,
    };
    match (kind, &value) {
        (PatchKind::Json, Value::Array(_)) => Ok(value),
        (PatchKind::Json, _) => Err(ApiError::bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        )),
        (_, Value::Object(_)) => Ok(value),
        _ => Err(ApiError::bad_request("the patch must be a JSON object")),
    }
}

/// Applies a patch to the current object, returning the patched object.
pub fn apply_patch(
    info: &ResourceInfo,
    kind: PatchKind,
    current: &Value,
    patch: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            let doc =
                crate::patch_limits::apply_json_patch(current, &ops.0).map_err(|e| match e {
                    crate::patch_limits::JsonPatchError::TooManyOperations(_) => {
                        ApiError::too_large(e.to_string())
                    }
                    _ => ApiError::invalid(
                        &info.group,
                        &info.kind,
                        crate::metadata::name(current),
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                        vec![],
                    ),
                })?;
            within_size_limit(doc)
        }
        PatchKind::Merge => {
            let mut doc = current.clone();
            json_patch::merge(&mut doc, patch);
            within_size_limit(doc)
        }
        PatchKind::Strategic => {
            if !is_builtin(info) {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json (strategic merge patch is not supported for custom resources)",
                ));
            }
            within_size_limit(strategic_merge(info, current, patch)?)
        }
        PatchKind::Apply => within_size_limit(server_side_apply(
            info,
            Some(current),
            patch,
            manager,
            force,
            subresource,
        )?),
    }
}

/// A patched object may be no larger than a request body may be
/// ([`crate::codec::MAX_BODY_BYTES`]): patches cannot grow objects past what a create could
/// store. 413 RequestEntityTooLarge beyond, as upstream answers a body over its limit.
fn within_size_limit(doc: Value) -> Result<Value, ApiError> {
    let limit = crate::codec::MAX_BODY_BYTES;
    match crate::patch_limits::serialized_len_within(&doc, limit) {
        Some(_) => Ok(doc),
        None => Err(ApiError::too_large(format!(
            "Request entity too large: the patched object is larger than the limit of {limit} bytes"
        ))),
    }
}

/// Server-side apply of a missing object: the applied configuration becomes the object.
pub fn apply_to_new(info: &ResourceInfo, patch: &Value, manager: &str) -> Result<Value, ApiError> {
    within_size_limit(server_side_apply(info, None, patch, manager, false, None)?)
}

/// Whether the resource is a built-in type (strategic merge patch needs its Go struct tags).
fn is_builtin(info: &ResourceInfo) -> bool {
    crate::resources::is_builtin(&info.group, &info.plural)
}

fn gvk(info: &ResourceInfo) -> Gvk {
    Gvk::new(&info.api_version(), &info.kind)
}

fn strategic_merge(info: &ResourceInfo, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    crate::patch::strategic_merge_patch(current, patch, &gvk(info)).map_err(|e| match e {
        PatchError::BadRequest(m) => ApiError::bad_request(m),
        PatchError::Unprocessable(m) => ApiError::invalid(
            &info.group,
            &info.kind,
            crate::metadata::name(current),
            m,
            Vec::new(),
        ),
    })
}

/// Server-side apply through the field-manager logic of [`crate::patch::apply`].
pub fn server_side_apply(
    info: &ResourceInfo,
    current: Option<&Value>,
    patch: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
) -> Result<Value, ApiError> {
    let gvk = gvk(info);
    let opts = ApplyOptions {
        manager,
        force,
        subresource,
        reset_fields: reset_fields(&gvk, subresource),
        now: jiff::Timestamp::now(),
    };
    let name = patch["metadata"]["name"].as_str().unwrap_or_default();
    crate::patch::apply(current, patch, &opts).map_err(|e| match &e {
        ApplyError::Conflicts(conflicts) => {
            let mut err = ApiError::conflict_with(&info.group, &info.plural, name, e.to_string());
            err.details.causes = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: c.cause_message(),
                    field: c.field.clone(),
                })
                .collect();
            err
        }
        ApplyError::BadRequest(m) => ApiError::bad_request(m.clone()),
        ApplyError::Invalid(m) => {
            ApiError::invalid(&info.group, &info.kind, name, m.clone(), Vec::new())
        }
        ApplyError::ManagedFields(m) => {
            ApiError::internal(format!("failed to decode managed fields: {m}"))
        }
    })
}
