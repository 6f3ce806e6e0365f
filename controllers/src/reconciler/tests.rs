//! The plan step of each controller, asserted directly: informer caches filled by hand, no API
//! server (the client refuses every request, so a plan that tried to write would fail).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Node, Pod,
    PodCondition, PodSpec, PodStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::client::Body;

use super::{Reconciler, SyncPlan, Write};
use crate::config::ControllerConfig;
use crate::context::Context;
use crate::endpoints::controller::EndpointsController;
use crate::endpointslice::controller::EndpointSliceController;
use crate::error::Error;
use crate::informer::cached_object::CachedEndpoints;
use crate::informer::cached_pod::CachedPod;
use crate::labels::LABEL_TOPOLOGY_ZONE;
use crate::metrics::Metrics;
use crate::mirroring::controller::MirroringController;

/// A client whose every request fails: plans must not talk to the API.
fn offline_client() -> kube::Client {
    let service = tower::service_fn(|_request: http::Request<Body>| async {
        Err::<http::Response<Body>, _>(std::io::Error::other("no API server in plan tests"))
    });
    kube::Client::new(service, "default")
}

fn context() -> Arc<Context> {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    Arc::new(Context::new(
        offline_client(),
        ControllerConfig::default(),
        metrics,
    ))
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        resource_version: Some("1".into()),
        ..Default::default()
    }
}

