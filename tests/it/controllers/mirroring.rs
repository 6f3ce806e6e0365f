//! EndpointSlice mirroring controller behaviour through the embedded API server.

use crate::controllers::support as controllers_support;

use std::time::Duration;

use controllers_support::*;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use svcplane_tests::Fixture;

const T: Duration = Duration::from_secs(20);
const MIRROR: &str = "endpointslicemirroring-controller.k8s.io";

async fn selectorless(c: &kube::Client, name: &str) {
    let svc = Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                port: 80,
                target_port: Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9376),
                ),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    create_service(c, &svc).await;
}

async fn custom_endpoints(c: &kube::Client, name: &str, ips: &[&str], labels: &[(&str, &str)]) {
    let ep = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            annotations: Some([("owner".to_string(), "db-team".to_string())].into()),
            ..Default::default()
        },
        subsets: Some(vec![EndpointSubset {
            addresses: Some(
                ips.iter()
                    .map(|ip| EndpointAddress {
                        ip: ip.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            not_ready_addresses: None,
            ports: Some(vec![EndpointPort {
                port: 9376,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
        }]),
    };
    Api::<Endpoints>::namespaced(c.clone(), NS)
        .create(&PostParams::default(), &ep)
        .await
        .expect("create endpoints");
}

#[tokio::test]
async fn custom_endpoints_are_mirrored() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    selectorless(c, "ext").await;
    custom_endpoints(c, "ext", &["10.4.5.6", "10.1.2.3"], &[("team", "db")]).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "mirrored slice", || async {
        endpoint_count(&slices_of(c, "ext", MIRROR).await) == 2
    })
    .await;
    let s = slices_of(c, "ext", MIRROR).await.remove(0);
    assert_eq!(s.metadata.generate_name.as_deref(), Some("ext-"));
    let labels = s.metadata.labels.clone().unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("db"));
    assert_eq!(
        s.metadata
            .annotations
            .as_ref()
            .unwrap()
            .get("owner")
            .map(String::as_str),
        Some("db-team")
    );
    assert_eq!(s.ports.clone().unwrap()[0].port, Some(9376));
    assert_eq!(
        s.metadata.owner_references.clone().unwrap()[0].kind,
        "Endpoints"
    );
    // The EndpointSlice controller leaves selector-less Services alone.
    assert!(our_slices(c, "ext").await.is_empty());
    // Changes follow.
    Api::<Endpoints>::namespaced(c.clone(), NS)
        .patch("ext", &PatchParams::default(), &Patch::Merge(json!({"subsets": [{"addresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 9376, "protocol": "TCP"}]}]})))
        .await
        .unwrap();
    eventually(T, "mirror updated", || async {
        slice_addresses(&slices_of(c, "ext", MIRROR).await)
            .into_iter()
            .map(|(ip, _)| ip)
            .collect::<Vec<_>>()
            == vec!["10.9.9.9".to_string()]
    })
    .await;
    // Rewritten in place: same name, `generateName` kept (FACTS.md).
    let rewritten = slices_of(c, "ext", MIRROR).await.remove(0);
    assert_eq!(rewritten.metadata.name, s.metadata.name);
    assert_eq!(rewritten.metadata.generate_name.as_deref(), Some("ext-"));
    // A port change recycles the same slice, again keeping it.
    Api::<Endpoints>::namespaced(c.clone(), NS)
        .patch("ext", &PatchParams::default(), &Patch::Merge(json!({"subsets": [{"addresses": [{"ip": "10.9.9.9"}], "ports": [{"port": 9377, "protocol": "TCP"}]}]})))
        .await
        .unwrap();
    eventually(T, "mirror on port 9377", || async {
        let slices = slices_of(c, "ext", MIRROR).await;
        slices.len() == 1
            && slices[0]
                .ports
                .as_ref()
                .and_then(|p| p.first())
                .and_then(|p| p.port)
                == Some(9377)
    })
    .await;
    let recycled = slices_of(c, "ext", MIRROR).await.remove(0);
    assert_eq!(recycled.metadata.name, s.metadata.name);
    assert_eq!(recycled.metadata.generate_name.as_deref(), Some("ext-"));
    running.stop().await;
}

#[tokio::test]
async fn mirroring_skips_label() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    selectorless(c, "skip").await;
    custom_endpoints(
        c,
        "skip",
        &["10.4.5.6"],
        &[("endpointslice.kubernetes.io/skip-mirror", "true")],
    )
    .await;
    selectorless(c, "mirror").await;
    custom_endpoints(c, "mirror", &["10.4.5.7"], &[]).await;
    let running = start_controllers(&fx, test_config()).await;
    // The unlabelled one is mirrored, proving the controller ran; the labelled one is not.
    eventually(T, "control mirrored", || async {
        slices_of(c, "mirror", MIRROR).await.len() == 1
    })
    .await;
    assert!(slices_of(c, "skip", MIRROR).await.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn mirrored_slices_removed_when_service_gains_selector() {
    let fx = Fixture::start().await;
    let c = &fx.client;
    selectorless(c, "ext").await;
    custom_endpoints(c, "ext", &["10.4.5.6"], &[]).await;
    let running = start_controllers(&fx, test_config()).await;
    eventually(T, "mirrored", || async {
        slices_of(c, "ext", MIRROR).await.len() == 1
    })
    .await;
    Api::<Service>::namespaced(c.clone(), NS)
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"app": "ext"}}})),
        )
        .await
        .unwrap();
    eventually(T, "mirror removed", || async {
        slices_of(c, "ext", MIRROR).await.is_empty()
    })
    .await;
    running.stop().await;
}
