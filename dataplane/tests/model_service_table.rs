//! The desired table of one node, from Service, EndpointSlice and Node objects: which virtual
//! servers exist (kube-proxy `serviceport.go` `newBaseServiceInfo`, `ShouldSkipService`) and
//! which endpoint set each kind of virtual address forwards to (kube-proxy's proxiers: ClusterIP
//! follows `internalTrafficPolicy`, NodePort / externalIP / load-balancer IP follow
//! `externalTrafficPolicy`). Rows name the rule they check.

mod fixtures;

use std::collections::BTreeMap;

use fixtures::{
    config, ep, model, model_with, name, node, row, rows, slice, strings, svc, Slice, Svc, NODE,
};
use svcplane_dataplane::model::{
    EndpointSet, FrontendKind, Masquerade, NodePortAddresses, ProxyConfig, ProxyModel, Scheduler,
};

/// The endpoints most rows use: `10.0.0.1` on this node, `10.0.0.2` elsewhere, both ready,
/// target port 8080 for the unnamed TCP port.
fn web_slice() -> Slice {
    slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1").local())
        .ep(ep("10.0.0.2"))
}

/// Only the remote endpoint.
fn remote_only() -> Slice {
    slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.2"))
}

const BOTH: &[&str] = &["10.0.0.1:8080", "10.0.0.2:8080"];
const LOCAL: &[&str] = &["10.0.0.1:8080"];
const REMOTE: &[&str] = &["10.0.0.2:8080"];
const NONE: &[&str] = &[];

