//! ClusterIP and NodePort allocation through the embedded API server's Service create,
//! update and delete, checked over HTTP with kube-rs (and kubectl), against kube-apiserver
//! v1.32 behaviour (FACTS.md "Service allocation"; upstream
//! `pkg/registry/core/service/storage/alloc.go`).

use crate::allocation::support as allocation_support;

use std::net::IpAddr;

use allocation_support::*;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use svcplane_apiserver::Held;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP")
}

/// KEP-3070: with a /24 the static band is 16 addresses, so dynamic ClusterIPs start at
/// offset 16 (x.x.x.17); the `kubernetes` Service takes the first address.
#[tokio::test]
async fn first_dynamic_cluster_ip_comes_from_upper_band() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let kubernetes = api
        .get("kubernetes")
        .await
        .expect("default/kubernetes exists");
    assert_eq!(cluster_ips(&kubernetes), vec!["10.0.0.1"]);
    for i in 0..3 {
        let s = create_ok(&api, &format!("dyn-{i}"), json!({"ports": [{"port": 80}]})).await;
        let ips = cluster_ips(&s);
        assert_eq!(ips.len(), 1);
        let last = ip(&ips[0])
            .to_string()
            .rsplit('.')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap();
        assert!(last >= 17, "dynamic IP {} is in the static band", ips[0]);
        assert_eq!(
            s.spec.as_ref().unwrap().cluster_ip.as_deref(),
            Some(ips[0].as_str())
        );
        assert_eq!(
            s.spec.as_ref().unwrap().ip_families,
            Some(vec!["IPv4".to_string()])
        );
        assert_eq!(
            s.spec.as_ref().unwrap().ip_family_policy.as_deref(),
            Some("SingleStack")
        );
    }
    let page = debug_allocators(&f).await;
    let usage = range_usage(&page, "10.0.0.0/24");
    assert_eq!(usage["used"], 4);
    assert_eq!(usage["staticBandSize"], 16);
    assert_eq!(usage["staticBandUsed"], 1, "only default/kubernetes");
    assert_eq!(usage["dynamicBandUsed"], 3);
    assert_eq!(usage["total"], 254);
}

