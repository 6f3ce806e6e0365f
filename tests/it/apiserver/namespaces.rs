//! Namespace lifecycle as the namespace controller drives it: a deleted namespace turns
//! `Terminating`, refuses new content (403), has its objects removed, then disappears.

use crate::apiserver::support as apiserver_support;

use std::time::Duration;

use apiserver_support::{configmap, create_namespace, eventually, pod, status};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use svcplane_tests::Fixture;

#[tokio::test]
async fn bootstrap_namespaces_exist_and_carry_the_name_label() {
    let fx = Fixture::start().await;
    let nss: Api<Namespace> = Api::all(fx.client.clone());
    for name in ["default", "kube-system", "kube-public"] {
        let ns = nss
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ns.labels()["kubernetes.io/metadata.name"], name);
        assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    }
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_objects_and_then_itself() {
    let fx = Fixture::start().await;
    create_namespace(&fx, "doomed").await;
    create_namespace(&fx, "kept").await;
    let cms: Api<ConfigMap> = Api::namespaced(fx.client.clone(), "doomed");
    let kept: Api<ConfigMap> = Api::namespaced(fx.client.clone(), "kept");
    let pods: Api<Pod> = Api::namespaced(fx.client.clone(), "doomed");
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("c{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    kept.create(&PostParams::default(), &configmap("survivor", json!({})))
        .await
        .unwrap();
    // A bound pod (graceful deletion) and an object with a finalizer that its owner releases.
    pods.create(&PostParams::default(), &pod("bound", Some("node-a")))
        .await
        .unwrap();

    let nss: Api<Namespace> = Api::all(fx.client.clone());
    let ns = nss
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the terminating namespace is returned");
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));

    eventually("namespace removed", Duration::from_secs(15), || async {
        nss.get_opt("doomed").await.unwrap().is_none().then_some(())
    })
    .await;
    let all: Api<ConfigMap> = Api::all(fx.client.clone());
    let left: Vec<String> = all
        .list(&ListParams::default().fields("metadata.namespace=doomed"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(Api::<Pod>::all(fx.client.clone())
        .list(&ListParams::default().fields("metadata.namespace=doomed"))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(
        kept.get_opt("survivor").await.unwrap().is_some(),
        "other namespaces untouched"
    );
}

#[tokio::test]
async fn a_terminating_namespace_refuses_new_objects_with_403() {
    let fx = Fixture::start().await;
    create_namespace(&fx, "closing").await;
    let cms: Api<ConfigMap> = Api::namespaced(fx.client.clone(), "closing");
    // A finalizer keeps the namespace terminating until we release it.
    let mut held = configmap("held", json!({}));
    held.metadata.finalizers = Some(vec!["svcplane.io/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    let nss: Api<Namespace> = Api::all(fx.client.clone());
    nss.delete("closing", &DeleteParams::default())
        .await
        .unwrap();

    let st = status(
        cms.create(&PostParams::default(), &configmap("late", json!({})))
            .await,
    );
    assert_eq!(st.code, 403, "{}", st.message);
    assert_eq!(st.reason, "Forbidden");
    assert_eq!(
        st.message,
        r#"configmaps "late" is forbidden: unable to create new content in namespace closing because it is being terminated"#
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        nss.get_opt("closing").await.unwrap().is_some(),
        "held by the finalizer"
    );
    let mut release = cms.get("held").await.unwrap();
    release.metadata.finalizers = None;
    cms.replace("held", &PostParams::default(), &release)
        .await
        .unwrap();
    eventually("namespace removed", Duration::from_secs(15), || async {
        nss.get_opt("closing")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}
