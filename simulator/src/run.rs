//! The simulator's loop: reflect Pods and Nodes, plan a pass whenever either changes (or a
//! readiness flip falls due), apply the pass's writes through the API.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::json;
use tokio::sync::{watch, Notify};

pub use crate::model::SimConfig;
use crate::model::{Action, World};
use crate::plan::{plan, Memory};

/// Field manager of the simulator's writes.
const FIELD_MANAGER: &str = "svcplane-simulator";

/// Longest wait between passes when nothing happens (repairs a missed wake-up).
const IDLE_PASS: Duration = Duration::from_secs(10);

/// Whether the server serves `apps/v1` Deployments and ReplicaSets (the workload
/// controllers run only then; an API server without them is not an error).
async fn serves_apps(client: &Client) -> bool {
    match client.list_api_group_resources("apps/v1").await {
        Ok(list) => ["deployments", "replicasets"]
            .iter()
            .all(|r| list.resources.iter().any(|x| x.name == *r)),
        Err(err) => {
            tracing::info!(%err, "apps/v1 not served: Deployment and ReplicaSet simulation off");
            false
        }
    }
}

/// Runs the workload controllers, node IPAM, the scheduler and the kubelet stand-in against
/// the API until `stop` turns true.
pub async fn run(client: Client, config: SimConfig, mut stop: watch::Receiver<bool>) {
    let changed = Arc::new(Notify::new());
    let pods = reflect(Api::<Pod>::all(client.clone()), changed.clone());
    let nodes = reflect(Api::<Node>::all(client.clone()), changed.clone());
    let workloads = if serves_apps(&client).await {
        Some((
            reflect(Api::<Deployment>::all(client.clone()), changed.clone()),
            reflect(Api::<ReplicaSet>::all(client.clone()), changed.clone()),
        ))
    } else {
        None
    };
    let ready = async {
        let _ = pods.0.wait_until_ready().await;
        let _ = nodes.0.wait_until_ready().await;
        if let Some((deployments, replica_sets)) = &workloads {
            let _ = deployments.0.wait_until_ready().await;
            let _ = replica_sets.0.wait_until_ready().await;
        }
    };
    tokio::select! {
        _ = ready => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    tracing::info!(
        workloads = workloads.is_some(),
        "simulated cluster running (node IPAM, scheduler, kubelet, Deployments, ReplicaSets)"
    );
    let mut memory = Memory::default();
    loop {
        let world = World {
            pods: pods.0.state(),
            nodes: nodes.0.state(),
            deployments: workloads
                .as_ref()
                .map(|w| w.0 .0.state())
                .unwrap_or_default(),
            replica_sets: workloads
                .as_ref()
                .map(|w| w.1 .0.state())
                .unwrap_or_default(),
        };
        let now = Timestamp::now();
        memory.settle(&world, now);
        let pass = plan(&world, &memory, &config, now);
        for action in &pass.actions {
            match apply(&client, action).await {
                Ok(()) => memory.record(action, Timestamp::now()),
                Err(err) => tracing::warn!(?action, %err, "simulator write failed"),
            }
        }
        let wait = pass
            .next_due
            .and_then(|at| Duration::try_from(at.duration_since(Timestamp::now())).ok())
            .map_or(IDLE_PASS, |d| d.min(IDLE_PASS));
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    pods.1.abort();
    nodes.1.abort();
    if let Some((deployments, replica_sets)) = workloads {
        deployments.1.abort();
        replica_sets.1.abort();
    }
}

/// A reflector over `api` that wakes `changed` on every event.
fn reflect<K>(api: Api<K>, changed: Arc<Notify>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(err) = event {
                tracing::debug!(%err, "simulator watch error; retrying");
            }
            changed.notify_one();
        }
    });
    (reader, task)
}

