//! `svcplane dev`: the embedded API server plus every in-process component, with examples.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Arguments of `svcplane dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Address the embedded API server listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Where to write the kubeconfig for kubectl.
    #[arg(long, default_value = "svcplane-dev.kubeconfig")]
    pub kubeconfig_out: PathBuf,
    /// Extra manifests (files or directories of .yaml/.yml/.json) to create at start.
    #[arg(long)]
    pub manifests: Vec<PathBuf>,
    /// Do not create the bundled example Nodes, Pods and Services.
    #[arg(long)]
    pub no_examples: bool,
    /// Persist objects to this file and load them at start.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    pub insecure_http: bool,
    /// Do not run the controllers in-process (API server and webhook only).
    #[arg(long)]
    pub no_controllers: bool,
    /// Do not run and register the admission webhook in-process.
    #[arg(long)]
    pub no_webhook: bool,
    /// Enable fault injection over `POST /debug/faults`.
    #[arg(long)]
    pub faults: bool,
    /// Service ClusterIP range(s), as kube-apiserver's flag: one CIDR, or two comma-separated.
    #[arg(long, default_value = svcplane_apiserver::state::DEFAULT_SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: String,
    /// Directory for generated files (webhook certificates).
    #[arg(long, default_value = ".svcplane-dev")]
    pub work_dir: PathBuf,
    /// NodePort range, as kube-apiserver's flag.
    #[arg(long, default_value = svcplane_apiserver::state::DEFAULT_SERVICE_NODE_PORT_RANGE)]
    pub service_node_port_range: String,
    /// Watches one client (source address) may hold open at once; more get 429.
    #[arg(long, default_value_t = svcplane_apiserver::state::WatchLimits::default().max_per_client)]
    pub max_watches_per_client: usize,
    /// Connections one client (source address) may hold open at once; more are closed.
    #[arg(long, default_value_t = svcplane_webhook::connections::DEFAULT_MAX_CONNECTIONS_PER_CLIENT)]
    pub max_connections_per_client: usize,
}

/// The bundled examples, created unless `--no-examples`.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "examples/nodes.yaml",
        include_str!("../examples/nodes.yaml"),
    ),
    ("examples/pods.yaml", include_str!("../examples/pods.yaml")),
    (
        "examples/services.yaml",
        include_str!("../examples/services.yaml"),
    ),
];

fn manifest_files(path: &PathBuf) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("--manifests {}: cannot read directory", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            })
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(vec![path.clone()])
    }
}

/// Runs until Ctrl-C.
pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let mut config = svcplane_apiserver::Config {
        listen: args.listen,
        tls: !args.insecure_http,
        faults_endpoint: args.faults,
        state_file: args.state_file.clone(),
        service_cluster_ip_range: args.service_cluster_ip_range.clone(),
        service_node_port_range: args.service_node_port_range.clone(),
        ..Default::default()
    };
    config.watch_limits.max_per_client = args.max_watches_per_client;
    config.connections.max_connections_per_client = args.max_connections_per_client;
    let server = svcplane_apiserver::start(config)
        .await
        .context("starting the embedded API server")?;
    let state = server.state().clone();
    // The webhook first: a state file may hold a configuration from an earlier run that points
    // at that run's port, and every write below would fail against it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let webhook_url = if args.no_webhook {
        None
    } else {
        let url = crate::dev_components::start_webhook(&state, &args.work_dir, stop_rx.clone())
            .await
            .context("starting the validating admission webhook")?;
        Some(url)
    };
    if !args.no_examples {
        for (name, text) in EXAMPLES {
            let created = svcplane_apiserver::bootstrap::apply_manifests(&state, text)
                .await
                .with_context(|| format!("creating {name}"))?;
            tracing::info!(manifest = name, objects = created.len(), "examples created");
        }
    }
    for path in &args.manifests {
        for file in manifest_files(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("--manifests {}: cannot read", file.display()))?;
            let created = svcplane_apiserver::bootstrap::apply_manifests(&state, &text)
                .await
                .with_context(|| format!("--manifests {}", file.display()))?;
            tracing::info!(manifest = %file.display(), objects = created.len(), "manifest created");
        }
    }
    std::fs::write(&args.kubeconfig_out, server.kubeconfig()).with_context(|| {
        format!(
            "--kubeconfig-out {}: cannot write",
            args.kubeconfig_out.display()
        )
    })?;
    let controllers = if args.no_controllers {
        None
    } else {
        let handle = crate::dev_components::start_controllers(&server, stop_rx.clone())
            .await
            .context("starting the controllers")?;
        Some(handle)
    };
    println!("svcplane dev: API server listening on {}", server.url);
    println!(
        "  kubectl --kubeconfig {} get nodes,pods,services,endpointslices",
        args.kubeconfig_out.display()
    );
    if let Some(url) = &webhook_url {
        println!("  admission webhook: {url}");
    }
    if controllers.is_some() {
        println!("  controllers: endpointslice, endpointslicemirroring, endpoints");
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("svcplane dev: shutting down");
    let _ = stop_tx.send(true);
    if let Some(handle) = controllers {
        let _ = handle.await;
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
