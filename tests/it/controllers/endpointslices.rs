//! EndpointSlice controller behaviour through the embedded API server.

use crate::controllers::support as controllers_support;

use std::time::Duration;

use controllers_support::*;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use svcplane_tests::Fixture;

const T: Duration = Duration::from_secs(20);

/// One node, Service `web` (target port 8080) with `pods` ready Pods, and the controllers
/// started and waited for until the slices hold every Pod.
async fn web_with_ready_pods(pods: usize) -> (Fixture, Running) {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..pods, 1, 1, true).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, &format!("{pods} endpoints"), || async {
        endpoint_count(&our_slices(c, "web").await) == pods
    })
    .await;
    (fx, running)
}

#[tokio::test]
async fn slices_hold_at_most_100_endpoints() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 3).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..250, 1, 3, true).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "250 endpoints in slices", || async {
        endpoint_count(&our_slices(c, "web").await) == 250
    })
    .await;
    let slices = our_slices(c, "web").await;
    let mut sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![50, 100, 100]);
    check_service(c, "web", 100).await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn slice_metadata_matches_kube_controller_manager() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    let mut svc = service("web", IntOrString::Int(8080));
    svc.metadata.labels = Some([("team".to_string(), "blue".to_string())].into());
    let svc = create_service(c, &svc).await;
    create_pods(c, "web", 0..1, 1, 1, true).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "one endpoint", || async {
        endpoint_count(&our_slices(c, "web").await) == 1
    })
    .await;
    let s = our_slices(c, "web").await.remove(0);
    assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
    assert!(s.metadata.name.as_deref().unwrap().starts_with("web-"));
    let labels = s.metadata.labels.clone().unwrap();
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "endpointslice.kubernetes.io/managed-by",
            "kubernetes.io/service-name",
            "team"
        ]
    );
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("v1", "Service", Some(true), Some(true))
    );
    assert_eq!(Some(&owner.uid), svc.metadata.uid.as_ref());
    assert!(s
        .metadata
        .annotations
        .unwrap()
        .contains_key("endpoints.kubernetes.io/last-change-trigger-time"));
    let ep = &s.endpoints[0];
    let cond = ep.conditions.clone().unwrap();
    assert_eq!(
        (cond.ready, cond.serving, cond.terminating),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(ep.node_name.as_deref(), Some("node-0"));
    assert_eq!(ep.zone.as_deref(), Some("zone-a"));
    let target = ep.target_ref.clone().unwrap();
    assert_eq!(
        (target.kind.as_deref(), target.name.as_deref()),
        (Some("Pod"), Some("web-0"))
    );
    assert!(target.uid.is_some());
    running.stop().await;
}

#[tokio::test]
async fn placeholder_slice_for_no_endpoints() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_service(c, &service("empty", IntOrString::Int(8080))).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "placeholder slice", || async {
        our_slices(c, "empty").await.len() == 1
    })
    .await;
    let s = our_slices(c, "empty").await.remove(0);
    assert!(s.endpoints.is_empty());
    assert!(s.ports.unwrap_or_default().is_empty());
    // It stays the only write: no churn while nothing changes.
    let before = fx.write_count("endpointslices");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.write_count("endpointslices"), before);
    running.stop().await;
}

#[tokio::test]
async fn named_target_port_splits_slices() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    create_service(c, &service("named", IntOrString::String("http".into()))).await;
    create_pod(c, "named", "a", "node-0", 8080, &[pod_ip(1, 1)], true).await;
    create_pod(c, "named", "b", "node-0", 8080, &[pod_ip(1, 2)], true).await;
    create_pod(c, "named", "c", "node-0", 9090, &[pod_ip(1, 3)], true).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "two slices", || async {
        endpoint_count(&our_slices(c, "named").await) == 3
    })
    .await;
    let mut by_port: Vec<(i32, usize)> = our_slices(c, "named")
        .await
        .iter()
        .map(|s| {
            (
                s.ports.as_ref().unwrap()[0].port.unwrap(),
                s.endpoints.len(),
            )
        })
        .collect();
    by_port.sort();
    assert_eq!(by_port, vec![(8080, 2), (9090, 1)]);
    running.stop().await;
}

