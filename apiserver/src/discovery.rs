//! Discovery (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`), `/version`, and the
//! OpenAPI v3 index and per-group-version documents `kubectl` reads to learn that the server
//! does server-side field validation (FACTS.md, "What kubectl asks of an API server").

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::openapi;
use crate::resources::{Registry, ResourceInfo, ResourceKey, GROUP_ORDER};
use crate::state::AppState;
use crate::store::StoredObject;

/// Kubernetes version this server reports (the version FACTS.md was recorded against).
pub const KUBE_VERSION: (&str, &str) = ("1", "32");

/// Verbs of a resource whose storage is upstream's generic registry store (every interface:
/// creater, updater, getter, lister, watcher, patcher, deleter, collection deleter).
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The same without `deletecollection`: upstream's namespace storage
/// (`pkg/registry/core/namespace/storage/storage.go`, `REST`) wraps the generic store but does
/// not implement `rest.CollectionDeleter`, so kube-apiserver neither lists nor serves it.
const VERBS_WITHOUT_DELETECOLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The verbs kube-apiserver lists for a resource in discovery (derived, as upstream's
/// `endpoints/installer.go` does, from the interfaces its storage implements); requests for
/// other verbs answer 405.
pub fn verbs(info: &ResourceInfo) -> &'static [&'static str] {
    if info.group.is_empty() && info.plural == "namespaces" {
        VERBS_WITHOUT_DELETECOLLECTION
    } else {
        VERBS
    }
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "gitVersion": format!("v{}.{}.0-svcplane.{}", KUBE_VERSION.0, KUBE_VERSION.1, env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The create-only resources answered without storage (`access_review.rs`): (group, version,
/// resource, Kind), listed in discovery as kube-apiserver lists them (cluster-scoped, verb
/// `create`). Upstream's `tokenreviews`, `subjectaccessreviews` and
/// `localsubjectaccessreviews` are not served here, so not listed.
const REVIEWS: &[(&str, &str, &str, &str)] = &[
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
    ),
];

fn groups(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let served = registry.all();
    let pairs = served
        .iter()
        .map(|r| (r.group.as_str(), r.version.as_str()))
        .chain(REVIEWS.iter().map(|(g, v, _, _)| (*g, *v)));
    for (group, version) in pairs {
        if group.is_empty() {
            continue;
        }
        let versions = out.entry(group.to_string()).or_default();
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_string());
        }
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn group_list(registry: &Registry) -> Value {
    let groups = groups(registry);
    let mut names: Vec<&String> = groups.keys().collect();
    names.sort_by_key(|g| {
        (
            GROUP_ORDER
                .iter()
                .position(|o| o == g)
                .unwrap_or(GROUP_ORDER.len()),
            (*g).clone(),
        )
    });
    let list: Vec<Value> = names.iter().map(|g| group_json(g, &groups[*g])).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list})
}

/// `/apis/{group}`.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let groups = groups(registry);
    let versions = groups.get(name)?;
    let mut g = group_json(name, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    let reviews: Vec<Value> = REVIEWS
        .iter()
        .filter(|(g, v, _, _)| *g == group && *v == version)
        .map(|(_, _, plural, kind)| {
            json!({"name": plural, "singularName": "", "namespaced": false, "kind": kind, "verbs": ["create"]})
        })
        .collect();
    if resources.is_empty() && reviews.is_empty() {
        return None;
    }
    resources.sort_by(|a, b| a.plural.cmp(&b.plural));
    let mut list = Vec::new();
    for r in &resources {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        if r.has_scale {
            list.push(json!({
                "name": format!("{}/scale", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        for sub in r.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, sub.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": sub.kind,
                "verbs": sub.verbs,
            });
            if !sub.group.is_empty() {
                entry["group"] = json!(sub.group);
                entry["version"] = json!(sub.version);
            }
            list.push(entry);
        }
        // Subresources in name order, as upstream lists them (`scale` < `status`).
        if r.has_status {
            list.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.group.is_empty() && r.plural == "namespaces" {
            list.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
        }
    }
    list.extend(reviews);
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list,
    }))
}

/// Path of a group-version's OpenAPI v3 document, relative to `/openapi/v3/`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// One generated per-group-version document and the hash of its content (the `?hash=` the
/// index advertises, so clients' caches, `kubectl`'s on-disk one included, refresh exactly
/// when the content changes).
struct GvDocument {
    value: Arc<Value>,
    hash: String,
}

/// Generated documents by (group-version path, [`resources_fingerprint`]).
type DocumentCache = HashMap<(String, u64), Arc<GvDocument>>;

