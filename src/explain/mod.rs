//! `svcplane explain service NAME`: why each endpoint of a Service does or does not receive
//! traffic on each node, how its addresses were allocated, and the usual mistakes.
//!
//! - [`target`]: the command line's `service NAME` / `svc/NAME`;
//! - [`gather`]: the only I/O, reading the objects;
//! - [`analysis`] (with [`addresses`], [`forwarding`], [`checks`], [`wording`]): a pure
//!   [`report::Report`] from them, with the node agent's own model deciding every selection;
//! - [`render`]: text, wide text or JSON.

mod addresses;
mod analysis;
mod checks;
mod forwarding;
mod gather;
mod render;
mod report;
mod target;
mod wording;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};

pub use render::Format;

/// `svcplane explain` arguments.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// `service NAME`, `svc NAME`, `svc/NAME` or `service/NAME`.
    #[arg(required = true, num_args = 1..=2, value_name = "SERVICE")]
    pub target: Vec<String>,
    /// Namespace of the Service (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Explain forwarding on this Node only (default: every Node).
    #[arg(long)]
    pub node: Option<String>,
    /// Output format: text (default), wide (per-endpoint columns) or json.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Path to a kubeconfig; without it $KUBECONFIG, ~/.kube/config or in-cluster, as kubectl.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
}

async fn client_config(args: &ExplainArgs) -> anyhow::Result<kube::Config> {
    let mut config =
        crate::client::kube_config(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    // Fail fast on an unreachable server instead of kube's 30 s default.
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    Ok(config)
}

/// Runs `svcplane explain`: prints the explanation to stdout. Errors (unknown Service,
/// unreachable server) are returned for the caller to print; the exit code is 1 then.
pub async fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let name = target::service_name(&args.target)?;
    let config = client_config(&args).await?;
    let url = config.cluster_url.to_string();
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).context("cannot build the API client")?;
    let gathered = gather::gather(&client, &namespace, &name)
        .await
        .map_err(|err| match err {
            gather::GatherError::Api {
                source: kube::Error::Api(_),
                ..
            }
            | gather::GatherError::ServiceNotFound { .. } => anyhow!("{err}"),
            gather::GatherError::Api { .. } => anyhow!("{err} (API server {url})"),
        })?;
    let report = analysis::explain(&gathered, args.node.as_deref())?;
    print!("{}", render::render(&report, args.output));
    Ok(ExitCode::SUCCESS)
}
