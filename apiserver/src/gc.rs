//! Garbage collection and deletion completion, as kube-controller-manager's garbage collector
//! and namespace controller (and, for pods, the kubelet) do on a real cluster:
//! - dependents whose owners are all gone are deleted (background propagation); dangling
//!   references to deleted owners are removed from dependents that still have other owners;
//! - `foregroundDeletion`: dependents are deleted first, then the owner's finalizer is removed;
//! - `orphan`: owner references are removed from dependents, then the finalizer;
//! - terminating namespaces are emptied and then removed;
//! - pods whose graceful deletion period ended are removed (`simulate_pod_termination`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::pipeline::{DeleteOptions, CONTROLLER_MANAGER};
use crate::resources::{ResourceInfo, ResourceKey};
use crate::state::AppState;
use crate::store::StoredObject;
use crate::strategy::Deletion;

/// Finalizer for foreground cascading deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer for orphaning deletion.
pub const ORPHAN: &str = "orphan";

/// Runs the collector until the task is aborted.
pub async fn run(state: Arc<AppState>) {
    let mut pending = false;
    loop {
        let idle = if pending {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(2)
        };
        tokio::select! {
            _ = state.gc_wakeup.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
        pending = sweep(&state).await;
    }
}

fn infos(state: &AppState) -> HashMap<ResourceKey, Arc<ResourceInfo>> {
    state
        .registry
        .all()
        .into_iter()
        .map(|i| (i.key(), i))
        .collect()
}

/// One pass over the store's GC indexes; returns whether work remains (so the next pass comes
/// soon). Cost is proportional to owned and deleting objects, not to all objects.
pub async fn sweep(state: &Arc<AppState>) -> bool {
    let work = state.store.gc_work();
    if work.orphans.is_empty() && work.deleting.is_empty() {
        return false;
    }
    let infos = infos(state);
    let mut pending = false;
    let background = DeleteOptions {
        propagation: Some("Background".into()),
        ..Default::default()
    };
    let now = jiff::Timestamp::now().as_second();

    // Owners gone: delete, or drop dangling references when other owners remain.
    for (key, obj, missing) in &work.orphans {
        let Some(info) = infos.get(key) else { continue };
        pending = true;
        if missing.len() == obj.owners.len() {
            if !obj.deleting {
                let _ = state
                    .pipeline()
                    .delete(info, &obj.namespace, &obj.name, &background)
                    .await;
            }
        } else {
            let gone: HashSet<&str> = missing.iter().map(|s| s.as_str()).collect();
            let mut value = obj.value();
            if let Some(refs) = value["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| !r["uid"].as_str().is_some_and(|u| gone.contains(u)));
            }
            let _ = state
                .pipeline()
                .update_internal(info, None, obj, value, CONTROLLER_MANAGER)
                .await;
        }
    }

    for (key, obj) in &work.deleting {
        let Some(info) = infos.get(key) else { continue };
        let value = obj.value();
        let finalizers = crate::metadata::finalizers(&value);
        let deps = work.dependents.get(&obj.uid).cloned().unwrap_or_default();
        if finalizers.iter().any(|f| f == ORPHAN) {
            pending = true;
            for (dkey, dobj) in &deps {
                let Some(dinfo) = infos.get(dkey) else {
                    continue;
                };
                let mut dv = dobj.value();
                if let Some(refs) = dv["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"].as_str() != Some(obj.uid.as_str()));
                }
                let _ = state
                    .pipeline()
                    .update_internal(dinfo, None, dobj, dv, CONTROLLER_MANAGER)
                    .await;
            }
            if deps.is_empty() {
                remove_finalizer(state, info, obj, value.clone(), ORPHAN).await;
            }
            continue;
        }
        if finalizers.iter().any(|f| f == FOREGROUND) {
            pending = true;
            let foreground = DeleteOptions {
                propagation: Some("Foreground".into()),
                ..Default::default()
            };
            for (dkey, dobj) in &deps {
                let Some(dinfo) = infos.get(dkey) else {
                    continue;
                };
                if !dobj.deleting {
                    let _ = state
                        .pipeline()
                        .delete(dinfo, &dobj.namespace, &dobj.name, &foreground)
                        .await;
                }
            }
            if deps.is_empty() {
                remove_finalizer(state, info, obj, value.clone(), FOREGROUND).await;
            }
            continue;
        }
        if info.strategy.deletion() == Deletion::Namespace {
            pending = true;
            finish_namespace(state, &infos, obj).await;
            continue;
        }
        if info.strategy.deletion() == Deletion::GracefulPod
            && state.config.simulate_pod_termination
        {
            pending = true;
            let due = value["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(crate::metadata::parse_rfc3339)
                .is_some_and(|t| t <= now);
            if due && finalizers.is_empty() {
                let immediate = DeleteOptions {
                    grace_period: Some(0),
                    ..Default::default()
                };
                let _ = state
                    .pipeline()
                    .delete(info, &obj.namespace, &obj.name, &immediate)
                    .await;
            }
        }
    }
    pending
}

async fn remove_finalizer(
    state: &Arc<AppState>,
    info: &Arc<ResourceInfo>,
    obj: &Arc<StoredObject>,
    mut value: Value,
    finalizer: &str,
) {
    let remaining: Vec<String> = crate::metadata::finalizers(&value)
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    value["metadata"]["finalizers"] = json!(remaining);
    if let Err(err) = state
        .pipeline()
        .update_internal(info, None, obj, value, CONTROLLER_MANAGER)
        .await
    {
        tracing::debug!(%err, name = %obj.name, "removing finalizer failed; retrying");
    }
}

/// Deletes everything in a terminating namespace, then the namespace itself.
async fn finish_namespace(
    state: &Arc<AppState>,
    infos: &HashMap<ResourceKey, Arc<ResourceInfo>>,
    ns: &Arc<StoredObject>,
) {
    let background = DeleteOptions {
        propagation: Some("Background".into()),
        grace_period: Some(0),
        ..Default::default()
    };
    let mut remaining = 0;
    for (key, info) in infos {
        if !info.namespaced {
            continue;
        }
        let (_, objects, _) = state.store.list(key, Some(&ns.name), |_| true, None, None);
        for obj in objects {
            remaining += 1;
            if !obj.deleting || info.strategy.deletion() == Deletion::GracefulPod {
                let _ = state
                    .pipeline()
                    .delete(info, &obj.namespace, &obj.name, &background)
                    .await;
            }
        }
    }
    if remaining == 0 {
        let key = ResourceKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        let write = crate::store::Write::Delete { expected_rv: ns.rv };
        if let Err(err) = state.store.commit(&key, "", &ns.name, write) {
            tracing::debug!(%err, namespace = %ns.name, "namespace removal raced; retrying");
        } else {
            state.persist_wakeup.notify_one();
        }
    }
}
