//! The Deployment controller's pass (upstream `pkg/controller/deployment`): one ReplicaSet per
//! Pod template, named by its `pod-template-hash`; a rolling update within `maxSurge` and
//! `maxUnavailable`, or Recreate; revisions for `kubectl rollout history/undo`; old
//! ReplicaSets pruned to `revisionHistoryLimit`; and the `status` `kubectl rollout status`
//! reads.
//!
//! Left out: proportional scaling of a rollout in progress (a scale during a rollout goes to the
//! new ReplicaSet), `progressDeadlineSeconds` (a simulated rollout cannot stall on images), and
//! adoption of orphaned ReplicaSets.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use super::{controller_uid, hash, Expectations};
use crate::model::{Action, Plan, World};

/// Label carrying the template hash on ReplicaSets and their Pods (`apps/v1`
/// `DefaultDeploymentUniqueLabelKey`).
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Revision annotation on Deployments and their ReplicaSets (`deployment.kubernetes.io/revision`).
pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";

/// Plans every Deployment.
pub(crate) fn plan_deployments(
    world: &World,
    expect: &Expectations,
    now: Timestamp,
    out: &mut Plan,
) {
    let mut owned: HashMap<&str, Vec<&ReplicaSet>> = HashMap::new();
    for rs in &world.replica_sets {
        if let Some(uid) = controller_uid(&rs.metadata) {
            if rs.metadata.deletion_timestamp.is_none() && !expect.replica_set_deleted(rs) {
                owned.entry(uid).or_default().push(rs);
            }
        }
    }
    let mut deployments: Vec<&Deployment> = world.deployments.iter().map(|d| d.as_ref()).collect();
    deployments.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    for d in deployments {
        if d.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let uid = d.metadata.uid.as_deref().unwrap_or_default();
        let mut sets = owned.remove(uid).unwrap_or_default();
        sets.sort_by_key(|rs| {
            (
                rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
                rs.metadata.name.clone(),
            )
        });
        plan_one(d, &sets, expect, now, out);
    }
}