/// KEP-3668: 30000-32767 has a static band of 86 ports, so dynamic node ports are ≥ 30086.
#[tokio::test]
async fn first_dynamic_node_port_comes_from_upper_band() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let s = create_ok(
        &api,
        "np",
        json!({"type": "NodePort", "ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "b"}]}),
    )
    .await;
    let ports = node_ports(&s);
    assert_eq!(ports.len(), 2);
    for p in &ports {
        assert!(
            (30086..=32767).contains(p),
            "dynamic node port {p} outside the upper band"
        );
    }
    assert_ne!(ports[0], ports[1]);
    let usage = range_usage(&debug_allocators(&f).await, "30000-32767");
    assert_eq!(usage["dynamicBandUsed"], 2);
    assert_eq!(usage["staticBandUsed"], 0);
    assert_eq!(usage["staticBandSize"], 86);
}

#[tokio::test]
async fn dual_stack_service_gets_one_ip_per_family() {
    let f = start("10.0.0.0/24,fd00::/112", "30000-32767").await;
    let api = services(&f);
    for policy in ["RequireDualStack", "PreferDualStack"] {
        let name = policy.to_lowercase();
        let s = create_ok(
            &api,
            &name,
            json!({"ipFamilyPolicy": policy, "ports": [{"port": 80}]}),
        )
        .await;
        let ips = cluster_ips(&s);
        assert_eq!(ips.len(), 2, "{policy}: {ips:?}");
        assert!(ip(&ips[0]).is_ipv4() && ip(&ips[1]).is_ipv6(), "{ips:?}");
        assert!(ips[1].starts_with("fd00::"), "{ips:?}");
        assert_eq!(
            s.spec.as_ref().unwrap().ip_families,
            Some(vec!["IPv4".to_string(), "IPv6".to_string()])
        );
    }
    // SingleStack (the default) gets the primary family only; ipFamilies [IPv6] picks v6.
    let single = create_ok(&api, "single", json!({"ports": [{"port": 80}]})).await;
    assert_eq!(cluster_ips(&single).len(), 1);
    let v6 = create_ok(
        &api,
        "v6",
        json!({"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}),
    )
    .await;
    assert!(ip(&cluster_ips(&v6)[0]).is_ipv6());
    // User-chosen IPs of both families.
    let chosen = create_ok(
        &api,
        "chosen",
        json!({"ipFamilyPolicy": "RequireDualStack", "clusterIP": "10.0.0.9", "clusterIPs": ["10.0.0.9", "fd00::9"], "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(cluster_ips(&chosen), vec!["10.0.0.9", "fd00::9"]);
    assert!(f
        .server
        .inspect()
        .is_allocated(Held::ClusterIp(ip("fd00::9"))));
}

/// What a refused create's Status message must be.
#[derive(Clone, Copy, Default)]
enum Msg {
    /// The whole message, to the letter.
    Exact(&'static str),
    /// A part of it.
    Contains(&'static str),
    /// Its tail.
    EndsWith(&'static str),
    /// Only the code (and the other fields of the row) are checked.
    #[default]
    Any,
}

/// The one `details.causes` entry a refused create carries.
struct Cause {
    field: &'static str,
    reason: Option<&'static str>,
    message: Option<&'static str>,
}

/// One create that kube-apiserver refuses: the rule it checks, the Service, and the Status.
#[derive(Default)]
struct Refusal {
    /// The upstream rule (field path, file) the row mirrors.
    rule: &'static str,
    name: &'static str,
    spec: serde_json::Value,
    /// A server-side dry run (`?dryRun=All`).
    dry_run: bool,
    code: u16,
    reason: Option<&'static str>,
    message: Msg,
    cause: Option<Cause>,
}

/// Creates kube-apiserver refuses, with its codes and messages, on one server: every refusal
/// leaves the allocators as they were (upstream allocates in a transaction that is rolled
/// back on any later failure, `pkg/registry/core/service/storage/alloc.go`).
#[tokio::test]
async fn refused_creates_match_upstream_and_leak_nothing() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    // What the rows collide with.
    create_ok(
        &api,
        "a",
        json!({"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}),
    )
    .await;
    create_ok(
        &api,
        "y",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30962}]}),
    )
    .await;
    create_ok(
        &api,
        "holder",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30500}]}),
    )
    .await;
    let rows = [
        Refusal {
            rule: "spec.clusterIPs: a taken ClusterIP (alloc.go allocIPs)",
            name: "b",
            spec: json!({"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}),
            code: 422,
            reason: Some("Invalid"),
            message: Msg::Exact(
                r#"Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: provided IP is already allocated"#,
            ),
            cause: Some(Cause {
                field: "spec.clusterIPs",
                reason: Some("FieldValueInvalid"),
                message: Some(
                    r#"Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: provided IP is already allocated"#,
                ),
            }),
            ..Default::default()
        },
        Refusal {
            // Issue 3's example, with the range a kube-apiserver has by default.
            rule: "spec.clusterIPs: a ClusterIP outside the range (alloc.go allocIPs)",
            name: "c",
            spec: json!({"clusterIP": "10.96.0.50", "ports": [{"port": 80}]}),
            code: 422,
            message: Msg::Exact(
                r#"Service "c" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.50"}: failed to allocate IP 10.96.0.50: the provided IP (10.96.0.50) is not in the valid range. The range of valid IPs is 10.0.0.0/24"#,
            ),
            ..Default::default()
        },
        Refusal {
            rule: "spec.clusterIPs: the broadcast address is never handed out (ipallocator)",
            name: "d",
            spec: json!({"clusterIP": "10.0.0.255", "ports": [{"port": 80}]}),
            code: 422,
            message: Msg::Contains("the provided IP (10.0.0.255) is not in the valid range"),
            ..Default::default()
        },
        Refusal {
            rule: "spec.ports[0].nodePort: outside the node port range (alloc.go allocNodePorts)",
            name: "x",
            spec: json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 70000}]}),
            code: 422,
            message: Msg::Exact(
                r#"Service "x" is invalid: spec.ports[0].nodePort: Invalid value: 70000: provided port is not in the valid range. The range of valid ports is 30000-32767"#,
            ),
            cause: Some(Cause {
                field: "spec.ports[0].nodePort",
                reason: None,
                message: None,
            }),
            ..Default::default()
        },
        Refusal {
            rule: "spec.ports[1].nodePort: a taken node port on the second port",
            name: "z",
            spec: json!({"type": "NodePort", "ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "b", "nodePort": 30962}]}),
            code: 422,
            message: Msg::Exact(
                r#"Service "z" is invalid: spec.ports[1].nodePort: Invalid value: 30962: provided port is already allocated"#,
            ),
            ..Default::default()
        },
        Refusal {
            // Upstream's dry-run port operation only checks what is allocated.
            rule: "dry run: a taken node port is still refused",
            name: "v",
            spec: json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30962}]}),
            dry_run: true,
            code: 422,
            message: Msg::EndsWith("provided port is already allocated"),
            ..Default::default()
        },
        Refusal {
            rule: "spec.ipFamilyPolicy: RequireDualStack on a single-stack cluster (initIPFamilyFields)",
            name: "req",
            spec: json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}),
            code: 422,
            message: Msg::Exact(
                r#"Service "req" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
            ),
            ..Default::default()
        },
        Refusal {
            // The ClusterIP and the first node port were taken before the second node port
            // failed.
            rule: "refused by the allocator half way: everything taken so far is released",
            name: "half",
            spec: json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30500}]}),
            code: 422,
            ..Default::default()
        },
        Refusal {
            rule: "metadata.name: refused by validation after allocation",
            name: "Bad_Name",
            spec: json!({"type": "NodePort", "ports": [{"port": 80}]}),
            code: 422,
            ..Default::default()
        },
        Refusal {
            rule: "refused by the store: the name is taken (409 AlreadyExists)",
            name: "holder",
            spec: json!({"type": "NodePort", "ports": [{"port": 80}]}),
            code: 409,
            ..Default::default()
        },
    ];
    for row in &rows {
        let rule = row.rule;
        let before = allocated(&f);
        let params = PostParams {
            dry_run: row.dry_run,
            ..Default::default()
        };
        let err = match api.create(&params, &svc(row.name, row.spec.clone())).await {
            Ok(_) => panic!("{rule}: create {} was accepted", row.name),
            Err(e) => status(e),
        };
        assert_eq!(err.code, row.code, "{rule}: {}", err.message);
        if let Some(reason) = row.reason {
            assert_eq!(err.reason, reason, "{rule}");
        }
        match row.message {
            Msg::Exact(m) => assert_eq!(err.message, m, "{rule}"),
            Msg::Contains(m) => assert!(err.message.contains(m), "{rule}: {}", err.message),
            Msg::EndsWith(m) => assert!(err.message.ends_with(m), "{rule}: {}", err.message),
            Msg::Any => {}
        }
        if let Some(cause) = &row.cause {
            let details = err.details.as_ref().expect("details");
            if cause.message.is_some() {
                // The fully described rows also pin the details' object and cause count.
                assert_eq!(details.kind, "Service", "{rule}");
                assert_eq!(details.name, row.name, "{rule}");
                assert_eq!(details.causes.len(), 1, "{rule}");
            }
            assert_eq!(details.causes[0].field, cause.field, "{rule}");
            if let Some(reason) = cause.reason {
                assert_eq!(details.causes[0].reason, reason, "{rule}");
            }
            if let Some(message) = cause.message {
                assert_eq!(details.causes[0].message, message, "{rule}");
            }
        }
        assert_eq!(allocated(&f), before, "{rule}: the refusal leaked");
    }

    // A server-side dry run skips the range check (upstream's dry-run port operation only
    // checks what is allocated): it may be accepted, but not refused for the range.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let result = api
        .create(
            &dry,
            &svc(
                "w",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 70000}]}),
            ),
        )
        .await;
    if let Err(e) = result {
        let s = status(e);
        assert!(
            !s.message
                .contains("provided port is not in the valid range"),
            "{}",
            s.message
        );
    }
}

