//! The real-kernel harness works end to end: Debian's kernel boots in qemu, IPVS in
//! masquerading mode forwards real TCP and UDP traffic from a client namespace to two backend
//! namespaces behind veth pairs, and the nftables pieces the IPVS backend's own table needs
//! (NAT, masquerade, fib, ct, reject, sets) load. Fails, never skips, when the VM cannot boot
//! (`scripts/install-test-deps.sh` prepares it).

use std::collections::BTreeMap;
use std::time::Duration;

use svcplane_tests::vm::{Guest, GuestRun};

use crate::NETTEST;

/// Guest topology: backends b1 and b2 and a client c1, each a network namespace behind a veth
/// pair to the guest's root namespace, which routes between them (IPv4 and IPv6) and owns the
/// VIPs on a dummy link. Loopback and routes are up before `ipvsadm -a ... -m` (it refuses a real server with
/// "address not unicast" otherwise).
const TOPOLOGY: &str = r#"
set -e
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.vs.conntrack=1 \
  net.ipv4.icmp_ratelimit=0
ip link add svcplane0 type dummy
ip link set svcplane0 up
ip addr add 10.96.0.10/32 dev svcplane0
ip -6 addr add fd00:96::10/128 dev svcplane0 nodad
n=0
for ns in b1 b2 c1; do
  n=$((n + 1))
  ip netns add $ns
  ip link add v$ns type veth peer name eth0 netns $ns
  ip addr add 10.244.$n.1/24 dev v$ns
  ip link set v$ns up
  ip -n $ns link set lo up
  ip -n $ns link set eth0 up
  ip -n $ns addr add 10.244.$n.2/24 dev eth0
  ip -n $ns route add default via 10.244.$n.1
  ip -6 addr add fd00:244:$n::1/64 dev v$ns nodad
  ip -n $ns -6 addr add fd00:244:$n::2/64 dev eth0 nodad
  ip -n $ns -6 route add default via fd00:244:$n::1
  ip netns exec $ns sysctl -qw net.ipv4.icmp_ratelimit=0
done
for b in b1 b2; do
  ip netns exec $b svcplane-nettest serve --name $b --tcp 0.0.0.0:8080 --udp 0.0.0.0:8080 \
    --tcp [::]:8081 --lifetime-ms 60000 >/tmp/$b.log 2>&1 &
done
retry 100 0.1 grep -q ready /tmp/b1.log
retry 100 0.1 grep -q ready /tmp/b2.log
"#;

/// Probe output lines (name per attempt) counted, without the summary.
fn answers(section: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in section.lines().filter(|l| !l.starts_with("summary ")) {
        *counts.entry(line.to_string()).or_insert(0) += 1;
    }
    counts
}

fn report(test: &str, run: &GuestRun) {
    println!(
        "{test}: boot to script {:.2?}, boot to result {:.2?}",
        run.boot_time, run.total_time
    );
}

