//! Kubeconfig files for `kubectl` and kube-rs clients of the embedded server.

use base64::Engine;

/// Name of the cluster, context and user entries in generated kubeconfigs.
pub const CONTEXT_NAME: &str = "svcplane-dev";

/// Renders a kubeconfig (YAML) for a server at `url`, trusting `ca_pem` in HTTPS mode.
pub fn render(url: &str, ca_pem: Option<&str>) -> String {
    let ca_line = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT_NAME}\n  cluster:\n    server: {url}\n{ca_line}contexts:\n- name: {CONTEXT_NAME}\n  context:\n    cluster: {CONTEXT_NAME}\n    user: {CONTEXT_NAME}\n    namespace: default\ncurrent-context: {CONTEXT_NAME}\nusers:\n- name: {CONTEXT_NAME}\n  user:\n    token: svcplane-dev\npreferences: {{}}\n"
    )
}
