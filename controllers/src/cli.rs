//! `svcplane controller-manager`: flags, health and metrics endpoints, leader election.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use kube::Client;

use crate::config::{parse_controllers, ControllerConfig};
use crate::duration_flag::parse_duration;
use crate::error::{Error, Result};
use crate::labels::{DEFAULT_MAX_ENDPOINTS_PER_SLICE, MANAGED_BY_ENDPOINTSLICE_CONTROLLER};
use crate::leader_election::{LeaderElectionConfig, LeaderElector};
use crate::manager::ControllerManager;
use crate::metrics::Metrics;

/// Flags of `svcplane controller-manager` (names as kube-controller-manager's).
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerManagerArgs {
    /// Path to a kubeconfig; without it the usual inference (KUBECONFIG, in-cluster) applies.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Controllers to run, comma-separated (`*` = all).
    #[arg(long, default_value = "endpointslice,endpointslicemirroring,endpoints")]
    pub controllers: String,
    /// Concurrent syncs per controller.
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_syncs: usize,
    /// Maximum endpoints per EndpointSlice (1..=1000).
    #[arg(long, default_value_t = DEFAULT_MAX_ENDPOINTS_PER_SLICE)]
    pub max_endpoints_per_slice: usize,
    /// Batch period for Pod-driven endpoint updates, as kube-controller-manager takes it
    /// (`500ms`, `1s`; a plain number is seconds).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub endpoint_updates_batch_period: Duration,
    /// Client write rate limit (requests/s, 0 = unlimited; kube-controller-manager uses 20).
    #[arg(long, default_value_t = 20.0)]
    pub kube_api_qps: f32,
    /// Client write burst.
    #[arg(long, default_value_t = 30)]
    pub kube_api_burst: u32,
    /// Elect a leader on a Lease before running controllers (on by default, as in
    /// kube-controller-manager; `--leader-elect=false` runs without).
    #[arg(
        long,
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub leader_elect: bool,
    /// Lease namespace.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// Lease name.
    #[arg(long, default_value = "svcplane-controller-manager")]
    pub leader_elect_resource_name: String,
    /// How long a leader's Lease is valid without renewal (`15s`).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before it gives up leading (`10s`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates retry acquiring or renewing the Lease (`2s`).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// `endpointslice.kubernetes.io/managed-by` value written on slices.
    #[arg(long, default_value = MANAGED_BY_ENDPOINTSLICE_CONTROLLER)]
    pub managed_by: String,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, default_value = "127.0.0.1:10257")]
    pub metrics_addr: SocketAddr,
}

impl ControllerManagerArgs {
    /// The controller configuration these flags describe.
    pub fn controller_config(&self) -> Result<ControllerConfig> {
        let config = ControllerConfig {
            controllers: parse_controllers(&self.controllers)?,
            concurrent_syncs: self.concurrent_service_syncs,
            max_endpoints_per_slice: self.max_endpoints_per_slice,
            endpoint_updates_batch_period: self.endpoint_updates_batch_period,
            managed_by: self.managed_by.clone(),
            kube_api_qps: self.kube_api_qps,
            kube_api_burst: self.kube_api_burst,
            ..ControllerConfig::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// The leader election configuration these flags describe.
    pub fn leader_election_config(&self) -> Result<LeaderElectionConfig> {
        Ok(LeaderElectionConfig {
            namespace: self.leader_elect_resource_namespace.clone(),
            name: self.leader_elect_resource_name.clone(),
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
            ..LeaderElectionConfig::default()
        })
    }
}

async fn client_for(kubeconfig: Option<&PathBuf>) -> Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))
}

