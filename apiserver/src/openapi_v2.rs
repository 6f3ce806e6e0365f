//! `/openapi/v2`: a Swagger 2.0 document without definitions.
//!
//! `kubectl` falls back to client-side validation against the v2 document whenever it cannot
//! use server-side field validation, which it never can for a `kind: List` file (its v3 query
//! parameter check refuses `v1/List` by design). It asks for the document in gnostic's protobuf
//! encoding (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and skips the
//! validation of kinds the document does not define. Serving a document with no definitions
//! therefore lets such files through to the server, whose own validation (strict field
//! validation, the Service rules) still applies — beyond upstream, which also checks the schema
//! on the client; the v3 documents remain the source of schemas.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::codec::{value_response, Body};
use crate::discovery::KUBE_VERSION;

/// The media type kubectl asks for.
pub const PROTOBUF_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The media type the answer carries: upstream (kube-openapi) spells it with a `.` for the `@`,
/// which Go's `mime` parser rejects in a `Content-Type`.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The document in the encoding the `Accept` header prefers (protobuf when listed, else JSON).
pub fn document_response(accept: Option<&str>) -> Response<Body> {
    let wants_protobuf = accept.is_some_and(|a| {
        a.split(',')
            .map(|t| t.split(';').next().unwrap_or_default().trim())
            .any(|t| t == PROTOBUF_MEDIA_TYPE || t == PROTOBUF_CONTENT_TYPE)
    });
    if !wants_protobuf {
        return value_response(
            200,
            &json!({
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": version()},
                "paths": {},
                "definitions": {},
            }),
        );
    }
    let mut resp = Response::new(Body::from(protobuf_document()));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROTOBUF_CONTENT_TYPE),
    );
    resp
}

fn version() -> String {
    format!("v{}.{}.0", KUBE_VERSION.0, KUBE_VERSION.1)
}

/// gnostic `openapi_v2.Document { swagger = 1; info = 2 }` with `Info { title = 1; version = 2 }`.
fn protobuf_document() -> Vec<u8> {
    let mut info = Vec::new();
    length_delimited(&mut info, 1, b"Kubernetes");
    length_delimited(&mut info, 2, version().as_bytes());
    let mut doc = Vec::new();
    length_delimited(&mut doc, 1, b"2.0");
    length_delimited(&mut doc, 2, &info);
    doc
}

/// Appends a length-delimited protobuf field.
fn length_delimited(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_document_has_swagger_version_and_info() {
        let doc = protobuf_document();
        // field 1 (swagger), length 3, "2.0"
        assert_eq!(&doc[..5], b"\x0a\x032.0");
        // field 2 (info) follows, holding field 1 "Kubernetes" and field 2 the version.
        assert_eq!(doc[5], 0x12);
        let info = &doc[7..];
        assert_eq!(info.len(), doc[6] as usize);
        assert_eq!(&info[..12], b"\x0a\x0aKubernetes");
        assert_eq!(info[12], 0x12);
        assert_eq!(&info[14..], version().as_bytes());
    }

    #[test]
    fn json_is_served_unless_protobuf_is_asked_for() {
        let json = document_response(Some("application/json"));
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let pb = document_response(Some(&format!("{PROTOBUF_MEDIA_TYPE}, application/json")));
        assert_eq!(pb.headers()[header::CONTENT_TYPE], PROTOBUF_CONTENT_TYPE);
    }
}
