//! The real kubectl against the embedded API server.

mod cli;
mod cr_schema;
mod explain;
mod owner_references;
mod protobuf;
mod rbac;
mod svcplane_explain;

/// Creates Role `role` in `namespace` allowing `verbs` on `resource` and RoleBinding `binding`
/// giving it to ServiceAccount `namespace/service_account` (`kubectl create role` +
/// `kubectl create rolebinding`, as a user would).
async fn grant(
    k: &svcplane_tests::Kubectl,
    namespace: &str,
    service_account: &str,
    (role, binding): (&str, &str),
    verbs: &str,
    resource: &str,
) {
    k.ok(&[
        "create",
        "role",
        role,
        &format!("--verb={verbs}"),
        &format!("--resource={resource}"),
        "-n",
        namespace,
    ])
    .await;
    k.ok(&[
        "create",
        "rolebinding",
        binding,
        &format!("--role={role}"),
        &format!("--serviceaccount={namespace}:{service_account}"),
        "-n",
        namespace,
    ])
    .await;
}
