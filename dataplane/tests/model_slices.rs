//! EndpointSlices as the proxy reads them and merges them per Service (kube-proxy
//! `pkg/proxy/endpointslicecache.go` and the informer label selector in
//! `cmd/kube-proxy/app/server.go`).

mod fixtures;

use std::collections::BTreeMap;

use fixtures::{ep, model, rows, slice, strings, svc, Slice, OTHER};
use serde_json::json;
use svcplane_dataplane::model::{
    EndpointSliceCache, Family, Protocol, ProxyConfig, ProxyModel, ServiceName, SliceInfo,
};

fn web() -> fixtures::Svc {
    svc("web").port("", "TCP", 80)
}

/// The ClusterIP row's destinations of `web` after applying these slices.
fn web_endpoints(slices: &[Slice]) -> Vec<String> {
    let m = model(&[web()], slices);
    rows(m.table())
        .remove("TCP 10.96.0.10:80")
        .expect("the ClusterIP row")
}

#[test]
fn slices_the_proxy_does_not_read() {
    let good = || {
        slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"))
    };
    let cases: Vec<(&str, Slice)> = vec![
        (
            "endpointSliceCacheKeys: no kubernetes.io/service-name label",
            good().without_label("kubernetes.io/service-name"),
        ),
        (
            "endpointSliceCacheKeys: an empty kubernetes.io/service-name label",
            good().label("kubernetes.io/service-name", ""),
        ),
        (
            "supportedEndpointSliceAddressTypes: addressType FQDN",
            slice("web", "web-1")
                .address_type("FQDN")
                .port("", "TCP", 8080)
                .ep(ep("web.example.com")),
        ),
        (
            "kube-proxy informers: a slice labelled service.kubernetes.io/headless",
            good().label("service.kubernetes.io/headless", ""),
        ),
        (
            "kube-proxy informers: a slice labelled service.kubernetes.io/service-proxy-name",
            good().label("service.kubernetes.io/service-proxy-name", "other-proxy"),
        ),
        (
            "a slice of the same Service name in another namespace",
            good().namespace("elsewhere"),
        ),
    ];
    for (rule, s) in cases {
        assert!(web_endpoints(&[s]).is_empty(), "{rule}");
    }
}

#[test]
fn a_slice_that_loses_its_service_label_is_forgotten() {
    let labelled = slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1"));
    let mut m = model(&[web()], std::slice::from_ref(&labelled));
    assert_eq!(m.object_counts(), (1, 1));
    m.upsert_slice(&labelled.without_label("kubernetes.io/service-name").build());
    let changes = m.commit();
    assert_eq!(m.object_counts(), (1, 0));
    assert!(changes
        .services
        .contains(&ServiceName::new("default", "web")));
    assert!(rows(m.table())["TCP 10.96.0.10:80"].is_empty());
}

#[test]
fn a_slice_relabelled_to_another_service_moves_its_endpoints() {
    let s = slice("web", "shared")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1"));
    let mut m = model(
        &[
            web(),
            svc("api").cluster_ips(&["10.96.0.11"]).port("", "TCP", 80),
        ],
        std::slice::from_ref(&s),
    );
    m.upsert_slice(&s.label("kubernetes.io/service-name", "api").build());
    let changes = m.commit();
    let got = rows(m.table());
    assert!(got["TCP 10.96.0.10:80"].is_empty(), "web lost the endpoint");
    assert_eq!(got["TCP 10.96.0.11:80"], strings(&["10.0.0.1:8080"]));
    assert_eq!(
        changes.services.into_iter().collect::<Vec<_>>(),
        vec![
            ServiceName::new("default", "api"),
            ServiceName::new("default", "web")
        ]
    );
}

#[test]
fn slices_of_one_service_merge_and_an_endpoint_in_two_slices_counts_once() {
    let a = slice("web", "web-a")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1"))
        .ep(ep("10.0.0.2"));
    let b = slice("web", "web-b")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.2"))
        .ep(ep("10.0.0.3"));
    assert_eq!(
        web_endpoints(&[a.clone(), b.clone()]),
        strings(&["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"])
    );
    // The same address on another target port is another endpoint (Endpoint.String is ip:port).
    let c = slice("web", "web-c")
        .port("", "TCP", 9090)
        .ep(ep("10.0.0.2"));
    assert_eq!(
        web_endpoints(&[a, b, c]),
        strings(&[
            "10.0.0.1:8080",
            "10.0.0.2:8080",
            "10.0.0.2:9090",
            "10.0.0.3:8080"
        ])
    );
}

#[test]
fn a_duplicate_endpoint_prefers_the_copy_that_is_not_terminating() {
    // endpointslicecache.go addEndpoints (kubernetes#135593): when two endpoints share an
    // address — an endpoint moving between slices, or a Pod IP reused while the old Pod is
    // still terminating — the non-terminating one wins, whichever slice it is in (the local
    // copy is not preferred any more).
    for (first, second) in [("web-a", "web-b"), ("web-b", "web-a")] {
        let terminating = slice("web", first)
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1").terminating(false).local())
            .ep(ep("10.0.0.9"));
        let running = slice("web", second)
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1"));
        assert_eq!(
            web_endpoints(&[terminating, running]),
            strings(&["10.0.0.1:8080", "10.0.0.9:8080"]),
            "ghost in {first}, running Pod in {second}"
        );
    }
}

