//! The real kubectl against custom resources: unknown fields per `--validate` (kubectl 1.32
//! sends `fieldValidation=Strict` by default, `Warn` for `--validate=warn`, `Ignore` for
//! `--validate=false`), pruning, and schema validation errors as kubectl prints them.

use serde_json::Value;
use svcplane_tests::{install_pool_crd, Kubectl};

fn pool_manifest(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: svcplane.io/v1alpha1\nkind: LoadBalancerIPPool\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

const WITH_UNKNOWN: &str = "  blocks:\n  - cidr: 192.0.2.0/28\n  foo: bar\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_of_a_pool_with_an_unknown_field_follows_validate() {
    let k = Kubectl::start("kubectl_apply_of_a_pool_with_an_unknown_field_follows_validate").await;
    install_pool_crd(&k.fx.client).await;

    let strict = k.write("strict.yaml", &pool_manifest("strict", WITH_UNKNOWN));
    let (ok, _, stderr) = k.run(&["apply", "-f", &strict]).await;
    assert!(
        !ok,
        "the default --validate=strict refuses an unknown field"
    );
    assert!(
        stderr.contains("Error from server (BadRequest): error when creating \"")
            && stderr.contains(
            "LoadBalancerIPPool in version \"v1alpha1\" cannot be handled as a LoadBalancerIPPool: \
             strict decoding error: unknown field \"spec.foo\""
        ),
        "{stderr}"
    );
    let (ok, _, _) = k.run(&["get", "loadbalancerippool", "strict"]).await;
    assert!(!ok, "nothing was stored");

    let warn = k.write("warn.yaml", &pool_manifest("warn", WITH_UNKNOWN));
    let (ok, stdout, stderr) = k.run(&["apply", "--validate=warn", "-f", &warn]).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Warning: unknown field \"spec.foo\""),
        "{stderr}"
    );
    assert!(
        stdout.contains("loadbalancerippool.svcplane.io/warn created"),
        "{stdout}"
    );
    let stored: Value = serde_json::from_str(
        &k.ok(&["get", "loadbalancerippool", "warn", "-o", "json"])
            .await,
    )
    .unwrap();
    assert!(stored["spec"].get("foo").is_none(), "{stored}");
    assert_eq!(stored["spec"]["blocks"][0]["cidr"], "192.0.2.0/28");

    let ignore = k.write("ignore.yaml", &pool_manifest("ignore", WITH_UNKNOWN));
    let (ok, _, stderr) = k.run(&["apply", "--validate=false", "-f", &ignore]).await;
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("unknown field"), "{stderr}");
    let stored: Value = serde_json::from_str(
        &k.ok(&["get", "loadbalancerippool", "ignore", "-o", "json"])
            .await,
    )
    .unwrap();
    assert!(stored["spec"].get("foo").is_none(), "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_schema_errors_of_an_invalid_pool_by_field() {
    let k = Kubectl::start("kubectl_shows_schema_errors_of_an_invalid_pool_by_field").await;
    install_pool_crd(&k.fx.client).await;
    let bad = k.write("bad.yaml", &pool_manifest("x", "  disabled: \"yes\"\n"));
    let (ok, _, stderr) = k.run(&["apply", "-f", &bad]).await;
    assert!(!ok, "an invalid pool is refused");
    assert!(
        stderr.contains(
            "The LoadBalancerIPPool \"x\" is invalid: \n* spec.disabled: Invalid value: \"string\": \
             spec.disabled in body must be of type boolean: \"string\"\n* spec.blocks: Required value"
        ),
        "{stderr}"
    );
}
