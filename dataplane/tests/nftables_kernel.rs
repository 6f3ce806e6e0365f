//! The nftables backend against a real kernel, each test in a network namespace of its own:
//! what `nft` lists after a sync, that a repeated sync writes nothing, that a partial sync
//! writes only the change, that a full sync repairs a table someone edited, and that
//! `--cleanup` leaves other tables alone. Traffic through these tables is tested in the
//! `svcplane-tests` crate (`tests/it/dataplane/nftables_traffic.rs`).

mod fixtures;
mod netns_support;

use fixtures::{config, ep, model_with, slice, svc, Slice, Svc};
use netns_support::Netns;
use svcplane_dataplane::backend::{Backend, SyncScope};
use svcplane_dataplane::backends::{
    auto_choice, build_backend, probe_ipvs, BackendKind, BackendOptions,
};
use svcplane_dataplane::conntrack::Conntrack;
use svcplane_dataplane::model::ProxyModel;
use svcplane_dataplane::nftables::{NftablesBackend, NftablesOptions, CASCADE_MAX};

fn services() -> Vec<Svc> {
    vec![
        svc("web")
            .cluster_ips(&["10.96.0.10", "fd00:96::10"])
            .set("/spec/ipFamilyPolicy", "RequireDualStack".into())
            .set("/spec/ipFamilies", serde_json::json!(["IPv4", "IPv6"]))
            .type_("NodePort")
            .node_port("http", "TCP", 80, 30080),
        svc("dns")
            .cluster_ips(&["10.96.0.53"])
            .port("dns", "UDP", 53)
            .client_ip_affinity(Some(30)),
        svc("lb")
            .cluster_ips(&["10.96.0.20"])
            .type_("LoadBalancer")
            .node_port("", "TCP", 443, 30443)
            .ingress("203.0.113.7", None)
            .source_ranges(&["198.51.100.0/24"]),
        svc("empty")
            .cluster_ips(&["10.96.0.30"])
            .port("", "TCP", 80),
    ]
}

fn slices() -> Vec<Slice> {
    vec![
        slice("web", "web-v4")
            .port("http", "TCP", 8080)
            .ep(ep("10.244.1.2"))
            .ep(ep("10.244.2.3").local()),
        slice("web", "web-v6")
            .ipv6()
            .port("http", "TCP", 8080)
            .ep(ep("fd00:244::2")),
        slice("dns", "dns-1")
            .port("dns", "UDP", 5353)
            .ep(ep("10.244.1.5")),
        slice("lb", "lb-1")
            .port("", "TCP", 8443)
            .ep(ep("10.244.1.9")),
    ]
}

fn backend(ns: &Netns) -> NftablesBackend {
    ns.run(|| {
        NftablesBackend::new(NftablesOptions {
            cluster_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        })
        .expect("nftables backend in a fresh namespace")
    })
}

fn model() -> ProxyModel {
    model_with(config(), &services(), &slices())
}