#[tokio::test]
async fn dual_stack_gets_two_address_types() {
    let fx = Fixture::start_with(svcplane_apiserver::Config {
        service_cluster_ip_range: "10.96.0.0/16,fd00:10:96::/112".into(),
        ..Default::default()
    })
    .await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    let mut svc = service("ds", IntOrString::Int(8080));
    svc.spec.as_mut().unwrap().ip_family_policy = Some("RequireDualStack".into());
    create_service(c, &svc).await;
    create_pod(
        c,
        "ds",
        "p",
        "node-0",
        8080,
        &["10.1.0.1".into(), "fd00:1::1".into()],
        true,
    )
    .await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "IPv4 and IPv6 slices", || async {
        let slices = our_slices(c, "ds").await;
        slices.len() == 2 && endpoint_count(&slices) == 2
    })
    .await;
    let mut got: Vec<(String, String)> = our_slices(c, "ds")
        .await
        .iter()
        .map(|s| (s.address_type.clone(), s.endpoints[0].addresses[0].clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("IPv4".into(), "10.1.0.1".into()),
            ("IPv6".into(), "fd00:1::1".into())
        ]
    );
    running.stop().await;
}

#[tokio::test]
async fn hand_edited_slice_is_repaired() {
    let (fx, running) = web_with_ready_pods(5).await;
    let c = &fx.client;
    let api: Api<EndpointSlice> = Api::namespaced(c.clone(), NS);
    // Edit: drop two endpoints by hand.
    let mut s = our_slices(c, "web").await.remove(0);
    s.endpoints.truncate(3);
    api.replace(
        s.metadata.name.as_deref().unwrap(),
        &PostParams::default(),
        &s,
    )
    .await
    .unwrap();
    eventually(T, "edited slice repaired", || async {
        endpoint_count(&our_slices(c, "web").await) == 5
    })
    .await;
    // Delete: a new slice appears.
    let name = our_slices(c, "web").await.remove(0).metadata.name.unwrap();
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    eventually(T, "deleted slice recreated", || async {
        let slices = our_slices(c, "web").await;
        slices.len() == 1
            && slices[0].metadata.name.as_deref() != Some(&name)
            && endpoint_count(&slices) == 5
    })
    .await;
    check_service(c, "web", 100).await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn readiness_change_reaches_slice_within_a_second() {
    let _heavy = crate::heavy::heavy().await;
    let (fx, running) = web_with_ready_pods(3).await;
    let c = &fx.client;
    set_pod_status(c, "web-1", &[pod_ip(1, 1)], false).await;
    let took = eventually(T, "endpoint not ready", || async {
        slice_addresses(&our_slices(c, "web").await).contains(&(pod_ip(1, 1), false))
    })
    .await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    check_service(c, "web", 100).await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn terminating_pod_is_published_as_serving_not_ready() {
    let (fx, running) = web_with_ready_pods(2).await;
    let c = &fx.client;
    // Graceful deletion: deletionTimestamp set, pod kept for its grace period.
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(c.clone(), NS)
        .delete(
            "web-0",
            &DeleteParams {
                grace_period_seconds: Some(30),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    eventually(T, "terminating endpoint", || async {
        our_slices(c, "web")
            .await
            .iter()
            .flat_map(|s| s.endpoints.clone())
            .any(|e| {
                let cond = e.conditions.unwrap_or_default();
                e.addresses[0] == pod_ip(1, 0)
                    && cond.terminating == Some(true)
                    && cond.serving == Some(true)
                    && cond.ready == Some(false)
            })
    })
    .await;
    // The legacy Endpoints drop it entirely.
    eventually(T, "Endpoints without terminating pod", || async {
        endpoints_of(c, "web").await.is_some_and(|ep| {
            let (r, nr) = endpoints_addresses(&ep);
            r.len() == 1 && nr.is_empty()
        })
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn prefer_close_sets_zone_hints() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 3).await;
    let mut svc = service("web", IntOrString::Int(8080));
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    create_service(c, &svc).await;
    create_pods(c, "web", 0..3, 1, 3, true).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "zone hints", || async {
        let eps: Vec<_> = our_slices(c, "web")
            .await
            .into_iter()
            .flat_map(|s| s.endpoints)
            .collect();
        eps.len() == 3
            && eps.iter().all(|e| {
                e.hints
                    .as_ref()
                    .and_then(|h| h.for_zones.as_ref())
                    .is_some_and(|z| Some(&z[0].name) == e.zone.as_ref())
            })
    })
    .await;
    // Unsetting the field removes the hints.
    Api::<Service>::namespaced(c.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"trafficDistribution": null}})),
        )
        .await
        .unwrap();
    eventually(T, "hints removed", || async {
        our_slices(c, "web")
            .await
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .all(|e| e.hints.is_none())
    })
    .await;
    running.stop().await;
}