struct Row {
    rule: &'static str,
    service: Svc,
    slices: Vec<Slice>,
    /// Every virtual server of the table with its destinations.
    want: Vec<(&'static str, &'static [&'static str])>,
}

fn check(rows_: Vec<Row>) {
    for r in rows_ {
        let m = model(std::slice::from_ref(&r.service), &r.slices);
        let got = rows(m.table());
        let want: BTreeMap<String, Vec<String>> = r
            .want
            .iter()
            .map(|(k, v)| (k.to_string(), strings(v)))
            .collect();
        assert_eq!(got, want, "{}", r.rule);
    }
}

#[test]
fn each_kind_of_virtual_address_uses_the_endpoint_set_of_its_traffic_policy() {
    check(vec![
        Row {
            rule: "ClusterIP Service: one virtual server on the ClusterIP with every ready endpoint",
            service: svc("web").port("", "TCP", 80),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH)],
        },
        Row {
            rule: "NodePort Service: the ClusterIP and each node address on the nodePort, both policy Cluster",
            service: svc("web").type_("NodePort").node_port("", "TCP", 80, 30080),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH), ("TCP 192.168.0.1:30080", BOTH)],
        },
        Row {
            rule: "ETP Local NodePort: the NodePort forwards to local endpoints only; ClusterIP traffic is not external and keeps every endpoint",
            service: svc("web").type_("NodePort").node_port("", "TCP", 80, 30080).etp_local(),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH), ("TCP 192.168.0.1:30080", LOCAL)],
        },
        Row {
            rule: "ETP Local LoadBalancer: load-balancer IP and NodePort local, ClusterIP every endpoint",
            service: svc("web")
                .type_("LoadBalancer")
                .node_port("", "TCP", 80, 30080)
                .etp_local()
                .ingress("203.0.113.10", None),
            slices: vec![web_slice()],
            want: vec![
                ("TCP 10.96.0.10:80", BOTH),
                ("TCP 192.168.0.1:30080", LOCAL),
                ("TCP 203.0.113.10:80", LOCAL),
            ],
        },
        Row {
            rule: "apiservice.ExternalPolicyLocal: externalIPs make a ClusterIP Service external, so ETP Local applies to them",
            service: svc("web")
                .port("", "TCP", 80)
                .external_ips(&["198.51.100.7"])
                .etp_local(),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH), ("TCP 198.51.100.7:80", LOCAL)],
        },
        Row {
            rule: "apiservice.ExternalPolicyLocal: ETP Local on a ClusterIP Service without externalIPs changes nothing",
            service: svc("web").port("", "TCP", 80).etp_local(),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH)],
        },
        Row {
            rule: "ETP Local, no local endpoint: external virtual servers reject while the ClusterIP keeps the remote endpoints",
            service: svc("web")
                .type_("LoadBalancer")
                .node_port("", "TCP", 80, 30080)
                .etp_local()
                .ingress("203.0.113.10", None),
            slices: vec![remote_only()],
            want: vec![
                ("TCP 10.96.0.10:80", REMOTE),
                ("TCP 192.168.0.1:30080", NONE),
                ("TCP 203.0.113.10:80", NONE),
            ],
        },
        Row {
            rule: "ITP Local: the ClusterIP forwards to local endpoints only, external addresses (ETP Cluster) to every endpoint",
            service: svc("web")
                .type_("NodePort")
                .node_port("", "TCP", 80, 30080)
                .external_ips(&["198.51.100.7"])
                .itp_local(),
            slices: vec![web_slice()],
            want: vec![
                ("TCP 10.96.0.10:80", LOCAL),
                ("TCP 192.168.0.1:30080", BOTH),
                ("TCP 198.51.100.7:80", BOTH),
            ],
        },
        Row {
            // kube-proxy's IPVS proxier (ipvs/proxier.go syncEndpoint) would put the cluster
            // endpoints here when the port is also external; the seed and the iptables and
            // nftables proxiers give zero endpoints, and so do we.
            rule: "ITP Local, no local endpoint: the ClusterIP rejects even though the Service has a NodePort (seed: behaves as if it has zero endpoints)",
            service: svc("web").type_("NodePort").node_port("", "TCP", 80, 30080).itp_local(),
            slices: vec![remote_only()],
            want: vec![("TCP 10.96.0.10:80", NONE), ("TCP 192.168.0.1:30080", REMOTE)],
        },
        Row {
            rule: "ITP Local and ETP Local: each kind of address gets the local set",
            service: svc("web")
                .type_("NodePort")
                .node_port("", "TCP", 80, 30080)
                .itp_local()
                .etp_local(),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", LOCAL), ("TCP 192.168.0.1:30080", LOCAL)],
        },
        Row {
            rule: "no EndpointSlice: the virtual servers exist and reject",
            service: svc("web").type_("NodePort").node_port("", "TCP", 80, 30080),
            slices: vec![],
            want: vec![("TCP 10.96.0.10:80", NONE), ("TCP 192.168.0.1:30080", NONE)],
        },
        Row {
            rule: "a NodePort Service port without an allocated nodePort has only its ClusterIP",
            service: svc("web").type_("NodePort").port("", "TCP", 80),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH)],
        },
        Row {
            rule: "a nodePort on a ClusterIP Service (the API server forbids it) is ignored",
            service: svc("web").node_port("", "TCP", 80, 30080),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH)],
        },
        Row {
            rule: "a Service without ports has no virtual server",
            service: svc("web"),
            slices: vec![web_slice()],
            want: vec![],
        },
        Row {
            rule: "ServicePortName: each port takes the slice port with the same name and protocol",
            service: svc("dns")
                .port("dns", "UDP", 53)
                .port("dns-tcp", "TCP", 53)
                .port("metrics", "TCP", 9153),
            slices: vec![slice("dns", "dns-1")
                .port("dns", "UDP", 5353)
                .port("dns-tcp", "TCP", 5354)
                .port("metrics", "UDP", 9153)
                .ep(ep("10.0.0.5"))],
            want: vec![
                ("TCP 10.96.0.10:53", &["10.0.0.5:5354"]),
                ("TCP 10.96.0.10:9153", NONE),
                ("UDP 10.96.0.10:53", &["10.0.0.5:5353"]),
            ],
        },
    ]);
}