/// A full node port range: 500 as upstream, nothing kept.
#[tokio::test]
async fn full_node_port_range_is_500_and_keeps_nothing() {
    let g = start("10.0.0.0/29", "30000-30001").await;
    let api = services(&g);
    create_ok(&api, "one", json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]})).await;
    let before = allocated(&g);
    let err = create(
        &api,
        "two",
        json!({"type": "NodePort", "ports": [{"port": 80}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, 500);
    assert_eq!(
        err.message,
        "Internal error occurred: failed to allocate a nodePort: range is full"
    );
    assert_eq!(allocated(&g), before);
}

#[tokio::test]
async fn dry_run_create_reserves_nothing() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let before = allocated(&f);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let preview = api
        .create(&dry, &svc("d", json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "clusterIP": "10.0.0.7", "ports": [{"port": 80}]})))
        .await
        .expect("dry run accepted");
    assert_eq!(cluster_ips(&preview), vec!["10.0.0.7"]);
    assert_ne!(node_ports(&preview)[0], 0);
    assert_eq!(allocated(&f), before);
    // The IP is still free.
    create_ok(
        &api,
        "real",
        json!({"clusterIP": "10.0.0.7", "ports": [{"port": 80}]}),
    )
    .await;
}

#[tokio::test]
async fn tcp_and_udp_share_one_node_port() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let s = create_ok(
        &api,
        "dns",
        json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}),
    )
    .await;
    let ports = node_ports(&s);
    assert_eq!(ports[0], ports[1], "UDP and TCP 53 share a node port");
    assert_ne!(ports[0], ports[2]);
    // A user-chosen node port on the second of the pair is used for both.
    let t = create_ok(
        &api,
        "dns2",
        json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30053}]}),
    )
    .await;
    assert_eq!(node_ports(&t), vec![30053, 30053]);
    delete(&api, "dns").await;
    delete(&api, "dns2").await;
    assert!(!f.server.inspect().is_allocated(Held::NodePort(30053)));
    assert!(!f.server.inspect().is_allocated(Held::NodePort(ports[0])));
    assert_eq!(allocated(&f), held_by_services(&f).await);
}

