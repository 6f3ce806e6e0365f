//! Graceful termination on a real kernel (kube-proxy's `ipvs/graceful_termination.go`): an
//! endpoint removed while a client holds a TCP connection to it gets no new connection but the
//! held one keeps working (its destination waits at weight 0), comes back at full weight when
//! re-added, and is deleted once `--ipvs-graceful-termination-timeout` passed; removed UDP
//! and connection-less destinations go at once, and the removed UDP endpoint's conntrack
//! entries are deleted. The agent runs with `--once` against changing manifests, as a
//! restarted agent would. Fails, never skips, when the VM cannot boot.

use crate::vm::support as vm_ipvs_support;

use std::time::Duration;

use svcplane_tests::vm::{workspace_binary, Guest};
use vm_ipvs_support::*;

use crate::NETTEST;

/// `web`: dual-stack, TCP 80 and UDP 53 over IPv4, TCP 80 over IPv6; endpoints b1 and b2,
/// or all but `without`.
fn manifests(without: Option<&str>) -> String {
    let keep = |name: &str| without != Some(name);
    let v4: Vec<Ep> = [("b1", B1), ("b2", B2)]
        .into_iter()
        .filter(|(n, _)| keep(n))
        .map(|(_, e)| e)
        .collect();
    let v6: Vec<Ep> = [("b1", B1_6), ("b2", B2_6)]
        .into_iter()
        .filter(|(n, _)| keep(n))
        .map(|(_, e)| e)
        .collect();
    let mut m = nodes();
    m += &service(
        "web",
        r#"
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
        &v4,
    );
    m += &slice("web-v6", "web", "IPv6", &[("http", "TCP", 8081)], &v6);
    m
}

fn reals(table: &str, service: &str) -> Vec<Real> {
    parse_ipvsadm(table)
        .remove(service)
        .unwrap_or_else(|| panic!("{service} missing:\n{table}"))
        .1
}

