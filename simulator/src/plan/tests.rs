//! One pass of the simulator over small worlds.

use super::*;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

fn now() -> Timestamp {
    "2026-12-03T06:00:00Z".parse().unwrap()
}

fn node(name: &str, cidr: Option<&str>) -> Arc<Node> {
    let mut v = json!({"metadata": {"name": name},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"}]}});
    if let Some(c) = cidr {
        v["spec"] = json!({"podCIDR": c, "podCIDRs": [c]});
    }
    Arc::new(serde_json::from_value(v).unwrap())
}

fn pod(name: &str, extra: Value) -> Arc<Pod> {
    let mut v = json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Pending"}});
    merge(&mut v, extra);
    Arc::new(serde_json::from_value(v).unwrap())
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn config(delay: u64) -> SimConfig {
    SimConfig {
        ready_delay: Duration::from_secs(delay),
        ..SimConfig::default()
    }
}

fn started(name: &str, node: &str, ip: &str, start: &str, ready: bool) -> Arc<Pod> {
    pod(
        name,
        json!({"spec": {"nodeName": node}, "status": {"phase": "Running", "podIP": ip,
        "podIPs": [{"ip": ip}], "startTime": start,
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
        "containerStatuses": [{"name": "c", "image": "nginx", "imageID": "", "ready": ready,
            "restartCount": 0, "containerID": format!("svcplane-sim://uid-{name}/c")}]}}),
    )
}

fn kinds(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::AssignPodCidrs { node, cidrs } => format!("cidr {node} {cidrs:?}"),
            Action::Bind { pod, node } => format!("bind {} {node}", pod.name),
            Action::Unschedulable { pod, .. } => format!("unschedulable {}", pod.name),
            Action::Start { pod, ips, .. } => format!("start {} {ips:?}", pod.name),
            Action::SetReady { pod, ready, .. } => format!("ready {} {ready}", pod.name),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn node_ipam_gives_nodes_without_a_pod_cidr_the_next_free_block() {
    let world = World {
        pods: vec![],
        nodes: vec![
            node("a", None),
            node("b", Some("10.244.0.0/24")),
            node("c", None),
        ],
        ..Default::default()
    };
    let pass = plan(&world, &Memory::default(), &config(0), now());
    assert_eq!(
        kinds(&pass),
        ["cidr a [10.244.1.0/24]", "cidr c [10.244.2.0/24]"]
    );
    // Without a cluster CIDR there is no node IPAM.
    let off = SimConfig {
        cluster_cidrs: vec![],
        ..config(0)
    };
    assert!(plan(&world, &Memory::default(), &off, now())
        .actions
        .is_empty());
}

#[test]
fn unbound_pods_spread_over_nodes_and_unfit_ones_are_marked_once() {
    let world = World {
        pods: vec![
            started("old", "a", "10.244.0.2", "2026-12-03T05:00:00Z", true),
            pod("p1", json!({})),
            pod("p2", json!({})),
            pod("p3", json!({"spec": {"nodeSelector": {"disk": "none"}}})),
            pod("other", json!({"spec": {"schedulerName": "someone-else"}})),
        ],
        nodes: vec![
            node("a", Some("10.244.0.0/24")),
            node("b", Some("10.244.1.0/24")),
        ],
        ..Default::default()
    };
    let pass = plan(&world, &Memory::default(), &config(0), now());
    assert_eq!(kinds(&pass), ["bind p1 b", "bind p2 a", "unschedulable p3"]);
    let Action::Unschedulable { message, .. } = &pass.actions[2] else {
        unreachable!()
    };
    assert!(
        message.starts_with("0/2 nodes are available: 2 node(s) didn't match"),
        "{message}"
    );
    // Once written (memory, then the world), the same message is not written again; the
    // bindings are remembered until the world shows them, so nothing is bound twice.
    let mut memory = Memory::default();
    for a in &pass.actions {
        memory.record(a, now());
    }
    assert!(plan(&world, &memory, &config(0), now()).actions.is_empty());
}

#[test]
fn the_kubelet_starts_bound_pods_with_free_addresses_and_leaves_hand_written_ones() {
    let hand = pod(
        "hand",
        json!({"spec": {"nodeName": "a"}, "status": {"phase": "Running",
        "podIP": "10.244.0.2", "conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    let world = World {
        pods: vec![
            hand,
            pod("x", json!({"spec": {"nodeName": "a"}})),
            pod("y", json!({"spec": {"nodeName": "a"}})),
            pod("z", json!({"spec": {"nodeName": "nowhere"}})),
            pod("h", json!({"spec": {"nodeName": "a", "hostNetwork": true}})),
        ],
        nodes: vec![node("a", Some("10.244.0.0/24"))],
        ..Default::default()
    };
    let mut memory = Memory::default();
    // x was started by an earlier pass whose write the world does not show yet.
    memory.record(
        &Action::Start {
            pod: PodRef::of(&world.pods[1]),
            ips: vec!["10.244.0.3".parse().unwrap()],
            status: json!({}),
        },
        now(),
    );
    let pass = plan(&world, &memory, &config(2), now());
    assert_eq!(
        kinds(&pass),
        ["start h [192.0.2.1]", "start y [10.244.0.4]"]
    );
    assert_eq!(pass.next_due, Some(now() + Duration::from_secs(2)));
    let Action::Start { status, .. } = &pass.actions[1] else {
        unreachable!()
    };
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["containerStatuses"][0]["ready"], false);
    // With no delay, a started Pod is Ready at once.
    let pass = plan(&world, &memory, &config(0), now());
    let Action::Start { status, .. } = &pass.actions[1] else {
        unreachable!()
    };
    assert_eq!(status["containerStatuses"][0]["ready"], true);
    assert_eq!(pass.next_due, None);
}

#[test]
fn readiness_follows_the_delay_and_the_hold_annotation() {
    let fresh = started("fresh", "a", "10.244.0.2", "2026-12-03T05:59:59Z", false);
    let due = started("due", "a", "10.244.0.3", "2026-12-03T05:59:00Z", false);
    let mut held = serde_json::to_value(
        started("held", "a", "10.244.0.4", "2026-12-03T05:00:00Z", true).as_ref(),
    )
    .unwrap();
    held["metadata"]["annotations"] = json!({"svcplane.io/hold-not-ready": "true"});
    let held: Arc<Pod> = Arc::new(serde_json::from_value(held).unwrap());
    let deleting = started("bye", "a", "10.244.0.5", "2026-12-03T05:00:00Z", false);
    let mut deleting_json = serde_json::to_value(deleting.as_ref()).unwrap();
    deleting_json["metadata"]["deletionTimestamp"] = json!("2026-12-03T05:59:30Z");
    let deleting: Arc<Pod> = Arc::new(serde_json::from_value(deleting_json).unwrap());
    let world = World {
        pods: vec![fresh, due, held, deleting],
        nodes: vec![node("a", Some("10.244.0.0/24"))],
        ..Default::default()
    };
    let pass = plan(&world, &Memory::default(), &config(5), now());
    assert_eq!(kinds(&pass), ["ready due true", "ready held false"]);
    assert_eq!(pass.next_due, Some("2026-12-03T06:00:04Z".parse().unwrap()));
}
