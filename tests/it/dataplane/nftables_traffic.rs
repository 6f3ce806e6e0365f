//! Real traffic through the nftables backend, in a small cluster of network namespaces on
//! this host: a node where `svcplane node-agent --backend nftables` programs its table, pods
//! on that node and on a second node routed through it, and a client outside the cluster.
//! Every pod runs `svcplane-nettest serve`, answering with its own name, so a probe tells
//! which endpoint a connection reached.
//!
//! ```text
//!  client ──192.168.0.0/24── node-a ──172.16.0.0/30── node-b
//!  .100/.101                 │ .1                        │
//!                            ├─ local pods 10.244.1.x    └─ remote pods 10.244.2.x
//! ```
//!
//! (IPv6 alongside: fd00:192::/64, fd00:172::/64, fd00:244:1::/48, fd00:244:2::/48.)
//!
//! Needs root, `ip` and `nft`, and the `svcplane` binary built into the same target directory
//! (`cargo test --workspace` builds it; else `cargo build --bin svcplane`). Every probe loop is
//! bounded in attempts and time; namespaces and processes go away when a test ends, failed or
//! not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use svcplane_tests::netns::{veth, workspace_binary, Netns, Process};

use crate::NETTEST;
const NODE: &str = "node-a";
const NODE_IP: &str = "192.168.0.1";
const NODE_IP6: &str = "fd00:192::1";
const CLIENT_IP: &str = "192.168.0.100";
const CLIENT_IP_2: &str = "192.168.0.101";
/// Target ports of every pod.
const TCP_PORT: u16 = 8080;
const UDP_PORT: u16 = 5353;

/// A pod: its own namespace, addresses and running server.
struct Pod {
    name: String,
    v4: String,
    v6: String,
    local: bool,
    _server: Process,
    ns: Netns,
}

/// The cluster of one test.
struct Cluster {
    client: Netns,
    node: Netns,
    node_b: Netns,
    pods: Vec<Pod>,
    dir: tempfile::TempDir,
}

