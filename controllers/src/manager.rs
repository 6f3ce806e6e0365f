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

use crate::config::{ControllerConfig, ControllerKind};
use crate::context::Context;
use crate::endpoints::controller::EndpointsController;
use crate::endpointslice::controller::EndpointSliceController;
use crate::error::{Error, Result};
use crate::informer::cache::{run_informer, Handler, InformerEvent};
use crate::informer::cached_pod::CachedPod;
use crate::informer::strip::{strip_endpoints, strip_node, strip_service, strip_slice};
use crate::lb_ipam::controller::LbIpamController;
use crate::metrics::Metrics;
use crate::mirroring::controller::MirroringController;
use crate::reconciler::{self, Reconciler, Watches};

/// The enabled controllers over one shared context.
pub struct ControllerManager {
    ctx: Arc<Context>,
    controllers: Vec<Arc<dyn Reconciler>>,
    /// The LoadBalancer IPAM controller: one planner with its own informers, not a keyed
    /// [`Reconciler`] (see [`crate::lb_ipam`]).
    lb_ipam: Option<LbIpamController>,
}

impl ControllerManager {
    /// Validates the configuration and builds the controllers (nothing runs yet); each
    /// controller and the informers get their own API client over `client`'s connections,
    /// with their own rate limit. Must be called within a Tokio runtime.
    pub fn new(client: Client, config: ControllerConfig, metrics: Arc<Metrics>) -> Result<Self> {
        config.validate()?;
        let ctx = Arc::new(Context::new(client, config, metrics));
        let mut controllers: Vec<Arc<dyn Reconciler>> = Vec::new();
        let lb_ipam = ctx
            .config
            .enabled(ControllerKind::LbIpam)
            .then(|| LbIpamController::new(&ctx));
        for kind in ControllerKind::ENDPOINT_CONTROLLERS {
            if !ctx.config.enabled(kind) {
                continue;
            }
            controllers.push(match kind {
                ControllerKind::EndpointSlice => {
                    Arc::new(EndpointSliceController::new(ctx.clone()))
                }
                ControllerKind::Endpoints => Arc::new(EndpointsController::new(ctx.clone())),
                ControllerKind::EndpointSliceMirroring => {
                    Arc::new(MirroringController::new(ctx.clone()))
                }
                ControllerKind::LbIpam => continue,
            });
        }
        Ok(ControllerManager {
            ctx,
            controllers,
            lb_ipam,
        })
    }

    /// Runs the enabled controllers until `shutdown` completes (or one of them stops on its
    /// own, which stops the others); in-flight syncs finish first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let ControllerManager {
            ctx,
            controllers,
            lb_ipam,
        } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let endpoint_controllers = async {
            let result = if controllers.is_empty() {
                stopped(stop_rx.clone()).await;
                Ok(())
            } else {
                let keyed = KeyedControllers { ctx, controllers };
                keyed.run(stopped(stop_rx.clone())).await
            };
            let _ = stop_tx.send(true);
            result
        };
        let lb_ipam = async {
            let result = match lb_ipam {
                Some(c) => c.run(stopped(stop_rx.clone())).await,
                None => {
                    stopped(stop_rx.clone()).await;
                    Ok(())
                }
            };
            let _ = stop_tx.send(true);
            result
        };
        let signal = async {
            tokio::select! {
                _ = shutdown => {}
                _ = stopped(stop_rx.clone()) => {}
            }
            let _ = stop_tx.send(true);
        };
        let ((), endpoints, lb) = tokio::join!(signal, endpoint_controllers, lb_ipam);
        endpoints.and(lb)
    }
}

/// The keyed controllers (the endpoint controllers) over their shared informers.
struct KeyedControllers {
    ctx: Arc<Context>,
    controllers: Vec<Arc<dyn Reconciler>>,
}

impl KeyedControllers {
    /// The informers the controllers read (Services always).
    fn watches(&self) -> Watches {
        self.controllers
            .iter()
            .fold(Watches::default(), |w, c| w.union(c.watches()))
    }