/// A template as compared between a Deployment and its ReplicaSets: without the hash label
/// (upstream `EqualIgnoreHash`).
fn comparable(template: Option<&PodTemplateSpec>) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty() {
            value["metadata"]
                .as_object_mut()
                .map(|m| m.remove("labels"));
        }
    }
    value
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `maxSurge` / `maxUnavailable` against `replicas`: a number, or a percentage rounded up for
/// surge and down for unavailability (upstream `ResolveFenceposts`); both zero means one
/// unavailable.
fn fenceposts(d: &Deployment, replicas: i32) -> (i32, i32) {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let resolve = |value: Option<&IntOrString>, round_up: bool| -> i32 {
        match value {
            Some(IntOrString::Int(n)) => (*n).max(0),
            Some(IntOrString::String(s)) => {
                let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
                let scaled = percent * i64::from(replicas);
                let n = if round_up {
                    (scaled + 99) / 100
                } else {
                    scaled / 100
                };
                i32::try_from(n.max(0)).unwrap_or(i32::MAX)
            }
            None => {
                let scaled = 25 * i64::from(replicas);
                let n = if round_up {
                    (scaled + 99) / 100
                } else {
                    scaled / 100
                };
                i32::try_from(n).unwrap_or(i32::MAX)
            }
        }
    };
    let surge = resolve(rolling.and_then(|r| r.max_surge.as_ref()), true);
    let unavailable = resolve(rolling.and_then(|r| r.max_unavailable.as_ref()), false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn status_count(
    rs: &ReplicaSet,
    field: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(field).unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    status_count(rs, |s| s.available_replicas)
}

fn plan_one(
    d: &Deployment,
    sets: &[&ReplicaSet],
    expect: &Expectations,
    now: Timestamp,
    out: &mut Plan,
) {
    let namespace = d.metadata.namespace.clone().unwrap_or_default();
    let name = d.metadata.name.clone().unwrap_or_default();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let spec = d.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1).max(0);
    let template = spec.map(|s| &s.template);
    let wanted = comparable(template);
    let new_rs = sets
        .iter()
        .copied()
        .find(|rs| comparable(rs.spec.as_ref().and_then(|s| s.template.as_ref())) == wanted);
    let old: Vec<&ReplicaSet> = sets
        .iter()
        .copied()
        .filter(|rs| new_rs.is_none_or(|n| n.metadata.uid != rs.metadata.uid))
        .collect();
    let max_old_revision = old.iter().map(|rs| revision(rs)).max().unwrap_or(0);
    let paused = spec.and_then(|s| s.paused).unwrap_or(false);
    let recreate = spec
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate");
    let scale = |out: &mut Plan, rs: &ReplicaSet, to: i32| {
        if expect.replicas_of(rs) != usize::try_from(to).unwrap_or(0) {
            out.actions.push(Action::ScaleReplicaSet {
                namespace: namespace.clone(),
                name: rs.metadata.name.clone().unwrap_or_default(),
                uid: rs.metadata.uid.clone().unwrap_or_default(),
                replicas: to,
                revision: None,
            });
        }
    };
    let replicas_of = |rs: &ReplicaSet| i32::try_from(expect.replicas_of(rs)).unwrap_or(i32::MAX);
    let mut created = None;
    if !paused && !expect.replica_set_pending(&uid) {
        match new_rs {
            None => {
                let old_total: i32 = old.iter().map(|rs| replicas_of(rs)).sum();
                let old_pods: i32 = old
                    .iter()
                    .map(|rs| status_count(rs, |s| Some(s.replicas)))
                    .sum();
                let start = if recreate {
                    old.iter()
                        .filter(|rs| replicas_of(rs) > 0)
                        .for_each(|rs| scale(out, rs, 0));
                    (old_total == 0 && old_pods == 0).then_some(replicas)
                } else {
                    let (surge, _) = fenceposts(d, replicas);
                    Some(replicas.min(replicas + surge - old_total).max(0))
                };
                if let Some(start) = start {
                    let collision = d.status.as_ref().and_then(|s| s.collision_count);
                    let rs = new_replica_set(
                        d,
                        &hash::template_hash(&template, collision),
                        start,
                        max_old_revision + 1,
                    );
                    created = Some(rs.0.clone());
                    out.actions.push(Action::CreateReplicaSet {
                        namespace: namespace.clone(),
                        name: rs.0,
                        owner: uid.clone(),
                        body: rs.1,
                    });
                }
            }
            Some(new) => {
                if revision(new) <= max_old_revision {
                    // A rollback or a return to an older template: it becomes the newest revision.
                    out.actions.push(Action::ScaleReplicaSet {
                        namespace: namespace.clone(),
                        name: new.metadata.name.clone().unwrap_or_default(),
                        uid: new.metadata.uid.clone().unwrap_or_default(),
                        replicas: replicas_of(new),
                        revision: Some(max_old_revision + 1),
                    });
                }
                if recreate {
                    let old_pods: i32 = old
                        .iter()
                        .map(|rs| status_count(rs, |s| Some(s.replicas)))
                        .sum();
                    old.iter()
                        .filter(|rs| replicas_of(rs) > 0)
                        .for_each(|rs| scale(out, rs, 0));
                    if old.iter().all(|rs| replicas_of(rs) == 0) && old_pods == 0 {
                        scale(out, new, replicas);
                    }
                } else {
                    roll(d, replicas, new, &old, &replicas_of, &mut |rs, to| {
                        scale(out, rs, to)
                    });
                }
            }
        }
        prune_history(d, &old, &replicas_of, out);
    }
    let revision_now = match (new_rs, &created) {
        (Some(rs), _) => revision(rs).max(max_old_revision + 1),
        (None, Some(_)) => max_old_revision + 1,
        (None, None) => 0,
    };
    let annotated = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse::<i64>().ok());
    if revision_now > 0 && annotated != Some(revision_now) {
        out.actions.push(Action::AnnotateDeployment {
            namespace: namespace.clone(),
            name: name.clone(),
            revision: revision_now,
        });
    }
    let status = status_of(d, replicas, new_rs, sets, created.as_deref(), now);
    if d.status.as_ref() != Some(&status) {
        out.actions.push(Action::DeploymentStatus {
            namespace,
            name,
            status: serde_json::to_value(&status).unwrap_or(Value::Null),
        });
    }
}

/// One rolling-update step (upstream `rolloutRolling`): scale the new ReplicaSet up within
/// `replicas + maxSurge`; when it cannot grow, scale old ones down while keeping
/// `replicas - maxUnavailable` available, unhealthy replicas first.
fn roll(
    d: &Deployment,
    replicas: i32,
    new: &ReplicaSet,
    old: &[&ReplicaSet],
    replicas_of: &dyn Fn(&ReplicaSet) -> i32,
    scale: &mut dyn FnMut(&ReplicaSet, i32),
) {
    let (surge, unavailable) = fenceposts(d, replicas);
    let new_replicas = replicas_of(new);
    let total: i32 = old.iter().map(|rs| replicas_of(rs)).sum::<i32>() + new_replicas;
    if new_replicas > replicas {
        scale(new, replicas);
        return;
    }
    if new_replicas < replicas {
        let room = (replicas + surge - total).min(replicas - new_replicas);
        if room > 0 {
            scale(new, new_replicas + room);
            return;
        }
    }
    let min_available = replicas - unavailable;
    let new_unavailable = (new_replicas - available(new)).max(0);
    let mut budget = total - min_available - new_unavailable;
    if budget <= 0 {
        return;
    }
    let mut targets: HashMap<&str, i32> = HashMap::new();
    // Unhealthy replicas of old ReplicaSets go first, oldest ReplicaSet first.
    for rs in old {
        let have = replicas_of(rs);
        let unhealthy = (have - available(rs)).max(0).min(budget);
        if unhealthy > 0 {
            budget -= unhealthy;
            targets.insert(
                rs.metadata.uid.as_deref().unwrap_or_default(),
                have - unhealthy,
            );
        }
    }
    // Then available ones, as far as availability allows.
    let available_now: i32 = old.iter().map(|rs| available(rs)).sum::<i32>() + available(new);
    let mut allowed = (available_now - min_available).min(budget);
    for rs in old {
        if allowed <= 0 {
            break;
        }
        let uid = rs.metadata.uid.as_deref().unwrap_or_default();
        let have = targets.get(uid).copied().unwrap_or_else(|| replicas_of(rs));
        let down = have.min(allowed);
        if down > 0 {
            allowed -= down;
            targets.insert(uid, have - down);
        }
    }
    for rs in old {
        if let Some(to) = targets.get(rs.metadata.uid.as_deref().unwrap_or_default()) {
            scale(rs, *to);
        }
    }
}

