//! Request body decoding (JSON, YAML and Kubernetes protobuf) and response encoding, with upstream's error wording.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::error::ApiError;

/// Largest request body accepted, as upstream (3 MiB, `maxRequestBodyBytes`).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The response body type.
pub type Body = axum::body::Body;

/// Media types a request body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
    /// `application/vnd.kubernetes.protobuf` (typed clients such as `kubectl create`; see
    /// [`crate::protobuf`]).
    Protobuf,
}

/// Picks the body format from a `Content-Type` header (JSON when absent, like `kubectl` sends).
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, ApiError> {
    let ct = content_type.unwrap_or("application/json");
    let base = ct.split(';').next().unwrap_or_default().trim();
    match base {
        "" | "application/json" | "*/*" => Ok(BodyFormat::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(BodyFormat::Yaml),
        crate::protobuf::CONTENT_TYPE => Ok(BodyFormat::Protobuf),
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

/// Decodes a request body into a JSON object. Malformed input is a 400 naming the problem.
pub fn decode_object(body: &[u8], format: BodyFormat) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let value: Value = match format {
        BodyFormat::Json => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        })?,
        // Bounded: nesting and alias expansion are limited while parsing.
        BodyFormat::Yaml => svcplane_rules::bounded_yaml::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
        })?,
        BodyFormat::Protobuf => crate::protobuf::decode_body(body)?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, got {}",
            kind_of(&value)
        )));
    }
    Ok(value)
}

/// Decodes a write's body in the format its `Content-Type` header names ([`body_format`],
/// then [`decode_object`]); returns the object and the format it came in.
pub fn decode_body(
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(Value, BodyFormat), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = body_format(content_type)?;
    Ok((decode_object(body, format)?, format))
}

/// Describes a JSON value's type for error messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON response with the given status.
pub fn json_response(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.into()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A JSON response from a value.
pub fn value_response(status: u16, value: &Value) -> Response<Body> {
    json_response(status, serde_json::to_vec(value).unwrap_or_default())
}

/// The `Status` response for an error.
pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = value_response(err.code, &err.to_status());
    if let Some(secs) = err.details.retry_after_seconds {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Adds `Warning: 299 - "..."` headers, which `kubectl` prints as `Warning: ...`.
pub fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        let text: String = escaped
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}
