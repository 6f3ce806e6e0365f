//! The generic entry point on raw JSON, shared by the webhook server, `svcplane validate`
//! and the embedded API server: decode by `apiVersion`/`kind`, default, validate, warn.

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::defaults::{
    default_endpoint_slice, default_endpoints, default_service, normalize_cluster_ips_create,
    prepare_service_create, prepare_service_update,
};
use crate::endpoint_slice::{
    drop_topology_on_v1, validate_endpoint_slice, validate_endpoint_slice_update,
    warnings_for_endpoint_slice,
};
use crate::endpoints::{validate_endpoints, validate_endpoints_update, warnings_for_endpoints};
use crate::field_error::Verdict;
use crate::service::{validate_service, warnings_for_service, Phase};
use crate::service_update::validate_service_update;

/// Why an object could not be decoded for validation.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The value is not a JSON object.
    #[error("object must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// `apiVersion` or `kind` is missing.
    #[error("Object 'Kind' is missing or 'apiVersion' is missing in object")]
    MissingTypeMeta,
    /// Not a Service, EndpointSlice or Endpoints.
    #[error("no validation for kind {kind:?} in apiVersion {api_version:?} (supported: v1 Service, v1 Endpoints, discovery.k8s.io/v1 EndpointSlice)")]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// The old object is of another kind than the new one.
    #[error("old object is a {old}, new object is a {new}")]
    KindMismatch {
        /// Kind of the old object.
        old: String,
        /// Kind of the new object.
        new: String,
    },
    /// A field has the wrong JSON type.
    #[error("{path}: {message}")]
    Field {
        /// Field path, e.g. `spec.ports[0].port` (`.` for the root).
        path: String,
        /// Decoder message.
        message: String,
    },
}

/// The kinds this crate validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// core/v1 Service.
    Service,
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice,
    /// core/v1 Endpoints.
    Endpoints,
}

impl Kind {
    /// Resolve `apiVersion`/`kind`.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        match (api_version, kind) {
            ("v1", "Service") => Some(Kind::Service),
            ("v1", "Endpoints") => Some(Kind::Endpoints),
            ("discovery.k8s.io/v1", "EndpointSlice") => Some(Kind::EndpointSlice),
            _ => None,
        }
    }

    /// The Kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Endpoints => "Endpoints",
        }
    }

    /// The qualified kind upstream prints in 422 messages (`EndpointSlice.discovery.k8s.io`).
    pub fn qualified(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice.discovery.k8s.io",
            Kind::Endpoints => "Endpoints",
        }
    }
}

/// Resolve an object's kind from its `apiVersion` and `kind`.
pub fn kind_of(obj: &Value) -> Result<Kind, DecodeError> {
    let map = obj
        .as_object()
        .ok_or(DecodeError::NotAnObject(json_type(obj)))?;
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        return Err(DecodeError::MissingTypeMeta);
    }
    Kind::from_type_meta(api_version, kind).ok_or_else(|| DecodeError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Set a missing key to a Go zero value so that required-in-schema fields decode the way Go
/// decodes them (and validation, not the decoder, reports them).
fn zero_fill(obj: &mut Value, key: &str, zero: Value) {
    if let Some(map) = obj.as_object_mut() {
        match map.get(key) {
            None | Some(Value::Null) => {
                map.insert(key.to_string(), zero);
            }
            _ => {}
        }
    }
}

fn for_each_in(obj: &mut Value, key: &str, f: impl Fn(&mut Value)) {
    if let Some(Value::Array(items)) = obj.as_object_mut().and_then(|m| m.get_mut(key)) {
        items.iter_mut().for_each(f);
    }
}

fn fill_go_zero_values(kind: Kind, obj: &mut Value) {
    match kind {
        Kind::Service => {
            if let Some(spec) = obj.get_mut("spec") {
                for_each_in(spec, "ports", |p| zero_fill(p, "port", Value::from(0)));
            }
        }
        Kind::EndpointSlice => {
            zero_fill(obj, "addressType", Value::from(""));
            zero_fill(obj, "endpoints", Value::Array(Vec::new()));
            for_each_in(obj, "endpoints", |ep| {
                zero_fill(ep, "addresses", Value::Array(Vec::new()));
                if let Some(h) = ep.get_mut("hints") {
                    for_each_in(h, "forZones", |z| zero_fill(z, "name", Value::from("")));
                    for_each_in(h, "forNodes", |z| zero_fill(z, "name", Value::from("")));
                }
            });
        }
        Kind::Endpoints => {
            for_each_in(obj, "subsets", |ss| {
                for_each_in(ss, "addresses", |a| zero_fill(a, "ip", Value::from("")));
                for_each_in(ss, "notReadyAddresses", |a| {
                    zero_fill(a, "ip", Value::from(""))
                });
                for_each_in(ss, "ports", |p| zero_fill(p, "port", Value::from(0)));
            });
        }
    }
}

/// Decode `obj` as `T`, naming the offending field on error.
pub fn decode<T: DeserializeOwned>(kind: Kind, mut obj: Value) -> Result<T, DecodeError> {
    fill_go_zero_values(kind, &mut obj);
    serde_path_to_error::deserialize(obj).map_err(|e| DecodeError::Field {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Validate a Service, EndpointSlice or Endpoints given as JSON, after defaulting it as the
/// API server would. `old` is the stored object on updates. Validation runs in
/// [`Phase::Admission`] (before allocation).
pub fn validate_object(obj: &Value, old: Option<&Value>) -> Result<Verdict, DecodeError> {
    validate_object_owned(obj.clone(), old.cloned())
}

/// [`validate_object`] taking ownership (no copy of the JSON tree).
pub fn validate_object_owned(obj: Value, old: Option<Value>) -> Result<Verdict, DecodeError> {
    let kind = kind_of(&obj)?;
    if let Some(old) = &old {
        let old_kind = kind_of(old)?;
        if old_kind != kind {
            return Err(DecodeError::KindMismatch {
                old: old_kind.as_str().into(),
                new: kind.as_str().into(),
            });
        }
    }
    let new = decode_object(kind, obj)?;
    let old = old.map(|o| decode_object(kind, o)).transpose()?;
    validate_decoded(new, old)
}

/// A decoded object of one of the validated kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// core/v1 Service.
    Service(Box<Service>),
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice(Box<EndpointSlice>),
    /// core/v1 Endpoints.
    Endpoints(Box<Endpoints>),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Service(_) => Kind::Service,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::Endpoints(_) => Kind::Endpoints,
        }
    }

    /// The object's metadata.
    pub fn metadata_mut(
        &mut self,
    ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Object::Service(o) => &mut o.metadata,
            Object::EndpointSlice(o) => &mut o.metadata,
            Object::Endpoints(o) => &mut o.metadata,
        }
    }
}

