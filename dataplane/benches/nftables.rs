//! The nftables backend at scale, against baselines measured in the same run, each in a fresh
//! network namespace:
//!
//! 1. baseline: `nft -f` of a kube-proxy-style ruleset for the same Services (upstream's
//!    nftables layout: an anonymous `numgen … vmap { … }` per Service, endpoint chains, the
//!    `service-ips` map);
//! 2. baseline: `nft -f` of exactly the table our backend writes (our plan as a script);
//! 3. ours: the node agent (model + backend, in a child process so its RSS is its own) does a
//!    full sync from empty, then one-endpoint changes (removals and additions) as partial
//!    syncs, then one new Service.
//!
//! `cargo bench -p svcplane-dataplane --bench nftables` runs 10,000 Services × 10 endpoints
//! (`BENCH_SERVICES` changes the count); without `--bench` (as `cargo test --all-targets`
//! runs it) 200 Services, and the targets are checked. Needs root.

#[path = "../tests/netns_support/mod.rs"]
mod netns_support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use netns_support::Netns;
use serde_json::json;
use svcplane_dataplane::agent::{Agent, SourceEvent, SyncTiming};
use svcplane_dataplane::backend::{Backend, SyncScope};
use svcplane_dataplane::metrics::AgentMetrics;
use svcplane_dataplane::model::{ProxyConfig, ProxyModel};
use svcplane_dataplane::nftables::{script, NftablesBackend, NftablesOptions};

const CHILD: &str = "SVCPLANE_NFT_BENCH_CHILD";
const ENDPOINTS: usize = 10;
const NODE: &str = "bench-node";
/// One partial sync per measured change.
const CHANGES: usize = 40;
/// `nft -f` runs longer than this are stopped and reported as "more than".
const NFT_TIMEOUT: Duration = Duration::from_secs(900);

fn cluster_ip(i: usize) -> String {
    format!("10.96.{}.{}", (i >> 8) & 255, i & 255)
}

fn endpoint_ip(i: usize, e: usize) -> String {
    let n = i * 16 + e;
    format!(
        "10.{}.{}.{}",
        128 + ((n >> 16) & 127),
        (n >> 8) & 255,
        n & 255
    )
}

fn service(i: usize) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": "bench"},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip(i), "clusterIPs": [cluster_ip(i)],
                 "ports": [{"name": "http", "protocol": "TCP", "port": 80}]},
    }))
    .expect("service")
}

fn slice(i: usize, endpoints: impl Iterator<Item = usize>) -> EndpointSlice {
    let eps: Vec<_> = endpoints
        .map(|e| {
            json!({"addresses": [endpoint_ip(i, e)], "nodeName": format!("node-{}", e % 3),
                   "conditions": {"ready": true, "serving": true, "terminating": false}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc-{i}-abcde"), "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}"),
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
        "endpoints": eps,
    }))
    .expect("slice")
}

fn node() -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.1"}]},
    }))
    .expect("node")
}

fn config() -> ProxyConfig {
    ProxyConfig {
        node_name: NODE.into(),
        ..ProxyConfig::default()
    }
}

