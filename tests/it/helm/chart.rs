//! The Helm chart (`charts/svcplane`) through the real Helm 3 and Helm 4 CLIs: `helm lint`,
//! `helm template` with the value sets users pick (defaults, existing-Secret TLS, cert-manager,
//! side-by-side with kube-controller-manager, no node agent, IPVS module loading, ...), the
//! rendered objects read back and checked (kinds, namespaces, labels, RBAC per ServiceAccount,
//! capabilities, probes), bad values refused with the field named, the components started
//! from the rendered command lines to prove the probes reach what they serve, Helm's `lookup`s
//! against the embedded API server, and NOTES.txt. `helm install`, `upgrade`, `rollback` and
//! `uninstall` of the chart into the embedded API server (which serves every kind the chart
//! renders but the prometheus-operator and cert-manager CRDs) are in `super::install`.

use crate::helm::support as helm_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use helm_support::{args_of, flag, str_of, Helm, Rendered, NAMESPACE, RELEASE};
use serde_json::Value;
use svcplane_dataplane::sysctl::{ipvs_sysctls, KernelVersion};
use svcplane_tests::free_port;

/// Value sets of the README's scenarios; each must lint and render with both Helm majors.
const VALUE_SETS: &[(&str, &str)] = &[
    ("defaults", ""),
    (
        "existing-secret TLS",
        r#"
webhook:
  tls:
    source: secret
    secret:
      name: my-webhook-tls
      caBundle: |
        -----BEGIN CERTIFICATE-----
        MIIBszCCAVmgAwIBAgIUT2i0aDVmZSBjZXJ0aWZpY2F0ZSBmb3IgdGVzdHMwCgYI
        -----END CERTIFICATE-----
"#,
    ),
    ("cert-manager", "webhook: {tls: {source: certManager}}"),
    (
        "cert-manager with an issuer",
        "webhook: {tls: {source: certManager, certManager: {issuerRef: {name: corp-ca, kind: ClusterIssuer}}}}",
    ),
    ("side by side", "mode: sideBySide\nnodeAgent: {enabled: false}"),
    (
        "side by side with a dry-run agent",
        "mode: sideBySide\nnodeAgent: {backend: dry-run, healthzPort: 10356, metricsPort: 10349}",
    ),
    ("no node agent", "nodeAgent: {enabled: false}"),
    (
        "IPVS with module loading",
        "nodeAgent: {backend: ipvs, ipvs: {loadKernelModules: true, scheduler: wrr}}",
    ),
    ("nftables", "nodeAgent: {backend: nftables}"),
    (
        "monitoring",
        "metrics: {serviceMonitor: {enabled: true, labels: {release: prom}}, grafanaDashboard: {enabled: true}}",
    ),
    (
        "everything tuned",
        r#"
fullnameOverride: edge
commonLabels: {team: net}
logFormat: text
podListenAddress: "::"
controllerManager:
  controllers: [endpointslice, endpoint]
  managedBy: endpointslice-controller.example.com
  endpointUpdatesBatchPeriod: 500ms
  kubeApiQps: 50
  extraArgs: ["--kubeconfig=/etc/svcplane/kubeconfig"]
  podAntiAffinityPreset: hard
webhook: {failurePolicy: Ignore, excludeNamespaces: [kube-system, kube-public], replicas: 3}
nodeAgent:
  clusterCIDRs: [10.244.0.0/16, fd00:10:244::/56]
  nodePortAddresses: [primary]
  masqueradeAll: true
  metricsBindAddress: 127.0.0.1
image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
"#,
    ),
];

fn render(helm: &Helm, values: &str) -> Rendered {
    helm.template(values).unwrap_or_else(|e| {
        panic!(
            "helm {} template failed: {e}\nvalues:\n{values}",
            helm.major
        )
    })
}

fn kinds(r: &Rendered) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in &r.objects {
        *out.entry(str_of(&o["kind"]).to_string()).or_insert(0) += 1;
    }
    out
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(|v| str_of(v).to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn helm_lint_passes_for_every_value_set_with_helm_3_and_4() {
    for helm in Helm::both() {
        for (name, values) in VALUE_SETS {
            if let Err(e) = helm.lint(values) {
                panic!("helm {} lint --strict fails for {name}: {e}", helm.major);
            }
        }
    }
}

const CLUSTER_SCOPED: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingWebhookConfiguration",
];

#[test]
fn every_object_has_the_release_labels_and_namespaced_ones_the_release_namespace() {
    for helm in Helm::both() {
        for (name, values) in VALUE_SETS {
            for (release, namespace) in [(RELEASE, NAMESPACE), ("edge-lb", "networking")] {
                let r = helm
                    .template_as(release, namespace, values)
                    .unwrap_or_else(|e| panic!("helm {} {name}: {e}", helm.major));
                assert!(!r.objects.is_empty(), "{name}: nothing rendered");
                let mut seen = BTreeSet::new();
                for o in &r.objects {
                    let kind = str_of(&o["kind"]);
                    let id = format!("{kind}/{}", str_of(&o["metadata"]["name"]));
                    assert!(seen.insert(id.clone()), "{name}: {id} rendered twice");
                    let labels = &o["metadata"]["labels"];
                    assert_eq!(labels["app.kubernetes.io/name"], "svcplane", "{name} {id}");
                    assert_eq!(labels["app.kubernetes.io/instance"], release, "{name} {id}");
                    assert_eq!(
                        labels["app.kubernetes.io/managed-by"], "Helm",
                        "{name} {id}"
                    );
                    assert_eq!(labels["helm.sh/chart"], "svcplane-0.1.0", "{name} {id}");
                    let dashboard_elsewhere = kind == "ConfigMap" && values.contains("namespace:");
                    if CLUSTER_SCOPED.contains(&kind) {
                        assert!(o["metadata"]["namespace"].is_null(), "{name} {id}");
                    } else if !dashboard_elsewhere {
                        assert_eq!(o["metadata"]["namespace"], namespace, "{name} {id}");
                    }
                    let name_len = str_of(&o["metadata"]["name"]).len();
                    if kind == "Service" {
                        assert!(name_len <= 63, "{name}: Service {id} is not a DNS label");
                    }
                    if let Some(pod) = o["spec"]["template"].as_object() {
                        let pod_labels = &pod["metadata"]["labels"];
                        for (key, value) in o["spec"]["selector"]["matchLabels"]
                            .as_object()
                            .expect("selector")
                        {
                            assert_eq!(&pod_labels[key], value, "{name} {id}: selector {key}");
                        }
                    }
                }
                if values.contains("commonLabels") {
                    assert!(r
                        .objects
                        .iter()
                        .all(|o| o["metadata"]["labels"]["team"] == "net"));
                }
            }
        }
    }
}