#[test]
fn ipvs_masquerade_rr_spreads_tcp_udp_and_ipv6_over_both_backends() {
    let _heavy = crate::heavy::heavy_blocking();
    let script = format!(
        r#"{TOPOLOGY}
# Conntrack hooks are registered per namespace on demand, by the first rule that needs them (a
# ct match or masquerade, as in the IPVS backend's own table); then IPVS (vs.conntrack=1)
# leaves entries to inspect.
nft add table ip smoke
nft add chain ip smoke postrouting '{{ type nat hook postrouting priority srcnat; }}'
nft add rule ip smoke postrouting ct state new counter
for proto in -t -u; do
  ipvsadm -A $proto 10.96.0.10:80 -s rr
  ipvsadm -a $proto 10.96.0.10:80 -r 10.244.1.2:8080 -m
  ipvsadm -a $proto 10.96.0.10:80 -r 10.244.2.2:8080 -m
done
ipvsadm -A -t [fd00:96::10]:80 -s rr
ipvsadm -a -t [fd00:96::10]:80 -r [fd00:244:1::2]:8081 -m
ipvsadm -a -t [fd00:96::10]:80 -r [fd00:244:2::2]:8081 -m
section ipvs
ipvsadm -Ln
section tcp
ip netns exec c1 svcplane-nettest probe --tcp 10.96.0.10:80 --count 10 --timeout-ms 3000
section udp
ip netns exec c1 svcplane-nettest probe --udp 10.96.0.10:80 --count 10 --timeout-ms 3000
section tcp6
ip netns exec c1 svcplane-nettest probe --tcp [fd00:96::10]:80 --count 4 --timeout-ms 3000
section conntrack
conntrack -L -p udp 2>&1
section closed-port
ip netns exec c1 svcplane-nettest probe --tcp 10.96.0.10:81 --count 1 --timeout-ms 3000
"#
    );
    let run = Guest::new()
        .binary(NETTEST)
        .script(script)
        .timeout(Duration::from_secs(60))
        .run();
    report("ipvs smoke", &run);
    run.assert_success();

    let ipvs = run.section("ipvs").unwrap();
    for (proto, label) in [("TCP", "tcp"), ("UDP", "udp")] {
        assert!(
            ipvs.contains(&format!("{proto}  10.96.0.10:80 rr")),
            "{label} virtual service missing:\n{ipvs}"
        );
    }
    for real in ["10.244.1.2:8080", "10.244.2.2:8080"] {
        // Once for TCP, once for UDP (the IPv6 service uses port 8081).
        let lines: Vec<&str> = ipvs.lines().filter(|l| l.contains(real)).collect();
        assert_eq!(lines.len(), 2, "{real} once per protocol:\n{ipvs}");
        assert!(lines.iter().all(|l| l.contains("Masq")), "{ipvs}");
    }

    // Round robin over new connections (new UDP sockets) alternates strictly: 5 and 5.
    for proto in ["tcp", "udp"] {
        let section = run.section(proto).unwrap();
        let counts = answers(&section);
        assert_eq!(
            counts,
            BTreeMap::from([("b1".to_string(), 5), ("b2".to_string(), 5)]),
            "{proto} answers:\n{section}"
        );
        assert!(
            section.contains("summary attempts=10 answered=10 "),
            "{section}"
        );
    }

    // The same over IPv6.
    let tcp6 = run.section("tcp6").unwrap();
    assert_eq!(
        answers(&tcp6),
        BTreeMap::from([("b1".to_string(), 2), ("b2".to_string(), 2)]),
        "tcp6 answers:\n{tcp6}"
    );
    assert!(ipvs.contains("TCP  [fd00:96::10]:80 rr"), "{ipvs}");

    // IPVS with net.ipv4.vs.conntrack=1 leaves one conntrack entry per UDP flow, toward a
    // real server; the guest's conntrack tool reads them (what graceful-termination tests need
    // to check stale UDP entries are deleted).
    let conntrack = run.section("conntrack").unwrap();
    let flows = conntrack
        .lines()
        .filter(|l| l.contains("dst=10.96.0.10") && l.contains("dport=80"))
        .count();
    assert_eq!(flows, 10, "one conntrack entry per UDP probe:\n{conntrack}");

    // A port with no virtual service on the VIP: nothing listens on the dummy link, so the
    // guest kernel answers with a reset (refused).
    let closed = run.section("closed-port").unwrap();
    assert_eq!(closed.lines().next(), Some("refused"), "{closed}");
}

#[test]
fn guest_kernel_runs_the_nftables_pieces_the_ipvs_backend_needs() {
    let _heavy = crate::heavy::heavy_blocking();
    // One table with what the IPVS backend's own table uses: a NAT postrouting chain with
    // masquerade, fib and ct matches, a reject, and a set of VIP:port pairs.
    let ruleset = r#"
table ip svcplane_smoke {
  set cluster_ips {
    type ipv4_addr . inet_proto . inet_service
    elements = { 10.96.0.10 . tcp . 80 }
  }
  chain filter {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    ip daddr 10.96.0.0/12 ip daddr . meta l4proto . th dport != @cluster_ips reject
    fib daddr type local counter
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip saddr 10.244.0.0/16 masquerade
  }
}
"#;
    let run = Guest::new()
        .file_contents("/etc/smoke.nft", ruleset)
        .script(
            "set -e\nnft -f /etc/smoke.nft\nsection ruleset\nnft list table ip svcplane_smoke\n\
             section versions\nnft --version\nipvsadm --version\nconntrack --version\n",
        )
        .timeout(Duration::from_secs(30))
        .run();
    report("nft smoke", &run);
    run.assert_success();
    let listed = run.section("ruleset").unwrap();
    for needle in [
        "masquerade",
        "fib daddr type local",
        "reject",
        "@cluster_ips",
    ] {
        assert!(listed.contains(needle), "{needle} missing:\n{listed}");
    }
    println!("guest tools:\n{}", run.section("versions").unwrap());
}
