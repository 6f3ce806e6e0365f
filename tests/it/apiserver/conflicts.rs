//! 409 responses as a real kube-apiserver sends them (FACTS.md "Status responses"):
//! AlreadyExists on create of a taken name and Conflict on a stale `resourceVersion`, both with
//! `details.kind` = the resource (not the Kind); preconditions on delete.

use crate::apiserver::support as apiserver_support;

use apiserver_support::{configmap, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::ResourceExt;
use serde_json::json;
use svcplane_tests::Fixture;

#[tokio::test]
async fn create_of_existing_name_is_409_already_exists_with_resource_in_details() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(&PostParams::default(), &configmap("one", json!({})))
        .await
        .unwrap();
    let st = status(
        cms.create(&PostParams::default(), &configmap("one", json!({})))
            .await,
    );
    assert_eq!(st.code, 409);
    assert_eq!(st.reason, "AlreadyExists");
    assert_eq!(st.message, r#"configmaps "one" already exists"#);
    let details = st.details.expect("details");
    assert_eq!(details.kind, "configmaps", "details.kind is the resource");
    assert_eq!(details.name, "one");
}

#[tokio::test]
async fn already_exists_names_the_group_qualified_resource() {
    let fx = Fixture::start().await;
    let api = apiserver_support::dynamic(
        &fx,
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        Some("default"),
    );
    let lease: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l"}, "spec": {}
    }))
    .unwrap();
    api.create(&PostParams::default(), &lease).await.unwrap();
    let st = status(api.create(&PostParams::default(), &lease).await);
    assert_eq!(st.code, 409);
    assert_eq!(
        st.message,
        r#"leases.coordination.k8s.io "l" already exists"#
    );
    let details = st.details.unwrap();
    assert_eq!(details.kind, "leases");
    assert_eq!(details.group, "coordination.k8s.io");
}

#[tokio::test]
async fn update_with_stale_resource_version_is_409_conflict_with_upstream_message() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let first = cms
        .create(&PostParams::default(), &configmap("one", json!({})))
        .await
        .unwrap();
    // Someone else writes in between.
    let mut other = first.clone();
    other.data = Some([("k".to_string(), "other".to_string())].into());
    cms.replace("one", &PostParams::default(), &other)
        .await
        .unwrap();

    let mut stale = first.clone();
    stale.data = Some([("k".to_string(), "mine".to_string())].into());
    let st = status(cms.replace("one", &PostParams::default(), &stale).await);
    assert_eq!(st.code, 409);
    assert_eq!(st.reason, "Conflict");
    assert_eq!(
        st.message,
        r#"Operation cannot be fulfilled on configmaps "one": the object has been modified; please apply your changes to the latest version and try again"#
    );
    assert_eq!(st.details.unwrap().kind, "configmaps");
    // The losing write changed nothing.
    assert_eq!(cms.get("one").await.unwrap().data.unwrap()["k"], "other");
}

#[tokio::test]
async fn patch_carrying_a_stale_resource_version_is_a_conflict() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let first = cms
        .create(&PostParams::default(), &configmap("one", json!({})))
        .await
        .unwrap();
    cms.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    let st = status(
        cms.patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": first.resource_version()}, "data": {"k": "3"}})),
        )
        .await,
    );
    assert_eq!(st.code, 409);
    assert_eq!(st.reason, "Conflict");
    assert_eq!(cms.get("one").await.unwrap().data.unwrap()["k"], "2");
}

#[tokio::test]
async fn update_without_resource_version_is_unconditional() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(&PostParams::default(), &configmap("one", json!({})))
        .await
        .unwrap();
    let mut blind = configmap("one", json!({}));
    blind.data = Some([("k".to_string(), "blind".to_string())].into());
    let updated = cms
        .replace("one", &PostParams::default(), &blind)
        .await
        .unwrap();
    assert_eq!(updated.data.unwrap()["k"], "blind");
}

#[tokio::test]
async fn delete_preconditions_on_uid_and_resource_version_are_conflicts() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let created = cms
        .create(&PostParams::default(), &configmap("one", json!({})))
        .await
        .unwrap();
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let st = status(cms.delete("one", &wrong_uid).await);
    assert_eq!(st.code, 409);
    assert!(
        st.message
            .contains("Precondition failed: UID in precondition"),
        "{}",
        st.message
    );

    let wrong_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..Default::default()
    };
    let st = status(cms.delete("one", &wrong_rv).await);
    assert_eq!(st.code, 409);
    assert!(
        st.message.contains("ResourceVersion in precondition"),
        "{}",
        st.message
    );

    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.uid(),
            resource_version: created.resource_version(),
        }),
        ..Default::default()
    };
    cms.delete("one", &right).await.unwrap();
    assert!(cms.get_opt("one").await.unwrap().is_none());
}

#[tokio::test]
async fn concurrent_updates_from_one_version_let_exactly_one_win() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let base = cms
        .create(&PostParams::default(), &configmap("race", json!({})))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let cms = cms.clone();
        let mut mine = base.clone();
        mine.data = Some([("k".to_string(), format!("writer-{i}"))].into());
        tasks.push(tokio::spawn(async move {
            cms.replace("race", &PostParams::default(), &mine).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(kube::Error::Api(st)) => assert_eq!(st.code, 409),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wins, 1, "optimistic concurrency admits exactly one writer");
}
