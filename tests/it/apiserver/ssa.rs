//! Server-side apply (upstream `fieldmanager`): apply creates missing objects, records the
//! manager's fields as an `Apply` entry in `managedFields`, removes fields the manager stops
//! applying, reports conflicts with other managers as 409 with `FieldManagerConflict` causes,
//! and `force` takes ownership.

use crate::apiserver::support as apiserver_support;

use apiserver_support::{raw, status};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use svcplane_tests::Fixture;

fn cm(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data})
}

#[tokio::test]
async fn apply_creates_then_updates_and_records_managed_fields() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let created = cms
        .patch(
            "ssa",
            &PatchParams::apply("alice"),
            &Patch::Apply(cm(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["a"], "1");
    let entry = created
        .managed_fields()
        .iter()
        .find(|m| m.manager.as_deref() == Some("alice"))
        .expect("alice's managedFields entry")
        .clone();
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(entry.fields_v1.unwrap()).unwrap();
    assert!(
        fields["f:data"]["f:a"].is_object() && fields["f:data"]["f:b"].is_object(),
        "{fields}"
    );

    // Re-applying without `b` removes it (alice owned it alone).
    let updated = cms
        .patch(
            "ssa",
            &PatchParams::apply("alice"),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .unwrap();
    let data = updated.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("1"));
    assert!(
        !data.contains_key("b"),
        "a field the manager stopped applying is removed"
    );
}

#[tokio::test]
async fn a_second_manager_changing_an_owned_field_conflicts_until_forced() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.patch(
        "ssa",
        &PatchParams::apply("alice"),
        &Patch::Apply(cm(json!({"shared": "alice"}))),
    )
    .await
    .unwrap();
    let st = status(
        cms.patch(
            "ssa",
            &PatchParams::apply("bob"),
            &Patch::Apply(cm(json!({"shared": "bob"}))),
        )
        .await,
    );
    assert_eq!(st.code, 409);
    assert_eq!(st.reason, "Conflict");
    assert!(st.message.contains("alice"), "{}", st.message);
    let details = st.details.unwrap();
    assert_eq!(details.kind, "configmaps");
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].reason, "FieldManagerConflict");
    assert_eq!(details.causes[0].field, ".data.shared");
    assert_eq!(
        cms.get("ssa").await.unwrap().data.unwrap()["shared"],
        "alice"
    );

    // Applying the same value is shared ownership, not a conflict.
    cms.patch(
        "ssa",
        &PatchParams::apply("carol"),
        &Patch::Apply(cm(json!({"shared": "alice"}))),
    )
    .await
    .unwrap();

    let forced = cms
        .patch(
            "ssa",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(cm(json!({"shared": "bob"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["shared"], "bob");
    let owners: Vec<String> = forced
        .managed_fields()
        .iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| serde_json::to_value(f).unwrap()["f:data"]["f:shared"].is_object())
        })
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(owners, ["bob"], "force moves ownership");
}

#[tokio::test]
async fn apply_without_field_manager_is_400() {
    let fx = Fixture::start().await;
    let r = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/ssa",
        Some("application/apply-patch+yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("fieldManager"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn apply_yaml_body_and_update_manager_coexist() {
    let fx = Fixture::start().await;
    let r = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/yaml?fieldManager=yaml-tool",
        Some("application/apply-patch+yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yaml\ndata:\n  a: one\n",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    // An imperative update by someone else adds a field; the applier keeps its own.
    let mut current = cms.get("yaml").await.unwrap();
    current
        .data
        .as_mut()
        .unwrap()
        .insert("b".into(), "two".into());
    cms.replace(
        "yaml",
        &PostParams {
            field_manager: Some("editor".into()),
            ..Default::default()
        },
        &current,
    )
    .await
    .unwrap();
    let after = cms
        .patch("yaml", &PatchParams::apply("yaml-tool"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "yaml"}, "data": {"a": "uno"}})))
        .await
        .unwrap();
    let data = after.data.clone().unwrap();
    assert_eq!(data["a"], "uno");
    assert_eq!(data["b"], "two", "fields of other managers are kept");
    let managers: Vec<(String, String)> = after
        .managed_fields()
        .iter()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert!(
        managers.contains(&("yaml-tool".into(), "Apply".into())),
        "{managers:?}"
    );
    assert!(
        managers.contains(&("editor".into(), "Update".into())),
        "{managers:?}"
    );
}

#[tokio::test]
async fn apply_of_a_service_merges_ports_by_port_and_protocol() {
    let fx = Fixture::start().await;
    let svcs: Api<Service> = Api::default_namespaced(fx.client.clone());
    let svc = |ports: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": ports}})
    };
    let created = svcs
        .patch(
            "web",
            &PatchParams::apply("a"),
            &Patch::Apply(svc(json!([{"name": "http", "port": 80}]))),
        )
        .await
        .unwrap();
    assert!(
        created.spec.as_ref().unwrap().cluster_ip.is_some(),
        "defaulting and allocation ran"
    );
    svcs.patch(
        "web",
        &PatchParams::apply("b"),
        &Patch::Apply(svc(json!([{"name": "https", "port": 443}]))),
    )
    .await
    .unwrap();
    let merged = svcs.get("web").await.unwrap();
    let mut ports: Vec<i32> = merged
        .spec
        .as_ref()
        .unwrap()
        .ports
        .clone()
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    ports.sort();
    assert_eq!(ports, [80, 443], "each manager owns its own list entry");
    assert_eq!(
        merged.spec.unwrap().cluster_ip,
        created.spec.unwrap().cluster_ip,
        "the allocated clusterIP is kept across applies that do not mention it"
    );
}

#[tokio::test]
async fn dry_run_apply_changes_nothing() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let preview = cms
        .patch(
            "ssa",
            &PatchParams::apply("alice").dry_run(),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(preview.data.unwrap()["a"], "1");
    assert!(
        cms.get_opt("ssa").await.unwrap().is_none(),
        "dry run persisted nothing"
    );
}
