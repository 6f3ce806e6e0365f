//! Component schemas (`components.schemas`) of the OpenAPI v3 per-group-version documents.
//!
//! kube-apiserver publishes every served kind's schema under its dotted Go package name
//! (`io.k8s.api.core.v1.Service`), marks top-level kinds with `x-kubernetes-group-version-kind`,
//! and refers to nested types with `allOf: [{$ref: "#/components/schemas/..."}]` when a field
//! carries its own description. `kubectl explain` (OpenAPI v3 path, `explain/v2` templates)
//! finds a resource's kind from the operations' GVK and then the schema whose GVK list holds it.
//!
//! Built-in schemas come from the `k8s-openapi` types' `schemars` implementations, generated
//! with schemars' OpenAPI 3 settings (refs under `#/components/schemas/`, sibling keywords of
//! `$ref` moved into `allOf` as upstream does). Custom resources get the CRD version's
//! `schema.openAPIV3Schema`, as upstream's CRD OpenAPI builder does.
//!
//! Beyond/short of upstream: `k8s-openapi` does not carry `enum`, `default` or the
//! `x-kubernetes-list-*`/`x-kubernetes-patch-*` markers, so these schemas lack them, and list
//! kinds (`ServiceList`) and the shared meta kinds (`Status`, `DeleteOptions`, `WatchEvent`)
//! are not published.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

/// Every built-in kind the server serves: the rows of [`crate::kinds::all`].
fn builtin_kinds() -> &'static [crate::kinds::BuiltinKind] {
    crate::kinds::all()
}

/// The `x-kubernetes-group-version-kind` extension upstream puts on a top-level kind's schema.
pub fn gvk_extension(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// Schemas of the built-in kinds of one group-version, keyed by upstream's dotted name and
/// sorted like upstream's documents; empty when the group-version has no built-in kind.
fn generate_builtin(group: &str, version: &str) -> Map<String, Value> {
    let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
    let mut kinds = Vec::new();
    for k in builtin_kinds()
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        kinds.push(((k.schema)(&mut generator), k));
    }
    let mut schemas: BTreeMap<String, Value> =
        generator.take_definitions(true).into_iter().collect();
    apply_markers(&mut schemas);
    for (name, k) in kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                gvk_extension(k.group, k.version, k.kind),
            );
        }
    }
    schemas.into_iter().collect()
}

/// Upstream markers `k8s-openapi` drops, for the Service-networking fields: `enum` (from the
/// `+enum` Go types `ServiceType`, `ServiceAffinity`, `ServiceExternalTrafficPolicy`,
/// `ServiceInternalTrafficPolicy`, `IPFamilyPolicy`, `Protocol`, `discovery/v1.AddressType`) and
/// `default` (`+default="TCP"` on `ServicePort.protocol`). Each row: schema name, property,
/// keywords merged into the property's schema. List and map markers come from
/// [`MERGE_MARKERS`].
const MARKERS: &[(&str, &str, &str)] = &[
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "type",
        r#"{"enum": ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "sessionAffinity",
        r#"{"enum": ["ClientIP", "None"]}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "externalTrafficPolicy",
        r#"{"enum": ["Cluster", "Local"]}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "internalTrafficPolicy",
        r#"{"enum": ["Cluster", "Local"]}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ipFamilyPolicy",
        r#"{"enum": ["PreferDualStack", "RequireDualStack", "SingleStack"]}"#,
    ),
    (
        "io.k8s.api.core.v1.ServicePort",
        "protocol",
        r#"{"default": "TCP", "enum": ["SCTP", "TCP", "UDP"]}"#,
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        "addressType",
        r#"{"enum": ["FQDN", "IPv4", "IPv6"]}"#,
    ),
    (
        "io.k8s.api.discovery.v1.EndpointPort",
        "protocol",
        r#"{"enum": ["SCTP", "TCP", "UDP"]}"#,
    ),
];

/// `ServiceSpec` fields whose list/map markers (`+listType`, `+listMapKey`, `+patchStrategy`,
/// `+patchMergeKey`, `+mapType`) are published: (schema name, property, kind, path in the
/// kind). The markers themselves are read from the merge tables the server patches with
/// (`patch::list_types`), so the documents cannot disagree with how the server merges.
const MERGE_MARKERS: &[(&str, &str, &str, &str)] = &[
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "Service",
        "spec.ports",
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "clusterIPs",
        "Service",
        "spec.clusterIPs",
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ipFamilies",
        "Service",
        "spec.ipFamilies",
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "externalIPs",
        "Service",
        "spec.externalIPs",
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "loadBalancerSourceRanges",
        "Service",
        "spec.loadBalancerSourceRanges",
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "selector",
        "Service",
        "spec.selector",
    ),
];

