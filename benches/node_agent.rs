//! Node agent benchmark (issue 9): end-to-end network programming latency and agent memory at
//! scale, with the dry-run backend so the figure is the control loop's and not the kernel's, or
//! with `BENCH_BACKEND=nftables` (issue 10) so it includes programming the kernel: the agent's
//! table shows a change only once its sync committed, so "flip → table" is then "flip → rule in
//! the kernel". With a kernel backend the whole benchmark (API server, controllers, agent) runs
//! in a network namespace of its own, created and deleted here (root needed), so only that
//! namespace's `nf_tables` is programmed.
//!
//! Setup: the embedded API server and the controllers run in this process (as in
//! `svcplane dev`); `BENCH_SERVICES` Services (default 10,000) × 10 ready Pods on 10 Nodes are
//! created and the controllers write their EndpointSlices. The node agent runs as its own
//! process (`svcplane node-agent --backend dry-run --kubeconfig ...`), like a DaemonSet Pod.
//!
//! Measured:
//! - agent start-up: time until its table holds every Service, and its RSS then and at peak;
//! - network programming latency: a Pod's readiness is flipped through the API (`PATCH
//!   pods/status`), and the time until the agent's table shows the endpoint removed or added
//!   again is recorded (polling `/debug/table?service=...` every 2 ms). Flips are spaced
//!   further apart than `--min-sync-period`, so the figure is the latency beyond it; a second
//!   series runs with `--min-sync-period 0s` and flips every 100 ms.
//!
//! Run: `cargo bench -p svcplane --bench node_agent` (test mode, `cargo test --benches`: 200
//! Services, 4 flips); `BENCH_BACKEND=nftables cargo bench -p svcplane --bench node_agent` for
//! the nftables backend.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

