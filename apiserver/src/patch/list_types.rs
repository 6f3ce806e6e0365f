//! How lists and maps of the served built-in kinds merge: the one table that both strategic
//! merge patch and server-side apply read.
//!
//! Upstream keeps this information in the Go struct tags of `k8s.io/api`: `patchStrategy` and
//! `patchMergeKey` (read by `strategicpatch`) and the `+listType`, `+listMapKey`, `+mapType` and
//! `+structType` markers (published as `x-kubernetes-list-type` etc. and read by
//! `structured-merge-diff`). The rows below transcribe those markers for the fields of the kinds
//! this server serves. A list that is not in the table is atomic (upstream's default for both
//! mechanisms); a map or struct that is not in the table merges key by key.
//!
//! Paths are dot-separated field names from the object root; `[]` steps into the items of a
//! list, e.g. `spec.containers[].ports`.

use serde_json::Value;

/// Group, version and kind of an object (upstream `schema.GroupVersionKind`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gvk {
    /// API group; empty for the core group.
    pub group: String,
    /// API version within the group, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Service`.
    pub kind: String,
}

impl Gvk {
    /// Builds a GVK from an `apiVersion` (`v1` or `group/version`) and a kind.
    pub fn new(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// Reads `apiVersion` and `kind` from an object; `None` when either is missing.
    pub fn of(object: &Value) -> Option<Gvk> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        Some(Gvk::new(api_version, kind))
    }

    /// The `apiVersion` string (`v1` or `group/version`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Strategic-merge-patch behaviour of a list (upstream `patchStrategy` / `patchMergeKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmpList {
    /// No `patchStrategy`: the patch's list replaces the live list.
    Replace,
    /// `patchStrategy:"merge"` on a list of objects, merged by `patchMergeKey`.
    MergeByKey(&'static str),
    /// `patchStrategy:"merge"` on a list of scalars (e.g. `metadata.finalizers`): union.
    MergePrimitives,
}

/// Server-side-apply behaviour of a list (upstream `+listType` / `+listMapKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsaList {
    /// `listType=atomic`: the list is one value owned as a whole.
    Atomic,
    /// `listType=set`: a set of scalars, each owned separately (`v:<value>`).
    Set,
    /// `listType=map`: items identified by the values of these keys (`k:{...}`).
    Map(&'static [&'static str]),
}

/// How one list field merges under both mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListSemantics {
    /// Strategic merge patch behaviour.
    pub smp: SmpList,
    /// Server-side apply behaviour.
    pub ssa: SsaList,
}

impl ListSemantics {
    /// Upstream's default for a list without markers.
    pub const ATOMIC: ListSemantics = ListSemantics {
        smp: SmpList::Replace,
        ssa: SsaList::Atomic,
    };
}

/// Semantics of one field path in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// A list with the given semantics.
    List(ListSemantics),
    /// A map or struct that server-side apply treats as one value (`+mapType=atomic` or
    /// `+structType=atomic`); strategic merge patch still merges it key by key, as upstream.
    AtomicMap,
}

const fn list(smp: SmpList, ssa: SsaList) -> FieldRule {
    FieldRule::List(ListSemantics { smp, ssa })
}

const BY_NAME: FieldRule = list(SmpList::MergeByKey("name"), SsaList::Map(&["name"]));
const BY_TYPE: FieldRule = list(SmpList::MergeByKey("type"), SsaList::Map(&["type"]));
const BY_IP: FieldRule = list(SmpList::MergeByKey("ip"), SsaList::Map(&["ip"]));

pub(super) type Rules = &'static [(&'static str, FieldRule)];

/// `metav1.ObjectMeta`, shared by every kind including custom resources.
pub(super) const METADATA: Rules = &[
    // ObjectMeta.Finalizers: patchStrategy:"merge", +listType=set
    (
        "metadata.finalizers",
        list(SmpList::MergePrimitives, SsaList::Set),
    ),
    // ObjectMeta.OwnerReferences: patchStrategy:"merge" patchMergeKey:"uid", +listType=map
    // +listMapKey=uid; OwnerReference is +structType=atomic.
    (
        "metadata.ownerReferences",
        list(SmpList::MergeByKey("uid"), SsaList::Map(&["uid"])),
    ),
    ("metadata.ownerReferences[]", FieldRule::AtomicMap),
];

/// core/v1 Service (`ServiceSpec`, `ServiceStatus`).
const SERVICE: Rules = &[
    // ServiceSpec.Ports: patchStrategy:"merge" patchMergeKey:"port",
    // +listType=map +listMapKey=port +listMapKey=protocol
    (
        "spec.ports",
        list(
            SmpList::MergeByKey("port"),
            SsaList::Map(&["port", "protocol"]),
        ),
    ),
    // ServiceSpec.Selector: +mapType=atomic
    ("spec.selector", FieldRule::AtomicMap),
    // ServiceStatus.Conditions: patchStrategy:"merge" patchMergeKey:"type", +listType=map
    ("status.conditions", BY_TYPE),
];

