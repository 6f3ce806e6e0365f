//! The long-running node agent (`--backend ipvs`, no `--once`) on a real kernel (Debian's, in
//! the test VM): health-check node ports answer as kube-proxy's `healthcheck` server does
//! (200 with local endpoints, 503 without, JSON body), `externalTrafficPolicy: Local`
//! NodePort traffic reaches only this node's endpoint, and the periodic full resync
//! (`--sync-period`) repairs kernel state changed behind the agent's back: a virtual service
//! deleted, a destination deleted, a scheduler edited, an address unbound, while a virtual
//! service of somebody else is left alone. Graceful termination while the agent runs: an
//! endpoint removed from the files (re-read on SIGHUP) under a held connection goes to weight
//! 0, the connection keeps working, new ones avoid it, and the agent deletes it by itself once
//! `--ipvs-graceful-termination-timeout` passed. Fails, never skips, when the VM cannot boot.

use crate::vm::support as vm_ipvs_support;

use std::time::Duration;

use svcplane_tests::vm::{workspace_binary, Guest};
use vm_ipvs_support::*;

use crate::NETTEST;
const MANIFESTS: &str = "/etc/svcplane/manifests";
/// `--sync-period` of the agent under test: drift must be gone within two of these.
const SYNC_PERIOD_S: u32 = 3;
/// `--ipvs-graceful-termination-timeout` of the agent under test.
const GRACE_S: u32 = 10;

