//! `pods/binding`: assigning a Pod to a Node, as upstream's `BindingREST`
//! (`pkg/registry/core/pod/storage/storage.go`: `Create` → `assignPod` →
//! `setPodNodeAndMetadata`) and `ValidatePodBinding` (`pkg/apis/core/validation`) do.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::metadata;

/// Checks the `Binding` against the Pod's URL name and returns the Pod bound to its target:
/// `spec.nodeName` set, the Binding's annotations added, `PodScheduled=True` in its status.
/// A Pod that is already bound or being deleted is a 409 Conflict, as upstream.
pub(crate) fn bind(pod: &Value, binding: &Value, url_name: &str) -> Result<Value, ApiError> {
    let binding_name = metadata::name(binding);
    if !binding_name.is_empty() && binding_name != url_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({binding_name}) does not match the name on the URL ({url_name})"
        )));
    }
    let target_kind = binding["target"]["kind"].as_str().unwrap_or_default();
    let target_name = binding["target"]["name"].as_str().unwrap_or_default();
    let mut problems = Vec::new();
    if !target_kind.is_empty() && target_kind != "Node" {
        problems.push(format!(
            "target.kind: Unsupported value: \"{target_kind}\": supported values: \"Node\", \"<empty>\""
        ));
    }
    if target_name.is_empty() {
        problems.push("target.name: Required value".to_string());
    }
    if !problems.is_empty() {
        let causes = problems
            .iter()
            .map(|p| {
                let (field, message) = p.split_once(": ").unwrap_or(("", p));
                crate::error::Cause {
                    reason: if message.starts_with("Required") {
                        "FieldValueRequired".into()
                    } else {
                        "FieldValueNotSupported".into()
                    },
                    message: message.to_string(),
                    field: field.to_string(),
                }
            })
            .collect();
        return Err(ApiError::invalid(
            "",
            "Binding",
            url_name,
            format!("Binding \"{url_name}\" is invalid: {}", problems.join(", ")),
            causes,
        ));
    }
    if metadata::is_deleting(pod) {
        return Err(ApiError::conflict_with(
            "",
            "pods",
            url_name,
            format!("Operation cannot be fulfilled on pods/binding \"{url_name}\": pod {url_name} is being deleted, cannot be assigned to a host"),
        ));
    }
    if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Err(ApiError::conflict_with(
            "",
            "pods",
            url_name,
            format!("Operation cannot be fulfilled on pods/binding \"{url_name}\": pod {url_name} is already assigned to node \"{node}\""),
        ));
    }
    let mut bound = pod.clone();
    bound["spec"]["nodeName"] = json!(target_name);
    if let Some(annotations) = binding["metadata"]["annotations"].as_object() {
        for (k, v) in annotations {
            bound["metadata"]["annotations"][k] = v.clone();
        }
    }
    let scheduled = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": metadata::now_rfc3339()});
    let mut conditions: Vec<Value> = bound["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != "PodScheduled");
    conditions.push(scheduled);
    bound["status"]["conditions"] = Value::Array(conditions);
    Ok(bound)
}

/// Upstream's answer to a successful binding: a `Status` with code 201.
pub(crate) fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(extra: Value) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}});
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                p.insert(k.clone(), v.clone());
            }
        }
        p
    }

    fn binding(target: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "annotations": {"a": "b"}}, "target": target})
    }

    #[test]
    fn binding_sets_the_node_the_annotations_and_pod_scheduled() {
        let bound = bind(
            &pod(json!({})),
            &binding(json!({"kind": "Node", "name": "n1"})),
            "p",
        )
        .unwrap();
        assert_eq!(bound["spec"]["nodeName"], "n1");
        assert_eq!(bound["metadata"]["annotations"]["a"], "b");
        let conditions = bound["status"]["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0]["status"], "True");
    }

    #[test]
    fn bad_bindings_are_refused_as_upstream() {
        let p = pod(json!({}));
        let err = bind(&p, &binding(json!({"kind": "Pod"})), "p").unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "Binding \"p\" is invalid: target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\", target.name: Required value"
        );
        let err = bind(&p, &binding(json!({"name": "n"})), "q").unwrap_err();
        assert_eq!(err.code, 400);
        let bound = pod(json!({"spec": {"nodeName": "n0", "containers": []}}));
        let err = bind(&bound, &binding(json!({"name": "n1"})), "p").unwrap_err();
        assert_eq!(err.code, 409);
        assert!(
            err.message
                .ends_with("pod p is already assigned to node \"n0\""),
            "{}",
            err.message
        );
        let deleting =
            pod(json!({"metadata": {"name": "p", "deletionTimestamp": "2026-12-03T00:00:00Z"}}));
        let err = bind(&deleting, &binding(json!({"name": "n1"})), "p").unwrap_err();
        assert!(err
            .message
            .ends_with("is being deleted, cannot be assigned to a host"));
    }
}