/// Rules of a `Container` (also `initContainers`, `ephemeralContainers`), relative to the item.
pub(super) const CONTAINER: &[(&str, FieldRule)] = &[
    // Container.Ports: patchStrategy:"merge" patchMergeKey:"containerPort",
    // +listType=map +listMapKey=containerPort +listMapKey=protocol
    (
        "ports",
        list(
            SmpList::MergeByKey("containerPort"),
            SsaList::Map(&["containerPort", "protocol"]),
        ),
    ),
    // Container.Env: patchStrategy:"merge" patchMergeKey:"name", +listType=map +listMapKey=name
    ("env", BY_NAME),
    // ConfigMapKeySelector / SecretKeySelector / ObjectFieldSelector: +structType=atomic
    ("env[].valueFrom.configMapKeyRef", FieldRule::AtomicMap),
    ("env[].valueFrom.secretKeyRef", FieldRule::AtomicMap),
    ("env[].valueFrom.fieldRef", FieldRule::AtomicMap),
    ("env[].valueFrom.resourceFieldRef", FieldRule::AtomicMap),
    // Container.VolumeMounts: patchStrategy:"merge" patchMergeKey:"mountPath", +listType=map
    (
        "volumeMounts",
        list(
            SmpList::MergeByKey("mountPath"),
            SsaList::Map(&["mountPath"]),
        ),
    ),
    // Container.VolumeDevices: patchStrategy:"merge" patchMergeKey:"devicePath", +listType=map
    (
        "volumeDevices",
        list(
            SmpList::MergeByKey("devicePath"),
            SsaList::Map(&["devicePath"]),
        ),
    ),
    // ResourceRequirements.Claims: +listType=map +listMapKey=name (no patchStrategy)
    (
        "resources.claims",
        list(SmpList::Replace, SsaList::Map(&["name"])),
    ),
];

/// core/v1 `PodSpec`, relative to the spec (a Pod's `spec`, a workload's
/// `spec.template.spec`); container rules are added under each container list by
/// `build_tree` in [`super::schema`].
pub(super) const POD_SPEC: Rules = &[
    ("containers", BY_NAME),
    ("initContainers", BY_NAME),
    ("ephemeralContainers", BY_NAME),
    // PodSpec.Volumes: patchStrategy:"merge,retainKeys" patchMergeKey:"name", +listType=map
    ("volumes", BY_NAME),
    ("imagePullSecrets", BY_NAME),
    ("imagePullSecrets[]", FieldRule::AtomicMap),
    ("hostAliases", BY_IP),
    // PodSpec.TopologySpreadConstraints: patchMergeKey:"topologyKey",
    // +listMapKey=topologyKey +listMapKey=whenUnsatisfiable
    (
        "topologySpreadConstraints",
        list(
            SmpList::MergeByKey("topologyKey"),
            SsaList::Map(&["topologyKey", "whenUnsatisfiable"]),
        ),
    ),
    ("schedulingGates", BY_NAME),
    ("resourceClaims", BY_NAME),
    // PodSpec.NodeSelector: +mapType=atomic
    ("nodeSelector", FieldRule::AtomicMap),
];

/// core/v1 Pod (`PodStatus`; the spec's rules are [`POD_SPEC`]).
const POD: Rules = &[
    ("status.conditions", BY_TYPE),
    ("status.podIPs", BY_IP),
    ("status.hostIPs", BY_IP),
    ("status.resourceClaimStatuses", BY_NAME),
];

/// core/v1 Node (`NodeSpec`, `NodeStatus`).
const NODE: Rules = &[
    // NodeSpec.PodCIDRs: patchStrategy:"merge", +listType=set
    (
        "spec.podCIDRs",
        list(SmpList::MergePrimitives, SsaList::Set),
    ),
    // NodeStatus.Addresses: patchStrategy:"merge" patchMergeKey:"type", +listType=map
    ("status.addresses", BY_TYPE),
    ("status.conditions", BY_TYPE),
];

/// core/v1 Namespace.
const NAMESPACE: Rules = &[("status.conditions", BY_TYPE)];

/// core/v1 Endpoints: `subsets` and everything under it are atomic lists; `targetRef` is an
/// `ObjectReference` (+structType=atomic).
const ENDPOINTS: Rules = &[
    ("subsets[].addresses[].targetRef", FieldRule::AtomicMap),
    (
        "subsets[].notReadyAddresses[].targetRef",
        FieldRule::AtomicMap,
    ),
];

