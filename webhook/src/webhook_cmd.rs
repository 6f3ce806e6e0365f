//! `svcplane webhook`: run the validating admission webhook server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::certs::generate_certs;
use crate::server::{serve, serve_plain, ServeOptions};
use crate::tls::TlsFiles;
use crate::Error;

/// Parse durations like `500ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    }
}

/// Command-line arguments of `svcplane webhook`.
#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM serving certificate (default: DIR/tls.crt with --generate-certs).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM serving key (default: DIR/tls.key with --generate-certs).
    #[arg(long)]
    pub tls_key_file: Option<PathBuf>,
    /// Write a CA and a CA-signed serving certificate (ca.crt, tls.crt, tls.key) into DIR
    /// unless tls.crt already exists there.
    #[arg(long, value_name = "DIR")]
    pub generate_certs: Option<PathBuf>,
    /// DNS names (and IPs) for the generated serving certificate.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,svcplane-webhook,svcplane-webhook.svcplane-system.svc"
    )]
    pub cert_dns_names: Vec<String>,
    /// Generate certificates and exit (for a Helm pre-install job).
    #[arg(long)]
    pub generate_only: bool,
    /// How often to check the certificate files for changes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub cert_reload_interval: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Also serve the routes (including /metrics) over plain HTTP on this address.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Resolve the certificate files from the arguments, generating them if asked.
pub fn prepare_tls(args: &WebhookArgs) -> Result<TlsFiles, Error> {
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

/// Run `svcplane webhook` until `shutdown` completes (the binary completes it on SIGTERM or
/// SIGINT); reviews in flight are answered before it returns.
pub async fn run(
    args: WebhookArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let tls = prepare_tls(&args)?;
    if args.generate_only {
        return Ok(());
    }
    let mut options = ServeOptions::new()?;
    options.request_timeout = args.request_timeout;
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

    fn args(extra: &[&str]) -> WebhookArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: WebhookArgs,
        }
        let mut argv = vec!["svcplane-webhook"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    #[test]
    fn defaults_match_the_documented_flags() {
        let a = args(&[]);
        assert_eq!(a.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(a.request_timeout, Duration::from_secs(10));
        assert!(a
            .cert_dns_names
            .contains(&"svcplane-webhook.svcplane-system.svc".to_string()));
        assert!(matches!(prepare_tls(&a), Err(Error::Args(_))));
    }

    #[test]
    fn generate_certs_writes_once_and_keeps_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let a = args(&["--generate-certs", d, "--generate-only"]);
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

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
