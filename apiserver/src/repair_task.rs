//! The thin task around the Service allocation repair audit: runs
//! [`ServiceAllocations::repair_pass`](crate::services::ServiceAllocations::repair_pass)
//! periodically and records each finding as a Warning Event on its Service through the write
//! pipeline, as upstream's repair controllers record theirs.

use std::sync::Arc;

use serde_json::json;

use crate::pipeline::CONTROLLER_MANAGER;
use crate::services::repair::{Finding, RepairReport, REPAIR_INTERVAL};
use crate::state::AppState;

/// One repair pass with Events: [`ServiceAllocations::repair_pass`], then a Warning Event on
/// each Service with a problem (a repeated problem bumps the Event's `count`).
pub async fn repair(state: &Arc<AppState>) -> RepairReport {
    let report = state.services.repair_pass(&state.store);
    for f in &report.findings {
        record_event(state, f).await;
    }
    report
}

/// Registers the allocator metrics and starts the periodic audit (first pass right away).
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    if let Err(err) = state
        .metrics
        .registry()
        .register(state.services.metrics().collector())
    {
        tracing::warn!(%err, "allocator metrics not registered");
    }
    tokio::spawn(async move {
        loop {
            repair(&state).await;
            tokio::time::sleep(REPAIR_INTERVAL).await;
        }
    })
}

/// FNV-1a, for stable Event names per (Service, reason, message).
fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

async fn record_event(state: &Arc<AppState>, f: &Finding) {
    let Some(info) = state.registry.get("", "v1", "events") else {
        return;
    };
    let name = format!("{}.{:016x}", f.name, fnv64(&[&f.uid, f.reason, &f.message]));
    let now = crate::metadata::now_rfc3339();
    let key = info.key();
    if let Some(current) = state.store.get(&key, &f.namespace, &name) {
        let mut ev = current.value();
        let count = ev["count"].as_i64().unwrap_or(1) + 1;
        ev["count"] = json!(count);
        ev["lastTimestamp"] = json!(now);
        if let Err(err) = state
            .pipeline()
            .update_internal(&info, None, &current, ev, CONTROLLER_MANAGER)
            .await
        {
            tracing::debug!(err = %err.message, "repair event not updated");
        }
        return;
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": f.namespace},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Service",
            "name": f.name,
            "namespace": f.namespace,
            "uid": f.uid,
            "resourceVersion": f.resource_version,
        },
        "reason": f.reason,
        "message": f.message,
        "type": "Warning",
        "source": {"component": f.controller},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "action": f.action,
        "reportingComponent": f.controller,
        "reportingInstance": "svcplane-apiserver",
    });
    if let Err(err) = state.pipeline().create_internal(&info, event).await {
        tracing::debug!(err = %err.message, "repair event not recorded");
    }
}
