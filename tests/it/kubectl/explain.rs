//! `kubectl explain` against the embedded API server: kubectl 1.32 reads the OpenAPI v3
//! per-group-version document, finds the kind through the operations'
//! `x-kubernetes-group-version-kind`, then the component schema carrying the same GVK
//! (upstream `kubectl/pkg/explain/v2` templates), and walks `$ref`/`allOf` to the field.
//! Also checks the document itself over HTTP like any client, and measures its size and the
//! cost of serving it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use svcplane_tests::{Fixture, Kubectl};

/// `kubectl explain ARGS`, required to succeed; returns stdout.
async fn explain(k: &Kubectl, args: &[&str]) -> String {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    k.ok(&all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_service_field_prints_description_and_type() {
    let k = Kubectl::start("kubectl_explain_service_field_prints_description_and_type").await;
    let out = explain(&k, &["service.spec.ipFamilyPolicy"]).await;
    assert!(out.contains("KIND:       Service"), "{out}");
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(out.contains("FIELD: ipFamilyPolicy <string>"), "{out}");
    assert!(
        out.contains("IPFamilyPolicy represents the dual-stack-ness requested or required by"),
        "upstream description printed:\n{out}"
    );
    assert!(
        out.contains("ENUM:\n    PreferDualStack\n    RequireDualStack\n    SingleStack\n"),
        "upstream enum printed:\n{out}"
    );

    // A nested object field is typed by its schema's name, reached through `allOf`/`$ref`.
    let out = explain(&k, &["svc.spec.ports"]).await;
    assert!(out.contains("FIELD: ports <[]ServicePort>"), "{out}");
    assert!(out.contains("targetPort\t<IntOrString>"), "{out}");

    // Unknown fields are reported like upstream's template does.
    let (ok, _, stderr) = k.run(&["explain", "service.spec.nope"]).await;
    assert!(!ok);
    assert!(
        stderr.contains(r#"field "nope" does not exist"#),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_pods_lists_fields() {
    let k = Kubectl::start("kubectl_explain_pods_lists_fields").await;
    let out = explain(&k, &["pods"]).await;
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(
        out.contains("DESCRIPTION:\n    Pod is a collection of containers"),
        "{out}"
    );
    assert!(out.contains("FIELDS:\n"), "{out}");
    for field in [
        "apiVersion\t<string>",
        "kind\t<string>",
        "metadata\t<ObjectMeta>",
        "spec\t<PodSpec>",
        "status\t<PodStatus>",
    ] {
        assert!(out.contains(field), "{field} listed:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_endpointslice_conditions_in_discovery_group() {
    let k = Kubectl::start("kubectl_explain_endpointslice_conditions_in_discovery_group").await;
    let out = explain(&k, &["endpointslices.endpoints.conditions"]).await;
    assert!(out.contains("GROUP:      discovery.k8s.io"), "{out}");
    assert!(out.contains("KIND:       EndpointSlice"), "{out}");
    assert!(
        out.contains("FIELD: conditions <EndpointConditions>"),
        "{out}"
    );
    for field in [
        "ready\t<boolean>",
        "serving\t<boolean>",
        "terminating\t<boolean>",
    ] {
        assert!(out.contains(field), "{field} listed:\n{out}");
    }
}

/// `GET` a path of a plain-HTTP fixture: (JSON body, body size, time to the full body).
async fn get_json(fx: &Fixture, path: &str) -> (Value, usize, Duration) {
    let started = Instant::now();
    let resp = reqwest::get(format!("{}{path}", fx.url))
        .await
        .expect("GET succeeds");
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    let text = resp.text().await.expect("body");
    let elapsed = started.elapsed();
    (
        serde_json::from_str(&text).expect("JSON document"),
        text.len(),
        elapsed,
    )
}

#[tokio::test]
async fn openapi_v3_core_document_holds_service_schema_with_gvk() {
    let fx = Fixture::start().await;
    // The first index request generates (and caches) every group-version's document.
    let (index, _, index_first) = get_json(&fx, "/openapi/v3").await;
    let (_, _, index_second) = get_json(&fx, "/openapi/v3").await;
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("api/v1 listed")
        .to_string();
    assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");

    let (doc, size, first) = get_json(&fx, &url).await;
    let schemas = &doc["components"]["schemas"];
    let svc = &schemas["io.k8s.api.core.v1.Service"];
    assert_eq!(
        svc["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Service", "version": "v1"}])
    );
    assert_eq!(
        svc["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ipFamilyPolicy"]["type"],
        "string"
    );
    // The fieldValidation parameter kubectl looks for is still declared, and PATCH still
    // declares no request body (kubectl apply keeps its built-in strategic merge patch).
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"];
    assert!(patch["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .any(|p| p["name"] == "fieldValidation"));
    assert!(patch.get("requestBody").is_none());

    let (_, _, second) = get_json(&fx, &url).await;
    let (disc, disc_size, _) = get_json(&fx, "/openapi/v3/apis/discovery.k8s.io/v1").await;
    assert!(
        disc["components"]["schemas"]["io.k8s.api.discovery.v1.EndpointSlice"]
            ["x-kubernetes-group-version-kind"]
            .is_array()
    );
    eprintln!(
        "openapi v3 index: first GET {index_first:?} (generation included unless another test \
         in this process generated first), second GET {index_second:?}; api/v1: {size} bytes, {} schemas, first GET {first:?}, second GET {second:?}; \
         apis/discovery.k8s.io/v1: {disc_size} bytes",
        schemas.as_object().map_or(0, |m| m.len())
    );
}

#[tokio::test]
async fn openapi_index_lists_a_crd_group_version_and_keeps_unchanged_hashes() {
    let fx = Fixture::start().await;
    let (before, _, _) = get_json(&fx, "/openapi/v3").await;
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(fx.client.clone());
    let crd = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {"cronSpec": {"type": "string"}}}}
            }}}]
        }
    }))
    .expect("CRD");
    crds.create(&Default::default(), &crd)
        .await
        .expect("CRD created");
    let after = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (after, _, _) = get_json(&fx, "/openapi/v3").await;
            if after["paths"]["apis/stable.example.com/v1"].is_object() {
                return after;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("CRD group-version listed");
    assert_eq!(
        before["paths"]["api/v1"], after["paths"]["api/v1"],
        "unchanged documents keep their hash"
    );
    let url = after["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_string();
    let (doc, _, _) = get_json(&fx, &url).await;
    assert!(
        doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"]["post"]
            ["x-kubernetes-group-version-kind"]
            .is_object()
    );
}

/// The CRD half of the document comes from the stored CustomResourceDefinition. The HTTP
/// handler still calls the registry-only `openapi_document`, so this checks the state-aware
/// entry point the handler is meant to call (`discovery::openapi_document_for`) in-process.
#[tokio::test]
async fn crd_document_for_state_carries_the_stored_openapi_v3_schema() {
    let fx = Fixture::start().await;
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(fx.client.clone());
    let crd = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.shop.example.com"},
        "spec": {
            "group": "shop.example.com",
            "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "description": "A widget for sale.",
                "properties": {"spec": {"type": "object", "properties": {
                    "price": {"type": "integer", "description": "Price in cents."}}}}
            }}}]
        }
    }))
    .expect("CRD");
    crds.create(&Default::default(), &crd)
        .await
        .expect("CRD created");
    let inspect = fx.server.inspect();
    let doc = inspect
        .openapi_document("apis/shop.example.com/v1")
        .expect("CRD group-version served");
    let widget = &doc["components"]["schemas"]["com.example.shop.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "shop.example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(widget["description"], "A widget for sale.");
    assert_eq!(
        widget["properties"]["spec"]["properties"]["price"]["type"],
        "integer"
    );
    let index = inspect.openapi_index();
    assert_ne!(
        index["paths"]["apis/shop.example.com/v1"],
        inspect.openapi_index_without_schemas()["paths"]["apis/shop.example.com/v1"],
        "the schema is part of the hashed content"
    );
}

/// Custom resources are explained from their CRD's `openAPIV3Schema`, as upstream publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_custom_resource_uses_the_crd_schema() {
    let k = Kubectl::start("kubectl_explain_custom_resource_uses_the_crd_schema").await;
    let crd = k.home.path().join("crd.yaml");
    std::fs::write(
        &crd,
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A schedule that runs an image.
        properties:
          spec:
            type: object
            properties:
              cronSpec:
                type: string
                description: The cron expression, e.g. "*/5 * * * *".
              replicas:
                type: integer
"#,
    )
    .unwrap();
    let (ok, _, stderr) = k.run(&["apply", "-f", crd.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    let out = explain(&k, &["crontabs.spec.cronSpec"]).await;
    assert!(out.contains("GROUP:      stable.example.com"), "{out}");
    assert!(out.contains("KIND:       CronTab"), "{out}");
    assert!(out.contains("FIELD: cronSpec <string>"), "{out}");
    assert!(out.contains("The cron expression"), "{out}");
}
