//! Stale UDP conntrack cleanup against the real kernel, in a network namespace: flows are
//! created with real UDP packets through nftables DNAT rules, then cleaned as kube-proxy's
//! `CleanStaleEntries` would, and checked with the kernel's own listing.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use common::NetNs;
use svcplane_dataplane::conntrack::{
    Conntrack, ConntrackEntry, ServiceDestination, UdpServiceEndpoints,
};

/// A namespace where UDP to Service addresses is DNATed like a proxy would:
/// - `10.96.0.10:53`: client port 40001 → 10.244.1.5:5353, port 40002 → 10.244.2.5:5353;
/// - `10.96.0.11:53` and `10.96.0.12:53`: no rule (a Service without endpoints, a non-Service);
/// - NodePort `192.168.77.1:30053` → 10.244.2.5:5353;
/// - `[fd00:96::10]:53`: port 40001 → [fd00::5]:5353, port 40002 → [fd00::6]:5353.
fn namespace_with_dnat() -> NetNs {
    common::require(&["ip", "nft"]);
    let ns = NetNs::new("ct");
    for addr in ["10.244.1.5/32", "10.244.2.5/32", "192.168.77.1/32"] {
        ns.ip(&["addr", "add", addr, "dev", "lo"]);
    }
    for addr in ["fd00::5/128", "fd00::6/128"] {
        ns.ip(&["-6", "addr", "add", addr, "dev", "lo"]);
    }
    ns.ip(&["route", "add", "10.96.0.0/16", "dev", "lo"]);
    ns.ip(&["-6", "route", "add", "fd00:96::/64", "dev", "lo"]);
    ns.exec(
        "nft",
        &["-f", "-"],
        Some(
            "table inet svcplane_test {
               chain output {
                 type nat hook output priority -100;
                 ip daddr 10.96.0.10 udp dport 53 udp sport 40001 dnat ip to 10.244.1.5:5353
                 ip daddr 10.96.0.10 udp dport 53 udp sport 40002 dnat ip to 10.244.2.5:5353
                 ip daddr 192.168.77.1 udp dport 30053 dnat ip to 10.244.2.5:5353
                 ip6 daddr fd00:96::10 udp dport 53 udp sport 40001 dnat ip6 to [fd00::5]:5353
                 ip6 daddr fd00:96::10 udp dport 53 udp sport 40002 dnat ip6 to [fd00::6]:5353
                 ip daddr 10.96.0.20 udp dport 53 dnat ip to 10.244.2.5:5353
               }
             }",
        ),
    );
    ns
}

/// Sends one datagram from `from_port` to `to`, which creates (or refreshes) a conntrack entry.
fn send(from_port: u16, to: &str) {
    let to: SocketAddr = to.parse().unwrap();
    let bind: SocketAddr = if to.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], from_port))
    } else {
        SocketAddr::from(([0u16; 8], from_port))
    };
    let socket = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
    socket
        .send_to(b"ping", to)
        .unwrap_or_else(|e| panic!("send to {to}: {e}"));
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip(addr: &str, port: u16, serving: &[&str]) -> UdpServiceEndpoints {
    UdpServiceEndpoints {
        destination: ServiceDestination::Vip {
            addr: ip(addr),
            port,
        },
        serving_endpoints: serving.iter().map(|s| ip(s)).collect(),
    }
}

/// (client port, original destination, reply source) of an entry, to compare without the
/// kernel-chosen client address.
fn flow(entry: &ConntrackEntry) -> (u16, SocketAddr, IpAddr) {
    (
        entry.original.src.port(),
        entry.original.dst,
        entry.reply.src.ip(),
    )
}

