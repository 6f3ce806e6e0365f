//! The `/status` subresource (FACTS.md): writes to `pods/NAME/status` change only status, writes
//! to `pods/NAME` never change status; resources without the subresource have no `/status`.

use crate::apiserver::support as apiserver_support;

use apiserver_support::{pod, raw};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use svcplane_tests::Fixture;

#[tokio::test]
async fn patch_pod_status_ignores_spec_and_patch_pod_ignores_status() {
    let fx = Fixture::start().await;
    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    let created = pods
        .create(&PostParams::default(), &pod("p", None))
        .await
        .unwrap();
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending"),
        "status is reset on create"
    );

    let after_status = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"nodeName": "sneaky"},
                "status": {"phase": "Running", "podIP": "10.1.2.3"}
            })),
        )
        .await
        .unwrap();
    let st = after_status.status.clone().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(st.pod_ip.as_deref(), Some("10.1.2.3"));
    assert_eq!(
        after_status.spec.as_ref().unwrap().node_name,
        None,
        "/status ignores spec"
    );

    let after_main = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"labels": {"a": "b"}},
                "status": {"phase": "Failed"}
            })),
        )
        .await
        .unwrap();
    assert_eq!(after_main.labels_ref()["a"], "b");
    assert_eq!(
        after_main.status.unwrap().phase.as_deref(),
        Some("Running"),
        "the main resource ignores status"
    );
}

trait LabelsRef {
    fn labels_ref(&self) -> &std::collections::BTreeMap<String, String>;
}
impl LabelsRef for Pod {
    fn labels_ref(&self) -> &std::collections::BTreeMap<String, String> {
        self.metadata.labels.as_ref().expect("labels")
    }
}

#[tokio::test]
async fn put_status_replaces_status_and_keeps_spec() {
    let fx = Fixture::start().await;
    let nodes: Api<Node> = Api::all(fx.client.clone());
    let node: Node = serde_json::from_value(
        json!({"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.0.1.0/24"}}),
    )
    .unwrap();
    let created = nodes.create(&PostParams::default(), &node).await.unwrap();
    let mut with_status = created.clone();
    with_status.spec.as_mut().unwrap().unschedulable = Some(true);
    with_status.status = Some(
        serde_json::from_value(
            json!({"addresses": [{"type": "InternalIP", "address": "192.168.0.10"}]}),
        )
        .unwrap(),
    );
    let updated = nodes
        .replace_status("n1", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(
        updated.status.unwrap().addresses.unwrap()[0].address,
        "192.168.0.10"
    );
    assert_eq!(
        updated.spec.unwrap().unschedulable,
        None,
        "PUT /status keeps the stored spec"
    );

    let mut spec_change = nodes.get("n1").await.unwrap();
    spec_change.spec.as_mut().unwrap().unschedulable = Some(true);
    spec_change.status = None;
    let updated = nodes
        .replace("n1", &PostParams::default(), &spec_change)
        .await
        .unwrap();
    assert_eq!(updated.spec.unwrap().unschedulable, Some(true));
    assert!(
        updated.status.and_then(|s| s.addresses).is_some(),
        "PUT on the main resource keeps the stored status"
    );
}

#[tokio::test]
async fn service_status_load_balancer_ingress_only_through_status() {
    let fx = Fixture::start().await;
    let svcs: Api<Service> = Api::default_namespaced(fx.client.clone());
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "lb"},
        // Upstream `ValidateLoadBalancerStatus` allows ingress only on LoadBalancer Services.
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"a": "b"}},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    }))
    .unwrap();
    let created = svcs.create(&PostParams::default(), &svc).await.unwrap();
    assert!(
        created
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .is_none(),
        "status in a create body is dropped"
    );
    let patched = svcs
        .patch_status(
            "lb",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()[0]
            .ip
            .as_deref(),
        Some("1.2.3.4")
    );
}

#[tokio::test]
async fn resources_without_status_subresource_have_no_status_path() {
    let fx = Fixture::start().await;
    let r = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x/status",
        Some("application/merge-patch+json"),
        "{}",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
}
