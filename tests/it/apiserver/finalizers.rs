//! Finalizers and `deletionTimestamp` (upstream graceful deletion in `rest.BeforeDelete` and
//! `ValidateObjectMetaUpdate`): a delete of an object with finalizers only marks it; removing
//! the last finalizer completes the delete; bound pods terminate gracefully.

use crate::apiserver::support as apiserver_support;

use std::time::Duration;

use apiserver_support::{configmap, eventually, pod, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;
use serde_json::json;
use svcplane_tests::Fixture;

#[tokio::test]
async fn delete_with_finalizers_sets_deletion_timestamp_and_keeps_the_object() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut cm = configmap("held", json!({}));
    cm.metadata.finalizers = Some(vec!["svcplane.io/a".into(), "svcplane.io/b".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let result = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = result
        .left()
        .expect("the object is returned while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));

    // Deleting again changes nothing.
    let again = cms
        .delete("held", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        again.metadata.deletion_timestamp,
        marked.metadata.deletion_timestamp
    );

    // Removing one finalizer keeps it; removing the last one deletes it.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "remove", "path": "/metadata/finalizers/0"}]))
                .unwrap(),
        ),
    )
    .await
    .unwrap();
    let still = cms.get("held").await.unwrap();
    assert_eq!(still.finalizers(), ["svcplane.io/b"]);

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "last finalizer removed: gone"
    );
}

#[tokio::test]
async fn clients_cannot_set_deletion_timestamp_on_create() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "x", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/b"]}
    }))
    .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn finalizer_removal_emits_modified_then_deleted_to_watchers() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut cm = configmap("w", json!({}));
    cm.metadata.finalizers = Some(vec!["svcplane.io/a".into()]);
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut stream = cms
        .watch(
            &WatchParams::default(),
            &created.resource_version().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Modified(o) => {
                assert!(o.metadata.deletion_timestamp.is_some());
                kinds.push("MODIFIED");
            }
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ["MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn bound_pods_terminate_gracefully_and_unbound_pods_go_at_once() {
    let fx = Fixture::start().await;
    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    pods.create(&PostParams::default(), &pod("unbound", None))
        .await
        .unwrap();
    pods.delete("unbound", &DeleteParams::default())
        .await
        .unwrap();
    assert!(pods.get_opt("unbound").await.unwrap().is_none());

    let mut bound = pod("bound", Some("node-a"));
    bound
        .spec
        .as_mut()
        .unwrap()
        .termination_grace_period_seconds = Some(1);
    pods.create(&PostParams::default(), &bound).await.unwrap();
    pods.delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = pods.get("bound").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(1));
    eventually(
        "graceful pod deletion completes",
        Duration::from_secs(10),
        || async { pods.get_opt("bound").await.unwrap().is_none().then_some(()) },
    )
    .await;

    // gracePeriodSeconds=0 deletes a bound pod at once.
    pods.create(&PostParams::default(), &pod("forced", Some("node-a")))
        .await
        .unwrap();
    pods.delete(
        "forced",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(pods.get_opt("forced").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_of_a_missing_object_is_404() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(cms.delete("missing", &DeleteParams::default()).await);
    assert_eq!(st.code, 404);
    assert_eq!(st.message, r#"configmaps "missing" not found"#);
}

#[tokio::test]
async fn new_finalizers_cannot_be_added_to_an_object_being_deleted() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut cm = configmap("closing", json!({}));
    cm.metadata.finalizers = Some(vec!["svcplane.io/a".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.delete("closing", &DeleteParams::default())
        .await
        .unwrap();
    let st = status(
        cms.patch(
            "closing",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["svcplane.io/a", "svcplane.io/new"]}}),
            ),
        )
        .await,
    );
    assert_eq!(st.code, 422, "{}", st.message);
    assert!(
        st.message
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        st.message
    );
}
