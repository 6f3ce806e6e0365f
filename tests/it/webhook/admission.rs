//! The validating admission webhook end to end: our webhook server over real TLS, registered in
//! the embedded API server through a `ValidatingWebhookConfiguration`, called by the server on
//! writes like kube-apiserver does (rules, namespace/object selectors, caBundle, failurePolicy),
//! with denials and warnings reaching kube-rs clients and `kubectl`.

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};
use serde_json::json;
use svcplane_tests::Fixture;

/// A running webhook server and the PEM CA that signed its certificate.
struct Webhook {
    url: String,
    ca_bundle: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_webhook() -> Webhook {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs =
        svcplane_webhook::generate_certs(dir.path(), &["localhost".into(), "127.0.0.1".into()])
            .expect("certificates");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tls = svcplane_webhook::TlsFiles {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        reload_interval: std::time::Duration::from_secs(10),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = svcplane_webhook::ServeOptions::new().expect("options");
    tokio::spawn(async move {
        let _ = svcplane_webhook::serve(listener, tls, options, async {
            let _ = stopped.await;
        })
        .await;
    });
    let ca = std::fs::read(&certs.ca_cert).expect("ca");
    Webhook {
        url: format!("https://{addr}/validate"),
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca),
        _dir: dir,
        _stop: stop,
    }
}

fn webhook_entry(
    name: &str,
    url: &str,
    ca_bundle: &str,
    resources: &[&str],
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut w = json!({
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 5,
        "clientConfig": {"url": url, "caBundle": ca_bundle},
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": resources}],
    });
    if let (Some(w), Some(extra)) = (w.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            w.insert(k.clone(), v.clone());
        }
    }
    w
}

async fn register(f: &Fixture, name: &str, webhooks: Vec<serde_json::Value>) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(f.client.clone());
    let cfg: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": webhooks,
    }))
    .expect("configuration");
    api.create(&PostParams::default(), &cfg)
        .await
        .expect("register webhook");
}

async fn namespace(f: &Fixture, name: &str, labels: serde_json::Value) {
    let api: Api<Namespace> = Api::all(f.client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("ns");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).expect("cm")
}

/// POSTs a Service with plain HTTP so the `Warning` headers can be read.
async fn post_service(
    f: &Fixture,
    ns: &str,
    body: serde_json::Value,
) -> (u16, Vec<String>, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/namespaces/{ns}/services", f.url))
        .json(&body)
        .send()
        .await
        .expect("post");
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let body = resp.json().await.unwrap_or_default();
    (code, warnings, body)
}

fn lb_service(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "loadBalancerIP": "not-an-ip", "selector": {"app": "x"}, "ports": [{"port": 80}]},
    })
}

#[tokio::test]
async fn webhook_warnings_reach_the_client_next_to_built_in_ones() {
    let f = Fixture::start().await;
    let wh = start_webhook().await;
    register(
        &f,
        "svc",
        vec![webhook_entry(
            "services.test",
            &wh.url,
            &wh.ca_bundle,
            &["services"],
            json!({}),
        )],
    )
    .await;
    let (code, warnings, _) = post_service(&f, "default", lb_service("lb")).await;
    assert_eq!(code, 201);
    let about_ip: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains("spec.loadBalancerIP"))
        .collect();
    // One from built-in validation, one from the webhook: the webhook was called and its
    // AdmissionResponse warnings were passed through.
    assert_eq!(about_ip.len(), 2, "warnings: {warnings:?}");
}