#[test]
fn a_full_sync_writes_a_table_nft_can_list_and_a_second_one_writes_nothing() {
    let ns = Netns::new("list");
    let mut b = backend(&ns);
    let m = model();
    let report = b.sync(m.table(), &SyncScope::Full).expect("first sync");
    assert!(report.operations > 50, "{report:?}");
    let v4 = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    for expected in [
        "type nat hook prerouting priority dstnat; policy accept;",
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "10.96.0.10 . tcp . 80 : goto service-",
        "tcp . 30080 : goto service-",
        "192.168.0.1",
        // Without affinity: one fixed rule over slot ranges, 2 endpoints sharing 720,720.
        "meta l4proto tcp dnat ip to numgen random mod 720720 map @service-",
        "typeof numgen random mod 2 : ip daddr . tcp dport",
        "0-360359 : 10.244.1.2 . 8080, 360360-720719 : 10.244.2.3 . 8080",
        // With affinity: a chain per endpoint.
        "meta l4proto udp dnat to 10.244.1.5:5353",
        "ct status dnat ip saddr . ip daddr @hairpin-endpoints meta mark set meta mark | 0x00004000",
        // Hairpin pairs for this node's endpoints only.
        "10.244.2.3 . 10.244.2.3",
        "update @affinity-",
        "flags dynamic,timeout",
        "timeout 30s",
        "ip saddr 198.51.100.0/24 return",
        "10.96.0.30 . tcp . 80 : goto reject-chain",
        "reject with tcp reset",
        "masquerade fully-random",
        "ip saddr 10.244.0.0/16 return",
    ] {
        assert!(v4.contains(expected), "missing {expected:?} in\n{v4}");
    }
    assert!(
        !v4.contains("10.244.1.2 . 10.244.1.2"),
        "an endpoint on another node never reaches itself through this node: no hairpin pair\n{v4}"
    );
    let v6 = ns.exec_ok(&["nft", "list", "table", "ip6", "svcplane"]);
    assert!(
        v6.contains("fd00:96::10 . tcp . 80 : goto service-"),
        "{v6}"
    );
    assert!(v6.contains("0-720719 : fd00:244::2 . 8080"), "{v6}");
    // What nft prints, nft reads back (the listing is valid input).
    let ruleset = ns.exec_ok(&["nft", "list", "ruleset"]);
    let file = std::env::temp_dir().join(format!("{}.nft", ns.name()));
    std::fs::write(&file, ruleset).unwrap();
    let check = ns.exec(&["nft", "-c", "-f", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert!(
        check.status.success(),
        "nft -c rejects its own listing: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let again = b.sync(m.table(), &SyncScope::Full).expect("second sync");
    assert_eq!(again.operations, 0);
    assert!(
        !b.last_sync().read_kernel,
        "nothing else committed: no dump needed"
    );
}

#[test]
fn a_partial_sync_writes_only_the_changed_service() {
    let ns = Netns::new("partial");
    let mut b = backend(&ns);
    let mut m = model();
    b.sync(m.table(), &SyncScope::Full).expect("first sync");
    // One endpoint of `web` goes away.
    m.upsert_slice(
        &slice("web", "web-v4")
            .port("http", "TCP", 8080)
            .ep(ep("10.244.1.2"))
            .build(),
    );
    let changes = m.commit();
    let report = b
        .sync(m.table(), &SyncScope::Services(changes.services.clone()))
        .expect("partial sync");
    // Without affinity only elements change: the slot map loses the second range (its
    // start and end) and the hairpin set the gone (local) endpoint. No rule, no chain.
    assert_eq!(
        report.operations,
        3,
        "{:?}",
        b.plan(m.table(), &SyncScope::Full)
    );
    let v4 = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert!(!v4.contains("10.244.2.3 . 8080"), "{v4}");
    assert!(v4.contains("0-720719 : 10.244.1.2 . 8080"), "{v4}");
    assert!(!v4.contains("10.244.2.3 . 10.244.2.3"), "{v4}");
    // Back to two endpoints: the map is rewritten in slot order.
    m.upsert_slice(
        &slice("web", "web-v4")
            .port("http", "TCP", 8080)
            .ep(ep("10.244.1.2"))
            .ep(ep("10.244.2.4"))
            .build(),
    );
    let changes = m.commit();
    b.sync(m.table(), &SyncScope::Services(changes.services.clone()))
        .expect("partial sync");
    let v4 = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert!(
        v4.contains("0-360359 : 10.244.1.2 . 8080, 360360-720719 : 10.244.2.4 . 8080"),
        "{v4}"
    );
    // With ClientIP affinity the endpoint's chain goes: flushed now, deleted by a sync at
    // least a second later.
    m.upsert_slice(
        &slice("dns", "dns-1")
            .port("dns", "UDP", 5353)
            .ep(ep("10.244.1.6"))
            .build(),
    );
    let changes = m.commit();
    b.sync(m.table(), &SyncScope::Services(changes.services.clone()))
        .expect("partial sync");
    let v4 = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert!(!v4.contains("dnat to 10.244.1.5:5353"), "{v4}");
    assert!(v4.contains("dnat to 10.244.1.6:5353"), "{v4}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let report = b
        .sync(m.table(), &SyncScope::Services(Default::default()))
        .expect("sync");
    assert_eq!(report.operations, 0);
    assert_eq!(b.last_sync().stale_chains_deleted, 1);
    let v4 = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert!(!v4.contains("__10.244.1.5/5353"), "{v4}");
    // A full sync afterwards finds nothing to do (what we hold is what the kernel holds).
    let mut fresh = backend(&ns);
    assert_eq!(
        fresh
            .sync(m.table(), &SyncScope::Full)
            .expect("adopt")
            .operations,
        0
    );
}

#[test]
fn a_full_sync_repairs_what_someone_else_changed() {
    let ns = Netns::new("drift");
    let mut b = backend(&ns);
    let m = model();
    b.sync(m.table(), &SyncScope::Full).expect("first sync");
    let listing = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    ns.exec_ok(&["nft", "flush", "chain", "ip", "svcplane", "services"]);
    ns.exec_ok(&[
        "nft",
        "delete",
        "element",
        "ip",
        "svcplane",
        "cluster-ips",
        "{ 10.96.0.30 }",
    ]);
    ns.exec_ok(&["nft", "add", "chain", "ip", "svcplane", "intruder"]);
    let report = b.sync(m.table(), &SyncScope::Full).expect("repair");
    assert!(b.last_sync().read_kernel);
    assert!(!b.last_sync().rebuilt);
    // 4 rules of `services`, 1 element, 0 for the empty intruder (deleted later).
    assert_eq!(report.operations, 5);
    let repaired = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    assert_eq!(
        repaired.replace("\n\n\tchain intruder {\n\t}\n", "\n"),
        listing,
        "the table is back as it was (apart from the chain waiting for deletion)"
    );
    let again = b.sync(m.table(), &SyncScope::Full).expect("again");
    assert_eq!(again.operations, 0);
}

#[test]
fn a_restarted_agent_adopts_the_table_without_rewriting_it() {
    let ns = Netns::new("restart");
    let m = model();
    backend(&ns)
        .sync(m.table(), &SyncScope::Full)
        .expect("first agent");
    let mut second = backend(&ns);
    let report = second
        .sync(m.table(), &SyncScope::Full)
        .expect("second agent");
    assert!(second.last_sync().read_kernel);
    assert_eq!(
        report.operations,
        0,
        "{:?}",
        second.plan(m.table(), &SyncScope::Full)
    );
}

#[test]
fn changed_hooks_make_a_full_sync_rebuild_the_table() {
    let ns = Netns::new("rebuild");
    let mut b = backend(&ns);
    let m = model();
    b.sync(m.table(), &SyncScope::Full).expect("first sync");
    ns.exec_ok(&["nft", "delete", "chain", "ip", "svcplane", "nat-output"]);
    ns.exec_ok(&[
        "nft",
        "add chain ip svcplane nat-output { type nat hook output priority 50 ; }",
    ]);
    b.sync(m.table(), &SyncScope::Full).expect("rebuild");
    assert!(b.last_sync().rebuilt);
    let listing = ns.exec_ok(&["nft", "list", "chain", "ip", "svcplane", "nat-output"]);
    assert!(listing.contains("priority -100;"), "{listing}");
}

#[test]
fn large_endpoint_sets_pick_through_slot_ranges_or_with_affinity_a_verdict_map() {
    let ns = Netns::new("large");
    let mut b = backend(&ns);
    let n = CASCADE_MAX + 4;
    let big = |name: &str, third: u8| {
        let mut s = slice(name, &format!("{name}-1")).port("", "TCP", 8080);
        for i in 0..n {
            s = s.ep(ep(&format!("10.244.{third}.{}", i + 1)));
        }
        s
    };
    let m = model_with(
        config(),
        &[
            svc("big").cluster_ips(&["10.96.0.99"]).port("", "TCP", 80),
            svc("sticky")
                .cluster_ips(&["10.96.0.98"])
                .port("", "TCP", 80)
                .client_ip_affinity(Some(30)),
        ],
        &[big("big", 3), big("sticky", 4)],
    );
    b.sync(m.table(), &SyncScope::Full).expect("sync");
    let listing = ns.exec_ok(&["nft", "list", "table", "ip", "svcplane"]);
    // 20 endpoints divide 720,720 exactly: 36,036 slots each.
    assert!(listing.contains("0-36035 : 10.244.3.1 . 8080"), "{listing}");
    assert!(
        listing.contains("684684-720719 : 10.244.3.20 . 8080"),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("numgen random mod {n} vmap @service-")),
        "{listing}"
    );
    assert!(listing.contains("type mark : verdict"), "{listing}");
}

#[test]
fn cleanup_removes_our_tables_and_leaves_every_other_table() {
    let ns = Netns::new("cleanup");
    ns.exec_ok(&["nft", "add table inet foreign"]);
    ns.exec_ok(&[
        "nft",
        "add chain inet foreign input { type filter hook input priority 0 ; }",
    ]);
    ns.exec_ok(&["nft", "add rule inet foreign input tcp dport 22 accept"]);
    let foreign = ns.exec_ok(&["nft", "list", "table", "inet", "foreign"]);
    let mut b = backend(&ns);
    b.sync(model().table(), &SyncScope::Full).expect("sync");
    b.cleanup().expect("cleanup");
    let tables = ns.exec_ok(&["nft", "list", "tables"]);
    assert_eq!(tables.trim(), "table inet foreign");
    assert_eq!(
        ns.exec_ok(&["nft", "list", "table", "inet", "foreign"]),
        foreign
    );
    // Cleaning up again, with nothing of ours left, succeeds.
    b.cleanup().expect("second cleanup");
}

#[test]
fn replacing_a_udp_endpoint_deletes_the_flows_it_answered() {
    // kube-proxy's CleanStaleEntries (pkg/proxy/conntrack/cleanup.go): after the sync that
    // removed 10.244.1.5, the flow DNATed to it must not keep steering the client there.
    let ns = Netns::new("ctclean");
    for addr in ["10.244.1.5/32", "10.244.1.6/32"] {
        ns.exec_ok(&["ip", "addr", "add", addr, "dev", "lo"]);
    }
    ns.exec_ok(&["ip", "route", "add", "10.96.0.0/16", "dev", "lo"]);
    let mut b = backend(&ns);
    let mut m = model();
    b.sync(m.table(), &SyncScope::Full).expect("first sync");
    let flows_to_dns = |ns: &Netns| {
        ns.run(|| {
            let mut conntrack = Conntrack::open().expect("ctnetlink in the namespace");
            conntrack
                .udp_entries()
                .expect("dump")
                .entries
                .into_iter()
                .filter(|e| e.original.src.port() == 40053)
                .map(|e| (e.original.dst.to_string(), e.reply.src.ip().to_string()))
                .collect::<Vec<_>>()
        })
    };
    ns.run(|| {
        let socket = std::net::UdpSocket::bind("0.0.0.0:40053").expect("bind");
        socket.send_to(b"ping", "10.96.0.53:53").expect("send");
    });
    assert_eq!(
        flows_to_dns(&ns),
        vec![("10.96.0.53:53".to_string(), "10.244.1.5".to_string())],
        "our nat-output chain DNATs the datagram to the only endpoint"
    );
    m.upsert_slice(
        &slice("dns", "dns-1")
            .port("dns", "UDP", 5353)
            .ep(ep("10.244.1.6"))
            .build(),
    );
    let changes = m.commit();
    let report = b
        .sync(m.table(), &SyncScope::Services(changes.services.clone()))
        .expect("partial sync");
    assert_eq!(report.conntrack_deleted, 1, "{:?}", b.last_sync());
    assert_eq!(flows_to_dns(&ns), Vec::<(String, String)>::new());
    // A sync that changes nothing about UDP cleans nothing.
    let report = b.sync(m.table(), &SyncScope::Full).expect("full sync");
    assert_eq!(report.conntrack_deleted, 0);
    assert!(b.last_sync().conntrack.is_none());
}

#[test]
fn backend_auto_runs_nftables_on_a_kernel_without_ipvs() {
    // Whether the kernel has IPVS, read independently of our probe: /proc/net/ip_vs exists
    // once ip_vs is loaded; the probe may load it on demand, so look after probing.
    let ns = Netns::new("auto");
    let choice = ns.run(|| auto_choice(probe_ipvs()));
    let kernel_has_ipvs = std::path::Path::new("/proc/net/ip_vs").exists();
    if kernel_has_ipvs {
        assert_eq!(choice.kind, BackendKind::Ipvs, "{choice:?}");
        return;
    }
    assert_eq!(choice.kind, BackendKind::Nftables, "{choice:?}");
    assert!(choice.reason.contains("no IPVS"), "{choice:?}");
    let name = ns.run(|| {
        build_backend(BackendKind::Auto, &BackendOptions::default())
            .expect("auto builds a backend")
            .name()
    });
    assert_eq!(name, "nftables");
}
