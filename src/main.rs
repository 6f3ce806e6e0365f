//! `svcplane`: the Kubernetes Service networking control plane.

mod controller_manager;
mod dev;
mod dev_components;
mod logging;
mod node_agent;
mod shutdown;
mod status_page;
mod validate_cmd;
mod webhook_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the API server allocates many small JSON values per
/// request, and glibc's per-thread arenas fragment under that load (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kubernetes Service networking control plane.
#[derive(Debug, Parser)]
#[command(name = "svcplane", version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system on an embedded API server, with example objects, for kubectl.
    Dev(dev::DevArgs),
    /// Run the EndpointSlice, EndpointSlice mirroring and Endpoints controllers against a cluster.
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Serve the validating admission webhook for Services, EndpointSlices and Endpoints.
    Webhook(webhook_cmd::WebhookArgs),
    /// Program node-local Service forwarding (IPVS, nftables) on this node.
    NodeAgent(node_agent::NodeAgentArgs),
    /// Validate Service, EndpointSlice and Endpoints manifests offline, as the API server would.
    Validate(validate_cmd::ValidateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    if let Command::Validate(args) = &cli.command {
        // Offline and synchronous: 0 all allowed, 1 any rejected, 2 unreadable input.
        let code = validate_cmd::run_validate(args, &mut std::io::stdout());
        return ExitCode::from(code);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::ControllerManager(args) => {
                controller_manager::run(args).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Webhook(args) => {
                let shutdown = shutdown::Shutdown::install()?;
                webhook_cmd::run(args, async move {
                    shutdown.requested().await;
                })
                .await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::NodeAgent(args) => node_agent::run(args).await,
            Command::Validate(_) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
