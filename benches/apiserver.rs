//! Embedded API server benchmark (issue 2): creates per second and full-list latency at
//! 100,000 pods, watch fan-out to 10 watchers, and the server's resident memory.
//!
//! The server runs as its own process (`svcplane dev --no-examples --no-controllers
//! --no-webhook --insecure-http`: the API server alone) so its
//! memory is measured alone. The load generator is lean, like `wrk`: 16 HTTP/1.1 keep-alive
//! connections (hyper's client connection, no pool), each sending prebuilt requests back to
//! back, so the client's share of the two cores stays small; both processes' CPU time per
//! request is printed. The baseline,
//! measured in the same run with the same clients, is `GET /healthz` (request overhead with no
//! storage work).
//!
//! `cargo bench --bench apiserver` runs the full size; without `--bench` (as `cargo test
//! --all-targets` runs it) it runs a small smoke size.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

mod support;
use support::{cpu_seconds, free_port, proc_status_kib};

const CONCURRENCY: usize = 16;
const WATCHERS: usize = 10;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &std::path::Path) -> Server {
    let port = free_port();
    // SVCPLANE_BENCH_WRAP runs the server under a profiler, e.g. "perf record -g -o /tmp/p.data".
    let wrap = std::env::var("SVCPLANE_BENCH_WRAP").unwrap_or_default();
    let mut words: Vec<String> = wrap.split_whitespace().map(str::to_string).collect();
    words.push(env!("CARGO_BIN_EXE_svcplane").to_string());
    let child = Command::new(&words[0])
        .args(&words[1..])
        .args([
            "dev",
            "--no-examples",
            "--no-controllers",
            "--no-webhook",
            "--insecure-http",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--kubeconfig-out")
        .arg(dir.join("kubeconfig"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start svcplane dev");
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// `VmRSS` and `VmHWM` of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let mib = |key: &str| proc_status_kib(pid, key) as f64 / 1024.0;
    (mib("VmRSS:"), mib("VmHWM:"))
}

fn pod_body(i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": "default", "labels": {"app": format!("app-{}", i % 1000), "tier": "web"}},
        "spec": {
            "nodeName": format!("node-{}", i % 10),
            "containers": [{"name": "main", "image": "registry.example/app:1", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}],
        },
    }))
    .expect("json")
}

/// Runs `total` requests over `CONCURRENCY` keep-alive connections, each worker sending the
/// next request as soon as its previous answer is read; every answer must have status
/// `expect`. Returns requests per second (connection set-up excluded).
async fn run_load<F>(addr: &str, total: usize, expect: u16, make: F) -> f64
where
    F: Fn(usize) -> Request<Full<Bytes>> + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        senders.push(sender);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut sender in senders {
        let next = next.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                sender.ready().await.expect("connection ready");
                let resp = sender.send_request(make(i)).await.expect("request");
                let status = resp.status().as_u16();
                let body = resp.into_body().collect().await.expect("body").to_bytes();
                assert_eq!(
                    status,
                    expect,
                    "request {i}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// A request with a body (empty for GET) and the headers a Kubernetes client sends.
fn request(method: &str, path: String, content_type: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("accept", "application/json")
        .header("content-type", content_type)
        .body(Full::new(body))
        .expect("request")
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become ready");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let pods = std::env::var("SVCPLANE_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });
    let watch_events = if full { 10_000 } else { 500 };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(dir.path());
    let url = server.url.clone();
    let addr = url.trim_start_matches("http://").to_string();
    let pid = server.child.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .expect("client");
    wait_ready(&client, &url).await;
    println!(
        "apiserver benchmark: {pods} pods, {CONCURRENCY} client connections, {WATCHERS} watchers"
    );

    // Baseline: request overhead with no storage work.
    let cpu_before = cpu_seconds(pid);
    let client_before = cpu_seconds(std::process::id());
    let healthz_total = pods.min(20_000);
    let healthz_rps = run_load(&addr, healthz_total, 200, |_| {
        request("GET", "/healthz".into(), "application/json", Bytes::new())
    })
    .await;
    let healthz_cpu = (cpu_seconds(pid) - cpu_before) / healthz_total as f64 * 1e6;
    let healthz_client =
        (cpu_seconds(std::process::id()) - client_before) / healthz_total as f64 * 1e6;
    println!(
        "baseline GET /healthz:            {healthz_rps:>10.0} req/s   (server CPU {healthz_cpu:.0} us/request, client CPU {healthz_client:.0} us/request)"
    );

    // Creates.
    let bodies: Vec<Bytes> = (0..pods).map(|i| Bytes::from(pod_body(i))).collect();
    let cpu_before = cpu_seconds(pid);
    let client_before = cpu_seconds(std::process::id());
    let create_rps = run_load(&addr, pods, 201, move |i| {
        request(
            "POST",
            "/api/v1/namespaces/default/pods".into(),
            "application/json",
            bodies[i].clone(),
        )
    })
    .await;
    let create_cpu = (cpu_seconds(pid) - cpu_before) / pods as f64 * 1e6;
    let create_client = (cpu_seconds(std::process::id()) - client_before) / pods as f64 * 1e6;
    println!(
        "POST pods (create):               {create_rps:>10.0} creates/s (server CPU {create_cpu:.0} us/create, client CPU {create_client:.0} us/create)"
    );

    // Full list latency.
    let mut list_times = Vec::new();
    let mut page_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let body = client
            .get(format!("{url}/api/v1/pods"))
            .send()
            .await
            .expect("list")
            .bytes()
            .await
            .expect("list body");
        list_times.push(t.elapsed().as_secs_f64());
        let v: serde_json::Value = serde_json::from_slice(&body).expect("list json");
        assert_eq!(v["items"].as_array().map(|a| a.len()), Some(pods));
        let t = Instant::now();
        let _ = client
            .get(format!("{url}/api/v1/pods?limit=500"))
            .send()
            .await
            .expect("page")
            .bytes()
            .await;
        page_times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "LIST all {pods} pods (median of 5): {:>8.1} ms (first page of 500: {:.1} ms)",
        median(list_times) * 1000.0,
        median(page_times) * 1000.0
    );
    let (rss, hwm) = rss_mib(pid);
    println!("server RSS at {pods} pods:          {rss:>8.0} MiB (peak {hwm:.0} MiB)");

    // Watch fan-out: 10 watchers each see every one of `watch_events` updates.
    let rv = {
        let v: serde_json::Value = client
            .get(format!("{url}/api/v1/pods?limit=1"))
            .send()
            .await
            .expect("rv")
            .json()
            .await
            .expect("rv json");
        v["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .to_string()
    };
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let resp = client
            .get(format!("{url}/api/v1/pods?watch=true&resourceVersion={rv}"))
            .send()
            .await
            .expect("watch");
        let mut stream = resp.bytes_stream();
        watchers.push(tokio::spawn(async move {
            let mut seen = 0usize;
            let mut buf = Vec::new();
            while seen < watch_events {
                let chunk = stream.next().await.expect("watch open").expect("chunk");
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    seen += 1;
                    buf.drain(..=pos);
                }
            }
            Instant::now()
        }));
    }
    let started = Instant::now();
    run_load(&addr, watch_events, 200, |i| {
        request(
            "PATCH",
            format!("/api/v1/namespaces/default/pods/pod-{i}"),
            "application/merge-patch+json",
            Bytes::from(format!(
                "{{\"metadata\":{{\"labels\":{{\"rev\":\"{i}\"}}}}}}"
            )),
        )
    })
    .await;
    let mut last = started;
    for w in watchers {
        last = last.max(w.await.expect("watcher"));
    }
    let secs = (last - started).as_secs_f64();
    println!(
        "watch fan-out: {watch_events} updates x {WATCHERS} watchers delivered in {:.2} s ({:.0} events/s delivered)",
        secs,
        (watch_events * WATCHERS) as f64 / secs
    );
}
