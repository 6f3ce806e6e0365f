//! Garbage collection as kube-controller-manager's garbage collector does it: deleting an owner
//! deletes its dependents (background propagation by default), `Foreground` keeps the owner
//! (with the `foregroundDeletion` finalizer) until its dependents are gone, and `Orphan` removes
//! the owner references instead of deleting.

use crate::apiserver::support as apiserver_support;

use std::time::Duration;

use apiserver_support::{configmap, eventually, pod};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::ResourceExt;
use serde_json::json;
use svcplane_tests::Fixture;

const WAIT: Duration = Duration::from_secs(10);

fn owner_ref(owner: &ConfigMap, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.name_any(),
        uid: owner.uid().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

async fn setup(fx: &Fixture) -> (Api<ConfigMap>, Api<Pod>, ConfigMap) {
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    let owner = cms
        .create(&PostParams::default(), &configmap("owner", json!({})))
        .await
        .unwrap();
    for i in 0..3 {
        let mut dep = configmap(&format!("dep-{i}"), json!({}));
        dep.metadata.owner_references = Some(vec![owner_ref(&owner, true)]);
        cms.create(&PostParams::default(), &dep).await.unwrap();
    }
    let mut p = pod("dep-pod", None);
    p.metadata.owner_references = Some(vec![owner_ref(&owner, true)]);
    pods.create(&PostParams::default(), &p).await.unwrap();
    (cms, pods, owner)
}

async fn gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} deleted"), WAIT, || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await
}

#[tokio::test]
async fn deleting_an_owner_deletes_dependents_in_the_background_by_default() {
    let fx = Fixture::start().await;
    let (cms, pods, _owner) = setup(&fx).await;
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    assert!(
        cms.get_opt("owner").await.unwrap().is_none(),
        "owner goes at once"
    );
    for i in 0..3 {
        gone(&cms, &format!("dep-{i}")).await;
    }
    gone(&pods, "dep-pod").await;
}

#[tokio::test]
async fn foreground_deletion_removes_dependents_before_the_owner() {
    let fx = Fixture::start().await;
    let (cms, pods, _owner) = setup(&fx).await;
    // A dependent with its own finalizer holds the owner in foreground deletion.
    let mut held = cms.get("dep-0").await.unwrap();
    held.metadata.finalizers = Some(vec!["svcplane.io/hold".into()]);
    cms.replace("dep-0", &PostParams::default(), &held)
        .await
        .unwrap();

    cms.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    let owner = cms.get("owner").await.unwrap();
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert!(
        owner.finalizers().iter().any(|f| f == "foregroundDeletion"),
        "{:?}",
        owner.finalizers()
    );

    gone(&cms, "dep-1").await;
    gone(&cms, "dep-2").await;
    gone(&pods, "dep-pod").await;
    // dep-0 is terminating but held: the owner must still exist.
    let dep0 = cms.get("dep-0").await.unwrap();
    assert!(dep0.metadata.deletion_timestamp.is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        cms.get_opt("owner").await.unwrap().is_some(),
        "owner waits for its dependents"
    );

    let mut release = cms.get("dep-0").await.unwrap();
    release.metadata.finalizers = None;
    cms.replace("dep-0", &PostParams::default(), &release)
        .await
        .unwrap();
    gone(&cms, "dep-0").await;
    gone(&cms, "owner").await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_removes_their_owner_references() {
    let fx = Fixture::start().await;
    let (cms, pods, owner) = setup(&fx).await;
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    cms.delete("owner", &orphan).await.unwrap();
    gone(&cms, "owner").await;
    for i in 0..3 {
        let dep = cms.get(&format!("dep-{i}")).await.unwrap();
        assert!(
            dep.owner_references()
                .iter()
                .all(|r| r.uid != owner.uid().unwrap()),
            "dep-{i}: {:?}",
            dep.owner_references()
        );
    }
    let p = pods.get("dep-pod").await.unwrap();
    assert!(p.owner_references().is_empty());
    // And they stay.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        cms.get_opt("dep-1")
            .await
            .unwrap()
            .map(|c| c.name_any())
            .as_deref(),
        Some("dep-1")
    );
}

#[tokio::test]
async fn a_dependent_with_a_remaining_owner_survives_and_loses_the_dangling_reference() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let a = cms
        .create(&PostParams::default(), &configmap("owner-a", json!({})))
        .await
        .unwrap();
    let b = cms
        .create(&PostParams::default(), &configmap("owner-b", json!({})))
        .await
        .unwrap();
    let mut dep = configmap("shared", json!({}));
    let mut ra = owner_ref(&a, false);
    ra.controller = Some(false);
    let mut rb = owner_ref(&b, false);
    rb.controller = Some(false);
    dep.metadata.owner_references = Some(vec![ra, rb]);
    cms.create(&PostParams::default(), &dep).await.unwrap();

    cms.delete("owner-a", &DeleteParams::default())
        .await
        .unwrap();
    let remaining = eventually("dangling owner reference removed", WAIT, || async {
        let d = cms.get("shared").await.unwrap();
        (d.owner_references().len() == 1).then(|| d.owner_references()[0].uid.clone())
    })
    .await;
    assert_eq!(Some(remaining), b.uid());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(cms.get_opt("shared").await.unwrap().is_some());
}

#[tokio::test]
async fn dependents_created_with_an_already_missing_owner_are_collected() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut dep = configmap("stray", json!({}));
    dep.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "never-existed".into(),
        uid: "11111111-2222-3333-4444-555555555555".into(),
        ..Default::default()
    }]);
    cms.create(&PostParams::default(), &dep).await.unwrap();
    gone(&cms, "stray").await;
}