/// Documents already generated, keyed by group-version path and the fingerprint of the served
/// resources they were built from: they are static per registry state, so a request only
/// builds one when its group-version's resources changed (a CRD registered or removed).
/// Shared by every server in the process: the key fully determines the content.
static DOCUMENTS: LazyLock<Mutex<DocumentCache>> = LazyLock::new(Default::default);

/// Bound on [`DOCUMENTS`]; exceeding it (CRD churn) starts the cache afresh.
const MAX_CACHED_DOCUMENTS: usize = 256;

/// Fingerprint of what a group-version document is built from: its served resources and the
/// identity and revision of the CustomResourceDefinitions that supply their schemas.
fn fingerprint(resources: &[Arc<ResourceInfo>], crds: &[Arc<StoredObject>]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in resources {
        (&r.group, &r.version, &r.plural, &r.kind, r.namespaced).hash(&mut h);
    }
    // The uid keeps two servers in one process (whose revisions may coincide) apart in the
    // process-wide cache.
    for crd in crds {
        (&crd.name, &crd.uid, crd.rv).hash(&mut h);
    }
    h.finish()
}

/// Served resources grouped by group-version document path.
fn by_group_version(registry: &Registry) -> BTreeMap<String, Vec<Arc<ResourceInfo>>> {
    let mut by_gv: BTreeMap<String, Vec<Arc<ResourceInfo>>> = BTreeMap::new();
    for r in registry.all() {
        by_gv
            .entry(gv_path(&r.group, &r.version))
            .or_default()
            .push(r);
    }
    by_gv
}

/// The stored CustomResourceDefinitions of `group` (upstream requires a CRD's name to be
/// `<plural>.<group>`, so the name selects them without parsing their bodies).
fn crds_of_group(state: &AppState, group: &str) -> Vec<Arc<StoredObject>> {
    if group.is_empty() {
        return Vec::new();
    }
    let key = ResourceKey {
        group: "apiextensions.k8s.io".into(),
        plural: "customresourcedefinitions".into(),
    };
    let suffix = format!(".{group}");
    state
        .store
        .list(&key, None, |o| o.name.ends_with(&suffix), None, None)
        .1
}

/// The cached document of one group-version, built on first request.
fn document_for(
    path: &str,
    resources: &[Arc<ResourceInfo>],
    crds: &[Arc<StoredObject>],
) -> Arc<GvDocument> {
    let key = (path.to_string(), fingerprint(resources, crds));
    if let Some(doc) = DOCUMENTS.lock().get(&key) {
        return doc.clone();
    }
    let value = build_document(resources, crds);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(&value).unwrap_or_default().hash(&mut h);
    let doc = Arc::new(GvDocument {
        value: Arc::new(value),
        hash: format!("{:016X}", h.finish()),
    });
    let mut cache = DOCUMENTS.lock();
    if cache.len() >= MAX_CACHED_DOCUMENTS {
        cache.clear();
    }
    cache.insert(key, doc.clone());
    doc
}

/// The index over `registry`, each document built with the CRDs `crds` returns for its group.
fn index_with(registry: &Registry, crds: impl Fn(&str) -> Vec<Arc<StoredObject>>) -> Value {
    let mut paths = serde_json::Map::new();
    for (path, resources) in by_group_version(registry) {
        let group = resources.first().map(|r| r.group.as_str()).unwrap_or("");
        let doc = document_for(&path, &resources, &crds(group));
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
        );
    }
    json!({"paths": paths})
}

/// One group-version's document over `registry` with the CRDs `crds` returns for its group.
fn document_with(
    registry: &Registry,
    path: &str,
    crds: impl Fn(&str) -> Vec<Arc<StoredObject>>,
) -> Option<Arc<Value>> {
    let path = path.trim_matches('/');
    let resources: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|r| gv_path(&r.group, &r.version) == path)
        .collect();
    let group = resources.first()?.group.clone();
    Some(document_for(path, &resources, &crds(&group)).value.clone())
}

/// `/openapi/v3`: the index of per-group-version documents; each `?hash=` is a hash of the
/// document's content. Custom resources get no schemas here (see [`openapi_index_for`]).
pub fn openapi_index(registry: &Registry) -> Value {
    index_with(registry, |_| Vec::new())
}

/// `/openapi/v3` as [`openapi_index`], with custom resources' schemas taken from their stored
/// CustomResourceDefinitions (so a CRD schema change changes its document's hash).
pub fn openapi_index_for(state: &AppState) -> Value {
    index_with(&state.registry, |group| crds_of_group(state, group))
}

