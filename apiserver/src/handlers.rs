//! The REST verbs over HTTP: get, list, create, update, patch, apply, delete and
//! deletecollection. Reads are served from the store here; writes are decoded, checked
//! against their URL (type, namespace, name, preconditions, `fieldValidation`) and handed to
//! the write pipeline ([`crate::pipeline`]), which owns the stages every writer shares.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{json, Value};

use crate::codec::{self, decode_body, json_response, value_response};
use crate::error::ApiError;
use crate::metadata;
use crate::patch_request::{self, PatchKind};
use crate::pipeline::DeleteOptions;
use crate::rbac::UserInfo;
use crate::reply::Reply;
use crate::request::{Query, ResourceRequest, Verb};
use crate::request_options::{store_key_ns, write_options};
use crate::resources::ResourceInfo;
use crate::selector::Selectors;
use crate::state::AppState;
use crate::table;

/// How long a patch or apply keeps re-applying itself to a changing object. Upstream's
/// `GuaranteedUpdate` loops until the request deadline (60 s); one writer wins every round,
/// so only a pathological stream of competing writes gets this far.
const PATCH_RETRY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether an error is the store's compare-and-swap failure (the object changed between the
/// read and the commit), as opposed to a precondition the client set or a field-manager
/// conflict of server-side apply (which carries causes).
fn is_store_conflict(e: &ApiError) -> bool {
    e.code == 409
        && e.reason == "Conflict"
        && e.details.causes.is_empty()
        && e.message.contains("the object has been modified")
}