fn service(name: &str, selector: Option<&str>) -> Service {
    Service {
        metadata: meta(name),
        spec: Some(ServiceSpec {
            selector: selector.map(|app| BTreeMap::from([("app".to_string(), app.to_string())])),
            ports: Some(vec![ServicePort {
                port: 80,
                target_port: Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080),
                ),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            cluster_ip: Some("10.96.0.10".into()),
            cluster_ips: Some(vec!["10.96.0.10".into()]),
            ip_families: Some(vec!["IPv4".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ready_pod(name: &str, app: &str, ip: &str, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            labels: Some(BTreeMap::from([("app".to_string(), app.to_string())])),
            ..meta(name)
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![ContainerPort {
                    container_port: 8080,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(ip.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn node(name: &str, zone: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                LABEL_TOPOLOGY_ZONE.to_string(),
                zone.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn add_service(ctx: &Context, svc: Service) {
    ctx.caches.services.apply(Arc::new(svc));
}

fn add_pod(ctx: &Context, pod: Pod) {
    let cached = CachedPod::from_pod(pod, &ctx.caches.pod_interner);
    ctx.caches.pods.apply(Arc::new(cached));
}

fn add_endpoints(ctx: &Context, ep: Endpoints) {
    ctx.caches
        .endpoints
        .apply(Arc::new(CachedEndpoints::new(ep)));
}

fn operations(plan: &SyncPlan) -> Vec<&'static str> {
    plan.writes.iter().map(Write::operation).collect()
}

#[tokio::test]
async fn endpointslice_plan_creates_one_slice_and_observes_the_endpoints() {
    let ctx = context();
    add_service(&ctx, service("web", Some("web")));
    ctx.caches.nodes.apply(Arc::new(node("n1", "zone-a")));
    add_pod(&ctx, ready_pod("web-1", "web", "10.244.1.2", "n1"));
    add_pod(&ctx, ready_pod("web-2", "web", "10.244.1.3", "n1"));
    let controller = EndpointSliceController::new(ctx);
    let plan = controller.plan("default/web").expect("plan");
    assert_eq!(operations(&plan), ["create"]);
    let Write::CreateSlice(slice) = &plan.writes[0] else {
        panic!("expected a slice create, got {:?}", plan.writes[0]);
    };
    assert_eq!(slice.endpoints.len(), 2);
    let observed = plan.observation.as_ref().expect("observation");
    assert_eq!((observed.endpoints_added, observed.slices_changed), (2, 1));
    assert_eq!(plan.desired, Some(Some((2, 1))));
    assert_eq!(plan.owner, "Service default/web");
    let failure = plan.on_failure.as_ref().expect("failure event planned");
    assert_eq!(failure.reason, "FailedToUpdateEndpointSlices");
    assert!(plan.retry.is_none());
}

#[tokio::test]
async fn endpointslice_plan_retries_pods_on_unknown_nodes_after_writing() {
    let ctx = context();
    add_service(&ctx, service("web", Some("web")));
    add_pod(&ctx, ready_pod("web-1", "web", "10.244.1.2", "gone"));
    let controller = EndpointSliceController::new(ctx);
    let plan = controller.plan("default/web").expect("plan");
    assert!(
        matches!(plan.retry, Some(Error::NodeNotFound { .. })),
        "{:?}",
        plan.retry
    );
}

#[tokio::test]
async fn endpointslice_plan_of_a_gone_service_without_slices_only_clears_the_gauges() {
    let controller = EndpointSliceController::new(context());
    let plan = controller.plan("default/gone").expect("plan");
    assert!(plan.writes.is_empty());
    assert!(plan.events.is_empty() && plan.on_failure.is_none());
    assert_eq!(plan.desired, Some(None));
}

#[tokio::test]
async fn endpoints_plan_deletes_the_endpoints_of_a_deleted_service() {
    let ctx = context();
    add_endpoints(
        &ctx,
        Endpoints {
            metadata: meta("gone"),
            ..Default::default()
        },
    );
    let controller = EndpointsController::new(ctx);
    let plan = controller.plan("default/gone").expect("plan");
    assert!(matches!(&plan.writes[..], [Write::DeleteEndpoints(name)] if name == "gone"));
    assert!(plan.on_failure.is_none(), "upstream records no Event here");
}

#[tokio::test]
async fn endpoints_plan_leaves_selectorless_services_to_their_users() {
    let ctx = context();
    add_service(&ctx, service("manual", None));
    add_endpoints(
        &ctx,
        Endpoints {
            metadata: meta("manual"),
            ..Default::default()
        },
    );
    let controller = EndpointsController::new(ctx);
    let plan = controller.plan("default/manual").expect("plan");
    assert!(plan.writes.is_empty());
}

#[tokio::test]
async fn endpoints_plan_creates_with_a_failure_event_on_the_service() {
    let ctx = context();
    add_service(&ctx, service("web", Some("web")));
    add_pod(&ctx, ready_pod("web-1", "web", "10.244.1.2", "n1"));
    let controller = EndpointsController::new(ctx);
    let plan = controller.plan("default/web").expect("plan");
    assert_eq!(operations(&plan), ["create"]);
    let failure = plan.on_failure.expect("failure event planned");
    assert_eq!(failure.reason, "FailedToCreateEndpoint");
    assert_eq!(failure.object.kind.as_deref(), Some("Service"));
    assert_eq!(
        failure.message,
        "Failed to create endpoint for service default/web"
    );
}

#[tokio::test]
async fn mirroring_plan_skips_invalid_addresses_with_a_warning_event() {
    let ctx = context();
    add_service(&ctx, service("manual", None));
    add_endpoints(
        &ctx,
        Endpoints {
            metadata: meta("manual"),
            subsets: Some(vec![EndpointSubset {
                addresses: Some(vec![
                    EndpointAddress {
                        ip: "10.1.2.3".into(),
                        ..Default::default()
                    },
                    EndpointAddress {
                        ip: "not-an-ip".into(),
                        ..Default::default()
                    },
                ]),
                ports: Some(vec![EndpointPort {
                    port: 8080,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }]),
        },
    );
    let controller = MirroringController::new(ctx);
    let plan = controller.plan("default/manual").expect("plan");
    assert_eq!(operations(&plan), ["create"]);
    let reasons: Vec<_> = plan.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["InvalidIPAddress"]);
    assert_eq!(
        plan.events[0].message,
        "Skipped 1 invalid IP addresses when mirroring to EndpointSlices"
    );
    assert_eq!(plan.owner, "Endpoints default/manual");
}

#[tokio::test]
async fn mirroring_plan_of_nothing_to_mirror_writes_nothing() {
    let controller = MirroringController::new(context());
    let plan = controller.plan("default/none").expect("plan");
    assert!(plan.writes.is_empty() && plan.events.is_empty());
    assert_eq!(plan.desired, Some(None));
}
