//! Kubeconfig files for `kubectl` and kube-rs clients of the embedded server.

use base64::Engine;

/// Name of the cluster, context and user entries in generated kubeconfigs.
pub const CONTEXT_NAME: &str = "svcplane-dev";

/// The admin credentials a kubeconfig carries.
pub enum Credentials<'a> {
    /// A client certificate and key (PEM) signed by the server's CA: HTTPS mode.
    ClientCertificate {
        /// Certificate PEM.
        cert_pem: &'a str,
        /// Private key PEM.
        key_pem: &'a str,
    },
    /// A bearer token: plain-HTTP mode, where no client certificate can be presented.
    Token(&'a str),
}

/// Renders a kubeconfig (YAML) for a server at `url`, trusting `ca_pem` in HTTPS mode and
/// authenticating with `credentials`.
pub fn render(url: &str, ca_pem: Option<&str>, credentials: &Credentials<'_>) -> String {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    let ca_line = match ca_pem {
        Some(pem) => format!("    certificate-authority-data: {}\n", b64(pem)),
        None => String::new(),
    };
    let user = match credentials {
        Credentials::ClientCertificate { cert_pem, key_pem } => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert_pem),
            b64(key_pem)
        ),
        Credentials::Token(token) => format!("    token: {token}\n"),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT_NAME}\n  cluster:\n    server: {url}\n{ca_line}contexts:\n- name: {CONTEXT_NAME}\n  context:\n    cluster: {CONTEXT_NAME}\n    user: {CONTEXT_NAME}\n    namespace: default\ncurrent-context: {CONTEXT_NAME}\nusers:\n- name: {CONTEXT_NAME}\n  user:\n{user}preferences: {{}}\n"
    )
}