/// Dispatches a resource request to its verb.
pub async fn handle(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    user: &UserInfo,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    if !rr.info.namespaced && rr.namespace.is_some() {
        return Err(ApiError::path_not_found());
    }
    if rr.subresource.as_deref() == Some("scale") {
        let opts = write_options(query, headers, rr.verb)?;
        return crate::scale::handle(state, rr, query, headers, body, opts.write).await;
    }
    if crate::token_request::serves(rr) {
        if rr.verb != Verb::Create {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        return crate::token_request::create(state, rr, content_type, body);
    }
    if crate::pod_subresources::serves(rr) {
        return crate::pod_subresources::handle(state, rr, query, headers, body).await;
    }
    match rr.verb {
        Verb::Get => get(state, rr, query, headers),
        Verb::List => {
            crate::watch::wait_until_fresh(state, query).await?;
            list(state, rr, query, headers)
        }
        Verb::Watch => unreachable!("watch is served by the watch module"),
        Verb::Create => create(state, rr, user, query, headers, body).await,
        Verb::Update => update(state, rr, user, query, headers, body).await,
        Verb::Patch | Verb::Apply => patch(state, rr, user, query, headers, body).await,
        Verb::Delete => delete(state, rr, query, headers, body).await,
        Verb::DeleteCollection => delete_collection(state, rr, query, headers, body).await,
    }
}

fn get(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Reply, ApiError> {
    let name = rr.name.as_deref().unwrap_or_default();
    if rr.info.namespaced && rr.namespace.is_none() {
        return Err(ApiError::path_not_found());
    }
    // Any revision is served from the latest state (never older than asked), but a value that
    // is not a revision is refused as upstream does.
    query.resource_version()?;
    let obj = state
        .store
        .get(&rr.info.key(), &store_key_ns(rr), name)
        .ok_or_else(|| ApiError::not_found(&rr.info.group, &rr.info.plural, name))?;
    if table::wants_table(headers) {
        let t = table::to_table(&rr.info, &[obj], &obj_rv_string(state), None, query);
        return Ok(Reply::new(value_response(200, &t)));
    }
    Ok(Reply::new(json_response(200, obj.json.to_string())))
}

fn obj_rv_string(state: &AppState) -> String {
    state.store.current_rv().to_string()
}

/// Upstream's message when a continue token's revision was compacted (`continueExpired`,
/// returned as `NewResourceExpired` by the etcd3 store's paginated list).
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";

/// Opaque continue token: the last key returned and the list revision.
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let raw = json!({"rv": rv, "ns": ns, "name": name}).to_string();
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    // Decoded from bytes, never by slicing the text: the token is client input and may hold
    // any characters.
    let bytes = crate::text::decode_hex(token).ok_or_else(bad)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        v["rv"].as_u64().ok_or_else(bad)?,
        v["ns"].as_str().ok_or_else(bad)?.to_string(),
        v["name"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

/// Checks a decoded continue token against the store, as upstream's `DecodeContinue` and the
/// etcd read at the token's revision do: revision 0 and an empty start key are invalid, and a
/// revision this server has not reached yet cannot come from one of its lists (a forged or
/// foreign token), so it is refused instead of being reported back as the list's revision.
/// A revision older than the retained history answers 410 later, when the page is read.
fn check_continue_revision(state: &AppState, rv: u64, after_name: &str) -> Result<(), ApiError> {
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    if rv == 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    if after_name.is_empty() {
        return Err(invalid(
            "encoded start key empty (version meta.k8s.io/v1)".into(),
        ));
    }
    let current = state.store.current_rv();
    if rv > current {
        return Err(invalid(format!(
            "encoded resourceVersion {rv} is newer than the server's current resourceVersion {current}"
        )));
    }
    Ok(())
}

fn list(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Reply, ApiError> {
    let selectors = Selectors::from_query(&rr.info, query)?;
    let limit = query
        .number("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let requested_rv = query.resource_version()?;
    let cont = match query.get("continue") {
        Some(t) if !t.is_empty() => {
            // Upstream's etcd3 store `GetList`: a continued list is served at the token's
            // revision, so a resourceVersion next to it is refused.
            if requested_rv.is_some_and(|rv| rv != 0) {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, after_ns, after_name) = decode_continue(t)?;
            check_continue_revision(state, rv, &after_name)?;
            Some((rv, after_ns, after_name))
        }
        _ => None,
    };
    let ns = rr.namespace.as_deref();
    let (list_rv, items, more) = match &cont {
        None => state
            .store
            .list(&rr.info.key(), ns, |o| selectors.matches(o), None, limit),
        // A continued list is served from the first page's revision and reports it, as
        // upstream's consistent snapshot; 410 once that revision left the history.
        Some((rv, after_ns, after_name)) => {
            let (items, more) = state
                .store
                .list_at(
                    &rr.info.key(),
                    ns,
                    |o| selectors.matches(o),
                    Some((after_ns.as_str(), after_name.as_str())),
                    limit,
                    *rv,
                )
                .map_err(|_| ApiError::gone(CONTINUE_EXPIRED))?;
            (*rv, items, more)
        }
    };
    let continue_token = if more {
        items
            .last()
            .map(|o| encode_continue(list_rv, &o.namespace, &o.name))
    } else {
        None
    };
    if table::wants_table(headers) {
        let t = table::to_table(
            &rr.info,
            &items,
            &list_rv.to_string(),
            continue_token.as_deref(),
            query,
        );
        return Ok(Reply::new(value_response(200, &t)));
    }
    let mut body =
        String::with_capacity(items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 256);
    body.push_str(&format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{{\"resourceVersion\":\"{}\"",
        json!(rr.info.list_kind),
        json!(rr.info.api_version()),
        list_rv
    ));
    if let Some(token) = &continue_token {
        body.push_str(&format!(",\"continue\":\"{token}\""));
    }
    body.push_str("},\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&item.json);
    }
    body.push_str("]}");
    Ok(Reply::new(json_response(200, body)))
}

/// Checks `apiVersion` and `kind` of a body against the addressed resource. Missing ones are
/// taken from the URL's resource, as kube-apiserver's decoder does with the handler's default
/// GroupVersionKind (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/create.go` and
/// `update.go`: `decoder.Decode(body, &defaultGVK, original)`); present but different ones are
/// a 400.
fn check_type(info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let Some(fields) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, got {}",
            codec::kind_of(obj)
        )));
    };
    let mut field = |name: &str, default: String| -> Result<String, ApiError> {
        match fields.get(name) {
            Some(Value::String(v)) if !v.is_empty() => Ok(v.clone()),
            None | Some(Value::Null) | Some(Value::String(_)) => {
                fields.insert(name.to_string(), Value::String(default.clone()));
                Ok(default)
            }
            Some(other) => Err(ApiError::bad_request(format!(
                "{name}: must be a string, got {}",
                codec::kind_of(other)
            ))),
        }
    };
    let api_version = field("apiVersion", info.api_version())?;
    let kind = field("kind", info.kind.clone())?;
    if api_version != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    if !obj["metadata"].is_null() && !obj["metadata"].is_object() {
        return Err(ApiError::bad_request(format!(
            "metadata: must be an object, got {}",
            codec::kind_of(&obj["metadata"])
        )));
    }
    Ok(())
}

/// Aligns `metadata.namespace` with the URL (upstream `rest.EnsureObjectNamespaceMatchesRequestNamespace`).
fn check_namespace(
    info: &ResourceInfo,
    rr_ns: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let body_ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
    if !info.namespaced {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        return Ok(());
    }
    let Some(url_ns) = rr_ns else {
        return Err(ApiError::bad_request(
            "the namespace of the object must be set in the request path",
        ));
    };
    match body_ns {
        Some(ns) if !ns.is_empty() && ns != url_ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            obj["metadata"]["namespace"] = json!(url_ns);
            Ok(())
        }
    }
}

/// Upstream refuses creates in missing or terminating namespaces (`NamespaceLifecycle`
/// admission; the message names the object, `""` when only `generateName` is set).
fn check_namespace_accepts(
    state: &AppState,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    if !info.namespaced {
        return Ok(());
    }
    let key = crate::resources::ResourceKey {
        group: String::new(),
        plural: "namespaces".into(),
    };
    match state.store.get(&key, "", ns) {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(obj) if obj.deleting => Err(ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            ApiError::qualified(&info.group, &info.plural),
        ))),
        Some(_) => Ok(()),
    }
}