mod support;
use support::{client_from, create_services, free_port, pod_ip, proc_status_kib};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PODS_PER_SERVICE: usize = 10;
const NODES: usize = 10;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct AgentProcess {
    child: Child,
    base: String,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The backend the agent runs (`BENCH_BACKEND`, default `dry-run`).
fn backend() -> String {
    std::env::var("BENCH_BACKEND").unwrap_or_else(|_| "dry-run".into())
}

/// Environment variable naming the namespace a re-executed benchmark runs in.
const NETNS_CHILD: &str = "SVCPLANE_BENCH_NETNS";

/// Runs this benchmark again inside a new network namespace (loopback up), deletes the
/// namespace afterwards, and returns the child's exit code.
fn rerun_in_netns() -> i32 {
    let ns = format!("svcplane-bench-{}", std::process::id());
    let ip = |args: &[&str]| {
        let ok = Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {args:?} failed (root and iproute2 needed)");
    };
    ip(&["netns", "add", &ns]);
    ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
    let status = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(std::env::current_exe().expect("own path"))
        .args(std::env::args().skip(1))
        .env(NETNS_CHILD, &ns)
        .status();
    ip(&["netns", "del", &ns]);
    status.ok().and_then(|s| s.code()).unwrap_or(1)
}

fn start_agent(kubeconfig: &std::path::Path, min_sync: &str) -> AgentProcess {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_svcplane"))
        .args([
            "node-agent",
            "--backend",
            &backend(),
            "--node-name",
            "node-0",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--min-sync-period", min_sync])
        .args(["--metrics-bind-address", &format!("127.0.0.1:{port}")])
        .args(["--healthz-bind-address", ""])
        .stdout(Stdio::null())
        .stderr(agent_log(min_sync))
        .spawn()
        .expect("start the node agent");
    AgentProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Where the agent's log goes: `BENCH_AGENT_LOG=DIR` keeps each agent's stderr in
/// `DIR/agent-<min-sync-period>.log` (set `RUST_LOG` for detail); discarded otherwise.
fn agent_log(min_sync: &str) -> Stdio {
    let Some(dir) = std::env::var_os("BENCH_AGENT_LOG") else {
        return Stdio::null();
    };
    let path = std::path::Path::new(&dir).join(format!("agent-{min_sync}.log"));
    match std::fs::File::create(&path) {
        Ok(file) => file.into(),
        Err(err) => panic!("BENCH_AGENT_LOG: cannot create {}: {err}", path.display()),
    }
}

/// The agent's row count for one Service's ClusterIP, or `None` while unreachable.
async fn endpoints_of(
    http: &reqwest::Client,
    agent: &AgentProcess,
    service: usize,
) -> Option<usize> {
    let url = format!(
        "{}/debug/table?o=json&service=default/svc-{service}",
        agent.base
    );
    let body: serde_json::Value = http.get(url).send().await.ok()?.json().await.ok()?;
    let rows = body["virtualServers"].as_array()?;
    rows.iter()
        .find(|r| r["kind"] == "ClusterIP")
        .and_then(|r| r["endpoints"].as_array())
        .map(Vec::len)
}

/// Sum of the agent's `svcplane_proxy_syncs_total` counters.
async fn syncs_total(http: &reqwest::Client, agent: &AgentProcess) -> u64 {
    let Ok(resp) = http.get(format!("{}/metrics", agent.base)).send().await else {
        return 0;
    };
    resp.text()
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("svcplane_proxy_syncs_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn set_ready(pods: &Api<Pod>, name: &str, ready: bool) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"conditions": [
        {"type": "Ready", "status": status, "lastTransitionTime": now}
    ]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("patch pod status");
}

/// Flips one Pod's readiness `flips` times, `gap` apart, and returns the latencies (ms) until
/// the agent's table showed each change.
async fn flip_series(
    pods: &Api<Pod>,
    http: &reqwest::Client,
    agent: &AgentProcess,
    services: usize,
    flips: usize,
    gap: Duration,
) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(flips);
    for i in 0..flips {
        let service = (i * 7919) % services;
        let pod = format!("pod-{}", service * PODS_PER_SERVICE);
        for ready in [false, true] {
            let expected = if ready {
                PODS_PER_SERVICE
            } else {
                PODS_PER_SERVICE - 1
            };
            let started = Instant::now();
            set_ready(pods, &pod, ready).await;
            let deadline = started + Duration::from_secs(30);
            loop {
                if endpoints_of(http, agent, service).await == Some(expected) {
                    latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the agent never showed the flip of {pod}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(gap).await;
        }
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn main() {
    if backend() != "dry-run" && std::env::var_os(NETNS_CHILD).is_none() {
        std::process::exit(rerun_in_netns());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let full = std::env::args().any(|a| a == "--bench");
    let services: usize = std::env::var("BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000 } else { 200 });
    let flips = if full { 30 } else { 2 };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = svcplane_apiserver::start(svcplane_apiserver::Config::default())
        .await
        .expect("API server");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("kubeconfig");
    let client = client_from(&server.kubeconfig()).await;
    println!(
        "node agent benchmark: {services} Services x {PODS_PER_SERVICE} Pods on {NODES} Nodes, backend {}",
        backend()
    );

    let nodes: Api<Node> = Api::all(client.clone());
    for n in 0..NODES {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": format!("node-{n}"), "labels": {"topology.kubernetes.io/zone": format!("zone-{}", n % 3)}},
            "status": {"addresses": [{"type": "InternalIP", "address": format!("192.168.0.{}", n + 10)}]},
        }))
        .expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let created = Instant::now();
    futures::stream::iter(0..services * PODS_PER_SERVICE)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("pod-{i}"), "labels": {"app": format!("svc-{}", i / PODS_PER_SERVICE)}},
                    "spec": {"nodeName": format!("node-{}", i % NODES), "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]},
                }))
                .expect("pod");
                let created = pods.create(&PostParams::default(), &pod).await.expect("create pod");
                let name = created.metadata.name.clone().unwrap_or_default();
                let status = json!({"status": {"phase": "Running", "podIP": pod_ip(i), "podIPs": [{"ip": pod_ip(i)}],
                    "conditions": [{"type": "Ready", "status": "True"}]}});
                pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                    .await
                    .expect("pod status");
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    create_services(&svcs, services, 64).await;
    println!(
        "  objects created in {:.1} s",
        created.elapsed().as_secs_f64()
    );

    let controller_config = svcplane_controllers::ControllerConfig::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(svcplane_controllers::run_controllers(
        client.clone(),
        controller_config,
        async {
            let _ = stop_rx.await;
        },
    ));

    let http = reqwest::Client::new();
    for (min_sync, gap) in [
        ("1s", Duration::from_millis(1100)),
        ("0s", Duration::from_millis(100)),
    ] {
        let started = Instant::now();
        let agent = start_agent(&kubeconfig, min_sync);
        let deadline = started + Duration::from_secs(600);
        // Every Service in the table, with all its endpoints: the controllers and the agent
        // have both converged.
        loop {
            let last = services - 1;
            if endpoints_of(&http, &agent, last).await == Some(PODS_PER_SERVICE)
                && endpoints_of(&http, &agent, 0).await == Some(PODS_PER_SERVICE)
            {
                break;
            }
            assert!(Instant::now() < deadline, "the agent never converged");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let complete = started.elapsed();
        // Quiet: no sync for 3 s (longer than --min-sync-period), so the flips below measure
        // one change each and not the tail of the start-up burst.
        let mut last = (syncs_total(&http, &agent).await, Instant::now());
        while last.1.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = syncs_total(&http, &agent).await;
            if now != last.0 {
                last = (now, Instant::now());
            }
            assert!(Instant::now() < deadline, "the agent never went quiet");
        }
        let pid = agent.child.id();
        println!(
            "  --min-sync-period {min_sync}: table complete {:.2} s after agent start; agent RSS {} MiB (peak {} MiB)",
            complete.as_secs_f64(),
            proc_status_kib(pid, "VmRSS:") / 1024,
            proc_status_kib(pid, "VmHWM:") / 1024,
        );
        let latencies = flip_series(&pods, &http, &agent, services, flips, gap).await;
        println!(
            "    readiness flip -> agent table: n={} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (flips {} ms apart); agent peak RSS {} MiB",
            latencies.len(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(f64::NAN),
            gap.as_millis(),
            proc_status_kib(pid, "VmHWM:") / 1024,
        );
    }
    let _ = stop_tx.send(());
    let _ = controllers.await;
    server.shutdown().await;
}
