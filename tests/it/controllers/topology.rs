//! `service.kubernetes.io/topology-mode: Auto` (KEP-2433 topology aware hints, upstream
//! `k8s.io/endpointslice/topologycache`) through the embedded API server: Nodes with zones and
//! allocatable CPU, a Service with the annotation, Pods spread over the zones, and the
//! `hints.forZones` the EndpointSlice controller writes, plus its Events on the Service.

use crate::controllers::support as controllers_support;

use std::collections::BTreeMap;
use std::time::Duration;

use controllers_support::*;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use svcplane_tests::Fixture;

const T: Duration = Duration::from_secs(20);
const MODE: &str = "service.kubernetes.io/topology-mode";

/// Creates Node `node-<zone>` in `zone-<zone>` and sets its status: allocatable CPU and the
/// Ready condition.
async fn create_zone_node(client: &Client, zone: &str, cpu: &str) {
    let api: Api<Node> = Api::all(client.clone());
    let name = format!("node-{zone}");
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(
                [(
                    "topology.kubernetes.io/zone".to_string(),
                    format!("zone-{zone}"),
                )]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &node)
        .await
        .expect("create node");
    set_node_status(client, zone, cpu, true).await;
}

/// Sets `node-<zone>`'s allocatable CPU and Ready condition.
async fn set_node_status(client: &Client, zone: &str, cpu: &str, ready: bool) {
    let api: Api<Node> = Api::all(client.clone());
    let status = json!({"status": {
        "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    api.patch_status(
        &format!("node-{zone}"),
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .expect("patch node status");
}

/// Service `web` with the topology-mode annotation.
fn auto_service() -> Service {
    let mut svc = service("web", IntOrString::Int(8080));
    svc.metadata.annotations = Some([(MODE.to_string(), "Auto".to_string())].into());
    svc
}

/// Ready pods `web-<i>` with IP `10.7.0.<i>`, one per entry of `zones`, on `node-<zone>`.
async fn create_zone_pods(client: &Client, zones: &[&str]) {
    for (i, zone) in zones.iter().enumerate() {
        create_pod(
            client,
            "web",
            &format!("web-{i}"),
            &format!("node-{zone}"),
            8080,
            &[pod_ip(7, i)],
            true,
        )
        .await;
    }
}

/// Address → hinted zones (joined by `,`; `None` without hints) over all of `web`'s slices.
fn hints(slices: &[EndpointSlice]) -> BTreeMap<String, Option<String>> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let zones = e
                .hints
                .as_ref()
                .and_then(|h| h.for_zones.as_ref())
                .map(|z| {
                    z.iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                });
            (e.addresses[0].clone(), zones)
        })
        .collect()
}

/// Hinted zone → number of endpoints hinted for it.
fn per_zone(hints: &BTreeMap<String, Option<String>>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for zone in hints.values().flatten() {
        *out.entry(zone.clone()).or_insert(0) += 1;
    }
    out
}

fn zones(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(z, n)| (z.to_string(), *n)).collect()
}

/// Waits until `web` has `n` endpoints whose hints satisfy `check`.
async fn wait_hints(
    client: &Client,
    n: usize,
    what: &str,
    check: impl Fn(&BTreeMap<String, Option<String>>) -> bool,
) -> BTreeMap<String, Option<String>> {
    eventually(T, what, || async {
        let h = hints(&our_slices(client, "web").await);
        h.len() == n && check(&h)
    })
    .await;
    hints(&our_slices(client, "web").await)
}

/// `(type, message)` of the Events on Service `web` with `reason`, recorded under upstream's
/// event source `endpoint-slice-controller`.
async fn web_events(client: &Client, reason: &str) -> Vec<(String, String)> {
    service_events(client, NS, "web", reason, |e| {
        e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("endpoint-slice-controller")
    })
    .await
}

async fn wait_event(client: &Client, reason: &str, type_: &str, message: &str) {
    let want = (type_.to_string(), message.to_string());
    eventually(T, &format!("{reason} event {message:?}"), || async {
        web_events(client, reason).await.contains(&want)
    })
    .await;
}

