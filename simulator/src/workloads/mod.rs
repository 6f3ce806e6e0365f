//! Workload controllers of the simulated cluster: Deployments and ReplicaSets, as
//! kube-controller-manager runs them (`pkg/controller/deployment`, `pkg/controller/replicaset`),
//! each a pure pass over the world that returns writes.

mod deployment;
mod hash;
mod replicaset;

pub(crate) use deployment::REVISION as REVISION_ANNOTATION;

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) use deployment::plan_deployments;
pub(crate) use replicaset::plan_replica_sets;

use crate::model::{Action, World};

/// How long a write not yet seen through the watch is still counted (upstream's
/// `ExpectationsTimeout` is 5 minutes; a simulated cluster can afford to retry sooner).
const EXPECTATION_TTL: SignedDuration = SignedDuration::from_secs(30);

/// The UID of an object's controlling owner.
pub(crate) fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    let refs = meta.owner_references.as_ref()?;
    let owner = refs.iter().find(|r| r.controller == Some(true))?;
    Some(owner.uid.as_str())
}

/// Whether a Pod counts toward its ReplicaSet (upstream `IsPodActive`): not being deleted and
/// not finished.
pub(crate) fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether `labels` holds every label of `want`.
pub(crate) fn labels_include(
    labels: Option<&BTreeMap<String, String>>,
    want: &BTreeMap<String, String>,
) -> bool {
    want.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Since when the Pod has been Ready (its `Ready` condition's `lastTransitionTime`).
pub(crate) fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref()?.0)
}

/// Writes the workload controllers made that the world does not show yet (upstream's
/// `ControllerExpectations`): without them a pass would create the same Pods twice.
#[derive(Debug, Default)]
pub struct Expectations {
    /// Per ReplicaSet UID, the Pods it created (namespace/name) and when.
    pods_created: HashMap<String, Vec<(String, Timestamp)>>,
    /// Pods deleted (UID) and when.
    pods_deleted: HashMap<String, Timestamp>,
    /// Per ReplicaSet UID, the `spec.replicas` written and when.
    scaled: HashMap<String, (i32, Timestamp)>,
    /// Per Deployment UID, the ReplicaSet created (namespace/name) and when.
    sets_created: HashMap<String, (String, Timestamp)>,
    /// ReplicaSets deleted (UID) and when.
    sets_deleted: HashMap<String, Timestamp>,
}

impl Expectations {
    /// Remembers a write that succeeded at `now`.
    pub(crate) fn record(&mut self, action: &Action, now: Timestamp) {
        match action {
            Action::CreatePod {
                namespace,
                name,
                owner,
                ..
            } => self
                .pods_created
                .entry(owner.clone())
                .or_default()
                .push((format!("{namespace}/{name}"), now)),
            Action::DeletePod { pod, .. } => {
                self.pods_deleted.insert(pod.uid.clone(), now);
            }
            Action::ScaleReplicaSet { uid, replicas, .. } => {
                self.scaled.insert(uid.clone(), (*replicas, now));
            }
            Action::CreateReplicaSet {
                namespace,
                name,
                owner,
                ..
            } => {
                self.sets_created
                    .insert(owner.clone(), (format!("{namespace}/{name}"), now));
            }
            Action::DeleteReplicaSet { uid, .. } => {
                self.sets_deleted.insert(uid.clone(), now);
            }
            _ => {}
        }
    }

    /// Forgets what the world now shows, and what is older than [`EXPECTATION_TTL`].
    pub(crate) fn settle(&mut self, world: &World, now: Timestamp) {
        let fresh = |at: &Timestamp| *at + EXPECTATION_TTL > now;
        let key = |m: &ObjectMeta| {
            format!(
                "{}/{}",
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default()
            )
        };
        let pods: HashMap<String, &Pod> = world
            .pods
            .iter()
            .map(|p| (key(&p.metadata), p.as_ref()))
            .collect();
        let pod_uids: HashMap<&str, &Pod> = world
            .pods
            .iter()
            .map(|p| (p.metadata.uid.as_deref().unwrap_or_default(), p.as_ref()))
            .collect();
        let sets: HashMap<&str, &ReplicaSet> = world
            .replica_sets
            .iter()
            .map(|r| (r.metadata.uid.as_deref().unwrap_or_default(), r.as_ref()))
            .collect();
        let set_names: HashMap<String, &ReplicaSet> = world
            .replica_sets
            .iter()
            .map(|r| (key(&r.metadata), r.as_ref()))
            .collect();
        self.pods_created.retain(|rs, created| {
            created.retain(|(name, at)| fresh(at) && !pods.contains_key(name));
            !created.is_empty() && sets.contains_key(rs.as_str())
        });
        self.pods_deleted.retain(|uid, at| {
            fresh(at)
                && pod_uids
                    .get(uid.as_str())
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        });
        self.scaled.retain(|uid, (replicas, at)| {
            fresh(at)
                && sets.get(uid.as_str()).is_some_and(|rs| {
                    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) != *replicas
                })
        });
        self.sets_created
            .retain(|_, (name, at)| fresh(at) && !set_names.contains_key(name));
        self.sets_deleted.retain(|uid, at| {
            fresh(at)
                && sets
                    .get(uid.as_str())
                    .is_some_and(|rs| rs.metadata.deletion_timestamp.is_none())
        });
    }

    /// The ReplicaSet's `spec.replicas`, or what this simulator last wrote there.
    pub(crate) fn replicas_of(&self, rs: &ReplicaSet) -> usize {
        let uid = rs.metadata.uid.as_deref().unwrap_or_default();
        let replicas = match self.scaled.get(uid) {
            Some((replicas, _)) => *replicas,
            None => rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        };
        usize::try_from(replicas).unwrap_or(0)
    }

    /// Pods the ReplicaSet created that the world does not show yet.
    pub(crate) fn pods_pending(&self, rs_uid: &str) -> usize {
        self.pods_created.get(rs_uid).map_or(0, Vec::len)
    }

    /// Whether this simulator deleted the Pod and the world does not show it yet.
    pub(crate) fn pod_deleted(&self, pod: &Pod) -> bool {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        self.pods_deleted.contains_key(uid)
    }

    /// Whether a ReplicaSet this simulator created for the Deployment is not in the world yet.
    pub(crate) fn replica_set_pending(&self, deployment_uid: &str) -> bool {
        self.sets_created.contains_key(deployment_uid)
    }

    /// Whether this simulator deleted the ReplicaSet and the world does not show it yet.
    pub(crate) fn replica_set_deleted(&self, rs: &ReplicaSet) -> bool {
        let uid = rs.metadata.uid.as_deref().unwrap_or_default();
        self.sets_deleted.contains_key(uid)
    }
}

#[cfg(test)]
mod tests;