/// `/openapi/v3/{api/v1 | apis/group/version}`: paths for every resource with the
/// `x-kubernetes-group-version-kind` extension and the `fieldValidation` parameter on writes,
/// which is what `kubectl` checks before sending `fieldValidation=Strict`, and the component
/// schemas of the built-in kinds (`crate::openapi`), which `kubectl explain` reads. Custom
/// resources get no schemas here (see [`openapi_document_for`]).
///
/// Operations do not reference the schemas: `kubectl explain` finds the kind through the
/// operations' GVK and the schemas' `x-kubernetes-group-version-kind`, and PATCH declares no
/// request body, so `kubectl apply` keeps computing strategic merge patches from its built-in
/// types (it uses OpenAPI v3 for that only when PATCH accepts
/// `application/strategic-merge-patch+json`).
#[cfg(test)]
pub fn openapi_document(registry: &Registry, path: &str) -> Option<Arc<Value>> {
    document_with(registry, path, |_| Vec::new())
}

/// The document as [`openapi_document`], plus each served custom resource version's schema
/// from its CRD's `spec.versions[].schema.openAPIV3Schema` with the GVK extension (and
/// `ObjectMeta` with what it references), as upstream's CRD OpenAPI builder publishes.
pub fn openapi_document_for(state: &AppState, path: &str) -> Option<Arc<Value>> {
    document_with(&state.registry, path, |group| crds_of_group(state, group))
}

/// Builds one group-version document (see [`openapi_document`]).
fn build_document(resources: &[Arc<ResourceInfo>], crds: &[Arc<StoredObject>]) -> Value {
    let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let write_params = json!([
        param("dryRun"),
        param("fieldManager"),
        param("fieldValidation")
    ]);
    let mut paths = serde_json::Map::new();
    for r in resources {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let prefix = format!("/{}", gv_path(&r.group, &r.version));
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        let op = |id: &str| {
            json!({
                "operationId": format!("{id}{}", r.kind),
                "x-kubernetes-action": id,
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}},
            })
        };
        let mut post = op("post");
        post["parameters"] = write_params.clone();
        paths.insert(collection.clone(), json!({"get": op("list"), "post": post}));
        let mut put = op("put");
        put["parameters"] = write_params.clone();
        let mut patch = op("patch");
        patch["parameters"] = write_params.clone();
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"get": op("get"), "put": put, "patch": patch, "delete": op("delete")}),
        );
    }
    let (group, version) = resources
        .first()
        .map(|r| (r.group.as_str(), r.version.as_str()))
        .unwrap_or_default();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", KUBE_VERSION.0, KUBE_VERSION.1)},
        "paths": paths,
        "components": {"schemas": component_schemas(group, version, resources, crds)},
    })
}

