//! `/metrics` in Prometheus text format with kube-apiserver's metric names: request counters by
//! verb, resource and code (tests and benchmarks count API writes with them), including
//! non-resource paths, which upstream labels with the path as `subresource`.

use crate::apiserver::support as apiserver_support;

use apiserver_support::{configmap, get_json};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use svcplane_tests::{request_counts, Fixture};

#[tokio::test]
async fn the_first_scrape_of_a_fresh_server_shows_apiserver_request_total() {
    let fx = Fixture::start().await;
    let r = get_json(&fx, "/metrics").await;
    assert_eq!(r.status, 200);
    let text = r.body.as_str().expect("text format");
    let samples = request_counts(text);
    assert!(
        samples.iter().any(|(l, v)| l["subresource"] == "/metrics"
            && l["verb"] == "GET"
            && l["code"] == "200"
            && *v == 1),
        "{text}"
    );
    assert!(
        text.contains("# TYPE apiserver_request_total counter"),
        "{text}"
    );
}

#[tokio::test]
async fn requests_are_counted_by_verb_resource_and_code() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(&PostParams::default(), &configmap("m", json!({})))
        .await
        .unwrap();
    let _ = cms
        .create(&PostParams::default(), &configmap("m", json!({})))
        .await;
    cms.get("m").await.unwrap();
    assert_eq!(fx.request_count("POST", "configmaps"), 2);
    assert_eq!(fx.request_count("GET", "configmaps"), 1);
    assert_eq!(fx.write_count("configmaps"), 2);
    let samples = request_counts(&fx.server.metrics_text());
    let conflicts: u64 = samples
        .iter()
        .filter(|(l, _)| l["resource"] == "configmaps" && l["code"] == "409")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(conflicts, 1);

    get_json(&fx, "/healthz").await;
    get_json(&fx, "/apis/discovery.k8s.io/v1").await;
    let samples = request_counts(&fx.server.metrics_text());
    for path in ["/healthz", "/apis/discovery.k8s.io/v1"] {
        assert!(
            samples
                .iter()
                .any(|(l, _)| l["subresource"] == path && l["resource"].is_empty()),
            "{path} counted"
        );
    }
    assert!(fx
        .server
        .metrics_text()
        .contains("apiserver_request_duration_seconds"));
}
