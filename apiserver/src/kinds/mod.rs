//! The built-in kinds: one row of facts per kind, from which everything the server knows about
//! it follows — the registry entry and discovery (`crate::resources`), the OpenAPI v3 schema
//! (`crate::openapi`), typed and strict decoding (the row's k8s-openapi type, [`Typed`]),
//! strategic merge and server-side apply markers (`crate::patch::list_types`) and the name
//! rule. The rows are facts only, so the patch engine, the OpenAPI documents and discovery can
//! read them; behaviour (a kind's own strategy, upstream's defaulting) is attached above, in
//! `crate::strategy`'s table of built-in kinds, the one place joining the two.
//!
//! Adding a built-in kind is adding a row to [`all`]. Discovery facts (short names,
//! categories, subresources) are upstream's, as kube-apiserver v1.33 publishes them
//! (`api/discovery/aggregated_v2.json` in kubernetes/kubernetes).

mod typed;

use std::any::TypeId;
use std::sync::LazyLock;

use k8s_openapi::api::{
    admissionregistration, apps, autoscaling, batch, coordination, core, discovery, events,
    flowcontrol, networking, node, policy, rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::{NamespaceResourceScope, Resource};
use schemars::generate::SchemaGenerator;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Serialize};

use crate::patch::list_types::{self as merge, MergeRules};

pub use typed::Typed;

/// Name rule of a kind without validation of its own (upstream `ValidateObjectMeta`'s
/// `nameFn`): one of the rules crate's [`svcplane_rules::names`] functions, or one below.
pub type NameRule = fn(&str) -> Vec<String>;

/// A subresource besides `status` and `scale` (upstream `metav1.APIResource` of
/// `pods/binding` etc.): its name, the Kind it takes or returns and the verbs it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// Name after the slash (`binding`).
    pub name: &'static str,
    /// Group of the Kind when it differs from the resource's (`policy` for `Eviction`).
    pub group: &'static str,
    /// Version of the Kind when the group differs.
    pub version: &'static str,
    /// Kind (`Binding`).
    pub kind: &'static str,
    /// Verbs served.
    pub verbs: &'static [&'static str],
}

/// One built-in kind.
pub struct BuiltinKind {
    /// API group, empty for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name (URL segment).
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Singular name when it is not the lowercased kind.
    pub singular: Option<&'static str>,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Whether the `/status` subresource is served.
    pub status: bool,
    /// Whether the `/scale` subresource is served (`autoscaling/v1` `Scale` of
    /// `spec.replicas`).
    pub scale: bool,
    /// Other subresources (`pods/binding`, `pods/eviction`, `pods/log`).
    pub subresources: &'static [Subresource],
    /// Fields besides `metadata.name`/`metadata.namespace` usable in field selectors.
    pub selectable_fields: &'static [&'static str],
    /// How its lists and maps merge.
    pub merge: &'static MergeRules,
    /// Registers its OpenAPI schema; returns the schema's name.
    pub schema: fn(&mut SchemaGenerator) -> String,
    /// Its k8s-openapi type.
    pub typed: Typed,
    /// Name rule of the generic strategy.
    pub name_rule: NameRule,
}

impl std::fmt::Debug for BuiltinKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BuiltinKind({}/{} {})",
            self.group, self.version, self.kind
        )
    }
}

fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// A row for type `T`: group, version, kind, plural and scope from its `Resource` impl.
fn row<T>() -> BuiltinKind
where
    T: Resource + JsonSchema + DeserializeOwned + Serialize + 'static,
{
    BuiltinKind {
        group: T::GROUP,
        version: T::VERSION,
        plural: T::URL_PATH_SEGMENT,
        kind: T::KIND,
        singular: None,
        namespaced: TypeId::of::<T::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        short_names: &[],
        categories: &[],
        status: false,
        scale: false,
        subresources: &[],
        selectable_fields: &[],
        merge: &merge::SPEC_STATUS_RULES,
        schema: register::<T>,
        typed: Typed::of::<T>(),
        name_rule: svcplane_rules::names::is_dns1123_subdomain,
    }
}

impl BuiltinKind {
    fn short(mut self, names: &'static [&'static str]) -> Self {
        self.short_names = names;
        self
    }
    fn categories(mut self, categories: &'static [&'static str]) -> Self {
        self.categories = categories;
        self
    }
    fn status(mut self) -> Self {
        self.status = true;
        self
    }
    fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    fn merge(mut self, rules: &'static MergeRules) -> Self {
        self.merge = rules;
        self
    }
    fn fields(mut self, fields: &'static [&'static str]) -> Self {
        self.selectable_fields = fields;
        self
    }
    fn names(mut self, rule: NameRule) -> Self {
        self.name_rule = rule;
        self
    }

    /// The singular resource name (`deployment`).
    pub fn singular(&self) -> String {
        self.singular
            .map(str::to_string)
            .unwrap_or_else(|| self.kind.to_lowercase())
    }
}

const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];

