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

use std::sync::OnceLock;

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

type Rules = &'static [(&'static str, FieldRule)];

/// `metav1.ObjectMeta`, shared by every kind including custom resources.
const METADATA: Rules = &[
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
const CONTAINER: &[(&str, FieldRule)] = &[
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

/// core/v1 Pod (`PodSpec`, `PodStatus`); container rules are added by [`pod_container_rule`].
const POD: Rules = &[
    ("spec.containers", BY_NAME),
    ("spec.initContainers", BY_NAME),
    ("spec.ephemeralContainers", BY_NAME),
    // PodSpec.Volumes: patchStrategy:"merge,retainKeys" patchMergeKey:"name", +listType=map
    ("spec.volumes", BY_NAME),
    ("spec.imagePullSecrets", BY_NAME),
    ("spec.imagePullSecrets[]", FieldRule::AtomicMap),
    ("spec.hostAliases", BY_IP),
    // PodSpec.TopologySpreadConstraints: patchMergeKey:"topologyKey",
    // +listMapKey=topologyKey +listMapKey=whenUnsatisfiable
    (
        "spec.topologySpreadConstraints",
        list(
            SmpList::MergeByKey("topologyKey"),
            SsaList::Map(&["topologyKey", "whenUnsatisfiable"]),
        ),
    ),
    ("spec.schedulingGates", BY_NAME),
    ("spec.resourceClaims", BY_NAME),
    // PodSpec.NodeSelector: +mapType=atomic
    ("spec.nodeSelector", FieldRule::AtomicMap),
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

/// Kinds with a rule table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindTable {
    Unstructured = 0,
    Plain,
    Service,
    Pod,
    Node,
    Namespace,
    Endpoints,
    EndpointSlice,
    ValidatingWebhookConfiguration,
    CustomResourceDefinition,
}

const KIND_TABLES: usize = 10;

impl KindTable {
    fn rules(self) -> Rules {
        match self {
            KindTable::Unstructured | KindTable::Plain => NONE,
            KindTable::Service => SERVICE,
            KindTable::Pod => POD,
            KindTable::Node => NODE,
            KindTable::Namespace => NAMESPACE,
            KindTable::Endpoints => ENDPOINTS,
            KindTable::EndpointSlice => ENDPOINT_SLICE,
            KindTable::ValidatingWebhookConfiguration => VALIDATING_WEBHOOK_CONFIGURATION,
            KindTable::CustomResourceDefinition => CUSTOM_RESOURCE_DEFINITION,
        }
    }

    /// Fields the kind's Go type always carries, even in its zero value (non-pointer structs
    /// and slices without `omitempty`): upstream compares a new object against that zero value
    /// on create, so these never count as added themselves.
    fn present(self) -> &'static [&'static str] {
        match self {
            KindTable::Unstructured => &[],
            KindTable::Plain => &[
                "spec",
                "status",
                "involvedObject",
                "source",
                "regarding",
                "deprecatedSource",
            ],
            KindTable::Service => &["spec", "status", "status.loadBalancer"],
            KindTable::Pod => &["spec", "status", "spec.containers"],
            KindTable::Node => &[
                "spec",
                "status",
                "status.daemonEndpoints",
                "status.daemonEndpoints.kubeletEndpoint",
                "status.nodeInfo",
            ],
            KindTable::EndpointSlice => &["endpoints", "ports"],
            KindTable::CustomResourceDefinition => &[
                "spec",
                "status",
                "spec.names",
                "status.acceptedNames",
                "status.conditions",
                "status.storedVersions",
            ],
            KindTable::Namespace
            | KindTable::Endpoints
            | KindTable::ValidatingWebhookConfiguration => &["spec", "status"],
        }
    }

    fn all() -> [KindTable; KIND_TABLES] {
        [
            KindTable::Unstructured,
            KindTable::Plain,
            KindTable::Service,
            KindTable::Pod,
            KindTable::Node,
            KindTable::Namespace,
            KindTable::Endpoints,
            KindTable::EndpointSlice,
            KindTable::ValidatingWebhookConfiguration,
            KindTable::CustomResourceDefinition,
        ]
    }
}

/// A node of a kind's rule tree: the rule at this path and the paths below it. `[]` is the
/// segment for list items.
#[derive(Debug, Default)]
pub struct SchemaNode {
    rule: Option<FieldRule>,
    present: bool,
    children: Vec<(&'static str, SchemaNode)>,
}

impl SchemaNode {
    fn node(&mut self, segments: &[&'static str]) -> &mut SchemaNode {
        match segments.split_first() {
            None => self,
            Some((first, rest)) => {
                let idx = match self.children.iter().position(|(s, _)| s == first) {
                    Some(i) => i,
                    None => {
                        self.children.push((first, SchemaNode::default()));
                        self.children.len() - 1
                    }
                };
                self.children[idx].1.node(rest)
            }
        }
    }

    fn insert(&mut self, segments: &[&'static str], rule: FieldRule) {
        self.node(segments).rule = Some(rule);
    }

    fn child(&self, segment: &str) -> Option<&SchemaNode> {
        self.children
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, n)| n)
    }
}

/// Splits `spec.containers[].ports` into `spec`, `containers`, `[]`, `ports`.
fn segments(path: &'static str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for part in path.split('.') {
        match part.strip_suffix("[]") {
            Some(name) => {
                out.push(name);
                out.push("[]");
            }
            None => out.push(part),
        }
    }
    out
}

fn build_tree(kind: KindTable) -> SchemaNode {
    let mut root = SchemaNode::default();
    for (path, rule) in METADATA.iter().chain(kind.rules()) {
        root.insert(&segments(path), *rule);
    }
    for path in kind.present() {
        root.node(&segments(path)).present = true;
    }
    if kind == KindTable::Pod {
        for prefix in [
            "spec.containers[]",
            "spec.initContainers[]",
            "spec.ephemeralContainers[]",
        ] {
            let base = segments(prefix);
            for (path, rule) in CONTAINER {
                let mut segs = base.clone();
                segs.extend(segments(path));
                root.insert(&segs, *rule);
            }
        }
    }
    root
}

fn tree(kind: KindTable) -> &'static SchemaNode {
    static TREES: OnceLock<Vec<SchemaNode>> = OnceLock::new();
    let trees = TREES.get_or_init(|| KindTable::all().into_iter().map(build_tree).collect());
    &trees[kind as usize]
}

