//! The reviews a user asks about itself, answered by the server's authenticator and
//! authorizer and never stored (the request comes back with its `status`, `201 Created`):
//! - `SelfSubjectAccessReview` (`kubectl auth can-i VERB RESOURCE`): upstream
//!   `pkg/registry/authorization/selfsubjectaccessreview/rest.go`, the spec validated as
//!   `ValidateSelfSubjectAccessReviewSpec` (exactly one of `resourceAttributes` and
//!   `nonResourceAttributes`);
//! - `SelfSubjectRulesReview` (`kubectl auth can-i --list`): upstream
//!   `pkg/registry/authorization/selfsubjectrulesreview/rest.go`, [`crate::rbac::Policy::rules_for`];
//! - `SelfSubjectReview` (`kubectl auth whoami`): upstream
//!   `pkg/registry/authentication/selfsubjectreview/rest.go`, the user's name, uid and groups.
//!
//! With `--authorization-mode=AlwaysAllow` (the default) every access review is allowed with
//! [`REASON`].

use serde_json::{json, Value};

use crate::authorizer::{AuthorizationMode, Authorizer};
use crate::codec::{body_format, decode_object};
use crate::error::{ApiError, Cause};
use crate::rbac::{Request, UserInfo};
use crate::store::Store;

const GROUP: &str = "authorization.k8s.io";
const KIND: &str = "SelfSubjectAccessReview";
const API_VERSION: &str = "authorization.k8s.io/v1";

/// Why every review is allowed in AlwaysAllow mode.
pub const REASON: &str =
    "svcplane's embedded API server runs with --authorization-mode=AlwaysAllow: every request is allowed";

/// Which review a path creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// `SelfSubjectAccessReview`.
    Access,
    /// `SelfSubjectRulesReview`.
    Rules,
    /// `SelfSubjectReview`.
    WhoAmI,
}

impl Review {
    /// The review created at `path`, if any.
    pub fn at(path: &str) -> Option<Review> {
        match path.trim_end_matches('/') {
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => Some(Review::Access),
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" => Some(Review::Rules),
            "/apis/authentication.k8s.io/v1/selfsubjectreviews" => Some(Review::WhoAmI),
            _ => None,
        }
    }

    fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            Review::Access => (API_VERSION, KIND),
            Review::Rules => (API_VERSION, "SelfSubjectRulesReview"),
            Review::WhoAmI => ("authentication.k8s.io/v1", "SelfSubjectReview"),
        }
    }
}

/// Answers a review body (JSON, YAML or protobuf by `content_type`) for `user`.
pub fn answer(
    review: Review,
    body: &[u8],
    content_type: Option<&str>,
    user: &UserInfo,
    authorizer: &Authorizer,
    store: &Store,
) -> Result<Value, ApiError> {
    let (want_version, want_kind) = review.type_meta();
    let mut obj = if review == Review::WhoAmI {
        // Nothing in a SelfSubjectReview request is read (it has no spec), and its protobuf
        // form is not in the decoder's tables: only the answer matters.
        body_format(content_type)
            .and_then(|format| decode_object(body, format))
            .unwrap_or_else(|_| json!({}))
    } else {
        decode_object(body, body_format(content_type)?)?
    };
    let api_version = obj["apiVersion"].as_str().unwrap_or(want_version);
    let kind = obj["kind"].as_str().unwrap_or(want_kind);
    if api_version != want_version || kind != want_kind {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {want_kind}): {api_version}, Kind={kind}"
        )));
    }
    obj["apiVersion"] = json!(want_version);
    obj["kind"] = json!(want_kind);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    match review {
        Review::Access => {
            validate_access_spec(&obj["spec"])?;
            obj["status"] = access_status(&obj["spec"], user, authorizer, store);
        }
        Review::Rules => {
            let namespace = obj["spec"]["namespace"].as_str().unwrap_or_default();
            if namespace.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            let rules = authorizer.rules_for(store, user, namespace);
            let mut status = json!({
                "resourceRules": rules.resource_rules,
                "nonResourceRules": rules.non_resource_rules,
                "incomplete": rules.evaluation_error.is_some(),
            });
            if let Some(e) = rules.evaluation_error {
                status["evaluationError"] = json!(e);
            }
            obj["status"] = status;
        }
        Review::WhoAmI => {
            let mut info = json!({"username": user.name, "groups": user.groups});
            if !user.uid.is_empty() {
                info["uid"] = json!(user.uid);
            }
            obj["status"] = json!({"userInfo": info});
        }
    }
    Ok(obj)
}

