//! Allocation state across restarts (`--state-file`) and the repair audit of upstream's
//! ipallocator / portallocator repair controllers: duplicates, values outside the ranges,
//! values the allocator lost, and leaks, reported as Events on the Service and as metrics.

use crate::allocation::support as allocation_support;

use std::net::IpAddr;

use allocation_support::*;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;
use svcplane_apiserver::Config;
use svcplane_apiserver::Held;
use svcplane_tests::Fixture;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP")
}

async fn start_with_state(path: &std::path::Path, ips: &str, ports: &str) -> Fixture {
    Fixture::start_with(Config {
        state_file: Some(path.to_path_buf()),
        service_cluster_ip_range: ips.into(),
        service_node_port_range: ports.into(),
        ..Config::default()
    })
    .await
}

async fn stop(f: Fixture) {
    let Fixture { server, .. } = f;
    server.shutdown().await;
}

async fn events_for(f: &Fixture, service: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(f.client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(service))
        .collect()
}

#[tokio::test]
async fn allocation_survives_restart_with_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let f = start_with_state(&path, "10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    let a = create_ok(
        &api,
        "a",
        json!({"type": "NodePort", "ports": [{"port": 80}]}),
    )
    .await;
    create_ok(
        &api,
        "b",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    )
    .await;
    let before = allocated(&f);
    stop(f).await;

    let g = start_with_state(&path, "10.0.0.0/24", "30000-32767").await;
    assert_eq!(allocated(&g), before, "rebuilt from the stored Services");
    assert_eq!(allocated(&g), held_by_services(&g).await);
    let api = services(&g);
    let taken = cluster_ips(&a)[0].clone();
    let err = create(
        &api,
        "c",
        json!({"clusterIP": taken, "ports": [{"port": 80}]}),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.ends_with("provided IP is already allocated"),
        "{}",
        err.message
    );
    let err = create(
        &api,
        "d",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_ports(&a)[0]}]}),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.ends_with("provided port is already allocated"),
        "{}",
        err.message
    );
    // The repair audit finds nothing to report after a clean restart.
    let report = g.server.inspect().repair().await;
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(report.leaks_flagged.is_empty());
    stop(g).await;
}

