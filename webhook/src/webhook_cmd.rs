//! Run the validating admission webhook server as `svcplane webhook` does (the module keeps
//! the command's name so its log target stays `svcplane_webhook::webhook_cmd`): resolve (or
//! generate) the certificates, then serve HTTPS and, if asked, plain HTTP until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::certs::generate_certs;
use crate::pools::PoolLister;
use crate::server::{serve, serve_plain, ServeOptions};
use crate::tls::TlsFiles;
use crate::Error;

/// What `svcplane webhook` was asked to do (the binary's command line fills it; see
/// `src/webhook_cmd.rs` for the flags and their defaults).
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Address to serve HTTPS on.
    pub listen: SocketAddr,
    /// PEM serving certificate (default: DIR/tls.crt with `generate_certs`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM serving key (default: DIR/tls.key with `generate_certs`).
    pub tls_key_file: Option<PathBuf>,
    /// Write a CA and a CA-signed serving certificate (ca.crt, tls.crt, tls.key) into this
    /// directory unless tls.crt already exists there.
    pub generate_certs: Option<PathBuf>,
    /// DNS names (and IPs) for the generated serving certificate.
    pub cert_dns_names: Vec<String>,
    /// Generate certificates and return without serving (for a Helm pre-install job).
    pub generate_only: bool,
    /// How often to check the certificate files for changes.
    pub cert_reload_interval: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Also serve the routes (including /metrics) over plain HTTP on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// The cluster's `LoadBalancerIPPool`s for the overlap check (`NoPools` without cluster
    /// access).
    pub pools: Arc<dyn PoolLister>,
}

/// Resolve the certificate files from the options, generating them if asked.
pub fn prepare_tls(args: &WebhookOptions) -> Result<TlsFiles, Error> {
    if let Some(dir) = &args.generate_certs {
        if !dir.join("tls.crt").exists() {
            let out = generate_certs(dir, &args.cert_dns_names)?;
            tracing::info!(ca = %out.ca_cert.display(), "generated webhook certificates");
        }
    }
    let dir = args.generate_certs.clone();
    let cert = args
        .tls_cert_file
        .clone()
        .or_else(|| dir.as_ref().map(|d| d.join("tls.crt")))
        .ok_or_else(|| Error::Args("--tls-cert-file or --generate-certs DIR is required".into()))?;
    let key = args
        .tls_key_file
        .clone()
        .or_else(|| dir.as_ref().map(|d| d.join("tls.key")))
        .ok_or_else(|| Error::Args("--tls-key-file or --generate-certs DIR is required".into()))?;
    Ok(TlsFiles {
        cert,
        key,
        reload_interval: args.cert_reload_interval,
    })
}

/// Run the webhook until `shutdown` completes (the binary completes it on SIGTERM or SIGINT);
/// reviews in flight are answered before it returns.
pub async fn run(
    args: WebhookOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let tls = prepare_tls(&args)?;
    if args.generate_only {
        return Ok(());
    }
    let mut options = ServeOptions::new()?;
    options.request_timeout = args.request_timeout;
    options.pools = args.pools.clone();
    let io = |e: std::io::Error| Error::Io(args.listen.to_string(), e.to_string());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(io)?;
    tracing::info!(listen = %args.listen, "webhook serving HTTPS");
    // Both listeners stop on the one shutdown.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let plain_task = match args.metrics_listen {
        Some(addr) => {
            let plain = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Io(addr.to_string(), e.to_string()))?;
            let opts = options.clone();
            let stop = stopped(stop_rx.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = serve_plain(plain, opts, stop).await {
                    tracing::warn!(error = %e, "plain HTTP listener stopped");
                }
            }))
        }
        None => None,
    };
    let served = serve(listener, tls, options, stopped(stop_rx)).await;
    if let Some(task) = plain_task {
        let _ = task.await;
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options like the flag defaults of `svcplane webhook` (the binary tests those), with
    /// certificate names for a local test.
    fn options() -> WebhookOptions {
        WebhookOptions {
            listen: "0.0.0.0:8443".parse().unwrap(),
            tls_cert_file: None,
            tls_key_file: None,
            generate_certs: None,
            cert_dns_names: vec!["localhost".into(), "127.0.0.1".into()],
            generate_only: false,
            cert_reload_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            metrics_listen: None,
            pools: Arc::new(crate::NoPools),
        }
    }

    #[test]
    fn certificates_are_required() {
        assert!(matches!(prepare_tls(&options()), Err(Error::Args(_))));
    }

    #[test]
    fn generate_certs_writes_once_and_keeps_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = WebhookOptions {
            generate_certs: Some(dir.path().to_path_buf()),
            generate_only: true,
            ..options()
        };
        let tls = prepare_tls(&a).unwrap();
        assert_eq!(tls.cert, dir.path().join("tls.crt"));
        assert_eq!(tls.key, dir.path().join("tls.key"));
        assert!(dir.path().join("ca.crt").exists());
        let first = std::fs::read(&tls.cert).unwrap();
        prepare_tls(&a).unwrap();
        assert_eq!(
            std::fs::read(&tls.cert).unwrap(),
            first,
            "existing certificate must be kept"
        );
        crate::tls::load_certified_key(&tls.cert, &tls.key).unwrap();
    }
}