/// discovery.k8s.io/v1 EndpointSlice: `endpoints` and `ports` are atomic lists;
/// `endpoints[].addresses` is +listType=set.
const ENDPOINT_SLICE: Rules = &[
    (
        "endpoints[].addresses",
        list(SmpList::Replace, SsaList::Set),
    ),
    ("endpoints[].targetRef", FieldRule::AtomicMap),
];

/// admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration.
const VALIDATING_WEBHOOK_CONFIGURATION: Rules = &[
    // ValidatingWebhookConfiguration.Webhooks: patchStrategy:"merge" patchMergeKey:"name",
    // +listType=map +listMapKey=name
    ("webhooks", BY_NAME),
    ("webhooks[].matchConditions", BY_NAME),
    // metav1.LabelSelector: +structType=atomic
    ("webhooks[].namespaceSelector", FieldRule::AtomicMap),
    ("webhooks[].objectSelector", FieldRule::AtomicMap),
];

/// apiextensions.k8s.io/v1 CustomResourceDefinition: `status.conditions` is +listType=map
/// keyed by type without a patchStrategy; `spec.versions` is atomic.
const CUSTOM_RESOURCE_DEFINITION: Rules = &[(
    "status.conditions",
    list(SmpList::Replace, SsaList::Map(&["type"])),
)];

/// Kinds without list or atomic-map markers beyond `metadata`.
const NONE: Rules = &[];

/// How the lists and maps of one built-in kind merge: its rows of upstream markers, the
/// fields its Go type always carries, and where it embeds a `PodSpec`. Each built-in kind's
/// row in `crate::kinds` names one of these.
#[derive(Debug)]
pub struct MergeRules {
    /// Marker rows, paths from the object root.
    pub rules: Rules,
    /// Fields the kind's Go type always carries, even in its zero value (non-pointer structs
    /// and slices without `omitempty`): upstream compares a new object against that zero
    /// value on create, so these never count as added themselves.
    pub present: &'static [&'static str],
    /// Paths of embedded `PodSpec`s (`spec` of a Pod, `spec.template.spec` of a Deployment):
    /// [`POD_SPEC`] and the container rules apply under each, so workloads reuse the Pod rows.
    pub pod_specs: &'static [&'static str],
}

impl MergeRules {
    /// Rules of a kind with `rules` whose Go type always carries `spec` and `status`.
    pub const fn with_spec_status(rules: Rules) -> MergeRules {
        MergeRules {
            rules,
            present: &["spec", "status"],
            pod_specs: &[],
        }
    }
}

/// Custom resources and unknown kinds: only `metadata` is typed.
pub const UNSTRUCTURED: MergeRules = MergeRules {
    rules: NONE,
    present: &[],
    pod_specs: &[],
};

/// Kinds without markers of their own (ConfigMaps, Secrets, Events, Leases).
pub const PLAIN: MergeRules = MergeRules {
    rules: NONE,
    present: &[
        "spec",
        "status",
        "involvedObject",
        "source",
        "regarding",
        "deprecatedSource",
    ],
    pod_specs: &[],
};

/// core/v1 Service.
pub const SERVICE_RULES: MergeRules = MergeRules {
    rules: SERVICE,
    present: &["spec", "status", "status.loadBalancer"],
    pod_specs: &[],
};

/// core/v1 Pod.
pub const POD_RULES: MergeRules = MergeRules {
    rules: POD,
    present: &["spec", "status", "spec.containers"],
    pod_specs: &["spec"],
};

/// core/v1 Node.
pub const NODE_RULES: MergeRules = MergeRules {
    rules: NODE,
    present: &[
        "spec",
        "status",
        "status.daemonEndpoints",
        "status.daemonEndpoints.kubeletEndpoint",
        "status.nodeInfo",
    ],
    pod_specs: &[],
};

/// core/v1 Namespace.
pub const NAMESPACE_RULES: MergeRules = MergeRules::with_spec_status(NAMESPACE);

/// core/v1 Endpoints.
pub const ENDPOINTS_RULES: MergeRules = MergeRules::with_spec_status(ENDPOINTS);

/// discovery.k8s.io/v1 EndpointSlice.
pub const ENDPOINT_SLICE_RULES: MergeRules = MergeRules {
    rules: ENDPOINT_SLICE,
    present: &["endpoints", "ports"],
    pod_specs: &[],
};

/// admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration.
pub const VALIDATING_WEBHOOK_CONFIGURATION_RULES: MergeRules =
    MergeRules::with_spec_status(VALIDATING_WEBHOOK_CONFIGURATION);