#[test]
fn load_balancer_ingress_ips_become_virtual_servers_unless_proxy_mode() {
    let lb = || {
        svc("web")
            .type_("LoadBalancer")
            .node_port("", "TCP", 80, 30080)
    };
    check(vec![
        Row {
            rule: "KEP-1860: ipMode unset is VIP",
            service: lb().ingress("203.0.113.10", None),
            slices: vec![web_slice()],
            want: vec![
                ("TCP 10.96.0.10:80", BOTH),
                ("TCP 192.168.0.1:30080", BOTH),
                ("TCP 203.0.113.10:80", BOTH),
            ],
        },
        Row {
            rule: "KEP-1860: ipMode VIP gets a virtual server",
            service: lb().ingress("203.0.113.10", Some("VIP")),
            slices: vec![web_slice()],
            want: vec![
                ("TCP 10.96.0.10:80", BOTH),
                ("TCP 192.168.0.1:30080", BOTH),
                ("TCP 203.0.113.10:80", BOTH),
            ],
        },
        Row {
            rule:
                "KEP-1860: ipMode Proxy is skipped (the load balancer delivers to the node itself)",
            service: lb()
                .ingress("203.0.113.10", Some("Proxy"))
                .ingress("203.0.113.11", None),
            slices: vec![web_slice()],
            want: vec![
                ("TCP 10.96.0.10:80", BOTH),
                ("TCP 192.168.0.1:30080", BOTH),
                ("TCP 203.0.113.11:80", BOTH),
            ],
        },
        Row {
            rule: "proxyutil.IsVIPMode: any ipMode other than VIP is not a VIP",
            service: lb().ingress("203.0.113.10", Some("Passthrough")),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH), ("TCP 192.168.0.1:30080", BOTH)],
        },
        Row {
            rule: "an ingress entry with only a hostname has no address to serve",
            service: lb().set(
                "/status",
                serde_json::json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}),
            ),
            slices: vec![web_slice()],
            want: vec![("TCP 10.96.0.10:80", BOTH), ("TCP 192.168.0.1:30080", BOTH)],
        },
    ]);
}

#[test]
fn services_the_proxy_skips_get_no_virtual_server() {
    let cases: Vec<(&str, Svc)> = vec![
        (
            "ShouldSkipService: headless (clusterIP None)",
            svc("web").headless().port("", "TCP", 80),
        ),
        (
            "ShouldSkipService: no ClusterIP yet (\"\")",
            svc("web").cluster_ips(&[""]).port("", "TCP", 80),
        ),
        (
            "ShouldSkipService: ExternalName, even with a clusterIP set",
            svc("web")
                .type_("ExternalName")
                .set("/spec/externalName", serde_json::json!("db.example.com"))
                .port("", "TCP", 80),
        ),
        (
            "kube-proxy informers: a Service labelled service.kubernetes.io/service-proxy-name belongs to another proxy",
            svc("web")
                .port("", "TCP", 80)
                .label("service.kubernetes.io/service-proxy-name", "other-proxy"),
        ),
        (
            "kube-proxy informers: a Service labelled service.kubernetes.io/headless",
            svc("web")
                .port("", "TCP", 80)
                .label("service.kubernetes.io/headless", ""),
        ),
    ];
    for (rule, service) in cases {
        let m = model(&[service], &[web_slice()]);
        assert!(m.table().is_empty(), "{rule}: {:?}", rows(m.table()));
        assert!(m.table().service(&name("web")).is_none(), "{rule}");
        assert!(m.selections(&name("web")).is_none(), "{rule}");
    }
}

#[test]
fn a_proxied_service_that_becomes_headless_or_external_name_loses_its_rows() {
    let mut m = model(&[svc("web").port("", "TCP", 80)], &[web_slice()]);
    assert_eq!(m.table().len(), 1);
    m.upsert_service(&svc("web").type_("ExternalName").port("", "TCP", 80).build());
    let changes = m.commit();
    assert!(m.table().is_empty());
    assert_eq!(
        changes.services.into_iter().collect::<Vec<_>>(),
        vec![name("web")]
    );
}

