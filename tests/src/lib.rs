//! Shared fixtures for svcplane integration tests: an embedded API server on a loopback port
//! and a `kube::Client` (or a kubeconfig for `kubectl`) that talks to it over the network; and
//! [`vm`], a qemu guest running Debian's kernel for the dataplane's real-kernel tests.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use svcplane_apiserver::{Config, RunningServer};

mod kubectl;
pub mod netns;
pub use kubectl::Kubectl;

pub mod vm;

/// A running embedded API server and a client for it.
pub struct Fixture {
    /// The server handle.
    pub server: RunningServer,
    /// A kube-rs client talking to the server over HTTP(S).
    pub client: kube::Client,
    /// The server's base URL.
    pub url: String,
    kubeconfig: tempfile::NamedTempFile,
}

impl Fixture {
    /// Starts a plain-HTTP server with default configuration.
    pub async fn start() -> Fixture {
        Self::start_with(Config::default()).await
    }

    /// Starts an HTTPS server (self-signed CA trusted by the client).
    pub async fn start_tls() -> Fixture {
        Self::start_with(Config {
            tls: true,
            ..Config::default()
        })
        .await
    }

    /// Starts a server with the given configuration.
    pub async fn start_with(config: Config) -> Fixture {
        let server = svcplane_apiserver::start(config)
            .await
            .expect("embedded API server starts");
        let yaml = server.kubeconfig();
        let client = client_from_kubeconfig(&yaml).await;
        let mut kubeconfig = tempfile::NamedTempFile::new().expect("temp file");
        kubeconfig
            .write_all(yaml.as_bytes())
            .expect("write kubeconfig");
        Fixture {
            url: server.url.clone(),
            server,
            client,
            kubeconfig,
        }
    }

    /// Path of a kubeconfig file for `kubectl --kubeconfig`.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.kubeconfig.path().to_path_buf()
    }

    /// A new, independent client (its own connection pool).
    pub async fn new_client(&self) -> kube::Client {
        client_from_kubeconfig(&self.server.kubeconfig()).await
    }

    /// Fault injection.
    pub fn faults(&self) -> &svcplane_apiserver::Faults {
        self.server.faults()
    }

    /// `apiserver_request_total` summed over response codes for a verb (`POST`, `PUT`,
    /// `PATCH`, `APPLY`, `DELETE`, `GET`, `LIST`, `WATCH`) and plural resource.
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        request_counts(&self.server.metrics_text())
            .into_iter()
            .filter(|(labels, _)| {
                labels.get("verb").map(String::as_str) == Some(verb)
                    && labels.get("resource").map(String::as_str) == Some(resource)
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// All write requests (create, update, patch, apply, delete, deletecollection) for a resource.
    pub fn write_count(&self, resource: &str) -> u64 {
        [
            "POST",
            "PUT",
            "PATCH",
            "APPLY",
            "DELETE",
            "DELETECOLLECTION",
        ]
        .iter()
        .map(|v| self.request_count(v, resource))
        .sum()
    }
}

/// Builds a kube-rs client from kubeconfig YAML.
pub async fn client_from_kubeconfig(yaml: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).expect("valid kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("usable kubeconfig");
    kube::Client::try_from(config).expect("client")
}

/// Parses `apiserver_request_total` samples from Prometheus text: (labels, value).
pub fn request_counts(metrics: &str) -> Vec<(BTreeMap<String, String>, u64)> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("apiserver_request_total{"))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once("} ")?;
            let mut map = BTreeMap::new();
            for pair in labels.split("\",") {
                let (k, v) = pair.split_once("=\"")?;
                map.insert(k.trim().to_string(), v.trim_end_matches('"').to_string());
            }
            Some((map, value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// Whether the real `kubectl` is on the PATH.
pub fn kubectl_available() -> bool {
    std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Fails the test, saying how to install kubectl, when it is missing: the kubectl suites never
/// skip (`scripts/install-test-deps.sh` installs a kubectl on machines without one).
pub fn require_kubectl(test: &str) {
    assert!(
        kubectl_available(),
        "kubectl is not on the PATH, so {test} cannot run: run scripts/install-test-deps.sh \
         (scripts/install-helm.sh installs kubectl v1.33.9 when there is none)"
    );
}

/// Installs the `LoadBalancerIPPool` CRD (from `svcplane_api`, as `svcplane dev` and the chart
/// do) unless it exists, and waits until pools can be listed (bounded: 10 s).
pub async fn install_pool_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    use svcplane_api::LoadBalancerIPPool;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let crd = LoadBalancerIPPool::crd();
    let name = crd.metadata.name.clone().unwrap_or_default();
    if crds.get_opt(&name).await.expect("get the CRD").is_none() {
        crds.create(&Default::default(), &crd)
            .await
            .expect("create the CRD");
    }
    let pools: kube::Api<LoadBalancerIPPool> = kube::Api::all(client.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pools.list(&Default::default()).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "LoadBalancerIPPools are not served 10 s after the CRD was created"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A free loopback port: bound and released, for a child process to bind right after.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}

/// GETs `url` every 100 ms until `check` accepts the body; panics with the last body after
/// `within`.
pub async fn poll_http(
    url: &str,
    within: std::time::Duration,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + within;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(resp) = reqwest::get(url).await {
            last = resp.text().await.unwrap_or_default();
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{url} never satisfied the check; last body:\n{last}");
}
