//! `svcplane webhook`: the command line of the validating admission webhook server. The server
//! is `svcplane-webhook`'s; this module only turns flags into its [`WebhookOptions`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use svcplane_webhook::WebhookOptions;

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
    /// Watch the cluster's LoadBalancerIPPools (through --kubeconfig or in-cluster config) so a
    /// pool overlapping another is refused; without it pools are only checked on their own.
    #[arg(long)]
    pub check_pool_overlaps: bool,
    /// Path to a kubeconfig for --check-pool-overlaps; without it the usual inference
    /// (KUBECONFIG, in-cluster) applies.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

impl From<WebhookArgs> for WebhookOptions {
    fn from(args: WebhookArgs) -> Self {
        WebhookOptions {
            listen: args.listen,
            tls_cert_file: args.tls_cert_file,
            tls_key_file: args.tls_key_file,
            generate_certs: args.generate_certs,
            cert_dns_names: args.cert_dns_names,
            generate_only: args.generate_only,
            cert_reload_interval: args.cert_reload_interval,
            request_timeout: args.request_timeout,
            metrics_listen: args.metrics_listen,
            pools: std::sync::Arc::new(svcplane_webhook::NoPools),
        }
    }
}

/// Run `svcplane webhook` until `shutdown` completes (the binary completes it on SIGTERM or
/// SIGINT); reviews in flight are answered before it returns. With
/// `--check-pool-overlaps` the cluster's pools are listed first (a failure is fatal: a
/// webhook asked to check overlaps must not silently skip them).
pub async fn run(
    args: WebhookArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let check = args.check_pool_overlaps.then(|| args.kubeconfig.clone());
    let mut options: WebhookOptions = args.into();
    if let Some(kubeconfig) = check {
        let client = crate::client::kube_client(kubeconfig.as_deref()).await?;
        let pools = crate::pool_watch::watch_pools(client, Duration::from_secs(30)).await?;
        options.pools = std::sync::Arc::new(pools);
    }
    svcplane_webhook::run(options, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use svcplane_webhook::prepare_tls;

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
        assert!(matches!(
            prepare_tls(&a.into()),
            Err(svcplane_webhook::Error::Args(_))
        ));
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