#[tokio::test]
async fn health_check_node_port_for_local_load_balancer() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let s = create_ok(
        &api,
        "lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    )
    .await;
    let hc = health_check_node_port(&s);
    assert!((30086..=32767).contains(&hc), "healthCheckNodePort {hc}");
    assert_ne!(hc, node_ports(&s)[0]);
    assert!(f.server.inspect().is_allocated(Held::NodePort(hc)));

    // No node ports with allocateLoadBalancerNodePorts: false, but still a health check port.
    let t = create_ok(
        &api,
        "lb-no-np",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(node_ports(&t), vec![0]);
    assert_ne!(health_check_node_port(&t), 0);

    // externalTrafficPolicy: Cluster gives the health check port up.
    let patched = api
        .patch(
            "lb",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"externalTrafficPolicy": "Cluster"}})),
        )
        .await
        .expect("patch to Cluster");
    assert_eq!(health_check_node_port(&patched), 0);
    assert!(!f.server.inspect().is_allocated(Held::NodePort(hc)));
    assert_eq!(allocated(&f), held_by_services(&f).await);
}

#[tokio::test]
async fn nodeport_to_clusterip_releases_node_ports() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let s = create_ok(
        &api,
        "web",
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}),
    )
    .await;
    let ports = node_ports(&s);
    let ip_before = cluster_ips(&s);
    let mut changed = api.get("web").await.unwrap();
    changed.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    let updated = api
        .replace("web", &PostParams::default(), &changed)
        .await
        .expect("update to ClusterIP");
    assert_eq!(node_ports(&updated), vec![0, 0]);
    assert_eq!(cluster_ips(&updated), ip_before, "ClusterIPs are kept");
    for p in &ports {
        assert!(!f.server.inspect().is_allocated(Held::NodePort(*p)));
    }
    // The freed port can be claimed by someone else.
    create_ok(
        &api,
        "other",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": ports[0]}]}),
    )
    .await;

    // And back to NodePort: new node ports, old ones not reused by force.
    let back = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "NodePort"}})),
        )
        .await
        .expect("back to NodePort");
    assert!(node_ports(&back).iter().all(|p| *p != 0 && *p != ports[0]));
    assert_eq!(allocated(&f), held_by_services(&f).await);
}

