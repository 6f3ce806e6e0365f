//! Objects a fresh kube-apiserver creates for itself: the system namespaces and the
//! `default/kubernetes` Service, which takes the first address of the primary service range.

use std::sync::Arc;

use serde_json::json;

use crate::error::ApiError;
use crate::pipeline::DEV_COMPONENTS;
use crate::state::AppState;
use crate::Error;

/// Namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the bootstrap objects that do not exist yet.
pub async fn run(state: &Arc<AppState>) -> Result<(), Error> {
    let namespaces = state
        .registry
        .get("", "v1", "namespaces")
        .expect("built-in");
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        ignore_exists(state.pipeline().create_internal(&namespaces, obj).await)?;
    }
    let services = state.registry.get("", "v1", "services").expect("built-in");
    // Allocation runs before the store sees the name (as upstream's `BeginCreate`), so
    // re-creating an existing `kubernetes` Service would fail on its taken ClusterIP.
    if state
        .store
        .get(&services.key(), "default", "kubernetes")
        .is_some()
    {
        return Ok(());
    }
    let mut spec = json!({
        "type": "ClusterIP",
        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
        "sessionAffinity": "None",
    });
    if let Some(ip) = state.services.first_address() {
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
    }
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": spec,
    });
    ignore_exists(state.pipeline().create_internal(&services, svc).await)?;
    Ok(())
}

fn ignore_exists(r: Result<String, ApiError>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(Error::Bootstrap(e.message)),
    }
}

/// Creates the objects of a multi-document YAML (or JSON) manifest, as `kubectl create` would,
/// then writes each object's `status` through the status subresource when it has one (so
/// example Pods carry IPs and readiness). Returns `kind/name` of each object created.
pub async fn apply_manifests(state: &Arc<AppState>, text: &str) -> Result<Vec<String>, Error> {
    let mut created = Vec::new();
    // Bounded: nesting and alias expansion are limited while parsing.
    let documents = svcplane_rules::bounded_yaml::documents(text)
        .map_err(|(i, e)| Error::Bootstrap(format!("document {}: not valid YAML: {e}", i - 1)))?;
    for (i, value) in documents.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let api_version = value["apiVersion"].as_str().unwrap_or_default();
        let kind = value["kind"].as_str().unwrap_or_default();
        let info = state.registry.by_kind(api_version, kind).ok_or_else(|| {
            Error::Bootstrap(format!(
                "document {i}: no resource serves apiVersion {api_version:?} kind {kind:?}"
            ))
        })?;
        let mut obj = value.clone();
        if info.namespaced && obj["metadata"]["namespace"].is_null() {
            obj["metadata"]["namespace"] = json!("default");
        }
        let status = obj.get("status").cloned();
        let name = crate::metadata::name(&obj).to_string();
        // Existing objects (a restart with --state-file) are kept as they are; checked first
        // because Service allocation runs before the store would answer AlreadyExists.
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let store_ns = if info.namespaced { ns } else { "" };
        if !name.is_empty() && state.store.get(&info.key(), store_ns, &name).is_some() {
            continue;
        }
        match state.pipeline().create_internal(&info, obj).await {
            Ok(_) => {}
            Err(e) if e.reason == "AlreadyExists" => continue,
            Err(e) => return Err(Error::Bootstrap(format!("{kind} {name:?}: {}", e.message))),
        }
        if let (Some(status), true) = (status, info.has_status) {
            let ns = if info.namespaced {
                value["metadata"]["namespace"].as_str().unwrap_or("default")
            } else {
                ""
            };
            if let Some(current) = state.store.get(&info.key(), ns, &name) {
                let mut v = current.value();
                v["status"] = status;
                state
                    .pipeline()
                    .update_internal(&info, Some("status"), &current, v, DEV_COMPONENTS)
                    .await
                    .map_err(|e| {
                        Error::Bootstrap(format!("{kind} {name:?} status: {}", e.message))
                    })?;
            }
        }
        created.push(format!("{}/{name}", kind.to_lowercase()));
    }
    Ok(created)
}

/// Creates `obj` through the write pipeline after deleting a stored object of the same kind
/// and name (its failure to delete is ignored: the create then reports the conflict).
pub async fn replace(state: &Arc<AppState>, obj: serde_json::Value) -> Result<String, ApiError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let info = state.registry.by_kind(api_version, kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "no resource serves apiVersion {api_version:?} kind {kind:?}"
        ))
    })?;
    let name = crate::metadata::name(&obj).to_string();
    let ns = if info.namespaced {
        obj["metadata"]["namespace"].as_str().unwrap_or("default")
    } else {
        ""
    };
    if state.store.get(&info.key(), ns, &name).is_some() {
        let _ = state
            .pipeline()
            .delete(&info, ns, &name, &Default::default())
            .await;
    }
    state.pipeline().create_internal(&info, obj).await
}
