//! Custom resources against their structural schema, as kube-apiserver's
//! apiextensions-apiserver treats them: undeclared fields are pruned and reported per
//! `fieldValidation`, defaults applied, and the `openAPIV3Schema` enforced with a 422 naming
//! each field (the wording of kube-openapi's validator as `kubeOpenAPIResultToFieldErrors`
//! turns it into field errors). The bare embedded server runs no svcplane webhook, so the
//! schema is what answers here.

use crate::apiserver::support as apiserver_support;

use std::time::Duration;

use apiserver_support::{eventually, get_json, raw, Raw};
use serde_json::{json, Value};
use svcplane_tests::{install_pool_crd, Fixture};

const JSON: &str = "application/json";
const POOLS: &str = "/apis/svcplane.io/v1alpha1/loadbalancerippools";
const WIDGETS: &str = "/apis/test.svcplane.io/v1/namespaces/default/widgets";

/// The `Warning` headers' texts.
fn warnings(r: &Raw) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("299 - \"")?.strip_suffix('"'))
        .map(|v| v.replace("\\\"", "\""))
        .collect()
}

fn pool(name: &str, spec: Value) -> String {
    json!({"apiVersion": "svcplane.io/v1alpha1", "kind": "LoadBalancerIPPool",
           "metadata": {"name": name}, "spec": spec})
    .to_string()
}

