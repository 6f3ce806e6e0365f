//! Every built-in kind the server serves beyond the original thirteen (issue 14 part 1), one
//! table row each: its discovery entry equals kube-apiserver v1.33's (`kubectl get --raw
//! /apis/GROUP/VERSION`; the same facts as `api/discovery/apis__*.json` in kubernetes/kubernetes,
//! plus the `watch` verb a running server lists), a create with `kind`/`apiVersion` and one
//! without (kube-apiserver fills both from the URL) both answer 201, the object reads back and
//! lists, and an invalid object answers 422 naming the field, as the kind's upstream
//! validation (required fields of its OpenAPI schema, `ValidateObjectMeta`) does.
//!
//! Also the subresources those kinds have upstream: `/scale` (autoscaling/v1 `Scale`),
//! `pods/eviction` (with and without a PodDisruptionBudget allowing it), `pods/log`.

use serde_json::{json, Value};
use svcplane_tests::Fixture;

use crate::apiserver::support::raw;

const JSON: &str = "application/json";
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

/// One subresource entry as upstream lists it: name suffix, Kind, group/version of the Kind
/// when it differs, verbs.
type Sub = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    &'static [&'static str],
);

const STATUS: Sub = ("status", "", None, SUB_VERBS);
const SCALE: Sub = ("scale", "Scale", Some(("autoscaling", "v1")), SUB_VERBS);

/// One kind.
struct Row {
    api_version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    /// Every subresource upstream lists (`""` kind = the resource's own).
    subs: &'static [Sub],
    /// Upstream subresources this server does not serve (not in its discovery either).
    unserved: &'static [&'static str],
    /// Names of the two test objects (with and without `kind`).
    name: &'static str,
    second: &'static str,
    /// A valid object (without `kind`, `apiVersion`, `metadata.name`).
    valid: Value,
    /// An invalid object, and the field its 422 must name.
    invalid: Value,
    field: &'static str,
}

fn pod_template(restart: &str) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"restartPolicy": restart, "containers": [{"name": "web", "image": "nginx"}]}})
}

fn bad_labels() -> Value {
    json!({"metadata": {"labels": {"app": "not a valid value!"}}})
}

fn workload() -> Value {
    json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": pod_template("Always")}})
}

fn workload_without_selector() -> Value {
    json!({"spec": {"template": pod_template("Always")}})
}

#[allow(clippy::too_many_arguments)]
fn row(
    api_version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    subs: &'static [Sub],
    valid: Value,
    invalid: Value,
    field: &'static str,
) -> Row {
    Row {
        api_version,
        plural,
        kind,
        namespaced,
        short,
        categories,
        subs,
        unserved: &[],
        name: "demo",
        second: "demo-2",
        valid,
        invalid,
        field,
    }
}

