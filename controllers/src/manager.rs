//! Wires informers, controllers and workers together and runs them until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use kube::Client;
use tokio::task::JoinSet;

use crate::cache::{run_informer, Handler, InformerEvent};
use crate::cached_object::{CachedEndpoints, CachedSlice};
use crate::cached_pod::CachedPod;
use crate::config::{ControllerConfig, ControllerKind};
use crate::context::Context;
use crate::endpoints_controller::EndpointsController;
use crate::endpointslice_controller::EndpointSliceController;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::mirroring_controller::MirroringController;
use crate::queue::WorkQueue;
use crate::strip::{strip_endpoints, strip_node, strip_service, strip_slice};

/// The enabled controllers over one shared context.
pub struct ControllerManager {
    ctx: Arc<Context>,
    endpointslice: Option<Arc<EndpointSliceController>>,
    endpoints: Option<Arc<EndpointsController>>,
    mirroring: Option<Arc<MirroringController>>,
}

impl ControllerManager {
    /// Validates the configuration and builds the controllers (nothing runs yet); each
    /// controller and the informers get their own API client over `client`'s connections,
    /// with their own rate limit. Must be called within a Tokio runtime.
    pub fn new(client: Client, config: ControllerConfig, metrics: Arc<Metrics>) -> Result<Self> {
        config.validate()?;
        let ctx = Arc::new(Context::new(client, config, metrics));
        let enabled = |k| ctx.config.enabled(k);
        Ok(ControllerManager {
            endpointslice: enabled(ControllerKind::EndpointSlice)
                .then(|| Arc::new(EndpointSliceController::new(ctx.clone()))),
            endpoints: enabled(ControllerKind::Endpoints)
                .then(|| Arc::new(EndpointsController::new(ctx.clone()))),
            mirroring: enabled(ControllerKind::EndpointSliceMirroring)
                .then(|| Arc::new(MirroringController::new(ctx.clone()))),
            ctx,
        })
    }

    /// The shared context (caches, metrics).
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    fn service_handler(&self) -> Handler<Service> {
        let (a, b, c) = (
            self.endpointslice.clone(),
            self.endpoints.clone(),
            self.mirroring.clone(),
        );
        let ctx = self.ctx.clone();
        Box::new(move |ev: &InformerEvent<Service>| {
            ctx.caches.index_service_event(ev);
            if let Some(a) = &a {
                a.on_service(ev);
            }
            if let Some(b) = &b {
                b.on_service(ev);
            }
            if let Some(c) = &c {
                c.on_service(ev);
            }
        })
    }

    fn pod_handler(&self) -> Handler<CachedPod> {
        let (a, b) = (self.endpointslice.clone(), self.endpoints.clone());
        Box::new(move |ev: &InformerEvent<CachedPod>| {
            if let Some(a) = &a {
                a.on_pod(ev);
            }
            if let Some(b) = &b {
                b.on_pod(ev);
            }
        })
    }

    fn node_handler(&self) -> Handler<Node> {
        let a = self.endpointslice.clone();
        Box::new(move |ev: &InformerEvent<Node>| {
            if let Some(a) = &a {
                a.on_node(ev);
            }
        })
    }

    fn slice_handler(&self) -> Handler<CachedSlice> {
        let (a, c) = (self.endpointslice.clone(), self.mirroring.clone());
        Box::new(move |ev: &InformerEvent<CachedSlice>| {
            if let Some(a) = &a {
                a.on_slice(ev);
            }
            if let Some(c) = &c {
                c.on_slice(ev);
            }
        })
    }

    fn endpoints_handler(&self) -> Handler<CachedEndpoints> {
        let (b, c) = (self.endpoints.clone(), self.mirroring.clone());
        Box::new(move |ev: &InformerEvent<CachedEndpoints>| {
            if let Some(b) = &b {
                b.on_endpoints(ev);
            }
            if let Some(c) = &c {
                c.on_endpoints(ev);
            }
        })
    }

    fn queues(&self) -> Vec<(&'static str, Arc<WorkQueue>)> {
        let mut out = Vec::new();
        if let Some(c) = &self.endpointslice {
            out.push((crate::endpointslice_controller::NAME, c.queue.clone()));
        }
        if let Some(c) = &self.endpoints {
            out.push((crate::endpoints_controller::NAME, c.queue.clone()));
        }
        if let Some(c) = &self.mirroring {
            out.push((crate::mirroring_controller::NAME, c.queue.clone()));
        }
        out
    }