#[test]
fn defaults_install_controller_manager_webhook_and_node_agent() {
    for helm in Helm::both() {
        let r = render(&helm, "");
        let want: BTreeMap<String, usize> = [
            ("ClusterRole", 3),
            ("ClusterRoleBinding", 3),
            ("DaemonSet", 1),
            ("Deployment", 2),
            ("PodDisruptionBudget", 2),
            ("Role", 1),
            ("RoleBinding", 1),
            ("Secret", 1),
            // webhook, and a metrics Service per component
            ("Service", 4),
            ("ServiceAccount", 3),
            ("ValidatingWebhookConfiguration", 1),
        ]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
        assert_eq!(kinds(&r), want, "helm {}: {:?}", helm.major, r.names());
        for (kind, suffix, component) in [
            ("Deployment", "controller-manager", "controller-manager"),
            ("Deployment", "webhook", "webhook"),
            ("DaemonSet", "node-agent", "node-agent"),
        ] {
            let w = r.get(kind, &r.name(suffix));
            assert_eq!(
                w["metadata"]["labels"]["app.kubernetes.io/component"],
                component
            );
            let pod = &w["spec"]["template"]["spec"];
            assert_eq!(pod["serviceAccountName"], r.name(suffix), "{kind} {suffix}");
            assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
            for c in pod["containers"].as_array().unwrap() {
                assert_eq!(
                    c["image"].as_str().unwrap().split(':').nth(1),
                    Some("0.1.0")
                );
                assert!(c["resources"]["requests"]["cpu"].is_string(), "{suffix}");
                assert!(c["resources"]["limits"]["memory"].is_string(), "{suffix}");
                let args = args_of(c);
                assert_eq!(args[0], "--log-format=json");
            }
        }
        let cm = r.get("Deployment", &r.name("controller-manager"));
        assert_eq!(cm["spec"]["replicas"], 2);
        assert_eq!(
            r.get("Deployment", &r.name("webhook"))["spec"]["replicas"],
            2
        );
        for suffix in ["controller-manager", "webhook"] {
            let pdb = r.get("PodDisruptionBudget", &r.name(suffix));
            assert_eq!(pdb["spec"]["maxUnavailable"], 1);
            let pod = &r.get("Deployment", &r.name(suffix))["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{suffix}");
            let c = &pod["containers"][0];
            assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
            assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
            assert_eq!(
                strings(&c["securityContext"]["capabilities"]["drop"]),
                ["ALL"]
            );
            assert!(c["securityContext"]["capabilities"]["add"].is_null());
            assert_eq!(
                pod["affinity"]["podAntiAffinity"]
                    ["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
                    ["topologyKey"],
                "kubernetes.io/hostname"
            );
        }
    }
}

/// kube-controller-manager's flag names (FACTS.md, `kube-controller-manager --help`) and the
/// mode's defaults.
#[test]
fn controller_manager_runs_with_kube_controller_manager_flags_and_leader_election() {
    for helm in Helm::both() {
        let r = render(&helm, "");
        let c = r.container(
            r.get("Deployment", &r.name("controller-manager")),
            "controller-manager",
        );
        let args = args_of(c);
        assert_eq!(args[1], "controller-manager");
        let want = [
            (
                "--controllers",
                "endpointslice,endpointslicemirroring,endpoint,lbipam",
            ),
            ("--load-balancer-class", "svcplane.io/lb"),
            ("--lb-ipam-default-class", "false"),
            ("--lb-ipam-leader-elect-resource-name", "svcplane-lb-ipam"),
            ("--managed-by", "endpointslice-controller.k8s.io"),
            ("--concurrent-service-endpoint-syncs", "5"),
            ("--mirroring-concurrent-service-endpoint-syncs", "5"),
            ("--concurrent-endpoint-syncs", "5"),
            ("--endpointslice-updates-batch-period", "0s"),
            ("--mirroring-endpointslice-updates-batch-period", "0s"),
            ("--endpoint-updates-batch-period", "0s"),
            ("--max-endpoints-per-slice", "100"),
            ("--kube-api-qps", "20"),
            ("--kube-api-burst", "30"),
            ("--leader-elect", "true"),
            ("--leader-elect-resource-namespace", NAMESPACE),
            (
                "--leader-elect-resource-name",
                "svcplane-controller-manager",
            ),
            ("--leader-elect-lease-duration", "15s"),
            ("--leader-elect-renew-deadline", "10s"),
            ("--leader-elect-retry-period", "2s"),
            ("--metrics-addr", "0.0.0.0:10257"),
        ];
        for (name, value) in want {
            assert_eq!(
                flag(&args, name),
                Some(value),
                "helm {}: {name} in {args:?}",
                helm.major
            );
        }
        assert_eq!(args.len(), want.len() + 2, "no other flag: {args:?}");

        let tuned = render(
            &helm,
            VALUE_SETS
                .iter()
                .find(|(n, _)| *n == "everything tuned")
                .unwrap()
                .1,
        );
        let c = tuned.container(
            tuned.get("Deployment", "edge-controller-manager"),
            "controller-manager",
        );
        let args = args_of(c);
        assert_eq!(flag(&args, "--controllers"), Some("endpointslice,endpoint"));
        assert_eq!(
            flag(&args, "--managed-by"),
            Some("endpointslice-controller.example.com")
        );
        assert_eq!(
            flag(&args, "--endpoint-updates-batch-period"),
            Some("500ms")
        );
        assert_eq!(flag(&args, "--metrics-addr"), Some("[::]:10257"));
        assert_eq!(
            args.last().unwrap(),
            "--kubeconfig=/etc/svcplane/kubeconfig"
        );
        assert_eq!(args[0], "--log-format=text");
        assert!(c["image"]
            .as_str()
            .unwrap()
            .ends_with("@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    }
}

/// The grants of the default install, per ServiceAccount. Controller manager: the informers
/// of `controllers/src/manager.rs` (list/watch), the writes of `reconciler.rs` (EndpointSlices
/// and Endpoints), `recorder.rs` (create Events), `leader_election.rs` (its own
/// Lease), and the finalizer updates OwnerReferencesPermissionEnforcement asks for
/// (upstream's `controller_policy.go` grants the same). Node agent: the watches of
/// `dataplane/src/source.rs`. The lbipam controller (`controllers/src/lb_ipam`): pools and
/// Namespaces watched, Service and pool status patched, its own Lease. Webhook: the pool
/// watch of `src/pool_watch.rs`.
const CONTROLLER_MANAGER_GRANTS: &[&str] = &[
    "list services",
    "watch services",
    "list pods",
    "watch pods",
    "list nodes",
    "watch nodes",
    "list endpoints",
    "watch endpoints",
    "create endpoints",
    "update endpoints",
    "delete endpoints",
    "list endpointslices.discovery.k8s.io",
    "watch endpointslices.discovery.k8s.io",
    "create endpointslices.discovery.k8s.io",
    "update endpointslices.discovery.k8s.io",
    "delete endpointslices.discovery.k8s.io",
    "update services/finalizers",
    "update endpoints/finalizers",
    "list loadbalancerippools.svcplane.io",
    "watch loadbalancerippools.svcplane.io",
    "patch loadbalancerippools.svcplane.io/status",
    "list namespaces",
    "watch namespaces",
    "patch services/status",
    "create events",
    "svcplane: create leases.coordination.k8s.io",
    "svcplane: get leases.coordination.k8s.io/svcplane-controller-manager",
    "svcplane: update leases.coordination.k8s.io/svcplane-controller-manager",
    "svcplane: get leases.coordination.k8s.io/svcplane-lb-ipam",
    "svcplane: update leases.coordination.k8s.io/svcplane-lb-ipam",
];

const WEBHOOK_GRANTS: &[&str] = &[
    "list loadbalancerippools.svcplane.io",
    "watch loadbalancerippools.svcplane.io",
];

const NODE_AGENT_GRANTS: &[&str] = &[
    "list services",
    "watch services",
    "list nodes",
    "watch nodes",
    "list endpointslices.discovery.k8s.io",
    "watch endpointslices.discovery.k8s.io",
];

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn rbac_grants_each_component_exactly_what_it_calls() {
    for helm in Helm::both() {
        let r = render(&helm, "");
        let grants = r.grants();
        let want: BTreeMap<String, BTreeSet<String>> = [
            (
                format!("{NAMESPACE}/t-svcplane-controller-manager"),
                set(CONTROLLER_MANAGER_GRANTS),
            ),
            (
                format!("{NAMESPACE}/t-svcplane-node-agent"),
                set(NODE_AGENT_GRANTS),
            ),
            (
                format!("{NAMESPACE}/t-svcplane-webhook"),
                set(WEBHOOK_GRANTS),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(grants, want, "helm {}", helm.major);
        // No wildcard anywhere.
        for role in r
            .of_kind("ClusterRole")
            .into_iter()
            .chain(r.of_kind("Role"))
        {
            assert!(!role.to_string().contains("\"*\""), "{role}");
        }
    }
}

/// RBAC follows the controllers that run: a controller that is off gets nothing.
#[test]
fn rbac_shrinks_with_the_enabled_controllers_and_options() {
    let cm = |r: &Rendered| {
        r.grants()
            .remove(&format!("{}/{}", r.namespace, r.name("controller-manager")))
            .unwrap_or_default()
    };
    let helm = Helm::major(3);
    let only = |values: &str| cm(&render(&helm, values));
    let lease = [
        "svcplane: create leases.coordination.k8s.io",
        "svcplane: get leases.coordination.k8s.io/svcplane-controller-manager",
        "svcplane: update leases.coordination.k8s.io/svcplane-controller-manager",
    ];
    let with_lease = |items: &[&str]| {
        let mut s = set(items);
        s.extend(lease.iter().map(|l| l.to_string()));
        s
    };
    assert_eq!(
        only("controllerManager: {controllers: [endpointslice]}"),
        with_lease(&[
            "list services",
            "watch services",
            "list pods",
            "watch pods",
            "list nodes",
            "watch nodes",
            "list endpointslices.discovery.k8s.io",
            "watch endpointslices.discovery.k8s.io",
            "create endpointslices.discovery.k8s.io",
            "update endpointslices.discovery.k8s.io",
            "delete endpointslices.discovery.k8s.io",
            "update services/finalizers",
            "create events",
        ])
    );
    assert_eq!(
        only("controllerManager: {controllers: [endpointslicemirroring]}"),
        with_lease(&[
            "list services",
            "watch services",
            "list endpoints",
            "watch endpoints",
            "list endpointslices.discovery.k8s.io",
            "watch endpointslices.discovery.k8s.io",
            "create endpointslices.discovery.k8s.io",
            "update endpointslices.discovery.k8s.io",
            "delete endpointslices.discovery.k8s.io",
            "update endpoints/finalizers",
            "create events",
        ])
    );
    assert_eq!(
        only("controllerManager: {controllers: [endpoint], ownerReferencesPermissionEnforcement: false}"),
        with_lease(&[
            "list services", "watch services", "list pods", "watch pods", "list endpoints",
            "watch endpoints", "create endpoints", "update endpoints", "delete endpoints",
            "create events",
        ])
    );
    let no_election = only("controllerManager: {replicas: 1, leaderElection: {enabled: false}}");
    assert!(
        no_election.iter().all(|g| !g.contains("leases")),
        "{no_election:?}"
    );
    let r = render(
        &helm,
        "controllerManager: {replicas: 1, leaderElection: {enabled: false}}",
    );
    assert!(r.of_kind("Role").is_empty() && r.of_kind("RoleBinding").is_empty());
    let renamed = only("controllerManager: {leaderElection: {leaseName: cm-lock}}");
    assert!(renamed.contains("svcplane: update leases.coordination.k8s.io/cm-lock"));
    let mut lbipam = with_lease(&[
        "list services",
        "watch services",
        "list loadbalancerippools.svcplane.io",
        "watch loadbalancerippools.svcplane.io",
        "patch loadbalancerippools.svcplane.io/status",
        "list namespaces",
        "watch namespaces",
        "patch services/status",
        "create events",
        "svcplane: get leases.coordination.k8s.io/svcplane-lb-ipam",
        "svcplane: update leases.coordination.k8s.io/svcplane-lb-ipam",
    ]);
    assert_eq!(only("controllerManager: {controllers: [lbipam]}"), lbipam);
    lbipam.retain(|g| !g.contains("svcplane-lb-ipam"));
    lbipam.insert("svcplane: get leases.coordination.k8s.io/pools-lock".into());
    lbipam.insert("svcplane: update leases.coordination.k8s.io/pools-lock".into());
    assert_eq!(
        only("controllerManager: {controllers: [lbipam], leaderElection: {lbIpamLeaseName: pools-lock}}"),
        lbipam
    );
}

/// The webhook's only API calls are its pool watch (`--check-pool-overlaps`); it reviews pools
/// through a second, cluster-scoped registration.
#[test]
fn webhook_watches_only_pools_and_reviews_them() {
    for helm in Helm::both() {
        let r = render(&helm, "");
        let account = format!("{NAMESPACE}/{}", r.name("webhook"));
        assert_eq!(r.grants()[&account], set(WEBHOOK_GRANTS));
        let deployment = r.get("Deployment", &r.name("webhook"));
        assert_eq!(
            deployment["spec"]["template"]["spec"]["automountServiceAccountToken"],
            true
        );
        let args = args_of(r.container(deployment, "webhook"));
        assert!(
            args.iter().any(|a| a == "--check-pool-overlaps"),
            "{args:?}"
        );
        let registration = r.get("ValidatingWebhookConfiguration", &r.name("webhook"));
        let pools = registration["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| str_of(&w["name"]) == "pools.validate.svcplane.dev")
            .expect("a registration for pools");
        assert_eq!(pools["rules"][0]["apiGroups"][0], "svcplane.io");
        assert_eq!(pools["rules"][0]["resources"][0], "loadbalancerippools");
        assert_eq!(pools["rules"][0]["scope"], "Cluster");
    }
}

/// kube-proxy's placement: host network, every node, the node name from the downward API; only
/// NET_ADMIN in the long-running container (netlink is all it talks to the kernel through).
#[test]
fn node_agent_runs_on_every_node_in_the_host_network_with_net_admin_only() {
    for helm in Helm::both() {
        let r = render(&helm, "");
        let ds = r.get("DaemonSet", &r.name("node-agent"));
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(pod["hostNetwork"], true);
        assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
        assert_eq!(pod["priorityClassName"], "system-node-critical");
        assert_eq!(
            pod["tolerations"],
            serde_json::json!([{"operator": "Exists"}])
        );
        assert!(
            pod["volumes"].is_null(),
            "no host path without module loading"
        );
        let c = r.container(ds, "node-agent");
        let args = args_of(c);
        assert_eq!(args[1], "node-agent");
        assert_eq!(flag(&args, "--backend"), Some("auto"));
        assert_eq!(flag(&args, "--node-name"), Some("$(NODE_NAME)"));
        assert_eq!(flag(&args, "--healthz-bind-address"), Some("0.0.0.0:10256"));
        assert_eq!(flag(&args, "--metrics-bind-address"), Some("0.0.0.0:10249"));
        assert_eq!(c["env"][0]["name"], "NODE_NAME");
        assert_eq!(
            c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "spec.nodeName"
        );
        let sc = &c["securityContext"];
        assert_eq!(strings(&sc["capabilities"]["add"]), ["NET_ADMIN"]);
        assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert!(sc["privileged"].is_null() || sc["privileged"] == false);
        assert!(c["volumeMounts"].is_null());
        // Backend auto may pick IPVS: the privileged preparation runs first, nothing else.
        let init: Vec<&str> = pod["initContainers"]
            .as_array()
            .expect("init containers")
            .iter()
            .map(|c| str_of(&c["name"]))
            .collect();
        assert_eq!(init, ["prepare-ipvs"]);
        let prepare = r.container(ds, "prepare-ipvs");
        assert_eq!(prepare["securityContext"]["privileged"], true);
        assert!(prepare["volumeMounts"].is_null());
        assert_eq!(
            ds["spec"]["updateStrategy"],
            serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
        );
    }
}

#[test]
fn loading_ipvs_modules_gives_sys_module_to_one_init_container_only() {
    for helm in Helm::both() {
        let r = render(
            &helm,
            "nodeAgent: {backend: ipvs, ipvs: {loadKernelModules: true}}",
        );
        let ds = r.get("DaemonSet", &r.name("node-agent"));
        let pod = &ds["spec"]["template"]["spec"];
        let init: Vec<&str> = pod["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| str_of(&c["name"]))
            .collect();
        assert_eq!(init, ["load-kernel-modules", "prepare-ipvs"]);
        let loader = r.container(ds, "load-kernel-modules");
        assert_eq!(
            strings(&loader["securityContext"]["capabilities"]["add"]),
            ["SYS_MODULE"]
        );
        assert_eq!(
            strings(&loader["securityContext"]["capabilities"]["drop"]),
            ["ALL"]
        );
        assert!(loader["securityContext"]["privileged"].is_null());
        assert_eq!(
            loader["volumeMounts"],
            serde_json::json!([{"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true}])
        );
        let command = strings(&loader["command"]);
        assert_eq!(command[..2], ["sh", "-c"]);
        assert_eq!(
            command[4..],
            ["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"]
        );
        assert_eq!(pod["volumes"][0]["hostPath"]["path"], "/lib/modules");
        let agent = r.container(ds, "node-agent");
        assert_eq!(
            strings(&agent["securityContext"]["capabilities"]["add"]),
            ["NET_ADMIN"]
        );
        assert!(agent["volumeMounts"].is_null());
        assert_eq!(flag(&args_of(agent), "--backend"), Some("ipvs"));
    }
}

#[test]
fn nftables_and_dry_run_backends_need_no_host_preparation() {
    let helm = Helm::major(4);
    for values in [
        "nodeAgent: {backend: nftables, ipvs: {loadKernelModules: true}}",
        "nodeAgent: {backend: dry-run}",
        "nodeAgent: {ipvs: {prepareHost: false}}",
    ] {
        let r = render(&helm, values);
        let ds = r.get("DaemonSet", &r.name("node-agent"));
        let pod = &ds["spec"]["template"]["spec"];
        assert!(pod["initContainers"].is_null(), "{values}");
        assert!(pod["volumes"].is_null(), "{values}");
    }
}

/// The IPVS preparation script writes exactly what the IPVS backend would ensure
/// (`ipvs_sysctls`, kube-proxy's NewProxier) for each kernel, run as rendered.
#[test]
fn prepare_ipvs_sets_the_sysctls_the_ipvs_backend_ensures() {
    let r = render(&Helm::major(3), "");
    let prepare = r.container(r.get("DaemonSet", &r.name("node-agent")), "prepare-ipvs");
    let command = strings(&prepare["command"]);
    assert_eq!(command[..2], ["sh", "-c"]);
    let script = &command[2];
    let initial: &[(&str, &str)] = &[
        ("net/ipv4/vs/conntrack", "0"),
        ("net/ipv4/vs/conn_reuse_mode", "1"),
        ("net/ipv4/vs/expire_nodest_conn", "0"),
        ("net/ipv4/vs/expire_quiescent_template", "0"),
        ("net/ipv4/ip_forward", "0"),
    ];
    for release in [
        "3.10.0-1160.el7.x86_64",
        "4.0.9",
        "4.1.0",
        "4.19.0-26-amd64",
        "5.4.0-150-generic",
        "5.8.18",
        "5.9.0",
        "6.1.0-28-amd64",
        "6.12.9+bpo-amd64",
    ] {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in initial {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{value}\n")).unwrap();
        }
        let out = Command::new("sh")
            .args(["-c", script])
            .env("SYSCTL_ROOT", dir.path())
            .env("KERNEL_RELEASE", release)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{release}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut want: BTreeMap<String, String> = initial
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let kernel = KernelVersion::parse(release).expect("parses");
        for setting in ipvs_sysctls(kernel) {
            want.insert(setting.name.to_string(), setting.value.to_string());
        }
        let got: BTreeMap<String, String> = initial
            .iter()
            .map(|(n, _)| {
                let text = std::fs::read_to_string(dir.path().join(n)).unwrap();
                (n.to_string(), text.trim().to_string())
            })
            .collect();
        assert_eq!(got, want, "kernel {release}");
    }
    // A kernel without IPVS: nothing written, success (backend auto then picks nftables).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("net/ipv4")).unwrap();
    std::fs::write(dir.path().join("net/ipv4/ip_forward"), "0\n").unwrap();
    let out = Command::new("sh")
        .args(["-c", script])
        .env("SYSCTL_ROOT", dir.path())
        .env("KERNEL_RELEASE", "6.1.0")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no IPVS"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("net/ipv4/ip_forward")).unwrap(),
        "0\n"
    );
}

fn pem_of(b64: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(str_of(b64))
            .expect("base64"),
    )
    .expect("PEM text")
}

#[test]
fn generated_tls_puts_one_ca_in_the_secret_and_the_registration() {
    for helm in Helm::both() {
        let r = render(&helm, "");
        let secret = r.get("Secret", "t-svcplane-webhook-tls");
        assert_eq!(secret["type"], "kubernetes.io/tls");
        let vwc = r.get("ValidatingWebhookConfiguration", "t-svcplane-webhook");
        let hook = &vwc["webhooks"][0];
        assert_eq!(hook["clientConfig"]["caBundle"], secret["data"]["ca.crt"]);
        assert!(pem_of(&secret["data"]["ca.crt"]).starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pem_of(&secret["data"]["tls.key"]).contains("PRIVATE KEY-----"));
        assert_eq!(
            hook["clientConfig"]["service"],
            serde_json::json!({"name": "t-svcplane-webhook", "namespace": NAMESPACE, "path": "/validate", "port": 443})
        );
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"]);
        // Services, Endpoints and EndpointSlices, on CREATE and UPDATE (what svcplane dev
        // registers and webhook/src/admission.rs reviews).
        let rules: BTreeSet<(String, String, String)> = hook["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| {
                let groups = strings(&rule["apiGroups"]);
                let resources = strings(&rule["resources"]);
                let ops = strings(&rule["operations"]);
                groups.into_iter().flat_map(move |g| {
                    let ops = ops.clone();
                    resources.clone().into_iter().flat_map(move |res| {
                        let g = g.clone();
                        ops.clone()
                            .into_iter()
                            .map(move |op| (g.clone(), res.clone(), op))
                    })
                })
            })
            .collect();
        let want: BTreeSet<(String, String, String)> = [
            ("", "services"),
            ("", "endpoints"),
            ("discovery.k8s.io", "endpointslices"),
        ]
        .into_iter()
        .flat_map(|(g, res)| {
            ["CREATE", "UPDATE"].map(|op| (g.to_string(), res.to_string(), op.to_string()))
        })
        .collect();
        assert_eq!(rules, want);
        // The release namespace is never reviewed (the webhook's own slices), nor kube-system.
        assert_eq!(
            hook["namespaceSelector"]["matchExpressions"][0],
            serde_json::json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE, "kube-system"]})
        );
        let volume =
            &r.get("Deployment", "t-svcplane-webhook")["spec"]["template"]["spec"]["volumes"][0];
        assert_eq!(volume["secret"]["secretName"], "t-svcplane-webhook-tls");
    }
}

#[test]
fn existing_secret_tls_mounts_that_secret_and_registers_its_ca() {
    for helm in Helm::both() {
        let values = VALUE_SETS
            .iter()
            .find(|(n, _)| *n == "existing-secret TLS")
            .unwrap()
            .1;
        let r = render(&helm, values);
        assert!(r.of_kind("Secret").is_empty());
        assert!(r.of_kind("Certificate").is_empty());
        let hook = &r.get("ValidatingWebhookConfiguration", "t-svcplane-webhook")["webhooks"][0];
        assert!(
            pem_of(&hook["clientConfig"]["caBundle"]).contains("MIIBszCCAVmgAwIBAgIUT2i0aDVmZSBj")
        );
        let pod = &r.get("Deployment", "t-svcplane-webhook")["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"][0]["secret"]["secretName"], "my-webhook-tls");
    }
}

#[test]
fn cert_manager_tls_issues_a_certificate_and_injects_its_ca() {
    for helm in Helm::both() {
        let r = render(&helm, "webhook: {tls: {source: certManager}}");
        assert!(r.of_kind("Secret").is_empty());
        let issuer = r.get("Issuer", "t-svcplane-webhook-selfsigned");
        assert_eq!(issuer["apiVersion"], "cert-manager.io/v1");
        assert_eq!(issuer["spec"], serde_json::json!({"selfSigned": {}}));
        let cert = r.get("Certificate", "t-svcplane-webhook");
        assert_eq!(cert["spec"]["secretName"], "t-svcplane-webhook-tls");
        assert_eq!(
            cert["spec"]["issuerRef"]["name"],
            "t-svcplane-webhook-selfsigned"
        );
        assert_eq!(cert["spec"]["issuerRef"]["kind"], "Issuer");
        assert!(strings(&cert["spec"]["dnsNames"])
            .contains(&format!("t-svcplane-webhook.{NAMESPACE}.svc")));
        let vwc = r.get("ValidatingWebhookConfiguration", "t-svcplane-webhook");
        assert_eq!(
            vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{NAMESPACE}/t-svcplane-webhook")
        );
        assert!(vwc["webhooks"][0]["clientConfig"]["caBundle"].is_null());

        let values = VALUE_SETS
            .iter()
            .find(|(n, _)| *n == "cert-manager with an issuer")
            .unwrap()
            .1;
        let r = render(&helm, values);
        assert!(r.of_kind("Issuer").is_empty());
        let cert = r.get("Certificate", "t-svcplane-webhook");
        assert_eq!(
            cert["spec"]["issuerRef"],
            serde_json::json!({"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        );
    }
}

/// Next to kube-controller-manager: only the EndpointSlice controller, under its own
/// managed-by value, so both controllers' slices of one Service can be compared (and lbipam,
/// which writes only Services of its own class).
#[test]
fn side_by_side_runs_only_the_endpointslice_controller_under_its_own_managed_by() {
    for helm in Helm::both() {
        let r = render(&helm, "mode: sideBySide\nnodeAgent: {enabled: false}");
        let args = args_of(r.container(
            r.get("Deployment", &r.name("controller-manager")),
            "controller-manager",
        ));
        assert_eq!(flag(&args, "--controllers"), Some("endpointslice,lbipam"));
        assert_eq!(
            flag(&args, "--managed-by"),
            Some("endpointslice-controller.svcplane.dev")
        );
        assert!(r.of_kind("DaemonSet").is_empty());
        let grants = &r.grants()[&format!("{NAMESPACE}/t-svcplane-controller-manager")];
        let resource = |g: &String| g.split(' ').nth(1).unwrap_or("").to_string();
        assert!(
            !grants
                .iter()
                .any(|g| resource(g) == "endpoints" || resource(g).starts_with("endpoints/")),
            "no Endpoints access without the Endpoints and mirroring controllers: {grants:?}"
        );
        let r = render(
            &helm,
            "mode: sideBySide\ncontrollerManager: {managedBy: ours.example.com}\nnodeAgent: {backend: dry-run, healthzPort: 10356, metricsPort: 10349}",
        );
        let args = args_of(r.container(
            r.get("Deployment", &r.name("controller-manager")),
            "controller-manager",
        ));
        assert_eq!(flag(&args, "--managed-by"), Some("ours.example.com"));
        let agent = args_of(r.container(r.get("DaemonSet", &r.name("node-agent")), "node-agent"));
        assert_eq!(flag(&agent, "--backend"), Some("dry-run"));
        assert_eq!(
            flag(&agent, "--healthz-bind-address"),
            Some("0.0.0.0:10356")
        );
    }
}

#[test]
fn components_can_be_left_out() {
    for helm in Helm::both() {
        let r = render(&helm, "nodeAgent: {enabled: false}");
        assert!(r.of_kind("DaemonSet").is_empty());
        assert!(
            !r.names().iter().any(|n| n.contains("node-agent")),
            "{:?}",
            r.names()
        );
        let r = render(
            &helm,
            "webhook: {enabled: false}\ncontrollerManager: {enabled: false}",
        );
        assert_eq!(
            r.names(),
            [
                "ClusterRole/t-svcplane-node-agent",
                "ClusterRoleBinding/t-svcplane-node-agent",
                "DaemonSet/t-svcplane-node-agent",
                "Service/t-svcplane-node-agent-metrics",
                "ServiceAccount/t-svcplane-node-agent",
            ]
        );
    }
}

/// Every probe names a container port, that port is the one the component's own flag binds,
/// and the path is one the component serves (checked by running it, below).
#[test]
fn probes_use_ports_the_components_bind() {
    for helm in Helm::both() {
        for (name, values) in VALUE_SETS {
            let r = render(&helm, values);
            for w in r
                .of_kind("Deployment")
                .into_iter()
                .chain(r.of_kind("DaemonSet"))
            {
                for c in w["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .unwrap()
                {
                    let args = args_of(c);
                    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                        let http = &c[probe]["httpGet"];
                        if http.is_null() {
                            assert_ne!(probe, "livenessProbe", "{name}: {} has none", c["name"]);
                            assert_ne!(probe, "readinessProbe", "{name}: {} has none", c["name"]);
                            continue;
                        }
                        let port = probe_port(c, &http["port"]);
                        assert!(
                            bound_ports(&args).contains(&port),
                            "{name}: {} {probe} on port {port}, which no flag binds: {args:?}",
                            c["name"]
                        );
                    }
                }
            }
        }
    }
}

/// A probe's port number (named ports resolved through the container's ports).
fn probe_port(container: &Value, port: &Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return n as u16;
    }
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == *port)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("port {port} is not a port of {}", container["name"])) as u16
}

/// Flags that bind a listener, per component.
const BIND_FLAGS: &[&str] = &[
    "--metrics-addr",
    "--listen",
    "--metrics-listen",
    "--healthz-bind-address",
    "--metrics-bind-address",
];

fn bound_ports(args: &[String]) -> BTreeSet<u16> {
    BIND_FLAGS
        .iter()
        .filter_map(|f| flag(args, f))
        .map(|addr| addr.parse::<SocketAddr>().expect("HOST:PORT").port())
        .collect()
}

#[test]
fn monitoring_objects_are_optional_and_select_the_metrics_services() {
    for helm in Helm::both() {
        let r = render(&helm, "");
        assert!(r.of_kind("ServiceMonitor").is_empty() && r.of_kind("ConfigMap").is_empty());
        let r = render(
            &helm,
            VALUE_SETS
                .iter()
                .find(|(n, _)| *n == "monitoring")
                .unwrap()
                .1,
        );
        let sm = r.get("ServiceMonitor", "t-svcplane");
        assert_eq!(sm["metadata"]["labels"]["release"], "prom");
        let selector = sm["spec"]["selector"]["matchLabels"].as_object().unwrap();
        let selected: Vec<String> = r
            .of_kind("Service")
            .into_iter()
            .filter(|s| {
                selector
                    .iter()
                    .all(|(k, v)| &s["metadata"]["labels"][k] == v)
            })
            .map(|s| str_of(&s["metadata"]["name"]).to_string())
            .collect();
        assert_eq!(
            selected,
            [
                "t-svcplane-controller-manager-metrics",
                "t-svcplane-node-agent-metrics",
                "t-svcplane-webhook-metrics"
            ]
        );
        for name in &selected {
            let svc = r.get("Service", name);
            assert_eq!(svc["spec"]["ports"][0]["name"], "metrics");
        }
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
        let dashboard = r.get("ConfigMap", "t-svcplane-dashboard");
        assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
        let json: Value = serde_json::from_str(str_of(&dashboard["data"]["svcplane.json"]))
            .expect("the dashboard is JSON");
        assert_eq!(json["uid"], "svcplane");
    }
}

/// Every `svcplane_*` series the dashboard queries is registered by one of the components
/// (histograms through their `_bucket` series).
#[test]
fn dashboard_queries_only_metrics_the_components_export() {
    let r = render(
        &Helm::major(3),
        "metrics: {grafanaDashboard: {enabled: true}}",
    );
    let json: Value = serde_json::from_str(str_of(
        &r.get("ConfigMap", "t-svcplane-dashboard")["data"]["svcplane.json"],
    ))
    .unwrap();
    let sources = exported_metric_names();
    let mut used = BTreeSet::new();
    let mut panels = 0;
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            panels += 1;
            let expr = str_of(&target["expr"]);
            for name in metric_names_in(expr) {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| sources.contains(*b)))
                    .unwrap_or(&name)
                    .to_string();
                assert!(
                    sources.contains(&base),
                    "{name} in {expr:?} is not a metric of svcplane"
                );
                used.insert(base);
            }
        }
    }
    assert!(panels >= 15, "{panels} queries");
    // Every component appears.
    for prefix in [
        "svcplane_controller_",
        "svcplane_webhook_",
        "svcplane_proxy_",
        "svcplane_leader_election_",
    ] {
        assert!(
            used.iter().any(|n| n.starts_with(prefix)),
            "no {prefix}* panel"
        );
    }
}

