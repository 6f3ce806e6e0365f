//! `svcplane node-agent`: programs this node's Service forwarding from Services and
//! EndpointSlices, from an API server (watch) or from manifest files (`--manifests`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use ipnet::IpNet;
use svcplane_dataplane::agent::{Agent, SourceEvent, SyncTiming};
use svcplane_dataplane::backends::{build_backend, BackendKind, BackendOptions};
use svcplane_dataplane::ipvs_backend::IpvsOptions;
use svcplane_dataplane::metrics::AgentMetrics;
use svcplane_dataplane::model::{
    render_json, render_text, NodePortAddresses, ProxyConfig, Scheduler,
};

/// Output format of the dry-run table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    /// One line per virtual address and port.
    Text,
    /// The same rows as JSON.
    Json,
}

/// Arguments of `svcplane node-agent`.
#[derive(Debug, clap::Args)]
pub struct NodeAgentArgs {
    /// Kubeconfig of the API server to watch (in-cluster configuration, or $KUBECONFIG,
    /// when unset).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name: endpoints with this `nodeName` are local, and this Node's addresses
    /// carry NodePorts. Defaults to $NODE_NAME, then the hostname.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Forwarding backend: auto (IPVS when the kernel has it, else nftables), ipvs, nftables,
    /// or dry-run (programs nothing, prints the table).
    #[arg(long, default_value = "auto", value_parser = clap::builder::ValueParser::new(parse_backend))]
    pub backend: BackendKind,
    /// Read Services, EndpointSlices and Nodes from this file or directory instead of an API
    /// server. With --once the agent programs them and exits; without, it keeps running on them
    /// (periodic resyncs, health-check node ports) and reads them again on SIGHUP.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Program the table once and exit (0 on success).
    #[arg(long)]
    pub once: bool,
    /// Remove everything the backend created (interfaces, virtual servers, tables) and exit.
    #[arg(long)]
    pub cleanup: bool,
    /// Output of the dry-run table.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = TableFormat::Text)]
    pub output: TableFormat,
    /// IPVS scheduler: rr, wrr, lc, wlc, sh, dh, mh, sed or nq.
    #[arg(long, default_value = "rr", value_parser = clap::builder::ValueParser::new(parse_scheduler))]
    pub ipvs_scheduler: Scheduler,
    /// Node addresses NodePorts listen on: comma-separated CIDRs, or "primary" (the Node's
    /// first InternalIP per family); all InternalIP/ExternalIP addresses when unset.
    #[arg(long, default_value = "", value_parser = clap::builder::ValueParser::new(parse_nodeport_addresses))]
    pub nodeport_addresses: NodePortAddresses,
    /// Pod CIDRs of the cluster: traffic to ClusterIPs from other sources is masqueraded.
    #[arg(long, value_delimiter = ',')]
    pub cluster_cidr: Vec<IpNet>,
    /// Masquerade all traffic sent to ClusterIPs.
    #[arg(long)]
    pub masquerade_all: bool,
    /// How long a removed TCP endpoint's IPVS destination may keep its connections at weight
    /// 0 before it is deleted anyway (it goes as soon as it has none). Default: IPVS's own
    /// established-TCP timeout.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub ipvs_graceful_termination_timeout: Duration,
    /// Minimum interval between syncs after a burst of two (Go duration: 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub min_sync_period: Duration,
    /// Full resync interval, repairing any drift of kernel state.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub sync_period: Duration,
    /// Address of /healthz and /livez ("" disables).
    #[arg(long, default_value = "0.0.0.0:10256")]
    pub healthz_bind_address: String,
    /// Address of /metrics and /debug/table ("" disables).
    #[arg(long, default_value = "127.0.0.1:10249")]
    pub metrics_bind_address: String,
    /// Address health-check node ports listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub health_check_bind_ip: IpAddr,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse()
}