async fn set_annotation(client: &Client, value: Option<&str>) {
    Api::<Service>::namespaced(client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {MODE: value}}})),
        )
        .await
        .expect("patch service annotations");
}

#[tokio::test]
async fn equal_cpu_surplus_zone_donates_endpoints_and_enabled_event_is_recorded() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    for zone in ["a", "b", "c"] {
        create_zone_node(c, zone, "4").await;
    }
    create_service(c, &auto_service()).await;
    // 6 / 2 / 2 endpoints for 1/3 of the CPU each (desired 3.33): zone-a keeps 4 and hands
    // its first endpoint to zone-b and its second to zone-c (upstream redistributeHints).
    create_zone_pods(c, &["a", "a", "a", "a", "a", "a", "b", "b", "c", "c"]).await;
    let running = start_controllers(&fx, test_config()).await;
    let h = wait_hints(c, 10, "hints on all 10 endpoints", |h| {
        h.values().all(Option::is_some)
    })
    .await;
    assert_eq!(
        per_zone(&h),
        zones(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)])
    );
    assert_eq!(h["10.7.0.0"].as_deref(), Some("zone-b"));
    assert_eq!(h["10.7.0.1"].as_deref(), Some("zone-c"));
    for i in 2..10 {
        let own = if i < 6 {
            "zone-a"
        } else if i < 8 {
            "zone-b"
        } else {
            "zone-c"
        };
        assert_eq!(
            h[&format!("10.7.0.{i}")].as_deref(),
            Some(own),
            "10.7.0.{i}"
        );
    }
    wait_event(
        c,
        "TopologyAwareHintsEnabled",
        "Normal",
        "Topology Aware Hints has been enabled, addressType: IPv4",
    )
    .await;
    running.stop().await;
}

#[tokio::test]
async fn uneven_cpu_moves_endpoints_towards_the_larger_zone() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    // 50% / 25% / 25% of the CPU (8 / 4000m / 4 cores).
    create_zone_node(c, "a", "8").await;
    create_zone_node(c, "b", "4000m").await;
    create_zone_node(c, "c", "4").await;
    create_service(c, &auto_service()).await;
    let mut spread = vec!["a"; 4];
    spread.extend(["b"; 8]);
    spread.extend(["c"; 8]);
    create_zone_pods(c, &spread).await;
    let running = start_controllers(&fx, test_config()).await;
    // Desired 10 / 5 / 5: zone-b and zone-c give 3 each to zone-a.
    let h = wait_hints(c, 20, "CPU-proportional hints", |h| {
        per_zone(h) == zones(&[("zone-a", 10), ("zone-b", 5), ("zone-c", 5)])
    })
    .await;
    assert!(h.values().all(Option::is_some));
    running.stop().await;
}

#[tokio::test]
async fn removing_the_annotation_removes_hints_with_disabled_event() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    for zone in ["a", "b", "c"] {
        create_zone_node(c, zone, "2").await;
    }
    create_service(c, &auto_service()).await;
    create_zone_pods(c, &["a", "a", "b", "b", "c", "c"]).await;
    let running = start_controllers(&fx, test_config()).await;
    wait_hints(c, 6, "own-zone hints", |h| {
        per_zone(h) == zones(&[("zone-a", 2), ("zone-b", 2), ("zone-c", 2)])
    })
    .await;
    set_annotation(c, None).await;
    wait_hints(c, 6, "hints removed", |h| h.values().all(Option::is_none)).await;
    wait_event(
        c,
        "TopologyAwareHintsDisabled",
        "Warning",
        "Topology Aware Hints has been disabled, addressType: IPv4",
    )
    .await;
    // The older `auto` spelling of the value turns them back on.
    set_annotation(c, Some("auto")).await;
    wait_hints(c, 6, "hints back", |h| h.values().all(Option::is_some)).await;
    running.stop().await;
}

