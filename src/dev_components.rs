//! The in-process components `svcplane dev` runs next to the embedded API server: the
//! validating admission webhook (over real TLS, registered through a
//! ValidatingWebhookConfiguration like in a cluster) and the controllers (over a real client).

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::json;
use tokio::sync::watch;

use svcplane_apiserver::RunningServer;

/// Name of the webhook configuration `svcplane dev` registers.
pub const WEBHOOK_CONFIGURATION: &str = "svcplane-validation";

async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// The webhook `svcplane dev` runs.
pub struct DevWebhook {
    /// Its URL.
    pub url: String,
    /// The serving task; it ends after the stop signal, once in-flight reviews are answered.
    pub task: tokio::task::JoinHandle<()>,
}

/// How long dev waits for a CRD it installed to be served, and for the webhook's first list
/// of pools.
const POOLS_LISTED_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Installs svcplane's own CustomResourceDefinitions (`LoadBalancerIPPool`), replacing a
/// definition a state file kept from an earlier version, and waits until the kind is served.
pub async fn install_crds(server: &RunningServer) -> anyhow::Result<()> {
    use kube::CustomResourceExt;
    use svcplane_api::LoadBalancerIPPool;
    let crd = serde_json::to_value(LoadBalancerIPPool::crd())?;
    server
        .replace_object(crd)
        .await
        .map_err(|e| anyhow::anyhow!("installing the LoadBalancerIPPool CRD: {}", e.message))?;
    let pools = kube::Api::<LoadBalancerIPPool>::all(client_of(server).await?);
    let deadline = tokio::time::Instant::now() + POOLS_LISTED_WITHIN;
    loop {
        match pools.list(&kube::api::ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(err) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("the LoadBalancerIPPool CRD is not served: {err}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// Generates certificates, starts the webhook on a loopback port and registers it (for
/// Services, Endpoints, EndpointSlices and LoadBalancerIPPools; call [`install_crds`]
/// first).
pub async fn start_webhook(
    server: &RunningServer,
    work_dir: &Path,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<DevWebhook> {
    let dir = work_dir.join("webhook-certs");
    let certs = svcplane_webhook::generate_certs(&dir, &["localhost".into(), "127.0.0.1".into()])
        .with_context(|| format!("generating webhook certificates in {}", dir.display()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the webhook listener")?;
    let addr = listener.local_addr()?;
    let tls = svcplane_webhook::TlsFiles {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        reload_interval: std::time::Duration::from_secs(10),
    };
    let mut options = svcplane_webhook::ServeOptions::new()?;
    let pools = crate::pool_watch::watch_pools(client_of(server).await?, POOLS_LISTED_WITHIN)
        .await
        .context("the webhook's LoadBalancerIPPool watch")?;
    options.pools = std::sync::Arc::new(pools);
    let task = tokio::spawn(async move {
        if let Err(err) = svcplane_webhook::serve(listener, tls, options, stopped(stop)).await {
            tracing::error!(%err, "webhook server stopped");
        }
    });
    let url = format!("https://{addr}/validate");
    let ca = std::fs::read(&certs.ca_cert).context("reading the webhook CA")?;
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIGURATION},
        "webhooks": [{
            "name": "services.svcplane.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "clientConfig": {
                "url": url,
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca),
            },
            "rules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services", "endpoints"]},
                {"apiGroups": ["discovery.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["endpointslices"]},
                {"apiGroups": [svcplane_api::API_GROUP], "apiVersions": [svcplane_api::API_VERSION], "operations": ["CREATE", "UPDATE"], "resources": ["loadbalancerippools"]},
            ],
        }],
    });
    // A state file from an earlier run holds an old port and CA: replaced.
    server
        .replace_object(config)
        .await
        .map_err(|e| anyhow::anyhow!("registering the webhook: {}", e.message))?;
    Ok(DevWebhook { url, task })
}

/// A client of the server, over its kubeconfig like any other client.
pub async fn client_of(server: &RunningServer) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Starts the simulated cluster (node IPAM, scheduler, kubelet stand-in) against the server
/// over a real client.
pub async fn start_simulator(
    server: &RunningServer,
    config: svcplane_simulator::SimConfig,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = client_of(server).await?;
    Ok(tokio::spawn(svcplane_simulator::run(client, config, stop)))
}

/// Starts the controllers against the server over a real client.
pub async fn start_controllers(
    server: &RunningServer,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = client_of(server).await?;
    // The only LoadBalancer implementation of the dev cluster: it also serves Services
    // without a class.
    let controller_config = svcplane_controllers::ControllerConfig {
        lb_ipam_default_class: true,
        ..Default::default()
    };
    Ok(tokio::spawn(async move {
        if let Err(err) =
            svcplane_controllers::run_controllers(client, controller_config, stopped(stop)).await
        {
            tracing::error!(%err, "controllers stopped");
        }
    }))
}

/// The node agents `svcplane dev` runs, one per Node, and where their tables are served.
pub struct NodeAgents {
    /// Base URL of the debug server (`{url}/nodes/NAME/table`).
    pub url: String,
    /// Names of the Nodes with an agent.
    pub nodes: Vec<String>,
    /// The Node whose agent programs this machine, and its backend (`None`: all dry runs).
    pub programs_this_machine: Option<(String, String)>,
}

/// Which agent, if any, programs this machine's kernel instead of a dry run.
pub struct RealAgent {
    /// The backend (`DryRun` keeps every agent a dry run).
    pub backend: svcplane_dataplane::backends::BackendKind,
    /// The Node it acts as (default: the first Node).
    pub node: Option<String>,
}

/// Starts one dry-run node agent per Node in the API (over a real client, like a DaemonSet's
/// pods would) and serves each node's table on `listen`: `/nodes`, `/nodes/NAME/table`
/// (`?o=json` for JSON) and `/nodes/NAME/metrics`; and `status_page`, when given, at
/// `/status` with these agents' tables.
pub async fn start_node_agents(
    server: &RunningServer,
    listen: std::net::SocketAddr,
    real: &RealAgent,
    status_page: Option<crate::status_page::Page>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<NodeAgents> {
    use k8s_openapi::api::core::v1::Node;
    use svcplane_dataplane::agent::{Agent, SyncTiming};
    use svcplane_dataplane::backends::{build_backend, BackendKind, BackendOptions};
    use svcplane_dataplane::dry_run::DryRunBackend;
    use svcplane_dataplane::metrics::AgentMetrics;
    use svcplane_dataplane::model::ProxyConfig;

    let client = client_of(server).await?;
    let nodes = kube::Api::<Node>::all(client.clone())
        .list(&Default::default())
        .await
        .context("listing Nodes")?;
    let mut routes = axum::Router::new();
    let mut names = Vec::new();
    let real_node = match (&real.node, real.backend) {
        (_, BackendKind::DryRun) => None,
        (Some(node), _) => Some(node.clone()),
        (None, _) => nodes.items.first().and_then(|n| n.metadata.name.clone()),
    };
    if let Some(node) = &real_node {
        anyhow::ensure!(
            nodes
                .items
                .iter()
                .any(|n| n.metadata.name.as_ref() == Some(node)),
            "--node-agent-node {node}: no such Node"
        );
    }
    let mut programs_this_machine = None;
    let mut tables = Vec::new();
    for node in nodes.items {
        let Some(name) = node.metadata.name.clone() else {
            continue;
        };
        let backend: Box<dyn svcplane_dataplane::backend::Backend> =
            if real_node.as_ref() == Some(&name) {
                let backend = build_backend(real.backend, &BackendOptions::default())
                    .with_context(|| format!("--node-agent-backend {}", real.backend))?;
                programs_this_machine = Some((name.clone(), backend.name().to_string()));
                backend
            } else {
                Box::new(DryRunBackend::new())
            };
        let metrics = AgentMetrics::new().context("registering node agent metrics")?;
        let agent = Agent::new(
            ProxyConfig {
                node_name: name.clone(),
                ..ProxyConfig::default()
            },
            backend,
            SyncTiming::default(),
            metrics.clone(),
        );
        let status = agent.subscribe();
        tables.push((name.clone(), agent.subscribe()));
        let (events_tx, events_rx) = tokio::sync::mpsc::channel(4096);
        tokio::spawn(svcplane_dataplane::source::watch_api(
            client.clone(),
            name.clone(),
            events_tx,
        ));
        tokio::spawn(agent.run(events_rx, stopped(stop.clone())));
        let router = svcplane_dataplane::health::agent_router(
            status,
            Some(metrics),
            SyncTiming::default().sync_period * 2,
        );
        routes = routes.nest(&format!("/nodes/{name}"), router);
        names.push(name);
    }
    let index = names
        .iter()
        .map(|n| format!("{n}\t/nodes/{n}/table\n"))
        .collect::<String>();
    routes = routes.route("/nodes", axum::routing::get(move || async move { index }));
    if let Some(page) = status_page {
        routes = routes.merge(crate::status_page::router(page.with_agents(tables)));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--node-agents-listen {listen}: cannot listen"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes)
            .with_graceful_shutdown(stopped(stop))
            .await;
    });
    Ok(NodeAgents {
        url: format!("http://{addr}"),
        nodes: names,
        programs_this_machine,
    })
}