fn hosts(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    }
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        let client = Netns::new(&format!("{tag}c"));
        let node = Netns::new(&format!("{tag}n"));
        let node_b = Netns::new(&format!("{tag}b"));
        node.enable_forwarding();
        node_b.enable_forwarding();
        veth(&node, "c0", &client, "eth0");
        node.addr("c0", &format!("{NODE_IP}/24"));
        node.addr("c0", &format!("{NODE_IP6}/64"));
        client.addr("eth0", &format!("{CLIENT_IP}/24"));
        client.addr("eth0", &format!("{CLIENT_IP_2}/24"));
        client.addr("eth0", "fd00:192::100/64");
        client.route("default", NODE_IP);
        client.route("default", NODE_IP6);
        veth(&node, "n2", &node_b, "n1");
        node.addr("n2", "172.16.0.1/30");
        node.addr("n2", "fd00:172::1/64");
        node_b.addr("n1", "172.16.0.2/30");
        node_b.addr("n1", "fd00:172::2/64");
        node.route("10.244.2.0/24", "172.16.0.2");
        node.route("fd00:244:2::/48", "fd00:172::2");
        // Like a real node, node-a routes Service ranges somewhere (here toward node-b):
        // without a route, a packet our table does not DNAT fails routing with "network
        // unreachable" before the filter hooks that reject it could see it.
        node.route("10.96.0.0/16", "172.16.0.2");
        node.route("fd00:96::/64", "fd00:172::2");
        node_b.route("default", "172.16.0.1");
        node_b.route("default", "fd00:172::1");
        Cluster {
            client,
            node,
            node_b,
            pods: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Starts a pod on node-a (`local`) or node-b, serving TCP and UDP on both families.
    fn pod(&mut self, name: &str, local: bool) -> (String, String) {
        let k = self.pods.iter().filter(|p| p.local == local).count() + 1;
        let (host, subnet, v6net) = if local {
            (&self.node, 1, "fd00:244:1")
        } else {
            (&self.node_b, 2, "fd00:244:2")
        };
        let ns = Netns::new(&format!("p{}", &name[..name.len().min(3)]));
        let host_if = format!("p{k}");
        veth(host, &host_if, &ns, "eth0");
        let gw = format!("10.244.{subnet}.{}", 4 * k - 3);
        let v4 = format!("10.244.{subnet}.{}", 4 * k - 2);
        let gw6 = format!("{v6net}:{k}::1");
        let v6 = format!("{v6net}:{k}::2");
        host.addr(&host_if, &format!("{gw}/30"));
        host.addr(&host_if, &format!("{gw6}/64"));
        ns.addr("eth0", &format!("{v4}/30"));
        ns.addr("eth0", &format!("{v6}/64"));
        ns.route("default", &gw);
        ns.route("default", &gw6);
        let tcp4 = format!("{v4}:{TCP_PORT}");
        let tcp6 = format!("[{v6}]:{TCP_PORT}");
        let udp4 = format!("{v4}:{UDP_PORT}");
        let udp6 = format!("[{v6}]:{UDP_PORT}");
        let mut server = ns.spawn(&[
            NETTEST,
            "serve",
            "--name",
            name,
            "--tcp",
            &tcp4,
            "--tcp",
            &tcp6,
            "--udp",
            &udp4,
            "--udp",
            &udp6,
            "--lifetime-ms",
            "300000",
        ]);
        let lines = server.read_until(Duration::from_secs(10), |l| l == "ready");
        assert_eq!(
            lines.last().map(String::as_str),
            Some("ready"),
            "pod {name} did not start: {lines:?}"
        );
        self.pods.push(Pod {
            name: name.into(),
            v4: v4.clone(),
            v6: v6.clone(),
            local,
            _server: server,
            ns,
        });
        (v4, v6)
    }

    fn pod_named(&self, name: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.name == name)
            .expect("pod exists")
    }

    /// Programs node-a once from `objects` (plus its Node) with the CLI, as an operator would.
    fn program(&self, objects: &[Value]) {
        let mut items = vec![node_object()];
        items.extend_from_slice(objects);
        let file = self.dir.path().join("objects.json");
        std::fs::write(
            &file,
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
                .unwrap(),
        )
        .unwrap();
        let out = self
            .node
            .command(workspace_binary("svcplane"))
            .args([
                "node-agent",
                "--backend",
                "nftables",
                "--once",
                "--node-name",
                NODE,
            ])
            .args([
                "--cluster-cidr",
                "10.244.0.0/16,fd00:244::/32",
                "--manifests",
            ])
            .arg(&file)
            .output()
            .expect("svcplane runs");
        assert!(
            out.status.success(),
            "node-agent --once failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Probes `target` `count` times from the client and asserts that every attempt was
    /// refused; returns the probe for further checks.
    #[track_caller]
    fn assert_refused(&self, proto: &str, target: &str, count: u32) -> Probe {
        let p = self.probe(proto, target, count, &[]);
        assert_eq!(p.count("refused"), count, "{target}: {p:?}");
        p
    }

    /// `svcplane-nettest probe` from the client: per-attempt outcomes.
    fn probe(&self, proto: &str, target: &str, count: u32, extra: &[&str]) -> Probe {
        probe_from(&self.client, proto, target, count, extra)
    }
}

/// What one `probe` run saw.
#[derive(Debug)]
struct Probe {
    /// Answers by name, and `refused` / `reset` / `timeout` / `error …` counts.
    outcomes: BTreeMap<String, u32>,
    elapsed: Duration,
}

impl Probe {
    fn answered_by(&self) -> Vec<&str> {
        self.outcomes
            .keys()
            .filter(|k| !is_failure(k))
            .map(String::as_str)
            .collect()
    }

    fn count(&self, outcome: &str) -> u32 {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }

    fn failures(&self) -> u32 {
        self.outcomes
            .iter()
            .filter(|(k, _)| is_failure(k))
            .map(|(_, n)| *n)
            .sum()
    }
}

fn is_failure(outcome: &str) -> bool {
    matches!(outcome, "refused" | "reset" | "timeout") || outcome.starts_with("error")
}

fn probe_from(ns: &Netns, proto: &str, target: &str, count: u32, extra: &[&str]) -> Probe {
    let count_text = count.to_string();
    let mut args = vec![NETTEST, "probe", proto, target, "--count", &count_text];
    if !extra.contains(&"--timeout-ms") {
        args.extend_from_slice(&["--timeout-ms", "1000"]);
    }
    args.extend_from_slice(extra);
    let start = Instant::now();
    let out = ns.exec(&args);
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut outcomes = BTreeMap::new();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| !l.starts_with("summary")) {
        *outcomes.entry(line.to_string()).or_insert(0) += 1;
    }
    Probe { outcomes, elapsed }
}

fn node_object() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {"topology.kubernetes.io/zone": "zone-a"}},
        "status": {"addresses": [
            {"type": "InternalIP", "address": NODE_IP},
            {"type": "InternalIP", "address": NODE_IP6},
        ]},
    })
}

/// A Service in `default`; `spec` is merged over `type: ClusterIP` with one ClusterIP.
fn service(name: &str, spec: Value) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "ClusterIP", "ipFamilyPolicy": "SingleStack"},
    });
    for (k, v) in spec.as_object().expect("spec object") {
        s["spec"][k] = v.clone();
    }
    s
}

fn port(name: &str, protocol: &str, port: u16, node_port: Option<u16>) -> Value {
    let mut p = json!({"name": name, "protocol": protocol, "port": port});
    if let Some(np) = node_port {
        p["nodePort"] = json!(np);
    }
    p
}

/// An endpoint state.
#[derive(Clone, Copy)]
enum State {
    Ready,
    TerminatingServing,
}

