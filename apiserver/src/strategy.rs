//! Per-resource write rules (upstream's REST strategies): status reset on create, the status
//! subresource split, generation tracking, server-side field validation, and the hooks that run
//! after a commit (CRD registration, GC and persistence wake-ups).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, Cause};
use crate::resources::ResourceInfo;
use crate::state::AppState;
use crate::store::StoredObject;

fn is(info: &ResourceInfo, group: &str, plural: &str) -> bool {
    info.group == group && info.plural == plural
}

fn is_builtin(info: &ResourceInfo) -> bool {
    crate::resources::is_builtin(&info.group, &info.plural)
}

/// Whether an immediate DELETE answers with the deleted object rather than a `Status` of
/// `Success` (upstream `Store.finalizeDelete`). The generic store's default is the `Status`
/// (configmaps, secrets, endpoints, events, leases, endpointslices, webhook configurations);
/// pods set `ReturnDeletedObject`. Services, nodes, namespaces, CRDs and custom resources keep
/// answering with the object here, as before (their upstream stores were not checked).
pub fn returns_deleted_object(info: &ResourceInfo) -> bool {
    !is_builtin(info)
        || is(info, "", "pods")
        || is(info, "", "services")
        || is(info, "", "nodes")
        || is(info, "", "namespaces")
        || is(info, "apiextensions.k8s.io", "customresourcedefinitions")
}

/// Whether `metadata.generation` is maintained for the resource (bumped on spec changes).
pub fn tracks_generation(info: &ResourceInfo) -> bool {
    !is_builtin(info)
        || is(info, "", "services")
        || is(info, "", "pods")
        || is(info, "discovery.k8s.io", "endpointslices")
        || is(
            info,
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
        )
        || is(info, "apiextensions.k8s.io", "customresourcedefinitions")
}

/// Runs a typed mutation on a JSON object; objects that do not decode are left unchanged
/// (their type errors are reported by [`unknown_fields`] or validation).
fn typed<T: DeserializeOwned + Serialize, R: Default>(
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

/// Resource-specific preparation of a new object: defaulting (the webhook crate's defaulters,
/// the one source of truth) and upstream `PrepareForCreate`. Returns defaulting warnings.
pub fn prepare_create(info: &ResourceInfo, obj: &mut Value) -> Vec<String> {
    let mut warnings = Vec::new();
    if is(info, "", "services") {
        warnings = typed(obj, |svc: &mut Service| {
            let w = svcplane_rules::default_service(svc);
            svcplane_rules::prepare_service_create(svc);
            w
        });
    }
    if is(info, "", "pods") {
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        default_pod_spec(obj);
    } else if is(info, "", "services") {
        obj["status"] = json!({"loadBalancer": {}});
    } else if is(info, "", "namespaces") {
        obj["status"] = json!({"phase": "Active"});
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        label_namespace(obj);
    } else if is(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        let names = obj["spec"]["names"].clone();
        let now = crate::metadata::now_rfc3339();
        obj["status"] = json!({
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "storedVersions": obj["spec"]["versions"].as_array().map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
        });
    } else if info.has_status && !is_builtin(info) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }
    default_non_service(info, obj);
    warnings
}

/// Resource-specific preparation of an updated object: defaulting and upstream
/// `PrepareForUpdate`. Returns defaulting warnings. Status writes are not defaulted.
pub fn prepare_update(
    info: &ResourceInfo,
    obj: &mut Value,
    old: &Value,
    status_only: bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if status_only {
        // A status write is decoded like any body upstream, so `SetDefaults_Service` gives
        // ingress points `ipMode: VIP`; the typed round trip also drops the nulls a JSON merge
        // patch leaves inside a replaced list (`"ingress": [{"ip": null}]`), which upstream's
        // decoding into Go structs drops too.
        if is(info, "", "services") {
            typed(obj, |svc: &mut Service| {
                svcplane_rules::default_load_balancer_ip_mode(svc)
            });
        }
        return warnings;
    }
    if is(info, "", "services") {
        if let Ok(old_svc) = serde_json::from_value::<Service>(old.clone()) {
            warnings = typed(obj, |svc: &mut Service| {
                let w = svcplane_rules::default_service(svc);
                svcplane_rules::prepare_service_update(svc, &old_svc);
                w
            });
        }
    }
    if is(info, "", "namespaces") {
        label_namespace(obj);
    }
    if is(info, "", "pods") {
        default_pod_spec(obj);
    }
    default_non_service(info, obj);
    warnings
}

/// Upstream sets `kubernetes.io/metadata.name` on every namespace.
fn label_namespace(obj: &mut Value) {
    let name = crate::metadata::name(obj).to_string();
    if !obj["metadata"]["labels"].is_object() {
        obj["metadata"]["labels"] = json!({});
    }
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
}