#[tokio::test]
async fn repair_reports_leak_and_duplicate() {
    let f = start("10.0.0.0/24", "30000-32767").await;
    let inspect = f.server.inspect();
    let api = services(&f);
    // Let the startup pass finish so its leak counts do not mix with ours.
    let _ = inspect.repair().await;

    // A leak: allocated for a write that never reached the store (a crash between the two).
    let orphan = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "orphan", "namespace": "default"},
        "spec": {"clusterIP": "10.0.0.200", "type": "NodePort", "ports": [{"port": 80, "nodePort": 30200}]}});
    inspect.leak_allocation(orphan).expect("allocates");
    let leaked = [Held::ClusterIp(ip("10.0.0.200")), Held::NodePort(30200)];

    // A duplicate: the allocator lost a's IP (released behind its back), so b could take it.
    let a = create_ok(
        &api,
        "a",
        json!({"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}),
    )
    .await;
    let a_json = serde_json::to_value(&a).unwrap();
    inspect.lose_allocation(&a_json);
    create_ok(
        &api,
        "b",
        json!({"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}),
    )
    .await;

    // And a lost node port on a Service nobody shares it with.
    let c = create_ok(
        &api,
        "c",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30300}]}),
    )
    .await;
    inspect.lose_allocation(&serde_json::to_value(&c).unwrap());
    assert!(!inspect.is_allocated(Held::NodePort(30300)));

    let report = inspect.repair().await;
    let reasons: Vec<(&str, &str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.name.as_str(), f.reason, f.message.as_str()))
        .collect();
    assert!(
        reasons.contains(&(
            "b",
            "ClusterIPAlreadyAllocated",
            "Cluster IP [IPv4]:10.0.0.5 was assigned to multiple services; please recreate service"
        )),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(
            "c",
            "PortNotAllocated",
            "Port 30300 is not allocated; repairing"
        )),
        "{reasons:?}"
    );
    // a's IP was lost, then taken again by b: from the store's view it is allocated (once).
    assert!(!reasons.iter().any(|(n, _, _)| *n == "a"), "{reasons:?}");
    assert!(
        inspect.is_allocated(Held::NodePort(30300)),
        "lost port re-allocated"
    );
    for v in leaked {
        assert!(report.leaks_flagged.contains(&v), "{v} flagged: {report:?}");
        assert!(
            inspect.is_allocated(v),
            "{v} kept until the grace passes end"
        );
    }

    // The Service with the duplicate carries a Warning Event from the repair controller.
    let events = events_for(&f, "b").await;
    let dup = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("ClusterIPAlreadyAllocated"))
        .expect("duplicate event on b");
    assert_eq!(dup.type_.as_deref(), Some("Warning"));
    assert_eq!(dup.involved_object.kind.as_deref(), Some("Service"));
    assert_eq!(
        dup.reporting_component.as_deref(),
        Some("ipallocator-repair-controller")
    );
    assert!(events_for(&f, "c")
        .await
        .iter()
        .any(|e| e.reason.as_deref() == Some("PortNotAllocated")));

    // Leaks are released after three consecutive passes (upstream numRepairsBeforeLeakCleanup).
    let mut released = Vec::new();
    for _ in 0..3 {
        released.extend(inspect.repair().await.leaks_released);
    }
    for v in leaked {
        assert!(released.contains(&v), "{v} released");
        assert!(!inspect.is_allocated(v));
    }
    // A persisting duplicate bumps the Event's count instead of adding Events.
    let dup_events: Vec<Event> = events_for(&f, "b")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ClusterIPAlreadyAllocated"))
        .collect();
    assert_eq!(dup_events.len(), 1);
    assert!(dup_events[0].count.unwrap_or(0) >= 4);

    let metrics = f.server.metrics_text();
    for kind in ["Duplicate", "NotAllocated", "Leak"] {
        let prefix = format!("svcplane_allocator_errors_total{{kind=\"{kind}\"}} ");
        let value: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}"))
            .parse()
            .unwrap();
        assert!(value >= 1.0, "{prefix}{value}");
    }
}

#[tokio::test]
async fn repair_reports_values_outside_changed_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let f = start_with_state(&path, "10.0.0.0/24", "30000-32767").await;
    let api = services(&f);
    create_ok(&api, "old", json!({"clusterIP": "10.0.0.50", "type": "NodePort", "ports": [{"port": 80, "nodePort": 30050}]})).await;
    stop(f).await;

    // Restart with other ranges: the stored Service's values are outside them.
    let g = start_with_state(&path, "10.1.0.0/24", "31000-31999").await;
    let report = g.server.inspect().repair().await;
    let reasons: Vec<(&str, &str)> = report
        .findings
        .iter()
        .filter(|f| f.name == "old")
        .map(|f| (f.reason, f.message.as_str()))
        .collect();
    assert!(reasons.contains(&("ClusterIPOutOfRange", "Cluster IP [IPv4]:10.0.0.50 is not within the service CIDR 10.1.0.0/24; please recreate service")), "{reasons:?}");
    assert!(
        reasons.contains(&(
            "PortOutOfRange",
            "Port 30050 is not within the port range 31000-31999; please recreate service"
        )),
        "{reasons:?}"
    );
    let events = events_for(&g, "old").await;
    assert!(events
        .iter()
        .any(|e| e.reason.as_deref() == Some("ClusterIPOutOfRange")));
    assert!(events
        .iter()
        .any(|e| e.reason.as_deref() == Some("PortOutOfRange")));
    // The kubernetes Service moved? No: it keeps its stored IP, which is now out of range too.
    assert!(report
        .findings
        .iter()
        .any(|f| f.name == "kubernetes" && f.reason == "ClusterIPOutOfRange"));
    stop(g).await;
}