fn causes(r: &Raw) -> Vec<(String, String)> {
    r.body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn pool_unknown_fields_follow_field_validation_and_are_pruned() {
    let fx = Fixture::start().await;
    install_pool_crd(&fx.client).await;
    let spec = json!({"blocks": [{"cidr": "192.0.2.0/28", "weight": 3}], "foo": "bar"});

    let r = raw(
        &fx,
        "POST",
        &format!("{POOLS}?fieldValidation=Strict"),
        Some(JSON),
        pool("strict", spec.clone()),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["reason"], "BadRequest");
    // Pruned paths come sorted, as upstream's `PruneWithOptions` sorts them.
    assert_eq!(
        r.body["message"],
        "LoadBalancerIPPool in version \"v1alpha1\" cannot be handled as a LoadBalancerIPPool: \
         strict decoding error: unknown field \"spec.blocks[0].weight\", unknown field \"spec.foo\""
    );
    assert_eq!(get_json(&fx, &format!("{POOLS}/strict")).await.status, 404);

    let r = raw(
        &fx,
        "POST",
        &format!("{POOLS}?fieldValidation=Warn"),
        Some(JSON),
        pool("warn", spec.clone()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        warnings(&r),
        [
            "unknown field \"spec.blocks[0].weight\"",
            "unknown field \"spec.foo\""
        ]
    );
    let stored = get_json(&fx, &format!("{POOLS}/warn")).await.body;
    assert!(stored["spec"].get("foo").is_none(), "{stored}");
    assert!(
        stored["spec"]["blocks"][0].get("weight").is_none(),
        "{stored}"
    );
    // The schema's defaults were applied.
    assert_eq!(stored["spec"]["disabled"], false, "{stored}");
    assert_eq!(stored["spec"]["avoidBuggyIPs"], false, "{stored}");

    // Sorted, not in document order; a repeated key of the body comes first, as upstream's
    // decoder reports its duplicates before the pruned paths.
    let r = raw(
        &fx,
        "POST",
        &format!("{POOLS}?fieldValidation=Strict"),
        Some(JSON),
        r#"{"apiVersion": "svcplane.io/v1alpha1", "kind": "LoadBalancerIPPool",
            "metadata": {"name": "order"},
            "spec": {"zzz": 1, "blocks": [], "aaa": 2, "disabled": true, "disabled": false}}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "LoadBalancerIPPool in version \"v1alpha1\" cannot be handled as a LoadBalancerIPPool: \
         strict decoding error: duplicate field \"spec.disabled\", unknown field \"spec.aaa\", \
         unknown field \"spec.zzz\""
    );

    let r = raw(
        &fx,
        "POST",
        &format!("{POOLS}?fieldValidation=Ignore"),
        Some(JSON),
        pool("ignore", spec.clone()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(warnings(&r).is_empty());
    assert!(r.body["spec"].get("foo").is_none(), "{}", r.body);

    // A merge patch's unknown fields: the strict error has no kind prefix (upstream's patch
    // handler returns the decoder's error as it is).
    let r = raw(
        &fx,
        "PATCH",
        &format!("{POOLS}/warn?fieldValidation=Strict"),
        Some("application/merge-patch+json"),
        json!({"spec": {"extra": 1}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "strict decoding error: unknown field \"spec.extra\""
    );
    let r = raw(
        &fx,
        "PATCH",
        &format!("{POOLS}/warn"),
        Some("application/merge-patch+json"),
        json!({"spec": {"extra": 1}, "status": {"bogus": 2}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The whole patched object is decoded (status included, though the write then keeps the
    // stored status), as upstream's patcher decodes it.
    assert_eq!(
        warnings(&r),
        [
            "unknown field \"spec.extra\"",
            "unknown field \"status.bogus\""
        ]
    );
    assert!(r.body["spec"].get("extra").is_none(), "{}", r.body);
    fx.server.shutdown().await;
}

#[tokio::test]
async fn invalid_pools_are_422_naming_each_field() {
    let fx = Fixture::start().await;
    install_pool_crd(&fx.client).await;
    let r = raw(
        &fx,
        "POST",
        POOLS,
        Some(JSON),
        pool("bad", json!({"disabled": "string"})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(r.body["details"]["kind"], "LoadBalancerIPPool");
    assert_eq!(r.body["details"]["group"], "svcplane.io");
    assert_eq!(
        r.body["message"],
        "LoadBalancerIPPool.svcplane.io \"bad\" is invalid: [spec.disabled: Invalid value: \
         \"string\": spec.disabled in body must be of type boolean: \"string\", \
         spec.blocks: Required value]"
    );
    assert_eq!(
        causes(&r),
        [
            (
                "spec.disabled".to_string(),
                "Invalid value: \"string\": spec.disabled in body must be of type boolean: \"string\""
                    .to_string()
            ),
            ("spec.blocks".to_string(), "Required value".to_string()),
        ]
    );
    assert_eq!(
        r.body["details"]["causes"][0]["reason"],
        "FieldValueTypeInvalid"
    );
    assert_eq!(
        r.body["details"]["causes"][1]["reason"],
        "FieldValueRequired"
    );

    // A status write is validated against the schema too.
    let created = raw(
        &fx,
        "POST",
        POOLS,
        Some(JSON),
        pool("good", json!({"blocks": [{"cidr": "192.0.2.0/28"}]})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let r = raw(
        &fx,
        "PATCH",
        &format!("{POOLS}/good/status"),
        Some("application/merge-patch+json"),
        json!({"status": {"conditions": [{"type": "Valid"}]}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let fields: Vec<String> = causes(&r).into_iter().map(|(f, _)| f).collect();
    assert!(
        fields.contains(&"status.conditions[0].status".to_string()),
        "{fields:?}"
    );
    fx.server.shutdown().await;
}

/// A CRD of this test's own exercising the rules one by one.
fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.svcplane.io"},
        "spec": {
            "group": "test.svcplane.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["mode"], "properties": {
                        "mode": {"type": "string", "enum": ["fast", "slow"]},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                                 "maxItems": 3, "items": {"type": "string"}},
                        "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                    "status": {"type": "object", "properties": {
                        "ready": {"type": "boolean"}}}}}}
            }]
        }
    })
}

async fn install_widgets(fx: &Fixture) {
    let r = raw(
        fx,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(JSON),
        widget_crd().to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    eventually("widgets are served", Duration::from_secs(10), || async {
        (get_json(fx, WIDGETS).await.status == 200).then_some(())
    })
    .await;
}

fn widget(name: &str, spec: Value) -> String {
    json!({"apiVersion": "test.svcplane.io/v1", "kind": "Widget",
           "metadata": {"name": name}, "spec": spec})
    .to_string()
}

async fn create_widget(fx: &Fixture, name: &str, spec: Value) -> Raw {
    raw(fx, "POST", WIDGETS, Some(JSON), widget(name, spec)).await
}

#[tokio::test]
async fn a_crds_schema_rules_are_enforced_with_upstreams_messages() {
    let fx = Fixture::start().await;
    install_widgets(&fx).await;
    for (spec, field, message) in [
        (
            json!({}),
            "spec.mode",
            "Required value",
        ),
        (
            json!({"mode": "medium"}),
            "spec.mode",
            "Unsupported value: \"medium\": supported values: \"fast\", \"slow\"",
        ),
        (
            json!({"mode": "fast", "name": "ab1"}),
            "spec.name",
            "Invalid value: \"ab1\": spec.name in body should match '^[a-z]+$'",
        ),
        (
            json!({"mode": "fast", "name": "abcdef"}),
            "spec.name",
            "Too long: may not be more than 5 bytes",
        ),
        (
            json!({"mode": "fast", "replicas": 11}),
            "spec.replicas",
            "Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        ),
        (
            json!({"mode": "fast", "replicas": 0}),
            "spec.replicas",
            "Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        ),
        (
            json!({"mode": "fast", "port": true}),
            "spec.port",
            "Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
        ),
        (
            json!({"mode": "fast", "tags": ["a", "b", "c", "d"]}),
            "spec.tags",
            "Too many: 4: must have at most 3 items",
        ),
        (
            json!({"mode": "fast", "tags": ["a", "a"]}),
            "spec.tags[1]",
            "Duplicate value: \"a\"",
        ),
        (
            json!({"mode": "fast", "labels": {"k": 1}}),
            "spec.labels.k",
            "Invalid value: \"integer\": spec.labels.k in body must be of type string: \"integer\"",
        ),
    ] {
        let r = create_widget(&fx, "w", spec.clone()).await;
        assert_eq!(r.status, 422, "{spec}: {}", r.body);
        assert_eq!(
            causes(&r),
            [(field.to_string(), message.to_string())],
            "{spec}"
        );
        assert_eq!(
            r.body["message"],
            format!("Widget.test.svcplane.io \"w\" is invalid: {field}: {message}"),
            "{spec}"
        );
    }

    // Accepted: int-or-string either way, preserved free-form config, a default, pruning
    // next to preserved fields.
    let r = create_widget(
        &fx,
        "ok",
        json!({"mode": "slow", "port": "http", "config": {"any": {"thing": [1]}},
               "labels": {"a": "b"}, "tags": ["x", "y"], "junk": 1}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(warnings(&r), ["unknown field \"spec.junk\""]);
    assert_eq!(
        r.body["spec"],
        json!({"mode": "slow", "port": "http", "config": {"any": {"thing": [1]}},
               "labels": {"a": "b"}, "tags": ["x", "y"], "replicas": 1})
    );
    let r = create_widget(&fx, "num", json!({"mode": "fast", "port": 8080})).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Status writes: pruned and validated; spec changes are ignored there.
    let r = raw(
        &fx,
        "PATCH",
        &format!("{WIDGETS}/ok/status"),
        Some("application/merge-patch+json"),
        json!({"status": {"ready": "yes"}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        causes(&r),
        [(
            "status.ready".to_string(),
            "Invalid value: \"string\": status.ready in body must be of type boolean: \"string\""
                .to_string()
        )]
    );
    let r = raw(
        &fx,
        "PATCH",
        &format!("{WIDGETS}/ok/status"),
        Some("application/merge-patch+json"),
        json!({"status": {"ready": true, "other": 1}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], json!({"ready": true}));
    fx.server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_of_a_custom_resource_stores_it_pruned_and_defaulted() {
    let fx = Fixture::start().await;
    install_widgets(&fx).await;
    let r = raw(
        &fx,
        "PATCH",
        &format!("{WIDGETS}/applied?fieldManager=test"),
        Some("application/apply-patch+yaml"),
        widget("applied", json!({"mode": "fast", "junk": 1})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["spec"], json!({"mode": "fast", "replicas": 1}));
    let r = raw(
        &fx,
        "PATCH",
        &format!("{WIDGETS}/applied?fieldManager=test"),
        Some("application/apply-patch+yaml"),
        widget("applied", json!({"mode": "bogus"})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    fx.server.shutdown().await;
}
