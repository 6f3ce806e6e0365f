//! Label selectors with every operator of upstream `labels.Parse` and field selectors on
//! `metadata.name`, `metadata.namespace` and `spec.nodeName` (upstream `fields.ParseSelector`
//! plus the pod strategy's `GetAttrs`); anything else is a 400.

use crate::apiserver::support as apiserver_support;

use apiserver_support::{configmap, create_namespace, pod, status};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use svcplane_tests::Fixture;

async fn names<K>(api: &Api<K>, lp: ListParams) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut v: Vec<String> = api
        .list(&lp)
        .await
        .unwrap_or_else(|e| panic!("list {lp:?}: {e}"))
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn label_selectors_support_every_upstream_operator() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for (name, labels) in [
        ("web-prod", json!({"app": "web", "env": "prod"})),
        ("web-dev", json!({"app": "web", "env": "dev"})),
        (
            "db-prod",
            json!({"app": "db", "env": "prod", "tier": "data"}),
        ),
        ("plain", json!({})),
    ] {
        cms.create(&PostParams::default(), &configmap(name, labels))
            .await
            .unwrap();
    }
    let table: &[(&str, &[&str])] = &[
        ("app=web", &["web-dev", "web-prod"]),
        ("app==web", &["web-dev", "web-prod"]),
        ("app!=web", &["db-prod", "plain"]),
        ("env in (prod,staging)", &["db-prod", "web-prod"]),
        ("env notin (prod)", &["plain", "web-dev"]),
        ("tier", &["db-prod"]),
        ("!tier", &["plain", "web-dev", "web-prod"]),
        ("app=web,env=prod", &["web-prod"]),
        ("app in (web,db),!tier", &["web-dev", "web-prod"]),
        ("app=nothing", &[]),
        ("", &["db-prod", "plain", "web-dev", "web-prod"]),
    ];
    for (selector, want) in table {
        let got = names(&cms, ListParams::default().labels(selector)).await;
        assert_eq!(got, *want, "labelSelector {selector:?}");
    }
}

#[tokio::test]
async fn malformed_label_selector_is_400_bad_request() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for bad in ["app in (web", "=web", "app=web=x", "a b"] {
        let st = status(cms.list(&ListParams::default().labels(bad)).await);
        assert_eq!(st.code, 400, "{bad}: {}", st.message);
        assert_eq!(st.reason, "BadRequest", "{bad}");
    }
}

#[tokio::test]
async fn field_selectors_on_name_namespace_and_pod_node_name() {
    let fx = Fixture::start().await;
    create_namespace(&fx, "other").await;
    let default_cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let other_cms: Api<ConfigMap> = Api::namespaced(fx.client.clone(), "other");
    let all_cms: Api<ConfigMap> = Api::all(fx.client.clone());
    for n in ["a", "b"] {
        default_cms
            .create(&PostParams::default(), &configmap(n, json!({})))
            .await
            .unwrap();
        other_cms
            .create(&PostParams::default(), &configmap(n, json!({})))
            .await
            .unwrap();
    }
    assert_eq!(
        names(
            &default_cms,
            ListParams::default().fields("metadata.name=a")
        )
        .await,
        ["a"]
    );
    assert_eq!(
        names(
            &default_cms,
            ListParams::default().fields("metadata.name!=a")
        )
        .await,
        ["b"]
    );
    let in_other: Vec<(String, String)> = all_cms
        .list(&ListParams::default().fields("metadata.namespace=other"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| (o.namespace().unwrap(), o.name_any()))
        .collect();
    assert_eq!(in_other.len(), 2);
    assert!(in_other.iter().all(|(ns, _)| ns == "other"), "{in_other:?}");
    assert_eq!(
        all_cms
            .list(&ListParams::default().fields("metadata.namespace=other,metadata.name=b"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    for (name, node) in [("p1", Some("node-a")), ("p2", Some("node-b")), ("p3", None)] {
        pods.create(&PostParams::default(), &pod(name, node))
            .await
            .unwrap();
    }
    let table: &[(&str, &[&str])] = &[
        ("spec.nodeName=node-a", &["p1"]),
        ("spec.nodeName!=node-a", &["p2", "p3"]),
        ("spec.nodeName=", &["p3"]),
        ("spec.nodeName==node-b,metadata.name=p2", &["p2"]),
        ("spec.nodeName=node-c", &[]),
    ];
    for (selector, want) in table {
        assert_eq!(
            names(&pods, ListParams::default().fields(selector)).await,
            *want,
            "fieldSelector {selector:?}"
        );
    }
}

#[tokio::test]
async fn unsupported_field_selector_is_400_naming_the_field() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(cms.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(st.code, 400);
    assert_eq!(st.reason, "BadRequest");
    assert!(st.message.contains("data.k"), "{}", st.message);
    // spec.nodeName is a pod field, not a ConfigMap one.
    let st = status(
        cms.list(&ListParams::default().fields("spec.nodeName=x"))
            .await,
    );
    assert_eq!(st.code, 400, "{}", st.message);
}
