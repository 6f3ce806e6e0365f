//! `svcplane node-agent --backend ipvs` on a real kernel (Debian's, in the test VM), with real
//! traffic: a realistic table programmed from Service, EndpointSlice and Node manifests is
//! compared with `ipvsadm -Ln` (parsed here, independently of the agent's code), then a client
//! in its own network namespace reaches backends in others through every kind of virtual
//! address, the agent is restarted without disturbing a held connection and without writing
//! to the kernel, and `--cleanup` leaves the kernel as it found it. Fails, never skips, when
//! the VM cannot boot (`scripts/install-test-deps.sh` prepares it).

use crate::vm::support as vm_ipvs_support;

use std::collections::BTreeSet;
use std::time::Duration;

use svcplane_tests::vm::{workspace_binary, Guest};
use vm_ipvs_support::*;

use crate::NETTEST;
const MANIFESTS: &str = "/etc/svcplane/manifests";

/// Services of every kind the agent handles, plus two it must ignore.
fn manifests() -> String {
    let http = [("http", "TCP", 8080)];
    let mut m = nodes();
    m += &service(
        "web",
        r#"
type: ClusterIP
clusterIP: 10.96.0.10
clusterIPs: [10.96.0.10, "fd00:96::10"]
ipFamilies: [IPv4, IPv6]
ipFamilyPolicy: RequireDualStack
ports:
- {name: http, port: 80, protocol: TCP, targetPort: 8080}
- {name: dns, port: 53, protocol: UDP, targetPort: 8080}
"#,
        "",
    );
    m += &slice(
        "web-v4",
        "web",
        "IPv4",
        &[("http", "TCP", 8080), ("dns", "UDP", 8080)],
        &[B1, B2],
    );
    m += &slice(
        "web-v6",
        "web",
        "IPv6",
        &[("http", "TCP", 8081)],
        &[B1_6, B2_6],
    );
    m += &service(
        "nodeport",
        "type: NodePort\nclusterIP: 10.96.0.20\nports:\n- {name: http, port: 80, targetPort: 8080, nodePort: 30080}",
        "",
    );
    m += &slice("nodeport-a", "nodeport", "IPv4", &http, &[B1, B2]);
    m += &service(
        "external",
        "clusterIP: 10.96.0.30\nexternalIPs: [203.0.113.30]\nports:\n- {name: http, port: 80, targetPort: 8080}",
        "",
    );
    m += &slice("external-a", "external", "IPv4", &http, &[B1, B2]);
    // The client (10.244.3.2) is inside the first LoadBalancer's source ranges, not the second's.
    for (name, last, range) in [
        ("lb", 40, "10.244.3.0/24"),
        ("lb-denied", 41, "198.51.100.0/24"),
    ] {
        m += &service(
            name,
            &format!(
                "type: LoadBalancer\nclusterIP: 10.96.0.{last}\nloadBalancerSourceRanges: [{range}]\n\
                 ports:\n- {{name: http, port: 80, targetPort: 8080, nodePort: 300{last}}}"
            ),
            &format!("loadBalancer:\n  ingress:\n  - {{ip: 203.0.113.{last}}}"),
        );
        m += &slice(&format!("{name}-a"), name, "IPv4", &http, &[B1, B2]);
    }
    m += &service(
        "sticky",
        "clusterIP: 10.96.0.50\nsessionAffinity: ClientIP\nsessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}\n\
         ports:\n- {name: http, port: 80, targetPort: 8080}",
        "",
    );
    m += &slice("sticky-a", "sticky", "IPv4", &http, &[B1, B2]);
    // internalTrafficPolicy: Local: only b1 runs on this node; no-local has no endpoint here.
    m += &service(
        "local-only",
        "clusterIP: 10.96.0.60\ninternalTrafficPolicy: Local\nports:\n- {name: http, port: 80, targetPort: 8080}",
        "",
    );
    m += &slice("local-only-a", "local-only", "IPv4", &http, &[B1, B2]);
    m += &service(
        "no-local",
        "clusterIP: 10.96.0.70\ninternalTrafficPolicy: Local\nports:\n- {name: http, port: 80, targetPort: 8080}",
        "",
    );
    m += &slice("no-local-a", "no-local", "IPv4", &http, &[B2]);
    // Nothing for these two.
    m += &service(
        "headless",
        "clusterIP: None\nports:\n- {name: http, port: 80, targetPort: 8080}",
        "",
    );
    m += &slice("headless-a", "headless", "IPv4", &http, &[B1, B2]);
    m += &service(
        "extname",
        "type: ExternalName\nexternalName: example.com",
        "",
    );
    m
}