#[test]
fn session_affinity_timeout_defaults_to_three_hours() {
    let cases = [
        ("sessionAffinity None → no persistence", svc("web"), None),
        (
            "ClientIP without sessionAffinityConfig → v1.DefaultClientIPServiceAffinitySeconds (10800)",
            svc("web").client_ip_affinity(None),
            Some(10_800),
        ),
        (
            "ClientIP with timeoutSeconds 60 → 60",
            svc("web").client_ip_affinity(Some(60)),
            Some(60),
        ),
    ];
    for (rule, service, want) in cases {
        let service = service
            .type_("LoadBalancer")
            .node_port("", "TCP", 80, 30080)
            .external_ips(&["198.51.100.7"])
            .ingress("203.0.113.10", None);
        let m = model(&[service], &[web_slice()]);
        assert_eq!(m.table().len(), 4, "{rule}");
        for vs in m.table().virtual_servers() {
            assert_eq!(vs.affinity_timeout, want, "{rule}: {}", vs.key);
        }
    }
}

#[test]
fn every_virtual_server_uses_the_configured_scheduler() {
    let cfg = ProxyConfig {
        scheduler: "mh".parse().expect("known scheduler"),
        ..config()
    };
    let m = model_with(
        cfg,
        &[svc("web").type_("NodePort").node_port("", "TCP", 80, 30080)],
        &[web_slice()],
    );
    assert!(m
        .table()
        .virtual_servers()
        .all(|vs| vs.scheduler == Scheduler::MaglevHashing));
    assert!("bogus".parse::<Scheduler>().is_err());
}

/// A model whose Node has the given addresses (and the NodePort Service `web` on 30080).
fn nodeport_model(addresses: NodePortAddresses, node_obj: fixtures::NodeObj) -> ProxyModel {
    let mut m = ProxyModel::new(ProxyConfig {
        nodeport_addresses: addresses,
        ..config()
    });
    m.set_node(&node_obj.build());
    m.upsert_service(
        &svc("web")
            .cluster_ips(&["10.96.0.10", "fd00:96::10"])
            .type_("NodePort")
            .node_port("", "TCP", 80, 30080)
            .build(),
    );
    m.commit();
    m
}

fn nodeport_keys(m: &ProxyModel) -> Vec<String> {
    m.table()
        .virtual_servers()
        .filter(|vs| vs.kind == FrontendKind::NodePort)
        .map(|vs| vs.key.to_string())
        .collect()
}

#[test]
fn nodeport_addresses_filter_the_node_addresses_nodeports_listen_on() {
    let multi_homed = || {
        node(NODE)
            .internal("192.168.0.1")
            .internal("10.10.0.1")
            .external("203.0.113.1")
            .internal("fd00::1")
            .external("2001:db8::1")
            .address("Hostname", "node-a.example")
    };
    let cases: Vec<(&str, &str, fixtures::NodeObj, Vec<&str>)> = vec![
        (
            "default (empty): every InternalIP and ExternalIP of each family",
            "",
            multi_homed(),
            vec![
                "TCP 10.10.0.1:30080",
                "TCP 192.168.0.1:30080",
                "TCP 203.0.113.1:30080",
                "TCP [2001:db8::1]:30080",
                "TCP [fd00::1]:30080",
            ],
        ),
        (
            "primary: the first InternalIP of each family (utilnode.GetNodeHostIPs)",
            "primary",
            multi_homed(),
            vec!["TCP 192.168.0.1:30080", "TCP [fd00::1]:30080"],
        ),
        (
            "primary: a family with only an ExternalIP uses it (GetNodeHostIPs sorts InternalIPs first, then ExternalIPs)",
            "primary",
            node(NODE).internal("192.168.0.1").external("2001:db8::1"),
            vec!["TCP 192.168.0.1:30080", "TCP [2001:db8::1]:30080"],
        ),
        (
            "CIDRs: only node addresses inside one of them",
            "10.10.0.0/16,2001:db8::/32",
            multi_homed(),
            vec!["TCP 10.10.0.1:30080", "TCP [2001:db8::1]:30080"],
        ),
        (
            "CIDRs: host bits are ignored (Go's ParseCIDR network)",
            "192.168.0.77/24,fd00::7/64",
            multi_homed(),
            vec!["TCP 192.168.0.1:30080", "TCP [fd00::1]:30080"],
        ),
        (
            "NewNodePortAddresses: a family without any CIDR matches every address of that family",
            "10.10.0.0/16",
            multi_homed(),
            vec![
                "TCP 10.10.0.1:30080",
                "TCP [2001:db8::1]:30080",
                "TCP [fd00::1]:30080",
            ],
        ),
        (
            "CIDRs: no node address inside → no NodePort virtual server of that family",
            "172.16.0.0/12,fc00::/16",
            node(NODE).internal("192.168.0.1").internal("2001:db8::1"),
            vec![],
        ),
    ];
    for (rule, flag, node_obj, want) in cases {
        let addresses: NodePortAddresses = flag.parse().expect("valid flag");
        let m = nodeport_model(addresses, node_obj);
        assert_eq!(nodeport_keys(&m), strings(&want), "{rule}");
    }
    assert!("10.0.0.0/8,bogus".parse::<NodePortAddresses>().is_err());
}