/// A written object's `metadata.name` must be the name on the URL (upstream
/// `endpoints/handlers` `checkName`, which update and patch call).
fn check_url_name(obj: &Value, name: &str) -> Result<(), ApiError> {
    let body_name = metadata::name(obj);
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

async fn create(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    user: &UserInfo,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    if rr.subresource.as_deref() == Some("binding") {
        return crate::pod_subresources::bind_pod(state, rr, query, headers, body).await;
    }
    if rr.subresource.is_some() {
        return Err(ApiError::method_not_allowed(
            "create is not allowed on subresources",
        ));
    }
    let mut opts = write_options(query, headers, rr.verb)?;
    opts.write.user = Some(user.clone());
    let (mut obj, format) = decode_body(headers, body)?;
    check_type(&rr.info, &mut obj)?;
    check_namespace(&rr.info, rr.namespace.as_deref(), &mut obj)?;
    let mut warnings =
        crate::strict_decoding::check_body(&rr.info, &mut obj, body, format, opts.strict)?;
    let ns = store_key_ns(rr);
    check_namespace_accepts(state, &rr.info, &ns, metadata::name(&obj))?;
    let (stored, more) = state.pipeline().create(&rr.info, obj, &opts.write).await?;
    warnings.extend(more);
    Ok(Reply::with_warnings(json_response(201, stored), warnings))
}

async fn update(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    user: &UserInfo,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let mut opts = write_options(query, headers, rr.verb)?;
    opts.write.user = Some(user.clone());
    let (mut obj, format) = decode_body(headers, body)?;
    check_type(&rr.info, &mut obj)?;
    check_namespace(&rr.info, rr.namespace.as_deref(), &mut obj)?;
    let name = rr.name.clone().unwrap_or_default();
    if metadata::name(&obj).is_empty() {
        obj["metadata"]["name"] = json!(name);
    }
    check_url_name(&obj, &name)?;
    let mut warnings =
        crate::strict_decoding::check_body(&rr.info, &mut obj, body, format, opts.strict)?;
    let ns = store_key_ns(rr);
    let current = state
        .store
        .get(&rr.info.key(), &ns, &name)
        .ok_or_else(|| ApiError::not_found(&rr.info.group, &rr.info.plural, &name))?;
    let requested_rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !requested_rv.is_empty() && requested_rv != current.rv.to_string() {
        return Err(ApiError::conflict(&rr.info.group, &rr.info.plural, &name));
    }
    let (json, more) = state
        .pipeline()
        .update(
            &rr.info,
            rr.subresource.as_deref(),
            &current,
            obj,
            &opts.write,
        )
        .await?;
    warnings.extend(more);
    Ok(Reply::with_warnings(json_response(200, json), warnings))
}

async fn patch(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    user: &UserInfo,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let mut opts = write_options(query, headers, rr.verb)?;
    opts.write.user = Some(user.clone());
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let kind = PatchKind::from_content_type(content_type)?;
    let patch = patch_request::decode_patch(kind, body)?;
    let name = rr.name.clone().unwrap_or_default();
    let ns = store_key_ns(rr);
    let force = query.flag("force");
    if force && kind != PatchKind::Apply {
        return Err(ApiError::bad_request(
            "force: Invalid value: true: may not be specified for non-apply patch",
        ));
    }
    // An apply configuration's repeated keys depend on the body alone.
    let apply_warnings = if kind == PatchKind::Apply {
        crate::strict_decoding::check_patch(&rr.info, kind, &mut Value::Null, body, opts.strict)?
    } else {
        Vec::new()
    };
    let started = std::time::Instant::now();
    while started.elapsed() < PATCH_RETRY_DEADLINE {
        let current = state.store.get(&rr.info.key(), &ns, &name);
        let Some(current) = current else {
            if kind == PatchKind::Apply && rr.subresource.is_none() {
                // Server-side apply creates missing objects.
                let mut obj =
                    patch_request::apply_to_new(&rr.info, &patch, &opts.write.field_manager)?;
                check_type(&rr.info, &mut obj)?;
                check_namespace(&rr.info, rr.namespace.as_deref(), &mut obj)?;
                check_url_name(&obj, &name)?;
                check_namespace_accepts(state, &rr.info, &ns, &name)?;
                match state.pipeline().create(&rr.info, obj, &opts.write).await {
                    // Created by someone else meanwhile: apply to that object instead.
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    Err(e) => return Err(e),
                    Ok((json, warnings)) => {
                        let mut all = apply_warnings;
                        all.extend(warnings);
                        return Ok(Reply::with_warnings(json_response(201, json), all));
                    }
                }
            }
            return Err(ApiError::not_found(&rr.info.group, &rr.info.plural, &name));
        };
        let old = current.value();
        let mut new = patch_request::apply_patch(
            &rr.info,
            kind,
            &old,
            &patch,
            &opts.write.field_manager,
            force,
            rr.subresource.as_deref(),
        )?;
        check_type(&rr.info, &mut new).map_err(|e| {
            ApiError::bad_request(format!("patch changed the object's type: {}", e.message))
        })?;
        // Upstream checks the patch's repeated keys and the patched object's fields like a
        // create's body (`fieldValidation`).
        let mut field_warnings = if kind == PatchKind::Apply {
            apply_warnings.clone()
        } else {
            crate::strict_decoding::check_patch(&rr.info, kind, &mut new, body, opts.strict)?
        };
        check_url_name(&new, &name)?;
        check_namespace(&rr.info, rr.namespace.as_deref(), &mut new)?;
        // The patched object inherits the resourceVersion of the version it was applied to,
        // unless the patch itself set one: that is the precondition, checked against the
        // version just read. When the object changes between this read and the commit, the
        // patch is applied again to the fresh object (upstream `patcher.patchResource` inside
        // `GuaranteedUpdate`), so a patch without a resourceVersion never answers 409, while
        // one carrying a stale resourceVersion fails the check on the next round.
        let patched_rv = new["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if !patched_rv.is_empty() && patched_rv != current.rv.to_string() {
            return Err(ApiError::conflict(&rr.info.group, &rr.info.plural, &name));
        }
        match state
            .pipeline()
            .update(
                &rr.info,
                rr.subresource.as_deref(),
                &current,
                new,
                &opts.write,
            )
            .await
        {
            Err(e) if is_store_conflict(&e) => {
                tokio::task::yield_now().await;
                continue;
            }
            Err(e) => return Err(e),
            Ok((json, warnings)) => {
                field_warnings.extend(warnings);
                return Ok(Reply::with_warnings(
                    json_response(200, json),
                    field_warnings,
                ));
            }
        }
    }
    Err(ApiError::conflict(&rr.info.group, &rr.info.plural, &name))
}

fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions {
        propagation: query.get("propagationPolicy").map(str::to_string),
        grace_period: query
            .get("gracePeriodSeconds")
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!("gracePeriodSeconds: invalid value {v:?}"))
                })
            })
            .transpose()?,
        dry_run: query.dry_run()?,
        ..Default::default()
    };
    if !body.is_empty() {
        let v: Value = if crate::protobuf::is_protobuf(body) {
            crate::protobuf::decode_delete_options(body)?
        } else {
            serde_json::from_slice(body)
                .or_else(|_| svcplane_rules::bounded_yaml::from_slice(body))
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "the body of the DeleteOptions is not valid: {e}"
                    ))
                })?
        };
        if let Some(p) = v["propagationPolicy"].as_str() {
            opts.propagation = Some(p.to_string());
        }
        if let Some(orphan) = v["orphanDependents"].as_bool() {
            if opts.propagation.is_none() {
                opts.propagation = Some(if orphan { "Orphan" } else { "Background" }.to_string());
            }
        }
        if let Some(g) = v["gracePeriodSeconds"].as_i64() {
            opts.grace_period = Some(g);
        }
        if let Some(u) = v["preconditions"]["uid"].as_str() {
            opts.uid = Some(u.to_string());
        }
        if let Some(r) = v["preconditions"]["resourceVersion"].as_str() {
            opts.resource_version = Some(r.to_string());
        }
        if v["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d == "All"))
        {
            opts.dry_run = true;
        }
    }
    if let Some(p) = &opts.propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                format!("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
                vec![],
            ));
        }
    }
    if opts.grace_period.is_some_and(|g| g < 0) {
        opts.grace_period = Some(0);
    }
    Ok(opts)
}