/// An EndpointSlice of `service` for the pods named, with both target ports.
fn slice(c: &Cluster, service: &str, family: &str, pods: &[(&str, State)]) -> Value {
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|(name, state)| {
            let pod = c.pod_named(name);
            let address = if family == "IPv6" { &pod.v6 } else { &pod.v4 };
            let (ready, terminating) = match state {
                State::Ready => (true, false),
                State::TerminatingServing => (false, true),
            };
            json!({
                "addresses": [address],
                "nodeName": if pod.local { NODE } else { "node-b" },
                "conditions": {"ready": ready, "serving": true, "terminating": terminating},
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-{}", family.to_lowercase()), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service,
                                "endpointslice.kubernetes.io/managed-by": "svcplane-test"}},
        "addressType": family,
        "ports": [{"name": "tcp", "protocol": "TCP", "port": TCP_PORT},
                  {"name": "udp", "protocol": "UDP", "port": UDP_PORT}],
        "endpoints": endpoints,
    })
}

fn ready(pods: &[&'static str]) -> Vec<(&'static str, State)> {
    pods.iter().map(|p| (*p, State::Ready)).collect()
}

fn tcp_udp(node_ports: Option<(u16, u16)>) -> Value {
    json!([
        port("tcp", "TCP", 80, node_ports.map(|n| n.0)),
        port("udp", "UDP", 53, node_ports.map(|n| n.1)),
    ])
}

/// A cluster with local pods `a1`, `a2` and remote pods `b1`, `b2`.
fn four_pods(tag: &str) -> Cluster {
    let mut c = Cluster::new(tag);
    c.pod("a1", true);
    c.pod("a2", true);
    c.pod("b1", false);
    c.pod("b2", false);
    c
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort();
    v
}

#[test]
fn cluster_ip_node_port_external_ip_and_load_balancer_ip_reach_every_ready_endpoint() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("all");
    let all = ready(&["a1", "a2", "b1", "b2"]);
    c.program(&[
        service(
            "web",
            json!({"type": "LoadBalancer", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "externalIPs": ["172.30.0.10"], "ports": tcp_udp(Some((30080, 30053)))}),
        )
        .tap(|s| s["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}})),
        slice(&c, "web", "IPv4", &all),
    ]);
    let every = vec!["a1", "a2", "b1", "b2"];
    for target in [
        "10.96.0.10:80",
        "192.168.0.1:30080",
        "172.30.0.10:80",
        "203.0.113.10:80",
    ] {
        let p = c.probe("--tcp", target, 60, &[]);
        assert_eq!(p.failures(), 0, "{target}: {p:?}");
        assert_eq!(sorted(p.answered_by()), every, "{target}: {p:?}");
    }
    for target in ["10.96.0.10:53", "192.168.0.1:30053"] {
        let p = c.probe("--udp", target, 60, &[]);
        assert_eq!(p.failures(), 0, "{target}: {p:?}");
        assert_eq!(sorted(p.answered_by()), every, "{target}: {p:?}");
    }
}

#[test]
fn client_ip_affinity_sticks_to_one_endpoint_and_expires() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("aff");
    c.program(&[
        service(
            "sticky",
            json!({"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "ports": tcp_udp(None),
                   "sessionAffinity": "ClientIP",
                   "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 2}}}),
        ),
        slice(&c, "sticky", "IPv4", &ready(&["a1", "a2", "b1", "b2"])),
    ]);
    let first = c.probe("--tcp", "10.96.0.20:80", 30, &[]);
    assert_eq!(first.failures(), 0, "{first:?}");
    assert_eq!(
        first.answered_by().len(),
        1,
        "one endpoint for one client: {first:?}"
    );
    let stuck = first.answered_by()[0].to_string();
    // The kernel forgets the client once the timeout has passed without traffic.
    let listing = c.node.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert!(listing.contains(CLIENT_IP), "no affinity entry:\n{listing}");
    std::thread::sleep(Duration::from_millis(2600));
    let listing = c.node.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert!(
        !listing.contains(CLIENT_IP),
        "affinity entry still there after its timeout:\n{listing}"
    );
    // After expiry a new choice is made: across bounded rounds (each past the timeout),
    // another endpoint answers (4 endpoints: all rounds alike has odds 4^-8).
    let mut seen = vec![stuck.clone()];
    for _ in 0..8 {
        let p = c.probe("--tcp", "10.96.0.20:80", 1, &[]);
        assert_eq!(p.failures(), 0, "{p:?}");
        seen.extend(p.answered_by().iter().map(|s| s.to_string()));
        if seen.iter().any(|s| *s != stuck) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2300));
    }
    assert!(
        seen.iter().any(|s| *s != stuck),
        "always {stuck} after expiry: {seen:?}"
    );
}

#[test]
fn internal_traffic_policy_local_uses_only_local_endpoints_and_rejects_without_one() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("itp");
    c.program(&[
        service(
            "local",
            json!({"clusterIP": "10.96.0.30", "clusterIPs": ["10.96.0.30"], "ports": tcp_udp(None),
                   "internalTrafficPolicy": "Local"}),
        ),
        slice(&c, "local", "IPv4", &ready(&["a1", "b1", "b2"])),
        service(
            "remote-only",
            json!({"clusterIP": "10.96.0.31", "clusterIPs": ["10.96.0.31"], "ports": tcp_udp(None),
                   "internalTrafficPolicy": "Local"}),
        ),
        slice(&c, "remote-only", "IPv4", &ready(&["b1", "b2"])),
    ]);
    let p = c.probe("--tcp", "10.96.0.30:80", 30, &[]);
    assert_eq!(p.failures(), 0, "{p:?}");
    assert_eq!(p.answered_by(), vec!["a1"], "{p:?}");
    c.assert_refused("--tcp", "10.96.0.31:80", 5);
    c.assert_refused("--udp", "10.96.0.31:53", 5);
}

