//! The three classic patch types: RFC 7386 merge patch, RFC 6902 JSON patch, and strategic
//! merge patch with the built-in types' merge keys (Service `spec.ports` by `port`, Pod
//! `spec.containers` by `name`, `$patch: delete` / `$retainKeys` directives).

use crate::apiserver::support as apiserver_support;

use apiserver_support::{raw, status};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use svcplane_tests::Fixture;

async fn service(fx: &Fixture) -> Api<Service> {
    let svcs: Api<Service> = Api::default_namespaced(fx.client.clone());
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9090}
        ]}
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    svcs
}

fn ports(svc: &Service) -> Vec<(String, i32, String)> {
    svc.spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                p.target_port
                    .as_ref()
                    .map(|t| match t {
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => {
                            i.to_string()
                        }
                        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
                            s.clone()
                        }
                    })
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn strategic_merge_patch_merges_service_ports_by_port() {
    let fx = Fixture::start().await;
    let svcs = service(&fx).await;
    let patched = svcs
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [
                {"port": 80, "targetPort": 8081},
                {"name": "https", "port": 443}
            ]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        ports(&patched),
        [
            ("http".into(), 80, "8081".into()),
            ("https".into(), 443, "443".into()),
            ("metrics".into(), 9090, "9090".into()),
        ],
        "entries merged by port; patch order first, then server-only entries (upstream \
         mergeSortedSlice); targetPort defaulted"
    );

    let deleted = svcs
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [{"port": 9090, "$patch": "delete"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        ports(&deleted).iter().map(|p| p.1).collect::<Vec<_>>(),
        [80, 443],
        "$patch: delete removes the entry with that merge key"
    );
}

#[tokio::test]
async fn merge_patch_replaces_lists_wholesale() {
    let fx = Fixture::start().await;
    let svcs = service(&fx).await;
    let patched = svcs
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ports": [{"name": "only", "port": 81}]}})),
        )
        .await
        .unwrap();
    assert_eq!(ports(&patched), [("only".into(), 81, "81".into())]);
}

#[tokio::test]
async fn strategic_merge_patch_merges_pod_containers_by_name() {
    let fx = Fixture::start().await;
    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [
            {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "proxy:1"}
        ]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let patched = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "sidecar", "image": "proxy:2"}]}}),
            ),
        )
        .await
        .unwrap();
    let containers: Vec<(String, String)> = patched
        .spec
        .unwrap()
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap()))
        .collect();
    assert_eq!(
        containers,
        [
            ("app".into(), "app:1".into()),
            ("sidecar".into(), "proxy:2".into())
        ]
    );
}

#[tokio::test]
async fn strategic_merge_patch_null_removes_map_keys() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let patched = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"a": null, "c": "3"}}})),
        )
        .await
        .unwrap();
    let labels = patched.metadata.labels.unwrap();
    assert_eq!(labels.keys().collect::<Vec<_>>(), ["b", "c"]);
}

#[tokio::test]
async fn json_patch_operations_and_failed_test_op() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "j"}, "data": {"a": "1", "b": "2"}}))
            .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let path = "/api/v1/namespaces/default/configmaps/j";
    let ops = json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "one"},
        {"op": "remove", "path": "/data/b"},
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "copy", "from": "/data/c", "path": "/data/d"}
    ]);
    let r = raw(
        &fx,
        "PATCH",
        path,
        Some("application/json-patch+json"),
        ops.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"], json!({"a": "one", "c": "3", "d": "3"}));

    let failing = json!([{"op": "test", "path": "/data/a", "value": "1"}, {"op": "remove", "path": "/data/a"}]);
    let r = raw(
        &fx,
        "PATCH",
        path,
        Some("application/json-patch+json"),
        failing.to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        cms.get("j").await.unwrap().data.unwrap()["a"],
        "one",
        "a failed JSON patch changes nothing"
    );
}

#[tokio::test]
async fn patches_may_not_change_name_or_kind() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(
        &PostParams::default(),
        &apiserver_support::configmap("n", json!({})),
    )
    .await
    .unwrap();
    let st = status(
        cms.patch(
            "n",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"name": "other"}})),
        )
        .await,
    );
    assert_eq!(st.code, 400, "{}", st.message);
    let st = status(
        cms.patch(
            "n",
            &PatchParams::default(),
            &Patch::Merge(json!({"kind": "Secret"})),
        )
        .await,
    );
    assert_eq!(st.code, 400, "{}", st.message);
}

#[tokio::test]
async fn patch_of_a_missing_object_is_404() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(
        cms.patch(
            "missing",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {}})),
        )
        .await,
    );
    assert_eq!(st.code, 404);
}

/// Go's `ServiceStatus.LoadBalancer` is a struct, so a real server always returns
/// `status: {loadBalancer: {}}` for a Service, also after patches (upstream
/// `dropTypeDependentFields` resets it to the zero value, it never removes it).
#[tokio::test]
async fn patched_service_keeps_its_empty_load_balancer_status() {
    let fx = Fixture::start().await;
    let svcs: Api<Service> = Api::default_namespaced(fx.client.clone());
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "lb-status"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    let patched = svcs
        .patch(
            "lb-status",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    let status = serde_json::to_value(patched.status).unwrap();
    assert_eq!(status, json!({"loadBalancer": {}}));
}

/// Go's `ObjectMeta` marks labels, annotations, finalizers and ownerReferences `omitempty`: a
/// real server never returns them empty, whether a create sent them empty or a patch emptied
/// them (what `kubectl diff` shows after a server-side dry run).
#[tokio::test]
async fn empty_metadata_maps_and_lists_are_not_returned() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let created = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("application/json"),
        serde_json::to_vec(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "empty-meta", "labels": {}, "annotations": {}, "finalizers": []},
        }))
        .unwrap(),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let meta = &created.body["metadata"];
    for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
        assert!(meta.get(key).is_none(), "{key} returned: {meta}");
    }
    let patched = cms
        .patch(
            "empty-meta",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}, "annotations": {}}})),
        )
        .await
        .unwrap();
    assert!(patched.metadata.annotations.is_none());
    let patched = cms
        .patch(
            "empty-meta",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": null}}})),
        )
        .await
        .unwrap();
    assert!(
        patched.metadata.labels.is_none(),
        "{:?}",
        patched.metadata.labels
    );
}
