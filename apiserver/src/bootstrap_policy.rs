//! The default RBAC policy a fresh kube-apiserver creates with `--authorization-mode=RBAC`
//! (upstream `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`,
//! `ClusterRoles()` and `ClusterRoleBindings()`), the part svcplane needs:
//! `cluster-admin` bound to `system:masters`; `system:discovery`, `system:basic-user` and
//! `system:public-info-viewer` bound to `system:authenticated` (the last also to
//! `system:unauthenticated`); and the user-facing `admin`, `edit`, `view` roles, aggregated
//! from `system:aggregate-to-{admin,edit,view}` as upstream does, with upstream's rules for
//! the resources this server serves.

use serde_json::{json, Value};

/// Labels and annotations of upstream's bootstrap objects (`bootstrappolicy.addDefaultMetadata`).
fn metadata(name: &str, extra_labels: Value) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let (Some(l), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object()) {
        l.extend(extra.clone());
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "rules": rules,
    })
}

fn aggregated(name: &str, labels: Value, selector_label: &str) -> Value {
    let mut role = cluster_role(name, labels, json!([]));
    role["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]});
    role
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, json!({})),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

/// The ClusterRoles, in creation order.
pub fn cluster_roles() -> Vec<Value> {
    let view_core = json!([
        "configmaps",
        "endpoints",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "pods",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "serviceaccounts",
        "services",
        "services/status"
    ]);
    let view_rules = json!([
        {"apiGroups": [""], "resources": view_core, "verbs": READ},
        {"apiGroups": [""], "resources": ["bindings", "events", "limitranges", "namespaces/status",
            "pods/log", "pods/status", "replicationcontrollers/status", "resourcequotas",
            "resourcequotas/status"], "verbs": READ},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
        {"apiGroups": ["apps"], "resources": ["controllerrevisions", "daemonsets",
            "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
            "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
            "statefulsets/scale", "statefulsets/status"], "verbs": READ},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers",
            "horizontalpodautoscalers/status"], "verbs": READ},
        {"apiGroups": ["batch"], "resources": ["cronjobs", "cronjobs/status", "jobs",
            "jobs/status"], "verbs": READ},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets",
            "poddisruptionbudgets/status"], "verbs": READ},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingresses/status",
            "networkpolicies"], "verbs": READ},
    ]);
    let edit_rules = json!([
        {"apiGroups": [""], "resources": ["pods/attach", "pods/exec", "pods/portforward",
            "pods/proxy", "secrets", "services/proxy"], "verbs": READ},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
        {"apiGroups": [""], "resources": ["pods", "pods/attach", "pods/exec",
            "pods/portforward", "pods/proxy"], "verbs": WRITE},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps", "events", "persistentvolumeclaims",
            "replicationcontrollers", "replicationcontrollers/scale", "secrets",
            "serviceaccounts", "services", "services/proxy"], "verbs": WRITE},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments",
            "deployments/rollback", "deployments/scale", "replicasets", "replicasets/scale",
            "statefulsets", "statefulsets/scale"], "verbs": WRITE},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": WRITE},
        {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": WRITE},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"],
            "verbs": WRITE},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": WRITE},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": WRITE},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]},
    ]);
    let admin_rules = json!([
        {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"],
            "verbs": ["create"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"],
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]},
    ]);
    let agg = |to: &str| json!({format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"});
    vec![
        cluster_role(
            "cluster-admin",
            json!({}),
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        cluster_role(
            "system:discovery",
            json!({}),
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi",
                "/openapi/*", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        cluster_role(
            "system:basic-user",
            json!({}),
            json!([
                {"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
                    "verbs": ["create"]},
            ]),
        ),
        cluster_role(
            "system:public-info-viewer",
            json!({}),
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version",
                "/version/"], "verbs": ["get"]}]),
        ),
        aggregated(
            "admin",
            json!({}),
            "rbac.authorization.k8s.io/aggregate-to-admin",
        ),
        aggregated(
            "edit",
            agg("admin"),
            "rbac.authorization.k8s.io/aggregate-to-edit",
        ),
        aggregated(
            "view",
            agg("edit"),
            "rbac.authorization.k8s.io/aggregate-to-view",
        ),
        cluster_role("system:aggregate-to-admin", agg("admin"), admin_rules),
        cluster_role("system:aggregate-to-edit", agg("edit"), edit_rules),
        cluster_role("system:aggregate-to-view", agg("view"), view_rules),
    ]
}

/// The ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", &[crate::authn::MASTERS]),
        binding(
            "system:discovery",
            "system:discovery",
            &[crate::authn::AUTHENTICATED],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &[crate::authn::AUTHENTICATED],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[crate::authn::AUTHENTICATED, crate::authn::UNAUTHENTICATED],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::{Policy, Request, UserInfo};

    fn policy() -> Policy {
        Policy::new(
            cluster_roles()
                .into_iter()
                .map(|v| serde_json::from_value(v).unwrap())
                .collect(),
            vec![],
            cluster_role_bindings()
                .into_iter()
                .map(|v| serde_json::from_value(v).unwrap())
                .collect(),
            vec![],
        )
    }

    /// policy.go: what the bootstrap bindings grant to whom.
    #[test]
    fn bootstrap_policy_grants_discovery_and_self_reviews_to_authenticated_users() {
        let p = policy();
        let sa = UserInfo::service_account("x", "app");
        let anon = crate::authn::anonymous();
        let ssar = Request::resource(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            "",
            "",
        );
        let whoami = Request::resource(
            "create",
            "authentication.k8s.io",
            "selfsubjectreviews",
            "",
            "",
            "",
        );
        assert!(p.authorize(&sa, &ssar).allowed());
        assert!(p.authorize(&sa, &whoami).allowed());
        assert!(p
            .authorize(&sa, &Request::non_resource("get", "/apis/apps/v1"))
            .allowed());
        assert!(!p
            .authorize(&anon, &Request::non_resource("get", "/apis"))
            .allowed());
        assert!(p
            .authorize(&anon, &Request::non_resource("get", "/healthz"))
            .allowed());
        assert!(!p.authorize(&anon, &ssar).allowed());
        assert!(!p
            .authorize(&sa, &Request::resource("list", "", "services", "", "x", ""))
            .allowed());
        let admin = UserInfo::new("a", &["system:masters"]);
        assert!(p
            .authorize(
                &admin,
                &Request::resource("delete", "", "nodes", "", "", "n")
            )
            .allowed());
        // `view` aggregates system:aggregate-to-view; `admin` aggregates edit and view too.
        let view = p.cluster_role_rules("view").unwrap();
        assert!(!view.is_empty());
        assert!(p.cluster_role_rules("admin").unwrap().len() > view.len());
    }
}