fn metric_names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("svcplane_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The metric names registered in the component crates: string literals `"svcplane_..."` in
/// their metrics modules.
fn exported_metric_names() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = BTreeSet::new();
    for file in [
        "controllers/src/metrics.rs",
        "webhook/src/metrics.rs",
        "dataplane/src/metrics.rs",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect("metrics source");
        for (start, _) in text.match_indices("\"svcplane_") {
            let literal = &text[start + 1..];
            let Some(end) = literal.find('"') else {
                continue;
            };
            let name = &literal[..end];
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(name.to_string());
            }
        }
    }
    assert!(out.len() > 20, "found only {out:?}");
    out
}

/// Bad values stop `helm template` (and so `helm install`) with a message naming the field.
#[test]
fn bad_values_are_refused_naming_the_field() {
    let rows: &[(&str, &str)] = &[
        ("mode: replaceAll", "mode"),
        ("controlerManager: {replicas: 3}", "controlerManager"),
        ("controllerManager: {replicas: 0}", "controllerManager.replicas"),
        ("controllerManager: {controllers: [endpoints]}", "controllerManager.controllers"),
        ("controllerManager: {managedBy: controller}", "controllerManager.managedBy"),
        ("controllerManager: {managedBy: svcplane.io/endpointslice}", "controllerManager.managedBy"),
        ("controllerManager: {endpointUpdatesBatchPeriod: 5 minutes}", "controllerManager.endpointUpdatesBatchPeriod"),
        ("controllerManager: {maxEndpointsPerSlice: 5000}", "controllerManager.maxEndpointsPerSlice"),
        ("controllerManager: {leaderElection: {enabled: false}}", "controllerManager.leaderElection.enabled"),
        ("controllerManager: {leaderElection: {leaseDuration: 15}}", "controllerManager.leaderElection.leaseDuration"),
        ("webhook: {failurePolicy: Sometimes}", "webhook.failurePolicy"),
        ("webhook: {timeoutSeconds: 60}", "webhook.timeoutSeconds"),
        ("webhook: {tls: {source: vault}}", "webhook.tls.source"),
        ("webhook: {tls: {source: secret}}", "webhook.tls.secret.name"),
        ("webhook: {tls: {source: secret, secret: {name: mine}}}", "webhook.tls.secret.caBundle"),
        ("webhook: {requestTimeout: 1.5s}", "webhook.requestTimeout"),
        ("nodeAgent: {backend: iptables}", "nodeAgent.backend"),
        ("nodeAgent: {ipvs: {scheduler: fastest}}", "nodeAgent.ipvs.scheduler"),
        ("nodeAgent: {clusterCIDRs: [10.244.0.0]}", "nodeAgent.clusterCIDRs"),
        ("nodeAgent: {metricsBindAddress: localhost}", "nodeAgent.metricsBindAddress"),
        ("mode: sideBySide", "nodeAgent.enabled"),
        ("mode: sideBySide\nnodeAgent: {enabled: false}\ncontrollerManager: {controllers: [endpointslice, endpoint]}", "controllerManager.controllers"),
        ("mode: sideBySide\nnodeAgent: {enabled: false}\ncontrollerManager: {managedBy: endpointslice-controller.k8s.io}", "controllerManager.managedBy"),
        ("mode: sideBySide\nnodeAgent: {backend: dry-run}", "nodeAgent.healthzPort"),
        ("metrics: {service: {enabled: false}, serviceMonitor: {enabled: true}}", "metrics.serviceMonitor.enabled"),
        ("fullnameOverride: a-name-much-too-long-for-every-service-name", "fullnameOverride"),
        ("image: {digest: latest}", "image.digest"),
    ];
    for helm in Helm::both() {
        for (values, field) in rows {
            let err = match helm.template(values) {
                Ok(r) => panic!(
                    "helm {}: {values:?} was accepted: {:?}",
                    helm.major,
                    r.names()
                ),
                Err(e) => e,
            };
            let slashed = format!("/{}", field.replace('.', "/"));
            assert!(
                err.contains(field) || err.contains(&slashed),
                "helm {}: the error for {values:?} does not name {field}: {err}",
                helm.major
            );
        }
    }
}

