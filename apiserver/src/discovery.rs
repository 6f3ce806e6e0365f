//! Discovery (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`), `/version`, and the
//! OpenAPI v3 index and per-group-version documents `kubectl` reads to learn that the server
//! does server-side field validation (FACTS.md, "What kubectl asks of an API server").

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::openapi;
use crate::resources::{Registry, ResourceInfo, GROUP_ORDER};

/// Kubernetes version this server reports (the version FACTS.md was recorded against).
pub const KUBE_VERSION: (&str, &str) = ("1", "32");

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

fn groups(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in registry.all() {
        if r.group.is_empty() {
            continue;
        }
        let versions = out.entry(r.group.clone()).or_default();
        if !versions.contains(&r.version) {
            versions.push(r.version.clone());
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
    if resources.is_empty() {
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
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
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

/// Fingerprint of a group-version's served resources (what its document is built from).
fn resources_fingerprint(resources: &[Arc<ResourceInfo>]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in resources {
        (&r.group, &r.version, &r.plural, &r.kind, r.namespaced).hash(&mut h);
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

/// The cached document of one group-version, built on first request.
fn document_for(path: &str, resources: &[Arc<ResourceInfo>]) -> Arc<GvDocument> {
    let key = (path.to_string(), resources_fingerprint(resources));
    if let Some(doc) = DOCUMENTS.lock().get(&key) {
        return doc.clone();
    }
    let value = build_document(resources);
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

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (path, resources) in by_group_version(registry) {
        let doc = document_for(&path, &resources);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/{api/v1 | apis/group/version}`: paths for every resource with the
/// `x-kubernetes-group-version-kind` extension and the `fieldValidation` parameter on writes,
/// which is what `kubectl` checks before sending `fieldValidation=Strict`, and the component
/// schemas of the built-in kinds (`crate::openapi`), which `kubectl explain` reads.
///
/// Operations do not reference the schemas: `kubectl explain` finds the kind through the
/// operations' GVK and the schemas' `x-kubernetes-group-version-kind`, and PATCH declares no
/// request body, so `kubectl apply` keeps computing strategic merge patches from its built-in
/// types (it uses OpenAPI v3 for that only when PATCH accepts
/// `application/strategic-merge-patch+json`).
pub fn openapi_document(registry: &Registry, path: &str) -> Option<Arc<Value>> {
    let path = path.trim_matches('/');
    let resources: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|r| gv_path(&r.group, &r.version) == path)
        .collect();
    if resources.is_empty() {
        return None;
    }
    Some(document_for(path, &resources).value.clone())
}

/// Builds one group-version document (see [`openapi_document`]).
fn build_document(resources: &[Arc<ResourceInfo>]) -> Value {
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
        "components": {"schemas": openapi::builtin_schemas(group, version)},
    })
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