/// A few of upstream's Pod defaults (`SetDefaults_PodSpec`, `SetDefaults_ContainerPort`).
fn default_pod_spec(obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    for (key, value) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("enableServiceLinks", json!(true)),
    ] {
        if spec[key].is_null() {
            spec[key] = value;
        }
    }
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers {
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if p.is_object() && p["protocol"].is_null() {
                            p["protocol"] = json!("TCP");
                        }
                    }
                }
            }
        }
    }
}

/// EndpointSlice and Endpoints defaulting (port protocol TCP), from the webhook crate.
fn default_non_service(info: &ResourceInfo, obj: &mut Value) {
    if is(info, "discovery.k8s.io", "endpointslices") {
        typed(obj, svcplane_rules::default_endpoint_slice);
    } else if is(info, "", "endpoints") {
        typed(obj, svcplane_rules::default_endpoints);
    } else if is(info, "", "secrets") && obj["type"].as_str().is_none_or(str::is_empty) {
        // Upstream `SetDefaults_Secret`: a Secret without a type is `Opaque`.
        obj["type"] = json!("Opaque");
    }
}

/// The status subresource split: writes to the main resource keep the stored status; writes to
/// `/status` keep everything but status (and metadata labels/annotations, as upstream allows).
pub fn merge_subresource(info: &ResourceInfo, new: &mut Value, old: &Value, status_only: bool) {
    if status_only {
        let mut merged = old.clone();
        merged["status"] = new["status"].clone();
        if merged["status"].is_null() {
            if let Some(m) = merged.as_object_mut() {
                m.remove("status");
            }
        }
        for key in ["labels", "annotations", "resourceVersion"] {
            match new["metadata"].get(key) {
                Some(v) if !v.is_null() => merged["metadata"][key] = v.clone(),
                _ => {
                    if key != "resourceVersion" {
                        if let Some(m) = merged["metadata"].as_object_mut() {
                            m.remove(key);
                        }
                    }
                }
            }
        }
        *new = merged;
    } else if info.has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
}

/// Validates a create (`old` = None) or update: Services, EndpointSlices and Endpoints with the
/// webhook crate's rules (the same code the webhook and `svcplane validate` run); object
/// metadata names for every other kind. Returns warnings; errors are a 422 with one cause per
/// field, kind = the object Kind, as upstream.
pub fn validate(
    _state: &AppState,
    info: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    use svcplane_rules::Phase;
    let name = crate::metadata::name(obj).to_string();
    if let Some(old) = old {
        no_new_finalizers_while_deleting(info, obj, old)?;
    }
    let (errors, warnings) = if is(info, "", "services") {
        let svc: Service = decode(info, obj)?;
        let errs = match old {
            None => svcplane_rules::validate_service(&svc, Phase::Storage),
            Some(old) => {
                svcplane_rules::validate_service_update(&svc, &decode(info, old)?, Phase::Storage)
            }
        };
        (errs, svcplane_rules::warnings_for_service(&svc))
    } else if is(info, "discovery.k8s.io", "endpointslices") {
        let slice: EndpointSlice = decode(info, obj)?;
        let old_slice: Option<EndpointSlice> = old.map(|o| decode(info, o)).transpose()?;
        let errs = match &old_slice {
            None => svcplane_rules::validate_endpoint_slice(&slice),
            Some(old) => svcplane_rules::validate_endpoint_slice_update(&slice, old),
        };
        let warnings = svcplane_rules::warnings_for_endpoint_slice(&slice, old_slice.as_ref());
        (errs, warnings)
    } else if is(info, "", "endpoints") {
        let ep: Endpoints = decode(info, obj)?;
        let errs = match old {
            None => svcplane_rules::validate_endpoints(&ep),
            Some(old) => svcplane_rules::validate_endpoints_update(&ep, &decode(info, old)?),
        };
        (errs, svcplane_rules::warnings_for_endpoints(&ep))
    } else {
        return validate_generic(info, obj, old).map(|()| Vec::new());
    };
    if errors.is_empty() {
        return Ok(warnings);
    }
    Err(invalid_from_field_errors(info, &name, &errors))
}

/// Validates a write to the `/status` subresource. Services get upstream's
/// `ValidateServiceStatusUpdate` (metadata and `ValidateLoadBalancerStatus`, not the spec,
/// which the write cannot change); other resources the rules of [`validate`].
pub fn validate_status(
    state: &AppState,
    info: &ResourceInfo,
    obj: &Value,
    old: &Value,
) -> Result<Vec<String>, ApiError> {
    if !is(info, "", "services") {
        return validate(state, info, obj, Some(old));
    }
    no_new_finalizers_while_deleting(info, obj, old)?;
    let svc: Service = decode(info, obj)?;
    let errors = svcplane_rules::validate_service_status_update(&svc, &decode(info, old)?);
    if errors.is_empty() {
        return Ok(Vec::new());
    }
    Err(invalid_from_field_errors(
        info,
        crate::metadata::name(obj),
        &errors,
    ))
}