/// Every field of values.yaml has a description in values.schema.json and a row in the
/// chart README's values table.
#[test]
fn every_value_is_described_in_the_schema_and_the_readme() {
    let dir = helm_support::chart_dir();
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("values.schema.json")).unwrap())
            .unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut leaves = Vec::new();
    collect_leaves(&values, "", &mut leaves);
    assert!(leaves.len() > 80, "{leaves:?}");
    for path in &leaves {
        let mut node = &schema;
        for part in path.split('.') {
            node = &node["properties"][part];
        }
        assert!(
            node["description"].as_str().is_some_and(|d| !d.is_empty()),
            "values.schema.json has no description of {path}"
        );
        assert!(
            readme.contains(&format!("| `{path}` |")),
            "charts/svcplane/README.md has no row for {path}"
        );
    }
}

/// Paths of values.yaml's fields: maps are walked, except empty ones and Kubernetes objects
/// passed through (resources, securityContext, affinity, ...), which are one field each.
fn collect_leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
    const OPAQUE: &[&str] = &[
        "resources",
        "podSecurityContext",
        "securityContext",
        "nodeSelector",
        "affinity",
        "labels",
        "podAnnotations",
        "podLabels",
        "annotations",
        "commonLabels",
        "objectSelector",
        "issuerRef",
    ];
    match value.as_object() {
        Some(map)
            if !map.is_empty()
                && !OPAQUE
                    .iter()
                    .any(|o| prefix.ends_with(&format!(".{o}")) || prefix == *o) =>
        {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect_leaves(child, &path, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// A running child process, killed when dropped.
struct Running {
    name: &'static str,
    child: Child,
}

impl Running {
    fn start(name: &'static str, binary: &Path, args: &[String], env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        Running { name, child }
    }

    /// Panics with the process' stderr when it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut stderr) = self.child.stderr.take() {
                use std::io::Read as _;
                let _ = stderr.read_to_string(&mut err);
            }
            panic!(
                "{} exited ({status}) with the chart's command line: {err}",
                self.name
            );
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The container's args made runnable here: every bind flag moved to 127.0.0.1 on a free
/// port (returned as chart port -> local port), `$(VAR)` references expanded from `env`, and
/// `extra` appended.
fn localize(
    args: &[String],
    env: &[(&str, &str)],
    extra: &[String],
) -> (Vec<String>, BTreeMap<u16, u16>) {
    let mut ports = BTreeMap::new();
    let mut out = Vec::new();
    for arg in args {
        let mut arg = arg.clone();
        for (k, v) in env {
            arg = arg.replace(&format!("$({k})"), v);
        }
        if let Some((name, addr)) = arg.split_once('=').filter(|(n, _)| BIND_FLAGS.contains(n)) {
            let chart_port = addr.parse::<SocketAddr>().expect("HOST:PORT").port();
            let local = *ports.entry(chart_port).or_insert_with(free_port);
            arg = format!("{name}=127.0.0.1:{local}");
        }
        out.push(arg);
    }
    out.extend(extra.iter().cloned());
    (out, ports)
}

/// Polls each probe of the container (at its local port) until it answers 200.
async fn probes_answer(
    running: &mut Running,
    container: &Value,
    ports: &BTreeMap<u16, u16>,
    client: &reqwest::Client,
    host: &str,
) {
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let http = &container[probe]["httpGet"];
        if http.is_null() {
            continue;
        }
        let chart_port = probe_port(container, &http["port"]);
        let local = ports[&chart_port];
        let scheme = http["scheme"].as_str().unwrap_or("HTTP").to_lowercase();
        let url = format!("{scheme}://{host}:{local}{}", str_of(&http["path"]));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            running.assert_running();
            let last = match client.get(&url).send().await {
                Ok(resp) if resp.status() == 200 => break,
                Ok(resp) => format!("HTTP {}", resp.status()),
                Err(e) => format!("{e:?}"),
            };
            assert!(
                Instant::now() < deadline,
                "{} {probe} {url}: {last}",
                running.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The binary, the rendered objects and an embedded API server (with the release namespace
/// and one Node) for the tests that run the rendered command lines.
async fn run_setup() -> (
    std::path::PathBuf,
    Rendered,
    svcplane_tests::Fixture,
    String,
) {
    use k8s_openapi::api::core::v1::{Namespace, Node};
    use kube::api::{Api, PostParams};
    let binary = svcplane_tests::vm::workspace_binary("svcplane");
    let r = render(&Helm::major(3), "");
    let fx = svcplane_tests::Fixture::start_tls().await;
    let kubeconfig = format!("--kubeconfig={}", fx.kubeconfig_path().display());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
    Api::<Namespace>::all(fx.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let node: Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "node-a"}})).unwrap();
    Api::<Node>::all(fx.client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    // The lbipam controller and the webhook's pool watch need svcplane's CRD, as the chart
    // installs it (`crds/`).
    svcplane_tests::install_pool_crd(&fx.client).await;
    (binary, r, fx, kubeconfig)
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The rendered controller manager command line runs against an API server: every flag is
/// accepted, and `/healthz` and `/readyz` answer where the probes look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_manager_accepts_the_rendered_command_line_and_serves_its_probes() {
    let (binary, r, _fx, kubeconfig) = run_setup().await;
    let cm = r.container(
        r.get("Deployment", "t-svcplane-controller-manager"),
        "controller-manager",
    );
    let (args, ports) = localize(&args_of(cm), &[], std::slice::from_ref(&kubeconfig));
    let mut running = Running::start("controller-manager", &binary, &args, &[]);
    probes_answer(&mut running, cm, &ports, &plain_client(), "127.0.0.1").await;
}

/// The rendered node agent command line runs (with the dry-run backend instead of `auto`: no
/// kernel changes here) and its startup, liveness and readiness probes answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_agent_accepts_the_rendered_command_line_and_serves_its_probes() {
    let (binary, r, _fx, kubeconfig) = run_setup().await;
    let agent = r.container(r.get("DaemonSet", "t-svcplane-node-agent"), "node-agent");
    let mut args: Vec<String> = args_of(agent);
    for arg in args.iter_mut() {
        if arg.starts_with("--backend=") {
            *arg = "--backend=dry-run".into();
        }
    }
    let env = [("NODE_NAME", "node-a")];
    let (args, ports) = localize(&args, &env, std::slice::from_ref(&kubeconfig));
    let mut running = Running::start("node-agent", &binary, &args, &env);
    probes_answer(&mut running, agent, &ports, &plain_client(), "127.0.0.1").await;
}

/// The rendered webhook command line runs with the chart-generated certificate, and is called
/// as the API server would: over TLS to `NAME.NAMESPACE.svc`, trusting only the
/// registration's caBundle (probes, an AdmissionReview on the registered path), with its
/// metrics on the metrics port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_accepts_the_rendered_command_line_and_serves_the_registration() {
    let (binary, r, _fx, kubeconfig) = run_setup().await;
    let deployment = r.get("Deployment", "t-svcplane-webhook");
    let webhook = r.container(deployment, "webhook");
    let secret = r.get("Secret", "t-svcplane-webhook-tls");
    let dir = tempfile::tempdir().unwrap();
    for key in ["tls.crt", "tls.key"] {
        std::fs::write(dir.path().join(key), pem_of(&secret["data"][key])).unwrap();
    }
    let mount = str_of(&webhook["volumeMounts"][0]["mountPath"]);
    let args: Vec<String> = args_of(webhook)
        .into_iter()
        .map(|a| a.replace(mount, dir.path().to_str().unwrap()))
        .collect();
    // The pool watch reads the API through the kubeconfig (in a pod: the mounted token).
    let (args, ports) = localize(&args, &[], std::slice::from_ref(&kubeconfig));
    let mut running = Running::start("webhook", &binary, &args, &[]);
    let hook = &r.get("ValidatingWebhookConfiguration", "t-svcplane-webhook")["webhooks"][0];
    let ca = reqwest::Certificate::from_pem(pem_of(&hook["clientConfig"]["caBundle"]).as_bytes())
        .unwrap();
    let service_host = format!(
        "{}.{}.svc",
        str_of(&hook["clientConfig"]["service"]["name"]),
        str_of(&hook["clientConfig"]["service"]["namespace"])
    );
    let mut tls = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    for local in ports.values() {
        tls = tls.resolve(&service_host, SocketAddr::from(([127, 0, 0, 1], *local)));
    }
    let tls = tls.build().unwrap();
    probes_answer(&mut running, webhook, &ports, &tls, &service_host).await;
    let https_port = ports[&probe_port(webhook, &serde_json::json!("https"))];
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "1",
            "kind": {"group": "", "version": "v1", "kind": "Service"},
            "resource": {"group": "", "version": "v1", "resource": "services"},
            "namespace": "default",
            "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "web", "namespace": "default"},
                       "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}
        }
    });
    let url = format!(
        "https://{service_host}:{https_port}{}",
        str_of(&hook["clientConfig"]["service"]["path"])
    );
    let answer: Value = tls
        .post(&url)
        .json(&review)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let metrics_port = ports[&probe_port(webhook, &serde_json::json!("metrics"))];
    let text = plain_client()
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("svcplane_webhook_requests_total"), "{text}");
}