#[test]
fn external_traffic_policy_local_uses_only_local_endpoints_and_rejects_without_one() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("etp");
    c.program(&[
        service(
            "etp",
            json!({"type": "NodePort", "clusterIP": "10.96.0.40", "clusterIPs": ["10.96.0.40"],
                   "ports": tcp_udp(Some((30040, 30041))), "externalTrafficPolicy": "Local"}),
        ),
        slice(&c, "etp", "IPv4", &ready(&["a2", "b1"])),
        service(
            "etp-remote",
            json!({"type": "NodePort", "clusterIP": "10.96.0.41", "clusterIPs": ["10.96.0.41"],
                   "ports": tcp_udp(Some((30042, 30043))), "externalTrafficPolicy": "Local"}),
        ),
        slice(&c, "etp-remote", "IPv4", &ready(&["b1", "b2"])),
    ]);
    let p = c.probe("--tcp", "192.168.0.1:30040", 30, &[]);
    assert_eq!(p.failures(), 0, "{p:?}");
    assert_eq!(p.answered_by(), vec!["a2"], "{p:?}");
    // Cluster traffic of the same Service still uses every endpoint.
    let p = c.probe("--tcp", "10.96.0.40:80", 40, &[]);
    assert_eq!(sorted(p.answered_by()), vec!["a2", "b1"], "{p:?}");
    c.assert_refused("--tcp", "192.168.0.1:30042", 5);
    c.assert_refused("--udp", "192.168.0.1:30043", 5);
}

#[test]
fn terminating_serving_endpoints_carry_traffic_only_when_nothing_is_ready() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("term");
    c.program(&[
        service(
            "mixed",
            json!({"clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.50"], "ports": tcp_udp(None)}),
        ),
        slice(
            &c,
            "mixed",
            "IPv4",
            &[("a1", State::TerminatingServing), ("b1", State::Ready)],
        ),
        service(
            "draining",
            json!({"clusterIP": "10.96.0.51", "clusterIPs": ["10.96.0.51"], "ports": tcp_udp(None)}),
        ),
        slice(
            &c,
            "draining",
            "IPv4",
            &[("a1", State::TerminatingServing), ("b2", State::TerminatingServing)],
        ),
    ]);
    let p = c.probe("--tcp", "10.96.0.50:80", 30, &[]);
    assert_eq!(p.failures(), 0, "{p:?}");
    assert_eq!(p.answered_by(), vec!["b1"], "{p:?}");
    let p = c.probe("--tcp", "10.96.0.51:80", 40, &[]);
    assert_eq!(p.failures(), 0, "{p:?}");
    assert_eq!(sorted(p.answered_by()), vec!["a1", "b2"], "{p:?}");
}

#[test]
fn a_service_without_endpoints_and_an_unallocated_port_are_refused_at_once() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("rej");
    c.program(&[
        service(
            "empty",
            json!({"type": "NodePort", "clusterIP": "10.96.0.60", "clusterIPs": ["10.96.0.60"],
                   "ports": tcp_udp(Some((30060, 30061)))}),
        ),
        slice(&c, "empty", "IPv4", &[]),
        service(
            "one",
            json!({"clusterIP": "10.96.0.61", "clusterIPs": ["10.96.0.61"], "ports": tcp_udp(None)}),
        ),
        slice(&c, "one", "IPv4", &ready(&["a1"])),
    ]);
    for (proto, target) in [
        ("--tcp", "10.96.0.60:80"),
        ("--udp", "10.96.0.60:53"),
        ("--tcp", "192.168.0.1:30060"),
        ("--udp", "192.168.0.1:30061"),
        // A port the ClusterIP does not have.
        ("--tcp", "10.96.0.61:81"),
        ("--udp", "10.96.0.61:54"),
    ] {
        let p = c.assert_refused(proto, target, 5);
        assert!(
            p.elapsed < Duration::from_secs(2),
            "{target}: refusals must be immediate, took {:?}",
            p.elapsed
        );
    }
    let p = c.probe("--tcp", "10.96.0.61:80", 3, &[]);
    assert_eq!(p.answered_by(), vec!["a1"], "{p:?}");
}