/// A 422 from field errors, with upstream's message and one cause per error.
pub fn invalid_from_field_errors(
    info: &ResourceInfo,
    name: &str,
    errors: &[svcplane_rules::FieldError],
) -> ApiError {
    let causes = errors
        .iter()
        .map(|e| Cause {
            reason: e.kind.reason().to_string(),
            message: e.body(),
            field: e.field.clone(),
        })
        .collect();
    ApiError::invalid(
        &info.group,
        &info.kind,
        name,
        svcplane_rules::invalid_message(&info.kind, name, errors),
        causes,
    )
}

fn decode<T: DeserializeOwned>(info: &ResourceInfo, obj: &Value) -> Result<T, ApiError> {
    T::deserialize(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {e}",
            info.kind, info.version, info.kind
        ))
    })
}

/// Upstream `ValidateObjectMetaUpdate` (via `ValidateNoNewFinalizers`): once an object has a
/// `deletionTimestamp`, updates may remove finalizers but not add new ones.
fn no_new_finalizers_while_deleting(
    info: &ResourceInfo,
    obj: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    if !crate::metadata::is_deleting(old) {
        return Ok(());
    }
    let before = crate::metadata::finalizers(old);
    let mut added: Vec<String> = crate::metadata::finalizers(obj)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    added.sort();
    added.dedup();
    let list = added
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!(
        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
    );
    let name = crate::metadata::name(obj);
    Err(ApiError::invalid(
        &info.group,
        &info.kind,
        name,
        format!(
            "{} {name:?} is invalid: metadata.finalizers: {message}",
            info.kind
        ),
        vec![Cause {
            reason: "FieldValueForbidden".into(),
            message,
            field: "metadata.finalizers".into(),
        }],
    ))
}

/// Name rules for kinds without their own validation.
fn validate_generic(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let name = crate::metadata::name(obj);
    if let Some(msg) = name_problem(info, name) {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {name:?}: {msg}"),
            field: "metadata.name".into(),
        });
    }
    if let Some(old) = old {
        if crate::metadata::name(old) != name {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {name:?}: field is immutable"),
                field: "metadata.name".into(),
            });
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let joined = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    Err(ApiError::invalid(
        &info.group,
        &info.kind,
        name,
        format!("{} {name:?} is invalid: {joined}", info.kind),
        causes,
    ))
}

/// Upstream name rules: DNS-1035 labels for Services, DNS-1123 labels for Namespaces,
/// DNS-1123 subdomains for everything else.
fn name_problem(info: &ResourceInfo, name: &str) -> Option<String> {
    if is(info, "", "services") {
        return dns1035_label(name);
    }
    if is(info, "", "namespaces") {
        return dns1123_label(name);
    }
    dns1123_subdomain(name)
}

fn dns1123_label(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric();
    if ok {
        None
    } else if s.len() > 63 {
        Some("must be no more than 63 characters".into())
    } else {
        Some("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into())
    }
}

fn dns1035_label(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric();
    if ok {
        None
    } else if s.len() > 63 {
        Some("must be no more than 63 characters".into())
    } else {
        Some("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into())
    }
}

fn dns1123_subdomain(s: &str) -> Option<String> {
    let ok =
        !s.is_empty() && s.len() <= 253 && s.split('.').all(|part| dns1123_label(part).is_none());
    if ok {
        None
    } else if s.len() > 253 {
        Some("must be no more than 253 characters".into())
    } else {
        Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into())
    }
}

/// The fields of a built-in object its type does not declare, in upstream's notation
/// (`spec.ports[0].foo`) and document order; empty for other resources. Values of the wrong
/// JSON type are a 400 whatever the `fieldValidation` mode, as upstream (see
/// [`crate::type_error`]). [`crate::strict_decoding`] reports the unknown fields per mode.
pub fn unknown_fields(info: &ResourceInfo, obj: &Value) -> Result<Vec<String>, ApiError> {
    // One typed decode that reports the keys the type ignores (no re-encoding).
    let Some(Ok(decoded)) = with_builtin_type(info, obj, UnknownPaths) else {
        return Ok(Vec::new());
    };
    decoded.map_err(|e| {
        let why = crate::type_error::describe(
            &info.group,
            &info.version,
            &info.kind,
            obj,
            &e.path,
            &e.error,
        );
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {why}",
            info.kind, info.version, info.kind
        ))
    })
}

