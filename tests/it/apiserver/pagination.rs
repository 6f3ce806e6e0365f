//! `limit`/`continue` chunked lists (upstream API concepts, "Retrieving large results sets in
//! chunks"): pages in key order, every object exactly once, the continue token carries the
//! first page's revision, and the last page has no token.

use crate::apiserver::support as apiserver_support;

use apiserver_support::{configmap, get_json, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use svcplane_tests::Fixture;

async fn seed(cms: &Api<ConfigMap>, n: usize) {
    for i in 0..n {
        cms.create(
            &PostParams::default(),
            &configmap(
                &format!("cm-{i:03}"),
                json!({"parity": if i % 2 == 0 { "even" } else { "odd" }}),
            ),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn limit_and_continue_visit_every_object_once_in_order() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    seed(&cms, 25).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut first_rv = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        let rv = page.metadata.resource_version.clone().unwrap();
        match &first_rv {
            None => first_rv = Some(rv),
            Some(first) => assert_eq!(
                &rv, first,
                "continued pages report the first page's revision"
            ),
        }
        seen.extend(page.items.iter().map(|o| o.name_any()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..25).map(|i| format!("cm-{i:03}")).collect();
    assert_eq!(seen, want, "every object once, in name order");
}

#[tokio::test]
async fn limit_applies_after_selectors() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    seed(&cms, 12).await;
    let mut seen = Vec::new();
    let mut lp = ListParams::default().labels("parity=odd").limit(4);
    loop {
        let page = cms.list(&lp).await.unwrap();
        assert!(!page.items.is_empty(), "no empty pages when matches remain");
        seen.extend(page.items.iter().map(|o| o.name_any()));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => lp = lp.continue_token(&t),
            None => break,
        }
    }
    let want: Vec<String> = (0..12)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("cm-{i:03}"))
        .collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_list_that_fits_in_the_limit_has_no_continue_token() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    seed(&cms, 3).await;
    let page = cms.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.metadata.continue_.unwrap_or_default().is_empty());
    let r = get_json(&fx, "/api/v1/namespaces/default/configmaps?limit=2").await;
    assert_eq!(r.body["kind"], "ConfigMapList");
    assert!(r.body["metadata"]["continue"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn pagination_across_namespaces_keeps_namespace_name_order() {
    let fx = Fixture::start().await;
    for ns in ["b-ns", "a-ns"] {
        apiserver_support::create_namespace(&fx, ns).await;
        let cms: Api<ConfigMap> = Api::namespaced(fx.client.clone(), ns);
        seed(&cms, 3).await;
    }
    let all: Api<ConfigMap> = Api::all(fx.client.clone());
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = all.list(&lp).await.unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|o| format!("{}/{}", o.namespace().unwrap(), o.name_any())),
        );
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => lp = lp.continue_token(&t),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 6);
}

#[tokio::test]
async fn garbage_continue_token_is_400() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(
        cms.list(&ListParams::default().limit(1).continue_token("not-a-token"))
            .await,
    );
    assert_eq!(st.code, 400);
    assert_eq!(st.reason, "BadRequest");
}

/// Upstream serves continued pages from a consistent snapshot at the first page's revision
/// (etcd MVCC): objects created after the first page never appear in later pages.
#[tokio::test]
async fn continued_pages_are_a_snapshot_at_the_first_page_revision() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    seed(&cms, 4).await;
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    cms.create(&PostParams::default(), &configmap("cm-999", json!({})))
        .await
        .unwrap();
    cms.delete("cm-003", &Default::default()).await.unwrap();
    let before = cms.get("cm-002").await.unwrap();
    cms.patch(
        "cm-002",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    let rest = cms
        .list(
            &ListParams::default()
                .limit(10)
                .continue_token(&first.metadata.continue_.unwrap()),
        )
        .await
        .unwrap();
    let names: Vec<String> = rest.items.iter().map(|o| o.name_any()).collect();
    assert_eq!(names, ["cm-002", "cm-003"]);
    assert_eq!(
        rest.items[0].resource_version(),
        before.resource_version(),
        "the version at the first page's revision, not the later patch"
    );
    assert_eq!(rest.items[0].data.as_ref().unwrap()["k"], "v");
}

#[tokio::test]
async fn a_continue_token_older_than_the_history_is_410_expired() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    seed(&cms, 4).await;
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    cms.create(&PostParams::default(), &configmap("later", json!({})))
        .await
        .unwrap();
    fx.server.inspect().compact_history();
    let st = status(
        cms.list(
            &ListParams::default()
                .limit(2)
                .continue_token(&first.metadata.continue_.unwrap()),
        )
        .await,
    );
    assert_eq!(st.code, 410);
    assert_eq!(st.reason, "Expired");
    assert!(
        st.message
            .starts_with("The provided continue parameter is too old"),
        "{}",
        st.message
    );
}