#[test]
fn a_duplicate_endpoint_does_not_depend_on_the_order_slices_arrive_in() {
    // Upstream lets a later copy replace an earlier one unless it is terminating, in map
    // order; we walk the slices in name order, so the copy in the slice whose name sorts last
    // wins among equals, whatever the arrival order.
    let a = slice("web", "web-a")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1").node(OTHER).zone("zone-b"));
    let b = slice("web", "web-b")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1").local().zone("zone-a"));
    let winner = |order: &[&Slice]| {
        let mut cache = EndpointSliceCache::default();
        for s in order {
            cache.upsert(SliceInfo::from_slice(&s.build()).expect("read"));
        }
        let eps = cache.endpoints(&ServiceName::new("default", "web"));
        let list = &eps[&(String::new(), Protocol::Tcp, Family::IPv4)];
        assert_eq!(list.len(), 1);
        list[0].zone.as_deref().map(str::to_string)
    };
    assert_eq!(winner(&[&a, &b]), winner(&[&b, &a]));
    assert_eq!(winner(&[&a, &b]).as_deref(), Some("zone-a"));
}

#[test]
fn slice_ports_the_proxy_skips_and_api_defaults_it_applies() {
    let cases: Vec<(&str, serde_json::Value, Vec<&str>)> = vec![
        (
            "endpointInfoByServicePort: a port without a number is skipped",
            json!({"name": "", "protocol": "TCP"}),
            vec![],
        ),
        (
            "endpointInfoByServicePort: port 0 is skipped",
            json!({"name": "", "protocol": "TCP", "port": 0}),
            vec![],
        ),
        (
            "a protocol the proxy does not know is skipped",
            json!({"name": "", "protocol": "ICMP", "port": 8080}),
            vec![],
        ),
        (
            "SetDefaults_EndpointPort: unset name and protocol are \"\" and TCP",
            json!({"port": 8080}),
            vec!["10.0.0.1:8080"],
        ),
        (
            "a UDP port does not feed a TCP Service port",
            json!({"name": "", "protocol": "UDP", "port": 8080}),
            vec![],
        ),
        (
            "a named port does not feed an unnamed Service port",
            json!({"name": "http", "protocol": "TCP", "port": 8080}),
            vec![],
        ),
    ];
    for (rule, port, want) in cases {
        let s = slice("web", "web-1").raw_port(port).ep(ep("10.0.0.1"));
        assert_eq!(web_endpoints(&[s]), strings(&want), "{rule}");
    }
}

#[test]
fn endpoints_the_proxy_skips() {
    let cases: Vec<(&str, serde_json::Value)> = vec![
        (
            "addEndpoints: an endpoint without addresses",
            json!({"addresses": [], "conditions": {"ready": true}}),
        ),
        (
            "an address of the other family than the slice's addressType",
            json!({"addresses": ["fd00::1"], "conditions": {"ready": true}}),
        ),
        (
            "an address that does not parse",
            json!({"addresses": ["10.0.0"], "conditions": {"ready": true}}),
        ),
    ];
    for (rule, endpoint) in cases {
        let s = slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(fixtures::Ep(endpoint))
            .ep(ep("10.0.0.2"));
        assert_eq!(web_endpoints(&[s]), strings(&["10.0.0.2:8080"]), "{rule}");
    }
    let two_addresses = slice("web", "web-1").port("", "TCP", 8080).ep(fixtures::Ep(
        json!({"addresses": ["10.0.0.3", "10.0.0.4"], "conditions": {"ready": true}}),
    ));
    assert_eq!(
        web_endpoints(&[two_addresses]),
        strings(&["10.0.0.3:8080"]),
        "addEndpoints: only addresses[0] is used"
    );
}

#[test]
fn unset_conditions_take_the_api_defaults() {
    // EndpointConditions: ready and serving unset mean true, terminating unset means false
    // (endpointslicecache.go addEndpoints).
    let s = |ready, serving, terminating| {
        slice("web", "web-1")
            .port("", "TCP", 8080)
            .ep(ep("10.0.0.1").conditions(ready, serving, terminating))
    };
    let cases = [
        (
            "every condition unset → ready",
            s(None, None, None),
            vec!["10.0.0.1:8080"],
        ),
        (
            "ready false, serving and terminating unset → not ready, no fallback (not terminating)",
            s(Some(false), None, None),
            vec![],
        ),
        (
            "ready false, terminating true, serving unset → serving-terminating fallback",
            s(Some(false), None, Some(true)),
            vec!["10.0.0.1:8080"],
        ),
        (
            "ready unset, terminating true → still ready (ready decides)",
            s(None, Some(false), Some(true)),
            vec!["10.0.0.1:8080"],
        ),
    ];
    for (rule, slice_, want) in cases {
        assert_eq!(web_endpoints(&[slice_]), strings(&want), "{rule}");
    }
    let no_conditions = slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(fixtures::Ep(json!({"addresses": ["10.0.0.1"]})));
    assert_eq!(
        web_endpoints(&[no_conditions]),
        strings(&["10.0.0.1:8080"]),
        "no conditions object at all → ready"
    );
}

