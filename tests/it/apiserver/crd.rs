//! CustomResourceDefinitions: creating a CRD (generated with kube's `CustomResource` derive and
//! `schemars`) makes its resource served: discovery lists it, instances support CRUD, watch and
//! the status subresource; deleting the CRD stops serving it.

use crate::apiserver::support as apiserver_support;

use std::time::Duration;

use apiserver_support::{eventually, get_json, status};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use svcplane_tests::Fixture;

/// A small test type.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq)]
#[kube(
    group = "test.svcplane.io",
    version = "v1",
    kind = "Gadget",
    namespaced,
    status = "GadgetStatus",
    shortname = "gd"
)]
pub struct GadgetSpec {
    /// Size.
    pub size: u32,
    /// Colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
}

/// Status of a Gadget.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
pub struct GadgetStatus {
    /// Whether it is ready.
    pub ready: bool,
}

async fn install(fx: &Fixture) {
    let crds: Api<CustomResourceDefinition> = Api::all(fx.client.clone());
    let created = crds
        .create(&PostParams::default(), &Gadget::crd())
        .await
        .unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True"),
        "{conditions:?}"
    );
}

#[tokio::test]
async fn a_created_crd_is_discoverable_and_its_instances_support_crud() {
    let fx = Fixture::start().await;
    install(&fx).await;

    let group = get_json(&fx, "/apis/test.svcplane.io/v1").await;
    assert_eq!(group.status, 200, "{}", group.body);
    let resources = group.body["resources"].as_array().unwrap();
    assert!(
        resources
            .iter()
            .any(|r| r["name"] == "gadgets" && r["kind"] == "Gadget" && r["namespaced"] == true),
        "{resources:?}"
    );
    assert!(
        resources.iter().any(|r| r["name"] == "gadgets/status"),
        "{resources:?}"
    );
    let apis = get_json(&fx, "/apis").await;
    assert!(apis.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "test.svcplane.io"));

    // kube-rs discovery agrees.
    let discovery = kube::Discovery::new(fx.client.clone()).run().await.unwrap();
    assert!(discovery.groups().any(|g| g.name() == "test.svcplane.io"));

    let gadgets: Api<Gadget> = Api::default_namespaced(fx.client.clone());
    let created = gadgets
        .create(
            &PostParams::default(),
            &Gadget::new(
                "g1",
                GadgetSpec {
                    size: 3,
                    colour: None,
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(gadgets.get("g1").await.unwrap().spec.size, 3);

    let patched = gadgets
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"colour": "red"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.colour.as_deref(), Some("red"));
    assert_eq!(
        patched.metadata.generation,
        Some(2),
        "custom resources track generation"
    );

    let with_status = gadgets
        .patch_status(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.status, Some(GadgetStatus { ready: true }));
    assert_eq!(with_status.metadata.generation, Some(2));
    let main_ignores_status = gadgets
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": false}})),
        )
        .await
        .unwrap();
    assert_eq!(
        main_ignores_status.status,
        Some(GadgetStatus { ready: true })
    );

    let applied = gadgets
        .patch(
            "g2",
            &PatchParams::apply("tester"),
            &Patch::Apply(json!({"apiVersion": "test.svcplane.io/v1", "kind": "Gadget", "metadata": {"name": "g2"}, "spec": {"size": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.size, 7);

    let names: Vec<String> = gadgets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|g| g.name_any())
        .collect();
    assert_eq!(names, ["g1", "g2"]);

    let st = status(
        gadgets
            .create(
                &PostParams::default(),
                &Gadget::new(
                    "g1",
                    GadgetSpec {
                        size: 1,
                        colour: None,
                    },
                ),
            )
            .await,
    );
    assert_eq!(st.code, 409);
    assert_eq!(
        st.message,
        r#"gadgets.test.svcplane.io "g1" already exists"#
    );

    let st = status(
        gadgets
            .patch(
                "g1",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 1}})),
            )
            .await,
    );
    assert_eq!(
        st.code, 415,
        "strategic merge patch is not supported for custom resources: {}",
        st.message
    );

    gadgets
        .delete("g1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(gadgets.get_opt("g1").await.unwrap().is_none());
}

#[tokio::test]
async fn deleting_the_crd_stops_serving_its_resource() {
    let fx = Fixture::start().await;
    install(&fx).await;
    let gadgets: Api<Gadget> = Api::default_namespaced(fx.client.clone());
    gadgets
        .create(
            &PostParams::default(),
            &Gadget::new(
                "g",
                GadgetSpec {
                    size: 1,
                    colour: None,
                },
            ),
        )
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(fx.client.clone());
    crds.delete(Gadget::crd_name(), &DeleteParams::default())
        .await
        .unwrap();
    eventually("CRD resource unserved", Duration::from_secs(10), || async {
        let r = get_json(&fx, "/apis/test.svcplane.io/v1/namespaces/default/gadgets").await;
        (r.status == 404).then_some(())
    })
    .await;
}

#[tokio::test]
async fn crd_instances_are_validated_for_names_and_kind() {
    let fx = Fixture::start().await;
    install(&fx).await;
    let gadgets: Api<Gadget> = Api::default_namespaced(fx.client.clone());
    let st = status(
        gadgets
            .create(
                &PostParams::default(),
                &Gadget::new(
                    "Bad_Name",
                    GadgetSpec {
                        size: 1,
                        colour: None,
                    },
                ),
            )
            .await,
    );
    assert_eq!(st.code, 422);
    assert_eq!(st.details.unwrap().kind, "Gadget");
}
