//! `pods/binding`, `pods/eviction` and `pods/log` (upstream
//! `pkg/registry/core/pod/storage/storage.go` `BindingREST`, `eviction.go` and
//! `pkg/registry/core/pod/rest/log.go`). `pods/binding` is reached through the create handler
//! ([`bind_pod`]); the others through [`handle`].
//!
//! Eviction follows upstream's `EvictionREST.Create`: the Eviction's name must be the Pod's;
//! a Pod that is terminal, pending or already being deleted is deleted without consulting
//! PodDisruptionBudgets; otherwise the one PDB selecting the Pod must allow a disruption
//! (429 with cause `DisruptionBudget` when it does not, 500 when several select it), its
//! `status.disruptionsAllowed` is decremented and `status.disruptedPods` records the Pod,
//! then the Pod is deleted with the Eviction's `deleteOptions`.
//!
//! The log subresource answers an empty `text/plain` log: there are no containers behind the
//! Pods of this server. Short of upstream: no `follow`, `previous` or `tailLines` behaviour
//! beyond validating the container name.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderMap;
use serde_json::{json, Value};

use crate::codec::{decode_body, json_response};
use crate::error::{ApiError, Cause};
use crate::pipeline::{DeleteOptions, DEV_COMPONENTS};
use crate::reply::Reply;
use crate::request::{Query, ResourceRequest, Verb};
use crate::request_options::{store_key_ns, write_options};
use crate::selector::LabelSelector;
use crate::state::AppState;

/// Whether this module serves the request's subresource.
pub fn serves(rr: &ResourceRequest) -> bool {
    rr.info.group.is_empty()
        && rr.info.plural == "pods"
        && matches!(rr.subresource.as_deref(), Some("eviction" | "log"))
}

/// Serves `pods/{name}/eviction` (create) and `pods/{name}/log` (get).
pub async fn handle(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let name = rr.name.clone().unwrap_or_default();
    let ns = rr.namespace.clone().unwrap_or_default();
    match (rr.subresource.as_deref(), rr.verb) {
        (Some("eviction"), Verb::Create) => evict(state, rr, &ns, &name, headers, body).await,
        (Some("log"), Verb::Get) => log(state, rr, &ns, &name, query),
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// `POST pods/NAME/binding`: binds the Pod to the Binding's target Node in one write
/// ([`crate::binding`]).
pub async fn bind_pod(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let opts = write_options(query, headers, rr.verb)?;
    let (binding, _) = decode_body(headers, body)?;
    let kind = binding["kind"].as_str().unwrap_or("Binding");
    if !kind.is_empty() && kind != "Binding" {
        return Err(ApiError::bad_request(format!(
            "the body of the request was of kind {kind:?}, not Binding"
        )));
    }
    let name = rr.name.clone().unwrap_or_default();
    let ns = store_key_ns(rr);
    let current = state
        .store
        .get(&rr.info.key(), &ns, &name)
        .ok_or_else(|| ApiError::not_found(&rr.info.group, &rr.info.plural, &name))?;
    let bound = crate::binding::bind(&current.value(), &binding, &name)?;
    state
        .pipeline()
        .update(&rr.info, Some("binding"), &current, bound, &opts.write)
        .await?;
    Ok(Reply::new(json_response(
        201,
        crate::binding::success().to_string(),
    )))
}

fn log(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    ns: &str,
    name: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let pod = state
        .store
        .get(&rr.info.key(), ns, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?
        .value();
    let spec = &pod["spec"];
    let containers: Vec<&str> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| spec[list].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    match query.get("container") {
        // Upstream `podLogOptions` validation, then `pod.ValidContainer`.
        Some(c) if !containers.contains(&c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )))
        }
        None if spec["containers"].as_array().is_some_and(|c| c.len() > 1) => {
            let names = spec["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect::<Vec<_>>()
                .join(" ");
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{names}]"
            )));
        }
        _ => {}
    }
    for key in ["tailLines", "limitBytes", "sinceSeconds"] {
        if let Some(v) = query.get(key) {
            if v.parse::<i64>().map_or(true, |n| n < 0) {
                return Err(ApiError::bad_request(format!(
                    "{key}: Invalid value: {v:?}: must be a non-negative integer"
                )));
            }
        }
    }
    let mut resp = http::Response::new(crate::codec::Body::empty());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(Reply::new(resp))
}

/// Upstream `canIgnorePDB`: terminal, pending and terminating Pods are evicted without a
/// disruption budget check.
fn can_ignore_pdb(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_null()
        || matches!(
            pod["status"]["phase"].as_str(),
            None | Some("" | "Succeeded" | "Failed" | "Pending")
        )
}

fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

async fn evict(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let (eviction, _) = decode_body(headers, body)?;
    if !eviction.is_object() {
        return Err(ApiError::bad_request(
            "the body of an eviction must be a policy/v1 Eviction object",
        ));
    }
    match (eviction["apiVersion"].as_str(), eviction["kind"].as_str()) {
        (None | Some("policy/v1" | "policy/v1beta1"), None | Some("Eviction")) => {}
        (v, k) => {
            return Err(ApiError::bad_request(format!(
            "the body of an eviction must be a policy/v1 Eviction, got apiVersion {:?} kind {:?}",
            v.unwrap_or_default(),
            k.unwrap_or_default()
        )))
        }
    }
    if eviction["metadata"]["name"].as_str() != Some(name) {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    if let Some(body_ns) = eviction["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
    {
        if body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let pod = state
        .store
        .get(&rr.info.key(), ns, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?
        .value();
    let opts = delete_options(&eviction["deleteOptions"]);
    if !can_ignore_pdb(&pod) {
        check_disruption_budget(state, ns, name, &pod, opts.dry_run).await?;
    }
    state.pipeline().delete(&rr.info, ns, name, &opts).await?;
    // Upstream answers `metav1.Status{Status: Success}` with the create's 201.
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    });
    Ok(Reply::new(crate::codec::value_response(201, &status)))
}

fn delete_options(v: &Value) -> DeleteOptions {
    DeleteOptions {
        propagation: v["propagationPolicy"].as_str().map(str::to_string),
        grace_period: v["gracePeriodSeconds"].as_i64().map(|g| g.max(0)),
        uid: v["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: v["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
        dry_run: v["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d == "All")),
    }
}

/// The PodDisruptionBudget check of upstream `EvictionREST.Create` / `checkAndDecrement`.
async fn check_disruption_budget(
    state: &Arc<AppState>,
    ns: &str,
    pod_name: &str,
    pod: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let Some(pdbs) = state.registry.get("policy", "v1", "poddisruptionbudgets") else {
        return Ok(());
    };
    let pod_labels = labels(pod);
    let (_, objects, _) = state
        .store
        .list(&pdbs.key(), Some(ns), |_| true, None, None);
    let matching: Vec<_> = objects
        .into_iter()
        .filter(|o| {
            // policy/v1: a null selector selects nothing, an empty one every Pod.
            LabelSelector::from_meta(&o.value()["spec"]["selector"])
                .is_ok_and(|s| s.matches(&pod_labels))
        })
        .collect();
    let current = match matching.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ))
        }
    };
    let mut pdb = current.value();
    let pdb_name = current.name.clone();
    let too_many = |message: String| {
        let mut err = ApiError::too_many_requests();
        err.message = "Cannot evict pod as it would violate the pod's disruption budget.".into();
        err.details.retry_after_seconds = None;
        err.details.causes.push(Cause {
            reason: "DisruptionBudget".into(),
            message,
            field: String::new(),
        });
        err
    };
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
    if pdb["status"]["observedGeneration"].as_i64().unwrap_or(0) < generation {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        )));
    }
    let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Err(ApiError::forbidden("pdb disruptions allowed is negative"));
    }
    if allowed == 0 {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
            pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0),
            pdb["status"]["currentHealthy"].as_i64().unwrap_or(0)
        )));
    }
    pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if dry_run {
        return Ok(());
    }
    let now = crate::metadata::now_rfc3339();
    if !pdb["status"]["disruptedPods"].is_object() {
        pdb["status"]["disruptedPods"] = json!({});
    }
    pdb["status"]["disruptedPods"][pod_name] = json!(now);
    state
        .pipeline()
        .update_internal(&pdbs, Some("status"), &current, pdb, DEV_COMPONENTS)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_pending_and_terminating_pods_skip_the_budget() {
        assert!(can_ignore_pdb(&json!({"status": {"phase": "Succeeded"}})));
        assert!(can_ignore_pdb(&json!({"status": {"phase": "Pending"}})));
        assert!(can_ignore_pdb(
            &json!({"metadata": {"deletionTimestamp": "x"},
            "status": {"phase": "Running"}})
        ));
        assert!(!can_ignore_pdb(&json!({"status": {"phase": "Running"}})));
    }

    #[test]
    fn delete_options_come_from_the_eviction() {
        let o = delete_options(&json!({"gracePeriodSeconds": -3, "dryRun": ["All"],
            "preconditions": {"uid": "u"}}));
        assert_eq!(o.grace_period, Some(0));
        assert!(o.dry_run);
        assert_eq!(o.uid.as_deref(), Some("u"));
    }
}