/// The OpenAPI extensions describing how a core/v1 field merges, from the patch tables.
fn merge_keywords(kind: &str, path: &str) -> Map<String, Value> {
    use crate::patch::list_types::{SmpList, SsaList};
    let schema = crate::patch::Schema::for_kind(&crate::patch::Gvk::new("v1", kind));
    let mut out = Map::new();
    if schema.is_atomic_map(path) {
        out.insert("x-kubernetes-map-type".into(), json!("atomic"));
        return out;
    }
    let list = schema.list(path);
    match list.ssa {
        SsaList::Atomic => {
            out.insert("x-kubernetes-list-type".into(), json!("atomic"));
        }
        SsaList::Set => {
            out.insert("x-kubernetes-list-type".into(), json!("set"));
        }
        SsaList::Map(keys) => {
            out.insert("x-kubernetes-list-map-keys".into(), json!(keys));
            out.insert("x-kubernetes-list-type".into(), json!("map"));
        }
    }
    match list.smp {
        SmpList::Replace => {}
        SmpList::MergeByKey(key) => {
            out.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            out.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
        }
        SmpList::MergePrimitives => {
            out.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
        }
    }
    out
}

/// Merges [`MARKERS`] and [`MERGE_MARKERS`] into the schemas present (a row whose schema or
/// property is absent, or whose keywords do not parse, is skipped: the schema then simply lacks
/// the marker).
fn apply_markers(schemas: &mut BTreeMap<String, Value>) {
    let rows =
        MARKERS
            .iter()
            .filter_map(
                |(name, property, keywords)| match serde_json::from_str(keywords) {
                    Ok(Value::Object(extra)) => Some((*name, *property, extra)),
                    _ => None,
                },
            )
            .chain(MERGE_MARKERS.iter().map(|(name, property, kind, path)| {
                (*name, *property, merge_keywords(kind, path))
            }));
    for (name, property, extra) in rows {
        if let Some(Value::Object(prop)) = schemas
            .get_mut(name)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(property))
        {
            prop.extend(extra);
        }
    }
}

/// Component schemas keyed by (group, version).
type SchemasByGroupVersion = BTreeMap<(&'static str, &'static str), Map<String, Value>>;

/// Built-in schemas per group-version, generated once per process on first use (they depend
/// only on the compiled-in `k8s-openapi` types).
static BUILTIN_SCHEMAS: LazyLock<SchemasByGroupVersion> = LazyLock::new(|| {
    let started = std::time::Instant::now();
    let mut out = BTreeMap::new();
    for k in builtin_kinds() {
        out.entry((k.group, k.version))
            .or_insert_with(|| generate_builtin(k.group, k.version));
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "generated built-in OpenAPI v3 schemas"
    );
    out
});

/// The built-in component schemas of `group`/`version` (empty for groups without built-ins).
pub fn builtin_schemas(group: &str, version: &str) -> Map<String, Value> {
    BUILTIN_SCHEMAS
        .get(&(group, version))
        .cloned()
        .unwrap_or_default()
}

/// The built-in component schemas of `group`/`version` without copying them (an empty map for
/// groups without built-ins).
pub fn builtin_schemas_ref(group: &str, version: &str) -> &'static Map<String, Value> {
    static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
    BUILTIN_SCHEMAS
        .iter()
        .find(|((g, v), _)| *g == group && *v == version)
        .map_or(&EMPTY, |(_, schemas)| schemas)
}

/// Upstream's component name for a custom resource's schema: the group reversed, then the
/// version and kind (`com.example.stable.v1.CronTab` for `stable.example.com`), as the CRD
/// OpenAPI builder names definitions.
pub fn crd_schema_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The component schema of one served CRD version: its `schema.openAPIV3Schema` with the GVK
/// extension, and `apiVersion`, `kind` and `metadata` documented like upstream's builder does
/// (metadata refers to `ObjectMeta`). `None` when the version declares no schema.
pub fn crd_schema(crd: &Value, version: &str) -> Option<(String, Value)> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str()?;
    let kind = spec["names"]["kind"].as_str()?;
    let entry = spec["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"].as_str() == Some(version))?;
    let mut schema = entry["schema"]["openAPIV3Schema"].as_object()?.clone();
    let properties = schema
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()?;
    let meta = builtin_meta_schemas();
    let describe = |name: &str| -> Value {
        meta.get("io.k8s.api.core.v1.Service")
            .and_then(|s| s["properties"][name]["description"].as_str())
            .map(|d| json!(d))
            .unwrap_or(Value::Null)
    };
    for field in ["apiVersion", "kind"] {
        let prop = properties
            .entry(field)
            .or_insert_with(|| json!({"type": "string"}));
        if let Some(obj) = prop.as_object_mut() {
            if !obj.contains_key("description") && !describe(field).is_null() {
                obj.insert("description".into(), describe(field));
            }
        }
    }
    properties.insert(
        "metadata".into(),
        json!({
            "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
            "description": describe("metadata"),
        }),
    );
    schema.insert(
        "x-kubernetes-group-version-kind".into(),
        gvk_extension(group, version, kind),
    );
    Some((crd_schema_name(group, version, kind), Value::Object(schema)))
}

