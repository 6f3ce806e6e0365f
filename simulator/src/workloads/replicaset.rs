//! The ReplicaSet controller's pass (upstream `pkg/controller/replicaset`): keep
//! `spec.replicas` active Pods from the template, delete the least valuable extras first, and
//! report counts in `status`.

use std::cmp::Ordering;
use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::{controller_uid, hash, is_active, labels_include, ready_since, Expectations};
use crate::kubelet;
use crate::model::{Action, Plan, PodRef, World};

/// Most Pods one ReplicaSet creates or deletes in a pass (upstream `burstReplicas`).
const BURST_REPLICAS: usize = 500;

/// Plans every ReplicaSet: Pod creations and deletions, then its status.
pub(crate) fn plan_replica_sets(
    world: &World,
    expect: &Expectations,
    now: Timestamp,
    out: &mut Plan,
) {
    let mut owned: HashMap<&str, Vec<&Pod>> = HashMap::new();
    for pod in &world.pods {
        if let Some(uid) = controller_uid(&pod.metadata) {
            owned.entry(uid).or_default().push(pod);
        }
    }
    let mut sets: Vec<&ReplicaSet> = world.replica_sets.iter().map(|r| r.as_ref()).collect();
    sets.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    for rs in sets {
        if rs.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let uid = rs.metadata.uid.as_deref().unwrap_or_default();
        let pods = owned.get(uid).map(Vec::as_slice).unwrap_or_default();
        plan_one(rs, pods, expect, now, out);
    }
}

fn plan_one(rs: &ReplicaSet, pods: &[&Pod], expect: &Expectations, now: Timestamp, out: &mut Plan) {
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let wanted = expect.replicas_of(rs);
    let mut active: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| is_active(p) && !expect.pod_deleted(p))
        .collect();
    let have = active.len() + expect.pods_pending(uid);
    if have < wanted {
        let missing = (wanted - have).min(BURST_REPLICAS);
        for i in 0..missing {
            let seed = format!("{uid}/{}/{i}", now.as_nanosecond());
            out.actions
                .push(pod_from_template(rs, &hash::name_suffix(&seed)));
        }
    } else if have > wanted && !active.is_empty() {
        let extra = (have - wanted).min(active.len()).min(BURST_REPLICAS);
        active.sort_by(|a, b| deletion_order(a, b, now));
        for pod in &active[..extra] {
            out.actions.push(Action::DeletePod {
                pod: PodRef::of(pod),
                owner: uid.to_string(),
            });
        }
    }
    let status = status_of(rs, pods, now, out);
    if rs.status.as_ref() != Some(&status) {
        out.actions.push(Action::ReplicaSetStatus {
            namespace: rs.metadata.namespace.clone().unwrap_or_default(),
            name: rs.metadata.name.clone().unwrap_or_default(),
            status: serde_json::to_value(&status).unwrap_or(Value::Null),
        });
    }
}

/// A Pod from the ReplicaSet's template, owned by it (upstream `GetPodFromTemplate`).
fn pod_from_template(rs: &ReplicaSet, suffix: &str) -> Action {
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
    let meta = template.and_then(|t| t.metadata.as_ref());
    let spec = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!({}));
    let name = format!("{rs_name}-{suffix}");
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
            "uid": rs.metadata.uid, "controller": true, "blockOwnerDeletion": true,
        }],
    });
    if let Some(meta) = meta {
        for (field, value) in [
            ("labels", serde_json::to_value(&meta.labels)),
            ("annotations", serde_json::to_value(&meta.annotations)),
            ("finalizers", serde_json::to_value(&meta.finalizers)),
        ] {
            if let Ok(value @ (Value::Object(_) | Value::Array(_))) = value {
                metadata[field] = value;
            }
        }
    }
    Action::CreatePod {
        namespace,
        name,
        owner: rs.metadata.uid.clone().unwrap_or_default(),
        body: json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}),
    }
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Running") => 2,
        Some("Unknown") => 1,
        _ => 0,
    }
}

fn restarts(pod: &Pod) -> i32 {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum()
}

/// Which Pod goes first when scaling down, as upstream's `ActivePods` ordering: unassigned
/// before assigned, Pending before Unknown before Running, not-ready before ready, ready for
/// less time first, more restarts first, newer first.
fn deletion_order(a: &Pod, b: &Pod, now: Timestamp) -> Ordering {
    let assigned = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let ready_for = |p: &Pod| ready_since(p).map(|t| now.duration_since(t));
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(kubelet::is_ready(a).cmp(&kubelet::is_ready(b)))
        .then_with(|| match (ready_for(a), ready_for(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        })
        .then(restarts(b).cmp(&restarts(a)))
        .then(created(b).cmp(&created(a)))
}

/// `status` from the Pods the world shows (upstream `calculateStatus`); an available Pod has
/// been Ready for `minReadySeconds`, and a Pod about to become available schedules a pass.
fn status_of(rs: &ReplicaSet, pods: &[&Pod], now: Timestamp, out: &mut Plan) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready =
        jiff::SignedDuration::from_secs(spec.and_then(|s| s.min_ready_seconds).unwrap_or(0).into());
    let active: Vec<&Pod> = pods.iter().copied().filter(|p| is_active(p)).collect();
    let mut ready = 0;
    let mut available = 0;
    for pod in &active {
        if !kubelet::is_ready(pod) {
            continue;
        }
        ready += 1;
        match ready_since(pod) {
            Some(since) if since + min_ready > now => crate::model::due(out, since + min_ready),
            _ => available += 1,
        }
    }
    let labeled = active
        .iter()
        .filter(|p| labels_include(p.metadata.labels.as_ref(), &template_labels))
        .count();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    ReplicaSetStatus {
        replicas: count(active.len()),
        fully_labeled_replicas: Some(count(labeled)),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
        ..Default::default()
    }
}
