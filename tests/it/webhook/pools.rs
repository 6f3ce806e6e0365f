//! `LoadBalancerIPPool` admission end to end: the real `svcplane webhook` process with
//! `--check-pool-overlaps` (it watches pools through its own kubeconfig), registered in the
//! embedded API server for `svcplane.io/v1alpha1` pools; writes through kube-rs and `kubectl`
//! are refused with field errors naming the block, and a pool overlapping another names it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, PostParams};
use serde_json::json;
use svcplane_api::{IpBlock, LoadBalancerIPPool};
use svcplane_tests::vm::workspace_binary;
use svcplane_tests::{free_port, Fixture, Kubectl};

/// How long the webhook gets to start and to see a pool created.
const WITHIN: Duration = Duration::from_secs(20);

/// The `svcplane webhook` child process, killed on drop.
struct WebhookProcess {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for WebhookProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `svcplane webhook --check-pool-overlaps` and registers it for pools.
async fn start_webhook(f: &Fixture) -> WebhookProcess {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let child = Command::new(workspace_binary("svcplane"))
        .arg("webhook")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--generate-certs={}", dir.path().display()))
        .arg("--cert-dns-names=localhost,127.0.0.1")
        .arg("--check-pool-overlaps")
        .arg("--kubeconfig")
        .arg(f.kubeconfig_path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start svcplane webhook");
    let process = WebhookProcess { child, _dir: dir };
    let deadline = Instant::now() + WITHIN;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the webhook did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ca = std::fs::read(process._dir.path().join("ca.crt")).expect("ca.crt");
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "pools"},
        "webhooks": [{
            "name": "pools.validate.svcplane.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/validate"),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca),
            },
            "rules": [{"apiGroups": ["svcplane.io"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"], "resources": ["loadbalancerippools"], "scope": "Cluster"}],
        }],
    }))
    .expect("configuration");
    Api::<ValidatingWebhookConfiguration>::all(f.client.clone())
        .create(&PostParams::default(), &config)
        .await
        .expect("register the webhook");
    process
}

fn pool(name: &str, blocks: &[(&str, Option<&str>)]) -> LoadBalancerIPPool {
    let blocks = blocks
        .iter()
        .map(|(first, stop)| match stop {
            Some(stop) => IpBlock::range(*first, *stop),
            None => IpBlock::cidr(*first),
        })
        .collect();
    LoadBalancerIPPool::with_blocks(name, blocks)
}

/// The message of a refused write.
fn refusal(result: Result<LoadBalancerIPPool, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_are_validated_and_may_not_overlap() {
    let f = Fixture::start_tls().await;
    svcplane_tests::install_pool_crd(&f.client).await;
    let _webhook = start_webhook(&f).await;
    let pools: Api<LoadBalancerIPPool> = Api::all(f.client.clone());
    let create = PostParams::default();

    // Checks of one pool on its own: the field errors name the block.
    let message = refusal(
        pools
            .create(&create, &pool("bad", &[("192.0.2.1/28", None)]))
            .await,
    );
    assert!(
        message.contains("admission webhook \"pools.validate.svcplane.dev\" denied the request")
            && message.contains(
                "spec.blocks[0].cidr: Invalid value: \"192.0.2.1/28\": must be in canonical form (\"192.0.2.0/28\")"
            ),
        "{message}"
    );
    let message = refusal(
        pools
            .create(
                &create,
                &pool("reversed", &[("192.0.2.9", Some("192.0.2.1"))]),
            )
            .await,
    );
    assert!(
        message.contains(
            "spec.blocks[0].stop: Invalid value: \"192.0.2.1\": must not be before `start`"
        ),
        "{message}"
    );

    // A pool, then one overlapping it: refused once the webhook's watch has seen the first
    // (dry-run creates until then: nothing is stored by them).
    pools
        .create(&create, &pool("a", &[("192.0.2.0/28", None)]))
        .await
        .expect("pool a");
    let overlapping = pool(
        "b",
        &[("198.51.100.0/24", None), ("192.0.2.8", Some("192.0.2.20"))],
    );
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = Instant::now() + WITHIN;
    let message = loop {
        match pools.create(&dry_run, &overlapping).await {
            Err(kube::Error::Api(status)) => break status.message,
            Ok(_) => {
                assert!(Instant::now() < deadline, "the webhook never saw pool a");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert!(
        message.contains(
            "spec.blocks[1]: Invalid value: \"192.0.2.8-192.0.2.20\": overlaps 192.0.2.0-192.0.2.15 of LoadBalancerIPPool \"a\""
        ),
        "{message}"
    );
    assert!(pools.get_opt("b").await.expect("get b").is_none());

    // The pool itself is not an overlap: an update of a passes; a disjoint pool passes.
    let mut a = pools.get("a").await.expect("get a");
    a.spec.avoid_buggy_ips = true;
    pools
        .replace("a", &PostParams::default(), &a)
        .await
        .expect("update a");
    pools
        .create(&create, &pool("c", &[("2001:db8::/120", None)]))
        .await
        .expect("pool c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_pool_field_errors() {
    let k = Kubectl::start("kubectl_shows_pool_field_errors").await;
    svcplane_tests::install_pool_crd(&k.fx.client).await;
    let _webhook = start_webhook(&k.fx).await;
    let manifest = k.write(
        "pool.yaml",
        "apiVersion: svcplane.io/v1alpha1\nkind: LoadBalancerIPPool\nmetadata:\n  name: p\nspec:\n  blocks:\n  - cidr: 192.0.2.0/28\n    start: 192.0.2.1\n",
    );
    let (ok, _, stderr) = k.run(&["apply", "-f", &manifest]).await;
    assert!(!ok, "kubectl apply passed: {stderr}");
    assert!(
        stderr.contains("The LoadBalancerIPPool \"p\" is invalid")
            && stderr.contains(
                "spec.blocks[0]: Forbidden: `cidr` may not be set together with `start` or `stop`"
            ),
        "stderr: {stderr}"
    );
}