fn parse_scheduler(s: &str) -> Result<Scheduler, String> {
    s.parse()
        .map_err(|e: svcplane_dataplane::model::UnknownScheduler| e.to_string())
}

fn parse_nodeport_addresses(s: &str) -> Result<NodePortAddresses, String> {
    s.parse()
        .map_err(|e: svcplane_dataplane::model::InvalidNodePortAddresses| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    svcplane_controllers::parse_duration(s)
}

fn parse_bind(flag: &str, value: &str) -> anyhow::Result<Option<SocketAddr>> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .with_context(|| format!("{flag}: {value:?} is not an address:port"))
}

fn node_name(args: &NodeAgentArgs) -> anyhow::Result<String> {
    if let Some(name) = args.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Ok(name.clone());
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("--node-name: not given, and the hostname cannot be read")?;
    let hostname = hostname.trim().to_lowercase();
    anyhow::ensure!(
        !hostname.is_empty(),
        "--node-name: not given, and the hostname is empty"
    );
    Ok(hostname)
}

/// Runs the node agent.
pub async fn run(args: NodeAgentArgs) -> anyhow::Result<ExitCode> {
    let node = node_name(&args)?;
    let config = ProxyConfig {
        node_name: node.clone(),
        scheduler: args.ipvs_scheduler,
        nodeport_addresses: args.nodeport_addresses.clone(),
        cluster_cidrs: args.cluster_cidr.clone(),
        masquerade_all: args.masquerade_all,
    };
    let options = BackendOptions {
        cluster_cidrs: args.cluster_cidr.clone(),
        ipvs: IpvsOptions {
            graceful_termination_timeout: args.ipvs_graceful_termination_timeout,
            ..IpvsOptions::default()
        },
    };
    // Backends block on the kernel: off the async runtime's worker.
    let mut backend = tokio::task::block_in_place(|| build_backend(args.backend, &options))?;
    if args.cleanup {
        tokio::task::block_in_place(|| backend.cleanup())?;
        eprintln!(
            "node-agent: removed everything the {} backend created",
            backend.name()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let dry_run = args.backend == BackendKind::DryRun;
    let metrics = AgentMetrics::new().context("registering metrics")?;
    let timing = SyncTiming {
        min_sync_period: args.min_sync_period,
        sync_period: args.sync_period,
        ..SyncTiming::default()
    };
    let mut agent = Agent::new(config, backend, timing, metrics.clone());
    // Manifest files are read once; without --once the agent then keeps running on them
    // (periodic full resyncs repair drift, health-check node ports are served). With --once
    // each object goes into the model as it is decoded (an error ends the run anyway).
    if let (Some(path), true) = (&args.manifests, args.once) {
        svcplane_dataplane::source::read_manifests(path, &mut |event| {
            agent.apply(event);
        })
        .context("--manifests")?;
        let report = tokio::task::block_in_place(|| agent.sync_now(true))?;
        print_or_report(&agent, dry_run, args.output, report.operations)?;
        return Ok(ExitCode::SUCCESS);
    }
    let manifest_events = match &args.manifests {
        Some(path) => Some(read_manifest_events(path).context("--manifests")?),
        None => None,
    };
    let health_timeout = args.sync_period * 2;
    let status = agent.subscribe();
    if let Some(addr) = parse_bind("--healthz-bind-address", &args.healthz_bind_address)? {
        serve(
            addr,
            svcplane_dataplane::health::agent_router(status.clone(), None, health_timeout),
        )
        .await?;
    }
    if let Some(addr) = parse_bind("--metrics-bind-address", &args.metrics_bind_address)? {
        serve(
            addr,
            svcplane_dataplane::health::agent_router(status.clone(), Some(metrics), health_timeout),
        )
        .await?;
    }
    if !dry_run {
        tokio::spawn(svcplane_dataplane::health::serve_health_checks(
            status.clone(),
            args.health_check_bind_ip,
            health_timeout,
        ));
    }
    // A small queue: each event holds one decoded object until the model takes it in.
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(256);
    if let (Some(events), Some(path)) = (manifest_events, args.manifests.clone()) {
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("--manifests: cannot handle SIGHUP")?;
        tokio::spawn(follow_manifests(path, events, hangup, events_tx));
    } else {
        let client = crate::client::kube_client(args.kubeconfig.as_deref()).await?;
        tokio::spawn(svcplane_dataplane::source::watch_api(
            client,
            node.clone(),
            events_tx,
        ));
    }
    if args.once {
        // One sync from the API's current state: wait for every initial list, then program.
        while !agent.is_listed() {
            let event = events_rx
                .recv()
                .await
                .context("the API watches ended before the initial lists arrived")?;
            agent.apply(event);
        }
        let report = tokio::task::block_in_place(|| agent.sync_now(true))?;
        print_or_report(&agent, dry_run, args.output, report.operations)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Long-running from here: SIGTERM and SIGINT stop the agent's loop (the shared helper).
    let shutdown = crate::shutdown::Shutdown::install().context("installing signal handlers")?;
    if dry_run {
        let mut printed = status.clone();
        let format = args.output;
        tokio::spawn(async move {
            while printed.changed().await.is_ok() {
                let s = printed.borrow_and_update().clone();
                match format {
                    TableFormat::Text => print!("{}", render_text(&s.table, &s.node)),
                    TableFormat::Json => println!("{}", render_json(&s.table, &s.node)),
                }
            }
        });
    }
    tracing::info!(node = %node, backend = %args.backend, "node agent running");
    agent
        .run(events_rx, async move {
            shutdown.requested().await;
        })
        .await;
    tracing::info!("node agent stopped; forwarding state is left in place");
    Ok(ExitCode::SUCCESS)
}

/// Feeds the agent the objects of the manifest files as complete lists, and again each time
/// the process gets SIGHUP (objects no longer in the files are deleted, as after an API
/// re-list); a file that cannot be read then leaves the previous objects in place. Holds the
/// channel open until the agent stops.
async fn follow_manifests(
    path: PathBuf,
    events: Vec<SourceEvent>,
    mut hangup: tokio::signal::unix::Signal,
    events_tx: tokio::sync::mpsc::Sender<SourceEvent>,
) {
    let mut events = events;
    loop {
        for event in events {
            if events_tx.send(event).await.is_err() {
                return;
            }
        }
        events = tokio::select! {
            _ = events_tx.closed() => return,
            got = hangup.recv() => {
                if got.is_none() {
                    events_tx.closed().await;
                    return;
                }
                match read_manifest_events(&path) {
                    Ok(events) => {
                        tracing::info!(path = %path.display(), "SIGHUP: manifests read again");
                        events
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "SIGHUP: cannot read --manifests again; keeping the previous objects");
                        Vec::new()
                    }
                }
            }
        };
    }
}

/// The events of the manifests at `path`, all or nothing: a file that cannot be read or
/// decoded yields no event at all.
fn read_manifest_events(
    path: &std::path::Path,
) -> Result<Vec<SourceEvent>, svcplane_dataplane::source::ManifestError> {
    let mut events = Vec::new();
    svcplane_dataplane::source::read_manifests(path, &mut |event| events.push(event))?;
    Ok(events)
}

/// After a one-shot sync: the table on stdout for a dry run, else a one-line summary.
fn print_or_report(
    agent: &Agent,
    dry_run: bool,
    format: TableFormat,
    operations: usize,
) -> anyhow::Result<()> {
    let table = agent.model().table();
    let node = agent.model().node();
    if dry_run {
        match format {
            TableFormat::Text => print!("{}", render_text(table, node)),
            TableFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&render_json(table, node))?
            ),
        }
    } else {
        eprintln!(
            "node-agent: programmed {} virtual servers for node {} with {operations} kernel operations",
            table.len(),
            node.name,
        );
    }
    Ok(())
}

async fn serve(addr: SocketAddr, router: axum::Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(())
}
