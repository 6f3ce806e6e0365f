//! Controller benchmark on the embedded API server (issue 5):
//!
//! 1. cold start: `BENCH_SERVICES` Services (default 10,000) × 10 ready Pods on 10 Nodes in
//!    3 zones exist before the controllers start; measured: wall time until every
//!    EndpointSlice and Endpoints object is correct, API writes issued, and the controller
//!    process's peak RSS and CPU time (the controllers run in a child process — the built
//!    `svcplane controller-manager` itself, without leader election — so the API server's
//!    memory is not counted);
//! 2. readiness-to-slice latency: one probe Pod's readiness is flipped 100 times while 1,000
//!    other Pods flip readiness continuously; the time until the probe's EndpointSlice shows
//!    the change is reported as p50/p99.
//!
//! The controller process takes `svcplane controller-manager`'s flags from
//! `BENCH_CONTROLLER_FLAGS` (whitespace-separated); unset, it runs with
//! `--kube-api-qps=-1` (no client rate limit, kube-controller-manager's defaults otherwise:
//! 5 workers per controller, batch periods 0). `BENCH_CONTROLLER_FLAGS=` (set but empty) is
//! kube-controller-manager's defaults, 20 QPS / burst 30 per client; with a client rate limit
//! the latency phase is skipped (it would measure the limit).
//! Run: `cargo bench -p svcplane --bench cold_start` (set `BENCH_SERVICES=1000` for a quick
//! run).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

mod support;
use support::{client_from, cpu_seconds, create_services, pod_ip, proc_status_kib};

/// The same allocator as the `svcplane` binary (the API server runs in this process).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PODS_PER_SERVICE: usize = 10;
const NODES: usize = 10;

/// The flags of the controller process (see the module docs).
fn controller_flags() -> Vec<String> {
    match std::env::var("BENCH_CONTROLLER_FLAGS") {
        Ok(flags) => flags.split_whitespace().map(String::from).collect(),
        Err(_) => vec!["--kube-api-qps=-1".into()],
    }
}

/// The value of `--name=V` or `--name V` in `flags` (the last one wins, as with clap).
fn flag_value(flags: &[String], name: &str) -> Option<String> {
    let mut value = None;
    let mut args = flags.iter();
    while let Some(arg) = args.next() {
        if let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            value = Some(v.to_string());
        } else if arg == name {
            value = args.next().cloned();
        }
    }
    value
}

/// The client rate limit the controller process runs with (kube-controller-manager's
/// defaults, 20 QPS / burst 30, unless the flags say otherwise; none for a negative QPS).
fn client_rate_limit(flags: &[String]) -> Option<svcplane_controllers::ClientRateLimit> {
    let qps = flag_value(flags, "--kube-api-qps")
        .map(|v| v.parse().expect("--kube-api-qps"))
        .unwrap_or(svcplane_controllers::KUBE_CONTROLLER_MANAGER_QPS);
    let burst = flag_value(flags, "--kube-api-burst")
        .map(|v| v.parse().expect("--kube-api-burst"))
        .unwrap_or(svcplane_controllers::KUBE_CONTROLLER_MANAGER_BURST as i32);
    svcplane_controllers::ClientRateLimit::from_flags(qps, burst).expect("rate limit flags")
}

/// Asks the controller process to stop (SIGTERM, as the kubelet would) and waits for it.
fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

fn writes(server: &svcplane_apiserver::RunningServer) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in server.metrics_text().lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let get = |k: &str| {
            labels
                .split(',')
                .find_map(|p| p.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        let (Some(verb), Some(resource)) = (get("verb"), get("resource")) else {
            continue;
        };
        if !matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            continue;
        }
        if resource != "endpointslices" && resource != "endpoints" {
            continue;
        }
        *out.entry(format!("{verb} {resource}")).or_default() +=
            value.trim().parse::<f64>().unwrap_or(0.0) as u64;
    }
    out
}

async fn all_correct(client: &kube::Client, services: usize) -> bool {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let list = slices
        .list(
            &ListParams::default()
                .labels("endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io"),
        )
        .await
        .expect("list slices");
    let mut per_service: BTreeMap<String, usize> = BTreeMap::new();
    for s in &list.items {
        let ready = s
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .count();
        let svc = s.metadata.labels.as_ref().unwrap()["kubernetes.io/service-name"].clone();
        *per_service.entry(svc).or_default() += ready;
    }
    if per_service.len() != services || per_service.values().any(|n| *n != PODS_PER_SERVICE) {
        return false;
    }
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let list = eps
        .list(&ListParams::default())
        .await
        .expect("list endpoints");
    let ok = list
        .items
        .iter()
        .filter(|e| {
            e.subsets
                .iter()
                .flatten()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
                == PODS_PER_SERVICE
        })
        .count();
    ok == services
}