/// Old ReplicaSets with nothing left beyond `revisionHistoryLimit` (default 10) are deleted,
/// oldest first (upstream `cleanupDeployment`).
fn prune_history(
    d: &Deployment,
    old: &[&ReplicaSet],
    replicas_of: &dyn Fn(&ReplicaSet) -> i32,
    out: &mut Plan,
) {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0);
    let empty: Vec<&&ReplicaSet> = old
        .iter()
        .filter(|rs| replicas_of(rs) == 0 && status_count(rs, |s| Some(s.replicas)) == 0)
        .collect();
    let excess = empty
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    let mut by_revision = empty;
    by_revision.sort_by_key(|rs| revision(rs));
    for rs in by_revision.into_iter().take(excess) {
        out.actions.push(Action::DeleteReplicaSet {
            namespace: rs.metadata.namespace.clone().unwrap_or_default(),
            name: rs.metadata.name.clone().unwrap_or_default(),
            uid: rs.metadata.uid.clone().unwrap_or_default(),
        });
    }
}

/// The ReplicaSet for the Deployment's current template (upstream `getNewReplicaSet`): name
/// `DEPLOYMENT-HASH`, the hash added to its selector, template labels and own labels.
fn new_replica_set(d: &Deployment, hash: &str, replicas: i32, revision: i64) -> (String, Value) {
    let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
    let spec = d.spec.as_ref();
    let mut template =
        serde_json::to_value(spec.map(|s| &s.template)).unwrap_or_else(|_| json!({}));
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector =
        serde_json::to_value(spec.map(|s| &s.selector)).unwrap_or_else(|_| json!({}));
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    let body = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": d.metadata.namespace,
            "labels": labels,
            "annotations": {REVISION: revision.to_string()},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": d.metadata.name,
                "uid": d.metadata.uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": spec.and_then(|s| s.min_ready_seconds).unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    });
    (name, body)
}

/// The Deployment's `status` (upstream `calculateStatus` and the `Available` / `Progressing`
/// conditions of `sync.go` / `progress.go`).
fn status_of(
    d: &Deployment,
    replicas: i32,
    new_rs: Option<&ReplicaSet>,
    sets: &[&ReplicaSet],
    created: Option<&str>,
    now: Timestamp,
) -> DeploymentStatus {
    let sum = |f: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>| -> i32 {
        sets.iter().map(|rs| status_count(rs, f)).sum()
    };
    let total = sum(|s| Some(s.replicas));
    let ready = sum(|s| s.ready_replicas);
    let available_now = sum(|s| s.available_replicas);
    let updated = new_rs.map_or(0, |rs| status_count(rs, |s| Some(s.replicas)));
    let (_, unavailable) = fenceposts(d, replicas);
    let old = d.status.as_ref();
    let previous: Vec<DeploymentCondition> =
        old.and_then(|s| s.conditions.clone()).unwrap_or_default();
    let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    let condition = |type_: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        let before = previous.iter().find(|c| c.type_ == type_);
        let same = before.is_some_and(|c| {
            c.status == status
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message.as_str())
        });
        if same {
            return before.cloned().unwrap_or_default();
        }
        let transition = before
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        DeploymentCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: Some(reason.to_string()),
            message: Some(message),
            last_update_time: Some(now.clone()),
            last_transition_time: Some(transition),
        }
    };
    let available_condition = if available_now >= replicas - unavailable {
        condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let progressing = match (new_rs, created) {
        (_, Some(name)) => condition(
            "Progressing",
            true,
            "NewReplicaSetCreated",
            format!("Created new replica set \"{name}\""),
        ),
        (Some(rs), None) => {
            let rs_name = rs.metadata.name.as_deref().unwrap_or_default();
            if updated == replicas && total == replicas && available_now >= replicas {
                condition(
                    "Progressing",
                    true,
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                )
            } else {
                condition(
                    "Progressing",
                    true,
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{rs_name}\" is progressing."),
                )
            }
        }
        (None, None) => previous
            .iter()
            .find(|c| c.type_ == "Progressing")
            .cloned()
            .unwrap_or_else(|| {
                condition(
                    "Progressing",
                    true,
                    "ReplicaSetUpdated",
                    "Waiting for a new replica set.".into(),
                )
            }),
    };
    DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(total),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available_now),
        unavailable_replicas: Some((replicas - available_now).max(0)),
        conditions: Some(vec![available_condition, progressing]),
        collision_count: old.and_then(|s| s.collision_count),
        ..Default::default()
    }
}