/// Upstream `path.IsValidPathSegmentName` (RBAC objects, PersistentVolumes): not `.` or `..`,
/// no `/` or `%`.
fn path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    let mut out = Vec::new();
    for bad in ["/", "%"] {
        if name.contains(bad) {
            out.push(format!("may not contain '{bad}'"));
        }
    }
    out
}

/// Upstream `ValidateIPAddressName` (networking.k8s.io IPAddress): the name is an IP address
/// in canonical form (RFC 5952 for IPv6).
fn ip_address_name(name: &str) -> Vec<String> {
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.to_string() == name => Vec::new(),
        Ok(ip) => vec![format!("must be in canonical form (\"{ip}\")")],
        Err(_) => vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into()],
    }
}

/// `pods/binding`, `pods/eviction`, `pods/log` (upstream `pkg/registry/core/pod/storage`).
pub const POD_SUBRESOURCES: &[Subresource] = &[
    Subresource {
        name: "binding",
        group: "",
        version: "",
        kind: "Binding",
        verbs: &["create"],
    },
    Subresource {
        name: "eviction",
        group: "policy",
        version: "v1",
        kind: "Eviction",
        verbs: &["create"],
    },
    Subresource {
        name: "log",
        group: "",
        version: "",
        kind: "Pod",
        verbs: &["get"],
    },
];

/// `serviceaccounts/token` (`TokenRequest`, served by `token_request.rs`).
pub const SERVICE_ACCOUNT_SUBRESOURCES: &[Subresource] = &[Subresource {
    name: "token",
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
    verbs: &["create"],
}];

/// Every built-in kind, in the order the registry used to list them (the original 13 first).
pub fn all() -> &'static [BuiltinKind] {
    static ALL_KINDS: LazyLock<Vec<BuiltinKind>> = LazyLock::new(rows);
    &ALL_KINDS
}

fn rows() -> Vec<BuiltinKind> {
    use core::v1 as c;
    vec![
        // The kinds with rules of their own (Service-grade or upstream's PrepareFor*, see
        // `crate::strategy`) first, as the registry has always listed them.
        row::<c::Namespace>()
            .short(&["ns"])
            .status()
            .fields(&["status.phase"])
            .merge(&merge::NAMESPACE_RULES),
        row::<c::Service>()
            .short(&["svc"])
            .categories(ALL)
            .status()
            .merge(&merge::SERVICE_RULES),
        BuiltinKind {
            subresources: POD_SUBRESOURCES,
            ..row::<c::Pod>()
        }
        .short(&["po"])
        .categories(ALL)
        .status()
        .fields(&[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ])
        .merge(&merge::POD_RULES),
        row::<c::Node>()
            .short(&["no"])
            .status()
            .fields(&["spec.unschedulable"])
            .merge(&merge::NODE_RULES),
        BuiltinKind {
            singular: Some("endpoints"),
            ..row::<c::Endpoints>()
        }
        .short(&["ep"])
        .merge(&merge::ENDPOINTS_RULES),
        row::<c::Event>()
            .short(&["ev"])
            .fields(&[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ])
            .merge(&merge::PLAIN),
        row::<c::ConfigMap>().short(&["cm"]).merge(&merge::PLAIN),
        row::<c::Secret>().fields(&["type"]).merge(&merge::PLAIN),
        row::<discovery::v1::EndpointSlice>().merge(&merge::ENDPOINT_SLICE_RULES),
        row::<coordination::v1::Lease>().merge(&merge::PLAIN),
        row::<events::v1::Event>()
            .short(&["ev"])
            .merge(&merge::PLAIN),
        row::<admissionregistration::v1::ValidatingWebhookConfiguration>()
            .categories(API_EXTENSIONS)
            .merge(&merge::VALIDATING_WEBHOOK_CONFIGURATION_RULES),
        row::<apiextensions::v1::CustomResourceDefinition>()
            .short(&["crd", "crds"])
            .categories(API_EXTENSIONS)
            .status()
            .merge(&merge::CUSTOM_RESOURCE_DEFINITION_RULES),
        // Schema validation and the common metadata rules, some with upstream's defaulting.
        BuiltinKind {
            subresources: SERVICE_ACCOUNT_SUBRESOURCES,
            ..row::<c::ServiceAccount>()
        }
        .short(&["sa"])
        .merge(&merge::SERVICE_ACCOUNT_RULES),
        row::<c::PersistentVolume>()
            .short(&["pv"])
            .status()
            .names(path_segment_name),
        row::<c::PersistentVolumeClaim>()
            .short(&["pvc"])
            .status()
            .merge(&merge::CONDITIONS_RULES),
        row::<c::ResourceQuota>().short(&["quota"]).status(),
        row::<c::LimitRange>().short(&["limits"]),
        row::<c::ReplicationController>()
            .short(&["rc"])
            .categories(ALL)
            .status()
            .scale()
            .merge(&merge::REPLICATION_CONTROLLER_RULES),
        row::<c::PodTemplate>().merge(&merge::POD_TEMPLATE_RULES),
        row::<apps::v1::Deployment>()
            .short(&["deploy"])
            .categories(ALL)
            .status()
            .scale()
            .merge(&merge::WORKLOAD_RULES),
        row::<apps::v1::ReplicaSet>()
            .short(&["rs"])
            .categories(ALL)
            .status()
            .scale()
            .merge(&merge::WORKLOAD_RULES),
        row::<apps::v1::StatefulSet>()
            .short(&["sts"])
            .categories(ALL)
            .status()
            .scale()
            .merge(&merge::STATEFUL_SET_RULES),
        row::<apps::v1::DaemonSet>()
            .short(&["ds"])
            .categories(ALL)
            .status()
            .merge(&merge::WORKLOAD_RULES),
        row::<apps::v1::ControllerRevision>(),
        row::<batch::v1::Job>()
            .categories(ALL)
            .status()
            .merge(&merge::JOB_RULES),
        row::<batch::v1::CronJob>()
            .short(&["cj"])
            .categories(ALL)
            .status()
            .merge(&merge::CRON_JOB_RULES),
        row::<autoscaling::v2::HorizontalPodAutoscaler>()
            .short(&["hpa"])
            .categories(ALL)
            .status()
            .merge(&merge::CONDITIONS_RULES),
        row::<networking::v1::Ingress>().short(&["ing"]).status(),
        row::<networking::v1::IngressClass>(),
        row::<networking::v1::NetworkPolicy>().short(&["netpol"]),
        row::<policy::v1::PodDisruptionBudget>()
            .short(&["pdb"])
            .status()
            .merge(&merge::CONDITIONS_RULES),
        row::<rbac::v1::ClusterRole>().names(path_segment_name),
        row::<rbac::v1::ClusterRoleBinding>()
            .names(path_segment_name)
            .merge(&merge::RBAC_RULES),
        row::<rbac::v1::Role>().names(path_segment_name),
        row::<rbac::v1::RoleBinding>()
            .names(path_segment_name)
            .merge(&merge::RBAC_RULES),
        row::<storage::v1::StorageClass>().short(&["sc"]),
        row::<storage::v1::CSIDriver>(),
        row::<storage::v1::CSINode>(),
        row::<storage::v1::CSIStorageCapacity>(),
        row::<storage::v1::VolumeAttachment>().status(),
        row::<scheduling::v1::PriorityClass>().short(&["pc"]),
        row::<node::v1::RuntimeClass>(),
        row::<admissionregistration::v1::MutatingWebhookConfiguration>()
            .categories(API_EXTENSIONS)
            .merge(&merge::MUTATING_WEBHOOK_CONFIGURATION_RULES),
        row::<admissionregistration::v1::ValidatingAdmissionPolicy>()
            .categories(API_EXTENSIONS)
            .status()
            .merge(&merge::CONDITIONS_RULES),
        row::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>()
            .categories(API_EXTENSIONS),
        row::<networking::v1::IPAddress>()
            .short(&["ip"])
            .names(ip_address_name),
        row::<networking::v1::ServiceCIDR>()
            .status()
            .merge(&merge::CONDITIONS_RULES),
        row::<flowcontrol::v1::FlowSchema>()
            .status()
            .merge(&merge::CONDITIONS_RULES),
        row::<flowcontrol::v1::PriorityLevelConfiguration>()
            .status()
            .merge(&merge::CONDITIONS_RULES),
    ]
}