#[test]
fn an_endpoint_reaching_itself_through_its_service_is_masqueraded() {
    // Hairpin: without SNAT the pod would get a packet from its own address on eth0 (a
    // martian) and the connection would fail. Covers the slot-map layout (no affinity) and
    // the per-endpoint chains (ClientIP affinity), each decided in postrouting from the
    // `hairpin-endpoints` set.
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("hp");
    c.program(&[
        service(
            "self",
            json!({"clusterIP": "10.96.0.70", "clusterIPs": ["10.96.0.70"], "ports": tcp_udp(None)}),
        ),
        slice(&c, "self", "IPv4", &ready(&["a1"])),
        service(
            "pair",
            json!({"clusterIP": "10.96.0.71", "clusterIPs": ["10.96.0.71"], "ports": tcp_udp(None)}),
        ),
        slice(&c, "pair", "IPv4", &ready(&["a1", "b1"])),
        service(
            "sticky",
            json!({"clusterIP": "10.96.0.72", "clusterIPs": ["10.96.0.72"], "ports": tcp_udp(None),
                   "sessionAffinity": "ClientIP",
                   "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
        ),
        slice(&c, "sticky", "IPv4", &ready(&["a1"])),
    ]);
    let a1 = &c.pod_named("a1").ns;
    for (proto, target) in [
        ("--tcp", "10.96.0.70:80"),
        ("--udp", "10.96.0.70:53"),
        ("--tcp", "10.96.0.72:80"),
        ("--udp", "10.96.0.72:53"),
    ] {
        let p = probe_from(a1, proto, target, 5, &[]);
        assert_eq!(p.failures(), 0, "{target}: {p:?}");
        assert_eq!(p.answered_by(), vec!["a1"], "{target}: {p:?}");
    }
    // Both endpoints, the pod itself among them, answer it (odds of missing one: 2^-39).
    let p = probe_from(a1, "--tcp", "10.96.0.71:80", 40, &[]);
    assert_eq!(p.failures(), 0, "{p:?}");
    assert_eq!(sorted(p.answered_by()), vec!["a1", "b1"], "{p:?}");
}

#[test]
fn load_balancer_source_ranges_admit_only_the_listed_sources() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("lbsr");
    c.program(&[
        service(
            "guarded",
            json!({"type": "LoadBalancer", "clusterIP": "10.96.0.70", "clusterIPs": ["10.96.0.70"],
                   "ports": tcp_udp(Some((30070, 30071))),
                   "loadBalancerSourceRanges": [format!("{CLIENT_IP}/32")]}),
        )
        .tap(|s| s["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.70"}]}})),
        slice(&c, "guarded", "IPv4", &ready(&["a1", "b1"])),
    ]);
    let p = c.probe("--tcp", "203.0.113.70:80", 20, &["--bind", CLIENT_IP]);
    assert_eq!(p.failures(), 0, "{p:?}");
    let p = c.probe(
        "--tcp",
        "203.0.113.70:80",
        3,
        &["--bind", CLIENT_IP_2, "--timeout-ms", "500"],
    );
    assert_eq!(p.count("timeout"), 3, "other sources are dropped: {p:?}");
    // The ranges guard the load-balancer IP only (as upstream): the ClusterIP answers.
    let p = c.probe("--tcp", "10.96.0.70:80", 5, &["--bind", CLIENT_IP_2]);
    assert_eq!(p.failures(), 0, "{p:?}");
}

#[test]
fn ipv6_and_dual_stack_services_reach_their_endpoints() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("six");
    c.program(&[
        service(
            "dual",
            json!({"type": "NodePort", "ipFamilyPolicy": "RequireDualStack",
                   "ipFamilies": ["IPv4", "IPv6"],
                   "clusterIP": "10.96.0.80", "clusterIPs": ["10.96.0.80", "fd00:96::80"],
                   "ports": tcp_udp(Some((30080, 30081)))}),
        ),
        slice(&c, "dual", "IPv4", &ready(&["a1", "b1"])),
        slice(&c, "dual", "IPv6", &ready(&["a2", "b2"])),
        service(
            "v6only",
            json!({"ipFamilies": ["IPv6"], "clusterIP": "fd00:96::81",
                   "clusterIPs": ["fd00:96::81"], "ports": tcp_udp(None)}),
        ),
        slice(&c, "v6only", "IPv6", &ready(&["a1"])),
    ]);
    for (proto, target, want) in [
        ("--tcp", "10.96.0.80:80".to_string(), vec!["a1", "b1"]),
        ("--tcp", "[fd00:96::80]:80".to_string(), vec!["a2", "b2"]),
        ("--udp", "[fd00:96::80]:53".to_string(), vec!["a2", "b2"]),
        (
            "--tcp",
            format!("{}:30080", hosts(NODE_IP6)),
            vec!["a2", "b2"],
        ),
        ("--tcp", "[fd00:96::81]:80".to_string(), vec!["a1"]),
    ] {
        let p = c.probe(proto, &target, 40, &[]);
        assert_eq!(p.failures(), 0, "{target}: {p:?}");
        assert_eq!(sorted(p.answered_by()), want, "{target}: {p:?}");
    }
    c.assert_refused("--tcp", "[fd00:96::81]:81", 3);
}