/// The IPVS table the manifests describe, written by hand from them (kube-proxy's IPVS mode
/// programs the same rows); the foreign virtual service is left as it was.
fn expected_table() -> BTreeSet<Listed> {
    let both = ["10.244.1.2:8080 Masq 1", "10.244.2.2:8080 Masq 1"];
    let mut rows = vec![
        row("TCP 10.96.0.10:80", "rr", &both),
        row("UDP 10.96.0.10:53", "rr", &both),
        row(
            "TCP [fd00:96::10]:80",
            "rr",
            &["[fd00:244:1::2]:8081 Masq 1", "[fd00:244:2::2]:8081 Masq 1"],
        ),
        // The IPv6 slice has no "dns" port: the row exists with no destination.
        row("UDP [fd00:96::10]:53", "rr", &[]),
        row("TCP 10.96.0.20:80", "rr", &both),
        row(&format!("TCP {NODE_IP}:30080"), "rr", &both),
        row("TCP 10.96.0.30:80", "rr", &both),
        row("TCP 203.0.113.30:80", "rr", &both),
        row("TCP 10.96.0.50:80", "rr persistent 600", &both),
        row("TCP 10.96.0.60:80", "rr", &["10.244.1.2:8080 Masq 1"]),
        row("TCP 10.96.0.70:80", "rr", &[]),
        row("TCP 192.0.2.99:80", "lc", &["10.244.1.2:8080 Masq 1"]),
    ];
    for last in [40, 41] {
        rows.push(row(&format!("TCP 10.96.0.{last}:80"), "rr", &both));
        rows.push(row(&format!("TCP 203.0.113.{last}:80"), "rr", &both));
        rows.push(row(&format!("TCP {NODE_IP}:300{last}"), "rr", &both));
    }
    rows.into_iter().collect()
}

fn probe(from: &str, proto: &str, target: &str, count: u32, timeout_ms: u32) -> String {
    format!(
        "ip netns exec {from} svcplane-nettest probe --{proto} {target} --count {count} --timeout-ms {timeout_ms}\n"
    )
}

