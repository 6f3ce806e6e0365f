//! The webhook over real TLS on loopback: allow, deny, warnings, bad input, body limit,
//! metrics, and certificate reload without restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use svcplane_webhook::{generate_certs, serve, ServeOptions, TlsFiles};
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(dir: &Path, reload: Duration) -> Server {
    generate_certs(dir, &["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let tls = TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        reload_interval: reload,
    };
    let mut options = ServeOptions::new().unwrap();
    options.request_timeout = Duration::from_secs(2);
    tokio::spawn(async move {
        serve(listener, tls, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server { addr, _stop: tx }
}

fn client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn review(uid: &str, op: &str, obj: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Service"},
            "resource": {"group": "", "version": "v1", "resource": "services"},
            "operation": op, "namespace": "default", "object": obj}})
}

fn service(port: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"port": port}], "selector": {"app": "web"}}})
}

#[tokio::test]
async fn webhook_allows_denies_and_warns_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Duration::from_secs(60)).await;
    let c = client(&std::fs::read(dir.path().join("ca.crt")).unwrap());
    let url = format!("https://localhost:{}/validate", srv.addr.port());

    let ok: Value = c
        .post(&url)
        .json(&review("u-allow", "CREATE", service(80)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["response"]["uid"], "u-allow");
    assert_eq!(ok["response"]["allowed"], true);

    let denied: Value = c
        .post(&url)
        .json(&review("u-deny", "CREATE", service(70000)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(denied["response"]["uid"], "u-deny");
    assert_eq!(denied["response"]["allowed"], false);
    assert_eq!(denied["response"]["status"]["code"], 422);
    assert_eq!(
        denied["response"]["status"]["message"],
        "Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive]"
    );

    let mut lb = service(80);
    lb["spec"]["type"] = json!("LoadBalancer");
    lb["spec"]["loadBalancerIP"] = json!("not-an-ip");
    let warned: Value = c
        .post(&url)
        .json(&review("u-warn", "CREATE", lb))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(warned["response"]["allowed"], true);
    assert_eq!(
        warned["response"]["warnings"][0],
        "spec.loadBalancerIP: IP address was accepted, but will be invalid in a future Kubernetes release"
    );

    let health = c
        .get(format!("https://localhost:{}/healthz", srv.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The generated certificate carries 127.0.0.1 as an IP SAN (embedded dev mode dials it).
    let by_ip = c
        .get(format!("https://127.0.0.1:{}/healthz", srv.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_ip.status(), 200);
    let ready = c
        .get(format!("https://localhost:{}/readyz", srv.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = c
        .get(format!("https://localhost:{}/metrics", srv.addr.port()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"svcplane_webhook_requests_total{allowed="false",kind="Service",operation="CREATE"} 1"#), "{metrics}");
    assert!(
        metrics.contains(
            r#"svcplane_webhook_requests_total{allowed="true",kind="Service",operation="CREATE"} 2"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("svcplane_webhook_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_and_never_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Duration::from_secs(60)).await;
    let c = client(&std::fs::read(dir.path().join("ca.crt")).unwrap());
    let url = format!("https://localhost:{}/validate", srv.addr.port());

    let r = c
        .post(&url)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );

    let r = c
        .post(&url)
        .json(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let mut no_uid = review("", "CREATE", service(80));
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let r = c.post(&url).json(&no_uid).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("uid"), "{body}");

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let r: Value = c
        .post(&url)
        .json(&review("u-cm", "CREATE", cm))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["response"]["uid"], "u-cm");
    assert_eq!(r["response"]["allowed"], false);

    let mut wrong_type = service(80);
    wrong_type["spec"]["ports"][0]["port"] = json!("eighty");
    let r: Value = c
        .post(&url)
        .json(&review("u-type", "CREATE", wrong_type))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["response"]["allowed"], false);
    assert!(
        r["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.ports[0].port"),
        "{r}"
    );

    let big = vec![b' '; svcplane_webhook::server::MAX_BODY_BYTES + 10];
    let r = c
        .post(&url)
        .body(big)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // A client that opens a connection and sends nothing must not wedge the server.
    let _idle = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let ok: Value = c
        .post(&url)
        .json(&review("u-after", "CREATE", service(80)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["response"]["allowed"], true);
}

#[tokio::test]
async fn slow_body_times_out_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Same router as the TLS server, over plain TCP so the test can stall mid-body.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options = ServeOptions::new().unwrap();
    options.request_timeout = Duration::from_millis(500);
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(svcplane_webhook::serve_plain(listener, options, async {
        let _ = rx.await;
    }));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(tx);
}

#[tokio::test]
async fn certificate_is_reloaded_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Duration::from_millis(100)).await;
    let old_ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let url = format!("https://localhost:{}/healthz", srv.addr.port());
    assert_eq!(
        client(&old_ca).get(&url).send().await.unwrap().status(),
        200
    );

    // New CA and serving cert in place; make sure the mtime moves.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    generate_certs(dir.path(), &["localhost".to_string()]).unwrap();
    let new_ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    assert_ne!(old_ca, new_ca);

    let mut reloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(r) = client(&new_ca).get(&url).send().await {
            if r.status() == 200 {
                reloaded = true;
                break;
            }
        }
    }
    assert!(reloaded, "server never presented the new certificate");
    assert!(
        client(&old_ca).get(&url).send().await.is_err(),
        "old CA must no longer verify"
    );
}

/// kube-apiserver's webhook client speaks HTTP/2 when offered; ALPN must negotiate `h2`.
/// Uses the system `curl` (skipped when it is not installed).
#[tokio::test]
async fn http2_is_negotiated_over_alpn() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Duration::from_secs(60)).await;
    let body = serde_json::to_string(&review("u-h2", "CREATE", service(80))).unwrap();
    let url = format!("https://localhost:{}/validate", srv.addr.port());
    let ca = dir.path().join("ca.crt");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--http2", "--cacert"])
            .arg(&ca)
            .args([
                "-H",
                "content-type: application/json",
                "-d",
                &body,
                "-w",
                "\n%{http_version}",
                &url,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (json_part, version) = text.rsplit_once('\n').unwrap();
    assert_eq!(
        version,
        "2",
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(json_part).unwrap();
    assert_eq!(v["response"]["uid"], "u-h2");
    assert_eq!(v["response"]["allowed"], true);
}