/// The review's question as authorizer attributes.
fn access_request(spec: &Value) -> Request {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if let Some(r) = spec.get("resourceAttributes").filter(|v| !v.is_null()) {
        Request::resource(
            &text(&r["verb"]),
            &text(&r["group"]),
            &text(&r["resource"]),
            &text(&r["subresource"]),
            &text(&r["namespace"]),
            &text(&r["name"]),
        )
    } else {
        let n = &spec["nonResourceAttributes"];
        Request::non_resource(&text(&n["verb"]), &text(&n["path"]))
    }
}

fn access_status(spec: &Value, user: &UserInfo, authorizer: &Authorizer, store: &Store) -> Value {
    if authorizer.mode() == AuthorizationMode::AlwaysAllow {
        return json!({"allowed": true, "reason": REASON});
    }
    let decision = authorizer.authorize(store, user, &access_request(spec));
    let mut status = json!({"allowed": decision.allowed()});
    if !decision.reason().is_empty() {
        status["reason"] = json!(decision.reason());
    }
    status
}

fn validate_access_spec(spec: &Value) -> Result<(), ApiError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn review(body: &[u8], content_type: Option<&str>) -> Result<Value, ApiError> {
        let store = Store::new(10, Default::default());
        let authorizer = Authorizer::new(AuthorizationMode::AlwaysAllow);
        answer(
            Review::Access,
            body,
            content_type,
            &UserInfo::default(),
            &authorizer,
            &store,
        )
    }

    /// selfsubjectaccessreview/rest.go and selfsubjectreview/rest.go under RBAC: an empty
    /// store grants nothing, `system:masters` everything; whoami echoes the user.
    #[test]
    fn reviews_answer_for_the_requesting_user_under_rbac() {
        let store = Store::new(10, Default::default());
        let rbac = Authorizer::new(AuthorizationMode::Rbac);
        let sa = UserInfo::service_account("x", "app");
        let ssar = body(json!({"kind": KIND, "apiVersion": API_VERSION,
            "spec": {"resourceAttributes": {"namespace": "x", "verb": "list", "resource": "services"}}}));
        let out = answer(Review::Access, &ssar, None, &sa, &rbac, &store).unwrap();
        assert_eq!(out["status"], json!({"allowed": false}));
        let admin = UserInfo::new("root", &["system:masters"]);
        let out = answer(Review::Access, &ssar, None, &admin, &rbac, &store).unwrap();
        assert_eq!(out["status"]["allowed"], true);
        let out = answer(Review::WhoAmI, b"", None, &sa, &rbac, &store).unwrap();
        assert_eq!(out["kind"], "SelfSubjectReview");
        assert_eq!(
            out["status"]["userInfo"]["username"],
            "system:serviceaccount:x:app"
        );
        let ssrr = body(json!({"kind": "SelfSubjectRulesReview", "spec": {"namespace": "x"}}));
        let out = answer(Review::Rules, &ssrr, None, &admin, &rbac, &store).unwrap();
        assert_eq!(
            out["status"]["resourceRules"],
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
        );
        let none = body(json!({"kind": "SelfSubjectRulesReview", "spec": {}}));
        assert_eq!(
            answer(Review::Rules, &none, None, &sa, &rbac, &store)
                .unwrap_err()
                .code,
            400
        );
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
