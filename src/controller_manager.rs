//! `svcplane controller-manager`: the command line (kube-controller-manager's flags for the
//! endpoint controllers), the health and metrics endpoints, and the choice between running
//! with or without leader election. The controllers themselves live in `svcplane_controllers`.

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

use svcplane_controllers::{
    parse_controllers, parse_duration, run_with_leader_election, ClientRateLimit, ControllerConfig,
    ControllerKind, ControllerManager, Error, LeaderElectionConfig, Metrics, Result,
    DEFAULT_MAX_ENDPOINTS_PER_SLICE, KUBE_CONTROLLER_MANAGER_BURST, KUBE_CONTROLLER_MANAGER_QPS,
    MANAGED_BY_ENDPOINTSLICE_CONTROLLER, MIRRORING_MAX_ENDPOINTS_PER_SUBSET,
};

/// The Lease of the LoadBalancer IPAM controller's leader election (default of
/// `--lb-ipam-leader-elect-resource-name`).
pub const LB_IPAM_LEASE_NAME: &str = "svcplane-lb-ipam";

/// kube-controller-manager's `--kube-api-content-type` default.
pub const KUBE_API_CONTENT_TYPE_PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The other `--kube-api-content-type` value, the one svcplane always sends.
pub const KUBE_API_CONTENT_TYPE_JSON: &str = "application/json";

