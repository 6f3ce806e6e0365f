//! The apply step of the LoadBalancer IPAM controller: watches Services, Namespaces and
//! `LoadBalancerIPPool`s, re-plans on every change (bursts coalesce) and writes what the plan
//! decided: `services/status` (merge patch conditional on the resourceVersion the plan read,
//! field manager `svcplane-lb-ipam`), pools' `status`, Events and metrics.
//!
//! One planner over all Services and pools (not per-key workers): an address is a shared
//! resource, and one plan over everything is what guarantees that no address goes to two
//! Services. Writes the watch has not shown yet are laid over the caches (the Service as the
//! API server returned it), so a re-plan never reuses an address it just wrote.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::json;
use svcplane_api::{LoadBalancerIPPool, LoadBalancerIPPoolStatus};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::plan::{plan, PlanInput, PoolReport, StatusWrite};
use super::service_view::ClassConfig;
use crate::config::ControllerKind;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::reconciler::PlannedEvent;
use crate::recorder::Recorder;

/// Field manager of the controller's writes.
pub const FIELD_MANAGER: &str = "svcplane-lb-ipam";

/// Status writes in flight at once.
const CONCURRENT_WRITES: usize = 16;

/// How long a change waits for more changes before the plan runs.
const COALESCE: Duration = Duration::from_millis(10);

/// The controller: its own clients, recorder and configuration.
pub struct LbIpamController {
    client: Client,
    watch_client: Client,
    recorder: Recorder,
    config: ClassConfig,
    metrics: Arc<Metrics>,
    backoff_base: Duration,
    backoff_max: Duration,
}

/// What the controller remembers between plans.
#[derive(Default)]
struct Memory {
    /// Our writes the watch has not shown yet: uid -> (resourceVersion before, as written).
    written: HashMap<String, (String, Arc<Service>)>,
    /// Pool statuses we wrote: name -> status.
    pool_written: HashMap<String, LoadBalancerIPPoolStatus>,
    /// Events recorded while their cause persists: (uid, reason, message).
    recorded: HashSet<(String, &'static str, String)>,
}

impl LbIpamController {
    /// The controller over `ctx`'s connections: its own rate-limited client for writes, the
    /// informers' client for watches, its Event source.
    pub fn new(ctx: &Context) -> Self {
        let kind = ControllerKind::LbIpam;
        let client = ctx.client_for(kind.client_name());
        LbIpamController {
            recorder: Recorder::new(client.clone(), kind.event_source()),
            client,
            watch_client: ctx.client.clone(),
            config: ClassConfig {
                class: ctx.config.load_balancer_class.clone(),
                default_class: ctx.config.lb_ipam_default_class,
            },
            metrics: ctx.metrics.clone(),
            backoff_base: ctx.config.sync_backoff_base,
            backoff_max: ctx.config.sync_backoff_max,
        }
    }

    /// Watches and plans until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let changed = Arc::new(Notify::new());
        let mut informers = JoinSet::new();
        let services = informer::<Service>(&self.watch_client, &mut informers, &changed);
        let namespaces = informer::<Namespace>(&self.watch_client, &mut informers, &changed);
        let pools = informer::<LoadBalancerIPPool>(&self.watch_client, &mut informers, &changed);
        tokio::pin!(shutdown);
        let ready = async {
            let _ = services.wait_until_ready().await;
            let _ = namespaces.wait_until_ready().await;
            let _ = pools.wait_until_ready().await;
        };
        tokio::select! {
            _ = ready => {}
            _ = &mut shutdown => {
                informers.shutdown().await;
                return Ok(());
            }
        }
        tracing::info!(
            services = services.len(),
            pools = pools.len(),
            "lb-ipam: caches synced"
        );
        let mut memory = Memory::default();
        let mut failures = 0u32;
        let mut retry: Option<Duration> = None;
        loop {
            let retry_sleep = async {
                match retry {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = changed.notified() => {}
                _ = retry_sleep => {}
            }
            tokio::time::sleep(COALESCE).await;
            let ok = self.sync(&services, &namespaces, &pools, &mut memory).await;
            if ok {
                failures = 0;
                retry = None;
            } else {
                failures = failures.saturating_add(1);
                let factor = 2u32.saturating_pow(failures.min(16) - 1);
                retry = Some(
                    self.backoff_base
                        .saturating_mul(factor)
                        .min(self.backoff_max),
                );
            }
        }
        informers.shutdown().await;
        Ok(())
    }