#[tokio::test]
async fn update_keeps_node_ports_unless_changed() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let s = create_ok(
        &api,
        "keep",
        json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}]}),
    )
    .await;
    let np = node_ports(&s)[0];
    // An update that omits the node port keeps it (upstream patchAllocatedValues).
    let updated = api
        .replace("keep", &PostParams::default(), &{
            let mut c = api.get("keep").await.unwrap();
            c.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = None;
            c.metadata.labels = Some([("touched".to_string(), "yes".to_string())].into());
            c
        })
        .await
        .unwrap();
    assert_eq!(node_ports(&updated), vec![np]);
    // Changing it takes the new one and frees the old one on commit.
    let moved = api
        .patch(
            "keep",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"ports": [{"port": 80, "name": "a", "nodePort": 31111}]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(node_ports(&moved), vec![31111]);
    assert!(!f.server.inspect().is_allocated(Held::NodePort(np)));
    assert!(f.server.inspect().is_allocated(Held::NodePort(31111)));
    // A conflicting change is refused and frees nothing.
    create_ok(
        &api,
        "taken",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 31112}]}),
    )
    .await;
    let err = api
        .patch(
            "keep",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"ports": [{"port": 80, "name": "a", "nodePort": 31112}]}}),
            ),
        )
        .await
        .map_err(status)
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "keep" is invalid: spec.ports[0].nodePort: Invalid value: 31112: provided port is already allocated"#
    );
    assert!(f.server.inspect().is_allocated(Held::NodePort(31111)));
    assert_eq!(allocated(&f), held_by_services(&f).await);
}

#[tokio::test]
async fn clusterip_to_external_name_and_back() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let s = create_ok(
        &api,
        "ext",
        json!({"clusterIP": "10.0.0.40", "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(cluster_ips(&s), vec!["10.0.0.40"]);
    let external = api
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "ExternalName", "externalName": "example.com"}})),
        )
        .await
        .expect("to ExternalName");
    assert!(cluster_ips(&external).is_empty());
    assert!(!f
        .server
        .inspect()
        .is_allocated(Held::ClusterIp(ip("10.0.0.40"))));
    let back = api
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "ClusterIP", "externalName": null}})),
        )
        .await
        .expect("back to ClusterIP");
    assert_eq!(cluster_ips(&back).len(), 1);
    assert!(f
        .server
        .inspect()
        .is_allocated(Held::ClusterIp(ip(&cluster_ips(&back)[0]))));
    assert_eq!(allocated(&f), held_by_services(&f).await);
}

#[tokio::test]
async fn adding_and_removing_the_secondary_family() {
    let f = start("10.0.0.0/24,fd00::/112", "30000-32767").await;
    let api = services(&f);
    let s = create_ok(&api, "up", json!({"ports": [{"port": 80}]})).await;
    assert_eq!(cluster_ips(&s).len(), 1);
    let up = api
        .patch(
            "up",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ipFamilyPolicy": "RequireDualStack"}})),
        )
        .await
        .expect("upgrade");
    let ips = cluster_ips(&up);
    assert_eq!(ips.len(), 2);
    assert_eq!(ips[0], cluster_ips(&s)[0], "primary ClusterIP is kept");
    let v6 = Held::ClusterIp(ip(&ips[1]));
    assert!(f.server.inspect().is_allocated(v6));
    let down = api
        .patch(
            "up",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ipFamilyPolicy": "SingleStack"}})),
        )
        .await
        .expect("downgrade");
    assert_eq!(cluster_ips(&down), vec![ips[0].clone()]);
    assert!(!f.server.inspect().is_allocated(v6));
    assert_eq!(allocated(&f), held_by_services(&f).await);
}

#[tokio::test]
async fn headless_and_external_name_get_no_cluster_ip() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let before = allocated(&f);
    let headless = create_ok(
        &api,
        "hl",
        json!({"clusterIP": "None", "selector": {"app": "x"}, "ports": [{"port": 80}]}),
    )
    .await;
    assert_eq!(cluster_ips(&headless), vec!["None"]);
    let ext = create_ok(
        &api,
        "en",
        json!({"type": "ExternalName", "externalName": "example.com"}),
    )
    .await;
    assert!(cluster_ips(&ext).is_empty());
    assert_eq!(allocated(&f), before);
}

#[tokio::test]
async fn delete_releases_everything() {
    let f = start("10.0.0.0/24,fd00::/112", "30000-32767").await;
    let api = services(&f);
    let before = allocated(&f);
    let s = create_ok(
        &api,
        "all",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ipFamilyPolicy": "RequireDualStack",
               "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 443}]}),
    )
    .await;
    assert_eq!(
        expected_holdings(&s).len(),
        5,
        "2 IPs, 2 node ports, 1 health check port"
    );
    assert_eq!(allocated(&f).len(), before.len() + 5);
    delete(&api, "all").await;
    assert_eq!(allocated(&f), before);
}