/// With access to a cluster (`helm template --dry-run=server`, which performs the `lookup`s
/// `helm upgrade` does), run against the embedded API server: the generated TLS source reuses
/// the Secret already there, so an upgrade keeps the CA the API server trusts (without a
/// cluster every rendering makes a new CA); and `source: secret` without `caBundle` reads the
/// CA from that Secret's `ca.crt`. Helm 4's `--dry-run=server` also maps every rendered kind
/// through the server's discovery (apps/v1, policy/v1, RBAC, admissionregistration...).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_3_lookups_in_the_cluster_keep_the_generated_ca_and_read_an_existing_secrets_ca() {
    lookups_in_the_cluster(Helm::major(3)).await;
}

/// [`helm_3_lookups_in_the_cluster_keep_the_generated_ca_and_read_an_existing_secrets_ca`]
/// with Helm 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_4_lookups_in_the_cluster_keep_the_generated_ca_and_read_an_existing_secrets_ca() {
    lookups_in_the_cluster(Helm::major(4)).await;
}

async fn lookups_in_the_cluster(helm: Helm) {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, PostParams};
    let fx = svcplane_tests::Fixture::start_tls().await;
    let kubeconfig = fx.kubeconfig_path();
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
    Api::<Namespace>::all(fx.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    // Two renderings without a cluster: two different CAs.
    let first = render(&helm, "");
    let again = render(&helm, "");
    let secret = first.get("Secret", "t-svcplane-webhook-tls");
    assert_ne!(
        secret["data"]["ca.crt"],
        again.get("Secret", "t-svcplane-webhook-tls")["data"]["ca.crt"]
    );

    // The first rendering's Secret is in the cluster (as after `helm install`, with Helm's
    // ownership metadata, which Helm 4's server dry run checks): an upgrade renders it
    // unchanged and registers its CA.
    let stored: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "t-svcplane-webhook-tls",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": "t",
                "meta.helm.sh/release-namespace": NAMESPACE,
            },
        },
        "type": "kubernetes.io/tls",
        "data": secret["data"].clone(),
    }))
    .unwrap();
    Api::<Secret>::namespaced(fx.client.clone(), NAMESPACE)
        .create(&PostParams::default(), &stored)
        .await
        .unwrap();
    for _ in 0..2 {
        let upgrade = helm
            .template_against(&kubeconfig, "")
            .unwrap_or_else(|e| panic!("helm template --dry-run=server: {e}"));
        assert_eq!(
            upgrade.get("Secret", "t-svcplane-webhook-tls")["data"],
            secret["data"]
        );
        let hook =
            &upgrade.get("ValidatingWebhookConfiguration", "t-svcplane-webhook")["webhooks"][0];
        assert_eq!(hook["clientConfig"]["caBundle"], secret["data"]["ca.crt"]);
    }

    // An existing Secret named by the values, no caBundle given: its ca.crt is registered.
    let values = "webhook: {tls: {source: secret, secret: {name: t-svcplane-webhook-tls}}}";
    let r = helm
        .template_against(&kubeconfig, values)
        .unwrap_or_else(|e| panic!("helm template --dry-run=server: {e}"));
    assert!(r.of_kind("Secret").is_empty());
    let hook = &r.get("ValidatingWebhookConfiguration", "t-svcplane-webhook")["webhooks"][0];
    assert_eq!(hook["clientConfig"]["caBundle"], secret["data"]["ca.crt"]);
    // A Secret that does not exist: refused, naming the value to set.
    let err = helm
        .template_against(
            &kubeconfig,
            "webhook: {tls: {source: secret, secret: {name: not-there}}}",
        )
        .err()
        .expect("a missing Secret without caBundle is refused");
    assert!(err.contains("webhook.tls.secret.caBundle"), "{err}");
}

