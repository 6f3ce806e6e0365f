//! The kubelet stand-in's Pod statuses: what a kubelet reports for a Pod it started (kubelet
//! `generateAPIPodStatus`: phase, conditions, addresses, container statuses), and the readiness
//! flips after that.

use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use crate::{CONTAINER_ID_SCHEME, HOLD_NOT_READY_ANNOTATION};

/// Whether the simulator started this Pod: one of its container IDs carries our scheme.
pub(crate) fn is_managed(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|list| {
            list.iter().any(|c| {
                c.container_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with(CONTAINER_ID_SCHEME))
            })
        })
}

/// Whether the Pod is held not-ready by [`HOLD_NOT_READY_ANNOTATION`].
pub(crate) fn held_not_ready(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HOLD_NOT_READY_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether the Pod's `Ready` condition is `True`.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// When the Pod's containers started (`status.startTime`).
pub(crate) fn start_time(pod: &Pod) -> Option<Timestamp> {
    let time = pod.status.as_ref()?.start_time.as_ref()?;
    Some(time.0)
}

fn container_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The Node's InternalIP addresses, one per family, first first (`status.hostIPs`).
pub(crate) fn host_ips(node: &Node) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    for addr in addresses.into_iter().flatten() {
        if addr.type_ != "InternalIP" {
            continue;
        }
        if let Ok(ip) = addr.address.parse::<IpAddr>() {
            if !out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) {
                out.push(ip);
            }
        }
    }
    out
}

fn condition(kind: &str, ok: bool, now: &str, unready: &[String]) -> Value {
    let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" },
                       "lastProbeTime": null, "lastTransitionTime": now});
    if !ok {
        c["reason"] = json!("ContainersNotReady");
        c["message"] = json!(format!(
            "containers with unready status: [{}]",
            unready.join(" ")
        ));
    }
    c
}

fn ready_conditions(names: &[String], ready: bool, now: &str) -> [Value; 2] {
    let unready: Vec<String> = if ready { Vec::new() } else { names.to_vec() };
    [
        condition("Ready", ready, now, &unready),
        condition("ContainersReady", ready, now, &unready),
    ]
}

/// The `status` of a Pod the kubelet stand-in starts now on `node` with `pod_ips` (the
/// Node's addresses for `hostNetwork` Pods): `Running`, every container running, and `Ready`
/// as given.
pub(crate) fn started_status(
    pod: &Pod,
    node: &Node,
    pod_ips: &[IpAddr],
    now: Timestamp,
    ready: bool,
) -> Value {
    let now = now.to_string();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let names = container_names(pod);
    let hosts = host_ips(node);
    let images = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let statuses: Vec<Value> = images
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": format!("{CONTAINER_ID_SCHEME}{uid}/{}", c.name),
                "ready": ready,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let [ready_c, containers_c] = ready_conditions(&names, ready, &now);
    let mut status = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", true, &now, &[]),
            condition("Initialized", true, &now, &[]),
            ready_c,
            containers_c,
            condition("PodScheduled", true, &now, &[]),
        ],
        "podIP": pod_ips.first().map(|ip| ip.to_string()),
        "podIPs": pod_ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect::<Vec<_>>(),
        "hostIP": hosts.first().map(|ip| ip.to_string()),
        "hostIPs": hosts.iter().map(|ip| json!({"ip": ip.to_string()})).collect::<Vec<_>>(),
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": pod.status.as_ref().and_then(|s| s.qos_class.clone()).unwrap_or_else(|| "BestEffort".into()),
    });
    if hosts.is_empty() {
        let map = status.as_object_mut().expect("object");
        map.remove("hostIP");
        map.remove("hostIPs");
    }
    status
}

/// The `status` of a managed Pod with its readiness set to `ready`: the `Ready` and
/// `ContainersReady` conditions and every container's `ready`, the rest as it was.
pub(crate) fn readiness_status(pod: &Pod, ready: bool, now: Timestamp) -> Value {
    let now = now.to_string();
    let mut status =
        serde_json::to_value(pod.status.clone().unwrap_or_default()).unwrap_or_default();
    let names = container_names(pod);
    let [ready_c, containers_c] = ready_conditions(&names, ready, &now);
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    conditions.retain(|c| c["type"] != "Ready" && c["type"] != "ContainersReady");
    conditions.push(ready_c);
    conditions.push(containers_c);
    status["conditions"] = Value::Array(conditions);
    if let Some(list) = status["containerStatuses"].as_array_mut() {
        for c in list {
            c["ready"] = json!(ready);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u1"},
            "spec": {"nodeName": "n", "containers": [{"name": "web", "image": "nginx"}, {"name": "side", "image": "envoy"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"}
        }))
        .unwrap()
    }

    fn node() -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n"}, "status": {"addresses": [
            {"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "192.0.2.1"},
            {"type": "InternalIP", "address": "192.0.2.9"}, {"type": "InternalIP", "address": "2001:db8::1"}]}}))
        .unwrap()
    }

    #[test]
    fn a_started_pod_is_running_with_addresses_and_managed_containers() {
        let now: Timestamp = "2026-12-03T06:00:00Z".parse().unwrap();
        let ips: Vec<IpAddr> = vec!["10.244.1.2".parse().unwrap(), "fd00::2".parse().unwrap()];
        let status = started_status(&pod(), &node(), &ips, now, false);
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.244.1.2");
        assert_eq!(
            status["podIPs"],
            json!([{"ip": "10.244.1.2"}, {"ip": "fd00::2"}])
        );
        assert_eq!(status["hostIP"], "192.0.2.1");
        assert_eq!(
            status["hostIPs"],
            json!([{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}])
        );
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(
            ready["message"],
            "containers with unready status: [web side]"
        );
        assert_eq!(
            status["containerStatuses"][1]["containerID"],
            "svcplane-sim://u1/side"
        );
        let mut started = pod();
        started.status = Some(serde_json::from_value(status).unwrap());
        assert!(is_managed(&started));
        assert!(!is_managed(&pod()));
        assert!(!is_ready(&started));
        assert_eq!(start_time(&started), Some(now));
        let flipped = readiness_status(&started, true, now);
        started.status = Some(serde_json::from_value(flipped.clone()).unwrap());
        assert!(is_ready(&started));
        assert_eq!(flipped["containerStatuses"][0]["ready"], true);
        assert_eq!(flipped["conditions"].as_array().unwrap().len(), 5);
        assert_eq!(flipped["podIP"], "10.244.1.2");
    }
}
