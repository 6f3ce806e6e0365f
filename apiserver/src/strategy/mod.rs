//! Per-resource write rules, attached to each resource's registry entry as kube-apiserver's
//! registry strategies are (`pkg/registry/<group>/<resource>/strategy.go`: `PrepareForCreate`,
//! `PrepareForUpdate`, `Validate`, `ValidateUpdate`, `WarningsOnCreate`, the Service REST's
//! `BeginCreate` / `BeginUpdate` allocation hooks, `CheckGracefulDelete`, `ReturnDeletedObject`).
//!
//! The write pipeline ([`crate::pipeline`]) runs the same stages for every resource and asks
//! the resource's [`Strategy`] what is specific to it; adding a kind is one row of facts
//! (`crate::kinds`) plus, where its rules differ from the defaults, one strategy here and its
//! entry in `by_kind` (the one table joining kinds with behaviour, see [`for_kind`]).
//! Strategies know nothing of HTTP, the store or the server state.

mod builtin;
mod by_kind;
mod cr_schema;
pub mod defaults;
mod schema;
mod typed;

use serde_json::Value;
use svcplane_rules::names;

use crate::error::{ApiError, Cause};
use crate::kinds::{NameRule, Typed};
use crate::services::{Reservation, ServiceAllocations};
use crate::store::StoredObject;

pub use builtin::{
    CustomResourceDefinitions, CustomResources, EndpointSlices, Endpoints, Namespaces, Nodes, Pods,
    Secrets, Services, TypedOnly, ValidatingWebhookConfigurations,
};
pub use by_kind::for_kind;
pub use schema::{common_errors, BuiltinSchema};

/// Group, version and Kind of the objects a strategy handles, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectKind<'a> {
    /// API group, empty for core.
    pub group: &'a str,
    /// API version within the group.
    pub version: &'a str,
    /// Kind (`Service`).
    pub kind: &'a str,
}

/// How a delete without finalizers proceeds (the pipeline's delete stage asks the strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The object is removed at once (after finalizers and propagation).
    Immediate,
    /// Namespace deletion: the namespace enters the `Terminating` phase and the garbage
    /// collector removes its content, then the namespace (upstream namespace controller).
    Namespace,
    /// Graceful deletion of a pod bound to a node (upstream pod strategy
    /// `CheckGracefulDelete`): marked with a grace period, removed when it ends.
    GracefulPod,
}

/// A change of the served resources a committed write causes (CustomResourceDefinitions).
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryChange {
    /// Serve (or re-serve) the resources this CRD defines.
    Register(Value),
    /// Stop serving the resources this deleted CRD defined.
    Unregister(Value),
}

/// The per-resource rules of the write pipeline. Every method has the generic store's
/// default, so a strategy implements only what differs.
pub trait Strategy: std::fmt::Debug + Send + Sync {
    /// Whether `metadata.generation` is maintained (bumped on spec changes).
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether an immediate DELETE answers with the deleted object rather than a `Status` of
    /// `Success` (upstream `Store.ReturnDeletedObject`; the generic store's default is the
    /// `Status`).
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// How a delete proceeds once finalizers and propagation allow it.
    fn deletion(&self) -> Deletion {
        Deletion::Immediate
    }

    /// Upstream's defaulting of the kind (`SetDefaults_*`), which the default
    /// [`Strategy::prepare_for_create`] and [`Strategy::prepare_for_update`] run on a create
    /// and on every update but a write to `/status`.
    fn default_fields(&self, _obj: &mut Value) {}

    /// Defaulting and upstream `PrepareForCreate` of a new object. Returns defaulting
    /// warnings. By default [`Strategy::default_fields`] alone.
    fn prepare_for_create(&self, obj: &mut Value) -> Vec<String> {
        self.default_fields(obj);
        Vec::new()
    }

    /// Defaulting and upstream `PrepareForUpdate` of an updated object (`status_only` for
    /// writes to `/status`). Returns defaulting warnings. By default
    /// [`Strategy::default_fields`] unless `status_only`.
    fn prepare_for_update(&self, obj: &mut Value, _old: &Value, status_only: bool) -> Vec<String> {
        if !status_only {
            self.default_fields(obj);
        }
        Vec::new()
    }