#[test]
fn removed_endpoints_drain_gracefully_and_udp_flows_are_cleaned() {
    let _heavy = crate::heavy::heavy_blocking();
    let agent = format!("svcplane node-agent --node-name {NODE} --backend ipvs --once");
    let mut script = String::from(TOPOLOGY);
    script += &format!(
        r#"
section first-run
{agent} --manifests /etc/svcplane/full 2>&1
section udp-before
ip netns exec c1 svcplane-nettest probe --udp 10.96.0.10:53 --count 6 --timeout-ms 3000
section ct-before
conntrack -L -p udp --orig-dst 10.96.0.10 2>/dev/null
ip netns exec c1 svcplane-nettest hold --tcp 10.96.0.10:80 --interval-ms 200 --duration-ms 15000 \
  --timeout-ms 3000 >/tmp/hold.log 2>&1 &
hold=$!
retry 50 0.1 grep -q reply /tmp/hold.log
held=$(sed -n 's/^reply //p' /tmp/hold.log | head -1)
section held
echo $held
section removed
{agent} --manifests /etc/svcplane/without-$held 2>&1
section ipvs-removed
ipvsadm -Ln
section ct-after
conntrack -L -p udp --orig-dst 10.96.0.10 2>/dev/null
section new-connections
ip netns exec c1 svcplane-nettest probe --tcp 10.96.0.10:80 --count 6 --timeout-ms 3000
section readded
{agent} --manifests /etc/svcplane/full 2>&1
section ipvs-readded
ipvsadm -Ln
section removed-again
{agent} --manifests /etc/svcplane/without-$held 2>&1
section hold
wait $hold || true
cat /tmp/hold.log
section ipvs-closed
ipvsadm -Ln
section timed-out
{agent} --manifests /etc/svcplane/without-$held --ipvs-graceful-termination-timeout 0s 2>&1
section ipvs-timed-out
ipvsadm -Ln
"#
    );
    let run = Guest::new()
        .binary(workspace_binary("svcplane"))
        .binary(NETTEST)
        .file_contents("/etc/svcplane/full/cluster.yaml", manifests(None))
        .file_contents(
            "/etc/svcplane/without-b1/cluster.yaml",
            manifests(Some("b1")),
        )
        .file_contents(
            "/etc/svcplane/without-b2/cluster.yaml",
            manifests(Some("b2")),
        )
        .script(script)
        .timeout(Duration::from_secs(240))
        .run();
    println!(
        "vm ipvs graceful: boot to script {:.2?}, to result {:.2?}",
        run.boot_time, run.total_time
    );
    run.assert_success();
    let section = |name: &str| {
        run.section(name)
            .unwrap_or_else(|| panic!("section {name} missing:\n{}", run.output))
    };
    let held = section("held").trim().to_string();
    assert!(held == "b1" || held == "b2", "{held}");
    let other = if held == "b1" { "b2" } else { "b1" };
    let held_v4 = if held == "b1" {
        "10.244.1.2:8080"
    } else {
        "10.244.2.2:8080"
    };
    let held_v6 = if held == "b1" {
        "[fd00:244:1::2]:8081"
    } else {
        "[fd00:244:2::2]:8081"
    };
    let other_ip = if held == "b1" {
        "10.244.2.2"
    } else {
        "10.244.1.2"
    };
    let held_ip = &held_v4[..10];

    // UDP flows to both backends before.
    let before = section("ct-before");
    for ip in [held_ip, other_ip] {
        assert!(
            before.lines().any(|l| l.contains(&format!("src={ip} "))),
            "a UDP flow answered by {ip}:\n{before}"
        );
    }

    // Removed: the held TCP destination waits at weight 0 with its connection; the UDP
    // destination and the IPv6 TCP one (no connection) are gone at once.
    let table = section("ipvs-removed");
    let tcp = reals(&table, "TCP 10.96.0.10:80");
    let drained = tcp
        .iter()
        .find(|r| r.0 == held_v4)
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(drained.2, 0, "weight 0 while draining:\n{table}");
    assert!(drained.3 >= 1, "the held connection is active:\n{table}");
    assert!(tcp.iter().any(|r| r.0 != held_v4 && r.2 == 1), "{table}");
    let udp = reals(&table, "UDP 10.96.0.10:53");
    assert_eq!(udp.len(), 1, "UDP destinations go at once:\n{table}");
    assert_ne!(udp[0].0, held_v4, "{table}");
    let tcp6 = reals(&table, "TCP [fd00:96::10]:80");
    assert!(
        tcp6.iter().all(|r| r.0 != held_v6),
        "no connection: deleted at once:\n{table}"
    );

    // The removed UDP endpoint's conntrack entries are deleted, the other's are kept.
    let after = section("ct-after");
    assert!(
        !after
            .lines()
            .any(|l| l.contains(&format!("src={held_ip} "))),
        "stale UDP entries toward {held_ip} remain:\n{after}"
    );
    assert!(
        after
            .lines()
            .any(|l| l.contains(&format!("src={other_ip} "))),
        "entries of the remaining endpoint are kept:\n{after}"
    );

    // No new connection goes to the draining destination.
    assert_eq!(answers(&section("new-connections")), counts(&[(other, 6)]));

    // Re-added while draining: the same destination, weight restored.
    let table = section("ipvs-readded");
    let tcp = reals(&table, "TCP 10.96.0.10:80");
    let back = tcp
        .iter()
        .find(|r| r.0 == held_v4)
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(back.2, 1, "weight restored:\n{table}");

    // The held connection never failed and stayed on its backend throughout.
    let hold = section("hold");
    assert!(hold.contains("failures=0"), "{hold}");
    assert!(
        hold.contains(&format!("names={held}\n"))
            || hold.trim_end().ends_with(&format!("names={held}")),
        "{hold}"
    );
    assert!(
        hold.lines().filter(|l| l.starts_with("reply ")).count() >= 20,
        "{hold}"
    );

    // Closed, the connection lingers in TIME_WAIT (InActConn): the destination is kept...
    let table = section("ipvs-closed");
    let tcp = reals(&table, "TCP 10.96.0.10:80");
    let lingering = tcp
        .iter()
        .find(|r| r.0 == held_v4)
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(lingering.2, 0, "{table}");
    assert!(lingering.3 + lingering.4 >= 1, "{table}");
    // ...until the timeout passes (0 s here).
    let table = section("ipvs-timed-out");
    let tcp = reals(&table, "TCP 10.96.0.10:80");
    assert_eq!(tcp.len(), 1, "{table}");
    assert_ne!(tcp[0].0, held_v4, "{table}");
}