#[test]
fn dual_stack_families_each_get_their_own_endpoints() {
    let service = svc("web")
        .cluster_ips(&["10.96.0.10", "fd00:96::10"])
        .type_("LoadBalancer")
        .node_port("", "TCP", 80, 30080)
        .external_ips(&["198.51.100.7", "2001:db8:7::7"])
        .ingress("203.0.113.10", None)
        .ingress("2001:db8:10::10", None);
    let v4 = slice("web", "web-v4")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1").local());
    let v6 = slice("web", "web-v6")
        .ipv6()
        .port("", "TCP", 8080)
        .ep(ep("fd00:10::1").local())
        .ep(ep("fd00:10::2"));
    let mut m = ProxyModel::new(config());
    m.set_node(
        &node(NODE)
            .internal("192.168.0.1")
            .internal("fd00::1")
            .build(),
    );
    m.upsert_service(&service.build());
    m.upsert_slice(&v4.build());
    m.upsert_slice(&v6.build());
    m.commit();
    let v4_eps = strings(&["10.0.0.1:8080"]);
    let v6_eps = strings(&["[fd00:10::1]:8080", "[fd00:10::2]:8080"]);
    let want: BTreeMap<String, Vec<String>> = [
        ("TCP 10.96.0.10:80", &v4_eps),
        ("TCP 192.168.0.1:30080", &v4_eps),
        ("TCP 198.51.100.7:80", &v4_eps),
        ("TCP 203.0.113.10:80", &v4_eps),
        ("TCP [2001:db8:10::10]:80", &v6_eps),
        ("TCP [2001:db8:7::7]:80", &v6_eps),
        ("TCP [fd00:96::10]:80", &v6_eps),
        ("TCP [fd00::1]:30080", &v6_eps),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    assert_eq!(rows(m.table()), want);
}

#[test]
fn a_family_without_a_cluster_ip_gets_nothing_even_with_endpoints_and_node_addresses() {
    // kube-proxy's per-family service tracker drops a Service without a ClusterIP of its family
    // (servicechangetracker.go serviceToServiceMap), NodePorts, externalIPs and LB IPs included.
    let service = svc("web")
        .type_("LoadBalancer")
        .node_port("", "TCP", 80, 30080)
        .external_ips(&["198.51.100.7", "2001:db8:7::7"])
        .ingress("2001:db8:10::10", None);
    let v6 = slice("web", "web-v6")
        .ipv6()
        .port("", "TCP", 8080)
        .ep(ep("fd00:10::1").local());
    let mut m = ProxyModel::new(config());
    m.set_node(
        &node(NODE)
            .internal("192.168.0.1")
            .internal("fd00::1")
            .build(),
    );
    m.upsert_service(&service.build());
    m.upsert_slice(&v6.build());
    m.commit();
    let keys: Vec<String> = rows(m.table()).into_keys().collect();
    assert_eq!(
        keys,
        strings(&[
            "TCP 10.96.0.10:80",
            "TCP 192.168.0.1:30080",
            "TCP 198.51.100.7:80"
        ])
    );
    assert!(m
        .table()
        .virtual_servers()
        .all(|vs| vs.destinations.is_empty()));
}

#[test]
fn load_balancer_source_ranges_come_from_the_spec_field_only_and_apply_to_lb_addresses() {
    let service = svc("web")
        .cluster_ips(&["10.96.0.10", "fd00:96::10"])
        .type_("LoadBalancer")
        .node_port("", "TCP", 80, 30080)
        .ingress("203.0.113.10", None)
        .ingress("2001:db8:10::10", None)
        .source_ranges(&[" 198.51.100.0/24", "10.1.2.3/8", "2001:db8:1::/48", "bogus"]);
    let mut m = ProxyModel::new(config());
    m.set_node(&node(NODE).internal("192.168.0.1").build());
    let warnings = m.upsert_service(&service.build());
    m.commit();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("spec.loadBalancerSourceRanges[3]") && w.contains("bogus")),
        "{warnings:?}"
    );
    let ranges = |key: &str| -> Vec<String> {
        row(m.table(), key)
            .unwrap_or_else(|| panic!("{key} in the table"))
            .source_ranges
            .iter()
            .map(|r| r.to_string())
            .collect()
    };
    // serviceport.go: source ranges filtered to the family, whitespace trimmed; Go's
    // ParseCIDR keeps the network of 10.1.2.3/8.
    assert_eq!(
        ranges("TCP 203.0.113.10:80"),
        strings(&["198.51.100.0/24", "10.0.0.0/8"])
    );
    assert_eq!(
        ranges("TCP [2001:db8:10::10]:80"),
        strings(&["2001:db8:1::/48"])
    );
    assert!(ranges("TCP 10.96.0.10:80").is_empty(), "not on ClusterIPs");
    assert!(
        ranges("TCP 192.168.0.1:30080").is_empty(),
        "not on NodePorts"
    );

    // kube-proxy reads spec.loadBalancerSourceRanges only; the older annotation is for cloud
    // providers (pkg/proxy/serviceport.go newBaseServiceInfo).
    let annotated = svc("web")
        .type_("LoadBalancer")
        .node_port("", "TCP", 80, 30080)
        .ingress("203.0.113.10", None)
        .annotation(
            "service.beta.kubernetes.io/load-balancer-source-ranges",
            "198.51.100.0/24",
        );
    let m = model(&[annotated], &[]);
    let vs = row(m.table(), "TCP 203.0.113.10:80").expect("LB row");
    assert!(vs.source_ranges.is_empty(), "{:?}", vs.source_ranges);
}