    /// Runs informers and workers until `shutdown` completes; in-flight syncs finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let ctx = self.ctx.clone();
        let client = ctx.client.clone();
        let caches = &ctx.caches;
        let wc = || watcher::Config::default();
        let mut informers = JoinSet::new();
        let need_pods = self.endpointslice.is_some() || self.endpoints.is_some();
        informers.spawn(run_informer(
            Api::<Service>::all(client.clone()),
            wc(),
            caches.services.clone(),
            strip_service,
            self.service_handler(),
        ));
        if need_pods {
            informers.spawn(run_informer(
                Api::<Pod>::all(client.clone()),
                wc(),
                caches.pods.clone(),
                {
                    let interner = caches.pod_interner.clone();
                    move |pod| CachedPod::from_pod(pod, &interner)
                },
                self.pod_handler(),
            ));
        }
        if self.endpointslice.is_some() {
            informers.spawn(run_informer(
                Api::<Node>::all(client.clone()),
                wc(),
                caches.nodes.clone(),
                strip_node,
                self.node_handler(),
            ));
        }
        if self.endpointslice.is_some() || self.mirroring.is_some() {
            informers.spawn(run_informer(
                Api::<EndpointSlice>::all(client.clone()),
                wc(),
                caches.slices.clone(),
                strip_slice,
                self.slice_handler(),
            ));
        }
        if self.endpoints.is_some() || self.mirroring.is_some() {
            informers.spawn(run_informer(
                Api::<Endpoints>::all(client.clone()),
                wc(),
                caches.endpoints.clone(),
                strip_endpoints,
                self.endpoints_handler(),
            ));
        }
        let synced = async {
            caches.services.wait_synced().await;
            if need_pods {
                caches.pods.wait_synced().await;
            }
            if self.endpointslice.is_some() {
                caches.nodes.wait_synced().await;
            }
            if self.endpointslice.is_some() || self.mirroring.is_some() {
                caches.slices.wait_synced().await;
            }
            if self.endpoints.is_some() || self.mirroring.is_some() {
                caches.endpoints.wait_synced().await;
            }
        };
        tokio::pin!(shutdown);
        tokio::select! {
            _ = synced => {}
            _ = &mut shutdown => {
                informers.shutdown().await;
                return Ok(());
            }
        }
        tracing::info!(
            services = caches.services.len(),
            pods = caches.pods.len(),
            slices = caches.slices.len(),
            "caches synced, starting controllers"
        );
        ctx.mark_started();
        if let Some(c) = &self.endpointslice {
            c.resync_all();
        }
        if let Some(c) = &self.endpoints {
            c.resync_all();
        }
        if let Some(c) = &self.mirroring {
            c.resync_all();
        }

        // Each controller runs its own number of workers (upstream `--concurrent-*-syncs`).
        let mut workers = JoinSet::new();
        if let Some(c) = &self.endpointslice {
            for _ in 0..ctx.config.concurrent_syncs(ControllerKind::EndpointSlice) {
                let c = c.clone();
                workers.spawn(worker(
                    ctx.clone(),
                    crate::endpointslice_controller::NAME,
                    c.queue.clone(),
                    move |key| {
                        let c = c.clone();
                        async move { c.sync(&key).await }
                    },
                ));
            }
        }
        if let Some(c) = &self.endpoints {
            for _ in 0..ctx.config.concurrent_syncs(ControllerKind::Endpoints) {
                let c = c.clone();
                workers.spawn(worker(
                    ctx.clone(),
                    crate::endpoints_controller::NAME,
                    c.queue.clone(),
                    move |key| {
                        let c = c.clone();
                        async move { c.sync(&key).await }
                    },
                ));
            }
        }
        if let Some(c) = &self.mirroring {
            for _ in 0..ctx
                .config
                .concurrent_syncs(ControllerKind::EndpointSliceMirroring)
            {
                let c = c.clone();
                workers.spawn(worker(
                    ctx.clone(),
                    crate::mirroring_controller::NAME,
                    c.queue.clone(),
                    move |key| {
                        let c = c.clone();
                        async move { c.sync(&key).await }
                    },
                ));
            }
        }
        let queues = self.queues();
        let depth = {
            let metrics = ctx.metrics.clone();
            let queues = queues.clone();
            async move {
                loop {
                    for (name, q) in &queues {
                        metrics
                            .queue_depth
                            .with_label_values(&[name])
                            .set(q.len() as i64);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        };
        tokio::select! {
            _ = &mut shutdown => {}
            _ = depth => {}
            Some(res) = informers.join_next() => {
                if let Err(e) = res {
                    tracing::error!(error = %e, "informer task ended");
                }
            }
        }
        tracing::info!("shutting down controllers");
        for (_, q) in &queues {
            q.shutdown();
        }
        while workers.join_next().await.is_some() {}
        informers.shutdown().await;
        Ok(())
    }
}

/// One worker: takes keys, syncs, and requeues failures with backoff.
async fn worker<F, Fut>(ctx: Arc<Context>, name: &'static str, queue: Arc<WorkQueue>, sync: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    while let Some(key) = queue.get().await {
        let started = Instant::now();
        let result = sync(key.clone()).await;
        let label = match &result {
            Ok(()) => "success",
            Err(e) => e.kind(),
        };
        ctx.metrics
            .sync_duration
            .with_label_values(&[name, label])
            .observe(started.elapsed().as_secs_f64());
        ctx.metrics.syncs.with_label_values(&[name, label]).inc();
        match result {
            Ok(()) => queue.forget(&key),
            Err(err) => {
                match &err {
                    Error::StaleCache { .. } | Error::NodeNotFound { .. } => {
                        tracing::debug!(controller = name, %key, error = %err, "requeue")
                    }
                    _ if err.status_code() == Some(409) => {
                        tracing::debug!(controller = name, %key, error = %err, "conflict, requeue")
                    }
                    _ => {
                        tracing::warn!(controller = name, %key, error = %err, "sync failed, requeue")
                    }
                }
                queue.add_rate_limited(&key);
            }
        }
        queue.done(&key);
    }
}

/// Runs the configured controllers in-process until `shutdown` completes (used by
/// `svcplane dev` and tests). Metrics go to a private registry.
pub async fn run_controllers(
    client: Client,
    config: ControllerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let metrics = Arc::new(Metrics::new()?);
    ControllerManager::new(client, config, metrics)?
        .run(shutdown)
        .await
}

impl From<kube::config::KubeconfigError> for Error {
    fn from(e: kube::config::KubeconfigError) -> Self {
        Error::Kubeconfig(e.to_string())
    }
}
