//! AdmissionReview (`admission.k8s.io/v1`) handling, pure: bytes in, response out. The
//! HTTP layer in [`crate::server`] only moves bytes and records metrics.

use serde_json::{json, Map, Value};

use svcplane_rules::{
    decode_object_fast, invalid_message, validate_decoded, validate_object_owned, DecodeError,
    FieldError, Kind, Object, Verdict,
};

/// The AdmissionReview apiVersion this webhook speaks.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// A request the webhook cannot answer with an AdmissionReview (HTTP 400).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReviewError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    /// Wrong `apiVersion`/`kind` on the review.
    #[error("expected apiVersion \"admission.k8s.io/v1\" and kind \"AdmissionReview\", got apiVersion {api_version:?} kind {kind:?}")]
    WrongType {
        /// The review's apiVersion.
        api_version: String,
        /// The review's kind.
        kind: String,
    },
    /// `request` is missing.
    #[error("AdmissionReview has no request")]
    MissingRequest,
    /// `request.uid` is missing or empty.
    #[error("AdmissionReview request.uid is missing")]
    MissingUid,
}

/// The answer to one AdmissionReview, with labels for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewOutcome {
    /// The full AdmissionReview response body.
    pub body: Value,
    /// Whether the object was allowed.
    pub allowed: bool,
    /// `request.kind.kind` (metric label).
    pub kind: String,
    /// `request.operation` (metric label).
    pub operation: String,
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A `metav1.Status` for a rejected object, shaped like upstream's 422 Invalid error.
pub fn invalid_status(kind: Kind, name: &str, errors: &[FieldError]) -> Value {
    let group = match kind {
        Kind::EndpointSlice => "discovery.k8s.io",
        _ => "",
    };
    invalid_status_of(group, kind.as_str(), kind.qualified(), name, errors)
}

/// [`invalid_status`] for any kind: `qualified` is `Kind.group` (or `Kind` in the core
/// group), as upstream's `NewInvalid` prints it.
pub(crate) fn invalid_status_of(
    group: &str,
    kind: &str,
    qualified: &str,
    name: &str,
    errors: &[FieldError],
) -> Value {
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
        .collect();
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(kind));
    details.insert("causes".into(), Value::Array(causes));
    json!({
        "metadata": {},
        "status": "Failure",
        "message": invalid_message(qualified, name, errors),
        "reason": "Invalid",
        "details": Value::Object(details),
        "code": 422
    })
}

pub(crate) fn bad_request_status(message: String) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "BadRequest", "code": 400})
}

pub(crate) fn response(
    uid: &str,
    allowed: bool,
    status: Option<Value>,
    warnings: Vec<String>,
) -> Value {
    let mut r = Map::new();
    r.insert("uid".into(), json!(uid));
    r.insert("allowed".into(), json!(allowed));
    if let Some(s) = status {
        r.insert("status".into(), s);
    }
    if !warnings.is_empty() {
        r.insert("warnings".into(), json!(warnings));
    }
    json!({"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": Value::Object(r)})
}

/// Fill `apiVersion`, `kind` and `metadata.namespace` from the request when the object
/// omits them, and report an object of another kind than `request.kind`.
fn complete_object(
    obj: &mut Value,
    kind: Kind,
    api_version: &str,
    namespace: &str,
) -> Result<(), String> {
    let Some(map) = obj.as_object_mut() else {
        return Err("request.object must be a JSON object".into());
    };
    let obj_kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let obj_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if obj_kind.is_empty() {
        map.insert("kind".into(), json!(kind.as_str()));
    } else if obj_kind != kind.as_str() {
        return Err(format!(
            "request.kind is {} but request.object is a {obj_kind}",
            kind.as_str()
        ));
    }
    if obj_version.is_empty() {
        map.insert("apiVersion".into(), json!(api_version));
    } else if obj_version != api_version {
        return Err(format!(
            "request.kind is {api_version} {} but request.object has apiVersion {obj_version}",
            kind.as_str()
        ));
    }
    if !namespace.is_empty() {
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if meta.is_null() {
            *meta = json!({});
        }
        if let Some(m) = meta.as_object_mut() {
            if m.get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                m.insert("namespace".into(), json!(namespace));
            }
        }
    }
    Ok(())
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct Gvk {
    #[serde(default)]
    pub(crate) group: String,
    #[serde(default)]
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) kind: String,
}

#[derive(serde::Deserialize)]
pub(crate) struct RequestEnvelope<'a> {
    #[serde(default)]
    pub(crate) uid: String,
    #[serde(default)]
    pub(crate) kind: Gvk,
    #[serde(default)]
    pub(crate) operation: String,
    #[serde(default)]
    pub(crate) namespace: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(borrow, default)]
    pub(crate) object: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default, rename = "oldObject")]
    pub(crate) old_object: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
pub(crate) struct ReviewEnvelope<'a> {
    #[serde(default, rename = "apiVersion")]
    pub(crate) api_version: String,
    #[serde(default)]
    pub(crate) kind: String,
    #[serde(borrow)]
    pub(crate) request: Option<RequestEnvelope<'a>>,
}