#[test]
fn masquerade_follows_the_address_kind_and_its_policy() {
    let service = || {
        svc("web")
            .type_("LoadBalancer")
            .node_port("", "TCP", 80, 30080)
            .external_ips(&["198.51.100.7"])
            .ingress("203.0.113.10", None)
    };
    let kinds = |m: &ProxyModel| -> BTreeMap<FrontendKind, (Masquerade, EndpointSet)> {
        m.table()
            .virtual_servers()
            .map(|vs| (vs.kind, (vs.masquerade, vs.endpoint_set)))
            .collect()
    };
    let cluster = kinds(&model(&[service()], &[web_slice()]));
    assert_eq!(
        cluster[&FrontendKind::ClusterIP],
        (Masquerade::OffClusterSources, EndpointSet::Cluster)
    );
    for kind in [
        FrontendKind::NodePort,
        FrontendKind::ExternalIP,
        FrontendKind::LoadBalancer,
    ] {
        assert_eq!(
            cluster[&kind],
            (Masquerade::Always, EndpointSet::Cluster),
            "ETP Cluster {kind}: masquerade so replies return through this node"
        );
    }
    let local = kinds(&model(&[service().etp_local()], &[web_slice()]));
    for kind in [
        FrontendKind::NodePort,
        FrontendKind::ExternalIP,
        FrontendKind::LoadBalancer,
    ] {
        assert_eq!(
            local[&kind],
            (Masquerade::Never, EndpointSet::Local),
            "ETP Local {kind}: the client's source address is kept"
        );
    }
    let all = kinds(&model_with(
        ProxyConfig {
            masquerade_all: true,
            ..config()
        },
        &[service()],
        &[web_slice()],
    ));
    assert_eq!(
        all[&FrontendKind::ClusterIP],
        (Masquerade::Always, EndpointSet::Cluster),
        "--masquerade-all"
    );
}

