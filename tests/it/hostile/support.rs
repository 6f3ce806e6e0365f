//! Shared pieces of the `hostile::clients` suite (issue 15): an embedded API server with the
//! suite's tight limits, raw requests that tell an answer from a dropped connection (what a
//! panicking handler looks like from outside), health probes, and the process's memory.
//!
//! Cases take [`exclusive`] first: they run one at a time, so the memory one case measures is
//! its own (the server runs in the test process). To add a case: start a [`Hostile`] server
//! (`Hostile::start()` or `Hostile::start_with(config)` from [`config`]), drive it with
//! [`send`], and assert on answers, [`Hostile::healthy`] and [`Memory`].
#![allow(dead_code)]

use std::time::{Duration, Instant};

use svcplane_apiserver::Config;
use svcplane_tests::Fixture;

/// Holds the suite to one running case, and to no other heavy test of the binary (memory is
/// measured for the whole process): [`crate::heavy`].
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    crate::heavy::heavy().await
}

/// Limits tight enough for cases of a few seconds: 1 s TLS handshake and header-read
/// timeouts, 2 s idle timeout, watches buffering at most 256 KiB and ended after 1 s without
/// room, 32 watches per client, a 16 MiB watch history.
pub fn config() -> Config {
    let mut config = Config::default();
    config.connections.handshake_timeout = Duration::from_secs(1);
    config.connections.header_read_timeout = Duration::from_secs(1);
    config.connections.idle_timeout = Duration::from_secs(2);
    config.connections.max_connections_per_client = 64;
    config.watch_limits.max_per_client = 32;
    config.watch_limits.buffer_bytes = 256 * 1024;
    config.watch_limits.slow_client_timeout = Duration::from_secs(1);
    config.history_bytes_limit = 16 * 1024 * 1024;
    config.request_timeout = Duration::from_secs(2);
    config
}

/// A server for one case.
pub struct Hostile {
    /// The fixture (server and kube client).
    pub fx: Fixture,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Hostile {
    /// `n` plain TCP connections to the server, opened one after another.
    pub async fn connect(&self, n: usize) -> Vec<tokio::net::TcpStream> {
        let mut connections = Vec::with_capacity(n);
        for _ in 0..n {
            connections.push(
                tokio::net::TcpStream::connect(&self.addr)
                    .await
                    .expect("connect"),
            );
        }
        connections
    }

    /// A plain-HTTP server with [`config`].
    pub async fn start() -> Hostile {
        Self::start_with(config()).await
    }

    /// A server with the given configuration.
    pub async fn start_with(config: Config) -> Hostile {
        let fx = Fixture::start_with(config).await;
        let addr = fx.server.addr.to_string();
        Hostile { fx, addr }
    }

    /// Whether `/healthz` answers 200 within `within`.
    pub async fn healthy_within(&self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(
                within,
                send(&self.addr, "GET", "/healthz", None, Vec::new())
            )
            .await,
            Ok(Answer::Status(200, _))
        )
    }

    /// Whether `/healthz` answers 200 within 2 s.
    pub async fn healthy(&self) -> bool {
        self.healthy_within(Duration::from_secs(2)).await
    }

    /// A sample of the server's Prometheus metrics by name and label text, summed.
    pub fn metric(&self, name: &str, labels_contain: &str) -> f64 {
        self.fx
            .server
            .metrics_text()
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(labels_contain))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }
}

/// What a raw request got.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A response: status and the `message` of a `Status` body (or the body's start).
    Status(u16, String),
    /// The connection closed without a response.
    Dropped,
}

impl Answer {
    /// The status code, when there was a response.
    pub fn code(&self) -> Option<u16> {
        match self {
            Answer::Status(c, _) => Some(*c),
            Answer::Dropped => None,
        }
    }

    /// The message, when there was a response.
    pub fn message(&self) -> &str {
        match self {
            Answer::Status(_, m) => m,
            Answer::Dropped => "",
        }
    }
}

/// A client that opens a fresh connection for every request (so a dropped connection is
/// seen as such, not retried on another).
pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// One HTTP/1.1 request over a fresh connection. `path` must already be percent-encoded.
pub async fn send(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    send_via(&fresh_client(), addr, method, path, content_type, body).await
}

/// [`send`] through a client of [`fresh_client`] (building one per request costs more than
/// many of the requests).
pub async fn send_via(
    client: &reqwest::Client,
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client
        .request(method, format!("http://{addr}{path}"))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let Ok(resp) = req.send().await else {
        return Answer::Dropped;
    };
    let code = resp.status().as_u16();
    let Ok(bytes) = resp.bytes().await else {
        return Answer::Dropped;
    };
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
    Answer::Status(code, message)
}

/// Like [`send`], but only waits for the response head (for watches): the status, or
/// `None` when the connection dropped first.
pub async fn send_head(client: &reqwest::Client, addr: &str, path: &str) -> Answer {
    match client.get(format!("http://{addr}{path}")).send().await {
        Ok(resp) => Answer::Status(resp.status().as_u16(), String::new()),
        Err(_) => Answer::Dropped,
    }
}

/// Percent-encodes every byte but the unreserved ones (RFC 3986), for query values and path
/// segments.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A ConfigMap body with one data key of `data_bytes` bytes.
pub fn configmap(name: &str, data_bytes: usize) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"payload": "x".repeat(data_bytes)},
    })
    .to_string()
    .into_bytes()
}

/// The ConfigMaps collection path.
pub const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// The test process's memory, for bounds on what a hostile load makes the in-process server
/// hold: the resident set now, and its peak since [`Memory::reset_peak`].
pub struct Memory;

impl Memory {
    fn status_kib(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .expect("/proc/self/status")
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
    }

    /// Resident memory now, MiB.
    pub fn rss_mib() -> f64 {
        Self::status_kib("VmRSS:") as f64 / 1024.0
    }

    /// Peak resident memory since the last reset, MiB.
    pub fn peak_mib() -> f64 {
        Self::status_kib("VmHWM:") as f64 / 1024.0
    }

    /// Resets the peak to the current resident memory (Linux `clear_refs` 5) and returns it.
    pub fn reset_peak() -> f64 {
        std::fs::write("/proc/self/clear_refs", "5")
            .expect("resetting the peak RSS through /proc/self/clear_refs");
        Self::rss_mib()
    }
}

/// Runs `load` and returns how far the peak resident memory rose above where it started, MiB.
pub async fn peak_growth_mib<F: std::future::Future>(load: F) -> (F::Output, f64) {
    let before = Memory::reset_peak();
    let out = load.await;
    let growth = Memory::peak_mib() - before;
    eprintln!("peak RSS grew {growth:.1} MiB (from {before:.1} MiB)");
    (out, growth)
}

/// Polls `/healthz` back to back while `load` runs; returns its output and the longest wait
/// for one answer.
pub async fn worst_health_wait<F: std::future::Future>(
    h: &Hostile,
    load: F,
) -> (F::Output, Duration) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = h.addr.clone();
    let flag = stop.clone();
    let probe = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            let answer = tokio::time::timeout(
                Duration::from_secs(30),
                send(&addr, "GET", "/healthz", None, Vec::new()),
            )
            .await;
            worst = worst.max(t.elapsed());
            if !matches!(answer, Ok(Answer::Status(200, _))) {
                worst = Duration::from_secs(30);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worst
    });
    let out = load.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = probe.await.expect("health probe");
    (out, worst)
}

/// Whether the peer has closed `stream` (EOF or reset) as seen within `wait`.
pub async fn closed_by_server(stream: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}