/// The kube-proxy nftables-mode ruleset (v1.31 layout, numeric priorities) for the same
/// Services, as `nft -f` input.
fn kube_proxy_ruleset(services: usize) -> String {
    let mut s = String::with_capacity(services * ENDPOINTS * 200);
    let t = "ip kube-proxy";
    s.push_str(&format!("add table {t}\n"));
    for (name, kind, hook, prio) in [
        ("filter-prerouting", "filter", "prerouting", -110),
        ("filter-input", "filter", "input", -110),
        ("filter-forward", "filter", "forward", -110),
        ("filter-output", "filter", "output", -110),
        ("filter-output-post-dnat", "filter", "output", -90),
        ("nat-prerouting", "nat", "prerouting", -100),
        ("nat-output", "nat", "output", -100),
        ("nat-postrouting", "nat", "postrouting", 100),
    ] {
        s.push_str(&format!(
            "add chain {t} {name} {{ type {kind} hook {hook} priority {prio} ; policy accept ; }}\n"
        ));
    }
    for chain in [
        "services",
        "masquerading",
        "mark-for-masquerade",
        "endpoints-check",
        "firewall-check",
        "cluster-ips-check",
        "reject-chain",
    ] {
        s.push_str(&format!("add chain {t} {chain}\n"));
    }
    for map in ["service-ips", "no-endpoint-services", "firewall-ips"] {
        s.push_str(&format!(
            "add map {t} {map} {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}\n"
        ));
    }
    for map in ["service-nodeports", "no-endpoint-nodeports"] {
        s.push_str(&format!(
            "add map {t} {map} {{ type inet_proto . inet_service : verdict ; }}\n"
        ));
    }
    s.push_str(&format!("add set {t} cluster-ips {{ type ipv4_addr ; }}\n"));
    for rule in [
        "filter-prerouting ct state new jump firewall-check",
        "filter-input ct state new jump endpoints-check",
        "filter-forward ct state new jump endpoints-check",
        "filter-forward ct state new jump cluster-ips-check",
        "filter-output ct state new jump endpoints-check",
        "filter-output ct state new jump firewall-check",
        "filter-output-post-dnat ct state new jump cluster-ips-check",
        "nat-prerouting jump services",
        "nat-output jump services",
        "nat-postrouting jump masquerading",
        "mark-for-masquerade meta mark set mark or 0x4000",
        "masquerading meta mark & 0x4000 == 0 return",
        "masquerading meta mark set mark xor 0x4000",
        "masquerading masquerade fully-random",
        "reject-chain reject",
        "endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        "endpoints-check fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports",
        "firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
        "cluster-ips-check ip daddr @cluster-ips reject",
        "services ip daddr . meta l4proto . th dport vmap @service-ips",
        "services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
    ] {
        s.push_str(&format!("add rule {t} {rule}\n"));
    }
    for i in 0..services {
        let svc = format!("service-{i:08}-bench/svc-{i}/tcp/http");
        let mut vmap = Vec::new();
        for e in 0..ENDPOINTS {
            let ip = endpoint_ip(i, e);
            let ep = format!("endpoint-{i:08}-bench/svc-{i}/tcp/http__{ip}/8080");
            s.push_str(&format!("add chain {t} {ep}\n"));
            s.push_str(&format!(
                "add rule {t} {ep} ip saddr {ip} jump mark-for-masquerade\n"
            ));
            s.push_str(&format!(
                "add rule {t} {ep} meta l4proto tcp dnat to {ip}:8080\n"
            ));
            vmap.push(format!("{e} : goto {ep}"));
        }
        s.push_str(&format!("add chain {t} {svc}\n"));
        s.push_str(&format!(
            "add rule {t} {svc} numgen random mod {ENDPOINTS} vmap {{ {} }}\n",
            vmap.join(" , ")
        ));
        let cip = cluster_ip(i);
        s.push_str(&format!(
            "add element {t} service-ips {{ {cip} . tcp . 80 : goto {svc} }}\n"
        ));
        s.push_str(&format!("add element {t} cluster-ips {{ {cip} }}\n"));
    }
    s
}

/// Runs `nft -f FILE` in a fresh namespace; its wall time, or `None` after [`NFT_TIMEOUT`].
fn time_nft_file(label: &str, text: &str) -> Option<Duration> {
    let ns = Netns::new(label);
    let file = std::env::temp_dir().join(format!("{}.nft", ns.name()));
    std::fs::write(&file, text).expect("write the ruleset file");
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name(), "nft", "-f"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("nft runs");
    let result = loop {
        if let Some(status) = child.try_wait().expect("wait for nft") {
            let mut err = String::new();
            use std::io::Read as _;
            child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            assert!(status.success(), "nft -f {label} failed: {err}");
            break Some(start.elapsed());
        }
        if start.elapsed() > NFT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&file);
    result
}