    /// An informer handler fanning each event out to every controller.
    fn handler<K: 'static>(&self, deliver: fn(&dyn Reconciler, &InformerEvent<K>)) -> Handler<K> {
        let controllers = self.controllers.clone();
        Box::new(move |ev: &InformerEvent<K>| {
            for c in &controllers {
                deliver(c.as_ref(), ev);
            }
        })
    }

    /// Runs informers and workers until `shutdown` completes; in-flight syncs finish first.
    async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let ctx = self.ctx.clone();
        let client = ctx.client.clone();
        let caches = &ctx.caches;
        let watches = self.watches();
        let wc = || watcher::Config::default();
        let mut informers = JoinSet::new();
        let services = {
            let ctx = ctx.clone();
            let fan_out = self.handler(|c, ev| c.on_service(ev));
            Box::new(move |ev: &InformerEvent<Service>| {
                // The selector index follows the event before any controller sees it.
                ctx.caches.index_service_event(ev);
                fan_out(ev);
            })
        };
        informers.spawn(run_informer(
            Api::<Service>::all(client.clone()),
            wc(),
            caches.services.clone(),
            strip_service,
            services,
        ));
        if watches.pods {
            informers.spawn(run_informer(
                Api::<Pod>::all(client.clone()),
                wc(),
                caches.pods.clone(),
                {
                    let interner = caches.pod_interner.clone();
                    move |pod| CachedPod::from_pod(pod, &interner)
                },
                self.handler(|c, ev| c.on_pod(ev)),
            ));
        }
        if watches.nodes {
            informers.spawn(run_informer(
                Api::<Node>::all(client.clone()),
                wc(),
                caches.nodes.clone(),
                strip_node,
                self.handler(|c, ev| c.on_node(ev)),
            ));
        }
        if watches.slices {
            informers.spawn(run_informer(
                Api::<EndpointSlice>::all(client.clone()),
                wc(),
                caches.slices.clone(),
                strip_slice,
                self.handler(|c, ev| c.on_slice(ev)),
            ));
        }
        if watches.endpoints {
            informers.spawn(run_informer(
                Api::<Endpoints>::all(client.clone()),
                wc(),
                caches.endpoints.clone(),
                strip_endpoints,
                self.handler(|c, ev| c.on_endpoints(ev)),
            ));
        }
        let synced = async {
            caches.services.wait_synced().await;
            if watches.pods {
                caches.pods.wait_synced().await;
            }
            if watches.nodes {
                caches.nodes.wait_synced().await;
            }
            if watches.slices {
                caches.slices.wait_synced().await;
            }
            if watches.endpoints {
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
        for c in &self.controllers {
            c.resync_all();
        }

        // Each controller runs its own number of workers (upstream `--concurrent-*-syncs`).
        let mut workers = JoinSet::new();
        for c in &self.controllers {
            for _ in 0..ctx.config.concurrent_syncs(c.kind()) {
                workers.spawn(worker(c.clone()));
            }
        }
        let depth = {
            let controllers = self.controllers.clone();
            async move {
                loop {
                    for c in &controllers {
                        let scope = c.scope();
                        scope
                            .ctx
                            .metrics
                            .queue_depth
                            .with_label_values(&[scope.name])
                            .set(scope.queue.len() as i64);
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
        for c in &self.controllers {
            c.scope().queue.shutdown();
        }
        while workers.join_next().await.is_some() {}
        informers.shutdown().await;
        Ok(())
    }
}

/// One worker: takes keys, plans and applies them, and requeues failures with backoff.
async fn worker(controller: Arc<dyn Reconciler>) {
    let scope = controller.scope();
    let (name, queue, metrics) = (scope.name, &scope.queue, &scope.ctx.metrics);
    while let Some(key) = queue.get().await {
        let started = Instant::now();
        let result = reconciler::sync(controller.as_ref(), &key).await;
        let label = match &result {
            Ok(()) => "success",
            Err(e) => e.kind(),
        };
        metrics
            .sync_duration
            .with_label_values(&[name, label])
            .observe(started.elapsed().as_secs_f64());
        metrics.syncs.with_label_values(&[name, label]).inc();
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

/// Runs the controllers only while holding the Lease; returns
/// [`Error::LeaderElectionLost`] if leadership is lost, `Ok` after `shutdown` (releasing the
/// Lease).
pub async fn run_with_leader_election(
    client: Client,
    config: ControllerConfig,
    election: crate::runtime::leader_election::LeaderElectionConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // Its own client and rate limit (upstream `leader-election`), so renewals never wait
    // behind the controllers' writes.
    let election_client = crate::runtime::rate_limit::limited_client(
        &client,
        config.client_rate_limit,
        metrics
            .client_rate_limiter_duration
            .with_label_values(&[crate::context::LEADER_ELECTION_CLIENT]),
    );
    let elector = crate::runtime::leader_election::LeaderElector::new(election_client, election);
    tokio::pin!(shutdown);
    tokio::select! {
        _ = elector.acquire() => {}
        _ = &mut shutdown => return Ok(()),
    }
    metrics.is_leader.set(1);
    let manager = ControllerManager::new(client, config, metrics.clone())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Run in this task (not spawned): dropping this future stops the controllers too, so an
    // instance that dies stops acting at once.
    let running = manager.run(async {
        let _ = stop_rx.await;
    });
    tokio::pin!(running);
    let mut finished = None;
    let outcome = tokio::select! {
        _ = &mut shutdown => Ok(()),
        lost = elector.hold() => Err(lost),
        res = &mut running => {
            finished = Some(res);
            Ok(())
        }
    };
    let _ = stop_tx.send(());
    let joined = match finished {
        Some(res) => res,
        None => running.await,
    };
    metrics.is_leader.set(0);
    if outcome.is_ok() {
        elector.release().await;
    }
    if let Err(err) = joined {
        tracing::warn!(error = %err, "controllers stopped with an error");
    }
    outcome
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