/// The common case without an intermediate JSON tree: a well-formed CREATE or UPDATE
/// review whose objects decode straight into their types. `None` means "take the general
/// path", which answers every other input (and reports problems) the same way.
fn review_fast(body: &[u8]) -> Option<ReviewOutcome> {
    let env: ReviewEnvelope<'_> = serde_json::from_slice(body).ok()?;
    if env.api_version != ADMISSION_API_VERSION || env.kind != "AdmissionReview" {
        return None;
    }
    let req = env.request?;
    if req.uid.is_empty() || !matches!(req.operation.as_str(), "CREATE" | "UPDATE") {
        return None;
    }
    let gv = if req.kind.group.is_empty() {
        req.kind.version.clone()
    } else {
        format!("{}/{}", req.kind.group, req.kind.version)
    };
    let kind = Kind::from_type_meta(&gv, &req.kind.kind)?;
    let decode = |raw: Option<&serde_json::value::RawValue>| -> Option<Object> {
        let mut o = decode_object_fast(kind, raw?.get())?;
        let meta = o.metadata_mut();
        if meta.namespace.as_deref().unwrap_or("").is_empty() && !req.namespace.is_empty() {
            meta.namespace = Some(req.namespace.clone());
        }
        Some(o)
    };
    let mut new = decode(req.object)?;
    let old = if req.operation == "UPDATE" {
        Some(decode(req.old_object)?)
    } else {
        None
    };
    let name = new
        .metadata_mut()
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| req.name.clone());
    let (allowed, status, warnings) = match validate_decoded(new, old) {
        Err(e) => (false, Some(decode_status(&e)), Vec::new()),
        Ok(Verdict { errors, warnings }) if errors.is_empty() => (true, None, warnings),
        Ok(Verdict { errors, warnings }) => {
            (false, Some(invalid_status(kind, &name, &errors)), warnings)
        }
    };
    Some(ReviewOutcome {
        body: response(&req.uid, allowed, status, warnings),
        allowed,
        kind: req.kind.kind,
        operation: req.operation,
    })
}

/// Answer one AdmissionReview body of a Service, EndpointSlice or Endpoints. Never panics;
/// input that cannot carry a response (not JSON, wrong type, no uid) is a [`ReviewError`].
pub fn review(body: &[u8]) -> Result<ReviewOutcome, ReviewError> {
    if let Some(out) = review_fast(body) {
        return Ok(out);
    }
    review_general(body)
}

/// The general path over a JSON tree: fills omitted `apiVersion`/`kind`/namespace from the
/// request, reports objects of another kind, and names undecodable fields.
pub fn review_general(body: &[u8]) -> Result<ReviewOutcome, ReviewError> {
    let mut review: Value =
        serde_json::from_slice(body).map_err(|e| ReviewError::NotJson(e.to_string()))?;
    let taken_object = review.pointer_mut("/request/object").map(Value::take);
    let taken_old = review.pointer_mut("/request/oldObject").map(Value::take);
    let (api_version, kind) = (str_at(&review, "apiVersion"), str_at(&review, "kind"));
    if api_version != ADMISSION_API_VERSION || kind != "AdmissionReview" {
        return Err(ReviewError::WrongType {
            api_version: api_version.into(),
            kind: kind.into(),
        });
    }
    let request = review
        .get("request")
        .filter(|r| r.is_object())
        .ok_or(ReviewError::MissingRequest)?;
    let uid = str_at(request, "uid");
    if uid.is_empty() {
        return Err(ReviewError::MissingUid);
    }
    let operation = str_at(request, "operation").to_string();
    let rk = request.get("kind").cloned().unwrap_or(Value::Null);
    let (group, version, req_kind) = (
        str_at(&rk, "group"),
        str_at(&rk, "version"),
        str_at(&rk, "kind"),
    );
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let outcome = |allowed: bool, status: Option<Value>, warnings: Vec<String>| ReviewOutcome {
        body: response(uid, allowed, status, warnings),
        allowed,
        kind: req_kind.to_string(),
        operation: operation.clone(),
    };
    let Some(kind) = Kind::from_type_meta(&gv, req_kind) else {
        return Ok(outcome(
            false,
            Some(bad_request_status(format!(
                "svcplane webhook does not validate {req_kind:?} in {gv:?}; register it for v1 Services, v1 Endpoints, discovery.k8s.io/v1 EndpointSlices and svcplane.io/v1alpha1 LoadBalancerIPPools only"
            ))),
            Vec::new(),
        ));
    };
    if !matches!(operation.as_str(), "CREATE" | "UPDATE") {
        return Ok(outcome(true, None, Vec::new()));
    }
    let namespace = str_at(request, "namespace");
    let Some(mut obj) = taken_object.filter(|o| !o.is_null()) else {
        return Ok(outcome(
            false,
            Some(bad_request_status("request.object is missing".into())),
            Vec::new(),
        ));
    };
    if let Err(m) = complete_object(&mut obj, kind, &gv, namespace) {
        return Ok(outcome(false, Some(bad_request_status(m)), Vec::new()));
    }
    let mut old = None;
    if operation == "UPDATE" {
        let Some(mut o) = taken_old.filter(|o| !o.is_null()) else {
            return Ok(outcome(
                false,
                Some(bad_request_status(
                    "request.oldObject is missing on UPDATE".into(),
                )),
                Vec::new(),
            ));
        };
        if let Err(m) = complete_object(&mut o, kind, &gv, namespace) {
            return Ok(outcome(
                false,
                Some(bad_request_status(format!("oldObject: {m}"))),
                Vec::new(),
            ));
        }
        old = Some(o);
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| Some(str_at(request, "name")).filter(|n| !n.is_empty()))
        .unwrap_or("")
        .to_string();
    match validate_object_owned(obj, old) {
        Err(e) => Ok(outcome(false, Some(decode_status(&e)), Vec::new())),
        Ok(Verdict { errors, warnings }) if errors.is_empty() => Ok(outcome(true, None, warnings)),
        Ok(Verdict { errors, warnings }) => Ok(outcome(
            false,
            Some(invalid_status(kind, &name, &errors)),
            warnings,
        )),
    }
}

