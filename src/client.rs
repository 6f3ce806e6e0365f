//! The one way the binary's commands build a kube client: an explicit `--kubeconfig` (and
//! `--context`), or kube's usual inference (KUBECONFIG, `~/.kube/config`, in-cluster).

use std::path::Path;

use anyhow::Context;
use kube::Client;

/// The client configuration from `kubeconfig` when given, else the inferred one; `context`
/// picks a kubeconfig context other than the current one.
pub async fn kube_config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Config> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    match (kubeconfig, context) {
        (Some(path), _) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}: cannot read", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .context("--context"),
        (None, None) => kube::Config::infer().await.context(
            "no --kubeconfig, and no KUBECONFIG, ~/.kube/config or in-cluster configuration",
        ),
    }
}

/// A client from [`kube_config`] without a context override.
pub async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = kube_config(kubeconfig, None).await?;
    Client::try_from(config).context("building the API client")
}