/// The core group's schemas, used for `ObjectMeta` (and its references) in CRD documents and
/// for the standard descriptions of `apiVersion`, `kind` and `metadata`.
fn builtin_meta_schemas() -> &'static Map<String, Value> {
    static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
    BUILTIN_SCHEMAS.get(&("", "v1")).unwrap_or(&EMPTY)
}

/// `ObjectMeta` and the schemas it references (what a CRD document needs besides its kinds).
pub fn object_meta_schemas() -> Map<String, Value> {
    static META: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
        generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
        let schemas: BTreeMap<String, Value> =
            generator.take_definitions(true).into_iter().collect();
        schemas.into_iter().collect()
    });
    META.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_schema_has_gvk_and_refs_spec_via_all_of() {
        let schemas = builtin_schemas("", "v1");
        let svc = &schemas["io.k8s.api.core.v1.Service"];
        assert_eq!(
            svc["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Service", "version": "v1"}])
        );
        assert_eq!(
            svc["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"
        );
        assert!(svc["properties"]["spec"]["description"].is_string());
        let spec = &schemas["io.k8s.api.core.v1.ServiceSpec"];
        assert_eq!(spec["properties"]["ipFamilyPolicy"]["type"], "string");
        // Only kinds carry the GVK extension.
        assert!(spec.get("x-kubernetes-group-version-kind").is_none());
    }

    #[test]
    fn service_networking_fields_carry_upstream_enums_and_list_markers() {
        let core = builtin_schemas("", "v1");
        let spec = &core["io.k8s.api.core.v1.ServiceSpec"]["properties"];
        assert_eq!(
            spec["ipFamilyPolicy"]["enum"],
            json!(["PreferDualStack", "RequireDualStack", "SingleStack"])
        );
        assert_eq!(
            spec["ports"]["x-kubernetes-list-map-keys"],
            json!(["port", "protocol"])
        );
        assert_eq!(spec["ports"]["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(
            core["io.k8s.api.core.v1.ServicePort"]["properties"]["protocol"]["default"],
            "TCP"
        );
        let disc = builtin_schemas("discovery.k8s.io", "v1");
        assert_eq!(
            disc["io.k8s.api.discovery.v1.EndpointSlice"]["properties"]["addressType"]["enum"],
            json!(["FQDN", "IPv4", "IPv6"])
        );
        // Merge markers come from the patch tables and land on their property.
        for (name, property, kind, path) in MERGE_MARKERS {
            let keywords = merge_keywords(kind, path);
            assert!(!keywords.is_empty(), "{kind} {path}");
            for (k, v) in keywords {
                assert_eq!(
                    core[*name]["properties"][*property][&k], v,
                    "{name}.{property} {k}"
                );
            }
        }
        // Every row lands somewhere: a renamed schema or property would otherwise go unnoticed.
        for (name, property, keywords) in MARKERS {
            assert!(
                serde_json::from_str::<Value>(keywords).is_ok_and(|v| v.is_object()),
                "{name}.{property} keywords parse"
            );
            let found = builtin_kinds().iter().any(|k| {
                builtin_schemas(k.group, k.version)
                    .get(*name)
                    .is_some_and(|s| s["properties"].get(*property).is_some())
            });
            assert!(found, "{name}.{property} not in any document");
        }
    }

    #[test]
    fn every_reference_resolves_within_its_document() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        for k in builtin_kinds() {
            let schemas = builtin_schemas(k.group, k.version);
            let mut found = Vec::new();
            refs(&Value::Object(schemas.clone()), &mut found);
            assert!(!found.is_empty(), "{}/{} has no refs", k.group, k.version);
            for r in found {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("ref {r} outside components"));
                assert!(
                    schemas.contains_key(name),
                    "{r} dangling in {}/{}",
                    k.group,
                    k.version
                );
            }
        }
    }

    #[test]
    fn every_builtin_kind_has_its_gvk_schema() {
        for k in builtin_kinds() {
            let schemas = builtin_schemas(k.group, k.version);
            let gvk = gvk_extension(k.group, k.version, k.kind);
            assert!(
                schemas
                    .values()
                    .any(|s| s.get("x-kubernetes-group-version-kind") == Some(&gvk)),
                "{}/{} {} missing",
                k.group,
                k.version,
                k.kind
            );
        }
    }

    #[test]
    fn crd_schema_is_named_by_reversed_group_and_carries_gvk() {
        let crd = json!({"spec": {
            "group": "stable.example.com",
            "names": {"kind": "CronTab", "plural": "crontabs"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "description": "the spec",
                    "properties": {"cronSpec": {"type": "string"}}}}
            }}}]
        }});
        let (name, schema) = crd_schema(&crd, "v1").expect("schema");
        assert_eq!(name, "com.example.stable.v1.CronTab");
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
        );
        assert_eq!(
            schema["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(schema["properties"]["kind"]["description"].is_string());
        assert!(crd_schema(&crd, "v2").is_none());
    }
}