fn decode_status(e: &DecodeError) -> Value {
    bad_request_status(format!("cannot decode object: {e}"))
}

/// The HTTP 400 body for a [`ReviewError`]: a `metav1.Status`.
pub fn review_error_body(e: &ReviewError) -> Value {
    bad_request_status(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review_of(op: &str, obj: Value, old: Option<Value>) -> Value {
        let mut req = json!({"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Service"},
            "operation": op, "namespace": "default", "object": obj});
        if let Some(o) = old {
            req["oldObject"] = o;
        }
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
    }

    fn svc(port: i64) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"ports": [{"port": port}]}})
    }

    #[test]
    fn valid_service_is_allowed_and_uid_echoed() {
        let out = review(review_of("CREATE", svc(80), None).to_string().as_bytes()).unwrap();
        assert!(out.allowed);
        assert_eq!(out.body["response"]["uid"], "u-1");
        assert_eq!(out.body["apiVersion"], "admission.k8s.io/v1");
    }

    #[test]
    fn invalid_service_is_denied_with_upstream_message_and_causes() {
        let out = review(review_of("CREATE", svc(0), None).to_string().as_bytes()).unwrap();
        assert!(!out.allowed);
        let status = &out.body["response"]["status"];
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            "Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive]"
        );
        assert_eq!(
            status["details"]["causes"][0]["field"],
            "spec.ports[0].port"
        );
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueInvalid"
        );
    }

    #[test]
    fn bad_inputs_are_review_errors() {
        assert!(matches!(review(b"{not json"), Err(ReviewError::NotJson(_))));
        assert!(matches!(
            review(br#"{"apiVersion":"v1","kind":"Pod"}"#),
            Err(ReviewError::WrongType { .. })
        ));
        assert!(matches!(
            review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            Err(ReviewError::MissingRequest)
        ));
        let mut r = review_of("CREATE", svc(80), None);
        r["request"]["uid"] = json!("");
        assert!(matches!(
            review(r.to_string().as_bytes()),
            Err(ReviewError::MissingUid)
        ));
    }

    #[test]
    fn object_of_the_wrong_kind_is_denied() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        let out = review(review_of("CREATE", obj, None).to_string().as_bytes()).unwrap();
        assert!(!out.allowed);
        assert!(out.body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("ConfigMap"));
    }

    #[test]
    fn fast_and_general_paths_agree() {
        let cases = [
            review_of("CREATE", svc(80), None),
            review_of("CREATE", svc(0), None),
            review_of("UPDATE", svc(80), Some(svc(80))),
            review_of("UPDATE", svc(81), Some(svc(80))),
        ];
        for c in cases {
            let body = c.to_string();
            let fast = review_fast(body.as_bytes()).expect("fast path handles well-formed reviews");
            let general = review_general(body.as_bytes()).unwrap();
            assert_eq!(fast, general, "{body}");
        }
        let mut no_kind = svc(80);
        no_kind.as_object_mut().unwrap().remove("kind");
        let body = review_of("CREATE", no_kind, None).to_string();
        assert_eq!(
            review(body.as_bytes()).unwrap(),
            review_general(body.as_bytes()).unwrap()
        );
    }

    #[test]
    fn delete_is_allowed_without_object() {
        let mut r = review_of("DELETE", Value::Null, None);
        r["request"]["object"] = Value::Null;
        assert!(review(r.to_string().as_bytes()).unwrap().allowed);
    }

    #[test]
    fn update_validates_against_old_object() {
        let mut old = svc(80);
        old["spec"]["clusterIP"] = json!("10.0.0.10");
        let mut new = svc(80);
        new["spec"]["clusterIP"] = json!("10.0.0.11");
        let out = review(review_of("UPDATE", new, Some(old)).to_string().as_bytes()).unwrap();
        assert!(!out.allowed);
        assert!(out.body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("may not change once set"));
    }
}
