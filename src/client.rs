//! The one way the binary's commands build a kube client: an explicit `--kubeconfig`, or
//! kube's usual inference (KUBECONFIG, `~/.kube/config`, in-cluster).

use std::path::Path;

use anyhow::Context;
use kube::Client;

/// A client from `kubeconfig` when given, else from the inferred configuration.
pub async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}: cannot read", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "no --kubeconfig, and no KUBECONFIG, ~/.kube/config or in-cluster configuration",
        )?,
    };
    Client::try_from(config).context("building the API client")
}
