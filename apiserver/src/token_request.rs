//! `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: a `TokenRequest`
//! (`authentication.k8s.io/v1`) answered with a signed ServiceAccount token, what
//! `kubectl create token` and in-cluster clients' projected tokens use.
//!
//! Upstream: `pkg/registry/core/serviceaccount/storage/token.go` (`TokenREST.Create`) and
//! `pkg/apis/authentication/validation` (`ValidateTokenRequest`): `expirationSeconds`
//! defaults to 3600 and must be at least 600 and at most 2^32; `audiences` default to the API
//! server's; the ServiceAccount must exist (404 otherwise). Not stored; `201 Created`.
//! Short of upstream: `boundObjectRef` (tokens bound to a Pod or Secret) is not supported and
//! is refused as invalid rather than ignored.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::codec::{body_format, decode_object, value_response};
use crate::error::{ApiError, Cause};
use crate::reply::Reply;
use crate::request::ResourceRequest;
use crate::sa_token::Claims;
use crate::state::AppState;

const KIND: &str = "TokenRequest";
const API_VERSION: &str = "authentication.k8s.io/v1";
const GROUP: &str = "authentication.k8s.io";

/// Upstream's default `expirationSeconds` (one hour).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Upstream's minimum (`may not specify a duration less than 10 minutes`).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Upstream's maximum (`may not specify a duration larger than 2^32 seconds`).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// Whether this module serves the request (`serviceaccounts/token`).
pub fn serves(rr: &ResourceRequest) -> bool {
    rr.info.group.is_empty()
        && rr.info.plural == "serviceaccounts"
        && rr.subresource.as_deref() == Some("token")
}

/// The spec of a request after defaulting and validation: (audiences, expirationSeconds).
pub fn validate_spec(
    spec: &Value,
    default_audiences: &[String],
) -> Result<(Vec<String>, i64), ApiError> {
    let invalid = |field: &str, value: String, detail: &str| {
        ApiError::invalid(
            GROUP,
            KIND,
            "",
            format!("{KIND}.{GROUP} \"\" is invalid: {field}: Invalid value: {value}: {detail}"),
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {value}: {detail}"),
                field: field.into(),
            }],
        )
    };
    let expiration = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION_SECONDS,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!("spec.expirationSeconds: {v} is not an integer"))
        })?,
    };
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "spec.expirationSeconds",
            expiration.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            "spec.expirationSeconds",
            expiration.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !spec["boundObjectRef"].is_null() {
        return Err(invalid(
            "spec.boundObjectRef",
            spec["boundObjectRef"].to_string(),
            "bound tokens are not supported by svcplane's embedded API server",
        ));
    }
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let audiences = if audiences.is_empty() {
        default_audiences.to_vec()
    } else {
        audiences
    };
    Ok((audiences, expiration))
}

/// Issues a token for the ServiceAccount the path names.
pub fn create(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let ns = rr.namespace.clone().unwrap_or_default();
    let name = rr.name.clone().unwrap_or_default();
    let mut obj = if body.is_empty() {
        json!({})
    } else {
        decode_object(body, body_format(content_type)?)?
    };
    let api_version = obj["apiVersion"].as_str().unwrap_or(API_VERSION);
    let kind = obj["kind"].as_str().unwrap_or(KIND);
    if api_version != API_VERSION || kind != KIND {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {KIND}): {api_version}, Kind={kind}"
        )));
    }
    let sa = state
        .store
        .get(&rr.info.key(), &ns, &name)
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", &name))?;
    let signer = &state.authn.signer;
    let (audiences, expiration) = validate_spec(&obj["spec"], signer.default_audiences())?;
    let now = jiff::Timestamp::now().as_second();
    let claims = Claims {
        namespace: ns.clone(),
        name: name.clone(),
        uid: sa.uid.clone(),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let token = signer
        .issue(&claims, &audiences, now, expiration)
        .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    let expires = jiff::Timestamp::from_second(now + expiration)
        .map(|t| t.to_string())
        .unwrap_or_default();
    obj["apiVersion"] = json!(API_VERSION);
    obj["kind"] = json!(KIND);
    obj["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": null});
    obj["spec"]["audiences"] = json!(audiences);
    obj["spec"]["expirationSeconds"] = json!(expiration);
    obj["spec"]["boundObjectRef"] = Value::Null;
    obj["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(Reply::new(value_response(201, &obj)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// validation.go `ValidateTokenRequest` and token.go's defaults.
    #[test]
    fn expiration_defaults_to_an_hour_and_is_bounded_as_upstream() {
        let aud = vec!["https://kubernetes.default.svc.cluster.local".to_string()];
        assert_eq!(
            validate_spec(&json!({}), &aud).unwrap(),
            (aud.clone(), 3600)
        );
        assert_eq!(
            validate_spec(&json!({"expirationSeconds": 600, "audiences": ["x"]}), &aud).unwrap(),
            (vec!["x".to_string()], 600)
        );
        let short = validate_spec(&json!({"expirationSeconds": 599}), &aud).unwrap_err();
        assert_eq!(short.code, 422);
        assert_eq!(
            short.details.causes[0].message,
            "Invalid value: 599: may not specify a duration less than 10 minutes"
        );
        let long =
            validate_spec(&json!({"expirationSeconds": (1i64 << 32) + 1}), &aud).unwrap_err();
        assert_eq!(long.details.causes[0].field, "spec.expirationSeconds");
    }
}
