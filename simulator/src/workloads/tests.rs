//! The workload controllers' passes over small worlds (upstream behaviour cited per test).

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::deployment::{POD_TEMPLATE_HASH, REVISION};
use super::hash;
use crate::model::{Action, Plan, SimConfig, World};
use crate::plan::{plan, Memory};

fn now() -> Timestamp {
    "2026-12-03T06:00:00Z".parse().unwrap()
}

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn deployment(
    replicas: i32,
    image: &str,
    strategy: Value,
) -> Arc<k8s_openapi::api::apps::v1::Deployment> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": template(image), "strategy": strategy},
        }))
        .unwrap(),
    )
}

/// A ReplicaSet of the Deployment for `image`, created `age` minutes ago.
fn replica_set(
    image: &str,
    revision: i64,
    replicas: i32,
    available: i32,
    age: i64,
) -> Arc<k8s_openapi::api::apps::v1::ReplicaSet> {
    let hash = hash::template_hash(
        &serde_json::from_value::<k8s_openapi::api::core::v1::PodTemplateSpec>(template(image))
            .unwrap(),
        None,
    );
    let mut t = template(image);
    t["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let created = now() - jiff::SignedDuration::from_mins(age);
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{hash}"), "namespace": "default", "uid": format!("rs-{image}"),
                "creationTimestamp": created.to_string(), "generation": 1,
                "annotations": {REVISION: revision.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                    "uid": "d-uid", "controller": true}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web", POD_TEMPLATE_HASH: hash}},
                "template": t},
            "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available},
        }))
        .unwrap(),
    )
}

fn pod(
    name: &str,
    owner: &str,
    node: Option<&str>,
    ready: bool,
) -> Arc<k8s_openapi::api::core::v1::Pod> {
    let mut v = json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "uid": owner, "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Pending"}});
    if let Some(node) = node {
        v["spec"]["nodeName"] = json!(node);
        v["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready",
            "status": if ready {"True"} else {"False"}, "lastTransitionTime": "2026-12-03T05:00:00Z"}]});
    }
    Arc::new(serde_json::from_value(v).unwrap())
}

/// The workload actions of a pass, in a short form (status writes and Pod creations left out:
/// the ReplicaSets of these worlds have no Pods yet).
fn writes(pass: &Plan) -> Vec<String> {
    pass.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateReplicaSet { name, body, .. } => Some(format!(
                "create {name} replicas={} revision={}",
                body["spec"]["replicas"], body["metadata"]["annotations"][REVISION]
            )),
            Action::ScaleReplicaSet {
                name,
                replicas,
                revision,
                ..
            } => Some(format!("scale {name} {replicas} revision={revision:?}")),
            Action::DeleteReplicaSet { name, .. } => Some(format!("delete {name}")),
            Action::DeletePod { pod, .. } => Some(format!("delete pod {}", pod.name)),
            Action::AnnotateDeployment { revision, .. } => Some(format!("revision {revision}")),
            _ => None,
        })
        .collect()
}

fn pass(world: &World) -> Plan {
    plan(world, &Memory::default(), &SimConfig::default(), now())
}

fn rolling(surge: i32, unavailable: i32) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

