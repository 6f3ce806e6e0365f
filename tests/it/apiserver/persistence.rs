//! `--state-file` persistence (objects survive a restart, a corrupt file is a clear error, never
//! silently discarded) and HTTPS mode with the CA generated at start.

use crate::apiserver::support as apiserver_support;

use std::time::Duration;

use apiserver_support::{configmap, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, ListParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use svcplane_apiserver::Config;
use svcplane_tests::Fixture;

fn with_state(path: &std::path::Path) -> Config {
    Config {
        state_file: Some(path.to_path_buf()),
        ..Config::default()
    }
}

#[tokio::test]
async fn objects_survive_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let (uid, rv, svc_ip) = {
        let fx = Fixture::start_with(with_state(&path)).await;
        let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
        let created = cms
            .create(
                &PostParams::default(),
                &configmap("kept", json!({"a": "b"})),
            )
            .await
            .unwrap();
        let nss: Api<Namespace> = Api::all(fx.client.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
        let svcs: Api<Service> = Api::namespaced(fx.client.clone(), "team");
        let svc = svcs
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})).unwrap(),
            )
            .await
            .unwrap();
        let last_rv: u64 = svc.resource_version().unwrap().parse().unwrap();
        fx.server.shutdown().await;
        (
            created.uid().unwrap(),
            last_rv,
            svc.spec.unwrap().cluster_ip,
        )
    };
    assert!(path.exists());

    let fx = Fixture::start_with(with_state(&path)).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let kept = cms.get("kept").await.unwrap();
    assert_eq!(kept.uid().unwrap(), uid);
    assert_eq!(kept.labels()["a"], "b");
    let svc = Api::<Service>::namespaced(fx.client.clone(), "team")
        .get("web")
        .await
        .unwrap();
    assert_eq!(
        svc.spec.unwrap().cluster_ip,
        svc_ip,
        "allocated fields persist"
    );

    // Revisions continue after the restored ones.
    let next = cms
        .create(&PostParams::default(), &configmap("next", json!({})))
        .await
        .unwrap();
    let next_rv: u64 = next.resource_version().unwrap().parse().unwrap();
    assert!(next_rv > rv, "{next_rv} > {rv}");

    // Writes after the restart reach the file too (periodic snapshots).
    eventually(
        "snapshot includes the new object",
        Duration::from_secs(5),
        || async {
            std::fs::read_to_string(&path)
                .ok()
                .filter(|t| t.contains("\"next\""))
                .map(|_| ())
        },
    )
    .await;
    fx.server.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_state_file_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(
        &path,
        "{\"format\": 1, \"resourceVersion\": 5, \"objects\": [tru",
    )
    .unwrap();
    let err = match svcplane_apiserver::start(with_state(&path)).await {
        Ok(_) => panic!("a corrupt state file must not be silently accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("state.json"), "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    // The file is left for the user to inspect.
    assert!(std::fs::read_to_string(&path).unwrap().ends_with("[tru"));

    std::fs::write(
        &path,
        json!({"format": 99, "resourceVersion": 1, "objects": []}).to_string(),
    )
    .unwrap();
    let err = svcplane_apiserver::start(with_state(&path))
        .await
        .err()
        .expect("unsupported format")
        .to_string();
    assert!(err.contains("unsupported format"), "{err}");
}

#[tokio::test]
async fn a_missing_state_file_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let fx = Fixture::start_with(with_state(&dir.path().join("sub/none.json"))).await;
    let cms: Api<ConfigMap> = Api::all(fx.client.clone());
    assert!(cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn https_mode_serves_with_the_generated_ca() {
    let fx = Fixture::start_tls().await;
    assert!(fx.url.starts_with("https://"), "{}", fx.url);
    let ca = fx.server.ca_pem.clone().expect("a CA in TLS mode");
    assert!(ca.contains("BEGIN CERTIFICATE"));
    // kube-rs with the kubeconfig's CA.
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(&PostParams::default(), &configmap("tls", json!({})))
        .await
        .unwrap();
    assert_eq!(cms.get("tls").await.unwrap().name_any(), "tls");
    // A plain client trusting only that CA.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/healthz", fx.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A client that trusts nothing extra is refused.
    let untrusted = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(untrusted
        .get(format!("{}/healthz", fx.url))
        .send()
        .await
        .is_err());
}