fn ours(entries: &[ConntrackEntry]) -> HashSet<(u16, SocketAddr, IpAddr)> {
    entries
        .iter()
        .filter(|e| (40000..42000).contains(&e.original.src.port()))
        .map(flow)
        .collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The kernel's own view of the table (`/proc/net/nf_conntrack`, or `conntrack -L` when the
/// tool is installed): original destination and client port of each UDP entry.
fn kernel_listing(ns: &NetNs) -> Option<HashSet<(u16, String)>> {
    let text = if std::path::Path::new("/proc/net/nf_conntrack").exists() {
        ns.exec("cat", &["/proc/net/nf_conntrack"], None)
    } else if std::process::Command::new("conntrack")
        .arg("--version")
        .output()
        .is_ok()
    {
        ns.exec("conntrack", &["-L", "-p", "udp"], None)
    } else {
        return None;
    };
    Some(
        text.lines()
            .filter(|line| line.contains(" udp "))
            .filter_map(|line| {
                let field = |key: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(key))
                        .map(str::to_string)
                };
                let sport: u16 = field("sport=")?.parse().ok()?;
                let dst: IpAddr = field("dst=")?.parse().ok()?;
                let dport: u16 = field("dport=")?.parse().ok()?;
                Some((sport, SocketAddr::new(dst, dport).to_string()))
            })
            .filter(|(sport, _)| (40000..42000).contains(sport))
            .collect(),
    )
}

#[test]
fn stale_udp_entries_are_deleted_and_serving_ones_kept() {
    let ns = namespace_with_dnat();
    let (before, report, after) = ns.run(|| {
        send(40001, "10.96.0.10:53"); // → 10.244.1.5, still serving
        send(40002, "10.96.0.10:53"); // → 10.244.2.5, endpoint gone
        send(40003, "10.96.0.11:53"); // never DNATed: Service had no endpoint
        send(40004, "192.168.77.1:30053"); // NodePort → 10.244.2.5, gone
        send(40005, "10.96.0.12:53"); // not a Service
        send(40001, "[fd00:96::10]:53"); // → fd00::5, still serving
        send(40002, "[fd00:96::10]:53"); // → fd00::6, gone
        let mut conntrack = Conntrack::open().expect("open ctnetlink");
        let before = conntrack.udp_entries().expect("dump");
        let services = [
            vip("10.96.0.10", 53, &["10.244.1.5"]),
            vip("10.96.0.11", 53, &["10.244.1.5"]),
            vip("fd00:96::10", 53, &["fd00::5"]),
            UdpServiceEndpoints {
                destination: ServiceDestination::NodePort { port: 30053 },
                serving_endpoints: [ip("10.244.1.5")].into(),
            },
        ];
        let report = conntrack.clean_stale_udp(&services).expect("clean");
        let after = conntrack.udp_entries().expect("dump again");
        (before, report, after)
    });

    assert_eq!(before.undecodable, 0);
    assert_eq!(
        ours(&before.entries),
        HashSet::from([
            (40001, sa("10.96.0.10:53"), ip("10.244.1.5")),
            (40002, sa("10.96.0.10:53"), ip("10.244.2.5")),
            (40003, sa("10.96.0.11:53"), ip("10.96.0.11")),
            (40004, sa("192.168.77.1:30053"), ip("10.244.2.5")),
            (40005, sa("10.96.0.12:53"), ip("10.96.0.12")),
            (40001, sa("[fd00:96::10]:53"), ip("fd00::5")),
            (40002, sa("[fd00:96::10]:53"), ip("fd00::6")),
        ]),
        "the dump shows every flow with its DNAT (reply source)"
    );
    assert_eq!(report.stale, 4, "{report:?}");
    assert_eq!(report.deletions.deleted, 4, "{report:?}");
    assert!(report.deletions.failed.is_empty(), "{report:?}");
    let kept = HashSet::from([
        (40001, sa("10.96.0.10:53"), ip("10.244.1.5")),
        (40005, sa("10.96.0.12:53"), ip("10.96.0.12")),
        (40001, sa("[fd00:96::10]:53"), ip("fd00::5")),
    ]);
    assert_eq!(ours(&after.entries), kept);
    if let Some(listing) = kernel_listing(&ns) {
        let want: HashSet<(u16, String)> = kept
            .iter()
            .map(|(port, dst, _)| (*port, dst.to_string()))
            .collect();
        assert_eq!(listing, want, "the kernel's own listing agrees");
    }
}