fn health_check(m: &ProxyModel) -> Option<(u16, usize)> {
    m.table()
        .service(&name("web"))
        .and_then(|s| s.health_check.as_ref())
        .map(|h| (h.node_port, h.local_endpoints))
}

#[test]
fn health_check_counts_distinct_local_ready_addresses_like_local_ready_endpoints() {
    let lb = || {
        svc("web")
            .type_("LoadBalancer")
            .node_port("http", "TCP", 80, 30080)
            .node_port("admin", "TCP", 81, 30081)
            .etp_local()
            .health_check_node_port(32000)
    };
    // One Pod on this node serving two ports counts once; a remote Pod, a local unready Pod and
    // a local serving-terminating Pod do not count (healthcheck: only ready endpoints).
    let pods = slice("web", "web-1")
        .port("http", "TCP", 8080)
        .port("admin", "TCP", 9090)
        .ep(ep("10.0.0.1").local())
        .ep(ep("10.0.0.2"))
        .ep(ep("10.0.0.3").local().unready())
        .ep(ep("10.0.0.4").local().terminating(true));
    assert_eq!(health_check(&model(&[lb()], &[pods])), Some((32000, 1)));

    let none_local = slice("web", "web-1")
        .port("http", "TCP", 8080)
        .ep(ep("10.0.0.2"))
        .ep(ep("10.0.0.4").local().terminating(true));
    assert_eq!(
        health_check(&model(&[lb()], &[none_local])),
        Some((32000, 0)),
        "only a terminating local endpoint → 0 (the load balancer must stop sending)"
    );

    // EndpointsMap.LocalReadyEndpoints counts over every port of the Service's slices, also a
    // slice port no Service port names (yet).
    let other_port = slice("web", "web-1")
        .port("metrics", "TCP", 9100)
        .ep(ep("10.0.0.9").local());
    assert_eq!(
        health_check(&model(&[lb()], &[other_port])),
        Some((32000, 1))
    );

    let dual = lb().cluster_ips(&["10.96.0.10", "fd00:96::10"]);
    let v4 = slice("web", "web-v4")
        .port("http", "TCP", 8080)
        .ep(ep("10.0.0.1").local());
    let v6 = slice("web", "web-v6")
        .ipv6()
        .port("http", "TCP", 8080)
        .ep(ep("fd00:10::1").local());
    assert_eq!(
        health_check(&model(&[dual], &[v4, v6])),
        Some((32000, 1)),
        "a dual-stack Pod is one local endpoint"
    );
}

#[test]
fn only_etp_local_load_balancers_have_a_health_check() {
    let cases = [
        (
            "apiservice.NeedsHealthCheck: NodePort with ETP Local has none",
            svc("web")
                .type_("NodePort")
                .node_port("", "TCP", 80, 30080)
                .etp_local()
                .health_check_node_port(32000),
        ),
        (
            "apiservice.NeedsHealthCheck: LoadBalancer with ETP Cluster has none",
            svc("web")
                .type_("LoadBalancer")
                .node_port("", "TCP", 80, 30080)
                .health_check_node_port(32000),
        ),
        (
            "serviceport.go: LoadBalancer ETP Local without healthCheckNodePort has none",
            svc("web")
                .type_("LoadBalancer")
                .node_port("", "TCP", 80, 30080)
                .etp_local(),
        ),
    ];
    for (rule, service) in cases {
        assert_eq!(
            health_check(&model(&[service], &[web_slice()])),
            None,
            "{rule}"
        );
    }
}