#[test]
fn ipvs_backend_programs_a_real_kernel_that_forwards_real_traffic() {
    let _heavy = crate::heavy::heavy_blocking();
    let agent = format!("svcplane node-agent --node-name {NODE} --manifests {MANIFESTS}");
    let mut script = String::from(TOPOLOGY);
    // Somebody else's IPVS virtual service and nftables table, and the state before the agent.
    script += r#"
ipvsadm -A -t 192.0.2.99:80 -s lc
ipvsadm -a -t 192.0.2.99:80 -r 10.244.1.2:8080 -m
nft add table ip foreign
nft add chain ip foreign input '{ type filter hook input priority 10; policy accept; }'
nft add rule ip foreign input tcp dport 7 counter
ipvsadm -Ln >/tmp/before-ipvs
# IPv6 duplicate address detection may still mark link-local addresses 'tentative' here;
# that flag is the kernel's, not state the agent owns.
ip -o addr | sed 's/ tentative//' >/tmp/before-addr
nft list ruleset >/tmp/before-nft
svcplane-nettest serve --name host --tcp 0.0.0.0:9999 --lifetime-ms 600000 >/tmp/host.log 2>&1 &
retry 100 0.1 grep -q ready /tmp/host.log
"#;
    script += &format!("section first-run\n{agent} --backend ipvs --once 2>&1\n");
    script += "section ipvs\nipvsadm -Ln\n";
    script += "section bound\nip -o addr show dev svcplane0\n";
    script += "section table\nnft list table inet svcplane-ipvs\n";
    let sections = [
        ("tcp", probe("c1", "tcp", "10.96.0.10:80", 10, 3000)),
        ("udp", probe("c1", "udp", "10.96.0.10:53", 10, 3000)),
        ("tcp6", probe("c1", "tcp", "[fd00:96::10]:80", 4, 3000)),
        (
            "nodeport",
            probe("c1", "tcp", &format!("{NODE_IP}:30080"), 10, 3000),
        ),
        ("external", probe("c1", "tcp", "203.0.113.30:80", 4, 3000)),
        ("lb", probe("c1", "tcp", "203.0.113.40:80", 4, 3000)),
        ("lb-denied", probe("c1", "tcp", "203.0.113.41:80", 2, 1500)),
        (
            "lb-denied-nodeport",
            probe("c1", "tcp", &format!("{NODE_IP}:30041"), 2, 3000),
        ),
        ("sticky", probe("c1", "tcp", "10.96.0.50:80", 8, 3000)),
        ("local-only", probe("c1", "tcp", "10.96.0.60:80", 6, 3000)),
        ("no-local", probe("c1", "tcp", "10.96.0.70:80", 2, 3000)),
        (
            "unallocated-port",
            probe("c1", "tcp", "10.96.0.10:9999", 1, 3000),
        ),
        (
            "node-port-9999",
            probe("c1", "tcp", &format!("{NODE_IP}:9999"), 1, 3000),
        ),
        (
            "hairpin-local",
            probe("b1", "tcp", "10.96.0.60:80", 3, 3000),
        ),
        ("hairpin-web", probe("b1", "tcp", "10.96.0.10:80", 4, 3000)),
    ];
    for (name, command) in &sections {
        script += &format!("section {name}\n{command}");
    }
    // Who is masqueraded: NodePort traffic (policy Cluster) is, ClusterIP traffic from a pod is not.
    script += "section ct-nodeport\nconntrack -L -p tcp --orig-dst 192.168.100.10 2>/dev/null\n";
    script += "section ct-clusterip\nconntrack -L -p tcp --orig-dst 10.96.0.10 2>/dev/null\n";
    // Restart: a connection held across a second run, which finds nothing to write.
    script += r#"
ip netns exec c1 svcplane-nettest hold --tcp 10.96.0.10:80 --interval-ms 200 --duration-ms 5000 \
  --timeout-ms 2000 >/tmp/hold.log 2>&1 &
hold=$!
retry 50 0.1 grep -q reply /tmp/hold.log
"#;
    script += &format!("section second-run\n{agent} --backend ipvs --once 2>&1\n");
    script += "section ipvs-after-restart\nipvsadm -Ln\n";
    script += "section hold\nwait $hold || true\ncat /tmp/hold.log\n";
    script += &format!(
        "section cleanup\nsvcplane node-agent --node-name {NODE} --backend ipvs --cleanup 2>&1\n"
    );
    script += r#"
ipvsadm -Ln >/tmp/after-ipvs
ip -o addr | sed 's/ tentative//' >/tmp/after-addr
nft list ruleset >/tmp/after-nft
for what in ipvs addr nft; do
  section "diff-$what"
  diff /tmp/before-$what /tmp/after-$what && echo same
done
section after-ipvs
cat /tmp/after-ipvs
"#;
    let run = Guest::new()
        .binary(workspace_binary("svcplane"))
        .binary(NETTEST)
        .file_contents(&format!("{MANIFESTS}/cluster.yaml"), manifests())
        .script(script)
        .timeout(Duration::from_secs(240))
        .run();
    println!(
        "vm ipvs table: boot to script {:.2?}, to result {:.2?}",
        run.boot_time, run.total_time
    );
    run.assert_success();
    let section = |name: &str| {
        run.section(name)
            .unwrap_or_else(|| panic!("section {name} missing:\n{}", run.output))
    };

    let first = section("first-run");
    assert!(first.contains("programmed 17 virtual servers"), "{first}");

    // The table, compared row by row with what the manifests describe.
    let ipvs = section("ipvs");
    let table = listed(&ipvs);
    let expected = expected_table();
    let missing: Vec<_> = expected.difference(&table).collect();
    let extra: Vec<_> = table.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:#?}\nextra: {extra:#?}\nipvsadm -Ln:\n{ipvs}"
    );

    // Every ClusterIP, external and load-balancer address on svcplane0; node addresses not.
    let bound = section("bound");
    for address in [
        "10.96.0.10/32",
        "fd00:96::10/128",
        "10.96.0.20/32",
        "10.96.0.30/32",
        "203.0.113.30/32",
        "10.96.0.40/32",
        "203.0.113.40/32",
        "10.96.0.41/32",
        "203.0.113.41/32",
        "10.96.0.50/32",
        "10.96.0.60/32",
        "10.96.0.70/32",
    ] {
        assert!(
            bound.contains(&format!(" {address} ")),
            "{address} not bound:\n{bound}"
        );
    }
    assert!(
        !bound.contains(NODE_IP),
        "a node address is never bound:\n{bound}"
    );
    let global = bound.lines().filter(|l| l.contains("scope global")).count();
    assert_eq!(global, 12, "{bound}");
    let nft = section("table");
    assert!(nft.contains("masquerade"), "{nft}");

    // rr spreads new connections evenly; UDP and IPv6 too.
    let even = |name: &str, total: usize| {
        let out = section(name);
        assert_eq!(
            answers(&out),
            counts(&[("b1", total / 2), ("b2", total / 2)]),
            "{name}:\n{out}"
        );
    };
    even("tcp", 10);
    even("udp", 10);
    even("tcp6", 4);
    even("nodeport", 10);
    even("external", 4);
    even("lb", 4);
    even("lb-denied-nodeport", 2);

    // loadBalancerSourceRanges: a client outside the ranges is dropped.
    let denied = section("lb-denied");
    assert_eq!(answers(&denied), counts(&[("timeout", 2)]), "{denied}");

    // ClientIP affinity: every connection of the client goes to one backend.
    let sticky = answers(&section("sticky"));
    assert_eq!(sticky.len(), 1, "{sticky:?}");
    assert_eq!(sticky.values().sum::<usize>(), 8, "{sticky:?}");

    // internalTrafficPolicy: Local: only this node's endpoint; none here, none at all (IPVS
    // answers a virtual service without destination with port unreachable).
    assert_eq!(answers(&section("local-only")), counts(&[("b1", 6)]));
    assert_eq!(answers(&section("no-local")), counts(&[("refused", 2)]));

    // A port of a service address that no virtual service has is rejected, although the node
    // listens on it (reachable on the node's own address).
    assert_eq!(
        answers(&section("unallocated-port")),
        counts(&[("refused", 1)])
    );
    assert_eq!(answers(&section("node-port-9999")), counts(&[("host", 1)]));

    // Hairpin: an endpoint reaches itself through a Service (masqueraded).
    assert_eq!(answers(&section("hairpin-local")), counts(&[("b1", 3)]));
    assert_eq!(
        answers(&section("hairpin-web")),
        counts(&[("b1", 2), ("b2", 2)])
    );

    // Masquerade as the rows say: NodePort replies come back to the node (the backend saw a
    // node address), ClusterIP replies to the client's own address.
    let nodeport_ct = section("ct-nodeport");
    let flows: Vec<&str> = nodeport_ct
        .lines()
        .filter(|l| l.contains("dport=30080"))
        .collect();
    assert!(!flows.is_empty(), "{nodeport_ct}");
    for flow in &flows {
        assert!(
            flow.contains("dst=10.244.1.1 ") || flow.contains("dst=10.244.2.1 "),
            "NodePort traffic is masqueraded: {flow}"
        );
    }
    let cluster_ct = section("ct-clusterip");
    let flows: Vec<&str> = cluster_ct
        .lines()
        .filter(|l| l.contains("src=10.244.3.2") && l.contains("dport=80 "))
        .collect();
    assert!(!flows.is_empty(), "{cluster_ct}");
    for flow in &flows {
        assert!(
            flow.contains("dst=10.244.3.2 "),
            "ClusterIP traffic keeps its source: {flow}"
        );
    }

    // Restart: the second run writes nothing, the table is the same, the held connection
    // never failed.
    let second = section("second-run");
    assert!(second.contains("with 0 kernel operations"), "{second}");
    assert_eq!(listed(&section("ipvs-after-restart")), table);
    let hold = section("hold");
    assert!(hold.contains("failures=0"), "{hold}");
    assert!(
        hold.lines().filter(|l| l.starts_with("reply ")).count() >= 10,
        "{hold}"
    );

    // --cleanup: the kernel as the agent found it, foreign virtual service and table included.
    let cleanup = section("cleanup");
    assert!(cleanup.contains("removed everything"), "{cleanup}");
    for what in ["ipvs", "addr", "nft"] {
        let diff = section(&format!("diff-{what}"));
        assert_eq!(
            diff.trim(),
            "same",
            "{what} differs after --cleanup:\n{diff}"
        );
    }
    assert!(section("after-ipvs").contains("192.0.2.99:80 lc"));
}
#[test]
fn ipvsadm_listings_parse_into_services_and_real_servers() {
    let text = "IP Virtual Server version 1.2.1 (size=4096)\n\
        Prot LocalAddress:Port Scheduler Flags\n  \
        -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
        TCP  10.96.0.10:80 rr\n  \
        -> 10.244.1.2:8080              Masq    1      0          0\n  \
        -> 10.244.2.2:8080              Masq    0      1          2\n\
        TCP  10.96.0.50:80 rr persistent 600\n\
        UDP  [fd00:96::10]:53 rr\n";
    let table = parse_ipvsadm(text);
    assert_eq!(table.len(), 3);
    let (scheduling, reals) = &table["TCP 10.96.0.10:80"];
    assert_eq!(scheduling, "rr");
    assert_eq!(reals[1], ("10.244.2.2:8080".into(), "Masq".into(), 0, 1, 2));
    assert_eq!(table["TCP 10.96.0.50:80"].0, "rr persistent 600");
    assert!(table["UDP [fd00:96::10]:53"].1.is_empty());
    assert!(listed(text).contains(&row(
        "TCP 10.96.0.10:80",
        "rr",
        &["10.244.2.2:8080 Masq 0", "10.244.1.2:8080 Masq 1"]
    )));
}
