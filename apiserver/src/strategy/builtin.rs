//! The strategies of the built-in kinds and of custom resources. Defaulting and validation
//! come from the webhook crate (the one source of truth the webhook server and `svcplane
//! validate` share); what is left here is upstream's `PrepareForCreate` / `PrepareForUpdate`.

use k8s_openapi::api;
use serde_json::{json, Value};
use svcplane_rules::names;
use svcplane_rules::Phase;

use super::typed::{decode, mutate};
use super::{verdict, Deletion, NameRule, ObjectKind, RegistryChange, Strategy, Typed};
use crate::error::ApiError;
use crate::services::{Reservation, ServiceAllocations};
use crate::store::StoredObject;

/// Services (upstream `pkg/registry/core/service`): defaulting, ClusterIP and NodePort
/// allocation before validation (the REST storage's `BeginCreate` / `BeginUpdate`), release
/// on delete, the webhook crate's Service rules and `ValidateServiceStatusUpdate` for
/// `/status`.
#[derive(Debug, Default)]
pub struct Services;

impl Strategy for Services {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Vec<String> {
        let warnings = mutate(obj, |svc: &mut api::core::v1::Service| {
            let w = svcplane_rules::default_service(svc);
            svcplane_rules::prepare_service_create(svc);
            w
        });
        obj["status"] = json!({"loadBalancer": {}});
        warnings
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value, status_only: bool) -> Vec<String> {
        if status_only {
            // A status write is decoded like any body upstream, so `SetDefaults_Service` gives
            // ingress points `ipMode: VIP`; the typed round trip also drops the nulls a JSON
            // merge patch leaves inside a replaced list (`"ingress": [{"ip": null}]`), which
            // upstream's decoding into Go structs drops too.
            mutate(obj, |svc: &mut api::core::v1::Service| {
                svcplane_rules::default_load_balancer_ip_mode(svc)
            });
            return Vec::new();
        }
        let Ok(old_svc) = serde_json::from_value::<api::core::v1::Service>(old.clone()) else {
            return Vec::new();
        };
        mutate(obj, |svc: &mut api::core::v1::Service| {
            let w = svcplane_rules::default_service(svc);
            svcplane_rules::prepare_service_update(svc, &old_svc);
            w
        })
    }

    fn begin_create(
        &self,
        allocations: &ServiceAllocations,
        obj: &mut Value,
        dry_run: bool,
    ) -> Result<Reservation, ApiError> {
        allocations.allocate_create(obj, dry_run)
    }

    fn begin_update(
        &self,
        allocations: &ServiceAllocations,
        obj: &mut Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<Reservation, ApiError> {
        allocations.allocate_update(obj, old, dry_run)
    }

    fn release(&self, allocations: &ServiceAllocations, deleted: &Value) {
        allocations.release(deleted);
    }

    fn name_rule(&self) -> NameRule {
        names::is_dns1035_label
    }

    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let svc: api::core::v1::Service = decode(kind, obj)?;
        let errors = match old {
            None => svcplane_rules::validate_service(&svc, Phase::Storage),
            Some(old) => {
                svcplane_rules::validate_service_update(&svc, &decode(kind, old)?, Phase::Storage)
            }
        };
        verdict(kind, obj, &errors, || {
            svcplane_rules::warnings_for_service(&svc)
        })
    }

    /// Upstream's `ValidateServiceStatusUpdate`: metadata and `ValidateLoadBalancerStatus`,
    /// not the spec, which the write cannot change.
    fn validate_status(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: &Value,
    ) -> Result<Vec<String>, ApiError> {
        let svc: api::core::v1::Service = decode(kind, obj)?;
        let errors = svcplane_rules::validate_service_status_update(&svc, &decode(kind, old)?);
        verdict(kind, obj, &errors, Vec::new)
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<api::core::v1::Service>())
    }
}

/// Pods: initial status, a few of upstream's spec defaults, graceful deletion when bound.
#[derive(Debug, Default)]
pub struct Pods;

impl Strategy for Pods {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn deletion(&self) -> Deletion {
        Deletion::GracefulPod
    }

    fn default_fields(&self, obj: &mut Value) {
        default_pod_spec(obj);
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Vec<String> {
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        self.default_fields(obj);
        Vec::new()
    }

    /// Upstream's common metadata rules and the schema's required fields (`ValidatePod`'s
    /// spec rules are not implemented).
    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let errors = super::common_errors(kind, names::is_dns1123_subdomain, true, obj, old);
        verdict(kind, obj, &errors, Vec::new)
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<api::core::v1::Pod>())
    }
}

/// A few of upstream's Pod defaults (`SetDefaults_PodSpec`, `SetDefaults_ContainerPort`).
pub(crate) fn default_pod_spec(obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    for (key, value) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("enableServiceLinks", json!(true)),
    ] {
        if spec[key].is_null() {
            spec[key] = value;
        }
    }
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers {
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if p.is_object() && p["protocol"].is_null() {
                            p["protocol"] = json!("TCP");
                        }
                    }
                }
            }
        }
    }
}

