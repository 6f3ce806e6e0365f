//! Object metadata validation (upstream `ValidateObjectMeta`, `ValidateObjectMetaUpdate`,
//! `ValidateLabels`, `ValidateAnnotations` in `k8s.io/apimachinery/pkg/api/validation`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::field_error::{FieldError, Path};
use crate::names::{is_qualified_name, is_valid_label_value, name_is_dns_subdomain};

/// Upstream `TotalAnnotationSizeLimitB`: 256 KiB over all keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// A name validation function (upstream `ValidateNameFunc`): `(name, is_prefix) -> messages`.
pub type NameFn = fn(&str, bool) -> Vec<String>;

/// Upstream `ValidateLabels`: keys are qualified names, values label values. Errors are
/// reported at the map's path (not per key), as upstream does.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k, m));
        }
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, m));
        }
    }
    errs
}

/// Upstream `ValidateAnnotations`: keys are case-insensitive qualified names; total size
/// at most 256 KiB.
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Upstream `ValidateObjectMeta` for namespaced objects: name (or generateName), namespace,
/// generation, labels, annotations.
pub fn validate_object_meta(meta: &ObjectMeta, name_fn: NameFn, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        for m in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                path.child("generateName"),
                generate_name,
                m,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for m in name_fn(name, false) {
            errs.push(FieldError::invalid(path.child("name"), name, m));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespace.is_empty() {
        errs.push(FieldError::required(path.child("namespace"), ""));
    } else {
        for m in crate::names::is_dns1123_label(namespace) {
            errs.push(FieldError::invalid(path.child("namespace"), namespace, m));
        }
    }
    errs.extend(validate_generation_labels_annotations(meta, path));
    for (i, f) in meta.finalizers.iter().flatten().enumerate() {
        for m in is_qualified_name(f) {
            errs.push(FieldError::invalid(path.child("finalizers").index(i), f, m));
        }
    }
    errs
}

/// The rules a create and an update both check (upstream `ValidateObjectMetaAccessor` and
/// `ValidateObjectMetaAccessorUpdate` each run them): a non-negative `generation`, then the
/// labels and annotations.
fn validate_generation_labels_annotations(meta: &ObjectMeta, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = meta.generation {
        if g < 0 {
            errs.push(FieldError::invalid(
                path.child("generation"),
                g,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs
}

/// Upstream `ValidateObjectMetaUpdate`: name, namespace and uid are immutable; labels and
/// annotations are re-validated.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let immutable =
        |field: &str, n: &Option<String>, o: &Option<String>, errs: &mut Vec<FieldError>| {
            let n = n.as_deref().unwrap_or("");
            let o = o.as_deref().unwrap_or("");
            if n != o {
                errs.push(FieldError::invalid(
                    path.child(field),
                    n,
                    "field is immutable",
                ));
            }
        };
    immutable("name", &new.name, &old.name, &mut errs);
    immutable("namespace", &new.namespace, &old.namespace, &mut errs);
    if old.uid.is_some() && new.uid.is_some() {
        immutable("uid", &new.uid, &old.uid, &mut errs);
    }
    errs.extend(validate_generation_labels_annotations(new, path));
    errs
}

/// Names of EndpointSlices, Endpoints and nodes (upstream `NameIsDNSSubdomain`).
pub fn subdomain_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_subdomain(name, prefix)
}
