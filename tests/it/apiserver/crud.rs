//! CRUD on every served resource kind over real HTTP with kube-rs, plus the metadata the server
//! owns: `uid`, `creationTimestamp`, one global increasing `resourceVersion`, `generation`
//! (bumped on spec changes only, upstream `PrepareForUpdate`) and `generateName`
//! (upstream `SimpleNameGenerator`: prefix plus 5 random lowercase alphanumerics).

use crate::apiserver::support as apiserver_support;

use std::time::Duration;

use apiserver_support::{dynamic, eventually, status};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use svcplane_tests::Fixture;

/// One row per served resource: group, version, kind, plural, namespaced, sample body.
fn served_kinds() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    Value,
)> {
    vec![
        ("", "v1", "Namespace", "namespaces", false, json!({})),
        (
            "",
            "v1",
            "Service",
            "services",
            true,
            json!({"spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        ),
        (
            "",
            "v1",
            "Pod",
            "pods",
            true,
            json!({"spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
        ),
        ("", "v1", "Node", "nodes", false, json!({"spec": {}})),
        (
            "",
            "v1",
            "Endpoints",
            "endpoints",
            true,
            json!({"subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]}),
        ),
        (
            "",
            "v1",
            "Event",
            "events",
            true,
            json!({"involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Test", "message": "hello"}),
        ),
        (
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            json!({"data": {"a": "b"}}),
        ),
        (
            "",
            "v1",
            "Secret",
            "secrets",
            true,
            json!({"stringData": {"a": "b"}, "type": "Opaque"}),
        ),
        (
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"]}], "ports": [{"port": 80}]}),
        ),
        (
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            json!({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
        ),
        (
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            json!({"eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "svcplane.io/test", "reportingInstance": "t-1", "action": "Test", "reason": "Test", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}}),
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            json!({"webhooks": []}),
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            json!({"spec": {"group": "crud.svcplane.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
        ),
    ]
}

#[tokio::test]
async fn every_served_kind_supports_create_get_list_update_patch_delete() {
    let fx = Fixture::start().await;
    for (group, version, kind, plural, namespaced, sample) in served_kinds() {
        let ns = namespaced.then_some("default");
        let api = dynamic(&fx, group, version, kind, plural, ns);
        let name = if plural == "customresourcedefinitions" {
            "widgets.crud.svcplane.io".to_string()
        } else {
            format!("crud-{}", kind.to_lowercase())
        };
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let mut body = sample.clone();
        body["apiVersion"] = json!(api_version);
        body["kind"] = json!(kind);
        body["metadata"] = json!({"name": name, "labels": {"suite": "crud"}});
        let obj: DynamicObject = serde_json::from_value(body).unwrap();

        let created = api
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {plural}: {e}"));
        assert_eq!(created.name_any(), name, "{plural}");
        assert!(created.uid().is_some_and(|u| !u.is_empty()), "{plural} uid");
        assert!(
            created.metadata.creation_timestamp.is_some(),
            "{plural} creationTimestamp"
        );
        let rv1: u64 = created.resource_version().unwrap().parse().unwrap();

        let got = api
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("get {plural}: {e}"));
        assert_eq!(got.uid(), created.uid(), "{plural}");

        let listed = api
            .list(&ListParams::default().labels("suite=crud"))
            .await
            .unwrap_or_else(|e| panic!("list {plural}: {e}"));
        assert!(
            listed.items.iter().any(|o| o.name_any() == name),
            "{plural} list contains the object"
        );

        let mut changed = got.clone();
        changed.labels_mut().insert("updated".into(), "yes".into());
        let replaced = api
            .replace(&name, &PostParams::default(), &changed)
            .await
            .unwrap_or_else(|e| panic!("update {plural}: {e}"));
        let rv2: u64 = replaced.resource_version().unwrap().parse().unwrap();
        assert!(rv2 > rv1, "{plural}: resourceVersion increases on update");
        assert_eq!(replaced.labels()["updated"], "yes", "{plural}");

        let patched = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"patched": "true"}}})),
            )
            .await
            .unwrap_or_else(|e| panic!("patch {plural}: {e}"));
        assert_eq!(patched.annotations()["patched"], "true", "{plural}");
        assert_eq!(
            patched.labels()["updated"],
            "yes",
            "{plural}: patch keeps labels"
        );

        api.delete(&name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {plural}: {e}"));
        // Namespaces finish deleting asynchronously (namespace controller).
        eventually(
            &format!("{plural}/{name} gone"),
            Duration::from_secs(10),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    match api.get_opt(&name).await {
                        Ok(None) => Some(()),
                        _ => None,
                    }
                }
            },
        )
        .await;
        let st = status(api.get(&name).await);
        assert_eq!(st.code, 404, "{plural}");
    }
}

#[tokio::test]
async fn resource_versions_are_global_and_strictly_increasing() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    let mut last = 0u64;
    for i in 0..5 {
        let cm = cms
            .create(
                &PostParams::default(),
                &apiserver_support::configmap(&format!("rv-{i}"), json!({})),
            )
            .await
            .unwrap();
        let p = pods
            .create(
                &PostParams::default(),
                &apiserver_support::pod(&format!("rv-{i}"), None),
            )
            .await
            .unwrap();
        for rv in [
            cm.resource_version().unwrap(),
            p.resource_version().unwrap(),
        ] {
            let rv: u64 = rv.parse().unwrap();
            assert!(rv > last, "{rv} after {last}");
            last = rv;
        }
    }
    let list = cms.list(&ListParams::default()).await.unwrap();
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(
        list_rv >= last,
        "a list is consistent at the newest revision"
    );
}

#[tokio::test]
async fn generate_name_appends_five_lowercase_alphanumerics() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut names = std::collections::HashSet::new();
    for _ in 0..20 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
        let created = cms.create(&PostParams::default(), &cm).await.unwrap();
        let name = created.name_any();
        let suffix = name.strip_prefix("gen-").expect("prefix kept");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{name}"
        );
        assert_eq!(created.metadata.generate_name.as_deref(), Some("gen-"));
        names.insert(name);
    }
    assert_eq!(names.len(), 20, "generated names are distinct");
}

/// Upstream `SetDefaults_Secret`: a Secret created without `type` is `Opaque`; an explicit
/// type is kept.
#[tokio::test]
async fn secret_type_defaults_to_opaque() {
    let fx = Fixture::start().await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::default_namespaced(fx.client.clone());
    let plain =
        serde_json::from_value(json!({"metadata": {"name": "plain"}, "stringData": {"a": "b"}}))
            .unwrap();
    let created = secrets
        .create(&PostParams::default(), &plain)
        .await
        .unwrap();
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    let typed = serde_json::from_value(
        json!({"metadata": {"name": "typed"}, "type": "example.com/custom"}),
    )
    .unwrap();
    let created = secrets
        .create(&PostParams::default(), &typed)
        .await
        .unwrap();
    assert_eq!(created.type_.as_deref(), Some("example.com/custom"));
}

#[tokio::test]
async fn generation_bumps_on_spec_changes_only() {
    let fx = Fixture::start().await;
    let svcs: Api<Service> = Api::default_namespaced(fx.client.clone());
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "gen"},
        "spec": {"clusterIP": "None", "selector": {"app": "a"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    let created = svcs.create(&PostParams::default(), &svc).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // Metadata change: no bump.
    let labelled = svcs
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1), "labels are not spec");

    // Status change through /status: no bump.
    let st = svcs
        .patch_status(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(st.metadata.generation, Some(1), "status is not spec");

    // Spec change: bump.
    let spec = svcs
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"app": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));

    // Same spec again: no bump.
    let same = svcs
        .patch(
            "gen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"app": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(same.metadata.generation, Some(2));
}

#[tokio::test]
async fn server_owned_metadata_cannot_be_overwritten_by_clients() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let mut cm = apiserver_support::configmap("owned", json!({}));
    cm.metadata.uid = Some("client-chosen".into());
    cm.metadata.creation_timestamp = None;
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert_ne!(
        created.uid().as_deref(),
        Some("client-chosen"),
        "uid is assigned by the server"
    );

    let mut changed = created.clone();
    changed.metadata.uid = Some("another".into());
    let updated = cms
        .replace("owned", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(updated.uid(), created.uid(), "uid is immutable on update");
    assert_eq!(
        updated.metadata.creation_timestamp, created.metadata.creation_timestamp,
        "creationTimestamp is kept"
    );
}

#[tokio::test]
async fn deletecollection_deletes_only_the_selected_objects() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        cms.create(
            &PostParams::default(),
            &apiserver_support::configmap(name, json!({"tier": tier})),
        )
        .await
        .unwrap();
    }
    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier=web"),
        )
        .await
        .unwrap()
        .left()
        .expect("the deleted objects are returned");
    let mut names: Vec<String> = deleted.items.iter().map(|o| o.name_any()).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn watch_object_follows_one_object_through_its_lifecycle() {
    use futures::StreamExt;
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(
        &PostParams::default(),
        &apiserver_support::configmap("other", json!({})),
    )
    .await
    .unwrap();
    let mut stream = kube::runtime::watcher::watch_object(cms.clone(), "one").boxed();
    async fn next(
        stream: &mut futures::stream::BoxStream<
            'static,
            Result<Option<ConfigMap>, kube::runtime::watcher::Error>,
        >,
    ) -> Option<ConfigMap> {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("no watch error")
    }
    let first: Option<ConfigMap> = next(&mut stream).await;
    assert!(first.is_none(), "not there yet");
    cms.create(
        &PostParams::default(),
        &apiserver_support::configmap("one", json!({})),
    )
    .await
    .unwrap();
    let created: Option<ConfigMap> = next(&mut stream).await;
    assert_eq!(created.unwrap().name_any(), "one");
    cms.delete("one", &DeleteParams::default()).await.unwrap();
    let gone: Option<ConfigMap> = next(&mut stream).await;
    assert!(gone.is_none());
}

#[tokio::test]
async fn delete_answers_with_a_status_or_the_object_as_upstream_stores_do() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let cm = cms
        .create(
            &PostParams::default(),
            &apiserver_support::configmap("gone", json!({})),
        )
        .await
        .unwrap();
    let st = cms
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("configmaps answer with a Status (generic store default)");
    assert!(st.is_success());
    let details = st.details.unwrap();
    assert_eq!(details.kind, "configmaps");
    assert_eq!(details.name, "gone");
    assert_eq!(Some(details.uid), cm.uid());

    // Pods use `ReturnDeletedObject`.
    let pods: Api<Pod> = Api::default_namespaced(fx.client.clone());
    pods.create(&PostParams::default(), &apiserver_support::pod("p", None))
        .await
        .unwrap();
    let deleted = pods
        .delete("p", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("pods answer with the deleted object");
    assert_eq!(deleted.name_any(), "p");
}