/// The built-in schemas of the group-version plus the schema of every served custom resource
/// whose CRD declares one (with `ObjectMeta` and its references), sorted by name.
fn component_schemas(
    group: &str,
    version: &str,
    resources: &[Arc<ResourceInfo>],
    crds: &[Arc<StoredObject>],
) -> serde_json::Map<String, Value> {
    let mut schemas: BTreeMap<String, Value> = openapi::builtin_schemas(group, version)
        .into_iter()
        .collect();
    let mut any_crd = false;
    for crd in crds {
        let crd = crd.value();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
        if crd["spec"]["group"].as_str() != Some(group)
            || !resources
                .iter()
                .any(|r| r.kind == kind && r.version == version)
        {
            continue;
        }
        if let Some((name, schema)) = openapi::crd_schema(&crd, version) {
            schemas.insert(name, schema);
            any_crd = true;
        }
    }
    if any_crd {
        for (name, schema) in openapi::object_meta_schemas() {
            schemas.entry(name).or_insert(schema);
        }
    }
    schemas.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(plural: &str, kind: &str) -> Value {
        json!({"spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [{"name": "v1", "served": true, "storage": true}],
        }})
    }

    fn hash_of(registry: &Registry, path: &str) -> Option<String> {
        openapi_index(registry)["paths"][path]["serverRelativeURL"]
            .as_str()
            .map(|u| u.rsplit_once("?hash=").expect("hash").1.to_string())
    }

    #[test]
    fn self_reviews_are_listed_as_upstream_create_only_resources() {
        let registry = Registry::with_builtins();
        let list = resource_list(&registry, "authorization.k8s.io", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]
        );
        assert_eq!(list["resources"][0]["verbs"], json!(["create"]));
        assert!(group(&registry, "authentication.k8s.io").is_some());
        let all = group_list(&registry);
        assert!(all["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "authorization.k8s.io"));
    }

    #[test]
    fn index_hash_is_stable_and_follows_the_served_resources() {
        let registry = Registry::with_builtins();
        let core = hash_of(&registry, "api/v1").expect("api/v1 listed");
        assert_eq!(hash_of(&registry, "api/v1").as_deref(), Some(core.as_str()));
        assert_eq!(hash_of(&registry, "apis/stable.example.com/v1"), None);

        registry.register_crd(&crd("crontabs", "CronTab"));
        let one = hash_of(&registry, "apis/stable.example.com/v1").expect("CRD listed");
        registry.register_crd(&crd("backups", "Backup"));
        let two = hash_of(&registry, "apis/stable.example.com/v1").expect("CRD listed");
        assert_ne!(one, two, "a second kind changes the group-version document");
        assert_eq!(
            hash_of(&registry, "api/v1"),
            Some(core),
            "other documents keep theirs"
        );
    }

    fn stored(crd: &Value, rv: u64) -> Arc<StoredObject> {
        stored_with_uid(crd, rv, "u")
    }

    fn stored_with_uid(crd: &Value, rv: u64, uid: &str) -> Arc<StoredObject> {
        Arc::new(StoredObject {
            rv,
            namespace: String::new(),
            name: "crontabs.stable.example.com".into(),
            uid: uid.into(),
            json: crd.to_string().into(),
            labels: Default::default(),
            fields: Vec::new(),
            owners: Vec::new(),
            deleting: false,
        })
    }

    #[test]
    fn crd_versions_get_their_openapi_v3_schema_with_gvk_and_object_meta() {
        let registry = Registry::with_builtins();
        let mut crd = crd("crontabs", "CronTab");
        crd["spec"]["versions"][0]["schema"] = json!({"openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object", "description": "desired cron",
                "properties": {"cronSpec": {"type": "string", "description": "the schedule"}}}}
        }});
        registry.register_crd(&crd);
        let crds = [stored(&crd, 7)];
        let path = "apis/stable.example.com/v1";
        let doc = document_with(&registry, path, |_| crds.to_vec()).expect("served");
        let schemas = &doc["components"]["schemas"];
        let schema = &schemas["com.example.stable.v1.CronTab"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
        );
        assert_eq!(
            schema["properties"]["spec"]["properties"]["cronSpec"]["description"],
            "the schedule"
        );
        assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
        let hash = |crds: Vec<Arc<StoredObject>>| {
            index_with(&registry, move |_| crds.clone())["paths"][path]["serverRelativeURL"].clone()
        };
        let before = hash(crds.to_vec());
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["description"] = json!("changed");
        assert_ne!(
            before,
            hash(vec![stored(&crd, 8)]),
            "a schema change changes the hash"
        );
        // Without the CRD objects (the registry-only entry points) the kind has no schema.
        let bare = openapi_document(&registry, path).expect("served");
        assert!(bare["components"]["schemas"]["com.example.stable.v1.CronTab"].is_null());
    }

    #[test]
    fn same_crd_name_and_revision_on_two_servers_do_not_share_a_cached_document() {
        let registry = Registry::with_builtins();
        let mut crd = crd("crontabs", "CronTab");
        crd["spec"]["versions"][0]["schema"] =
            json!({"openAPIV3Schema": {"type": "object", "description": "first server"}});
        registry.register_crd(&crd);
        let path = "apis/stable.example.com/v1";
        let one = [stored_with_uid(&crd, 5, "uid-1")];
        let first = document_with(&registry, path, |_| one.to_vec()).expect("served");
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] =
            json!("second server");
        let two = [stored_with_uid(&crd, 5, "uid-2")];
        let second = document_with(&registry, path, |_| two.to_vec()).expect("served");
        let desc = |d: &Value| {
            d["components"]["schemas"]["com.example.stable.v1.CronTab"]["description"].clone()
        };
        assert_eq!(desc(&first), "first server");
        assert_eq!(desc(&second), "second server");
    }

    #[test]
    fn document_holds_the_builtin_kind_schemas_of_its_group_version_only() {
        let registry = Registry::with_builtins();
        let doc = openapi_document(&registry, "apis/discovery.k8s.io/v1").expect("served");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        assert!(schemas.contains_key("io.k8s.api.discovery.v1.EndpointSlice"));
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Service"));
        assert!(openapi_document(&registry, "apis/nope.example.com/v1").is_none());
    }
}