/// With `PreferClose`, an endpoint whose Node has no zone label gets the empty zone as its
/// hint, as kube-controller-manager v1.32 writes it (FACTS.md; upstream `trafficdist`
/// `preferCloseHeuristic.update`); one with a zone gets its own.
#[tokio::test]
async fn prefer_close_hints_an_endpoint_on_a_zoneless_node_with_the_empty_zone() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    let zoneless: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(json!({"metadata": {"name": "no-zone"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Node>::all(c.clone())
        .create(&PostParams::default(), &zoneless)
        .await
        .unwrap();
    let mut svc = service("web", IntOrString::Int(8080));
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    create_service(c, &svc).await;
    create_pod(c, "web", "web-zoned", "node-0", 8080, &[pod_ip(1, 1)], true).await;
    create_pod(
        c,
        "web",
        "web-zoneless",
        "no-zone",
        8080,
        &[pod_ip(1, 2)],
        true,
    )
    .await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "both endpoints hinted", || async {
        let eps: Vec<_> = our_slices(c, "web")
            .await
            .into_iter()
            .flat_map(|s| s.endpoints)
            .collect();
        eps.len() == 2 && eps.iter().all(|e| e.hints.is_some())
    })
    .await;
    let mut hints: Vec<(String, Option<String>, Vec<String>)> = our_slices(c, "web")
        .await
        .into_iter()
        .flat_map(|s| s.endpoints)
        .map(|e| {
            let zones = e.hints.and_then(|h| h.for_zones).unwrap_or_default();
            (
                e.node_name.unwrap_or_default(),
                e.zone,
                zones.into_iter().map(|z| z.name).collect(),
            )
        })
        .collect();
    hints.sort();
    assert_eq!(
        hints,
        vec![
            ("no-zone".to_string(), None, vec![String::new()]),
            (
                "node-0".to_string(),
                Some("zone-a".to_string()),
                vec!["zone-a".to_string()]
            ),
        ]
    );
    running.stop().await;
}

/// A Service port change rewrites the slice in place (one update, same name) and the
/// slice keeps `generateName: <service>-`, as kube-controller-manager's does (FACTS.md).
#[tokio::test]
async fn port_change_rewrites_the_slice_in_place_keeping_generate_name() {
    let (fx, running) = web_with_ready_pods(3).await;
    let c = &fx.client;
    let before = our_slices(c, "web").await.remove(0);
    Api::<Service>::namespaced(c.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"}]}})),
        )
        .await
        .unwrap();
    eventually(T, "slice on port 9090", || async {
        let slices = our_slices(c, "web").await;
        slices.len() == 1
            && slices[0]
                .ports
                .as_ref()
                .and_then(|p| p.first())
                .and_then(|p| p.port)
                == Some(9090)
    })
    .await;
    let after = our_slices(c, "web").await.remove(0);
    assert_eq!(
        after.metadata.name, before.metadata.name,
        "rewritten in place"
    );
    assert_eq!(after.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(endpoint_count(std::slice::from_ref(&after)), 3);
    running.stop().await;
}

#[tokio::test]
async fn service_deletion_and_selector_removal_delete_our_slices() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    create_service(c, &service("a", IntOrString::Int(8080))).await;
    create_service(c, &service("b", IntOrString::Int(8080))).await;
    create_pods(c, "a", 0..3, 1, 1, true).await;
    create_pods(c, "b", 0..3, 2, 1, true).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "slices", || async {
        endpoint_count(&our_slices(c, "a").await) == 3
            && endpoint_count(&our_slices(c, "b").await) == 3
    })
    .await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), NS);
    svcs.delete("a", &DeleteParams::default()).await.unwrap();
    svcs.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"selector": null}})),
    )
    .await
    .unwrap();
    eventually(T, "our slices gone", || async {
        our_slices(c, "a").await.is_empty() && our_slices(c, "b").await.is_empty()
    })
    .await;
    running.stop().await;
}

const TRIGGER: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The trigger time annotations of `web`'s slice and Endpoints (`None` while either object
/// is missing).
async fn trigger_annotations(c: &kube::Client) -> Option<(Option<String>, Option<String>)> {
    let slice = our_slices(c, "web").await.into_iter().next()?;
    let ep = endpoints_of(c, "web").await?;
    let get = |a: Option<std::collections::BTreeMap<String, String>>| a?.get(TRIGGER).cloned();
    Some((
        get(slice.metadata.annotations),
        get(ep.metadata.annotations),
    ))
}

