//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), as `kubectl`
//! 1.32 sends for typed creates (`kubectl create namespace`, `create configmap`, `run`, ...).
//!
//! Upstream (`k8s.io/apimachinery/pkg/runtime/serializer/protobuf`): the body is the magic
//! `k8s\0` followed by a `runtime.Unknown` message {typeMeta = 1 {apiVersion = 1, kind = 2},
//! raw = 2 (the object's own message), contentEncoding = 3, contentType = 4}. The object is
//! decoded with the generated field tables (`schema.rs`, from k8s-pb and k8s-openapi) into the
//! JSON object upstream's JSON serializer would write, and goes through the same pipeline as a
//! JSON body. Responses stay JSON, which client-go accepts.

pub mod decode;
pub mod model;
pub mod pointer_fields;
#[rustfmt::skip]
pub mod schema;
pub mod wire;

#[cfg(test)]
mod decode_tests;

use serde_json::{Map, Value};

use crate::error::ApiError;
use wire::{Fields, Wire};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The 4-byte prefix of every Kubernetes protobuf body (upstream `protoEncodingPrefix`).
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The `runtime.Unknown` envelope of a protobuf body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `typeMeta.apiVersion`.
    pub api_version: String,
    /// `typeMeta.kind`.
    pub kind: String,
    /// The object's encoded message.
    pub raw: &'a [u8],
    /// `contentEncoding` (upstream writes none).
    pub content_encoding: String,
}

/// Splits a protobuf body into its envelope. Malformed input is a 400 with upstream's wording
/// for a missing prefix.
pub fn envelope(body: &[u8]) -> Result<Envelope<'_>, ApiError> {
    let Some(rest) = body.strip_prefix(&MAGIC) else {
        return Err(ApiError::bad_request(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ));
    };
    let malformed = |e: String| {
        ApiError::bad_request(format!(
            "the request body is not a valid runtime.Unknown: {e}"
        ))
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out = Envelope::default();
    let mut fields = Fields::new(rest);
    while let Some((tag, wire)) = fields.next_field().map_err(malformed)? {
        match (tag, wire) {
            (1, Wire::Bytes(type_meta)) => {
                let mut tm = Fields::new(type_meta);
                while let Some((tag, wire)) = tm.next_field().map_err(malformed)? {
                    match (tag, wire) {
                        (1, Wire::Bytes(b)) => out.api_version = text(b),
                        (2, Wire::Bytes(b)) => out.kind = text(b),
                        (1 | 2, w) => {
                            return Err(malformed(format!(
                                "typeMeta field {tag} has wire type {}",
                                w.type_name()
                            )))
                        }
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => out.raw = b,
            (3, Wire::Bytes(b)) => out.content_encoding = text(b),
            (4, Wire::Bytes(_)) => {}
            (1..=4, w) => {
                return Err(malformed(format!(
                    "field {tag} has wire type {}",
                    w.type_name()
                )))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a protobuf request body into the JSON object of the same object, `apiVersion` and
/// `kind` included (the handlers then check them as for JSON bodies).
///
/// An envelope without a kind or apiVersion yields just what it has, for the type check to
/// report. A kind this server has no protobuf table for (custom resources, which upstream serves
/// as JSON only) is a 415, like upstream's "unknown format" answer.
pub fn decode_body(body: &[u8]) -> Result<Value, ApiError> {
    let env = envelope(body)?;
    if !env.content_encoding.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the request body uses content encoding {:?}; none is supported",
            env.content_encoding
        )));
    }
    let mut obj = Map::new();
    if !env.api_version.is_empty() {
        obj.insert("apiVersion".into(), Value::String(env.api_version.clone()));
    }
    if !env.kind.is_empty() {
        obj.insert("kind".into(), Value::String(env.kind.clone()));
    }
    if env.api_version.is_empty() || env.kind.is_empty() {
        return Ok(Value::Object(obj));
    }
    let Some(index) = message_for(&env.api_version, &env.kind) else {
        return Err(ApiError::unsupported_media_type(&format!(
            "{CONTENT_TYPE} (no protobuf schema for {} {})",
            env.api_version, env.kind
        )));
    };
    let fields = decode::decode_message(index, env.raw).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not a valid protobuf {}: {e}",
            env.kind
        ))
    })?;
    obj.extend(fields);
    Ok(Value::Object(obj))
}

/// Decodes a protobuf `DeleteOptions` body (the body of DELETE from typed client-go clients,
/// whose envelope carries the client's own group/version, as upstream registers DeleteOptions in
/// every group version) into its JSON form.
pub fn decode_delete_options(body: &[u8]) -> Result<Value, ApiError> {
    let env = envelope(body)?;
    if env.kind != "DeleteOptions" {
        return Err(ApiError::bad_request(format!(
            "the body of the DeleteOptions has kind {:?}, expected DeleteOptions",
            env.kind
        )));
    }
    let fields = decode::decode_message(schema::DELETE_OPTIONS, env.raw).map_err(|e| {
        ApiError::bad_request(format!("the body of the DeleteOptions is not valid: {e}"))
    })?;
    Ok(Value::Object(fields))
}

/// Whether a body is Kubernetes protobuf (starts with [`MAGIC`]).
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(&MAGIC)
}

/// The schema message of a served kind.
pub fn message_for(api_version: &str, kind: &str) -> Option<usize> {
    schema::KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, index)| *index)
}
