//! What a resource request asks besides its body: the options of a write, read from its query
//! and headers, and the namespace its objects are stored under. Shared by the verb handlers
//! ([`crate::handlers`]) and the subresources served beside them.

use http::HeaderMap;

use crate::error::ApiError;
use crate::pipeline::WriteOptions;
use crate::request::{Query, ResourceRequest, Verb};
use crate::strict_decoding::FieldValidation;

/// The request's namespace, empty when the URL names none.
fn namespace_of(rr: &ResourceRequest) -> String {
    rr.namespace.clone().unwrap_or_default()
}

/// The namespace the addressed objects are stored under: empty for cluster-scoped resources.
pub fn store_key_ns(rr: &ResourceRequest) -> String {
    if rr.info.namespaced {
        namespace_of(rr)
    } else {
        String::new()
    }
}

/// Options common to write requests: the pipeline's, and how unknown fields are treated.
pub struct RequestOptions {
    /// The write pipeline's options (dry run, field manager, apply).
    pub write: WriteOptions,
    /// How unknown and duplicate fields are treated (`fieldValidation`).
    pub strict: FieldValidation,
}

/// The options of a write from its query (`dryRun`, `fieldManager`, `fieldValidation`) and
/// headers (the `User-Agent` names the default field manager).
pub fn write_options(
    query: &Query,
    headers: &HeaderMap,
    verb: Verb,
) -> Result<RequestOptions, ApiError> {
    let dry_run = query.dry_run()?;
    let field_manager = match query.get("fieldManager") {
        Some(m) if !m.is_empty() => {
            if m.len() > 128 {
                return Err(ApiError::bad_request(
                    "fieldManager: Too long: may not be more than 128 bytes",
                ));
            }
            m.to_string()
        }
        _ if verb == Verb::Apply => {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requests require fieldManager to be set",
            ))
        }
        _ => default_manager(headers),
    };
    let strict = match query.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )))
        }
    };
    Ok(RequestOptions {
        write: WriteOptions {
            applied: verb == Verb::Apply,
            dry_run,
            field_manager,
            user: None,
        },
        strict,
    })
}

/// Upstream derives the default field manager from the user agent's program name.
fn default_manager(headers: &HeaderMap) -> String {
    let ua = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    crate::patch::apply::manager_from_user_agent(ua)
}