/// Flags of `svcplane controller-manager`: kube-controller-manager's names, defaults and
/// syntax for everything it implements (the three endpoint controllers, client limits,
/// leader election), so a kube-controller-manager command line for these controllers can
/// be kept; `--managed-by` and `--metrics-addr` are svcplane's own.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerManagerArgs {
    /// Path to a kubeconfig; without it the usual inference (KUBECONFIG, in-cluster) applies.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Controllers to enable (comma-separated, repeatable): `*` enables all, `foo` enables
    /// `foo`, `-foo` disables `foo`. svcplane runs only endpoints-controller (alias
    /// endpoint), endpointslice-controller (alias endpointslice),
    /// endpointslice-mirroring-controller (alias endpointslicemirroring) and its own
    /// lb-ipam-controller (alias lbipam; in `*`); any other name is an error.
    #[arg(
        long,
        value_delimiter = ',',
        action = clap::ArgAction::Append,
        allow_hyphen_values = true,
        default_value = "*"
    )]
    pub controllers: Vec<String>,
    /// Workers of the Endpoints controller.
    #[arg(long, default_value_t = 5)]
    pub concurrent_endpoint_syncs: usize,
    /// Workers of the EndpointSlice controller (1..=50).
    #[arg(long, default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: usize,
    /// Workers of the EndpointSlice mirroring controller (1..=50).
    #[arg(long, default_value_t = 5)]
    pub mirroring_concurrent_service_endpoint_syncs: usize,
    /// Batch period of the Endpoints controller: Pod changes are delayed this long to be
    /// synced together (`500ms`, `1s`, Go duration syntax; a plain number is seconds).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub endpoint_updates_batch_period: Duration,
    /// Batch period of the EndpointSlice controller for Pod changes.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub endpointslice_updates_batch_period: Duration,
    /// Batch period of the EndpointSlice mirroring controller for Endpoints changes.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub mirroring_endpointslice_updates_batch_period: Duration,
    /// Maximum endpoints per EndpointSlice (1..=1000).
    #[arg(long, default_value_t = DEFAULT_MAX_ENDPOINTS_PER_SLICE)]
    pub max_endpoints_per_slice: usize,
    /// Maximum addresses of one Endpoints subset mirrored into EndpointSlices (1..=1000).
    #[arg(long, default_value_t = MIRRORING_MAX_ENDPOINTS_PER_SUBSET)]
    pub mirroring_max_endpoints_per_subset: usize,
    /// Requests per second of each API client: one per controller, one for the informers,
    /// one for leader election. Counted like client-go: every request but watches (each
    /// list page counts). 0 means client-go's default of 5; a negative value disables the
    /// client-side limit.
    #[arg(long, default_value_t = KUBE_CONTROLLER_MANAGER_QPS, allow_negative_numbers = true)]
    pub kube_api_qps: f32,
    /// Burst of each API client's rate limit (0 means client-go's default of 10).
    #[arg(long, default_value_t = KUBE_CONTROLLER_MANAGER_BURST as i32, allow_negative_numbers = true)]
    pub kube_api_burst: i32,
    /// Accepted for command-line compatibility (`application/vnd.kubernetes.protobuf` or
    /// `application/json`); svcplane always sends and asks for JSON.
    #[arg(long, default_value = KUBE_API_CONTENT_TYPE_PROTOBUF)]
    pub kube_api_content_type: String,
    /// Elect a leader on a Lease before running controllers (`--leader-elect=false` runs
    /// without).
    #[arg(
        long,
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub leader_elect: bool,
    /// Kind of lock object; only `leases` (upstream's default and, since v1.29, its only
    /// choice).
    #[arg(long, default_value = "leases")]
    pub leader_elect_resource_lock: String,
    /// Lease namespace.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// Lease name. Not upstream's default (`kube-controller-manager`): svcplane holds its
    /// own Lease so that it can run next to a kube-controller-manager that runs the other
    /// controllers.
    #[arg(long, default_value = "svcplane-controller-manager")]
    pub leader_elect_resource_name: String,
    /// How long a leader's Lease is valid without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before it gives up leading.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates retry acquiring or renewing the Lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// `endpointslice.kubernetes.io/managed-by` value written on slices (svcplane's flag).
    #[arg(long, default_value = MANAGED_BY_ENDPOINTSLICE_CONTROLLER)]
    pub managed_by: String,
    /// The `spec.loadBalancerClass` the LoadBalancer IPAM controller (lb-ipam-controller)
    /// serves (svcplane's flag).
    #[arg(long, default_value = svcplane_api::DEFAULT_LOAD_BALANCER_CLASS)]
    pub load_balancer_class: String,
    /// The LoadBalancer IPAM controller also serves `type: LoadBalancer` Services without a
    /// `loadBalancerClass`, as the cluster's default implementation (svcplane's flag; only one
    /// implementation in a cluster should).
    #[arg(
        long,
        default_value_t = false,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub lb_ipam_default_class: bool,
    /// Lease name of the LoadBalancer IPAM controller, which elects its leader apart from the
    /// endpoint controllers (same namespace and timings).
    #[arg(long, default_value = LB_IPAM_LEASE_NAME)]
    pub lb_ipam_leader_elect_resource_name: String,
    /// Plain-HTTP address of `/healthz`, `/readyz` and `/metrics` (svcplane's flag;
    /// kube-controller-manager serves them over HTTPS on `--secure-port`).
    #[arg(long, default_value = "127.0.0.1:10257")]
    pub metrics_addr: SocketAddr,
    /// Also serve the HTML status page at `/status` on `--metrics-addr` (svcplane's flag).
    #[arg(long)]
    pub status_page: bool,
    /// The Service ClusterIP range(s) whose band usage the status page shows, as
    /// kube-apiserver's flag (its default too); used only by the status page.
    #[arg(long, default_value = svcplane_allocators::FALLBACK_SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: String,
    /// The NodePort range whose band usage the status page shows, as kube-apiserver's flag
    /// (its default too); used only by the status page.
    #[arg(long, default_value = svcplane_allocators::DEFAULT_SERVICE_NODE_PORT_RANGE)]
    pub service_node_port_range: String,
}