fn name_of(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> String {
    rs.metadata.name.clone().unwrap()
}

#[test]
fn a_new_deployment_gets_one_replica_set_named_by_its_template_hash() {
    // upstream getNewReplicaSet: DEPLOYMENT-HASH, revision 1, hash in selector and labels.
    let world = World {
        deployments: vec![deployment(3, "nginx:1", json!({}))],
        ..Default::default()
    };
    let out = pass(&world);
    let expected = name_of(&replica_set("nginx:1", 1, 3, 0, 0));
    assert_eq!(
        writes(&out),
        [
            format!("create {expected} replicas=3 revision=\"1\""),
            "revision 1".into()
        ]
    );
    let Some(Action::CreateReplicaSet { body, owner, .. }) = out.actions.first() else {
        unreachable!()
    };
    assert_eq!(owner, "d-uid");
    let hash = expected.trim_start_matches("web-");
    assert_eq!(
        body["spec"]["selector"]["matchLabels"][POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(
        body["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(body["metadata"]["ownerReferences"][0]["controller"], true);
}

#[test]
fn a_replica_set_creates_missing_pods_once_and_deletes_the_least_valuable_extras() {
    let rs = replica_set("nginx:1", 1, 3, 0, 1);
    let owner = rs.metadata.uid.clone().unwrap();
    let mut world = World {
        replica_sets: vec![rs.clone()],
        pods: vec![pod("a", &owner, Some("n1"), true)],
        ..Default::default()
    };
    let out = pass(&world);
    let creates: Vec<&Action> = out
        .actions
        .iter()
        .filter(|a| matches!(a, Action::CreatePod { .. }))
        .collect();
    assert_eq!(creates.len(), 2);
    let Action::CreatePod { body, name, .. } = creates[0] else {
        unreachable!()
    };
    assert!(name.starts_with(&format!("{}-", name_of(&rs))), "{name}");
    assert_eq!(
        body["metadata"]["labels"][POD_TEMPLATE_HASH],
        rs.metadata
            .name
            .as_deref()
            .unwrap()
            .trim_start_matches("web-")
    );
    assert_eq!(
        body["metadata"]["ownerReferences"][0]["uid"],
        owner.as_str()
    );
    // Once the creations are recorded, the next pass does not create them again.
    let mut memory = Memory::default();
    for a in &out.actions {
        memory.record(a, now());
    }
    let again = plan(&world, &memory, &SimConfig::default(), now());
    assert!(
        !again
            .actions
            .iter()
            .any(|a| matches!(a, Action::CreatePod { .. })),
        "{:?}",
        writes(&again)
    );

    // Scale down to 1 of: ready on a node, not ready on a node, unassigned → the unassigned and
    // the not-ready Pods go (upstream ActivePods ordering).
    let mut small = serde_json::to_value(rs.as_ref()).unwrap();
    small["spec"]["replicas"] = json!(1);
    world.replica_sets = vec![Arc::new(serde_json::from_value(small).unwrap())];
    world.pods = vec![
        pod("ready", &owner, Some("n1"), true),
        pod("unready", &owner, Some("n1"), false),
        pod("pending", &owner, None, false),
    ];
    assert_eq!(
        writes(&pass(&world)),
        ["delete pod pending", "delete pod unready"]
    );
}

#[test]
fn a_rolling_update_surges_then_scales_old_down_only_as_new_pods_become_available() {
    // upstream rolloutRolling with maxSurge 1, maxUnavailable 0 and 4 replicas.
    let old = replica_set("nginx:1", 1, 4, 4, 10);
    let d = deployment(4, "nginx:2", rolling(1, 0));
    let world = World {
        deployments: vec![d.clone()],
        replica_sets: vec![old.clone()],
        ..Default::default()
    };
    let new_name = name_of(&replica_set("nginx:2", 2, 1, 0, 0));
    assert_eq!(
        writes(&pass(&world)),
        [
            format!("create {new_name} replicas=1 revision=\"2\""),
            "revision 2".into()
        ]
    );

    // New ReplicaSet at 1, not available yet: nothing may go down (4 must stay available).
    let world = World {
        deployments: vec![d.clone()],
        replica_sets: vec![old.clone(), replica_set("nginx:2", 2, 1, 0, 0)],
        ..Default::default()
    };
    assert_eq!(writes(&pass(&world)), ["revision 2"]);
    // Its Pod available: one old replica goes.
    let world = World {
        deployments: vec![d.clone()],
        replica_sets: vec![old.clone(), replica_set("nginx:2", 2, 1, 1, 0)],
        ..Default::default()
    };
    assert_eq!(
        writes(&pass(&world)),
        [
            format!("scale {} 3 revision=None", name_of(&old)),
            "revision 2".into()
        ]
    );
    // Old at 3: the new one may grow to 2 (total 5 = replicas + maxSurge).
    let world = World {
        deployments: vec![d.clone()],
        replica_sets: vec![
            replica_set("nginx:1", 1, 3, 3, 10),
            replica_set("nginx:2", 2, 1, 1, 0),
        ],
        ..Default::default()
    };
    assert_eq!(
        writes(&pass(&world)),
        [
            format!("scale {new_name} 2 revision=None"),
            "revision 2".into()
        ]
    );
}

#[test]
fn a_finished_rollout_reports_new_replica_set_available_and_prunes_history() {
    // kubectl rollout status reads updatedReplicas / replicas / availableReplicas and
    // observedGeneration; upstream cleanupDeployment keeps revisionHistoryLimit old sets.
    let mut d = serde_json::to_value(deployment(2, "nginx:4", json!({})).as_ref()).unwrap();
    d["spec"]["revisionHistoryLimit"] = json!(1);
    let d: Arc<k8s_openapi::api::apps::v1::Deployment> =
        Arc::new(serde_json::from_value(d).unwrap());
    let world = World {
        deployments: vec![d],
        replica_sets: vec![
            replica_set("nginx:1", 1, 0, 0, 40),
            replica_set("nginx:2", 2, 0, 0, 30),
            replica_set("nginx:3", 3, 0, 0, 20),
            replica_set("nginx:4", 4, 2, 2, 10),
        ],
        ..Default::default()
    };
    let out = pass(&world);
    let old1 = name_of(&world.replica_sets[0]);
    let old2 = name_of(&world.replica_sets[1]);
    assert_eq!(
        writes(&out),
        [
            format!("delete {old1}"),
            format!("delete {old2}"),
            "revision 4".into()
        ]
    );
    let status = out
        .actions
        .iter()
        .find_map(|a| match a {
            Action::DeploymentStatus { status, .. } => Some(status.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (
            status["replicas"].clone(),
            status["updatedReplicas"].clone(),
            status["availableReplicas"].clone()
        ),
        (json!(2), json!(2), json!(2))
    );
    assert_eq!(status["observedGeneration"], 2);
    let progressing = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    assert_eq!(
        progressing["message"],
        format!(
            "ReplicaSet \"{}\" has successfully progressed.",
            name_of(&world.replica_sets[3])
        )
    );
}

#[test]
fn rolling_back_to_an_old_template_makes_its_replica_set_the_newest_revision() {
    // kubectl rollout undo writes the old ReplicaSet's template back; upstream then gives that
    // ReplicaSet revision max+1 and scales it up.
    let world = World {
        deployments: vec![deployment(2, "nginx:1", rolling(1, 0))],
        replica_sets: vec![
            replica_set("nginx:1", 1, 0, 0, 20),
            replica_set("nginx:2", 2, 2, 2, 10),
        ],
        ..Default::default()
    };
    let old = name_of(&world.replica_sets[0]);
    assert_eq!(
        writes(&pass(&world)),
        [
            format!("scale {old} 0 revision=Some(3)"),
            format!("scale {old} 1 revision=None"),
            "revision 3".into()
        ]
    );
}

#[test]
fn recreate_scales_old_pods_away_before_the_new_replica_set_exists() {
    // upstream rolloutRecreate: scale down old, wait for their Pods to go, then create the new.
    let strategy = json!({"type": "Recreate"});
    let world = World {
        deployments: vec![deployment(2, "nginx:2", strategy.clone())],
        replica_sets: vec![replica_set("nginx:1", 1, 2, 2, 10)],
        ..Default::default()
    };
    let old = name_of(&world.replica_sets[0]);
    assert_eq!(
        writes(&pass(&world)),
        [format!("scale {old} 0 revision=None")]
    );
    // Old scaled but its Pods not gone yet (status.replicas 2): still nothing new.
    let mut scaled = serde_json::to_value(world.replica_sets[0].as_ref()).unwrap();
    scaled["spec"]["replicas"] = json!(0);
    let waiting = World {
        deployments: world.deployments.clone(),
        replica_sets: vec![Arc::new(serde_json::from_value(scaled.clone()).unwrap())],
        ..Default::default()
    };
    assert!(writes(&pass(&waiting)).is_empty());
    scaled["status"] = json!({"replicas": 0});
    let gone = World {
        deployments: world.deployments.clone(),
        replica_sets: vec![Arc::new(serde_json::from_value(scaled).unwrap())],
        ..Default::default()
    };
    let new_name = name_of(&replica_set("nginx:2", 2, 2, 0, 0));
    assert_eq!(
        writes(&pass(&gone)),
        [
            format!("create {new_name} replicas=2 revision=\"2\""),
            "revision 2".into()
        ]
    );
}

#[test]
fn expectations_expire_so_a_lost_write_is_retried() {
    let rs = replica_set("nginx:1", 1, 1, 0, 1);
    let world = World {
        replica_sets: vec![rs],
        ..Default::default()
    };
    let mut memory = Memory::default();
    let first = plan(&world, &memory, &SimConfig::default(), now());
    for a in &first.actions {
        memory.record(a, now());
    }
    let creates = |p: &Plan| {
        p.actions
            .iter()
            .filter(|a| matches!(a, Action::CreatePod { .. }))
            .count()
    };
    memory.settle(&world, now() + jiff::SignedDuration::from_secs(5));
    assert_eq!(
        creates(&plan(&world, &memory, &SimConfig::default(), now())),
        0
    );
    memory.settle(&world, now() + jiff::SignedDuration::from_secs(31));
    assert_eq!(
        creates(&plan(&world, &memory, &SimConfig::default(), now())),
        1
    );
}