#[test]
fn unusable_values_are_skipped_with_a_warning_naming_the_field() {
    let service = svc("web")
        .cluster_ips(&["10.96.0.10", "not-an-ip"])
        .type_("LoadBalancer")
        .node_port("", "TCP", 80, 30080)
        .port("weird", "ICMP", 81)
        .external_ips(&["198.51.100.7", "nope"])
        .ingress("bad-ingress", None)
        .ingress("203.0.113.10", None);
    let mut m = ProxyModel::new(config());
    m.set_node(&node(NODE).internal("192.168.0.1").build());
    let warnings = m.upsert_service(&service.build());
    m.commit();
    for field in [
        "spec.clusterIPs[1]",
        "spec.ports[1].protocol",
        "spec.externalIPs[1]",
        "status.loadBalancer.ingress[0].ip",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(field)),
            "no warning for {field}: {warnings:?}"
        );
    }
    let keys: Vec<String> = rows(m.table()).into_keys().collect();
    assert_eq!(
        keys,
        strings(&[
            "TCP 10.96.0.10:80",
            "TCP 192.168.0.1:30080",
            "TCP 198.51.100.7:80",
            "TCP 203.0.113.10:80",
        ])
    );

    let nameless = svc("web")
        .port("", "TCP", 80)
        .set("/metadata/name", serde_json::Value::Null);
    let mut m = ProxyModel::new(config());
    let warnings = m.upsert_service(&nameless.build());
    assert!(
        warnings.iter().any(|w| w.contains("metadata.name")),
        "{warnings:?}"
    );
    assert!(m.commit().is_empty());
}

#[test]
fn a_node_without_zone_label_and_one_with_an_empty_label_are_both_in_zone_empty() {
    let hinted = slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1").for_zones(&[""]))
        .ep(ep("10.0.0.2").for_zones(&["zone-b"]));
    for (rule, node_obj) in [
        ("no topology.kubernetes.io/zone label", node(NODE)),
        ("topology.kubernetes.io/zone: \"\"", node(NODE).zone("")),
    ] {
        let mut m = ProxyModel::new(config());
        m.set_node(&node_obj.build());
        m.upsert_service(&svc("web").port("", "TCP", 80).build());
        m.upsert_slice(&hinted.build());
        m.commit();
        assert_eq!(m.node().zone, "", "{rule}");
        assert_eq!(
            rows(m.table())["TCP 10.96.0.10:80"],
            strings(&["10.0.0.1:8080"]),
            "{rule}: endpoints hinted for zone \"\" serve Nodes without a zone"
        );
    }
}

#[test]
fn selections_explain_every_port_and_family() {
    let service = svc("web")
        .cluster_ips(&["10.96.0.10", "fd00:96::10"])
        .type_("NodePort")
        .node_port("http", "TCP", 80, 30080)
        .port("dns", "UDP", 53)
        .itp_local();
    let m = model(
        &[service],
        &[slice("web", "web-1")
            .port("http", "TCP", 8080)
            .ep(ep("10.0.0.1").local())
            .ep(ep("10.0.0.2"))],
    );
    let selections = m.selections(&name("web")).expect("proxied");
    assert_eq!(selections.len(), 4, "2 ports × 2 families");
    let http_v4 = selections
        .iter()
        .find(|s| {
            s.service_port.port == "http" && s.family == svcplane_dataplane::model::Family::IPv4
        })
        .expect("http IPv4");
    assert_eq!(http_v4.endpoints.len(), 2);
    assert!(http_v4.selection.uses_cluster, "the port has a NodePort");
    assert!(http_v4.selection.uses_local, "ITP Local");
    assert_eq!(http_v4.selection.local.len(), 1);
    let local_ep = &http_v4.endpoints[http_v4.selection.local[0]];
    assert_eq!(local_ep.node_name.as_deref(), Some(NODE));
}
