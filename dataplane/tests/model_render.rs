//! The desired table as people read it (`--backend dry-run`, `svcplane dev`): text sorted and
//! stable, one line per virtual server; JSON with the same rows. Expected lines are built from
//! the inputs below, so a change of format or of selection shows up as a readable diff.

mod fixtures;

use fixtures::{ep, model_with, node, slice, svc, Slice, Svc, NODE};
use serde_json::{json, Value};
use svcplane_dataplane::model::{render_json, render_text, ProxyConfig, ProxyModel};

const WEB_IP: &str = "10.96.0.10";
const LB_IP: &str = "10.96.0.20";
const DNS_V4: &str = "10.96.0.53";
const DNS_V6: &str = "fd00::53";
const NODE_IP: &str = "192.168.0.1";
const INGRESS: &str = "203.0.113.10";

fn services() -> Vec<Svc> {
    vec![
        svc("web").cluster_ips(&[WEB_IP]).port("", "TCP", 80),
        svc("dns")
            .cluster_ips(&[DNS_V4, DNS_V6])
            .port("dns", "UDP", 53),
        svc("lb")
            .cluster_ips(&[LB_IP])
            .type_("LoadBalancer")
            .node_port("https", "TCP", 443, 30443)
            .etp_local()
            .client_ip_affinity(Some(600))
            .source_ranges(&["198.51.100.0/24"])
            .health_check_node_port(32000)
            .ingress(INGRESS, None),
    ]
}

fn slices() -> Vec<Slice> {
    vec![
        slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.2"))
            .ep(ep("10.0.0.1").local()),
        slice("dns", "dns-v6")
            .ipv6()
            .port("dns", "UDP", 5353)
            .ep(ep("fd00:10::5")),
        slice("lb", "lb-1")
            .port("https", "TCP", 8443)
            .ep(ep("10.0.1.1").local().terminating(true))
            .ep(ep("10.0.1.2")),
    ]
}

fn build(services: &[Svc], slices: &[Slice]) -> ProxyModel {
    model_with(
        ProxyConfig {
            node_name: NODE.into(),
            ..Default::default()
        },
        services,
        slices,
    )
}

fn expected_lines() -> Vec<String> {
    let affinity = "affinity=ClientIP/600s";
    vec![
        format!("TCP {WEB_IP}:80 ClusterIP default/web rr -> 10.0.0.1:8080{{local}} 10.0.0.2:8080"),
        format!("TCP {LB_IP}:443 ClusterIP default/lb:https rr {affinity} -> 10.0.1.2:8443"),
        format!("UDP {DNS_V4}:53 ClusterIP default/dns:dns rr -> none (reject)"),
        format!(
            "TCP {NODE_IP}:30443 NodePort default/lb:https rr policy=Local {affinity} -> 10.0.1.1:8443{{local,terminating}}"
        ),
        format!(
            "TCP {INGRESS}:443 LoadBalancer default/lb:https rr policy=Local {affinity} source-ranges=198.51.100.0/24 -> 10.0.1.1:8443{{local,terminating}}"
        ),
        format!("UDP [{DNS_V6}]:53 ClusterIP default/dns:dns rr -> [fd00:10::5]:5353"),
    ]
}

#[test]
fn text_is_one_sorted_line_per_virtual_server_then_health_checks() {
    let m = build(&services(), &slices());
    let text = render_text(m.table(), m.node());
    let lines = expected_lines();
    let mut want = format!(
        "# node {NODE} (zone zone-a): {} virtual servers\n",
        lines.len()
    );
    for l in &lines {
        want.push_str(l);
        want.push('\n');
    }
    want.push_str("health-check default/lb :32000 localEndpoints=0\n");
    assert_eq!(text, want);
}

#[test]
fn text_is_the_same_for_the_same_table_whatever_the_arrival_order() {
    let m = build(&services(), &slices());
    let first = render_text(m.table(), m.node());
    assert_eq!(first, render_text(m.table(), m.node()));

    let mut svcs = services();
    svcs.reverse();
    let mut sls = slices();
    sls.reverse();
    let reversed = build(&svcs, &sls);
    assert_eq!(first, render_text(reversed.table(), reversed.node()));

    // Built up one object at a time with a commit after each.
    let mut stepwise = ProxyModel::new(ProxyConfig {
        node_name: NODE.into(),
        ..Default::default()
    });
    for s in sls {
        stepwise.upsert_slice(&s.build());
        stepwise.commit();
    }
    stepwise.set_node(&node(NODE).zone("zone-a").internal(NODE_IP).build());
    stepwise.commit();
    for s in svcs {
        stepwise.upsert_service(&s.build());
        stepwise.commit();
    }
    assert_eq!(first, render_text(stepwise.table(), stepwise.node()));
}