    /// Allocation before validation of a create (upstream Service REST `BeginCreate`). The
    /// reservation rolls back when dropped uncommitted.
    fn begin_create(
        &self,
        _allocations: &ServiceAllocations,
        _obj: &mut Value,
        _dry_run: bool,
    ) -> Result<Reservation, ApiError> {
        Ok(Reservation::none())
    }

    /// Allocation before validation of an update (upstream Service REST `BeginUpdate`).
    fn begin_update(
        &self,
        _allocations: &ServiceAllocations,
        _obj: &mut Value,
        _old: &Value,
        _dry_run: bool,
    ) -> Result<Reservation, ApiError> {
        Ok(Reservation::none())
    }

    /// Frees what a deleted object held (Service ClusterIPs and node ports).
    fn release(&self, _allocations: &ServiceAllocations, _deleted: &Value) {}

    /// Name rule for kinds validated by [`validate_generic`] (DNS-1123 subdomain by default).
    fn name_rule(&self) -> NameRule {
        names::is_dns1123_subdomain
    }

    /// Validates a create (`old` = None) or update. Returns warnings; errors are a 422 with
    /// one cause per field, kind = the object Kind, as upstream.
    fn validate(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        validate_generic(kind, self.name_rule(), obj, old).map(|()| Vec::new())
    }

    /// Validates a write to the `/status` subresource (by default as [`Strategy::validate`]).
    fn validate_status(
        &self,
        kind: &ObjectKind<'_>,
        obj: &Value,
        old: &Value,
    ) -> Result<Vec<String>, ApiError> {
        self.validate(kind, obj, Some(old))
    }

    /// The typed representation of a built-in kind (its k8s-openapi type), used to find and
    /// drop the fields the type does not declare; `None` for kinds without one.
    fn typed(&self) -> Option<Typed> {
        None
    }

    /// The fields of `obj` the resource does not declare, in upstream's notation
    /// (`spec.ports[0].foo`) and the order upstream reports them. By default those the
    /// [`Strategy::typed`] type does not declare (document order); a value of the wrong JSON
    /// type is then a 400.
    fn unknown_fields(&self, kind: &ObjectKind<'_>, obj: &Value) -> Result<Vec<String>, ApiError> {
        match self.typed() {
            None => Ok(Vec::new()),
            Some(t) => typed::unknown_fields(t, kind, obj),
        }
    }

    /// Removes the fields [`Strategy::unknown_fields`] reports (upstream decodes built-in
    /// objects into their Go types, so undeclared fields never reach storage).
    fn drop_unknown_fields(&self, obj: &mut Value) {
        if let Some(typed) = self.typed() {
            typed.drop_unknown_fields(obj);
        }
    }

    /// Whether [`Strategy::unknown_fields`] come in document order, to be interleaved with
    /// the body's repeated keys (typed decoding), or in their own order after them (custom
    /// resources: upstream's decoder reports the JSON duplicates, then the pruned paths).
    fn unknown_fields_in_document_order(&self) -> bool {
        true
    }

    /// Side effects on the served resources of a committed write (`new` = None on delete).
    fn after_commit(
        &self,
        _new: Option<&StoredObject>,
        _old: Option<&Value>,
    ) -> Option<RegistryChange> {
        None
    }
}

/// A 422 from field errors, with upstream's message and one cause per error.
pub fn invalid_from_field_errors(
    kind: &ObjectKind<'_>,
    name: &str,
    errors: &[svcplane_rules::FieldError],
) -> ApiError {
    ApiError::from_field_errors(kind.group, kind.kind, name, errors)
}

/// The outcome of a kind's validation: `warnings` when `errors` is empty, else upstream's 422
/// `Invalid` naming every field.
pub fn verdict(
    kind: &ObjectKind<'_>,
    obj: &Value,
    errors: &[svcplane_rules::FieldError],
    warnings: impl FnOnce() -> Vec<String>,
) -> Result<Vec<String>, ApiError> {
    if errors.is_empty() {
        return Ok(warnings());
    }
    Err(invalid_from_field_errors(
        kind,
        crate::metadata::name(obj),
        errors,
    ))
}

