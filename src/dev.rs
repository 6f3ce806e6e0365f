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
    #[arg(long, default_value = svcplane_rules::DEFAULT_SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: String,
    /// Directory for generated files (webhook certificates).
    #[arg(long, default_value = ".svcplane-dev")]
    pub work_dir: PathBuf,
    /// Do not run the simulated cluster (node IPAM, a scheduler binding Pods to Nodes, and a
    /// kubelet stand-in that gives bound Pods an IP from their Node's podCIDR and makes them
    /// Running and Ready).
    #[arg(long)]
    pub no_simulation: bool,
    /// How long a Pod started by the simulated kubelet stays not-ready before it turns Ready.
    #[arg(long, default_value = "2s", value_parser = svcplane_controllers::parse_duration)]
    pub sim_ready_delay: std::time::Duration,
    /// Cluster CIDR(s) the simulated node IPAM carves /24 (IPv4) and /64 (IPv6) pod CIDRs from
    /// for Nodes without `spec.podCIDR`, as kube-controller-manager's `--cluster-cidr`: one
    /// CIDR, or two comma-separated (one per family).
    #[arg(long, default_value = "10.244.0.0/16", value_parser = parse_cluster_cidrs)]
    pub cluster_cidr: ClusterCidrs,
    /// Do not run the dry-run node agents (one per Node, tables served on
    /// --node-agents-listen).
    #[arg(long)]
    pub no_node_agents: bool,
    /// Backend of the node agent for `--node-agent-node`: `dry-run` (default: nothing is
    /// programmed), or `nftables`, `ipvs`, `auto` to program THIS machine's kernel for real
    /// (needs root; undo with `svcplane node-agent --backend BACKEND --cleanup`).
    #[arg(long, default_value = "dry-run", value_parser = clap::builder::ValueParser::new(parse_backend))]
    pub node_agent_backend: svcplane_dataplane::backends::BackendKind,
    /// The Node whose table `--node-agent-backend` programs on this machine (default: the
    /// first Node); every other Node's agent stays a dry run.
    #[arg(long)]
    pub node_agent_node: Option<String>,
    /// Address of the node agents' debug server (`/nodes/NAME/table`).
    #[arg(long, default_value = "127.0.0.1:6480")]
    pub node_agents_listen: SocketAddr,
    /// NodePort range, as kube-apiserver's flag.
    #[arg(long, default_value = svcplane_rules::DEFAULT_SERVICE_NODE_PORT_RANGE)]
    pub service_node_port_range: String,
    /// Watches one client (source address) may hold open at once; more get 429.
    #[arg(long, default_value_t = svcplane_apiserver::WatchLimits::default().max_per_client)]
    pub max_watches_per_client: usize,
    /// Authorization of the embedded API server, as kube-apiserver's flag: `AlwaysAllow`
    /// (every request allowed) or `RBAC` (Roles, ClusterRoles and their bindings decide;
    /// `system:masters`, the generated kubeconfig's group, may do everything).
    #[arg(long, default_value = "AlwaysAllow", value_parser = parse_authorization_mode)]
    pub authorization_mode: svcplane_apiserver::AuthorizationMode,
    /// Admission plugins to enable beyond the built-in ones, as kube-apiserver's flag
    /// (comma-separated): only `OwnerReferencesPermissionEnforcement` (opt-in upstream too;
    /// checked in RBAC mode), which makes setting `blockOwnerDeletion` need `update` on the
    /// owner's `finalizers`.
    #[arg(long, value_delimiter = ',', value_parser = parse_admission_plugin)]
    pub enable_admission_plugins: Vec<String>,
    /// Static bearer tokens, as kube-apiserver's flag: CSV lines `token,user,uid,"group1,group2"`.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Connections one client (source address) may hold open at once; more are closed.
    #[arg(long, default_value_t = svcplane_webhook::connections::DEFAULT_MAX_CONNECTIONS_PER_CLIENT)]
    pub max_connections_per_client: usize,
}

/// The value of `--cluster-cidr`.
#[derive(Debug, Clone)]
pub struct ClusterCidrs(pub Vec<ipnet::IpNet>);

