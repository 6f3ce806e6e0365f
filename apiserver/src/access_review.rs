//! `SelfSubjectAccessReview` (`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`),
//! what `kubectl auth can-i` asks.
//!
//! The embedded server has no authorization, so every request is allowed and the review says so
//! (`status.allowed: true`, with a reason naming why). Like upstream, the review is not stored:
//! the answer is the request with its `status` filled in, `201 Created`. The spec is validated as
//! upstream's `ValidateSelfSubjectAccessReviewSpec` does (exactly one of `resourceAttributes` and
//! `nonResourceAttributes`). Beyond upstream's absence here: the group is not listed in discovery
//! (clients create reviews with typed clients, which need no discovery).

use serde_json::{json, Value};

use crate::codec::{body_format, decode_object};
use crate::error::{ApiError, Cause};

/// The path reviews are created at.
pub const PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

const GROUP: &str = "authorization.k8s.io";
const KIND: &str = "SelfSubjectAccessReview";
const API_VERSION: &str = "authorization.k8s.io/v1";

/// Why every review is allowed.
pub const REASON: &str =
    "svcplane's embedded API server has no authorization: every request is allowed";

/// Answers a review request body (JSON, YAML or protobuf by `content_type`).
pub fn review(body: &[u8], content_type: Option<&str>) -> Result<Value, ApiError> {
    let mut obj = decode_object(body, body_format(content_type)?)?;
    let api_version = obj["apiVersion"].as_str().unwrap_or(API_VERSION);
    let kind = obj["kind"].as_str().unwrap_or(KIND);
    if api_version != API_VERSION || kind != KIND {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {KIND}): {api_version}, Kind={kind}"
        )));
    }
    let spec = &obj["spec"];
    let has = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    let invalid = |field: &str, value: &Value, detail: &str| {
        let path = format!("spec.{field}");
        let value = if value.is_null() {
            "null".to_string()
        } else {
            value.to_string()
        };
        ApiError::invalid(
            GROUP,
            KIND,
            "",
            format!("{KIND}.{GROUP} \"\" is invalid: {path}: Invalid value: {value:?}: {detail}"),
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {value:?}: {detail}"),
                field: path,
            }],
        )
    };
    match (has("resourceAttributes"), has("nonResourceAttributes")) {
        (true, true) => {
            return Err(invalid(
                "nonResourceAttributes",
                &spec["nonResourceAttributes"],
                "cannot be specified in combination with resourceAttributes",
            ))
        }
        (false, false) => {
            return Err(invalid(
                "resourceAttributes",
                &Value::Null,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ))
        }
        _ => {}
    }
    obj["apiVersion"] = json!(API_VERSION);
    obj["kind"] = json!(KIND);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["status"] = json!({"allowed": true, "reason": REASON});
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn resource_review_is_allowed_and_echoes_the_spec() {
        let spec = json!({"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}});
        let out = review(
            &body(json!({"apiVersion": API_VERSION, "kind": KIND, "spec": spec})),
            Some("application/json"),
        )
        .unwrap();
        assert_eq!(out["spec"], spec);
        assert_eq!(out["status"]["allowed"], true);
    }

    #[test]
    fn spec_needs_exactly_one_kind_of_attributes() {
        let none = review(&body(json!({"kind": KIND, "spec": {}})), None).unwrap_err();
        assert_eq!(none.code, 422);
        assert_eq!(none.details.causes[0].field, "spec.resourceAttributes");
        let both = review(
            &body(json!({"kind": KIND, "spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}})),
            None,
        )
        .unwrap_err();
        assert_eq!(both.details.causes[0].field, "spec.nonResourceAttributes");
    }

    #[test]
    fn other_kinds_and_malformed_bodies_are_bad_requests() {
        let wrong = review(&body(json!({"apiVersion": "v1", "kind": "Pod"})), None).unwrap_err();
        assert_eq!(wrong.code, 400);
        let garbage = review(b"{not json", None).unwrap_err();
        assert_eq!(garbage.code, 400);
    }
}
