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

use crate::handlers::{delete_object, update_internal, DeleteOptions};
use crate::resources::{ResourceInfo, ResourceKey};
use crate::state::AppState;
use crate::store::StoredObject;

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

struct Snapshot {
    objects: Vec<(Arc<ResourceInfo>, Arc<StoredObject>)>,
    uids: HashSet<String>,
}

fn snapshot(state: &AppState) -> Snapshot {
    let infos: HashMap<ResourceKey, Arc<ResourceInfo>> = state
        .registry
        .all()
        .into_iter()
        .map(|i| (i.key(), i))
        .collect();
    let (_, all) = state.store.dump();
    let uids = all.iter().map(|(_, o)| o.uid.clone()).collect();
    let objects = all
        .into_iter()
        .filter_map(|(k, o)| infos.get(&k).map(|i| (i.clone(), o)))
        .collect();
    Snapshot { objects, uids }
}

/// One pass; returns whether work remains (so the next pass comes soon).
pub async fn sweep(state: &Arc<AppState>) -> bool {
    let snap = snapshot(state);
    let mut pending = false;
    let background = DeleteOptions {
        propagation: Some("Background".into()),
        ..Default::default()
    };
    let now = jiff::Timestamp::now().as_second();

    // Dependents by owner uid.
    let mut dependents: HashMap<&str, Vec<&(Arc<ResourceInfo>, Arc<StoredObject>)>> =
        HashMap::new();
    for entry in &snap.objects {
        for owner in &entry.1.owners {
            dependents.entry(owner.as_str()).or_default().push(entry);
        }
    }

    for (info, obj) in &snap.objects {
        // Owners gone: delete, or drop dangling references when other owners remain.
        if !obj.owners.is_empty() {
            let missing: Vec<&String> = obj
                .owners
                .iter()
                .filter(|u| !snap.uids.contains(*u))
                .collect();
            if !missing.is_empty() {
                pending = true;
                if missing.len() == obj.owners.len() {
                    if !obj.deleting {
                        let _ = delete_object(state, info, &obj.namespace, &obj.name, &background)
                            .await;
                    }
                } else {
                    let gone: HashSet<&str> = missing.iter().map(|s| s.as_str()).collect();
                    let mut value = obj.value();
                    if let Some(refs) = value["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| !r["uid"].as_str().is_some_and(|u| gone.contains(u)));
                    }
                    let _ = update_internal(state, info, obj, value).await;
                }
            }
        }
        if !obj.deleting {
            continue;
        }
        let value = obj.value();
        let finalizers = crate::metadata::finalizers(&value);
        let deps = dependents
            .get(obj.uid.as_str())
            .cloned()
            .unwrap_or_default();
        if finalizers.iter().any(|f| f == ORPHAN) {
            pending = true;
            for (dinfo, dobj) in &deps {
                let mut dv = dobj.value();
                if let Some(refs) = dv["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"].as_str() != Some(obj.uid.as_str()));
                }
                let _ = update_internal(state, dinfo, dobj, dv).await;
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
            for (dinfo, dobj) in &deps {
                if !dobj.deleting {
                    let _ =
                        delete_object(state, dinfo, &dobj.namespace, &dobj.name, &foreground).await;
                }
            }
            if deps.is_empty() {
                remove_finalizer(state, info, obj, value.clone(), FOREGROUND).await;
            }
            continue;
        }
        if info.group.is_empty() && info.plural == "namespaces" {
            pending = true;
            finish_namespace(state, &snap, obj).await;
            continue;
        }
        if info.group.is_empty() && info.plural == "pods" && state.config.simulate_pod_termination {
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
                let _ = delete_object(state, info, &obj.namespace, &obj.name, &immediate).await;
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
    if let Err(err) = update_internal(state, info, obj, value).await {
        tracing::debug!(%err, name = %obj.name, "removing finalizer failed; retrying");
    }
}

/// Deletes everything in a terminating namespace, then the namespace itself.
async fn finish_namespace(state: &Arc<AppState>, snap: &Snapshot, ns: &Arc<StoredObject>) {
    let background = DeleteOptions {
        propagation: Some("Background".into()),
        grace_period: Some(0),
        ..Default::default()
    };
    let mut remaining = 0;
    for (info, obj) in &snap.objects {
        if !info.namespaced || obj.namespace != ns.name {
            continue;
        }
        remaining += 1;
        if !obj.deleting || (info.group.is_empty() && info.plural == "pods") {
            let _ = delete_object(state, info, &obj.namespace, &obj.name, &background).await;
        }
    }
    if remaining == 0 {
        let key = ResourceKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        if let Err(err) = state.store.commit(
            &key,
            "",
            &ns.name,
            crate::store::Write::Delete { expected_rv: ns.rv },
        ) {
            tracing::debug!(%err, namespace = %ns.name, "namespace removal raced; retrying");
        } else {
            state.persist_wakeup.notify_one();
        }
    }
}