/// The index in [`all`] of a kind: an exact group/version/kind match, else the same group and
/// kind in another version.
pub fn index_of(group: &str, version: &str, kind: &str) -> Option<usize> {
    let rows = all();
    rows.iter()
        .position(|k| k.group == group && k.version == version && k.kind == kind)
        .or_else(|| rows.iter().position(|k| k.group == group && k.kind == kind))
}

/// The row of a kind (see [`index_of`]).
pub fn find(group: &str, version: &str, kind: &str) -> Option<&'static BuiltinKind> {
    index_of(group, version, kind).map(|i| &all()[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_address_names_are_canonical_ips() {
        assert!(ip_address_name("10.0.0.7").is_empty());
        assert!(ip_address_name("2001:db8::1").is_empty());
        assert!(!ip_address_name("2001:DB8::1").is_empty());
        assert!(!ip_address_name("2001:db8:0::1").is_empty());
        assert!(!ip_address_name("demo").is_empty());
    }

    #[test]
    fn rows_are_unique_by_group_version_plural_and_kind() {
        let mut seen = std::collections::BTreeSet::new();
        for k in all() {
            assert!(
                seen.insert((k.group, k.version, k.plural)),
                "{k:?} listed twice"
            );
        }
        assert!(all().len() > 13);
    }

    #[test]
    fn scope_comes_from_the_type() {
        assert!(find("apps", "v1", "Deployment").unwrap().namespaced);
        assert!(
            !find("rbac.authorization.k8s.io", "v1", "ClusterRole")
                .unwrap()
                .namespaced
        );
        assert_eq!(find("", "v1", "Endpoints").unwrap().singular(), "endpoints");
        assert!(
            !find("networking.k8s.io", "v1", "IPAddress")
                .unwrap()
                .namespaced
        );
        assert_eq!(
            find("policy", "v1", "PodDisruptionBudget").unwrap().plural,
            "poddisruptionbudgets"
        );
    }
}