#[test]
fn locality_is_by_node_name_and_needs_a_node_name() {
    let itp_local = svc("web").port("", "TCP", 80).itp_local();
    let eps = slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1").local())
        .ep(ep("10.0.0.2").no_node())
        .ep(ep("10.0.0.3").node(""));
    let m = model(std::slice::from_ref(&itp_local), std::slice::from_ref(&eps));
    assert_eq!(
        rows(m.table())["TCP 10.96.0.10:80"],
        strings(&["10.0.0.1:8080"])
    );

    // EndpointSliceCache.isLocal: a proxy without a node name has no local endpoint, not even
    // one whose nodeName is "" too.
    let mut nameless = ProxyModel::new(ProxyConfig::default());
    nameless.upsert_service(&itp_local.build());
    nameless.upsert_slice(&eps.build());
    nameless.commit();
    assert_eq!(
        rows(nameless.table()),
        BTreeMap::from([("TCP 10.96.0.10:80".to_string(), Vec::<String>::new())])
    );
}

#[test]
fn within_one_slice_a_later_copy_replaces_an_earlier_one_unless_terminating() {
    let later_ready = slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1").unready())
        .ep(ep("10.0.0.1"));
    assert_eq!(web_endpoints(&[later_ready]), strings(&["10.0.0.1:8080"]));
    let later_terminating = slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.1"))
        .ep(ep("10.0.0.1").terminating(true));
    assert_eq!(
        web_endpoints(&[later_terminating]),
        strings(&["10.0.0.1:8080"])
    );
}

#[test]
fn endpoints_are_sorted_by_address_and_port_whatever_the_slice_order() {
    let s = slice("web", "web-1")
        .port("", "TCP", 8080)
        .ep(ep("10.0.0.10"))
        .ep(ep("10.0.0.9"))
        .ep(ep("10.0.0.1"));
    assert_eq!(
        web_endpoints(&[s]),
        strings(&["10.0.0.1:8080", "10.0.0.9:8080", "10.0.0.10:8080"])
    );
}

#[test]
fn slice_info_reads_the_fields_the_proxy_uses() {
    let t: jiff::Timestamp = "2026-01-02T03:04:05.123456789Z".parse().expect("time");
    let s = slice("web", "web-1")
        .ipv6()
        .port("", "TCP", 8080)
        .ep(ep("fd00::1"))
        .trigger_time(t)
        .build();
    let info = SliceInfo::from_slice(&s).expect("a proxied slice");
    assert_eq!(info.service, ServiceName::new("default", "web"));
    assert_eq!(info.name, "web-1");
    assert_eq!(info.family, Family::IPv6);
    assert_eq!(info.trigger_time, Some(t));
}

#[test]
fn node_names_are_shared_between_endpoints_and_survive_pruning() {
    // The cache keeps one copy of each node name; names no endpoint uses any more are
    // dropped as the set grows, without touching names still in use.
    let mut cache = EndpointSliceCache::default();
    let read = |s: &Slice| SliceInfo::from_slice(&s.build()).expect("read");
    for i in 0..200 {
        let node = format!("node-{i}");
        let s = slice("web", &format!("web-{i:03}"))
            .port("", "TCP", 8080)
            .ep(ep(&format!("10.0.{}.{}", i / 200, i % 200 + 1)).node(&node));
        cache.upsert(read(&s));
        if i % 2 == 1 {
            // Odd slices go away again: their node names are no longer used.
            assert!(cache.remove("default", &format!("web-{i:03}")).is_some());
        }
    }
    let other = slice("api", "api-1")
        .port("", "TCP", 8080)
        .ep(ep("10.1.0.1").node("node-0"));
    cache.upsert(read(&other));
    let key = (String::new(), Protocol::Tcp, Family::IPv4);
    let web = cache.endpoints(&ServiceName::new("default", "web"));
    let api = cache.endpoints(&ServiceName::new("default", "api"));
    let web = &web[&key];
    assert_eq!(web.len(), 100, "the even slices remain");
    for e in web {
        let last: u32 = e
            .address
            .to_string()
            .rsplit('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            e.node_name.as_deref(),
            Some(format!("node-{}", last - 1).as_str())
        );
    }
    let shared = |a: &Option<std::sync::Arc<str>>, b: &Option<std::sync::Arc<str>>| {
        std::sync::Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap())
    };
    assert!(
        shared(&web[0].node_name, &api[&key][0].node_name),
        "one copy of node-0 for both Services"
    );
}
