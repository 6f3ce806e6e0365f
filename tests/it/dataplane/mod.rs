//! The node agent and the nftables backend on the host kernel (network namespaces), and the traffic tool's command line.

mod nettest_cli;
mod nftables_traffic;
mod node_agent_cli;
mod node_agent_nftables;
