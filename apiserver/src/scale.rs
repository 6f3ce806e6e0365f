//! The `/scale` subresource of the kinds whose row says so (Deployments, ReplicaSets,
//! StatefulSets, ReplicationControllers): an `autoscaling/v1` `Scale` view of `spec.replicas`
//! (upstream `pkg/registry/apps/deployment/storage/storage.go` `ScaleREST`, and
//! `scaleFromDeployment`). GET reads it; PUT and PATCH (JSON, merge and strategic merge
//! patches, which for `Scale` are the same as a merge patch: it has no lists) write
//! `spec.replicas` of the object through the ordinary update pipeline.
//!
//! Short of upstream: server-side apply to `/scale` is refused with 415.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::patch_request::{self, PatchKind};
use crate::request::{Query, ResourceRequest, Verb};
use crate::state::AppState;

/// The label selector of the scaled object as a string (`app=web,tier in (a,b)`), as upstream
/// `metav1.LabelSelectorAsSelector(...).String()` (ReplicationControllers: their plain map).
fn selector(obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    let is_label_selector =
        sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some();
    if is_label_selector {
        return crate::selector::LabelSelector::from_meta(sel)
            .map(|s| s.to_string())
            .unwrap_or_default();
    }
    let mut labels: Vec<String> = sel
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    labels.sort();
    labels.join(",")
}

/// The `Scale` of an object.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut metadata = serde_json::Map::new();
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(key).filter(|v| !v.is_null()) {
            metadata.insert(key.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector(obj),
        },
    })
}

fn reply(value: &Value, status: u16) -> crate::reply::Reply {
    crate::reply::Reply::new(crate::codec::value_response(status, value))
}

/// Serves GET, PUT and PATCH of `{resource}/{name}/scale`.
pub async fn handle(
    state: &Arc<AppState>,
    rr: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    opts: crate::pipeline::WriteOptions,
) -> Result<crate::reply::Reply, ApiError> {
    let info = &rr.info;
    let name = rr.name.clone().unwrap_or_default();
    let ns = if info.namespaced {
        rr.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let not_found = || ApiError::not_found(&info.group, &info.plural, &name);
    let current = state
        .store
        .get(&info.key(), &ns, &name)
        .ok_or_else(not_found)?;
    let old = current.value();
    let scale = scale_of(&old);
    let wanted = match rr.verb {
        Verb::Get => {
            query.resource_version()?;
            return Ok(reply(&scale, 200));
        }
        Verb::Update => serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a valid Scale: {e}")))?,
        Verb::Patch => {
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = match PatchKind::from_content_type(content_type)? {
                PatchKind::Strategic => PatchKind::Merge,
                other => other,
            };
            let patch = patch_request::decode_patch(kind, body)?;
            patch_request::apply_patch(info, kind, &scale, &patch, "", false, Some("scale"))?
        }
        Verb::Apply => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml (server-side apply to /scale is not supported)",
            ))
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
    };
    let rv = wanted["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !rv.is_empty() && rv != current.rv.to_string() {
        return Err(ApiError::conflict(&info.group, &info.plural, &name));
    }
    let replicas = &wanted["spec"]["replicas"];
    let Some(replicas) = replicas.as_i64().or(replicas.is_null().then_some(0)) else {
        return Err(ApiError::bad_request(format!(
            "Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: {replicas} is not an integer"
        )));
    };
    if replicas < 0 {
        // Upstream `ValidateScale`.
        let errors = [svcplane_rules::FieldError::invalid(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        )];
        return Err(ApiError::from_field_errors(
            "autoscaling",
            "Scale",
            &name,
            &errors,
        ));
    }
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(replicas);
    if let Some(m) = new["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let (json, warnings) = state
        .pipeline()
        .update(info, None, &current, new, &opts)
        .await?;
    let updated: Value = serde_json::from_str(&json).unwrap_or_default();
    Ok(crate::reply::Reply::with_warnings(
        crate::codec::value_response(200, &scale_of(&updated)),
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reads_replicas_and_the_selector() {
        let deploy = json!({"metadata": {"name": "web", "namespace": "d", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}});
        let s = scale_of(&deploy);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        let rc = json!({"metadata": {"name": "r"}, "spec": {"selector": {"a": "b"}}});
        assert_eq!(scale_of(&rc)["status"]["selector"], "a=b");
        assert_eq!(scale_of(&rc)["spec"]["replicas"], 1);
        let expr = json!({"spec": {"selector": {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}}});
        assert_eq!(
            scale_of(&expr)["status"]["selector"],
            "app=web,tier in (a,b)"
        );
    }
}