    /// One plan and its writes; false when a write failed (the caller retries).
    async fn sync(
        &self,
        services: &Store<Service>,
        namespaces: &Store<Namespace>,
        pools: &Store<LoadBalancerIPPool>,
        memory: &mut Memory,
    ) -> bool {
        let services = overlay(services.state(), &mut memory.written);
        let namespaces: BTreeMap<String, BTreeMap<String, String>> = namespaces
            .state()
            .iter()
            .map(|ns| {
                (
                    ns.metadata.name.clone().unwrap_or_default(),
                    ns.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect();
        let pools = pools.state();
        let planned = plan(&PlanInput {
            config: &self.config,
            pools: &pools,
            namespaces: &namespaces,
            services: &services,
            now: Time(Timestamp::now()),
        });
        self.observe_pools(&planned.pools);

        let results: Vec<(StatusWrite, Result<Service>)> = futures::stream::iter(planned.services)
            .map(|write| async move {
                let result = self.write_status(&write).await;
                (write, result)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let mut ok = true;
        let mut failed_uids = HashSet::new();
        for (write, result) in results {
            let uid = write.uid.clone().unwrap_or_default();
            match result {
                Ok(stored) => {
                    self.metrics
                        .lb_ipam_allocations
                        .inc_by(write.allocated as u64);
                    self.metrics
                        .lb_ipam_status_writes
                        .with_label_values(&["success"])
                        .inc();
                    let before = write.resource_version.clone().unwrap_or_default();
                    memory.written.insert(uid, (before, Arc::new(stored)));
                }
                Err(err) => {
                    ok = false;
                    self.metrics
                        .lb_ipam_status_writes
                        .with_label_values(&["error"])
                        .inc();
                    let service = format!("{}/{}", write.namespace, write.name);
                    match err.status_code() {
                        Some(404 | 409) => {
                            tracing::debug!(%service, error = %err, "lb-ipam: stale, re-plan")
                        }
                        _ => tracing::warn!(%service, error = %err, "lb-ipam: status write failed"),
                    }
                    failed_uids.insert(uid);
                }
            }
        }
        for report in planned.pools.iter().filter(|r| r.changed) {
            if memory.pool_written.get(&report.name) == Some(&report.status) {
                continue; // written; the watch has not shown it yet
            }
            match self.write_pool_status(report).await {
                Ok(()) => {
                    memory
                        .pool_written
                        .insert(report.name.clone(), report.status.clone());
                }
                Err(err) => {
                    ok = false;
                    tracing::warn!(pool = %report.name, error = %err, "lb-ipam: pool status write failed");
                }
            }
        }
        memory
            .pool_written
            .retain(|name, _| planned.pools.iter().any(|r| &r.name == name && r.changed));
        self.record(planned.events, &failed_uids, &mut memory.recorded);
        ok
    }

    /// Records each Event once while the plan keeps it; `IPAllocated` only when the write
    /// that hands the address out succeeded.
    fn record(
        &self,
        events: Vec<PlannedEvent>,
        failed_uids: &HashSet<String>,
        recorded: &mut HashSet<(String, &'static str, String)>,
    ) {
        let mut now = HashSet::new();
        for event in events {
            let uid = event.object.uid.clone().unwrap_or_default();
            if event.reason == "IPAllocated" && failed_uids.contains(&uid) {
                continue;
            }
            let key = (uid, event.reason, event.message.clone());
            if !recorded.contains(&key) {
                if event.warning {
                    self.recorder
                        .warn(event.object, event.reason, event.message);
                } else {
                    self.recorder
                        .normal(event.object, event.reason, event.message);
                }
            }
            now.insert(key);
        }
        *recorded = now;
    }

    fn observe_pools(&self, reports: &[PoolReport]) {
        let gauge = &self.metrics.lb_ipam_pool_addresses;
        gauge.reset();
        for report in reports {
            for (family, usage) in [("IPv4", report.status.ipv4), ("IPv6", report.status.ipv6)] {
                if let Some(usage) = usage {
                    gauge
                        .with_label_values(&[report.name.as_str(), family, "total"])
                        .set(usage.total);
                    gauge
                        .with_label_values(&[report.name.as_str(), family, "used"])
                        .set(usage.used);
                }
            }
        }
    }

    /// Replaces `status.loadBalancer.ingress` (merge patch; the whole list is ours),
    /// conditional on the resourceVersion the plan read.
    async fn write_status(&self, write: &StatusWrite) -> Result<Service> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &write.namespace);
        let ingress = if write.ingress.is_empty() {
            serde_json::Value::Null
        } else {
            json!(write.ingress)
        };
        let patch = json!({
            "metadata": {"resourceVersion": write.resource_version},
            "status": {"loadBalancer": {"ingress": ingress}},
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch_status(&write.name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                Error::api(
                    format!(
                        "failed to update status of Service {}/{}",
                        write.namespace, write.name
                    ),
                    e,
                )
            })
    }

    async fn write_pool_status(&self, report: &PoolReport) -> Result<()> {
        let api: Api<LoadBalancerIPPool> = Api::all(self.client.clone());
        let status = &report.status;
        // Every field spelled out: a merge patch leaves absent fields as they were.
        let patch = json!({"status": {
            "total": status.total,
            "used": status.used,
            "ipv4": status.ipv4,
            "ipv6": status.ipv6,
            "conditions": status.conditions,
        }});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch_status(&report.name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::api(
                    format!(
                        "failed to update status of LoadBalancerIPPool {}",
                        report.name
                    ),
                    e,
                )
            })
    }
}

/// The Services of the cache, with our writes the watch has not shown yet laid over them;
/// writes the cache has caught up with (or whose Service is gone) are forgotten.
fn overlay(
    cached: Vec<Arc<Service>>,
    written: &mut HashMap<String, (String, Arc<Service>)>,
) -> Vec<Arc<Service>> {
    let mut seen = HashSet::new();
    let out = cached
        .into_iter()
        .map(|svc| {
            let uid = svc.metadata.uid.clone().unwrap_or_default();
            seen.insert(uid.clone());
            match written.get(&uid) {
                Some((before, stored))
                    if svc.metadata.resource_version.as_deref() == Some(before.as_str()) =>
                {
                    stored.clone()
                }
                Some(_) => {
                    written.remove(&uid);
                    svc
                }
                None => svc,
            }
        })
        .collect();
    written.retain(|uid, _| seen.contains(uid));
    out
}

/// A reflector over all objects of `K`, poking `changed` on every event.
fn informer<K>(client: &Client, tasks: &mut JoinSet<()>, changed: &Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tasks.spawn(drive(stream, changed.clone()));
    store
}

async fn drive<K, S>(stream: S, changed: Arc<Notify>)
where
    S: Stream<Item = std::result::Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => changed.notify_one(),
            Err(err) => tracing::warn!(error = %err, "lb-ipam: watch failed, retrying"),
        }
    }
}
