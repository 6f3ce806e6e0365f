//! `svcplane`: the Kubernetes Service networking control plane.

mod allocator;
mod client;
mod controller_manager;
mod crds_cmd;
mod dev;
mod dev_components;
mod explain;
mod logging;
mod node_agent;
mod plugin;
mod pool_watch;
mod shutdown;
mod status_page;
mod validate_cmd;
mod webhook_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Serve the validating admission webhook for Services, EndpointSlices, Endpoints and
    /// LoadBalancerIPPools.
    Webhook(webhook_cmd::WebhookArgs),
    /// Program node-local Service forwarding (IPVS, nftables) on this node.
    NodeAgent(node_agent::NodeAgentArgs),
    /// Validate Service, EndpointSlice and Endpoints manifests offline, as the API server would.
    Validate(validate_cmd::ValidateArgs),
    /// Print svcplane's CustomResourceDefinitions (LoadBalancerIPPool) as YAML.
    Crds,
    /// Explain a Service: its addresses, slices, and which endpoints each node uses and why.
    Explain(explain::ExplainArgs),
    /// Link this binary as `kubectl-svcplane`, so `kubectl svcplane explain svc/NAME` works.
    InstallKubectlPlugin(plugin::InstallArgs),
}

/// Parses the command line. Run as `kubectl-svcplane` (kubectl's plugin name) the commands are
/// the same; only usage and help say `kubectl svcplane`.
fn parse_cli() -> Cli {
    let argv0 = std::env::args_os().next();
    if !plugin::invoked_as_plugin(argv0.as_deref()) {
        return Cli::parse();
    }
    let matches = Cli::command()
        .name("kubectl svcplane")
        .bin_name("kubectl svcplane")
        .get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

fn main() -> ExitCode {
    let cli = parse_cli();
    logging::init(cli.log_format);
    match &cli.command {
        Command::Validate(args) => {
            // Offline and synchronous: 0 all allowed, 1 any rejected, 2 unreadable input.
            let code = validate_cmd::run_validate(args, &mut std::io::stdout());
            return ExitCode::from(code);
        }
        Command::InstallKubectlPlugin(args) => return install_kubectl_plugin(args),
        Command::Crds => {
            return match crds_cmd::crds_yaml() {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::from(1)
                }
            };
        }
        Command::NodeAgent(_) => allocator::return_freed_memory_at_once(),
        _ => {}
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
            Command::Explain(args) => explain::run(args).await,
            Command::Validate(_) | Command::InstallKubectlPlugin(_) | Command::Crds => {
                unreachable!("handled above")
            }
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

fn install_kubectl_plugin(args: &plugin::InstallArgs) -> ExitCode {
    match plugin::install(args) {
        Ok(link) => {
            println!("installed {}", link.display());
            if let Some(dir) = link.parent().filter(|d| !plugin::on_path(d)) {
                println!(
                    "note: {} is not on PATH; add it so kubectl finds the plugin",
                    dir.display()
                );
            }
            println!("try: kubectl svcplane explain svc/NAME -n NAMESPACE");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