/// apiextensions.k8s.io/v1 CustomResourceDefinition.
pub const CUSTOM_RESOURCE_DEFINITION_RULES: MergeRules = MergeRules {
    rules: CUSTOM_RESOURCE_DEFINITION,
    present: &[
        "spec",
        "status",
        "spec.names",
        "status.acceptedNames",
        "status.conditions",
        "status.storedVersions",
    ],
    pod_specs: &[],
};

/// `metav1.LabelSelector` is `+structType=atomic`; `status.conditions` of the workload kinds
/// are `patchStrategy:"merge" patchMergeKey:"type"`, `+listType=map +listMapKey=type`
/// (`k8s.io/api/apps/v1/types.go`).
const WORKLOAD: Rules = &[
    ("spec.selector", FieldRule::AtomicMap),
    ("status.conditions", BY_TYPE),
];

/// apps/v1 Deployment, ReplicaSet, DaemonSet (`spec.template` is a `PodTemplateSpec`).
pub const WORKLOAD_RULES: MergeRules = MergeRules {
    rules: WORKLOAD,
    present: &["spec", "status", "spec.template"],
    pod_specs: &["spec.template.spec"],
};

/// apps/v1 StatefulSet: the workload rules; `spec.volumeClaimTemplates` is `+listType=atomic`.
pub const STATEFUL_SET_RULES: MergeRules = WORKLOAD_RULES;

/// core/v1 ReplicationController: `spec.selector` is a plain map (`+mapType=atomic`).
pub const REPLICATION_CONTROLLER_RULES: MergeRules = MergeRules {
    rules: &[
        ("spec.selector", FieldRule::AtomicMap),
        ("status.conditions", BY_TYPE),
    ],
    present: &["spec", "status"],
    pod_specs: &["spec.template.spec"],
};

/// core/v1 PodTemplate (`template` is a `PodTemplateSpec`).
pub const POD_TEMPLATE_RULES: MergeRules = MergeRules {
    rules: NONE,
    present: &["template"],
    pod_specs: &["template.spec"],
};

/// batch/v1 Job: `spec.selector` atomic; `status.conditions` is `patchStrategy:"merge"
/// patchMergeKey:"type"` with `+listType=atomic`.
pub const JOB_RULES: MergeRules = MergeRules {
    rules: &[
        ("spec.selector", FieldRule::AtomicMap),
        (
            "status.conditions",
            list(SmpList::MergeByKey("type"), SsaList::Atomic),
        ),
    ],
    present: &["spec", "status", "spec.template"],
    pod_specs: &["spec.template.spec"],
};

/// batch/v1 CronJob: the Job template's pod spec; `status.active` is `+listType=atomic`.
pub const CRON_JOB_RULES: MergeRules = MergeRules {
    rules: &[("spec.jobTemplate.spec.selector", FieldRule::AtomicMap)],
    present: &[
        "spec",
        "status",
        "spec.jobTemplate",
        "spec.jobTemplate.spec.template",
    ],
    pod_specs: &["spec.jobTemplate.spec.template.spec"],
};

/// Kinds with `status.conditions` keyed by type (`patchStrategy:"merge"
/// patchMergeKey:"type"`, `+listType=map +listMapKey=type`) and nothing else marked:
/// HorizontalPodAutoscaler (autoscaling/v2), PersistentVolumeClaim, PodDisruptionBudget
/// (whose `spec.selector` is an atomic `LabelSelector`).
pub const CONDITIONS_RULES: MergeRules = MergeRules::with_spec_status(&[
    ("spec.selector", FieldRule::AtomicMap),
    ("status.conditions", BY_TYPE),
]);

/// core/v1 ServiceAccount: `secrets` is `patchStrategy:"merge" patchMergeKey:"name"`,
/// `+listType=map +listMapKey=name`; `imagePullSecrets` is atomic.
pub const SERVICE_ACCOUNT_RULES: MergeRules = MergeRules {
    rules: &[("secrets", BY_NAME), ("secrets[]", FieldRule::AtomicMap)],
    present: &[],
    pod_specs: &[],
};

/// admissionregistration.k8s.io/v1 MutatingWebhookConfiguration (as the validating one).
pub const MUTATING_WEBHOOK_CONFIGURATION_RULES: MergeRules =
    MergeRules::with_spec_status(VALIDATING_WEBHOOK_CONFIGURATION);

/// rbac.authorization.k8s.io/v1 RoleBinding / ClusterRoleBinding: `roleRef` is a struct
/// without markers; `subjects` and the roles' `rules` are `+listType=atomic`.
pub const RBAC_RULES: MergeRules = MergeRules {
    rules: NONE,
    present: &["roleRef"],
    pod_specs: &[],
};

/// Kinds with `spec`/`status` and no markers of their own beyond atomic lists.
pub const SPEC_STATUS_RULES: MergeRules = MergeRules::with_spec_status(NONE);