/// A position in a kind's rule tree while walking an object: cheap to copy, and `None` once
/// the walk leaves every path the table mentions (everything below is default).
#[derive(Debug, Clone, Copy)]
pub struct SchemaAt(Option<&'static SchemaNode>);

impl SchemaAt {
    /// The position of a field (or map key) below this one.
    pub fn field(self, name: &str) -> SchemaAt {
        SchemaAt(self.0.and_then(|n| n.child(name)))
    }

    /// The position of this list's items.
    pub fn items(self) -> SchemaAt {
        self.field("[]")
    }

    /// Whether the kind's Go type always carries this field (see upstream zero values).
    pub fn is_present(self) -> bool {
        self.0.is_some_and(|n| n.present)
    }

    /// The rule recorded here, if any.
    pub fn rule(self) -> Option<FieldRule> {
        self.0.and_then(|n| n.rule)
    }

    /// List semantics here; atomic unless the table says otherwise.
    pub fn list(self) -> ListSemantics {
        match self.rule() {
            Some(FieldRule::List(l)) => l,
            _ => ListSemantics::ATOMIC,
        }
    }

    /// Whether server-side apply treats the map or struct here as one atomic value.
    pub fn is_atomic_map(self) -> bool {
        matches!(self.rule(), Some(FieldRule::AtomicMap))
    }
}

/// The merge semantics of one kind: look up list and map behaviour by field path.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    kind: KindTable,
}

impl Schema {
    /// The schema of a kind this server serves, or the unstructured schema (only `metadata`
    /// is typed; every other list is atomic) for anything else, as upstream treats custom
    /// resources without list markers.
    pub fn for_kind(gvk: &Gvk) -> Schema {
        let kind = match (gvk.group.as_str(), gvk.kind.as_str()) {
            ("", "Service") => KindTable::Service,
            ("", "Pod") => KindTable::Pod,
            ("", "Node") => KindTable::Node,
            ("", "Namespace") => KindTable::Namespace,
            ("", "Endpoints") => KindTable::Endpoints,
            ("", "ConfigMap" | "Secret" | "Event") => KindTable::Plain,
            ("discovery.k8s.io", "EndpointSlice") => KindTable::EndpointSlice,
            ("coordination.k8s.io", "Lease") => KindTable::Plain,
            ("events.k8s.io", "Event") => KindTable::Plain,
            ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
                KindTable::ValidatingWebhookConfiguration
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                KindTable::CustomResourceDefinition
            }
            _ => KindTable::Unstructured,
        };
        Schema { kind }
    }

    /// The schema of an object whose kind has no Go type (a custom resource).
    pub fn unstructured() -> Schema {
        Schema {
            kind: KindTable::Unstructured,
        }
    }

    /// Whether the kind is a built-in with Go struct tags. Upstream serves strategic merge
    /// patch only for those (custom resources get 415 Unsupported Media Type).
    pub fn is_builtin(&self) -> bool {
        self.kind != KindTable::Unstructured
    }

    /// The root of the kind's rule tree, for walking an object.
    pub fn root(&self) -> SchemaAt {
        SchemaAt(Some(tree(self.kind)))
    }

    /// The position of a dotted path (`spec.containers[].ports`) in the rule tree.
    pub fn at(&self, path: &str) -> SchemaAt {
        let mut at = self.root();
        if path.is_empty() {
            return at;
        }
        for part in path.split('.') {
            match part.strip_suffix("[]") {
                Some(name) => at = at.field(name).items(),
                None => at = at.field(part),
            }
        }
        at
    }

    /// The rule recorded for a path, if any.
    pub fn rule(&self, path: &str) -> Option<FieldRule> {
        self.at(path).rule()
    }

    /// List semantics at a path; atomic unless the table says otherwise.
    pub fn list(&self, path: &str) -> ListSemantics {
        self.at(path).list()
    }

    /// Whether server-side apply treats the map or struct at a path as one atomic value.
    pub fn is_atomic_map(&self, path: &str) -> bool {
        self.at(path).is_atomic_map()
    }
}
