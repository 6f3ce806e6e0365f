//! API errors and their `metav1.Status` bodies, shaped like a real kube-apiserver's
//! (see `../shared/FACTS.md`, "Status responses").

use serde_json::{json, Value};

/// One `Status.details.causes` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Machine-readable reason (`FieldValueRequired`, `FieldManagerConflict`, ...).
    pub reason: String,
    /// Human-readable message without the field.
    pub message: String,
    /// Field path (`spec.ports[0].port`).
    pub field: String,
}

/// An error returned to API clients as a `Status` object. Small (details are boxed) because
/// it travels in every handler's `Result`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Upstream `StatusReason` (`NotFound`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `Status.details`.
    pub details: Box<Details>,
}

/// `Status.details` of an error.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group`.
    pub group: Option<String>,
    /// `details.kind`: the resource for most errors, the Kind for `Invalid` (as upstream).
    pub kind: Option<String>,
    /// `details.causes`.
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        if !group.is_empty() {
            self.details.group = Some(group.to_string());
        }
        self.details.kind = Some(kind.to_string());
        if !name.is_empty() {
            self.details.name = Some(name.to_string());
        }
        self
    }

    /// Qualified resource as upstream prints it: `services` or `endpointslices.discovery.k8s.io`.
    pub fn qualified(group: &str, plural: &str) -> String {
        if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        }
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", Self::qualified(group, plural)),
        )
        .with_details(group, plural, name)
    }

    /// 404 for a path no resource serves.
    pub fn path_not_found() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 `<resource> "<name>" already exists`.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{name}\" already exists",
                Self::qualified(group, plural)
            ),
        )
        .with_details(group, plural, name)
    }

    /// 409 Conflict on a stale `resourceVersion` (FACTS.md wording).
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                Self::qualified(group, plural)
            ),
        )
        .with_details(group, plural, name)
    }

    /// 409 Conflict with a custom message (e.g. server-side apply conflicts).
    pub fn conflict_with(group: &str, plural: &str, name: &str, message: String) -> Self {
        ApiError::new(409, "Conflict", message).with_details(group, plural, name)
    }

    /// 422 Invalid with field causes; `kind` is the object Kind as upstream reports it.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        message: String,
        causes: Vec<Cause>,
    ) -> Self {
        let mut err = ApiError::new(422, "Invalid", message).with_details(group, kind, name);
        err.details.causes = causes;
        err
    }

    /// 422 from validation field errors: upstream's `errors.NewInvalid(kind, name, errs)`,
    /// with the webhook crate's message (`Kind "name" is invalid: ...`) and one cause per
    /// error. The one conversion from [`svcplane_rules::FieldError`] to a `Status`.
    pub fn from_field_errors(
        group: &str,
        kind: &str,
        name: &str,
        errors: &[svcplane_rules::FieldError],
    ) -> Self {
        let causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.kind.reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        ApiError::invalid(
            group,
            kind,
            name,
            svcplane_rules::invalid_message(kind, name, errors),
            causes,
        )
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(406, "NotAcceptable", message)
    }

    /// 410 Gone / Expired for a too-old resourceVersion.
    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type:?}"),
        )
    }

    /// 403 Forbidden (e.g. creating in a terminating namespace).
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "Forbidden", message)
    }

    /// 403 Forbidden for a resource request (upstream `NewForbidden`: `details` name the
    /// resource as `kind`, its group and the object).
    pub fn forbidden_for(group: &str, resource: &str, name: &str, message: String) -> Self {
        let mut err = ApiError::new(403, "Forbidden", message);
        err.details.group = Some(group.to_string()).filter(|g| !g.is_empty());
        err.details.kind = Some(resource.to_string());
        err.details.name = Some(name.to_string()).filter(|n| !n.is_empty());
        err
    }

    /// 401 Unauthorized (upstream `responsewriters.Unauthorized`: message `Unauthorized`).
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "InternalError", message)
    }

    /// 429 TooManyRequests (used by fault injection).
    pub fn too_many_requests() -> Self {
        let mut err = ApiError::new(
            429,
            "TooManyRequests",
            "too many requests, please try again later",
        );
        err.details.retry_after_seconds = Some(1);
        err
    }

    /// 504 Timeout: the request did not complete in time (upstream's timeout filter answers
    /// `Timeout: <message>`).
    pub fn timeout(message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(504, "Timeout", format!("Timeout: {message}"))
    }

    /// 504 Timeout for a read at a revision the server has not reached (upstream watch cache
    /// `waitUntilFreshAndBlock`, cause `ResourceVersionTooLarge`).
    pub fn resource_version_too_large(requested: u64, current: u64) -> Self {
        let mut err = ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        );
        err.details.causes.push(Cause {
            reason: "ResourceVersionTooLarge".into(),
            message: "Too large resource version".into(),
            field: String::new(),
        });
        err.details.retry_after_seconds = Some(1);
        err
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        let d = &self.details;
        if let Some(name) = &d.name {
            details.insert("name".into(), json!(name));
        }
        if let Some(group) = &d.group {
            details.insert("group".into(), json!(group));
        }
        if let Some(kind) = &d.kind {
            details.insert("kind".into(), json!(kind));
        }
        if !d.causes.is_empty() {
            let causes: Vec<Value> = d
                .causes
                .iter()
                .map(|c| {
                    let mut cause = json!({"reason": c.reason, "message": c.message});
                    // `field` is `omitempty` upstream.
                    if !c.field.is_empty() {
                        cause["field"] = json!(c.field);
                    }
                    cause
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(secs) = d.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(secs));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// A `Status` reporting success (used by delete of a fully removed object in some cases).
pub fn success_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": plural, "uid": uid});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}