#[test]
fn cleanup_removes_our_tables_and_leaves_others_untouched() {
    let _heavy = crate::heavy::heavy_blocking();
    let c = four_pods("cln");
    c.node.exec_ok(&["nft", "add table inet foreign"]);
    c.node.exec_ok(&[
        "nft",
        "add chain inet foreign guard { type filter hook forward priority 0 ; }",
    ]);
    c.node
        .exec_ok(&["nft", "add rule inet foreign guard tcp dport 9 drop"]);
    let foreign = c.node.exec_ok(&["nft", "list", "table", "inet", "foreign"]);
    c.program(&[
        service(
            "web",
            json!({"clusterIP": "10.96.0.90", "clusterIPs": ["10.96.0.90"], "ports": tcp_udp(None)}),
        ),
        slice(&c, "web", "IPv4", &ready(&["a1"])),
    ]);
    assert_eq!(
        c.probe("--tcp", "10.96.0.90:80", 2, &[]).answered_by(),
        vec!["a1"]
    );
    let out = c
        .node
        .command(workspace_binary("svcplane"))
        .args([
            "node-agent",
            "--backend",
            "nftables",
            "--cleanup",
            "--node-name",
            NODE,
        ])
        .output()
        .expect("svcplane runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = c.node.exec_ok(&["nft", "list", "tables"]);
    assert_eq!(tables.trim(), "table inet foreign");
    assert_eq!(
        c.node.exec_ok(&["nft", "list", "table", "inet", "foreign"]),
        foreign
    );
    let _ = &c.node_b;
}

/// `value.tap(|v| …)`: edits a JSON value in an expression.
trait Tap {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

// ---------------------------------------------------------------------------------------
// The long-running agent: `svcplane dev` (the embedded API server) inside node-a, and
// `svcplane node-agent --kubeconfig` watching it. Objects change through a kube client on a
// thread inside node-a's namespace.

/// An API server and a watching agent in node-a.
struct Live {
    c: Cluster,
    kubeconfig: String,
    _api: Process,
    _agent: Process,
}

impl Live {
    fn start(c: Cluster) -> Live {
        let dir = c.dir.path();
        let kubeconfig_path = dir.join("kubeconfig");
        let svcplane = workspace_binary("svcplane");
        let api = Process::from_child(
            c.node
                .command(&svcplane)
                .args(["dev", "--no-examples", "--listen", "127.0.0.1:6443"])
                .arg("--kubeconfig-out")
                .arg(&kubeconfig_path)
                .arg("--work-dir")
                .arg(dir.join("dev"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("svcplane dev runs"),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let kubeconfig = loop {
            if let Ok(text) = std::fs::read_to_string(&kubeconfig_path) {
                if !text.is_empty() {
                    break text;
                }
            }
            assert!(
                Instant::now() < deadline,
                "svcplane dev wrote no kubeconfig"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // The Node, created once the API server answers.
        Live::call(&c, &kubeconfig, |client| async move {
            let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match nodes
                    .create(
                        &Default::default(),
                        &serde_json::from_value(node_object()).unwrap(),
                    )
                    .await
                {
                    Ok(_) => return,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "API server not ready: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        let agent = Process::from_child(
            c.node
                .command(&svcplane)
                .args(["node-agent", "--backend", "nftables", "--node-name", NODE])
                .arg("--kubeconfig")
                .arg(&kubeconfig_path)
                .args(["--min-sync-period", "100ms", "--sync-period", "5s"])
                .args(["--cluster-cidr", "10.244.0.0/16,fd00:244::/32"])
                .args(["--healthz-bind-address", "127.0.0.1:10256"])
                .args(["--metrics-bind-address", "127.0.0.1:10249"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("svcplane node-agent runs"),
        );
        Live {
            c,
            kubeconfig,
            _api: api,
            _agent: agent,
        }
    }

    /// Runs `f` with a kube client on a thread inside node-a.
    fn call<T, F, Fut>(c: &Cluster, kubeconfig: &str, f: F) -> T
    where
        T: Send,
        F: FnOnce(kube::Client) -> Fut + Send,
        Fut: std::future::Future<Output = T>,
    {
        c.node.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    let client = svcplane_tests::client_from_kubeconfig(kubeconfig).await;
                    f(client).await
                })
        })
    }

    /// Creates or replaces Services and EndpointSlices (server-side apply).
    fn apply(&self, objects: Vec<Value>) {
        Live::call(&self.c, &self.kubeconfig, |client| async move {
            use kube::api::{DynamicObject, Patch, PatchParams};
            use kube::discovery::ApiResource;
            for object in objects {
                let kind = object["kind"].as_str().unwrap_or_default().to_string();
                let api: kube::Api<DynamicObject> = match kind.as_str() {
                    "LoadBalancerIPPool" => kube::Api::all_with(
                        client.clone(),
                        &ApiResource::erase::<svcplane_api::LoadBalancerIPPool>(&()),
                    ),
                    "Service" => kube::Api::namespaced_with(
                        client.clone(),
                        "default",
                        &ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
                    ),
                    "EndpointSlice" => kube::Api::namespaced_with(
                        client.clone(),
                        "default",
                        &ApiResource::erase::<k8s_openapi::api::discovery::v1::EndpointSlice>(&()),
                    ),
                    other => panic!("cannot apply {other}"),
                };
                let name = object["metadata"]["name"].as_str().unwrap().to_string();
                api.patch(
                    &name,
                    &PatchParams::apply("nftables-traffic").force(),
                    &Patch::Apply(&object),
                )
                .await
                .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
            }
        })
    }

    /// `spec.healthCheckNodePort` the API server allocated for a Service.
    fn health_check_node_port(&self, service: &str) -> u16 {
        let name = service.to_string();
        Live::call(&self.c, &self.kubeconfig, |client| async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Service> =
                kube::Api::namespaced(client, "default");
            let svc = api.get(&name).await.expect("get Service");
            svc.spec
                .and_then(|s| s.health_check_node_port)
                .expect("a healthCheckNodePort") as u16
        })
    }

    /// The first `status.loadBalancer.ingress[].ip` of a Service, once it has one (bounded:
    /// 20 s).
    fn load_balancer_ip(&self, service: &str) -> String {
        let name = service.to_string();
        Live::call(&self.c, &self.kubeconfig, |client| async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Service> =
                kube::Api::namespaced(client, "default");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let svc = api.get(&name).await.expect("get Service");
                let ip = svc
                    .status
                    .and_then(|s| s.load_balancer)
                    .and_then(|lb| lb.ingress)
                    .and_then(|ingress| ingress.into_iter().find_map(|i| i.ip));
                if let Some(ip) = ip {
                    return ip;
                }
                assert!(Instant::now() < deadline, "{name} got no LoadBalancer IP");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// Probes until `want` holds for one whole probe run (bounded: 20 s).
    fn wait_for(&self, proto: &str, target: &str, want: impl Fn(&Probe) -> bool) -> Probe {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.c.probe(proto, target, 4, &["--timeout-ms", "500"]);
            if want(&p) || Instant::now() > deadline {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One HTTP/1.0 GET from the client: status code and body; `None` when nothing answers
/// within 2 s.
fn http_get(ns: &Netns, address: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let address = address.to_string();
    ns.run(move || {
        let addr: std::net::SocketAddr = address.parse().expect("address");
        let mut stream =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: node\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Some((code, body))
    })
}

/// Polls the health-check port until it answers `want` (bounded: 20 s); the last answer.
fn wait_for_health(ns: &Netns, target: &str, want: u16) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = (0, String::new());
    while Instant::now() < deadline {
        if let Some(answer) = http_get(ns, target) {
            last = answer;
            if last.0 == want {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

#[test]
fn no_connection_fails_while_endpoints_are_added_and_removed() {
    let _heavy = crate::heavy::heavy_blocking();
    let mut c = four_pods("atom");
    c.pod("a3", true);
    let live = Live::start(c);
    let c = &live.c;
    live.apply(vec![
        service(
            "churn",
            json!({"clusterIP": "10.96.1.10", "clusterIPs": ["10.96.1.10"], "ports": tcp_udp(None)}),
        ),
        slice(c, "churn", "IPv4", &ready(&["a1", "b1"])),
    ]);
    let p = live.wait_for("--tcp", "10.96.1.10:80", |p| p.failures() == 0);
    assert_eq!(p.failures(), 0, "the Service never worked: {p:?}");
    // A bounded connection loop (300 new connections, 10 ms apart) while the endpoint set
    // changes every 250 ms; removed endpoints keep running, as pods do while draining.
    let mut prober = c.client.spawn(&[
        NETTEST,
        "probe",
        "--tcp",
        "10.96.1.10:80",
        "--count",
        "300",
        "--interval-ms",
        "10",
        "--timeout-ms",
        "2000",
    ]);
    let steps: [&[&str]; 8] = [
        &["a1", "b1", "a2"],
        &["b1", "a2"],
        &["b1", "a2", "b2"],
        &["a2", "b2"],
        &["a2", "b2", "a3"],
        &["a3"],
        &["a3", "a1", "b1"],
        &["b2"],
    ];
    for step in steps {
        std::thread::sleep(Duration::from_millis(250));
        live.apply(vec![slice(c, "churn", "IPv4", &ready(step))]);
    }
    let lines = prober.read_until(Duration::from_secs(120), |l| l.starts_with("summary"));
    let summary = lines.last().cloned().unwrap_or_default();
    assert!(
        summary.starts_with("summary attempts=300 answered=300 "),
        "connections failed during endpoint changes: {summary}\n{}",
        lines.join("\n")
    );
    let names: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|l| !l.starts_with("summary"))
        .map(String::as_str)
        .collect();
    assert!(
        names.len() >= 4,
        "the changes did not reach the kernel during the loop: answered by {names:?}"
    );
}

#[test]
fn health_check_node_port_answers_200_with_local_endpoints_and_503_without() {
    let _heavy = crate::heavy::heavy_blocking();
    let live = Live::start(four_pods("hc"));
    let c = &live.c;
    live.apply(vec![
        service(
            "checked",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                   "clusterIP": "10.96.1.20", "clusterIPs": ["10.96.1.20"],
                   "ports": tcp_udp(None)}),
        ),
        slice(c, "checked", "IPv4", &ready(&["a1", "b1"])),
    ]);
    let port = live.health_check_node_port("checked");
    let target = format!("{NODE_IP}:{port}");
    let (code, body) = wait_for_health(&c.client, &target, 200);
    assert_eq!(code, 200, "{body}");
    let json: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(json["localEndpoints"], 1, "{body}");
    assert_eq!(json["service"]["name"], "checked", "{body}");
    live.apply(vec![slice(c, "checked", "IPv4", &ready(&["b1", "b2"]))]);
    let (code, body) = wait_for_health(&c.client, &target, 503);
    assert_eq!(code, 503, "{body}");
    let json: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(json["localEndpoints"], 0, "{body}");
    // Cluster traffic still reaches every endpoint.
    let p = live.wait_for("--tcp", "10.96.1.20:80", |p| {
        p.failures() == 0 && p.answered_by().len() == 2
    });
    assert_eq!(sorted(p.answered_by()), vec!["b1", "b2"], "{p:?}");
}

/// Issue 12: the LoadBalancer IPAM controller (in `svcplane dev`, which serves class-less
/// Services) hands the Service an address from a pool, and the agent forwards it with
/// `externalTrafficPolicy: Local`: only the local endpoint answers, the health-check node port
/// says 200, and once no endpoint is local the address refuses and the check says 503.
#[test]
fn a_pool_address_with_external_traffic_policy_local_works_end_to_end() {
    let _heavy = crate::heavy::heavy_blocking();
    let live = Live::start(four_pods("pool"));
    let c = &live.c;
    // Like the Service ranges: a packet our table does not DNAT (the rejected ones) must
    // route somewhere, or it fails routing before the filter hooks see it.
    c.node.route("203.0.113.64/28", "172.16.0.2");
    live.apply(vec![
        json!({"apiVersion": "svcplane.io/v1alpha1", "kind": "LoadBalancerIPPool",
               "metadata": {"name": "edge"},
               "spec": {"blocks": [{"cidr": "203.0.113.64/28"}], "avoidBuggyIPs": true}}),
        service(
            "edge",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                   "clusterIP": "10.96.1.30", "clusterIPs": ["10.96.1.30"],
                   "ports": tcp_udp(None)}),
        ),
        slice(c, "edge", "IPv4", &ready(&["a1", "b1"])),
    ]);
    let ip = live.load_balancer_ip("edge");
    let block: ipnet::Ipv4Net = "203.0.113.64/28".parse().unwrap();
    assert!(
        block.contains(&ip.parse::<std::net::Ipv4Addr>().expect("an IPv4 address")),
        "{ip} is not from the pool"
    );
    let target = format!("{ip}:80");
    let p = live.wait_for("--tcp", &target, |p| {
        p.failures() == 0 && p.answered_by() == vec!["a1"]
    });
    assert_eq!(p.failures(), 0, "{p:?}");
    assert_eq!(p.answered_by(), vec!["a1"], "{p:?}");
    let health = format!("{NODE_IP}:{}", live.health_check_node_port("edge"));
    let (code, body) = wait_for_health(&c.client, &health, 200);
    assert_eq!(code, 200, "{body}");
    // No local endpoint left: the address refuses (not a timeout), the check says 503.
    live.apply(vec![slice(c, "edge", "IPv4", &ready(&["b1", "b2"]))]);
    let (code, body) = wait_for_health(&c.client, &health, 503);
    assert_eq!(code, 503, "{body}");
    let p = live.wait_for("--tcp", &target, |p| p.count("refused") == 4);
    assert_eq!(p.count("refused"), 4, "{p:?}");
}

#[test]
fn udp_keeps_working_after_its_only_endpoint_is_replaced() {
    let _heavy = crate::heavy::heavy_blocking();
    // kube-proxy's CleanStaleEntries: the client keeps its source port, so without cleanup
    // its conntrack entry (refreshed by every datagram) would keep steering it to a1, which
    // still runs, long after a1 left the Service.
    let live = Live::start(four_pods("udp"));
    let c = &live.c;
    live.apply(vec![
        service(
            "dns",
            json!({"clusterIP": "10.96.1.30", "clusterIPs": ["10.96.1.30"], "ports": tcp_udp(None)}),
        ),
        slice(c, "dns", "IPv4", &ready(&["a1"])),
    ]);
    let p = live.wait_for("--udp", "10.96.1.30:53", |p| p.answered_by() == ["a1"]);
    assert_eq!(p.answered_by(), vec!["a1"], "{p:?}");
    let fixed_port = ["--bind", "192.168.0.100:41053", "--timeout-ms", "500"];
    let p = c.probe("--udp", "10.96.1.30:53", 2, &fixed_port);
    assert_eq!(p.answered_by(), vec!["a1"], "{p:?}");
    live.apply(vec![slice(c, "dns", "IPv4", &ready(&["a2"]))]);
    let p = live.wait_for("--udp", "10.96.1.30:53", |p| p.answered_by() == ["a2"]);
    assert_eq!(p.answered_by(), vec!["a2"], "{p:?}");
    // Bounded: 2 s, far below the 30 s UDP conntrack timeout a stale entry would live.
    let deadline = Instant::now() + Duration::from_secs(2);
    let p = loop {
        let p = c.probe("--udp", "10.96.1.30:53", 1, &fixed_port);
        if p.answered_by() == ["a2"] || Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(p.answered_by(), vec!["a2"], "stale conntrack entry: {p:?}");
}
