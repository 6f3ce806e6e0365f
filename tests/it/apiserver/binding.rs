//! `pods/NAME/binding` over HTTP, as `kubectl create --raw` and kube-scheduler send it
//! (upstream `BindingREST.Create`, `ValidatePodBinding`).

use kube::api::{Api, PostParams};
use serde_json::json;
use svcplane_tests::Fixture;

use super::support::{pod, raw};

fn binding(pod: &str, node: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
    .to_string()
}

#[tokio::test]
async fn binding_assigns_an_unbound_pod_once_and_refuses_what_upstream_refuses() {
    let fx = Fixture::start().await;
    let client = fx.new_client().await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("web", None))
        .await
        .unwrap();
    let path = "/api/v1/namespaces/default/pods/web/binding";
    let json = Some("application/json");

    // target.name missing: 422 naming the field.
    let bad = json!({"kind": "Binding", "metadata": {"name": "web"}, "target": {"kind": "Node"}});
    let r = raw(&fx, "POST", path, json, bad.to_string()).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["details"]["causes"][0]["field"], "target.name");
    // A Binding named for another Pod: 400, as upstream's name check.
    let r = raw(&fx, "POST", path, json, binding("other", "n1")).await;
    assert_eq!(r.status, 400, "{}", r.body);

    let r = raw(&fx, "POST", path, json, binding("web", "n1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["status"], "Success");
    let bound = pods.get("web").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("n1"));
    let scheduled = bound.status.unwrap().conditions.unwrap();
    assert!(
        scheduled
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True"),
        "{scheduled:?}"
    );

    // Already bound: 409 Conflict with upstream's message.
    let r = raw(&fx, "POST", path, json, binding("web", "n2")).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("is already assigned to node \"n1\""),
        "{}",
        r.body
    );
    // A Pod that does not exist: 404.
    let r = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/pods/ghost/binding",
        json,
        binding("ghost", "n1"),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
}
