//! The resource table: which group/version/resource triples the server serves, their kinds,
//! scope and subresources, plus custom resources registered by CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

pub use crate::store::ResourceKey;
use crate::strategy::{self, ObjectKind, Strategy};
use crate::string_list::strings;

/// Static description of one served resource (upstream `metav1.APIResource` plus what the
/// server needs to store it) and its write rules, the registry entry of the resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, empty for the core (legacy) group.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Plural resource name used in URLs (`services`).
    pub plural: String,
    /// Singular name (`service`).
    pub singular: String,
    /// Kind of a single object (`Service`).
    pub kind: String,
    /// Kind of a list (`ServiceList`).
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names `kubectl` accepts (`svc`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether a `/status` subresource exists; the main resource then ignores status writes.
    pub has_status: bool,
    /// Whether a `/scale` subresource exists (`autoscaling/v1` `Scale` of `spec.replicas`).
    pub has_scale: bool,
    /// Other subresources (`pods/binding`, `pods/eviction`, `pods/log`).
    pub subresources: &'static [crate::kinds::Subresource],
    /// Fields besides `metadata.name`/`metadata.namespace` usable in field selectors.
    pub selectable_fields: Vec<String>,
    /// The resource's write rules (upstream's registry strategy).
    pub strategy: Arc<dyn Strategy>,
    /// A custom resource version's `additionalPrinterColumns` (empty for built-in kinds,
    /// whose Table columns are upstream's printers in `crate::table`).
    pub printer_columns: Vec<crate::printer_columns::PrinterColumn>,
}

/// Two entries are equal when they describe the same resource the same way (the strategy is
/// chosen by the resource, so it is not compared).
impl PartialEq for ResourceInfo {
    fn eq(&self, other: &Self) -> bool {
        self.group == other.group
            && self.version == other.version
            && self.plural == other.plural
            && self.singular == other.singular
            && self.kind == other.kind
            && self.list_kind == other.list_kind
            && self.namespaced == other.namespaced
            && self.short_names == other.short_names
            && self.categories == other.categories
            && self.has_status == other.has_status
            && self.has_scale == other.has_scale
            && self.subresources == other.subresources
            && self.selectable_fields == other.selectable_fields
            && self.printer_columns == other.printer_columns
    }
}

impl Eq for ResourceInfo {}

impl ResourceInfo {
    /// `group/version`, or just `version` for the core group (the `apiVersion` of objects).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Stable key identifying this resource in the store (`group/resource`).
    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    /// Group, version and Kind, as the strategy reports them in errors.
    pub fn object_kind(&self) -> ObjectKind<'_> {
        ObjectKind {
            group: &self.group,
            version: &self.version,
            kind: &self.kind,
        }
    }

    /// Label for metrics and logs (the plural, as upstream's `resource` label).
    pub fn metric_name(&self) -> &str {
        &self.plural
    }
}

/// The registry entry of a built-in kind's row.
fn builtin(row: &crate::kinds::BuiltinKind) -> ResourceInfo {
    ResourceInfo {
        group: row.group.to_string(),
        version: row.version.to_string(),
        plural: row.plural.to_string(),
        singular: row.singular(),
        kind: row.kind.to_string(),
        list_kind: format!("{}List", row.kind),
        namespaced: row.namespaced,
        short_names: row.short_names.iter().map(|s| s.to_string()).collect(),
        categories: row.categories.iter().map(|s| s.to_string()).collect(),
        has_status: row.status,
        has_scale: row.scale,
        subresources: row.subresources,
        selectable_fields: row
            .selectable_fields
            .iter()
            .map(|s| s.to_string())
            .collect(),
        strategy: strategy::for_kind(row),
        printer_columns: Vec::new(),
    }
}

/// The built-in resources this server serves: one entry per row of [`crate::kinds::all`].
pub fn builtin_resources() -> Vec<ResourceInfo> {
    crate::kinds::all().iter().map(builtin).collect()
}

/// Whether `group`/`plural` is one of the built-in resources (cached: called on every write).
pub fn is_builtin(group: &str, plural: &str) -> bool {
    static BUILTIN: std::sync::LazyLock<Vec<(String, String)>> = std::sync::LazyLock::new(|| {
        builtin_resources()
            .into_iter()
            .map(|r| (r.group, r.plural))
            .collect()
    });
    BUILTIN.iter().any(|(g, p)| g == group && p == plural)
}