#[tokio::test]
async fn allocator_metrics_are_served() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    create_ok(
        &api,
        "m",
        json!({"type": "NodePort", "ports": [{"port": 80}]}),
    )
    .await;
    let _ = create(
        &api,
        "n",
        json!({"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}),
    )
    .await;
    let text = reqwest::get(format!("{}/metrics", f.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "svcplane_allocator_allocated{range=\"10.0.0.0/24\"} 2",
        "svcplane_allocator_available{range=\"10.0.0.0/24\"} 252",
        "svcplane_allocator_allocated{range=\"30000-32767\"} 1",
        "svcplane_allocator_dynamic_band_allocated{range=\"30000-32767\"} 1",
        "svcplane_allocator_static_band_size{range=\"10.0.0.0/24\"} 16",
        "svcplane_allocator_static_band_allocated{range=\"10.0.0.0/24\"} 1",
        "svcplane_allocator_errors_total{kind=\"AlreadyAllocated\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in /metrics"
        );
    }
}

/// The acceptance path of issue 3 with the real kubectl: create Services of each type.
#[tokio::test]
async fn kubectl_create_gets_allocated_values() {
    svcplane_tests::require_kubectl("kubectl_create_gets_allocated_values");
    let f = start("10.0.0.0/24", "30000-32767").await;
    let kubeconfig = f.kubeconfig_path();
    let run = |args: Vec<&str>, stdin: Option<String>| {
        let kubeconfig = kubeconfig.clone();
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                use std::io::Write as _;
                let mut child = std::process::Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(&args)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("kubectl runs");
                let mut input = child.stdin.take().expect("stdin");
                input
                    .write_all(stdin.unwrap_or_default().as_bytes())
                    .expect("write stdin");
                drop(input);
                child.wait_with_output().expect("kubectl finishes")
            })
            .await
            .unwrap()
        }
    };
    let manifest = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: NodePort\n  selector:\n    app: kc\n  ports:\n  - port: 80\n    targetPort: 8080\n{extra}"
        )
    };
    let out = run(vec!["create", "-f", "-"], Some(manifest("kc", ""))).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jsonpath = "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}";
    let out = run(vec!["get", "svc", "kc", "-o", jsonpath], None).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (cip, np) = text.split_once(' ').expect("two values");
    assert!(
        cip.starts_with("10.0.0.") && cip.rsplit('.').next().unwrap().parse::<u32>().unwrap() >= 17,
        "{text}"
    );
    assert!(np.parse::<i32>().unwrap() >= 30086, "{text}");
    // A conflicting ClusterIP through kubectl shows upstream's message.
    let out = run(
        vec!["create", "-f", "-"],
        Some(manifest("kc2", &format!("  clusterIP: {cip}\n"))),
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("spec.clusterIPs: Invalid value: []string{{\"{cip}\"}}: failed to allocate IP {cip}: provided IP is already allocated")),
        "{stderr}"
    );
    let out = run(vec!["delete", "svc", "kc"], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!f.server.inspect().is_allocated(Held::ClusterIp(ip(cip))));
}

/// Concurrent creates asking for one ClusterIP and one node port: exactly one wins, the
/// others get 422, and nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_value_admit_exactly_one() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let before = allocated(&f);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let api = services(&f);
            tokio::spawn(async move {
                create(
                    &api,
                    &format!("race-{i}"),
                    json!({"type": "NodePort", "clusterIP": "10.0.0.77", "ports": [{"port": 80, "nodePort": 30777}]}),
                )
                .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(s) => assert_eq!(s.code, 422, "{}", s.message),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(allocated(&f).len(), before.len() + 2);
    assert_eq!(allocated(&f), held_by_services(&f).await);
}

#[tokio::test]
async fn ipv6_primary_cluster_defaults_to_ipv6() {
    let f = start("fd00::/112,10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    assert_eq!(
        cluster_ips(&api.get("kubernetes").await.unwrap()),
        vec!["fd00::1"]
    );
    let s = create_ok(&api, "v6", json!({"ports": [{"port": 80}]})).await;
    assert!(ip(&cluster_ips(&s)[0]).is_ipv6());
    assert_eq!(
        s.spec.as_ref().unwrap().ip_families,
        Some(vec!["IPv6".to_string()])
    );
    let d = create_ok(
        &api,
        "d",
        json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}),
    )
    .await;
    let ips = cluster_ips(&d);
    assert!(ip(&ips[0]).is_ipv6() && ip(&ips[1]).is_ipv4(), "{ips:?}");
}