fn rows() -> Vec<Row> {
    const ALL: &[&str] = &["all"];
    vec![
        // `serviceaccounts/token` is served (token_request.rs), as upstream.
        row(
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            &[],
            &[(
                "token",
                "TokenRequest",
                Some(("authentication.k8s.io", "v1")),
                &["create"],
            )],
            json!({"automountServiceAccountToken": true}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            false,
            &["pv"],
            &[],
            &[STATUS],
            json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/pv"}}}),
            json!({"spec": {"hostPath": {}}}),
            "spec.hostPath.path",
        ),
        row(
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            &[],
            &[STATUS],
            json!({"spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "v1",
            "resourcequotas",
            "ResourceQuota",
            true,
            &["quota"],
            &[],
            &[STATUS],
            json!({"spec": {"hard": {"pods": "10"}}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "v1",
            "limitranges",
            "LimitRange",
            true,
            &["limits"],
            &[],
            &[],
            json!({"spec": {"limits": [{"type": "Container", "default": {"cpu": "100m"}}]}}),
            json!({"spec": {"limits": [{"default": {"cpu": "100m"}}]}}),
            "spec.limits[0].type",
        ),
        row(
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            true,
            &["rc"],
            ALL,
            &[SCALE, STATUS],
            json!({"spec": {"replicas": 1, "selector": {"app": "web"},
                "template": pod_template("Always")}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "v1",
            "podtemplates",
            "PodTemplate",
            true,
            &[],
            &[],
            &[],
            json!({"template": pod_template("Always")}),
            json!({"template": {"spec": {"containers": [{"image": "nginx"}]}}}),
            "template.spec.containers[0].name",
        ),
        Row {
            unserved: &[
                "attach",
                "ephemeralcontainers",
                "exec",
                "portforward",
                "proxy",
                "resize",
            ],
            ..row(
                "v1",
                "pods",
                "Pod",
                true,
                &["po"],
                ALL,
                &[
                    ("attach", "PodAttachOptions", None, &["create", "get"]),
                    ("binding", "Binding", None, &["create"]),
                    ("ephemeralcontainers", "", None, SUB_VERBS),
                    ("eviction", "Eviction", Some(("policy", "v1")), &["create"]),
                    ("exec", "PodExecOptions", None, &["create", "get"]),
                    ("log", "", None, &["get"]),
                    (
                        "portforward",
                        "PodPortForwardOptions",
                        None,
                        &["create", "get"],
                    ),
                    (
                        "proxy",
                        "PodProxyOptions",
                        None,
                        &["create", "delete", "get", "head", "options", "patch", "put"],
                    ),
                    ("resize", "", None, SUB_VERBS),
                    STATUS,
                ],
                json!({"spec": pod_template("Always")["spec"]}),
                json!({"spec": {"containers": [{"image": "nginx"}]}}),
                "spec.containers[0].name",
            )
        },
        row(
            "apps/v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            ALL,
            &[SCALE, STATUS],
            workload(),
            workload_without_selector(),
            "spec.selector",
        ),
        row(
            "apps/v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            ALL,
            &[SCALE, STATUS],
            workload(),
            workload_without_selector(),
            "spec.selector",
        ),
        row(
            "apps/v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            ALL,
            &[SCALE, STATUS],
            json!({"spec": {"serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                "template": pod_template("Always")}}),
            workload_without_selector(),
            "spec.selector",
        ),
        row(
            "apps/v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            ALL,
            &[STATUS],
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": pod_template("Always")}}),
            workload_without_selector(),
            "spec.selector",
        ),
        row(
            "apps/v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            &[],
            &[],
            json!({"revision": 1, "data": {"spec": {}}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "batch/v1",
            "jobs",
            "Job",
            true,
            &[],
            ALL,
            &[STATUS],
            json!({"spec": {"template": pod_template("Never")}}),
            json!({"spec": {"backoffLimit": 2}}),
            "spec.template",
        ),
        row(
            "batch/v1",
            "cronjobs",
            "CronJob",
            true,
            &["cj"],
            ALL,
            &[STATUS],
            json!({"spec": {"schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": pod_template("OnFailure")}}}}),
            json!({"spec": {"jobTemplate": {"spec": {"template": pod_template("OnFailure")}}}}),
            "spec.schedule",
        ),
        row(
            "autoscaling/v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
            &["hpa"],
            ALL,
            &[STATUS],
            json!({"spec": {"maxReplicas": 3, "scaleTargetRef":
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
            json!({"spec": {"maxReplicas": 3}}),
            "spec.scaleTargetRef",
        ),
        row(
            "networking.k8s.io/v1",
            "ingresses",
            "Ingress",
            true,
            &["ing"],
            &[],
            &[STATUS],
            json!({"spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
            json!({"spec": {"defaultBackend": {"service": {"port": {"number": 80}}}}}),
            "spec.defaultBackend.service.name",
        ),
        row(
            "networking.k8s.io/v1",
            "ingressclasses",
            "IngressClass",
            false,
            &[],
            &[],
            &[],
            json!({"spec": {"controller": "example.com/ingress"}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "networking.k8s.io/v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
            &["netpol"],
            &[],
            &[],
            json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "policy/v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            &[],
            &[STATUS],
            json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "rbac.authorization.k8s.io/v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            &[],
            &[],
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}]}),
            "rules[0].verbs",
        ),
        row(
            "rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
            &[],
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "view"}, "subjects": [{"kind": "ServiceAccount", "name": "default",
                "namespace": "default"}]}),
            json!({"subjects": []}),
            "roleRef",
        ),
        row(
            "rbac.authorization.k8s.io/v1",
            "roles",
            "Role",
            true,
            &[],
            &[],
            &[],
            json!({"rules": [{"apiGroups": ["apps"], "resources": ["deployments"],
                "verbs": ["list"]}]}),
            json!({"rules": [{"resources": ["pods"]}]}),
            "rules[0].verbs",
        ),
        row(
            "rbac.authorization.k8s.io/v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            &[],
            &[],
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                "name": "reader"}}),
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role"}}),
            "roleRef.name",
        ),
        row(
            "storage.k8s.io/v1",
            "storageclasses",
            "StorageClass",
            false,
            &["sc"],
            &[],
            &[],
            json!({"provisioner": "example.com/disk", "reclaimPolicy": "Delete"}),
            json!({"reclaimPolicy": "Delete"}),
            "provisioner",
        ),
        Row {
            name: "csi.example.com",
            ..row(
                "storage.k8s.io/v1",
                "csidrivers",
                "CSIDriver",
                false,
                &[],
                &[],
                &[],
                json!({"spec": {"attachRequired": true}}),
                json!({}),
                "spec",
            )
        },
        row(
            "storage.k8s.io/v1",
            "csinodes",
            "CSINode",
            false,
            &[],
            &[],
            &[],
            json!({"spec": {"drivers": [{"name": "csi.example.com", "nodeID": "n1"}]}}),
            json!({"spec": {"drivers": [{"name": "csi.example.com"}]}}),
            "spec.drivers[0].nodeID",
        ),
        row(
            "storage.k8s.io/v1",
            "csistoragecapacities",
            "CSIStorageCapacity",
            true,
            &[],
            &[],
            &[],
            json!({"storageClassName": "standard", "capacity": "10Gi"}),
            json!({"capacity": "10Gi"}),
            "storageClassName",
        ),
        row(
            "storage.k8s.io/v1",
            "volumeattachments",
            "VolumeAttachment",
            false,
            &[],
            &[],
            &[STATUS],
            json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1",
                "source": {"persistentVolumeName": "pv1"}}}),
            json!({"spec": {"nodeName": "n1", "source": {}}}),
            "spec.attacher",
        ),
        row(
            "scheduling.k8s.io/v1",
            "priorityclasses",
            "PriorityClass",
            false,
            &["pc"],
            &[],
            &[],
            json!({"value": 1000, "description": "demo"}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "node.k8s.io/v1",
            "runtimeclasses",
            "RuntimeClass",
            false,
            &[],
            &[],
            &[],
            json!({"handler": "runc"}),
            json!({"overhead": {"podFixed": {"cpu": "10m"}}}),
            "handler",
        ),
        row(
            "admissionregistration.k8s.io/v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
            &[],
            &["api-extensions"],
            &[],
            json!({"webhooks": []}),
            json!({"webhooks": [{"sideEffects": "None", "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": "https://example.com/hook"}}]}),
            "webhooks[0].name",
        ),
        row(
            "admissionregistration.k8s.io/v1",
            "validatingadmissionpolicies",
            "ValidatingAdmissionPolicy",
            false,
            &[],
            &["api-extensions"],
            &[STATUS],
            json!({"spec": {"validations": [{"expression": "object.spec.replicas <= 5"}],
                "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
                "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]}}}),
            json!({"spec": {"validations": [{"message": "no expression"}]}}),
            "spec.validations[0].expression",
        ),
        row(
            "admissionregistration.k8s.io/v1",
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
            false,
            &[],
            &["api-extensions"],
            &[],
            json!({"spec": {"policyName": "demo", "validationActions": ["Deny"]}}),
            bad_labels(),
            "metadata.labels",
        ),
        Row {
            name: "10.0.0.7",
            second: "2001:db8::7",
            ..row(
                "networking.k8s.io/v1",
                "ipaddresses",
                "IPAddress",
                false,
                &["ip"],
                &[],
                &[],
                json!({"spec": {"parentRef": {"group": "", "resource": "services",
                    "namespace": "default", "name": "web"}}}),
                // Upstream `ValidateIPAddressName`: the name must be a canonical IP.
                json!({"spec": {"parentRef": {"resource": "services", "name": "web"}}}),
                "metadata.name",
            )
        },
        row(
            "networking.k8s.io/v1",
            "servicecidrs",
            "ServiceCIDR",
            false,
            &[],
            &[],
            &[STATUS],
            json!({"spec": {"cidrs": ["10.200.0.0/16"]}}),
            bad_labels(),
            "metadata.labels",
        ),
        row(
            "flowcontrol.apiserver.k8s.io/v1",
            "flowschemas",
            "FlowSchema",
            false,
            &[],
            &[],
            &[STATUS],
            json!({"spec": {"priorityLevelConfiguration": {"name": "global-default"},
                "matchingPrecedence": 1000}}),
            json!({"spec": {"matchingPrecedence": 1000}}),
            "spec.priorityLevelConfiguration",
        ),
        row(
            "flowcontrol.apiserver.k8s.io/v1",
            "prioritylevelconfigurations",
            "PriorityLevelConfiguration",
            false,
            &[],
            &[],
            &[STATUS],
            json!({"spec": {"type": "Exempt", "exempt": {}}}),
            json!({"spec": {"exempt": {}}}),
            "spec.type",
        ),
    ]
}

fn collection(row: &Row) -> String {
    let root = if row.api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{}", row.api_version)
    };
    if row.namespaced {
        format!("{root}/namespaces/default/{}", row.plural)
    } else {
        format!("{root}/{}", row.plural)
    }
}

/// The entry kube-apiserver lists for the row's resource, then its subresources.
fn upstream_entries(row: &Row) -> Vec<Value> {
    let mut main = json!({
        "name": row.plural,
        "singularName": row.kind.to_lowercase(),
        "namespaced": row.namespaced,
        "kind": row.kind,
        "verbs": ALL_VERBS,
    });
    if !row.short.is_empty() {
        main["shortNames"] = json!(row.short);
    }
    if !row.categories.is_empty() {
        main["categories"] = json!(row.categories);
    }
    let mut out = vec![main];
    for (name, kind, gv, verbs) in row.subs {
        if row.unserved.contains(name) {
            continue;
        }
        let mut e = json!({
            "name": format!("{}/{name}", row.plural),
            "singularName": "",
            "namespaced": row.namespaced,
            "kind": if kind.is_empty() { row.kind } else { kind },
            "verbs": verbs,
        });
        if let Some((g, v)) = gv {
            e["group"] = json!(g);
            e["version"] = json!(v);
        }
        out.push(e);
    }
    out
}

fn with_name(row: &Row, body: &Value, name: &str, typed: bool) -> Value {
    let mut obj = body.clone();
    obj["metadata"]["name"] = json!(name);
    if typed {
        obj["apiVersion"] = json!(row.api_version);
        obj["kind"] = json!(row.kind);
    }
    obj
}

/// Discovery, create with and without `kind`, get, list and a 422 naming the field, for
/// every row; all failures are reported together.
#[tokio::test]
async fn every_builtin_kind_is_served_with_discovery_create_and_validation() {
    let fx = Fixture::start().await;
    let mut failures = Vec::new();
    for row in rows() {
        let what = format!("{} {}", row.api_version, row.plural);
        // Discovery.
        let gv_path = if row.api_version == "v1" {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}", row.api_version)
        };
        let list = raw(&fx, "GET", &gv_path, None, Vec::new()).await;
        let served: Vec<Value> = list.body["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                let n = r["name"].as_str().unwrap_or_default();
                n == row.plural || n.starts_with(&format!("{}/", row.plural))
            })
            .map(|r| {
                let mut r = r.clone();
                if let Some(m) = r.as_object_mut() {
                    m.remove("storageVersionHash");
                }
                if let Some(verbs) = r["verbs"].as_array_mut() {
                    verbs.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                }
                r
            })
            .collect();
        let want = upstream_entries(&row);
        if served != want {
            failures.push(format!(
                "{what}: discovery\n  served   {}\n  upstream {}",
                Value::Array(served),
                Value::Array(want)
            ));
        }
        // Create with kind/apiVersion, and without (filled from the URL).
        let url = collection(&row);
        for (typed, name) in [(true, row.name), (false, row.second)] {
            let body = with_name(&row, &row.valid, name, typed);
            let r = raw(&fx, "POST", &url, Some(JSON), body.to_string()).await;
            if r.status != 201
                || r.body["kind"] != row.kind
                || r.body["apiVersion"] != row.api_version
            {
                failures.push(format!(
                    "{what}: create (kind given: {typed}) answered {}: {}",
                    r.status, r.body
                ));
                continue;
            }
            let got = raw(&fx, "GET", &format!("{url}/{name}"), None, Vec::new()).await;
            if got.status != 200 || got.body["metadata"]["uid"] != r.body["metadata"]["uid"] {
                failures.push(format!(
                    "{what}: get {name} answered {}: {}",
                    got.status, got.body
                ));
            }
        }
        let listed = raw(&fx, "GET", &url, None, Vec::new()).await;
        let names: Vec<&str> = listed.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        if listed.body["kind"] != format!("{}List", row.kind) || !names.contains(&row.name) {
            failures.push(format!(
                "{what}: list answered {}: {}",
                listed.status, listed.body
            ));
        }
        // Invalid: 422 naming the field.
        let body = with_name(&row, &row.invalid, "invalid", true);
        let r = raw(&fx, "POST", &url, Some(JSON), body.to_string()).await;
        let fields: Vec<&str> = r.body["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["field"].as_str())
            .collect();
        let message = r.body["message"].as_str().unwrap_or_default();
        if r.status != 422
            || r.body["reason"] != "Invalid"
            || !fields.iter().any(|f| f.starts_with(row.field))
            || !message.contains(row.field)
        {
            failures.push(format!(
                "{what}: invalid object answered {} (want 422 naming {}): {}",
                r.status, row.field, r.body
            ));
        }
        // Strict field validation: an unknown field is refused by name.
        let mut body = with_name(&row, &row.valid, "strict", true);
        body["notAField"] = json!(1);
        let r = raw(
            &fx,
            "POST",
            &format!("{url}?fieldValidation=Strict"),
            Some(JSON),
            body.to_string(),
        )
        .await;
        if r.status != 400
            || !r.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("notAField")
        {
            failures.push(format!(
                "{what}: strict create with an unknown field answered {}: {}",
                r.status, r.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    fx.server.shutdown().await;
}

async fn create(fx: &Fixture, path: &str, body: Value) -> Value {
    let r = raw(fx, "POST", path, Some(JSON), body.to_string()).await;
    assert_eq!(r.status, 201, "create at {path}: {}", r.body);
    r.body
}

/// A Deployment is defaulted as upstream's; `deployments/scale` (upstream `ScaleREST`): GET reads `spec.replicas` and the selector,
/// a merge patch (what `kubectl scale` sends) writes `spec.replicas` of the Deployment, a
/// negative count is a 422 naming `spec.replicas`.
#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let fx = Fixture::start().await;
    let base = "/apis/apps/v1/namespaces/default/deployments";
    let mut web = workload();
    web["metadata"]["name"] = json!("web");
    let created = create(&fx, base, web).await;
    // Upstream `SetDefaults_Deployment` and the pod template's `SetDefaults_PodSpec`.
    let spec = &created["spec"];
    assert_eq!(spec["strategy"]["type"], "RollingUpdate", "{created}");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    let scale = raw(&fx, "GET", &format!("{base}/web/scale"), None, Vec::new()).await;
    assert_eq!(scale.status, 200, "{}", scale.body);
    assert_eq!(scale.body["kind"], "Scale");
    assert_eq!(scale.body["apiVersion"], "autoscaling/v1");
    assert_eq!(scale.body["spec"]["replicas"], 2);
    assert_eq!(scale.body["status"]["selector"], "app=web");
    let r = raw(
        &fx,
        "PATCH",
        &format!("{base}/web/scale"),
        Some("application/merge-patch+json"),
        json!({"spec": {"replicas": 5}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["spec"]["replicas"], 5);
    let deploy = raw(&fx, "GET", &format!("{base}/web"), None, Vec::new()).await;
    assert_eq!(deploy.body["spec"]["replicas"], 5);
    // `kubectl get deployments` asks for a Table: upstream's Deployment printer columns.
    let table = reqwest::Client::new()
        .get(format!("{}{base}", fx.url))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], "web");
    assert_eq!(cells[1], "0/5");
    assert_eq!(cells[6], "nginx");
    assert_eq!(cells[7], "app=web");
    let r = raw(
        &fx,
        "PATCH",
        &format!("{base}/web/scale"),
        Some("application/merge-patch+json"),
        json!({"spec": {"replicas": -1}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("spec.replicas"),
        "{}",
        r.body
    );
    // A kind without /scale upstream has none here.
    let cm = raw(
        &fx,
        "GET",
        "/api/v1/namespaces/default/configmaps/x/scale",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(cm.status, 404);
    fx.server.shutdown().await;
}

fn running_pod(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
}

async fn set_running(fx: &Fixture, name: &str) {
    let r = raw(
        fx,
        "PATCH",
        &format!("/api/v1/namespaces/default/pods/{name}/status"),
        Some("application/merge-patch+json"),
        json!({"status": {"phase": "Running"}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn eviction(name: &str) -> String {
    json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": name, "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 0}})
    .to_string()
}

/// `pods/eviction` (upstream `pkg/registry/core/pod/storage/eviction.go`): a Running Pod
/// whose PodDisruptionBudget allows no disruption is refused with 429 and cause
/// `DisruptionBudget`; once the budget allows one the Pod is evicted (201 Success), the
/// budget's `disruptionsAllowed` drops by one and `disruptedPods` names the Pod. A name that
/// differs from the URL's is a 400.
#[tokio::test]
async fn eviction_respects_the_pod_disruption_budget() {
    let fx = Fixture::start().await;
    let pods = "/api/v1/namespaces/default/pods";
    create(&fx, pods, running_pod("web-1")).await;
    set_running(&fx, "web-1").await;
    let pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    create(
        &fx,
        pdbs,
        json!({"metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await;
    let evict = format!("{pods}/web-1/eviction");
    let r = raw(&fx, "POST", &evict, Some(JSON), eviction("web-1")).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(
        r.body["details"]["causes"][0]["reason"], "DisruptionBudget",
        "{}",
        r.body
    );
    let r = raw(&fx, "POST", &evict, Some(JSON), eviction("other")).await;
    assert_eq!(r.status, 400, "{}", r.body);

    let r = raw(
        &fx,
        "PATCH",
        &format!("{pdbs}/web/status"),
        Some("application/merge-patch+json"),
        json!({"status": {"disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 1,
            "expectedPods": 1, "observedGeneration": 1}})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = raw(&fx, "POST", &evict, Some(JSON), eviction("web-1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "Success");
    let pdb = raw(&fx, "GET", &format!("{pdbs}/web"), None, Vec::new()).await;
    assert_eq!(pdb.body["status"]["disruptionsAllowed"], 0, "{}", pdb.body);
    assert!(
        pdb.body["status"]["disruptedPods"]["web-1"].is_string(),
        "{}",
        pdb.body
    );
    let gone = raw(&fx, "GET", &format!("{pods}/web-1"), None, Vec::new()).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    // A Pending Pod is evicted without consulting the budget.
    create(&fx, pods, running_pod("web-2")).await;
    let r = raw(
        &fx,
        "POST",
        &format!("{pods}/web-2/eviction"),
        Some(JSON),
        eviction("web-2"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    fx.server.shutdown().await;
}

/// `pods/log`: an empty `text/plain` log (no containers run here); an unknown container is a
/// 400 naming it, a missing Pod a 404.
#[tokio::test]
async fn pod_log_is_empty_text() {
    let fx = Fixture::start().await;
    let pods = "/api/v1/namespaces/default/pods";
    create(&fx, pods, running_pod("web-1")).await;
    let r = raw(&fx, "GET", &format!("{pods}/web-1/log"), None, Vec::new()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, Value::String(String::new()));
    assert_eq!(r.headers["content-type"], "text/plain");
    let r = raw(
        &fx,
        "GET",
        &format!("{pods}/web-1/log?container=nope"),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("nope"));
    let r = raw(&fx, "GET", &format!("{pods}/absent/log"), None, Vec::new()).await;
    assert_eq!(r.status, 404, "{}", r.body);
    fx.server.shutdown().await;
}