async fn delete(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    if rr.subresource.is_some() {
        return Err(ApiError::method_not_allowed(
            "delete is not allowed on subresources",
        ));
    }
    let opts = delete_options(query, body)?;
    let name = rr.name.clone().unwrap_or_default();
    let ns = store_key_ns(rr);
    let (status, value) = state.pipeline().delete(&rr.info, &ns, &name, &opts).await?;
    // An object that is gone (not merely marked for deletion) is reported as a `Status` by
    // most resources (upstream `Store.finalizeDelete`).
    if status == 200 && !opts.dry_run && !rr.info.strategy.returns_deleted_object() {
        let deleted: Value = serde_json::from_str(&value).unwrap_or_default();
        let uid = metadata::uid(&deleted);
        let still_there = state
            .store
            .get(&rr.info.key(), &ns, &name)
            .is_some_and(|o| o.uid == uid);
        if !still_there {
            let body = crate::error::success_status(&rr.info.group, &rr.info.plural, &name, uid);
            return Ok(Reply::new(value_response(200, &body)));
        }
    }
    Ok(Reply::new(json_response(status, value)))
}

async fn delete_collection(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    _headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    // Upstream registers no DELETE route on the collection of a resource whose storage is not
    // a collection deleter (namespaces): go-restful answers 405.
    if !crate::discovery::verbs(&rr.info).contains(&"deletecollection") {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let opts = delete_options(query, body)?;
    let selectors = Selectors::from_query(&rr.info, query)?;
    let (rv, items, _) = state.store.list(
        &rr.info.key(),
        rr.namespace.as_deref(),
        |o| selectors.matches(o),
        None,
        None,
    );
    let mut deleted = Vec::new();
    for item in items {
        match state
            .pipeline()
            .delete(&rr.info, &item.namespace, &item.name, &opts)
            .await
        {
            Ok((_, json)) => deleted.push(json),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let body = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{{\"resourceVersion\":\"{rv}\"}},\"items\":[{}]}}",
        json!(rr.info.list_kind),
        json!(rr.info.api_version()),
        deleted.join(",")
    );
    Ok(Reply::new(json_response(200, body)))
}