impl ControllerManagerArgs {
    /// The controller configuration these flags describe.
    pub fn controller_config(&self) -> Result<ControllerConfig> {
        let content_type = self.kube_api_content_type.as_str();
        if content_type != KUBE_API_CONTENT_TYPE_PROTOBUF
            && content_type != KUBE_API_CONTENT_TYPE_JSON
        {
            return Err(Error::InvalidConfig {
                flag: "--kube-api-content-type",
                message: format!(
                    "{content_type:?} is neither {KUBE_API_CONTENT_TYPE_PROTOBUF} nor \
                     {KUBE_API_CONTENT_TYPE_JSON}"
                ),
            });
        }
        let config = ControllerConfig {
            controllers: parse_controllers(&self.controllers.join(","))?,
            concurrent_endpoint_syncs: self.concurrent_endpoint_syncs,
            concurrent_service_endpoint_syncs: self.concurrent_service_endpoint_syncs,
            mirroring_concurrent_service_endpoint_syncs: self
                .mirroring_concurrent_service_endpoint_syncs,
            max_endpoints_per_slice: self.max_endpoints_per_slice,
            mirroring_max_endpoints_per_subset: self.mirroring_max_endpoints_per_subset,
            endpoint_updates_batch_period: self.endpoint_updates_batch_period,
            endpointslice_updates_batch_period: self.endpointslice_updates_batch_period,
            mirroring_endpointslice_updates_batch_period: self
                .mirroring_endpointslice_updates_batch_period,
            managed_by: self.managed_by.clone(),
            load_balancer_class: self.load_balancer_class.clone(),
            lb_ipam_default_class: self.lb_ipam_default_class,
            client_rate_limit: ClientRateLimit::from_flags(self.kube_api_qps, self.kube_api_burst)?,
            ..ControllerConfig::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// The leader election configuration these flags describe.
    pub fn leader_election_config(&self) -> Result<LeaderElectionConfig> {
        if self.leader_elect_resource_lock != "leases" {
            return Err(Error::InvalidConfig {
                flag: "--leader-elect-resource-lock",
                message: format!(
                    "{:?} is not supported; only \"leases\"",
                    self.leader_elect_resource_lock
                ),
            });
        }
        Ok(LeaderElectionConfig {
            namespace: self.leader_elect_resource_namespace.clone(),
            name: self.leader_elect_resource_name.clone(),
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
            ..LeaderElectionConfig::default()
        })
    }

    /// The status page's routes with `--status-page` (none without): the controller manager
    /// runs no node agent, so the page says the tables are not available here.
    fn status_page_routes(&self, client: &Client) -> Result<Router> {
        if !self.status_page {
            return Ok(Router::new());
        }
        let page = crate::status_page::Page::new(
            client.clone(),
            "svcplane controller-manager",
            &self.service_cluster_ip_range,
            &self.service_node_port_range,
            crate::status_page::AgentTables::NotAvailable(
                "not available in the controller manager: no node agent runs here (see each \
                 node agent's /debug/table, or the status page of svcplane dev)"
                    .into(),
            ),
        )
        .map_err(|e| Error::InvalidConfig {
            flag: "--service-cluster-ip-range/--service-node-port-range",
            message: e.to_string(),
        })?;
        Ok(crate::status_page::router(page))
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
/// or on standby with leader election, i.e. started), `/metrics`, and `extra` (the status
/// page with `--status-page`).
pub async fn serve_health(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    extra: Router,
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
        .with_state(HealthState { metrics, ready })
        .merge(extra);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Entry point of `svcplane controller-manager`: runs until Ctrl-C / SIGTERM.
pub async fn run(args: ControllerManagerArgs) -> Result<()> {
    let config = args.controller_config()?;
    let election = args.leader_election_config()?;
    let client = client_for(args.kubeconfig.as_ref()).await?;
    let metrics = Arc::new(Metrics::new()?);
    let ready = Arc::new(AtomicBool::new(false));
    let status_page = args.status_page_routes(&client)?;
    let health = tokio::spawn(serve_health(
        args.metrics_addr,
        metrics.clone(),
        ready.clone(),
        status_page,
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
        let elections = elections(config, election, &args.lb_ipam_leader_elect_resource_name);
        run_elections(client, elections, metrics, shutdown).await
    } else {
        ControllerManager::new(client, config, metrics)?
            .run(shutdown)
            .await
    };
    health.abort();
    result
}

/// The leader elections to run: the endpoint controllers on `--leader-elect-resource-name`,
/// the LoadBalancer IPAM controller on its own Lease (`lb_lease`), so that the two can move
/// between instances independently; an election with no controller is left out.
pub fn elections(
    config: ControllerConfig,
    election: LeaderElectionConfig,
    lb_lease: &str,
) -> Vec<(ControllerConfig, LeaderElectionConfig)> {
    let mut out = Vec::new();
    let mut endpoint = config.clone();
    endpoint.controllers.remove(&ControllerKind::LbIpam);
    if !endpoint.controllers.is_empty() {
        out.push((endpoint, election.clone()));
    }
    if config.enabled(ControllerKind::LbIpam) {
        let lb = ControllerConfig {
            controllers: [ControllerKind::LbIpam].into(),
            ..config
        };
        let lease = LeaderElectionConfig {
            name: lb_lease.to_string(),
            ..election
        };
        out.push((lb, lease));
    }
    out
}

/// Runs each election until `shutdown`; the first lost election ends them all with its error
/// (the process exits, as upstream's does on a lost lease).
async fn run_elections(
    client: Client,
    elections: Vec<(ControllerConfig, LeaderElectionConfig)>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut running = tokio::task::JoinSet::new();
    for (config, election) in elections {
        let mut stop = stop_rx.clone();
        running.spawn(run_with_leader_election(
            client.clone(),
            config,
            election,
            metrics.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
    }
    tokio::pin!(shutdown);
    let mut result = Ok(());
    loop {
        tokio::select! {
            _ = &mut shutdown, if !*stop_tx.borrow() => {
                let _ = stop_tx.send(true);
            }
            joined = running.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(err))) => {
                    let _ = stop_tx.send(true);
                    if result.is_ok() {
                        result = Err(err);
                    }
                }
                Some(Err(join)) => tracing::error!(error = %join, "leader election task failed"),
            }
        }
    }
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

    fn parse(args: &[&str]) -> ControllerManagerArgs {
        let mut argv = vec!["svcplane-controller-manager"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("flags accepted").args
    }

    /// Without flags: kube-controller-manager's defaults (`--controllers=*`, 5 workers per
    /// controller, batch periods 0, 100 endpoints per slice, 1000 per mirrored subset,
    /// 20 QPS / burst 30 per client, leader election on with 15 s / 10 s / 2 s).
    #[test]
    fn defaults_are_kube_controller_manager_defaults() {
        let args = parse(&[]);
        let c = args.controller_config().unwrap();
        assert_eq!(c.controllers, ControllerKind::ALL.into());
        assert_eq!(c.load_balancer_class, "svcplane.io/lb");
        assert!(!c.lb_ipam_default_class);
        for kind in ControllerKind::ENDPOINT_CONTROLLERS {
            assert_eq!(c.concurrent_syncs(kind), 5, "{kind:?}");
            assert_eq!(c.updates_batch_period(kind), Duration::ZERO, "{kind:?}");
        }
        assert_eq!(c.max_endpoints_per_slice, 100);
        assert_eq!(c.mirroring_max_endpoints_per_subset, 1000);
        assert_eq!(
            c.client_rate_limit,
            Some(ClientRateLimit {
                qps: 20.0,
                burst: 30
            })
        );
        assert!(args.leader_elect);
        let le = args.leader_election_config().unwrap();
        assert_eq!(
            (le.lease_duration, le.renew_deadline, le.retry_period),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
        assert_eq!(le.namespace, "kube-system");
    }

    /// A kube-controller-manager command line for these three controllers, in upstream's
    /// syntax, with every flag that applies to them: the run recorded in
    /// `shared/FACTS.md` (only the three endpoint controllers, QPS 1000 / burst 2000, all
    /// three batch periods at 1 s) plus the other flags of `kube-controller-manager --help`
    /// for them, some in `--flag value` form.
    #[test]
    fn accepts_a_kube_controller_manager_command_line_for_these_controllers() {
        let args = parse(&[
            "--kubeconfig=/etc/kubernetes/controller-manager.conf",
            "--controllers=endpoint,endpointslice,endpointslicemirroring",
            "--concurrent-endpoint-syncs=10",
            "--concurrent-service-endpoint-syncs",
            "8",
            "--mirroring-concurrent-service-endpoint-syncs=3",
            "--endpoint-updates-batch-period=1s",
            "--endpointslice-updates-batch-period=1s",
            "--mirroring-endpointslice-updates-batch-period=1s",
            "--max-endpoints-per-slice=200",
            "--mirroring-max-endpoints-per-subset=500",
            "--kube-api-qps=1000",
            "--kube-api-burst=2000",
            "--kube-api-content-type=application/vnd.kubernetes.protobuf",
            "--leader-elect=true",
            "--leader-elect-lease-duration=15s",
            "--leader-elect-renew-deadline=10s",
            "--leader-elect-retry-period=2s",
            "--leader-elect-resource-lock=leases",
            "--leader-elect-resource-namespace=kube-system",
            "--leader-elect-resource-name",
            "kube-controller-manager",
        ]);
        let c = args.controller_config().unwrap();
        assert_eq!(c.controllers, ControllerKind::ENDPOINT_CONTROLLERS.into());
        assert_eq!(c.concurrent_syncs(ControllerKind::Endpoints), 10);
        assert_eq!(c.concurrent_syncs(ControllerKind::EndpointSlice), 8);
        assert_eq!(
            c.concurrent_syncs(ControllerKind::EndpointSliceMirroring),
            3
        );
        for kind in ControllerKind::ENDPOINT_CONTROLLERS {
            assert_eq!(c.updates_batch_period(kind), Duration::from_secs(1));
        }
        assert_eq!(c.max_endpoints_per_slice, 200);
        assert_eq!(c.mirroring_max_endpoints_per_subset, 500);
        assert_eq!(
            c.client_rate_limit,
            Some(ClientRateLimit {
                qps: 1000.0,
                burst: 2000
            })
        );
        let le = args.leader_election_config().unwrap();
        assert_eq!(le.name, "kube-controller-manager");
        assert_eq!(
            args.kubeconfig.as_deref(),
            Some(std::path::Path::new(
                "/etc/kubernetes/controller-manager.conf"
            ))
        );
    }

    /// Each controller has its own batch period and worker count (one flag no longer
    /// drives all three).
    #[test]
    fn per_controller_flags_reach_only_their_controller() {
        let c = parse(&[
            "--endpointslice-updates-batch-period=250ms",
            "--mirroring-concurrent-service-endpoint-syncs=1",
        ])
        .controller_config()
        .unwrap();
        assert_eq!(
            c.updates_batch_period(ControllerKind::EndpointSlice),
            Duration::from_millis(250)
        );
        assert_eq!(
            c.updates_batch_period(ControllerKind::Endpoints),
            Duration::ZERO
        );
        assert_eq!(
            c.updates_batch_period(ControllerKind::EndpointSliceMirroring),
            Duration::ZERO
        );
        assert_eq!(
            c.concurrent_syncs(ControllerKind::EndpointSliceMirroring),
            1
        );
        assert_eq!(c.concurrent_syncs(ControllerKind::EndpointSlice), 5);
        let c = parse(&["--controllers", "*", "--controllers", "-endpoint"])
            .controller_config()
            .unwrap();
        assert_eq!(
            c.controllers,
            [
                ControllerKind::EndpointSlice,
                ControllerKind::EndpointSliceMirroring,
                ControllerKind::LbIpam,
            ]
            .into()
        );
    }

    /// The LoadBalancer IPAM controller: its flags, and its own Lease next to the endpoint
    /// controllers' one.
    #[test]
    fn lb_ipam_flags_and_its_own_lease() {
        let args = parse(&[
            "--load-balancer-class",
            "example.com/lb",
            "--lb-ipam-default-class",
        ]);
        let c = args.controller_config().unwrap();
        assert_eq!(c.load_balancer_class, "example.com/lb");
        assert!(c.lb_ipam_default_class);
        let le = args.leader_election_config().unwrap();
        let split = elections(c.clone(), le.clone(), LB_IPAM_LEASE_NAME);
        let leases: Vec<(&str, usize)> = split
            .iter()
            .map(|(c, le)| (le.name.as_str(), c.controllers.len()))
            .collect();
        assert_eq!(
            leases,
            [("svcplane-controller-manager", 3), ("svcplane-lb-ipam", 1)]
        );
        let only_lb = ControllerConfig {
            controllers: [ControllerKind::LbIpam].into(),
            ..c
        };
        assert_eq!(elections(only_lb, le, LB_IPAM_LEASE_NAME).len(), 1);
        let err = parse(&["--load-balancer-class", "lb"])
            .controller_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--load-balancer-class"), "{err}");
    }

    /// client-go's reading of QPS: 0 is its default 5 (burst 0 → 10), negative disables.
    #[test]
    fn kube_api_qps_is_read_as_client_go_reads_it() {
        let limit = |args: &[&str]| parse(args).controller_config().unwrap().client_rate_limit;
        assert_eq!(
            limit(&["--kube-api-qps", "0", "--kube-api-burst", "0"]),
            Some(ClientRateLimit {
                qps: 5.0,
                burst: 10
            })
        );
        assert_eq!(limit(&["--kube-api-qps", "-1"]), None);
        assert_eq!(limit(&["--kube-api-qps=-1"]), None);
        assert_eq!(
            limit(&["--kube-api-qps=0.5", "--kube-api-burst=1"]),
            Some(ClientRateLimit { qps: 0.5, burst: 1 })
        );
    }

    /// `--concurrent-service-syncs` was ours (one worker count for all three controllers)
    /// and appeared in no release-facing document; upstream's flag of that name belongs to
    /// the service (load balancer) controller, so it is not kept.
    #[test]
    fn flags_that_are_not_kube_controller_manager_s_are_gone() {
        let err = Cli::try_parse_from(["x", "--concurrent-service-syncs", "5"])
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("--concurrent-service-syncs"), "{err}");
    }

    #[test]
    fn duration_flags_take_kube_controller_manager_syntax() {
        let args = parse(&[
            "--endpoint-updates-batch-period",
            "500ms",
            "--mirroring-endpointslice-updates-batch-period",
            "0.25",
            "--leader-elect-lease-duration",
            "1m",
            "--leader-elect-renew-deadline",
            "45s",
            "--leader-elect-retry-period",
            "1.5s",
        ]);
        let c = args.controller_config().unwrap();
        assert_eq!(c.endpoint_updates_batch_period, Duration::from_millis(500));
        assert_eq!(
            c.mirroring_endpointslice_updates_batch_period,
            Duration::from_millis(250)
        );
        let le = args.leader_election_config().unwrap();
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

    /// `--status-page` is off by default; its ranges default to kube-apiserver's.
    #[test]
    fn status_page_is_off_by_default_with_kube_apiserver_ranges() {
        let args = parse(&[]);
        assert!(!args.status_page);
        assert_eq!(args.service_cluster_ip_range, "10.0.0.0/24");
        assert_eq!(args.service_node_port_range, "30000-32767");
        let args = parse(&[
            "--status-page",
            "--service-cluster-ip-range=10.96.0.0/12,fd00::/108",
            "--service-node-port-range=30000-30100",
        ]);
        assert!(args.status_page);
        assert_eq!(args.service_node_port_range, "30000-30100");
    }

    #[test]
    fn leader_election_is_on_by_default_and_can_be_turned_off() {
        assert!(parse(&[]).leader_elect);
        assert!(parse(&["--leader-elect"]).leader_elect);
        assert!(!parse(&["--leader-elect=false"]).leader_elect);
    }

    #[test]
    fn bad_flags_are_rejected_with_their_name() {
        let cases: [(&[&str], &str); 7] = [
            (
                &["--max-endpoints-per-slice", "5000"],
                "--max-endpoints-per-slice",
            ),
            (
                &["--mirroring-max-endpoints-per-subset", "0"],
                "--mirroring-max-endpoints-per-subset",
            ),
            (
                &["--concurrent-service-endpoint-syncs", "51"],
                "--concurrent-service-endpoint-syncs",
            ),
            (&["--managed-by", "controller"], "--managed-by"),
            (&["--controllers", "endpoint,tokencleaner"], "--controllers"),
            (
                &["--kube-api-content-type", "application/yaml"],
                "--kube-api-content-type",
            ),
            (&["--kube-api-qps", "NaN"], "--kube-api-qps"),
        ];
        for (args, flag) in cases {
            let err = parse(args).controller_config().unwrap_err().to_string();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
        let err = parse(&["--leader-elect-resource-lock", "endpointsleases"])
            .leader_election_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--leader-elect-resource-lock"), "{err}");
        // Upstream `ValidateClientConnectionConfiguration`: burst must be non-negative.
        let err = parse(&["--kube-api-burst", "-1"])
            .controller_config()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--kube-api-burst"), "{err}");
    }
}
