//! Turning an HTTP request line into a Kubernetes request: which resource, namespace, name,
//! subresource and verb, and the query parameters the verbs take.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;

use crate::error::ApiError;
use crate::resources::{Registry, ResourceInfo};

/// The Kubernetes verb of a request (upstream `RequestInfo.Verb`, uppercased in metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET one object.
    Get,
    /// GET a collection.
    List,
    /// GET a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (any patch type except apply).
    Patch,
    /// PATCH with `application/apply-patch+yaml`.
    Apply,
    /// DELETE one object.
    Delete,
    /// DELETE a collection.
    DeleteCollection,
}

impl Verb {
    /// Metric label, as kube-apiserver's `apiserver_request_total{verb}`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch => "PATCH",
            Verb::Apply => "APPLY",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        }
    }

    /// Lower-case verb as used in discovery, webhook rules and fault rules (`create`, `update`...).
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch | Verb::Apply => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// Whether the verb writes.
    pub fn is_write(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// A parsed resource request.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    /// The resource addressed.
    pub info: Arc<ResourceInfo>,
    /// Namespace from the path (None for cluster-scoped or all-namespaces requests).
    pub namespace: Option<String>,
    /// Object name, for single-object requests.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub subresource: Option<String>,
    /// The verb.
    pub verb: Verb,
}

/// Query parameters, decoded.
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    /// Parses a raw query string (`a=b&c=d`), percent-decoding keys and values.
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k), percent_decode(v));
        }
        Query(map)
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter, parsed as kube-apiserver parses them.
    pub fn flag(&self, key: &str) -> bool {
        // Upstream `runtime.Convert_Slice_string_To_bool`
        // (`staging/src/k8s.io/apimachinery/pkg/runtime/conversion.go`): any value but `0`
        // and a case-insensitive `false` is true, so the Python client's `watch=True` watches.
        match self.get(key) {
            None => false,
            Some(v) => v != "0" && !v.eq_ignore_ascii_case("false"),
        }
    }

    /// A non-negative integer parameter; a malformed value is a 400 naming the parameter.
    pub fn number(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v:?} is not a non-negative integer"
                ))
            }),
        }
    }

    /// The `resourceVersion` parameter of a get, list or watch: `None` when absent or empty.
    /// A value that is not a revision is a 400 with upstream's message (the storage layer's
    /// `invalid resource version: ...` around `APIObjectVersioner.ParseResourceVersion`'s
    /// field error), instead of being ignored.
    pub fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        match self.get("resourceVersion") {
            None | Some("") => Ok(None),
            Some(v) => parse_revision(v).map(Some).map_err(|reason| {
                ApiError::bad_request(format!(
                    "invalid resource version: resourceVersion: Invalid value: {v:?}: strconv.ParseUint: parsing {v:?}: {reason}"
                ))
            }),
        }
    }

    /// Whether `dryRun=All` was requested (the only value upstream accepts).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}

/// Parses a revision as Go's `strconv.ParseUint(s, 10, 64)` does (digits only, no sign), with
/// its two failure reasons.
fn parse_revision(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    s.parse().map_err(|_| "value out of range")
}

/// Decodes `%XX` escapes and `+` (as space) in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resolves a path under `/api/v1` or `/apis/{group}/{version}` to a resource request.
/// Returns `Ok(None)` for discovery paths (no resource segment).
pub fn parse_resource_path(
    registry: &Registry,
    method: &Method,
    path: &str,
    query: &Query,
    content_type: Option<&str>,
) -> Result<Option<ResourceRequest>, ApiError> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let (group, version, rest) = match segments.first().map(String::as_str) {
        Some("api") if segments.len() >= 2 => ("", segments[1].as_str(), &segments[2..]),
        Some("apis") if segments.len() >= 3 => {
            (segments[1].as_str(), segments[2].as_str(), &segments[3..])
        }
        _ => return Err(ApiError::path_not_found()),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    if !registry.has_group_version(group, version) {
        return Err(ApiError::path_not_found());
    }
    let (legacy_watch, rest) = match rest.first().map(String::as_str) {
        Some("watch") => (true, &rest[1..]),
        _ => (false, rest),
    };
    let lookup = |plural: &str| registry.get(group, version, plural);
    // `/namespaces/{ns}/{resource}...` addresses a namespaced resource unless the third segment is a
    // subresource of the namespace itself (`/namespaces/{ns}/status`, `/finalize`).
    let (info, namespace, name, subresource) = if rest.len() >= 3
        && rest[0] == "namespaces"
        && group.is_empty()
        && lookup(&rest[2]).is_some_and(|r| r.namespaced)
    {
        let info = lookup(&rest[2]).expect("checked above");
        (
            info,
            Some(rest[1].clone()),
            rest.get(3).cloned(),
            rest.get(4).cloned(),
        )
    } else if rest.len() >= 3 && rest[0] == "namespaces" && !group.is_empty() {
        let info = lookup(&rest[2]).ok_or_else(ApiError::path_not_found)?;
        if !info.namespaced {
            return Err(ApiError::path_not_found());
        }
        (
            info,
            Some(rest[1].clone()),
            rest.get(3).cloned(),
            rest.get(4).cloned(),
        )
    } else {
        let info = lookup(&rest[0]).ok_or_else(ApiError::path_not_found)?;
        (info, None, rest.get(1).cloned(), rest.get(2).cloned())
    };
    if rest.len() > 5 {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = &subresource {
        let known = (sub == "status" && info.has_status)
            || (sub == "scale" && info.has_scale)
            || info.subresources.iter().any(|s| s.name == sub)
            || (sub == "finalize" && info.plural == "namespaces" && info.group.is_empty());
        if !known {
            return Err(ApiError::path_not_found());
        }
    }
    let watch = legacy_watch || query.flag("watch");
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", true) if watch => Verb::Watch,
        ("GET", true) => Verb::Get,
        ("GET", false) if watch => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        // A subresource that creates (`pods/{name}/eviction`, `pods/{name}/binding`).
        ("POST", true) if subresource.is_some() => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => {
            if content_type.is_some_and(|c| c.starts_with("application/apply-patch")) {
                Verb::Apply
            } else {
                Verb::Patch
            }
        }
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        (m, _) => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource: {m}"
            )))
        }
    };
    Ok(Some(ResourceRequest {
        info,
        namespace,
        name,
        subresource,
        verb,
    }))
}