async fn set_ready(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch status");
}

async fn parent() {
    let services: usize = std::env::var("BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let flags = controller_flags();
    println!(
        "controller flags: {flags:?}; client rate limit per client: {}",
        match client_rate_limit(&flags) {
            Some(l) => format!("{} QPS, burst {}", l.qps, l.burst),
            None => "none".into(),
        }
    );
    let server = svcplane_apiserver::start(svcplane_apiserver::Config {
        history_limit: 1_000_000,
        ..Default::default()
    })
    .await
    .expect("API server");
    let client = client_from(&server.kubeconfig()).await;
    let setup = Instant::now();
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..NODES {
        let zone = ["zone-a", "zone-b", "zone-c"][i % 3];
        let node: Node = serde_json::from_value(json!({"metadata": {"name": format!("node-{i}"),
            "labels": {"topology.kubernetes.io/zone": zone}}}))
        .unwrap();
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("node");
    }
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    create_services(&svcs, services, 32).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    futures::stream::iter(0..services * PODS_PER_SERVICE)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let s = i / PODS_PER_SERVICE;
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("svc-{s}-{}", i % PODS_PER_SERVICE), "labels": {"app": format!("svc-{s}")}},
                    "spec": {"nodeName": format!("node-{}", i % NODES),
                             "containers": [{"name": "app", "image": "pause", "ports": [{"containerPort": 8080}]}]}}))
                .unwrap();
                let name = pod.metadata.name.clone().unwrap();
                pods.create(&PostParams::default(), &pod).await.expect("pod");
                set_ready(&pods, &name, &pod_ip(i), true).await;
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    eprintln!(
        "setup: {services} Services, {} Pods in {:.1?}",
        services * PODS_PER_SERVICE,
        setup.elapsed()
    );

    let dir = std::env::temp_dir().join(format!("svcplane-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
    let before = writes(&server);
    let start = Instant::now();
    // `BENCH_CHILD_WRAPPER="valgrind --tool=massif"` runs the controller process under a
    // profiler.
    let wrapper: Vec<String> = std::env::var("BENCH_CHILD_WRAPPER")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let exe = env!("CARGO_BIN_EXE_svcplane");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = command
        .arg("controller-manager")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--leader-elect=false", "--metrics-addr", "127.0.0.1:0"])
        .args(controller_flags())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn controller process");
    let pid = child.id();
    let expected_writes = 2 * services as u64;
    // RSS of the controller process every 100 ms: where the peak falls (initial lists,
    // syncs, or the slices and Endpoints coming back through the watches).
    let mut rss_timeline: Vec<u64> = Vec::new();
    // When the first write and the last expected write were seen (100 ms resolution).
    let mut first_write: Option<Duration> = None;
    let mut all_written: Option<Duration> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rss_timeline.push(proc_status_kib(pid, "VmRSS:") / 1024);
        let w: u64 = writes(&server).values().sum::<u64>() - before.values().sum::<u64>();
        if w > 0 && first_write.is_none() {
            first_write = Some(start.elapsed());
        }
        if w >= expected_writes && all_written.is_none() {
            all_written = Some(start.elapsed());
        }
        if w >= expected_writes && all_correct(&client, services).await {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "cold start did not converge"
        );
    }
    let cold = start.elapsed();
    let after = writes(&server);
    let cold_cpu = cpu_seconds(pid);
    let mut delta: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in &after {
        let d = v - before.get(k).copied().unwrap_or(0);
        if d > 0 {
            delta.insert(k.clone(), d);
        }
    }
    let total: u64 = delta.values().sum();
    let hwm_cold = proc_status_kib(pid, "VmHWM:");
    println!(
        "cold start {services} Services x {PODS_PER_SERVICE} Pods: {:.2} s wall, {cold_cpu:.2} s controller CPU, {total} writes {delta:?}, controller peak RSS {:.0} MiB",
        cold.as_secs_f64(),
        hwm_cold as f64 / 1024.0
    );
    let (first, last) = (
        first_write.unwrap_or_default().as_secs_f64(),
        all_written.unwrap_or_default().as_secs_f64(),
    );
    println!(
        "writes: first seen at {first:.1} s, all {expected_writes} by {last:.1} s: {:.1} s of writing",
        last - first
    );
    if let Some(limit) = client_rate_limit(&flags) {
        // Each of the two writing controllers creates one object per Service through its own
        // client: the burst is free, the rest comes at `qps`.
        let bound = services.saturating_sub(limit.burst as usize) as f64 / f64::from(limit.qps);
        println!(
            "rate-limit lower bound of the writing: ({services} - {}) / {} = {bound:.1} s per controller client, both in parallel (one shared client: {:.1} s)",
            limit.burst,
            limit.qps,
            (2 * services).saturating_sub(limit.burst as usize) as f64 / f64::from(limit.qps)
        );
    }
    let per_second: Vec<String> = rss_timeline
        .chunks(10)
        .map(|c| c.iter().max().unwrap_or(&0).to_string())
        .collect();
    println!(
        "controller RSS (MiB), max of each second of the cold start: {}",
        per_second.join(" ")
    );

    if client_rate_limit(&flags).is_some() {
        println!("readiness-to-slice latency: skipped (a client rate limit would be measured)");
        stop(&mut child);
        let _ = std::fs::remove_dir_all(&dir);
        std::io::stdout().flush().unwrap();
        return;
    }

    // Readiness-to-slice latency under churn.
    let churn_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let pods = pods.clone();
        let stop = churn_stop.clone();
        let churn_services = (services / 10).clamp(1, 100);
        tokio::spawn(async move {
            let mut ready = false;
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // 1,000 other pods: those of Services 1..=100, flipped 50 at a time.
                for chunk in 0..(churn_services * PODS_PER_SERVICE).div_ceil(50) {
                    futures::stream::iter(
                        chunk * 50..((chunk + 1) * 50).min(churn_services * PODS_PER_SERVICE),
                    )
                    .map(|j| {
                        let pods = pods.clone();
                        let i = PODS_PER_SERVICE + j; // skip Service 0 (the probe)
                        async move {
                            let s = i / PODS_PER_SERVICE;
                            set_ready(
                                &pods,
                                &format!("svc-{s}-{}", i % PODS_PER_SERVICE),
                                &pod_ip(i),
                                ready,
                            )
                            .await
                        }
                    })
                    .buffer_unordered(16)
                    .collect::<Vec<_>>()
                    .await;
                    flips += 50;
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                }
                ready = !ready;
            }
            flips
        })
    };
    let probe_slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let stream = watcher::watcher(
        probe_slices,
        watcher::Config::default().labels("kubernetes.io/service-name=svc-0"),
    )
    .applied_objects();
    futures::pin_mut!(stream);
    let probe_ip = pod_ip(0);
    let mut latencies = Vec::new();
    let mut misses = 0;
    let mut ready = true;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..100 {
        ready = !ready;
        let t0 = Instant::now();
        set_ready(&pods, "svc-0-0", &probe_ip, ready).await;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await;
            let Ok(next) = next else {
                misses += 1;
                eprintln!("probe flip to ready={ready} not seen within 10 s");
                break;
            };
            let slice = next.expect("watch").expect("stream open");
            let seen = slice.endpoints.iter().any(|e| {
                e.addresses.first() == Some(&probe_ip)
                    && e.conditions.as_ref().and_then(|c| c.ready) == Some(ready)
            });
            if seen {
                latencies.push(t0.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    churn_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = churn.await.unwrap();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).min(latencies.len()) - 1];
    let hwm = proc_status_kib(pid, "VmHWM:");
    println!(
        "readiness-to-slice latency ({} of 100 flips of one probe Pod seen, while {flips} readiness flips of 1,000 other Pods ran): p50 {:.1?}, p99 {:.1?}, max {:.1?}; controller peak RSS overall {:.0} MiB",
        100 - misses,
        pct(0.50),
        pct(0.99),
        latencies.last().unwrap(),
        hwm as f64 / 1024.0
    );
    stop(&mut child);
    let _ = std::fs::remove_dir_all(&dir);
    std::io::stdout().flush().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // `cargo test --benches` runs bench targets with `--bench`-less args; only run when asked.
    if args.iter().any(|a| a == "--bench") || std::env::var("BENCH_SERVICES").is_ok() {
        runtime.block_on(parent());
    }
}