/// The cluster's manifests; Service `drain` (10.96.0.80) has `drain_endpoints`.
fn manifests(drain_endpoints: &[Ep<'_>]) -> String {
    let http = [("http", "TCP", 8080)];
    let mut m = nodes();
    m += &service(
        "drain",
        "clusterIP: 10.96.0.80\nports:\n- {name: http, port: 80, targetPort: 8080}",
        "",
    );
    m += &slice("drain-a", "drain", "IPv4", &http, drain_endpoints);
    m += &service(
        "web",
        "clusterIP: 10.96.0.10\nports:\n- {name: http, port: 80, targetPort: 8080}",
        "",
    );
    m += &slice("web-a", "web", "IPv4", &http, &[B1, B2]);
    m += &service(
        "nodeport",
        "type: NodePort\nclusterIP: 10.96.0.20\nports:\n- {name: http, port: 80, targetPort: 8080, nodePort: 30080}",
        "",
    );
    m += &slice("nodeport-a", "nodeport", "IPv4", &http, &[B1, B2]);
    // externalTrafficPolicy: Local with a health-check node port: lb-local has an endpoint on
    // this node (b1), lb-remote only on node-b.
    for (name, last, hc, endpoints) in [
        ("lb-local", 40, 30500, &[B1, B2][..]),
        ("lb-remote", 41, 30501, &[B2][..]),
    ] {
        m += &service(
            name,
            &format!(
                "type: LoadBalancer\nclusterIP: 10.96.0.{last}\nexternalTrafficPolicy: Local\n\
                 healthCheckNodePort: {hc}\n\
                 ports:\n- {{name: http, port: 80, targetPort: 8080, nodePort: 300{last}}}"
            ),
            &format!("loadBalancer:\n  ingress:\n  - {{ip: 203.0.113.{last}}}"),
        );
        m += &slice(&format!("{name}-a"), name, "IPv4", &http, endpoints);
    }
    m
}

/// `bash HTTP HOST PORT PATH` prints the raw HTTP/1.1 answer (bash's /dev/tcp, independent of
/// the agent's code), bounded by `timeout`.
const HTTP: &str = "/etc/svcplane/http.sh";
const HTTP_SCRIPT: &str = r#"exec 3<>"/dev/tcp/$1/$2" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n' "$3" >&3
timeout 5 cat <&3
echo
"#;

/// Status code and body of a raw HTTP answer.
fn http_answer(raw: &str) -> (u16, serde_json::Value) {
    let status: u16 = raw
        .lines()
        .find(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line:\n{raw}"));
    // HTTP's CRLF line ends, whatever the console made of them.
    let raw = raw.replace('\r', "");
    let body = raw
        .split_once("\n\n")
        .map(|(_, b)| b.trim())
        .unwrap_or_else(|| panic!("no HTTP body:\n{raw}"));
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}\n{raw}"));
    (status, body)
}

#[test]
fn running_agent_serves_health_checks_repairs_drift_and_drains_removed_endpoints() {
    let _heavy = crate::heavy::heavy_blocking();
    let mut script = String::from(TOPOLOGY);
    script += &format!(
        r#"
svcplane node-agent --node-name {NODE} --manifests {MANIFESTS} --backend ipvs \
  --sync-period {SYNC_PERIOD_S}s --min-sync-period 0s --healthz-bind-address 127.0.0.1:10256 \
  --metrics-bind-address 127.0.0.1:10249 --ipvs-graceful-termination-timeout {GRACE_S}s \
  >/tmp/agent.log 2>&1 &
agent=$!
programmed() {{ ipvsadm -Ln | grep -q '203.0.113.41:80'; }}
retry 150 0.2 programmed
serving() {{ timeout 6 bash {HTTP} 127.0.0.1 30501 / | grep -q HTTP/1.1; }}
retry 50 0.2 serving
section ipvs
ipvsadm -Ln
section hc-local
ip netns exec c1 timeout 6 bash {HTTP} {NODE_IP} 30500 /
section hc-remote
ip netns exec c1 timeout 6 bash {HTTP} {NODE_IP} 30501 /
section healthz
timeout 6 bash {HTTP} 127.0.0.1 10256 /healthz
section local-nodeport
ip netns exec c1 svcplane-nettest probe --tcp {NODE_IP}:30040 --count 4 --timeout-ms 3000
section remote-nodeport
ip netns exec c1 svcplane-nettest probe --tcp {NODE_IP}:30041 --count 2 --timeout-ms 3000
"#
    );
    // Drift, made by hand with ipvsadm (generic netlink) and ip, plus a foreign service.
    script += r#"
ipvsadm -A -t 192.0.2.99:80 -s lc
ipvsadm -a -t 192.0.2.99:80 -r 10.244.1.2:8080 -m
start=$(date +%s)
ipvsadm -D -t 10.96.0.10:80
ipvsadm -d -t 10.96.0.20:80 -r 10.244.2.2:8080
ipvsadm -E -t 10.96.0.40:80 -s lc
ip addr del 10.96.0.41/32 dev svcplane0
section drifted
ipvsadm -Ln
ip -o addr show dev svcplane0
repaired() {
  ipvsadm -Ln -t 10.96.0.10:80 >/dev/null 2>&1 &&
    ipvsadm -Ln -t 10.96.0.20:80 | grep -q 10.244.2.2:8080 &&
    ipvsadm -Ln -t 10.96.0.40:80 | grep -q ' rr' &&
    ip -o addr show dev svcplane0 | grep -q ' 10.96.0.41/32 '
}
"#;
    let bound = 6 * SYNC_PERIOD_S;
    script += &format!(
        r#"
retry {tries} 0.5 repaired
section repaired-after
echo $(( $(date +%s) - start ))
section ipvs-repaired
ipvsadm -Ln
section bound-repaired
ip -o addr show dev svcplane0
section web-after
ip netns exec c1 svcplane-nettest probe --tcp 10.96.0.10:80 --count 4 --timeout-ms 3000
section nodeport-after
ip netns exec c1 svcplane-nettest probe --tcp {NODE_IP}:30080 --count 4 --timeout-ms 3000
section metrics
timeout 6 bash {HTTP} 127.0.0.1 10249 /metrics | grep '^svcplane_proxy_syncs_total'
section drain-before
ipvsadm -Ln -t 10.96.0.80:80
ip netns exec c1 svcplane-nettest hold --tcp 10.96.0.80:80 --interval-ms 200 --duration-ms 3000 \
  --timeout-ms 2000 >/tmp/hold.log 2>&1 &
hold=$!
retry 50 0.1 grep -q reply /tmp/hold.log
held=$(sed -n 's/^reply //p' /tmp/hold.log | head -1)
section drain-held
echo $held
cp /etc/svcplane/drain-without-$held.yaml {MANIFESTS}/cluster.yaml
kill -HUP $agent
weight0() {{ ipvsadm -Ln -t 10.96.0.80:80 | awk '$1 == "->" && $4 == "0" {{ found = 1 }} END {{ exit !found }}'; }}
retry 40 0.25 weight0
section drain-draining
ipvsadm -Ln -t 10.96.0.80:80
section drain-new
ip netns exec c1 svcplane-nettest probe --tcp 10.96.0.80:80 --count 4 --timeout-ms 3000
section drain-hold
wait $hold || true
cat /tmp/hold.log
section drain-closed
ipvsadm -Ln -t 10.96.0.80:80
one_left() {{ [ "$(ipvsadm -Ln -t 10.96.0.80:80 | grep -c Masq)" = 1 ]; }}
retry 80 0.5 one_left
section drain-gone
ipvsadm -Ln -t 10.96.0.80:80
section agent-alive
kill -0 $agent && echo alive
kill $agent
wait $agent || true
section agent-log
cat /tmp/agent.log
"#,
        tries = bound * 2,
    );
    let run = Guest::new()
        .binary(workspace_binary("svcplane"))
        .binary(NETTEST)
        .file_contents(&format!("{MANIFESTS}/cluster.yaml"), manifests(&[B1, B2]))
        .file_contents("/etc/svcplane/drain-without-b1.yaml", manifests(&[B2]))
        .file_contents("/etc/svcplane/drain-without-b2.yaml", manifests(&[B1]))
        .file_contents(HTTP, HTTP_SCRIPT)
        .script(script)
        .timeout(Duration::from_secs(240))
        .run();
    println!(
        "vm ipvs agent: boot to script {:.2?}, to result {:.2?}",
        run.boot_time, run.total_time
    );
    run.assert_success();
    let section = |name: &str| {
        run.section(name)
            .unwrap_or_else(|| panic!("section {name} missing:\n{}", run.output))
    };

    // The programmed table, as the long-running agent wrote it.
    let programmed = listed(&section("ipvs"));
    let both = ["10.244.1.2:8080 Masq 1", "10.244.2.2:8080 Masq 1"];
    let b1_only = ["10.244.1.2:8080 Masq 1"];
    let expected = [
        row("TCP 10.96.0.10:80", "rr", &both),
        row("TCP 10.96.0.80:80", "rr", &both),
        row("TCP 10.96.0.20:80", "rr", &both),
        row(&format!("TCP {NODE_IP}:30080"), "rr", &both),
        // Cluster traffic of an eTP: Local Service uses every endpoint...
        row("TCP 10.96.0.40:80", "rr", &both),
        row("TCP 10.96.0.41:80", "rr", &["10.244.2.2:8080 Masq 1"]),
        // ...external traffic (NodePort, load-balancer IP) only this node's (kube-proxy's
        // CategorizeEndpoints `localEndpoints` for externalTrafficPolicy: Local).
        row(&format!("TCP {NODE_IP}:30040"), "rr", &b1_only),
        row("TCP 203.0.113.40:80", "rr", &b1_only),
        row(&format!("TCP {NODE_IP}:30041"), "rr", &[]),
        row("TCP 203.0.113.41:80", "rr", &[]),
    ];
    let expected: std::collections::BTreeSet<Listed> = expected.into_iter().collect();
    assert_eq!(programmed, expected, "{}", section("ipvs"));

    // Health-check node ports (kube-proxy pkg/proxy/healthcheck service_health.go).
    let (code, body) = http_answer(&section("hc-local"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["service"]["namespace"], "default");
    assert_eq!(body["service"]["name"], "lb-local");
    assert_eq!(body["localEndpoints"], 1);
    assert_eq!(body["serviceProxyHealthy"], true);
    let (code, body) = http_answer(&section("hc-remote"));
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["service"]["name"], "lb-remote");
    assert_eq!(body["localEndpoints"], 0);
    let healthz = section("healthz");
    assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");

    // externalTrafficPolicy: Local through the NodePort: only b1; none for lb-remote.
    assert_eq!(answers(&section("local-nodeport")), counts(&[("b1", 4)]));
    assert_eq!(
        answers(&section("remote-nodeport")),
        counts(&[("refused", 2)])
    );

    // Repaired by the periodic resync within two sync periods (plus emulation slack).
    let after: u32 = section("repaired-after").trim().parse().unwrap();
    println!("vm ipvs agent: drift repaired after {after} s (--sync-period {SYNC_PERIOD_S}s)");
    let repaired = section("ipvs-repaired");
    let mut expected_after = expected.clone();
    expected_after.insert(row("TCP 192.0.2.99:80", "lc", &b1_only));
    assert_eq!(listed(&repaired), expected_after, "{repaired}");
    assert!(
        section("bound-repaired").contains(" 10.96.0.41/32 "),
        "{}",
        section("bound-repaired")
    );
    assert_eq!(
        answers(&section("web-after")),
        counts(&[("b1", 2), ("b2", 2)])
    );
    assert_eq!(
        answers(&section("nodeport-after")),
        counts(&[("b1", 2), ("b2", 2)])
    );
    let metrics = section("metrics");
    let full_syncs: f64 = metrics
        .lines()
        .find(|l| l.contains("scope=\"full\"") && l.contains("result=\"success\""))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(full_syncs >= 2.0, "periodic full resyncs ran:\n{metrics}");

    // Graceful termination in the running agent (kube-proxy ipvs/graceful_termination.go).
    let held = section("drain-held").trim().to_string();
    let (held_real, other) = match held.as_str() {
        "b1" => ("10.244.1.2:8080", "b2"),
        "b2" => ("10.244.2.2:8080", "b1"),
        other => panic!("held by {other:?}"),
    };
    let draining = section("drain-draining");
    let reals = &parse_ipvsadm(&draining)["TCP 10.96.0.80:80"].1;
    let drained = reals
        .iter()
        .find(|r| r.0 == held_real)
        .unwrap_or_else(|| panic!("{draining}"));
    assert_eq!(drained.2, 0, "weight 0 while draining:\n{draining}");
    assert_eq!(reals.len(), 2, "{draining}");
    assert_eq!(answers(&section("drain-new")), counts(&[(other, 4)]));
    let hold = section("drain-hold");
    assert!(hold.contains("failures=0"), "{hold}");
    assert!(
        hold.lines()
            .filter(|l| l.starts_with("reply "))
            .all(|l| l == format!("reply {held}")),
        "{hold}"
    );
    // Closed, the connection lingers (TIME_WAIT): still there, at weight 0...
    let closed = section("drain-closed");
    assert!(closed.contains(held_real), "{closed}");
    // ...until the timeout passes; the agent deletes it without being told anything new.
    let gone = section("drain-gone");
    let reals = &parse_ipvsadm(&gone)["TCP 10.96.0.80:80"].1;
    assert_eq!(reals.len(), 1, "{gone}");
    assert_ne!(reals[0].0, held_real, "{gone}");
    assert_eq!(reals[0].2, 1, "{gone}");

    assert_eq!(
        section("agent-alive").trim(),
        "alive",
        "{}",
        section("agent-log")
    );
}