/// Removes the `unknown` fields (from [`unknown_fields`]) from `obj`: upstream decodes
/// built-in objects into their Go types, so undeclared fields never reach storage.
pub fn drop_unknown_fields(info: &ResourceInfo, obj: &mut Value, unknown: &[String]) {
    if unknown.is_empty() {
        return;
    }
    // The typed round trip is the shape to keep.
    if let Some(Ok(typed)) = with_builtin_type(info, obj, RoundTrip) {
        prune_unknown(obj, &typed);
    }
}

/// An operation run with the k8s-openapi type of a built-in resource.
trait TypedOp {
    type Out;
    fn run<T: DeserializeOwned + Serialize>(
        &self,
        obj: &Value,
    ) -> Result<Self::Out, serde_json::Error>;
}

/// Paths of fields the type does not declare, in upstream's notation (`spec.ports[0].foo`),
/// or where the decode failed.
struct UnknownPaths;

/// A typed decode that failed, and where.
struct DecodeFailure {
    path: serde_path_to_error::Path,
    error: serde_json::Error,
}

impl TypedOp for UnknownPaths {
    type Out = Result<Vec<String>, DecodeFailure>;
    fn run<T: DeserializeOwned + Serialize>(
        &self,
        obj: &Value,
    ) -> Result<Self::Out, serde_json::Error> {
        let mut unknown = Vec::new();
        let mut record = |path: serde_ignored::Path| unknown.push(field_path(&path));
        let de = serde_ignored::Deserializer::new(obj, &mut record);
        let decoded: Result<T, _> = serde_path_to_error::deserialize(de);
        Ok(match decoded {
            Ok(_) => Ok(unknown),
            Err(e) => Err(DecodeFailure {
                path: e.path().clone(),
                error: e.into_inner(),
            }),
        })
    }
}

/// Decodes into the type and encodes back: the object as the type sees it.
struct RoundTrip;

impl TypedOp for RoundTrip {
    type Out = Value;
    fn run<T: DeserializeOwned + Serialize>(
        &self,
        obj: &Value,
    ) -> Result<Value, serde_json::Error> {
        roundtrip::<T>(obj)
    }
}

fn field_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let p = field_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// Runs `op` with the typed representation of a built-in resource; `None` for other kinds.
fn with_builtin_type<O: TypedOp>(
    info: &ResourceInfo,
    obj: &Value,
    op: O,
) -> Option<Result<O::Out, serde_json::Error>> {
    use k8s_openapi::api;
    Some(match (info.group.as_str(), info.plural.as_str()) {
        ("", "services") => op.run::<api::core::v1::Service>(obj),
        ("", "pods") => op.run::<api::core::v1::Pod>(obj),
        ("", "nodes") => op.run::<api::core::v1::Node>(obj),
        ("", "namespaces") => op.run::<api::core::v1::Namespace>(obj),
        ("", "endpoints") => op.run::<api::core::v1::Endpoints>(obj),
        ("", "configmaps") => op.run::<api::core::v1::ConfigMap>(obj),
        ("", "secrets") => op.run::<api::core::v1::Secret>(obj),
        ("", "events") => op.run::<api::core::v1::Event>(obj),
        ("discovery.k8s.io", "endpointslices") => op.run::<api::discovery::v1::EndpointSlice>(obj),
        ("coordination.k8s.io", "leases") => op.run::<api::coordination::v1::Lease>(obj),
        ("events.k8s.io", "events") => op.run::<api::events::v1::Event>(obj),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            op.run::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(obj)
        }
        _ => return None,
    })
}

fn roundtrip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, serde_json::Error> {
    // `&Value` is itself a deserializer: no clone of the input.
    let typed = T::deserialize(obj)?;
    serde_json::to_value(typed)
}

/// Removes the keys absent from the typed round trip.
fn prune_unknown(input: &mut Value, typed: &Value) {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            i.retain(|k, v| v.is_null() || t.contains_key(k));
            for (k, v) in i.iter_mut() {
                if let Some(tv) = t.get(k) {
                    prune_unknown(v, tv);
                }
            }
        }
        (Value::Array(i), Value::Array(t)) => {
            for (iv, tv) in i.iter_mut().zip(t.iter()) {
                prune_unknown(iv, tv);
            }
        }
        _ => {}
    }
}

/// Side effects of a committed write: CRDs (un)register their resources; deletes and
/// deletion-marked objects wake the garbage collector; every write wakes the persister.
pub fn after_commit(
    state: &Arc<AppState>,
    info: &ResourceInfo,
    new: Option<&Arc<StoredObject>>,
    old: Option<&Value>,
) {
    if is(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        match new {
            Some(stored) => {
                state.registry.register_crd(&stored.value());
            }
            None => {
                if let Some(old) = old {
                    state.registry.unregister_crd(old);
                }
            }
        }
    }
    let deleting = new.is_none() || new.is_some_and(|n| n.json.contains("\"deletionTimestamp\""));
    if deleting {
        state.gc_wakeup.notify_one();
    }
    state.persist_wakeup.notify_one();
}
