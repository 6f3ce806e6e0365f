//! Upstream's OwnerReferencesPermissionEnforcement admission plugin
//! (`plugin/pkg/admission/gc/gc_admission.go`) in the embedded server, enabled with RBAC: a
//! ServiceAccount that may create EndpointSlices still may not set `blockOwnerDeletion: true`
//! on a reference to a Service until it may `update` `services/finalizers`.

use svcplane_apiserver::{AuthorizationMode, Config};
use svcplane_tests::Kubectl;

fn slice(name: &str, service_uid: &str, block: bool) -> String {
    format!(
        r#"{{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
"metadata": {{"name": "{name}", "namespace": "x",
  "ownerReferences": [{{"apiVersion": "v1", "kind": "Service", "name": "web",
    "uid": "{service_uid}", "controller": true, "blockOwnerDeletion": {block}}}]}},
"addressType": "IPv4", "endpoints": []}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_owner_deletion_needs_update_on_the_owners_finalizers() {
    let k = Kubectl::start_with(
        "block_owner_deletion_needs_update_on_the_owners_finalizers",
        Config {
            authorization_mode: AuthorizationMode::Rbac,
            owner_references_permission_enforcement: true,
            ..Config::default()
        },
    )
    .await;
    k.ok(&["create", "namespace", "x"]).await;
    k.ok(&["create", "serviceaccount", "app", "-n", "x"]).await;
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "--tcp=80:80",
        "-n",
        "x",
    ])
    .await;
    super::grant(
        &k,
        "x",
        "app",
        ("slices", "slices"),
        "create,get,delete",
        "endpointslices.discovery.k8s.io",
    )
    .await;
    let uid = k
        .ok(&[
            "get",
            "service",
            "web",
            "-n",
            "x",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .await;
    let token = k.ok(&["create", "token", "app", "-n", "x"]).await;
    let sa = k.token_kubeconfig("app.kubeconfig", token.trim());

    // An owner reference that does not block deletion needs nothing more.
    let plain = k.write("plain.json", &slice("plain", uid.trim(), false));
    let (ok, _, stderr) = k.run_with(&sa, &["create", "-f", &plain]).await;
    assert!(ok, "{stderr}");

    // blockOwnerDeletion: refused with upstream's message.
    let blocking = k.write("blocking.json", &slice("blocking", uid.trim(), true));
    let (ok, _, stderr) = k.run_with(&sa, &["create", "-f", &blocking]).await;
    assert!(!ok, "created without services/finalizers");
    assert!(stderr.contains("(Forbidden)"), "{stderr}");
    assert!(
        stderr.contains(
            "endpointslices.discovery.k8s.io \"blocking\" is forbidden: cannot set \
             blockOwnerDeletion if an ownerReference refers to a resource you can't set \
             finalizers on"
        ),
        "{stderr}"
    );

    // With update on services/finalizers (kube-controller-manager's endpointslice-controller
    // role grants it), it is allowed.
    super::grant(
        &k,
        "x",
        "app",
        ("finalizers", "finalizers"),
        "update",
        "services/finalizers",
    )
    .await;
    let (ok, _, stderr) = k.run_with(&sa, &["create", "-f", &blocking]).await;
    assert!(ok, "{stderr}");
}