/// Namespaces: `Active` phase, the `kubernetes` finalizer, the `kubernetes.io/metadata.name`
/// label, DNS-1123 label names and deletion through the `Terminating` phase.
#[derive(Debug, Default)]
pub struct Namespaces;

impl Strategy for Namespaces {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn deletion(&self) -> Deletion {
        Deletion::Namespace
    }

    fn default_fields(&self, obj: &mut Value) {
        label_namespace(obj);
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Vec<String> {
        obj["status"] = json!({"phase": "Active"});
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        self.default_fields(obj);
        Vec::new()
    }

    fn name_rule(&self) -> NameRule {
        names::is_dns1123_label
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<api::core::v1::Namespace>())
    }
}

/// Upstream sets `kubernetes.io/metadata.name` on every namespace.
fn label_namespace(obj: &mut Value) {
    let name = crate::metadata::name(obj).to_string();
    if !obj["metadata"]["labels"].is_object() {
        obj["metadata"]["labels"] = json!({});
    }
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
}

/// Nodes: the generic rules; a DELETE answers with the object.
#[derive(Debug, Default)]
pub struct Nodes;

impl Strategy for Nodes {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<api::core::v1::Node>())
    }
}

/// Endpoints: the webhook crate's defaulting (port protocol TCP) and validation.
#[derive(Debug, Default)]
pub struct Endpoints;

impl Strategy for Endpoints {
    fn default_fields(&self, obj: &mut Value) {
        mutate(obj, svcplane_rules::default_endpoints);
    }

    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let ep: api::core::v1::Endpoints = decode(kind, obj)?;
        let errors = match old {
            None => svcplane_rules::validate_endpoints(&ep),
            Some(old) => svcplane_rules::validate_endpoints_update(&ep, &decode(kind, old)?),
        };
        verdict(kind, obj, &errors, || {
            svcplane_rules::warnings_for_endpoints(&ep)
        })
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<api::core::v1::Endpoints>())
    }
}

/// EndpointSlices: the webhook crate's defaulting and validation; generation is tracked.
#[derive(Debug, Default)]
pub struct EndpointSlices;

impl Strategy for EndpointSlices {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default_fields(&self, obj: &mut Value) {
        mutate(obj, svcplane_rules::default_endpoint_slice);
    }

    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let slice: api::discovery::v1::EndpointSlice = decode(kind, obj)?;
        let old_slice: Option<api::discovery::v1::EndpointSlice> =
            old.map(|o| decode(kind, o)).transpose()?;
        let errors = match &old_slice {
            None => svcplane_rules::validate_endpoint_slice(&slice),
            Some(old) => svcplane_rules::validate_endpoint_slice_update(&slice, old),
        };
        let warnings = svcplane_rules::warnings_for_endpoint_slice(&slice, old_slice.as_ref());
        verdict(kind, obj, &errors, || warnings)
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<api::discovery::v1::EndpointSlice>())
    }
}

/// Secrets: upstream `SetDefaults_Secret` (a Secret without a type is `Opaque`).
#[derive(Debug, Default)]
pub struct Secrets;

impl Secrets {
    fn default_type(obj: &mut Value) {
        if obj["type"].as_str().is_none_or(str::is_empty) {
            obj["type"] = json!("Opaque");
        }
    }
}

impl Strategy for Secrets {
    fn default_fields(&self, obj: &mut Value) {
        Secrets::default_type(obj);
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<api::core::v1::Secret>())
    }
}

/// A built-in kind with only the generic rules and its type (ConfigMaps, Events, Leases).
#[derive(Debug)]
pub struct TypedOnly(pub Typed);

impl TypedOnly {
    /// The generic rules with type `T`.
    pub fn of<T: serde::de::DeserializeOwned + serde::Serialize>() -> Self {
        TypedOnly(Typed::of::<T>())
    }
}

impl Strategy for TypedOnly {
    /// Upstream's common metadata rules and the schema's required fields (every kind using
    /// this strategy is namespaced).
    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let errors = super::common_errors(kind, self.name_rule(), true, obj, old);
        verdict(kind, obj, &errors, Vec::new)
    }

    fn typed(&self) -> Option<Typed> {
        Some(self.0)
    }
}

/// ValidatingWebhookConfigurations: the generic rules; generation is tracked.
#[derive(Debug, Default)]
pub struct ValidatingWebhookConfigurations;

impl Strategy for ValidatingWebhookConfigurations {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn typed(&self) -> Option<Typed> {
        Some(Typed::of::<
            api::admissionregistration::v1::ValidatingWebhookConfiguration,
        >())
    }
}

/// CustomResourceDefinitions: accepted names and `Established` at once, and (un)registering
/// the resources they define after each committed write.
#[derive(Debug, Default)]
pub struct CustomResourceDefinitions;

impl Strategy for CustomResourceDefinitions {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Vec<String> {
        let names = obj["spec"]["names"].clone();
        let now = crate::metadata::now_rfc3339();
        obj["status"] = json!({
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "storedVersions": obj["spec"]["versions"].as_array().map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
        });
        Vec::new()
    }