#[tokio::test]
async fn zone_without_endpoints_still_gets_its_share_from_other_zones() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    for zone in ["a", "b", "c"] {
        create_zone_node(c, zone, "4").await;
    }
    create_service(c, &auto_service()).await;
    // 5 / 4 / 0 for equal CPU (desired 3 each): upstream allocates zone-c 3 endpoints from
    // zone-a (2) and zone-b (1) rather than dropping hints; kube-proxy's "zone not in hints"
    // fallback never triggers for an allocated zone.
    create_zone_pods(c, &["a", "a", "a", "a", "a", "b", "b", "b", "b"]).await;
    let running = start_controllers(&fx, test_config()).await;
    let h = wait_hints(c, 9, "3 hints per zone", |h| {
        per_zone(h) == zones(&[("zone-a", 3), ("zone-b", 3), ("zone-c", 3)])
    })
    .await;
    assert_eq!(h["10.7.0.0"].as_deref(), Some("zone-c"));
    assert_eq!(h["10.7.0.1"].as_deref(), Some("zone-c"));
    assert_eq!(h["10.7.0.5"].as_deref(), Some("zone-c"));
    running.stop().await;
}

#[tokio::test]
async fn fewer_endpoints_than_zones_means_no_hints_and_a_warning() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    for zone in ["a", "b", "c"] {
        create_zone_node(c, zone, "4").await;
    }
    let mut svc = auto_service();
    // The annotation wins over trafficDistribution, so PreferClose adds nothing here.
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    create_service(c, &svc).await;
    create_zone_pods(c, &["a", "b"]).await;
    let running = start_controllers(&fx, test_config()).await;
    wait_event(
        c,
        "TopologyAwareHintsDisabled",
        "Warning",
        "Insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4",
    )
    .await;
    let h = wait_hints(c, 2, "two endpoints", |_| true).await;
    assert!(h.values().all(Option::is_none), "{h:?}");
    // A third endpoint makes hints possible.
    create_pod(c, "web", "web-2", "node-c", 8080, &[pod_ip(7, 2)], true).await;
    wait_hints(c, 3, "one hint per zone", |h| {
        per_zone(h) == zones(&[("zone-a", 1), ("zone-b", 1), ("zone-c", 1)])
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn node_readiness_and_cpu_changes_resync_hints() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    for zone in ["a", "b", "c"] {
        create_zone_node(c, zone, "4").await;
    }
    create_service(c, &auto_service()).await;
    create_zone_pods(c, &["a", "a", "a", "a", "a", "a", "b", "b", "c", "c"]).await;
    let running = start_controllers(&fx, test_config()).await;
    wait_hints(c, 10, "zone-a donates", |h| {
        h["10.7.0.0"].as_deref() == Some("zone-b")
    })
    .await;

    // node-a not ready: only zone-b and zone-c have CPU; zone-a is no longer allocated, so
    // it cannot donate and its endpoints fall back to own-zone hints.
    set_node_status(c, "a", "4", false).await;
    wait_hints(c, 10, "own-zone hints with zone-a not ready", |h| {
        per_zone(h) == zones(&[("zone-a", 6), ("zone-b", 2), ("zone-c", 2)])
    })
    .await;
    set_node_status(c, "a", "4", true).await;
    wait_hints(c, 10, "zone-a donates again", |h| {
        per_zone(h) == zones(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)])
    })
    .await;

    // A ready Node without allocatable CPU: insufficient node information, no hints.
    set_node_status(c, "b", "0", true).await;
    wait_hints(c, 10, "hints removed", |h| h.values().all(Option::is_none)).await;
    wait_event(
        c,
        "TopologyAwareHintsDisabled",
        "Warning",
        "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes, addressType: IPv4",
    )
    .await;
    // Sufficient again: hints come back (beyond upstream, which would wait for another
    // Service or Pod change).
    set_node_status(c, "b", "4", true).await;
    wait_hints(c, 10, "hints back", |h| {
        per_zone(h) == zones(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)])
    })
    .await;
    running.stop().await;
}