/// NOTES.txt (printed by `helm install`) tells what was installed and, per mode, what to do
/// to kube-controller-manager and kube-proxy. Helm 4's client-only dry run, which needs no
/// cluster (Helm 3's maps every rendered kind through a cluster's discovery).
#[test]
fn install_notes_describe_the_mode_and_the_components() {
    let helm = Helm::major(4);
    let notes = |values: &str| {
        let out = helm
            .install_dry_run(values)
            .unwrap_or_else(|e| panic!("helm {} install --dry-run: {e}", helm.major));
        let (_, notes) = out
            .split_once("\nNOTES:\n")
            .unwrap_or_else(|| panic!("helm {} printed no NOTES: {out}", helm.major));
        notes.to_string()
    };
    let replace = notes("");
    for line in [
        "(mode: replace)",
        "controllers: endpointslice, endpointslicemirroring, endpoint, lbipam",
        "managed-by=endpointslice-controller.k8s.io",
        "--controllers=*,-endpointslice,-endpointslicemirroring,-endpoint",
        "kubectl -n kube-system delete daemonset kube-proxy",
        "node agent          on every node, backend auto",
    ] {
        assert!(
            replace.contains(line),
            "helm {}: no {line:?} in\n{replace}",
            helm.major
        );
    }
    let side = notes("mode: sideBySide\nnodeAgent: {enabled: false}");
    for line in [
        "(mode: sideBySide)",
        "controllers: endpointslice, lbipam\n",
        "managed-by=endpointslice-controller.svcplane.dev",
        "node agent          not installed",
    ] {
        assert!(
            side.contains(line),
            "helm {}: no {line:?} in\n{side}",
            helm.major
        );
    }
    assert!(!side.contains("delete daemonset kube-proxy"), "{side}");
}