#[test]
fn many_stale_entries_are_deleted_in_one_batch() {
    let ns = namespace_with_dnat();
    const FLOWS: u16 = 600;
    let (report, counters_before, counters_after, remaining) = ns.run(|| {
        for port in 41000..41000 + FLOWS {
            send(port, "10.96.0.20:53"); // DNATed to 10.244.2.5, whose endpoint is gone
        }
        let mut conntrack = Conntrack::open().expect("open ctnetlink");
        let dump = conntrack.udp_entries().expect("dump");
        let stale = svcplane_dataplane::conntrack::stale_entries(
            &dump.entries,
            &[vip("10.96.0.20", 53, &["10.244.1.5"])],
        );
        assert_eq!(stale.len(), FLOWS as usize);
        let counters_before = conntrack.counters();
        let report = conntrack.delete(&stale).expect("delete");
        let counters_after = conntrack.counters();
        // Deleting them again: every one is already gone, none fails.
        let again = conntrack.delete(&stale[..10]).expect("delete again");
        assert_eq!((again.deleted, again.already_gone), (0, 10));
        let remaining = ours(&conntrack.udp_entries().expect("dump").entries).len();
        (report, counters_before, counters_after, remaining)
    });
    assert_eq!(report.deleted, FLOWS as usize);
    assert_eq!(remaining, 0);
    let sends = counters_after.send_calls - counters_before.send_calls;
    let recvs = counters_after.recv_calls - counters_before.recv_calls;
    assert_eq!(
        counters_after.messages_sent - counters_before.messages_sent,
        u64::from(FLOWS)
    );
    eprintln!("{FLOWS} deletions: {sends} sends, {recvs} receives");
    // 600 deletions of ~60 bytes fit one buffer: one send and one answer (the fence's ACK).
    assert!(
        sends <= 2 && recvs <= 2,
        "{sends} sends, {recvs} receives for {FLOWS} deletions"
    );
}

#[test]
fn a_refused_deletion_in_a_batch_is_attributed_to_its_own_entry() {
    let ns = namespace_with_dnat();
    let (outcome, remaining) = ns.run(|| {
        send(40001, "10.96.0.10:53");
        send(40002, "10.96.0.10:53");
        let mut conntrack = Conntrack::open().expect("open ctnetlink");
        let dump = conntrack.udp_entries().expect("dump");
        let mut entries: Vec<ConntrackEntry> = dump
            .entries
            .iter()
            .filter(|e| e.original.dst == sa("10.96.0.10:53"))
            .copied()
            .collect();
        entries.sort_by_key(|e| e.original.src.port());
        assert_eq!(entries.len(), 2, "{entries:?}");
        // An IPv4 tuple whose destination is IPv6: the kernel refuses it (EINVAL).
        let mut refused = entries[0];
        refused.original.dst = sa("[fd00:96::10]:53");
        let mut gone = entries[0];
        gone.original.src.set_port(40999);
        let outcome = conntrack
            .delete(&[entries[0], refused, gone, entries[1]])
            .expect("delete");
        let remaining = ours(&conntrack.udp_entries().expect("dump").entries).len();
        (outcome, remaining)
    });
    assert_eq!(
        (outcome.deleted, outcome.already_gone),
        (2, 1),
        "{outcome:?}"
    );
    assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
    let (entry, errno) = outcome.failed[0];
    assert_eq!(entry.original.dst, sa("[fd00:96::10]:53"));
    assert_eq!(errno, nix::errno::Errno::EINVAL);
    assert_eq!(remaining, 0);
}