/// Makes one write. A Pod or Node that went away meanwhile, or a Pod bound by someone else,
/// is not an error: the next pass sees the world as it is.
async fn apply(client: &Client, action: &Action) -> Result<(), kube::Error> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let post = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let result = match action {
        Action::AssignPodCidrs { node, cidrs } => {
            let texts: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
            let patch = json!({"spec": {"podCIDR": texts[0], "podCIDRs": texts}});
            Api::<Node>::all(client.clone())
                .patch(node, &params, &Patch::Merge(patch))
                .await
                .map(drop)
        }
        Action::Bind { pod, node } => {
            let binding = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            Api::<Pod>::namespaced(client.clone(), &pod.namespace)
                .create_subresource::<_, serde_json::Value>("binding", &pod.name, &post, &binding)
                .await
                .map(drop)
        }
        Action::Unschedulable { pod, message } => {
            let condition = json!({"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": message, "lastProbeTime": null,
                "lastTransitionTime": Timestamp::now().to_string()});
            let patch = json!({"status": {"conditions": [condition]}});
            Api::<Pod>::namespaced(client.clone(), &pod.namespace)
                .patch_status(&pod.name, &params, &Patch::Strategic(patch))
                .await
                .map(drop)
        }
        Action::Start { pod, status, .. } | Action::SetReady { pod, status, .. } => {
            Api::<Pod>::namespaced(client.clone(), &pod.namespace)
                .patch_status(&pod.name, &params, &Patch::Merge(json!({"status": status})))
                .await
                .map(drop)
        }
        Action::CreatePod {
            namespace, body, ..
        } => {
            let pod: Pod = serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
            Api::<Pod>::namespaced(client.clone(), namespace)
                .create(&post, &pod)
                .await
                .map(drop)
        }
        Action::DeletePod { pod, .. } => Api::<Pod>::namespaced(client.clone(), &pod.namespace)
            .delete(&pod.name, &delete_exactly(&pod.uid))
            .await
            .map(drop),
        Action::CreateReplicaSet {
            namespace, body, ..
        } => {
            let rs: ReplicaSet =
                serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
            Api::<ReplicaSet>::namespaced(client.clone(), namespace)
                .create(&post, &rs)
                .await
                .map(drop)
        }
        Action::ScaleReplicaSet {
            namespace,
            name,
            replicas,
            revision,
            ..
        } => {
            let mut patch = json!({"spec": {"replicas": replicas}});
            if let Some(revision) = revision {
                patch["metadata"] = json!({"annotations": {
                    crate::workloads::REVISION_ANNOTATION: revision.to_string()}});
            }
            Api::<ReplicaSet>::namespaced(client.clone(), namespace)
                .patch(name, &params, &Patch::Merge(patch))
                .await
                .map(drop)
        }
        Action::DeleteReplicaSet {
            namespace,
            name,
            uid,
        } => Api::<ReplicaSet>::namespaced(client.clone(), namespace)
            .delete(name, &delete_exactly(uid))
            .await
            .map(drop),
        Action::ReplicaSetStatus {
            namespace,
            name,
            status,
        } => Api::<ReplicaSet>::namespaced(client.clone(), namespace)
            .patch_status(name, &params, &Patch::Merge(json!({"status": status})))
            .await
            .map(drop),
        Action::AnnotateDeployment {
            namespace,
            name,
            revision,
        } => {
            let patch = json!({"metadata": {"annotations": {
                crate::workloads::REVISION_ANNOTATION: revision.to_string()}}});
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .patch(name, &params, &Patch::Merge(patch))
                .await
                .map(drop)
        }
        Action::DeploymentStatus {
            namespace,
            name,
            status,
        } => Api::<Deployment>::namespaced(client.clone(), namespace)
            .patch_status(name, &params, &Patch::Merge(json!({"status": status})))
            .await
            .map(drop),
    };
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        other => other,
    }
}

/// Delete options that remove exactly the object planned for (a UID precondition), so a
/// replacement of the same name is never deleted by mistake.
fn delete_exactly(uid: &str) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..Default::default()
    }
}