#[test]
fn an_empty_table_is_just_the_header() {
    let m = ProxyModel::new(ProxyConfig {
        node_name: NODE.into(),
        ..Default::default()
    });
    assert_eq!(
        render_text(m.table(), m.node()),
        format!("# node {NODE} (zone none): 0 virtual servers\n")
    );
    let j = render_json(m.table(), m.node());
    assert_eq!(j["virtualServers"], json!([]));
    assert_eq!(j["healthChecks"], json!([]));
}

fn endpoint(address: &str, port: u16, local: bool, ready: bool) -> Value {
    json!({"address": address, "port": port, "weight": 1, "local": local, "ready": ready})
}

#[allow(clippy::too_many_arguments)]
fn vs(
    address: &str,
    protocol: &str,
    port: u16,
    kind: &str,
    service: (&str, &str),
    policy: &str,
    affinity: Option<u32>,
    ranges: &[&str],
    masquerade: &str,
    endpoints: Vec<Value>,
) -> Value {
    json!({
        "address": address, "protocol": protocol, "port": port, "kind": kind,
        "service": {"namespace": "default", "name": service.0, "port": service.1},
        "scheduler": "rr", "trafficPolicy": policy, "affinityTimeoutSeconds": affinity,
        "sourceRanges": ranges, "masquerade": masquerade, "endpoints": endpoints,
    })
}

#[test]
fn json_has_the_same_rows_in_the_same_order() {
    let m = build(&services(), &slices());
    let j = render_json(m.table(), m.node());
    let terminating_local = || vec![endpoint("10.0.1.1", 8443, true, false)];
    let want = json!([
        vs(
            WEB_IP,
            "TCP",
            80,
            "ClusterIP",
            ("web", ""),
            "Cluster",
            None,
            &[],
            "OffClusterSources",
            vec![
                endpoint("10.0.0.1", 8080, true, true),
                endpoint("10.0.0.2", 8080, false, true)
            ]
        ),
        vs(
            LB_IP,
            "TCP",
            443,
            "ClusterIP",
            ("lb", "https"),
            "Cluster",
            Some(600),
            &[],
            "OffClusterSources",
            vec![endpoint("10.0.1.2", 8443, false, true)]
        ),
        vs(
            DNS_V4,
            "UDP",
            53,
            "ClusterIP",
            ("dns", "dns"),
            "Cluster",
            None,
            &[],
            "OffClusterSources",
            vec![]
        ),
        vs(
            NODE_IP,
            "TCP",
            30443,
            "NodePort",
            ("lb", "https"),
            "Local",
            Some(600),
            &[],
            "Never",
            terminating_local()
        ),
        vs(
            INGRESS,
            "TCP",
            443,
            "LoadBalancer",
            ("lb", "https"),
            "Local",
            Some(600),
            &["198.51.100.0/24"],
            "Never",
            terminating_local()
        ),
        vs(
            DNS_V6,
            "UDP",
            53,
            "ClusterIP",
            ("dns", "dns"),
            "Cluster",
            None,
            &[],
            "OffClusterSources",
            vec![endpoint("fd00:10::5", 5353, false, true)]
        ),
    ]);
    assert_eq!(j["virtualServers"], want);
    assert_eq!(
        j["healthChecks"],
        json!([{"service": {"namespace": "default", "name": "lb"}, "nodePort": 32000, "localEndpoints": 0}])
    );
    assert_eq!(
        j["node"],
        json!({"name": NODE, "zone": "zone-a", "addresses": [NODE_IP]})
    );

    // Row for row, the JSON and the text agree.
    let text = render_text(m.table(), m.node());
    let text_rows: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("health-check"))
        .collect();
    let json_rows = j["virtualServers"].as_array().expect("array");
    assert_eq!(text_rows.len(), json_rows.len());
    for (line, row) in text_rows.iter().zip(json_rows) {
        let address = row["address"].as_str().expect("address");
        let shown = if address.contains(':') {
            format!("[{address}]")
        } else {
            address.to_string()
        };
        let prefix = format!(
            "{} {}:{} {}",
            row["protocol"].as_str().unwrap(),
            shown,
            row["port"],
            row["kind"].as_str().unwrap()
        );
        assert!(line.starts_with(&prefix), "{line} vs {prefix}");
    }
}
