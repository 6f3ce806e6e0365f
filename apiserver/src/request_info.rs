//! The authorization attributes of an HTTP request, as upstream's `RequestInfoFactory`
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`) computes them from
//! the method, path and query alone (no registry): a resource request is
//! `/api/{version}/...` or `/apis/{group}/{version}/...` with a resource segment; everything
//! else (`/api`, `/apis/apps/v1`, `/healthz`, `/openapi/v3`) is a non-resource request with
//! the lowercased method as its verb.

use crate::rbac::Request;
use crate::request::{percent_decode, Query};

/// Upstream `namespaceSubresources`: `/namespaces/{name}/{status,finalize}` address the
/// namespace itself.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// The attributes of a request.
pub fn attributes(method: &str, path: &str, query: &Query) -> Request {
    let non_resource = || Request::non_resource(&method.to_ascii_lowercase(), path);
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    // At least a prefix, a version and a resource.
    if parts.len() < 3 {
        return non_resource();
    }
    let (group, mut rest) = match parts[0].as_str() {
        "api" => ("", &parts[1..]),
        "apis" if parts.len() >= 4 => (parts[1].as_str(), &parts[2..]),
        _ => return non_resource(),
    };
    // The version.
    rest = &rest[1..];
    let mut verb = match rest.first().map(String::as_str) {
        // Upstream's `specialVerbs` (`watch`, `proxy`) prefix the resource path.
        Some(special @ ("watch" | "proxy")) if rest.len() >= 2 => {
            rest = &rest[1..];
            special.to_string()
        }
        _ => match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string(),
    };
    let mut namespace = String::new();
    if rest.first().map(String::as_str) == Some("namespaces") {
        if let Some(ns) = rest.get(1) {
            namespace = ns.clone();
            // `/namespaces/{ns}/{resource}...` unless it is the namespace's own subresource.
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2].as_str()) {
                rest = &rest[2..];
            }
        }
    }
    let resource = rest.first().cloned().unwrap_or_default();
    let mut name = rest.get(1).cloned().unwrap_or_default();
    let subresource = if rest.len() >= 3 && verb != "proxy" {
        rest[2].clone()
    } else {
        String::new()
    };
    if name.is_empty() && verb == "delete" {
        verb = "deletecollection".into();
    }
    if name.is_empty() && verb == "get" {
        // Upstream: the list options decide between list and watch, and a field selector
        // naming one object (`metadata.name=x`, as `kubectl get svc x -w` sends) names it.
        verb = if query.flag("watch") { "watch" } else { "list" }.into();
        if let Some(exact) = query
            .get("fieldSelector")
            .and_then(|s| exact_match(s, "metadata.name"))
        {
            name = exact;
        }
    }
    Request::resource(&verb, group, &resource, &subresource, &namespace, &name)
}

/// Upstream `fields.Selector.RequiresExactMatch`: the value of a `field=value` or
/// `field==value` term.
fn exact_match(selector: &str, field: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (key, value) = term
            .split_once("==")
            .or_else(|| term.split_once('=').filter(|(k, _)| !k.ends_with('!')))?;
        (key.trim() == field && !value.is_empty()).then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: &str, url: &str) -> Request {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        attributes(method, path, &Query::parse(Some(query)))
    }

    fn res(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Request {
        Request::resource(verb, group, resource, sub, ns, name)
    }

    /// requestinfo_test.go `TestGetAPIRequestInfo` and `TestGetNonAPIRequestInfo`.
    #[test]
    fn attributes_follow_upstreams_request_info_factory() {
        let cases = [
            // (method, url, expected)
            (
                "GET",
                "/api/v1/namespaces",
                res("list", "", "namespaces", "", "", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/other",
                res("get", "", "namespaces", "", "other", "other"),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods",
                res("list", "", "pods", "", "other", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo",
                res("get", "", "pods", "", "other", "foo"),
            ),
            (
                "HEAD",
                "/api/v1/namespaces/other/pods/foo",
                res("get", "", "pods", "", "other", "foo"),
            ),
            ("GET", "/api/v1/pods", res("list", "", "pods", "", "", "")),
            (
                "GET",
                "/api/v1/namespaces/other/pods?watch=true",
                res("watch", "", "pods", "", "other", ""),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/other/pods",
                res("watch", "", "pods", "", "other", ""),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/other/pods/foo",
                res("watch", "", "pods", "", "other", "foo"),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/services?fieldSelector=metadata.name%3Dweb&watch=1",
                res("watch", "", "services", "", "other", "web"),
            ),
            (
                "POST",
                "/api/v1/namespaces/other/pods",
                res("create", "", "pods", "", "other", ""),
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/pods/foo",
                res("update", "", "pods", "", "other", "foo"),
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/ns/deployments/web",
                res("patch", "apps", "deployments", "", "ns", "web"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/other/pods/foo",
                res("delete", "", "pods", "", "other", "foo"),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/other/pods",
                res("deletecollection", "", "pods", "", "other", ""),
            ),
            (
                "GET",
                "/api/v1/namespaces/other/pods/foo/log",
                res("get", "", "pods", "log", "other", "foo"),
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/finalize",
                res("update", "", "namespaces", "finalize", "other", "other"),
            ),
            (
                "PUT",
                "/api/v1/namespaces/other/status",
                res("update", "", "namespaces", "status", "other", "other"),
            ),
            (
                "POST",
                "/api/v1/namespaces/x/serviceaccounts/sa/token",
                res("create", "", "serviceaccounts", "token", "x", "sa"),
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/ns/deployments/web/scale",
                res("get", "apps", "deployments", "scale", "ns", "web"),
            ),
            (
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                res(
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "",
                    "",
                    "",
                ),
            ),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
                res(
                    "get",
                    "rbac.authorization.k8s.io",
                    "clusterroles",
                    "",
                    "",
                    "admin",
                ),
            ),
            // Non-resource: too short to name a resource, or another prefix.
            ("GET", "/api", Request::non_resource("get", "/api")),
            ("GET", "/api/v1", Request::non_resource("get", "/api/v1")),
            (
                "GET",
                "/apis/apps/v1",
                Request::non_resource("get", "/apis/apps/v1"),
            ),
            ("GET", "/apis", Request::non_resource("get", "/apis")),
            ("GET", "/healthz", Request::non_resource("get", "/healthz")),
            (
                "GET",
                "/openapi/v3/api/v1",
                Request::non_resource("get", "/openapi/v3/api/v1"),
            ),
            (
                "GET",
                "/version/",
                Request::non_resource("get", "/version/"),
            ),
            (
                "POST",
                "/debug/faults",
                Request::non_resource("post", "/debug/faults"),
            ),
        ];
        for (method, url, expected) in cases {
            assert_eq!(attrs(method, url), expected, "{method} {url}");
        }
    }
}