#[tokio::test]
async fn webhook_denial_is_returned_with_the_webhook_name() {
    let f = Fixture::start().await;
    let wh = start_webhook().await;
    // Our webhook refuses kinds it does not validate, so a ConfigMap rule proves denials travel.
    register(
        &f,
        "cm",
        vec![webhook_entry(
            "configmaps.test",
            &wh.url,
            &wh.ca_bundle,
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    let err = api
        .create(&PostParams::default(), &configmap("c1"))
        .await
        .expect_err("denied");
    let kube::Error::Api(status) = err else {
        panic!("expected a Status, got {err:?}")
    };
    assert!(
        status
            .message
            .starts_with("admission webhook \"configmaps.test\" denied the request"),
        "{}",
        status.message
    );
    assert!(
        api.get_opt("c1").await.expect("get").is_none(),
        "denied object must not be stored"
    );
}

#[tokio::test]
async fn unreachable_webhook_fails_closed_or_is_ignored_by_failure_policy() {
    let f = Fixture::start().await;
    let dead = "https://127.0.0.1:9/validate";
    register(
        &f,
        "fail",
        vec![webhook_entry(
            "fail.test",
            dead,
            "",
            &["configmaps"],
            json!({"namespaceSelector": {"matchLabels": {"policy": "fail"}}}),
        )],
    )
    .await;
    register(&f, "ignore", vec![webhook_entry("ignore.test", dead, "", &["configmaps"], json!({"failurePolicy": "Ignore", "namespaceSelector": {"matchLabels": {"policy": "ignore"}}}))]).await;
    namespace(&f, "closed", json!({"policy": "fail"})).await;
    namespace(&f, "open", json!({"policy": "ignore"})).await;

    let closed: Api<ConfigMap> = Api::namespaced(f.client.clone(), "closed");
    let err = closed
        .create(&PostParams::default(), &configmap("c"))
        .await
        .expect_err("fail closed");
    let kube::Error::Api(status) = err else {
        panic!("expected a Status")
    };
    assert_eq!(status.code, 500);
    assert!(
        status
            .message
            .contains("failed calling webhook \"fail.test\""),
        "{}",
        status.message
    );

    let open: Api<ConfigMap> = Api::namespaced(f.client.clone(), "open");
    open.create(&PostParams::default(), &configmap("c"))
        .await
        .expect("Ignore lets the write through");
}

#[tokio::test]
async fn namespace_and_object_selectors_limit_which_writes_are_sent() {
    let f = Fixture::start().await;
    let dead = "https://127.0.0.1:9/validate";
    register(
        &f,
        "sel",
        vec![webhook_entry(
            "sel.test",
            dead,
            "",
            &["configmaps"],
            json!({
                "namespaceSelector": {"matchLabels": {"team": "a"}},
                "objectSelector": {"matchExpressions": [{"key": "checked", "operator": "Exists"}]},
            }),
        )],
    )
    .await;
    namespace(&f, "team-a", json!({"team": "a"})).await;
    namespace(&f, "team-b", json!({"team": "b"})).await;

    // Other namespace: not sent, so the dead webhook does not matter.
    let b: Api<ConfigMap> = Api::namespaced(f.client.clone(), "team-b");
    let mut labelled = configmap("labelled");
    labelled.metadata.labels = Some([("checked".to_string(), "yes".to_string())].into());
    b.create(&PostParams::default(), &labelled)
        .await
        .expect("namespace not selected");

    // Selected namespace, object without the label: not sent.
    let a: Api<ConfigMap> = Api::namespaced(f.client.clone(), "team-a");
    a.create(&PostParams::default(), &configmap("plain"))
        .await
        .expect("object not selected");

    // Selected namespace and object: sent, and the dead webhook fails it.
    let err = a
        .create(&PostParams::default(), &labelled)
        .await
        .expect_err("selected");
    assert!(err.to_string().contains("failed calling webhook"), "{err}");
}

#[tokio::test]
async fn wrong_ca_bundle_is_a_tls_failure() {
    let f = Fixture::start().await;
    let wh = start_webhook().await;
    let other = start_webhook().await; // a different CA
    register(
        &f,
        "ca",
        vec![webhook_entry(
            "ca.test",
            &wh.url,
            &other.ca_bundle,
            &["configmaps"],
            json!({}),
        )],
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(f.client.clone(), "default");
    let err = api
        .create(&PostParams::default(), &configmap("c"))
        .await
        .expect_err("untrusted certificate");
    assert!(
        err.to_string()
            .contains("failed calling webhook \"ca.test\""),
        "{err}"
    );
}

// Multi-threaded: kubectl runs as a blocking child process while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_webhook_warnings_and_denials() {
    svcplane_tests::require_kubectl("kubectl_shows_webhook_warnings_and_denials");
    let f = Fixture::start_tls().await;
    let wh = start_webhook().await;
    register(
        &f,
        "svc",
        vec![
            webhook_entry(
                "services.test",
                &wh.url,
                &wh.ca_bundle,
                &["services"],
                json!({}),
            ),
            webhook_entry(
                "configmaps.test",
                &wh.url,
                &wh.ca_bundle,
                &["configmaps"],
                json!({}),
            ),
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let manifest = dir.path().join("svc.yaml");
    std::fs::write(
        &manifest,
        serde_yaml::to_string(&lb_service("lb")).expect("yaml"),
    )
    .expect("write");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(f.kubeconfig_path())
        .args(["apply", "-f"])
        .arg(&manifest)
        .output()
        .expect("kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl apply failed: {stderr}");
    assert!(
        stderr.contains("Warning: spec.loadBalancerIP"),
        "stderr: {stderr}"
    );

    let cm = dir.path().join("cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
    )
    .expect("write");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(f.kubeconfig_path())
        .args(["apply", "-f"])
        .arg(&cm)
        .output()
        .expect("kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("admission webhook \"configmaps.test\" denied the request"),
        "stderr: {stderr}"
    );
}