/// Upstream `ValidateObjectMetaUpdate` (via `ValidateNoNewFinalizers`): once an object has a
/// `deletionTimestamp`, updates may remove finalizers but not add new ones. Runs for every
/// kind before its strategy's validation.
pub fn no_new_finalizers_while_deleting(
    kind: &ObjectKind<'_>,
    obj: &Value,
    old: &Value,
) -> Result<(), ApiError> {
    if !crate::metadata::is_deleting(old) {
        return Ok(());
    }
    let before = crate::metadata::finalizers(old);
    let mut added: Vec<String> = crate::metadata::finalizers(obj)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    added.sort();
    added.dedup();
    let list = added
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!(
        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
    );
    let name = crate::metadata::name(obj);
    Err(ApiError::invalid(
        kind.group,
        kind.kind,
        name,
        format!(
            "{} {name:?} is invalid: metadata.finalizers: {message}",
            kind.kind
        ),
        vec![Cause {
            reason: "FieldValueForbidden".into(),
            message,
            field: "metadata.finalizers".into(),
        }],
    ))
}

/// Name rules for kinds without their own validation: the name must pass `name_rule`
/// (upstream reports its first message here) and may not change on update.
pub fn validate_generic(
    kind: &ObjectKind<'_>,
    name_rule: NameRule,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let name = crate::metadata::name(obj);
    if let Some(msg) = name_rule(name).into_iter().next() {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {name:?}: {msg}"),
            field: "metadata.name".into(),
        });
    }
    if let Some(old) = old {
        if crate::metadata::name(old) != name {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {name:?}: field is immutable"),
                field: "metadata.name".into(),
            });
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let joined = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    Err(ApiError::invalid(
        kind.group,
        kind.kind,
        name,
        format!("{} {name:?} is invalid: {joined}", kind.kind),
        causes,
    ))
}

/// The status subresource split: writes to the main resource keep the stored status (when
/// the resource has a `/status` subresource); writes to `/status` keep everything but status
/// (and metadata labels/annotations, as upstream allows).
pub fn merge_subresource(has_status: bool, new: &mut Value, old: &Value, status_only: bool) {
    if status_only {
        let mut merged = old.clone();
        merged["status"] = new["status"].clone();
        if merged["status"].is_null() {
            if let Some(m) = merged.as_object_mut() {
                m.remove("status");
            }
        }
        for key in ["labels", "annotations", "resourceVersion"] {
            match new["metadata"].get(key) {
                Some(v) if !v.is_null() => merged["metadata"][key] = v.clone(),
                _ => {
                    if key != "resourceVersion" {
                        if let Some(m) = merged["metadata"].as_object_mut() {
                            m.remove(key);
                        }
                    }
                }
            }
        }
        *new = merged;
    } else if has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
}

/// The fields of an object its resource does not declare ([`Strategy::unknown_fields`]):
/// for a built-in kind those its type does not declare, in upstream's notation
/// (`spec.ports[0].foo`) and document order, values of the wrong JSON type being a 400
/// whatever the `fieldValidation` mode, as upstream (see [`crate::type_error`]); for a custom
/// resource those its structural schema prunes. [`crate::strict_decoding`] reports the
/// unknown fields per mode.
pub fn unknown_fields(
    strategy: &dyn Strategy,
    kind: &ObjectKind<'_>,
    obj: &Value,
) -> Result<Vec<String>, ApiError> {
    strategy.unknown_fields(kind, obj)
}

/// Removes the `unknown` fields (from [`unknown_fields`]) from `obj`: upstream decodes
/// built-in objects into their Go types and prunes custom resources by their structural
/// schema, so undeclared fields never reach storage.
pub fn drop_unknown_fields(strategy: &dyn Strategy, obj: &mut Value, unknown: &[String]) {
    if unknown.is_empty() {
        return;
    }
    strategy.drop_unknown_fields(obj);
}