/// Upstream `TriggerTimeTracker` (`pkg/controller/util/endpoint/trigger_time_tracker.go`):
/// a new Service's objects carry its creationTimestamp; a change with no newer trigger time
/// removes the annotation (`addTriggerTimeAnnotation`, `syncService`); a Pod turning Ready
/// stamps its Ready condition's `lastTransitionTime`, in RFC 3339.
#[tokio::test]
async fn trigger_time_is_service_creation_then_pod_ready_transition() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    let svc = create_service(c, &service("web", IntOrString::Int(8080))).await;
    let created = svc.metadata.creation_timestamp.unwrap().0.to_string();
    let running = start_controllers(&fx, test_config()).await;
    eventually(
        T,
        "slice and Endpoints stamped with the Service's creation",
        || {
            let want = Some((Some(created.clone()), Some(created.clone())));
            async move { trigger_annotations(c).await == want }
        },
    )
    .await;
    // A not-ready Pod without a Ready transition time: no newer trigger time.
    create_pod(c, "web", "web-0", "node-0", 8080, &[pod_ip(1, 0)], false).await;
    eventually(
        T,
        "annotation removed when no trigger time changed",
        || async {
            endpoint_count(&our_slices(c, "web").await) == 1
                && trigger_annotations(c).await == Some((None, None))
        },
    )
    .await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), NS);
    let ready = json!({"status": {"conditions": [{
        "type": "Ready", "status": "True", "lastTransitionTime": "2025-03-04T05:06:07Z",
    }]}});
    pods.patch_status("web-0", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    let want = Some("2025-03-04T05:06:07Z".to_string());
    eventually(
        T,
        "slice and Endpoints stamped with the Ready transition",
        || {
            let want = Some((want.clone(), want.clone()));
            async move { trigger_annotations(c).await == want }
        },
    )
    .await;
    let ep = endpoints_of(c, "web").await.unwrap();
    assert_eq!(
        endpoints_addresses(&ep).0.len(),
        1,
        "the Pod is a ready address"
    );
    running.stop().await;
}

/// kube-controller-manager gives each controller, the shared informers and leader election
/// a client with its own token bucket (`--kube-api-qps`, `--kube-api-burst`), counted like
/// client-go (every request but watches). Here at 10 QPS / burst 1: the 20 slice creates
/// and 20 Endpoints creates are each paced by their own controller's client, so the cold
/// start cannot finish before (20 − 1) / 10 = 1.9 s, and each client's requests are its own.
#[tokio::test]
async fn each_controller_has_its_own_rate_limited_client() {
    use std::sync::Arc;
    use svcplane_controllers::ClientRateLimit;
    use svcplane_controllers::{ControllerConfig, ControllerManager};

    const SERVICES: usize = 20;
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    for s in 0..SERVICES {
        let name = format!("svc{s}");
        create_service(c, &service(&name, IntOrString::Int(8080))).await;
        create_pods(c, &name, 0..1, s as u8 + 1, 1, true).await;
    }
    let metrics = Arc::new(svcplane_controllers::Metrics::new().unwrap());
    let config = ControllerConfig {
        client_rate_limit: Some(ClientRateLimit {
            qps: 10.0,
            burst: 1,
        }),
        ..test_config()
    };
    let manager = ControllerManager::new(fx.new_client().await, config, metrics.clone()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = std::time::Instant::now();
    let handle = tokio::spawn(manager.run(async {
        let _ = stopped.await;
    }));
    let took = eventually(
        Duration::from_secs(60),
        "every Service converged",
        || async {
            for s in 0..SERVICES {
                if check_service(c, &format!("svc{s}"), 100).await.is_err() {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    assert!(
        took >= Duration::from_millis(1850),
        "40 writes at 10 QPS per controller took only {took:?} ({:?} since start)",
        start.elapsed()
    );
    let requests = |client: &str| {
        metrics
            .client_rate_limiter_duration
            .with_label_values(&[client])
            .get_sample_count()
    };
    assert!(requests("endpointslice-controller") >= SERVICES as u64);
    assert!(requests("endpoint-controller") >= SERVICES as u64);
    // Nothing to mirror: the mirroring controller's client sent nothing.
    assert_eq!(requests("endpointslicemirroring-controller"), 0);
    // The informers listed five resources once each (one page each); their five watches
    // took no token.
    let informers = requests("shared-informers");
    assert!((5..10).contains(&informers), "{informers}");
}