#[derive(Clone)]
struct HealthState {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// Serves `/healthz` (always ok while running), `/readyz` (ok once this instance is leading
/// or on standby with leader election, i.e. started) and `/metrics`.
pub async fn serve_health(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<HealthState>| async move {
                if s.ready.load(Ordering::Acquire) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<HealthState>| async move { s.metrics.encode() }),
        )
        .with_state(HealthState { metrics, ready });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Runs the controllers only while holding the Lease; returns
/// [`Error::LeaderElectionLost`] if leadership is lost, `Ok` after `shutdown` (releasing the
/// Lease).
pub async fn run_with_leader_election(
    client: Client,
    config: ControllerConfig,
    election: LeaderElectionConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let elector = LeaderElector::new(client.clone(), election);
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

/// Entry point of `svcplane controller-manager`: runs until Ctrl-C / SIGTERM.
pub async fn run(args: ControllerManagerArgs) -> Result<()> {
    let config = args.controller_config()?;
    let client = client_for(args.kubeconfig.as_ref()).await?;
    let metrics = Arc::new(Metrics::new()?);
    let ready = Arc::new(AtomicBool::new(false));
    let health = tokio::spawn(serve_health(
        args.metrics_addr,
        metrics.clone(),
        ready.clone(),
    ));
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested");
    };
    ready.store(true, Ordering::Release);
    let result = if args.leader_elect {
        run_with_leader_election(
            client,
            config,
            args.leader_election_config()?,
            metrics,
            shutdown,
        )
        .await
    } else {
        ControllerManager::new(client, config, metrics)?
            .run(shutdown)
            .await
    };
    health.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerManagerArgs,
    }

    #[test]
    fn flags_map_to_controller_config() {
        let cli = Cli::parse_from([
            "x",
            "--controllers",
            "endpointslice",
            "--max-endpoints-per-slice",
            "500",
            "--endpoint-updates-batch-period",
            "0.25",
            "--kube-api-qps",
            "0",
        ]);
        let c = cli.args.controller_config().unwrap();
        assert_eq!(c.controllers.len(), 1);
        assert_eq!(c.max_endpoints_per_slice, 500);
        assert_eq!(c.endpoint_updates_batch_period, Duration::from_millis(250));
        assert_eq!(c.kube_api_qps, 0.0);
    }

    #[test]
    fn duration_flags_take_kube_controller_manager_syntax() {
        let cli = Cli::parse_from([
            "x",
            "--endpoint-updates-batch-period",
            "500ms",
            "--leader-elect-lease-duration",
            "1m",
            "--leader-elect-renew-deadline",
            "45s",
            "--leader-elect-retry-period",
            "1.5s",
        ]);
        let c = cli.args.controller_config().unwrap();
        assert_eq!(c.endpoint_updates_batch_period, Duration::from_millis(500));
        let le = cli.args.leader_election_config().unwrap();
        assert_eq!(le.lease_duration, Duration::from_secs(60));
        assert_eq!(le.renew_deadline, Duration::from_secs(45));
        assert_eq!(le.retry_period, Duration::from_millis(1500));
        let Err(err) = Cli::try_parse_from(["x", "--leader-elect-lease-duration", "15 parsecs"])
        else {
            panic!("an unknown unit is refused");
        };
        let err = err.to_string();
        assert!(err.contains("--leader-elect-lease-duration"), "{err}");
    }

    #[test]
    fn leader_election_is_on_by_default_and_can_be_turned_off() {
        assert!(Cli::parse_from(["x"]).args.leader_elect);
        assert!(Cli::parse_from(["x", "--leader-elect"]).args.leader_elect);
        assert!(
            !Cli::parse_from(["x", "--leader-elect=false"])
                .args
                .leader_elect
        );
    }

    #[test]
    fn bad_flags_are_rejected_with_their_name() {
        let cli = Cli::parse_from(["x", "--max-endpoints-per-slice", "5000"]);
        let err = cli.args.controller_config().unwrap_err().to_string();
        assert!(err.contains("--max-endpoints-per-slice"), "{err}");
        let cli = Cli::parse_from(["x", "--managed-by", "controller"]);
        assert!(cli.args.controller_config().is_err());
    }
}
