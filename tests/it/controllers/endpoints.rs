//! Legacy Endpoints controller behaviour through the embedded API server.

use crate::controllers::support as controllers_support;

use std::time::Duration;

use controllers_support::*;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use svcplane_tests::Fixture;

const T: Duration = Duration::from_secs(60);
const OVER: &str = "endpoints.kubernetes.io/over-capacity";

fn endpoints_only() -> svcplane_controllers::ControllerConfig {
    svcplane_controllers::ControllerConfig {
        controllers: [svcplane_controllers::ControllerKind::Endpoints].into(),
        ..test_config()
    }
}

#[tokio::test]
async fn ready_and_not_ready_addresses_are_separated() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..3, 1, 1, true).await;
    create_pods(c, "web", 3..5, 1, 1, false).await;
    let running = start_controllers(&fx, endpoints_only()).await;
    eventually(T, "Endpoints", || async {
        endpoints_of(c, "web").await.is_some_and(|ep| {
            let (r, nr) = endpoints_addresses(&ep);
            r.len() == 3 && nr.len() == 2
        })
    })
    .await;
    let ep = endpoints_of(c, "web").await.unwrap();
    let subsets = ep.subsets.unwrap();
    assert_eq!(subsets.len(), 1);
    assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
    let addr = &subsets[0].addresses.as_ref().unwrap()[0];
    assert_eq!(
        addr.target_ref.as_ref().unwrap().kind.as_deref(),
        Some("Pod")
    );
    assert_eq!(addr.node_name.as_deref(), Some("node-0"));
    // Nothing changes → no more writes.
    let before = fx.write_count("endpoints");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.write_count("endpoints"), before);
    running.stop().await;
}

/// 1,000 ready and 50 not-ready pods behind Service `big`, Endpoints controller running, and
/// the Endpoints truncated.
async fn over_capacity() -> (Fixture, Running) {
    let fx = Fixture::start().await;
    let c = fx.client.clone();
    create_nodes(&c, 3).await;
    create_service(&c, &service("big", IntOrString::Int(8080))).await;
    create_pods(&c, "big", 0..1000, 1, 3, true).await;
    create_pods(&c, "big", 1000..1050, 1, 3, false).await;
    let running = start_controllers(&fx, endpoints_only()).await;
    eventually(T, "truncated Endpoints", || async {
        endpoints_of(&c, "big").await.is_some_and(|ep| {
            ep.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(OVER))
                .map(String::as_str)
                == Some("truncated")
        })
    })
    .await;
    (fx, running)
}

#[tokio::test]
async fn endpoints_truncated_at_1000_with_annotation() {
    let (fx, running) = over_capacity().await;
    let (ready, not_ready) = endpoints_addresses(&endpoints_of(&fx.client, "big").await.unwrap());
    assert_eq!(
        (ready.len(), not_ready.len()),
        (1000, 0),
        "ready addresses are kept first"
    );
    // Over capacity but unchanged: not rewritten on later syncs.
    let before = fx.write_count("endpoints");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fx.write_count("endpoints"), before);
    running.stop().await;
}

#[tokio::test]
async fn annotation_removed_below_capacity() {
    let (fx, running) = over_capacity().await;
    let c = &fx.client;
    // Drop to exactly 1000: annotation removed, all addresses present.
    for i in 1000..1050 {
        delete_pod(c, &format!("big-{i}")).await;
    }
    eventually(T, "annotation removed", || async {
        endpoints_of(c, "big").await.is_some_and(|ep| {
            !ep.metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .contains_key(OVER)
                && endpoints_addresses(&ep).0.len() == 1000
        })
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn endpoints_of_deleted_service_are_deleted() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    create_service(c, &service("web", IntOrString::Int(8080))).await;
    create_pods(c, "web", 0..2, 1, 1, true).await;
    let running = start_controllers(&fx, endpoints_only()).await;
    eventually(T, "Endpoints", || async {
        endpoints_of(c, "web").await.is_some()
    })
    .await;
    kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(c.clone(), NS)
        .delete("web", &Default::default())
        .await
        .unwrap();
    eventually(T, "Endpoints deleted", || async {
        endpoints_of(c, "web").await.is_none()
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn headless_service_endpoints_carry_headless_label() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    create_nodes(c, 1).await;
    let mut svc = service("db", IntOrString::Int(8080));
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    create_service(c, &svc).await;
    create_pods(c, "db", 0..1, 1, 1, true).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "headless labels", || async {
        let ep_ok = endpoints_of(c, "db").await.is_some_and(|ep| {
            ep.metadata
                .labels
                .unwrap_or_default()
                .contains_key("service.kubernetes.io/headless")
        });
        let slices = our_slices(c, "db").await;
        ep_ok
            && slices.len() == 1
            && slices[0]
                .metadata
                .labels
                .clone()
                .unwrap_or_default()
                .contains_key("service.kubernetes.io/headless")
    })
    .await;
    running.stop().await;
}