fn parse_cluster_cidrs(s: &str) -> Result<ClusterCidrs, String> {
    let cidrs = s
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<ipnet::IpNet>()
                .map_err(|e| format!("{part:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let v4 = cidrs
        .iter()
        .filter(|c| matches!(c, ipnet::IpNet::V4(_)))
        .count();
    if cidrs.len() > 2 || v4 > 1 || cidrs.len() - v4 > 1 {
        return Err("at most one CIDR per IP family".into());
    }
    Ok(ClusterCidrs(cidrs))
}

fn parse_authorization_mode(s: &str) -> Result<svcplane_apiserver::AuthorizationMode, String> {
    s.parse()
}

fn parse_admission_plugin(s: &str) -> Result<String, String> {
    match s {
        OWNER_REFERENCES_PERMISSION_ENFORCEMENT => Ok(s.to_string()),
        other => Err(format!(
            "--enable-admission-plugins: unsupported plugin {other:?}: the embedded API server \
             can enable only {OWNER_REFERENCES_PERMISSION_ENFORCEMENT:?}"
        )),
    }
}

/// Upstream's admission plugin name (`plugin/pkg/admission/gc`).
const OWNER_REFERENCES_PERMISSION_ENFORCEMENT: &str = "OwnerReferencesPermissionEnforcement";

fn parse_backend(s: &str) -> Result<svcplane_dataplane::backends::BackendKind, String> {
    s.parse()
}

/// The bundled examples, created unless `--no-examples`.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "examples/nodes.yaml",
        include_str!("../examples/nodes.yaml"),
    ),
    ("examples/pods.yaml", include_str!("../examples/pods.yaml")),
    (
        "examples/pools.yaml",
        include_str!("../examples/pools.yaml"),
    ),
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

/// Runs until SIGTERM or SIGINT, then stops in order: the controllers and node agents (no new
/// requests from them), the API server (stops accepting, finishes in-flight requests, writes
/// the final snapshot), and last the webhook (in-flight writes still call it).
pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let shutdown = crate::shutdown::Shutdown::install().context("installing signal handlers")?;
    let mut config = svcplane_apiserver::Config {
        listen: args.listen,
        tls: !args.insecure_http,
        faults_endpoint: args.faults,
        state_file: args.state_file.clone(),
        service_cluster_ip_range: args.service_cluster_ip_range.clone(),
        service_node_port_range: args.service_node_port_range.clone(),
        authorization_mode: args.authorization_mode,
        token_auth_file: args.token_auth_file.clone(),
        owner_references_permission_enforcement: args
            .enable_admission_plugins
            .iter()
            .any(|p| p == OWNER_REFERENCES_PERMISSION_ENFORCEMENT),
        ..Default::default()
    };
    config.watch_limits.max_per_client = args.max_watches_per_client;
    config.connections.max_connections_per_client = args.max_connections_per_client;
    let server = svcplane_apiserver::start(config)
        .await
        .context("starting the embedded API server")?;
    // The webhook first: a state file may hold a configuration from an earlier run that points
    // at that run's port, and every write below would fail against it.
    let (stop_webhook, webhook_stop_rx) = tokio::sync::watch::channel(false);
    // The in-process API clients (controllers, node agents) stop first, the webhook last.
    let (stop_clients, clients_stop_rx) = tokio::sync::watch::channel(false);
    // svcplane's own kinds before the webhook (which watches pools) and any manifest, which
    // may hold objects of them.
    crate::dev_components::install_crds(&server)
        .await
        .context("installing svcplane's CustomResourceDefinitions")?;
    let webhook = if args.no_webhook {
        None
    } else {
        let webhook =
            crate::dev_components::start_webhook(&server, &args.work_dir, webhook_stop_rx)
                .await
                .context("starting the validating admission webhook")?;
        Some(webhook)
    };
    if !args.no_examples {
        for (name, text) in EXAMPLES {
            let created = server
                .apply_manifests(text)
                .await
                .with_context(|| format!("creating {name}"))?;
            tracing::info!(manifest = name, objects = created.len(), "examples created");
        }
    }
    for path in &args.manifests {
        for file in manifest_files(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("--manifests {}: cannot read", file.display()))?;
            let created = server
                .apply_manifests(&text)
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
        let handle = crate::dev_components::start_controllers(&server, clients_stop_rx.clone())
            .await
            .context("starting the controllers")?;
        Some(handle)
    };
    let simulator = if args.no_simulation {
        None
    } else {
        let config = svcplane_simulator::SimConfig {
            ready_delay: args.sim_ready_delay,
            cluster_cidrs: args.cluster_cidr.0.clone(),
            ..Default::default()
        };
        let handle =
            crate::dev_components::start_simulator(&server, config, clients_stop_rx.clone())
                .await
                .context("starting the simulated cluster")?;
        Some(handle)
    };
    // --- status page (src/status_page) ---
    let status_page = crate::status_page::Page::new(
        crate::dev_components::client_of(&server)
            .await
            .context("a client for the status page")?,
        "svcplane dev",
        &args.service_cluster_ip_range,
        &args.service_node_port_range,
        crate::status_page::AgentTables::NotAvailable(
            "no node agents run here (svcplane dev --no-node-agents)".into(),
        ),
    )
    .context("the status page's ranges")?;
    let mut status_page_url = None;
    if args.no_node_agents {
        // Alone on the node agents' address, which is free then.
        let listener = tokio::net::TcpListener::bind(args.node_agents_listen)
            .await
            .with_context(|| format!("--node-agents-listen {}", args.node_agents_listen))?;
        status_page_url = Some(format!(
            "http://{}{}",
            listener.local_addr()?,
            crate::status_page::PATH
        ));
        let stop = clients_stop_rx.clone();
        tokio::spawn(crate::status_page::serve_alone(
            listener,
            status_page.clone(),
            stop,
        ));
    }
    // --- end status page ---
    let node_agents = if args.no_node_agents {
        None
    } else {
        let real = crate::dev_components::RealAgent {
            backend: args.node_agent_backend,
            node: args.node_agent_node.clone(),
        };
        let agents = crate::dev_components::start_node_agents(
            &server,
            args.node_agents_listen,
            &real,
            Some(status_page),
            clients_stop_rx.clone(),
        )
        .await
        .context("starting the node agents")?;
        Some(agents)
    };
    println!("svcplane dev: API server listening on {}", server.url);
    if let Some(warning) = server.exposure_warning() {
        println!("  WARNING: {warning}");
    }
    println!(
        "  kubectl --kubeconfig {} get nodes,pods,services,endpointslices",
        args.kubeconfig_out.display()
    );
    if let Some(webhook) = &webhook {
        println!("  admission webhook: {}", webhook.url);
    }
    if controllers.is_some() {
        println!(
            "  controllers: endpointslice, endpointslicemirroring, endpoints, lb-ipam (serves \
             LoadBalancer Services of class {} and those without a class)",
            svcplane_api::DEFAULT_LOAD_BALANCER_CLASS
        );
    }
    if simulator.is_some() {
        println!(
            "  simulated cluster: Pods are scheduled, get IPs from their Node's podCIDR and turn \
             Ready after {:?} (hold one not-ready: kubectl annotate pod NAME {}=true)",
            args.sim_ready_delay,
            svcplane_simulator::HOLD_NOT_READY_ANNOTATION
        );
    }
    if let Some(agents) = &node_agents {
        println!(
            "  node agents (dry run): {} node(s); tables at {}/nodes",
            agents.nodes.len(),
            agents.url
        );
        for node in &agents.nodes {
            println!("    {node}: {}/nodes/{node}/table", agents.url);
        }
        if let Some((node, backend)) = &agents.programs_this_machine {
            println!(
                "  WARNING: the agent for {node} programs THIS machine's kernel with the {backend} \
                 backend (Service VIPs, NodePorts and rules of its table); undo with \
                 `svcplane node-agent --backend {backend} --cleanup`"
            );
        }
    }
    if let Some(agents) = &node_agents {
        status_page_url = Some(format!("{}{}", agents.url, crate::status_page::PATH));
    }
    if let Some(url) = &status_page_url {
        println!("  status page: {url}");
    }
    println!("Press Ctrl-C to stop.");
    let signal = shutdown.requested().await;
    println!("svcplane dev: {signal} received, shutting down");
    let _ = stop_clients.send(true);
    if let Some(handle) = controllers {
        stop_within("controllers", handle).await;
    }
    if let Some(handle) = simulator {
        stop_within("simulated cluster", handle).await;
    }
    server.shutdown().await;
    let _ = stop_webhook.send(true);
    if let Some(webhook) = webhook {
        stop_within("webhook", webhook.task).await;
    }
    println!("svcplane dev: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Waits for a stopping component, for at most the API server's own grace period.
async fn stop_within(what: &str, task: tokio::task::JoinHandle<()>) {
    let grace = svcplane_apiserver::SHUTDOWN_GRACE;
    if tokio::time::timeout(grace, task).await.is_err() {
        tracing::warn!(
            component = what,
            "did not stop within {grace:?}; leaving it"
        );
    }
}