/// Decode JSON of a known kind (Go zero values for absent required fields).
pub fn decode_object(kind: Kind, obj: Value) -> Result<Object, DecodeError> {
    Ok(match kind {
        Kind::Service => Object::Service(Box::new(decode(kind, obj)?)),
        Kind::EndpointSlice => Object::EndpointSlice(Box::new(decode(kind, obj)?)),
        Kind::Endpoints => Object::Endpoints(Box::new(decode(kind, obj)?)),
    })
}

/// Decode JSON text straight into the typed object, without an intermediate JSON tree.
/// Returns `None` when that is not possible (absent required fields, wrong types, another
/// kind); callers then take the [`decode_object`] path, which reports such problems.
pub fn decode_object_fast(kind: Kind, json: &str) -> Option<Object> {
    Some(match kind {
        Kind::Service => Object::Service(serde_json::from_str(json).ok()?),
        Kind::EndpointSlice => Object::EndpointSlice(serde_json::from_str(json).ok()?),
        Kind::Endpoints => Object::Endpoints(serde_json::from_str(json).ok()?),
    })
}

/// Default and validate decoded objects (old is the stored object on updates), in
/// [`Phase::Admission`].
pub fn validate_decoded(new: Object, old: Option<Object>) -> Result<Verdict, DecodeError> {
    if let Some(o) = &old {
        if o.kind() != new.kind() {
            return Err(DecodeError::KindMismatch {
                old: o.kind().as_str().into(),
                new: new.kind().as_str().into(),
            });
        }
    }
    match (new, old) {
        (Object::Service(mut svc), old) => {
            let mut warnings = default_service(&mut svc);
            let errors = match old {
                Some(Object::Service(mut old)) => {
                    default_service(&mut old);
                    normalize_cluster_ips_create(&mut old);
                    prepare_service_update(&mut svc, &old);
                    validate_service_update(&svc, &old, Phase::Admission)
                }
                _ => {
                    prepare_service_create(&mut svc);
                    validate_service(&svc, Phase::Admission)
                }
            };
            warnings.extend(warnings_for_service(&svc));
            Ok(Verdict { errors, warnings })
        }
        (Object::EndpointSlice(mut slice), old) => {
            default_endpoint_slice(&mut slice);
            let old = match old {
                Some(Object::EndpointSlice(mut o)) => {
                    default_endpoint_slice(&mut o);
                    Some(o)
                }
                _ => None,
            };
            drop_topology_on_v1(&mut slice, old.as_deref());
            let errors = match &old {
                None => validate_endpoint_slice(&slice),
                Some(old) => validate_endpoint_slice_update(&slice, old),
            };
            Ok(Verdict {
                errors,
                warnings: warnings_for_endpoint_slice(&slice, old.as_deref()),
            })
        }
        (Object::Endpoints(mut ep), old) => {
            default_endpoints(&mut ep);
            let errors = match old {
                Some(Object::Endpoints(mut old)) => {
                    default_endpoints(&mut old);
                    validate_endpoints_update(&ep, &old)
                }
                _ => validate_endpoints(&ep),
            };
            Ok(Verdict {
                errors,
                warnings: warnings_for_endpoints(&ep),
            })
        }
    }
}
