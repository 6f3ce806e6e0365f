//! The `svcplane node-agent` binary with the nftables backend, run as an operator would
//! (`--manifests DIR --once`, then `--cleanup`) inside a network namespace this test creates:
//! the table `nft` lists is ours and holds the manifests' Service, `--cleanup` removes it and
//! nothing else, and `--backend auto` picks nftables on a kernel without IPVS and says why.
//! Traffic through the table is tested in `nftables_traffic`.
//!
//! Needs root, `ip` and `nft`, and the `svcplane` binary built into the same target directory
//! (`cargo build --bin svcplane`).

use std::path::Path;
use std::process::Output;

use svcplane_tests::netns::{workspace_binary, Netns};

const MANIFESTS: &str = r#"apiVersion: v1
kind: Node
metadata: {name: node-a}
status:
  addresses: [{type: InternalIP, address: 192.0.2.10}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.200.10
  clusterIPs: [10.96.200.10]
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30999}
  - {name: dns, protocol: UDP, port: 53, targetPort: 5353}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, protocol: TCP, port: 8080}
- {name: dns, protocol: UDP, port: 5353}
endpoints:
- addresses: [10.244.9.2]
  conditions: {ready: true}
  nodeName: node-a
"#;

fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("objects.yaml"), MANIFESTS).expect("write manifests");
    dir
}

/// `svcplane node-agent --node-name node-a ARGS…` inside `ns`; fails the test on a non-zero
/// exit, showing its output.
fn node_agent(ns: &Netns, args: &[&str], manifests: Option<&Path>) -> Output {
    let mut command = ns.command(workspace_binary("svcplane"));
    command
        .args(["node-agent", "--node-name", "node-a"])
        .args(args);
    if let Some(dir) = manifests {
        command.arg("--manifests").arg(dir);
    }
    let out = command.output().expect("svcplane runs");
    assert!(
        out.status.success(),
        "node-agent {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A table someone else owns: it must survive our `--cleanup` unchanged.
fn foreign_table(ns: &Netns) -> String {
    ns.exec_ok(&["nft", "add table inet foreign"]);
    ns.exec_ok(&[
        "nft",
        "add chain inet foreign guard { type filter hook forward priority 0 ; }",
    ]);
    ns.exec_ok(&["nft", "add rule inet foreign guard tcp dport 9 drop"]);
    ns.exec_ok(&["nft", "list", "table", "inet", "foreign"])
}

#[test]
fn node_agent_once_programs_our_table_and_cleanup_removes_only_it() {
    let _heavy = crate::heavy::heavy_blocking();
    let ns = Netns::new("nag");
    let foreign = foreign_table(&ns);
    let dir = manifests();
    node_agent(
        &ns,
        &[
            "--backend",
            "nftables",
            "--once",
            "--cluster-cidr",
            "10.244.0.0/16",
        ],
        Some(dir.path()),
    );
    let ours = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    for expected in [
        "10.96.200.10 . tcp . 80 : goto",
        "10.96.200.10 . udp . 53 : goto",
        "tcp . 30999 : goto",
        // One endpoint: the whole slot range (no ClientIP affinity, so no endpoint chain).
        "dnat ip to numgen random mod 720720 map @service-",
        "0-720719 : 10.244.9.2 . 8080",
        "0-720719 : 10.244.9.2 . 5353",
    ] {
        assert!(ours.contains(expected), "missing {expected:?} in:\n{ours}");
    }
    // A Service with only IPv4 rows needs no IPv6 table.
    assert!(!ns
        .exec(&["nft", "list", "table", "ip6", "svcplane"])
        .status
        .success());

    // A second --once against the same kernel state leaves the table as it was.
    node_agent(
        &ns,
        &[
            "--backend",
            "nftables",
            "--once",
            "--cluster-cidr",
            "10.244.0.0/16",
        ],
        Some(dir.path()),
    );
    assert_eq!(
        ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]),
        ours
    );

    node_agent(&ns, &["--backend", "nftables", "--cleanup"], None);
    assert_eq!(
        ns.exec_ok(&["nft", "list", "tables"]).trim(),
        "table inet foreign"
    );
    assert_eq!(
        ns.exec_ok(&["nft", "list", "table", "inet", "foreign"]),
        foreign
    );
    // Cleaning up again, with nothing of ours left, succeeds and changes nothing.
    node_agent(&ns, &["--backend", "nftables", "--cleanup"], None);
    assert_eq!(
        ns.exec_ok(&["nft", "list", "tables"]).trim(),
        "table inet foreign"
    );
}

#[test]
fn node_agent_backend_auto_picks_nftables_on_a_kernel_without_ipvs_and_says_why() {
    let _heavy = crate::heavy::heavy_blocking();
    let ns = Netns::new("nau");
    let dir = manifests();
    let out = node_agent(&ns, &["--backend", "auto", "--once"], Some(dir.path()));
    let log = text(&out);
    // Read after the run: resolving the IPVS netlink family may load ip_vs on demand.
    if Path::new("/proc/net/ip_vs").exists() {
        assert!(log.contains("the kernel has IPVS"), "{log}");
        return;
    }
    assert!(log.contains("--backend auto"), "{log}");
    assert!(log.contains("nftables"), "{log}");
    assert!(log.contains("the kernel has no IPVS"), "{log}");
    let ours = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert!(ours.contains("0-720719 : 10.244.9.2 . 8080"), "{ours}");
    node_agent(&ns, &["--backend", "auto", "--cleanup"], None);
    assert_eq!(ns.exec_ok(&["nft", "list", "tables"]).trim(), "");
}