/// Our full-sync plan for `services`, as an `nft -f` script.
fn our_script(ns: &Netns, services: usize) -> String {
    let mut model = ProxyModel::new(config());
    model.set_node(&node());
    for i in 0..services {
        model.upsert_service(&service(i));
        model.upsert_slice(&slice(i, 0..ENDPOINTS));
    }
    model.commit();
    ns.run(|| {
        let mut backend = NftablesBackend::new(NftablesOptions::default()).expect("backend");
        let ops = backend
            .plan(model.table(), &SyncScope::Full)
            .expect("plan a full sync");
        script(&ops)
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The agent: builds the model from events, full sync, partial syncs; prints `key value`.
fn child(services: usize) {
    let metrics = AgentMetrics::new().expect("metrics");
    let backend = NftablesBackend::new(NftablesOptions::default()).expect("backend");
    let mut agent = Agent::new(config(), Box::new(backend), SyncTiming::default(), metrics);
    agent.apply(SourceEvent::Node(Box::new(node())));
    let start = Instant::now();
    for i in 0..services {
        agent.apply(SourceEvent::Service(Box::new(service(i))));
        agent.apply(SourceEvent::Slice(Box::new(slice(i, 0..ENDPOINTS))));
    }
    agent.mark_listed();
    let events = start.elapsed();
    let rss_before_sync = status_kib("VmRSS:");
    let start = Instant::now();
    let report = agent.sync_now(true).expect("full sync");
    let full = start.elapsed();
    let out = &mut std::io::stdout();
    writeln!(out, "events_ms {:.1}", ms(events)).ok();
    writeln!(out, "full_sync_ms {:.1}", ms(full)).ok();
    writeln!(out, "full_sync_ops {}", report.operations).ok();
    // One endpoint fewer, then back, on different Services.
    let mut latencies = Vec::new();
    let mut ops = Vec::new();
    for k in 0..CHANGES {
        let i = (k * 7919) % services;
        let removed = k % 2 == 0;
        let eps: Vec<usize> = if removed {
            (0..ENDPOINTS - 1).collect()
        } else {
            (0..ENDPOINTS + 1).collect()
        };
        agent.apply(SourceEvent::Slice(Box::new(slice(i, eps.into_iter()))));
        let start = Instant::now();
        let report = agent.sync_now(false).expect("partial sync");
        latencies.push(ms(start.elapsed()));
        ops.push(report.operations);
    }
    latencies.sort_by(f64::total_cmp);
    writeln!(
        out,
        "change_ms p50 {:.2} p90 {:.2} max {:.2}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies[latencies.len() - 1]
    )
    .ok();
    ops.sort();
    writeln!(out, "change_ops min {} max {}", ops[0], ops[ops.len() - 1]).ok();
    // One new Service (upstream's PR #126013 measured this case).
    agent.apply(SourceEvent::Service(Box::new(service(services))));
    agent.apply(SourceEvent::Slice(Box::new(slice(services, 0..ENDPOINTS))));
    let start = Instant::now();
    let report = agent.sync_now(false).expect("new Service");
    writeln!(
        out,
        "new_service_ms {:.2} ops {}",
        ms(start.elapsed()),
        report.operations
    )
    .ok();
    // A periodic full sync of an unchanged table: the generation shortcut, then a dump.
    let start = Instant::now();
    agent.sync_now(true).expect("full resync");
    writeln!(out, "resync_ms {:.1}", ms(start.elapsed())).ok();
    writeln!(out, "rss_before_first_sync_kib {rss_before_sync}").ok();
    writeln!(out, "rss_kib {}", status_kib("VmRSS:")).ok();
    writeln!(out, "peak_rss_kib {}", status_kib("VmHWM:")).ok();
}

/// Where a partial sync's time goes: the backend alone (no agent), one-endpoint changes, with
/// the backend's own split between planning in this process, encoding, and the kernel.
fn child_phases(services: usize) {
    let mut model = ProxyModel::new(config());
    model.set_node(&node());
    for i in 0..services {
        model.upsert_service(&service(i));
        model.upsert_slice(&slice(i, 0..ENDPOINTS));
    }
    model.commit();
    let mut backend = NftablesBackend::new(NftablesOptions::default()).expect("backend");
    backend.sync(model.table(), &SyncScope::Full).expect("sync");
    let mut rows: Vec<[f64; 5]> = Vec::new();
    for k in 0..CHANGES {
        let i = (k * 7919) % services;
        let eps = if k % 2 == 0 {
            ENDPOINTS - 1
        } else {
            ENDPOINTS + 1
        };
        model.upsert_slice(&slice(i, 0..eps));
        let start = Instant::now();
        let changes = model.commit();
        let commit = start.elapsed();
        let start = Instant::now();
        backend
            .sync(model.table(), &SyncScope::Services(changes.services))
            .expect("partial sync");
        let total = start.elapsed();
        let d = backend.last_sync();
        rows.push([
            ms(commit),
            ms(total),
            ms(d.plan_time),
            ms(d.encode_time),
            ms(d.kernel_time),
        ]);
    }
    // The chains those changes retired are deleted by the first sync after their grace
    // period, in a transaction of its own before the sync's.
    std::thread::sleep(Duration::from_millis(1100));
    // Two endpoints fewer: a change whatever the loop did to this Service.
    let i = (CHANGES * 7919) % services;
    model.upsert_slice(&slice(i, 0..ENDPOINTS - 2));
    let changes = model.commit();
    let start = Instant::now();
    backend
        .sync(model.table(), &SyncScope::Services(changes.services))
        .expect("partial sync");
    let d = backend.last_sync();
    println!(
        "phase_with_stale_deletion_ms {:.3} deleted {} kernel {:.3}",
        ms(start.elapsed()),
        d.stale_chains_deleted,
        ms(d.kernel_time)
    );
    for (col, label) in ["model_commit", "backend_sync", "plan", "encode", "kernel"]
        .iter()
        .enumerate()
    {
        let mut v: Vec<f64> = rows.iter().map(|r| r[col]).collect();
        v.sort_by(f64::total_cmp);
        println!(
            "phase_{label}_ms p50 {:.3} p90 {:.3}",
            percentile(&v, 0.5),
            percentile(&v, 0.9)
        );
    }
}

/// A full sync by a second agent (a restart): it must read the kernel's table.
fn child_restart(services: usize) {
    let mut model = ProxyModel::new(config());
    model.set_node(&node());
    for i in 0..services {
        model.upsert_service(&service(i));
        model.upsert_slice(&slice(i, 0..ENDPOINTS));
    }
    model.commit();
    let mut backend = NftablesBackend::new(NftablesOptions::default()).expect("backend");
    let start = Instant::now();
    let report = backend.sync(model.table(), &SyncScope::Full).expect("sync");
    println!("first_ms {:.1}", ms(start.elapsed()));
    println!("first_ops {}", report.operations);
    let mut backend = NftablesBackend::new(NftablesOptions::default()).expect("backend");
    let start = Instant::now();
    let report = backend
        .sync(model.table(), &SyncScope::Full)
        .expect("adopt");
    println!("adopt_ms {:.1}", ms(start.elapsed()));
    println!("adopt_ops {}", report.operations);
    let d = backend.last_sync();
    println!("adopt_read_kernel {}", d.read_kernel);
    println!("adopt_plan_ms {:.1}", ms(d.plan_time));
    println!("adopt_read_ms {:.1}", ms(d.read_time));
}

fn run_child(ns: &Netns, mode: &str, services: usize) -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(exe)
        .env(CHILD, format!("{mode}:{services}"))
        .output()
        .expect("run the agent child");
    assert!(
        out.status.success(),
        "agent child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn value(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key} missing in child output:\n{out}"))
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (mode, n) = spec.split_once(':').expect("mode:services");
        let n: usize = n.parse().expect("service count");
        match mode {
            "agent" => child(n),
            "restart" => child_restart(n),
            "phases" => child_phases(n),
            other => panic!("unknown child mode {other}"),
        }
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let services: usize = std::env::var("BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000 } else { 200 });
    println!(
        "nftables backend: {services} Services x {ENDPOINTS} endpoints (ClusterIP, TCP), each phase in a fresh network namespace"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());

    let text = kube_proxy_ruleset(services);
    let kube_proxy = time_nft_file("bkp", &text);
    drop(text);
    let ns = Netns::new("btx");
    let ours_text = our_script(&ns, services);
    drop(ns);
    let lines = ours_text.lines().count();
    let ours_nft = time_nft_file("btx", &ours_text);
    drop(ours_text);

    let ns = Netns::new("bag");
    let agent = run_child(&ns, "agent", services);
    drop(ns);
    let ns = Netns::new("brs");
    let restart = run_child(&ns, "restart", services);
    drop(ns);
    let ns = Netns::new("bph");
    let phases = run_child(&ns, "phases", services);
    drop(ns);

    let show = |d: Option<Duration>| match d {
        Some(d) => format!("{:.0} ms", ms(d)),
        None => format!("> {:.0} s (stopped)", NFT_TIMEOUT.as_secs_f64()),
    };
    println!(
        "baseline: nft -f kube-proxy-style ruleset: {}",
        show(kube_proxy)
    );
    println!(
        "baseline: nft -f of our table as a script ({lines} commands): {}",
        show(ours_nft)
    );
    print!("agent:\n{agent}");
    print!("restart:\n{restart}");
    print!("partial syncs, backend alone:\n{phases}");
    let full_sync = value(&agent, "full_sync_ms");
    let baseline = kube_proxy.map(ms).unwrap_or(f64::INFINITY);
    println!(
        "full sync / kube-proxy-style nft -f = {:.2} (target <= 1.5)",
        full_sync / baseline
    );
    if let Some(ours) = ours_nft {
        println!(
            "full sync / nft -f of the same table = {:.2}",
            full_sync / ms(ours)
        );
    }
    let change_p50 = value(&agent, "change_ms p50");
    let peak = value(&agent, "peak_rss_kib") / 1024.0;
    println!("one-endpoint change p50 {change_p50:.2} ms (target < 20 ms); agent peak RSS {peak:.1} MiB (target < 150 MiB)");
    if !full {
        // Test mode: the small run must meet the targets with a wide margin.
        assert!(
            full_sync <= 1.5 * baseline,
            "full sync slower than 1.5x nft -f"
        );
        assert!(change_p50 < 20.0, "one change took {change_p50} ms");
        assert!(peak < 150.0, "agent RSS {peak} MiB");
        assert_eq!(
            value(&restart, "adopt_ops"),
            0.0,
            "a restarted agent rewrote: {restart}"
        );
    }
}