/// Preferred order of groups in discovery (core first, like upstream).
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "apps",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// The set of served resources; custom resources come and go with their CRDs.
#[derive(Debug, Default)]
pub struct Registry {
    inner: RwLock<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    /// Keyed by group, then version, then plural: lookups borrow the request's `&str`s
    /// (no allocation on the request path) and iteration order is (group, version, plural).
    by_group: BTreeMap<String, BTreeMap<String, BTreeMap<String, Arc<ResourceInfo>>>>,
}

impl RegistryInner {
    fn insert(&mut self, info: ResourceInfo) {
        self.by_group
            .entry(info.group.clone())
            .or_default()
            .entry(info.version.clone())
            .or_default()
            .insert(info.plural.clone(), Arc::new(info));
    }

    fn values(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_group
            .values()
            .flat_map(|versions| versions.values())
            .flat_map(|plurals| plurals.values())
    }

    /// Removes every version of `plural` in `group` (`None` = all), dropping emptied levels.
    fn remove(&mut self, group: &str, version: Option<&str>, plural: &str) {
        let Some(versions) = self.by_group.get_mut(group) else {
            return;
        };
        for (v, plurals) in versions.iter_mut() {
            if version.is_none_or(|want| want == v) {
                plurals.remove(plural);
            }
        }
        versions.retain(|_, plurals| !plurals.is_empty());
        if versions.is_empty() {
            self.by_group.remove(group);
        }
    }
}

impl Registry {
    /// A registry holding the built-in resources.
    pub fn with_builtins() -> Self {
        let registry = Registry::default();
        for info in builtin_resources() {
            registry.insert(info);
        }
        registry
    }

    fn insert(&self, info: ResourceInfo) {
        self.inner.write().insert(info);
    }

    /// Looks up a resource by group, version and plural name.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.inner
            .read()
            .by_group
            .get(group)?
            .get(version)?
            .get(plural)
            .cloned()
    }

    /// Looks up a resource by `apiVersion` and `kind` (as found in object bodies).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.inner
            .read()
            .by_group
            .get(group)?
            .get(version)?
            .values()
            .find(|r| r.kind == kind)
            .cloned()
    }

    /// Every served resource, ordered by group, version and plural.
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.inner.read().values().cloned().collect()
    }

    /// Whether any resource of the group/version is served.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.inner
            .read()
            .by_group
            .get(group)
            .and_then(|versions| versions.get(version))
            .is_some_and(|plurals| !plurals.is_empty())
    }

    /// Registers (or re-registers) the resources a CustomResourceDefinition defines, replacing
    /// previous registrations of the same group and plural. Returns the resource keys served.
    pub fn register_crd(&self, crd: &Value) -> Vec<ResourceInfo> {
        let infos = crd_resources(crd);
        let mut inner = self.inner.write();
        if let Some(first) = infos.first() {
            inner.remove(&first.group, None, &first.plural);
        }
        for info in &infos {
            inner.insert(info.clone());
        }
        infos
    }

    /// Removes the resources of a deleted CustomResourceDefinition.
    pub fn unregister_crd(&self, crd: &Value) {
        let mut inner = self.inner.write();
        for info in crd_resources(crd) {
            inner.remove(&info.group, Some(&info.version), &info.plural);
        }
    }
}

/// Splits `group/version` (or a bare core `version`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The served versions of a CRD as resource descriptions (`spec.versions[*].served`).
pub fn crd_resources(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version["served"].as_bool() == Some(false) {
            continue;
        }
        let Some(name) = version["name"].as_str() else {
            continue;
        };
        out.push(ResourceInfo {
            group: group.clone(),
            version: name.to_string(),
            plural: plural.clone(),
            singular: names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| kind.to_lowercase()),
            kind: kind.clone(),
            list_kind: names["listKind"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{kind}List")),
            namespaced,
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            has_status: version["subresources"]["status"].is_object(),
            has_scale: false,
            subresources: &[],
            selectable_fields: Vec::new(),
            strategy: Arc::new(strategy::CustomResources {
                has_status: version["subresources"]["status"].is_object(),
                namespaced,
                schema: version["schema"]["openAPIV3Schema"].clone(),
            }),
            printer_columns: crate::printer_columns::PrinterColumn::of_crd_version(version),
        });
    }
    out
}
