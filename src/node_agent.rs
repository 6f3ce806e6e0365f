//! `svcplane node-agent`: the dataplane's node agent. Not built yet: no issue has delivered
//! the dataplane, so the command says so and fails instead of pretending to program anything.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `svcplane node-agent` (the planned interface).
#[derive(Debug, clap::Args)]
pub struct NodeAgentArgs {
    /// Kubeconfig to watch Services and EndpointSlices with (in-cluster config when unset).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (`spec.nodeName` of local endpoints); defaults to the hostname.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Forwarding backend.
    #[arg(long, value_parser = ["ipvs", "nftables"], default_value = "ipvs")]
    pub backend: String,
}

/// Reports that the dataplane is not available in this build.
pub async fn run(args: NodeAgentArgs) -> anyhow::Result<ExitCode> {
    eprintln!(
        "error: the node agent ({} backend) is not part of this build yet: the dataplane is \
         still to be delivered (see README, \"Status\")",
        args.backend
    );
    Ok(ExitCode::from(2))
}