    fn after_commit(
        &self,
        new: Option<&StoredObject>,
        old: Option<&Value>,
    ) -> Option<RegistryChange> {
        match (new, old) {
            (Some(new), _) => Some(RegistryChange::Register(new.value())),
            (None, Some(old)) => Some(RegistryChange::Unregister(old.clone())),
            (None, None) => None,
        }
    }
}

/// Custom resources (upstream `apiextensions-apiserver/pkg/registry/customresource`):
/// generation tracked; with a `/status` subresource, a create's status is dropped (the
/// strategy's `PrepareForCreate`); every write is pruned, stripped of non-nullable nulls and
/// defaulted by the version's structural schema, as upstream's decoder does, and validated
/// against it after upstream's `ObjectMeta` rules (see `cr_schema`).
#[derive(Debug, Default)]
pub struct CustomResources {
    /// Whether the version serves a `/status` subresource.
    pub has_status: bool,
    /// Whether the resource is namespaced (`metadata.namespace` required, else forbidden).
    pub namespaced: bool,
    /// The version's `schema.openAPIV3Schema` (`Null` when it has none).
    pub schema: Value,
}

impl Strategy for CustomResources {
    fn default_fields(&self, obj: &mut Value) {
        super::cr_schema::coerce(obj, &self.schema);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Vec<String> {
        if self.has_status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        self.default_fields(obj);
        Vec::new()
    }

    /// Upstream prunes and defaults whatever it decodes, `/status` writes included.
    fn prepare_for_update(&self, obj: &mut Value, _old: &Value, _status_only: bool) -> Vec<String> {
        self.default_fields(obj);
        Vec::new()
    }

    /// Upstream `customResourceValidator.Validate` / `ValidateUpdate`: `ObjectMeta` (DNS-1123
    /// subdomain names), then the schema (ratcheted on update) and the list types.
    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let mut errors: Vec<super::cr_schema::SchemaError> = super::schema::object_meta_errors(
            names::is_dns1123_subdomain,
            self.namespaced,
            obj,
            old,
        )
        .iter()
        .map(Into::into)
        .collect();
        errors.extend(super::cr_schema::errors(obj, &self.schema, old));
        if errors.is_empty() {
            return Ok(Vec::new());
        }
        Err(super::cr_schema::invalid(
            kind,
            crate::metadata::name(obj),
            &errors,
        ))
    }

    fn unknown_fields(&self, _kind: &ObjectKind<'_>, obj: &Value) -> Result<Vec<String>, ApiError> {
        Ok(super::cr_schema::unknown_fields(obj, &self.schema))
    }

    fn drop_unknown_fields(&self, obj: &mut Value) {
        super::cr_schema::drop_unknown_fields(obj, &self.schema);
    }

    fn unknown_fields_in_document_order(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod custom_resource_tests {
    use super::*;

    fn pools() -> CustomResources {
        CustomResources {
            has_status: true,
            namespaced: false,
            schema: json!({"type": "object", "properties": {
                "spec": {"type": "object", "required": ["blocks"], "properties": {
                    "disabled": {"type": "boolean", "default": false},
                    "blocks": {"type": "array", "items": {"type": "object", "properties": {
                        "weight": {"type": "integer", "default": 1}}}}}},
                "status": {"type": "object", "properties": {"used": {"type": "integer", "default": 0}}}}}),
        }
    }

    const KIND: ObjectKind<'static> = ObjectKind {
        group: "svcplane.io",
        version: "v1alpha1",
        kind: "LoadBalancerIPPool",
    };

    #[test]
    fn a_create_drops_status_prunes_and_defaults() {
        let mut obj = json!({"metadata": {"name": "p"}, "spec": {"blocks": [{}, {"weight": 5}], "foo": 1},
                             "status": {"used": 3}});
        pools().prepare_for_create(&mut obj);
        assert_eq!(
            obj,
            json!({"metadata": {"name": "p"}, "spec": {"disabled": false, "blocks": [{"weight": 1}, {"weight": 5}]}})
        );
    }

    #[test]
    fn a_status_write_is_pruned_and_defaulted_too() {
        let mut obj =
            json!({"metadata": {"name": "p"}, "spec": {"blocks": []}, "status": {"bar": 1}});
        pools().prepare_for_update(&mut obj, &Value::Null, true);
        assert_eq!(obj["status"], json!({"used": 0}));
    }

    #[test]
    fn validation_reports_metadata_then_schema_errors() {
        let obj = json!({"metadata": {"name": "Bad_Name"}, "spec": {"disabled": "no"}});
        let err = pools().validate(&KIND, &obj, None).unwrap_err();
        let fields: Vec<&str> = err
            .details
            .causes
            .iter()
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(fields, ["metadata.name", "spec.disabled", "spec.blocks"]);
        assert_eq!(err.details.causes[2].message, "Required value");
        let ok = json!({"metadata": {"name": "p"}, "spec": {"blocks": []}});
        assert!(pools().validate(&KIND, &ok, None).is_ok());
    }
}
