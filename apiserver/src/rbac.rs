//! The RBAC authorizer, as a pure function of the stored policy: given a user, the request's
//! attributes and the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, allow or
//! have no opinion (deny), with upstream's reasons and 403 message.
//!
//! Upstream, file by file (kubernetes/kubernetes v1.33):
//! - `plugin/pkg/auth/authorizer/rbac/rbac.go`: `Authorize`, `RuleAllows`, the
//!   `authorizingVisitor` and its `RBAC: allowed by ...` reason;
//! - `pkg/apis/rbac/v1/evaluation_helpers.go`: `VerbMatches`, `APIGroupMatches`,
//!   `ResourceMatches` (`*`, exact `resource/subresource`, `*/subresource`; a rule
//!   `pods/*` matches only the literal subresource `*`, there is no `resource/*` wildcard),
//!   `ResourceNameMatches`, `NonResourceURLMatches` (`*`, exact, trailing `*` prefix);
//! - `pkg/registry/rbac/validation/rule.go`: `VisitRulesFor` (every ClusterRoleBinding, then
//!   the RoleBindings of the request's namespace), `appliesToUser` (a ServiceAccount subject
//!   without a namespace takes the binding's), `GetRoleReferenceRules` and its errors, and
//!   the `clusterRoleBindingDescriber` / `roleBindingDescriber` texts;
//! - `pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go`: the rules of
//!   a ClusterRole with an `aggregationRule` are those of the ClusterRoles its selectors pick
//!   (by name order, itself excluded, duplicates dropped); [`Policy::new`] computes them,
//!   since no controller writes them here;
//! - `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`:
//!   `ForbiddenStatusError`, and `apierrors.NewForbidden` for the message's prefix.
//!
//! Wired into request handling by [`crate::authz`] under `--authorization-mode=RBAC`.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};

use crate::selector::LabelSelector;

/// The user name prefix of ServiceAccounts (`system:serviceaccount:<namespace>:<name>`).
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Who makes a request (upstream `user.Info`, the parts RBAC reads).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// User name (`system:serviceaccount:ns:name`, `alice`).
    pub name: String,
    /// User uid (a ServiceAccount's `metadata.uid`; empty when the authenticator has none).
    pub uid: String,
    /// Groups (`system:serviceaccounts`, `system:authenticated`).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A user with groups.
    pub fn new(name: impl Into<String>, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// A ServiceAccount's identity as upstream's token authenticator makes it
    /// (`serviceaccount.UserInfo`): its user name and the groups `system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>` and `system:authenticated`.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            name: format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"),
            uid: String::new(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// What a request asks (upstream `authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A request for a resource (`/api/...`, `/apis/...` naming a resource).
    Resource {
        /// Verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
        /// `deletecollection`, or a custom one such as `use`, `bind`, `escalate`).
        verb: String,
        /// API group, empty for core.
        api_group: String,
        /// Resource (plural).
        resource: String,
        /// Subresource, empty for none.
        subresource: String,
        /// Namespace, empty for a cluster-scoped request.
        namespace: String,
        /// Object name, empty for lists and creates without a name.
        name: String,
    },
    /// A request for another path (`/healthz`, `/metrics`, `/apis`).
    NonResource {
        /// Verb (`get`, `post`, ...: the lowercased HTTP method).
        verb: String,
        /// Path.
        path: String,
    },
}

impl Request {
    /// A resource request; `namespace`, `subresource` and `name` may be empty.
    pub fn resource(
        verb: &str,
        api_group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Request {
        Request::Resource {
            verb: verb.into(),
            api_group: api_group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Request {
        Request::NonResource {
            verb: verb.into(),
            path: path.into(),
        }
    }

    fn verb(&self) -> &str {
        match self {
            Request::Resource { verb, .. } | Request::NonResource { verb, .. } => verb,
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Request::Resource { namespace, .. } => namespace,
            Request::NonResource { .. } => "",
        }
    }
}

/// The authorizer's answer (upstream `authorizer.Decision` with its reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the reason names the binding (`RBAC: allowed by ClusterRoleBinding ...`).
    Allow(String),
    /// No rule allows it (RBAC never denies outright); the reason is empty, or lists the
    /// errors met resolving bindings (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not
    /// found`).
    NoOpinion(String),
}

impl Decision {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The reason text.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(r) | Decision::NoOpinion(r) => r,
        }
    }
}

/// What a user may do in a namespace ([`Policy::rules_for`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserRules {
    /// Rules naming resources (verbs, apiGroups, resources, resourceNames).
    pub resource_rules: Vec<PolicyRule>,
    /// Rules naming non-resource URLs (verbs, nonResourceURLs).
    pub non_resource_rules: Vec<PolicyRule>,
    /// Set when a binding's role could not be resolved: the answer is incomplete
    /// (`status.incomplete`, `status.evaluationError` of the review).
    pub evaluation_error: Option<String>,
}

/// The stored RBAC objects an authorization decision reads, aggregated ClusterRoles resolved.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    cluster_roles: BTreeMap<String, ClusterRole>,
    /// By (namespace, name).
    roles: BTreeMap<(String, String), Role>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    role_bindings: Vec<RoleBinding>,
}

impl Policy {
    /// The policy of these objects; the rules of ClusterRoles with an `aggregationRule` are
    /// replaced by the aggregated ones, as the cluster-role-aggregation controller writes them.
    pub fn new(
        cluster_roles: Vec<ClusterRole>,
        roles: Vec<Role>,
        cluster_role_bindings: Vec<ClusterRoleBinding>,
        role_bindings: Vec<RoleBinding>,
    ) -> Policy {
        let cluster_roles = aggregate_cluster_roles(cluster_roles)
            .into_iter()
            .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
            .collect();
        let roles = roles
            .into_iter()
            .map(|r| {
                (
                    (
                        r.metadata.namespace.clone().unwrap_or_default(),
                        r.metadata.name.clone().unwrap_or_default(),
                    ),
                    r,
                )
            })
            .collect();
        Policy {
            cluster_roles,
            roles,
            cluster_role_bindings,
            role_bindings,
        }
    }

    /// The effective rules of a ClusterRole (aggregated when it has an `aggregationRule`).
    pub fn cluster_role_rules(&self, name: &str) -> Option<&[PolicyRule]> {
        self.cluster_roles
            .get(name)
            .map(|r| r.rules.as_deref().unwrap_or_default())
    }

    /// Upstream `GetRoleReferenceRules`: the rules a binding's `roleRef` names.
    fn role_ref_rules(
        &self,
        kind: &str,
        name: &str,
        binding_namespace: &str,
    ) -> Result<&[PolicyRule], String> {
        match kind {
            "Role" => self
                .roles
                .get(&(binding_namespace.to_string(), name.to_string()))
                .map(|r| r.rules.as_deref().unwrap_or_default())
                .ok_or_else(|| {
                    format!(
                        "role.rbac.authorization.k8s.io {} not found",
                        go_quote(name)
                    )
                }),
            "ClusterRole" => self.cluster_role_rules(name).ok_or_else(|| {
                format!(
                    "clusterrole.rbac.authorization.k8s.io {} not found",
                    go_quote(name)
                )
            }),
            other => Err(format!(
                "unsupported role reference kind: {}",
                go_quote(other)
            )),
        }
    }

    /// Upstream `DefaultRuleResolver.RulesFor` as `RBACAuthorizer.RulesFor` returns it (what
    /// `SelfSubjectRulesReview`, `kubectl auth can-i --list`, answers): the rules of every
    /// ClusterRoleBinding and of the RoleBindings in `namespace` naming the user, in visiting
    /// order, split into resource rules (those with `resources`) and non-resource rules (those
    /// with `nonResourceURLs`); bindings whose role cannot be resolved make the answer
    /// incomplete with upstream's aggregated error text.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> UserRules {
        let mut rules: Vec<&PolicyRule> = Vec::new();
        let mut errors = Vec::new();
        let namespaced = self
            .role_bindings
            .iter()
            .filter(|b| !namespace.is_empty() && b.metadata.namespace.as_deref() == Some(namespace))
            .map(|b| (&b.subjects, &b.role_ref, namespace));
        let cluster = self
            .cluster_role_bindings
            .iter()
            .map(|b| (&b.subjects, &b.role_ref, ""));
        for (subjects, role_ref, ns) in cluster.chain(namespaced) {
            if applies_to(user, subjects.as_deref(), ns).is_none() {
                continue;
            }
            match self.role_ref_rules(&role_ref.kind, &role_ref.name, ns) {
                Ok(found) => rules.extend(found),
                Err(e) => errors.push(e),
            }
        }
        UserRules {
            resource_rules: rules
                .iter()
                .filter(|r| !list(&r.resources).is_empty())
                .map(|r| PolicyRule {
                    non_resource_urls: None,
                    ..(*r).clone()
                })
                .collect(),
            non_resource_rules: rules
                .iter()
                .filter(|r| !list(&r.non_resource_urls).is_empty())
                .map(|r| PolicyRule {
                    verbs: r.verbs.clone(),
                    non_resource_urls: r.non_resource_urls.clone(),
                    ..PolicyRule::default()
                })
                .collect(),
            evaluation_error: aggregate_errors(errors),
        }
    }

    /// Upstream `RBACAuthorizer.Authorize`: every ClusterRoleBinding, then the RoleBindings of
    /// the request's namespace, whose subjects include the user; the first rule allowing the
    /// request decides.
    pub fn authorize(&self, user: &UserInfo, request: &Request) -> Decision {
        let mut errors: Vec<String> = Vec::new();
        for binding in &self.cluster_role_bindings {
            let Some(subject) = applies_to(user, binding.subjects.as_deref(), "") else {
                continue;
            };
            match self.role_ref_rules(&binding.role_ref.kind, &binding.role_ref.name, "") {
                Err(e) => errors.push(e),
                Ok(rules) => {
                    if rules.iter().any(|rule| rule_allows(request, rule)) {
                        return Decision::Allow(format!(
                            "RBAC: allowed by ClusterRoleBinding {} of {} {} to {}",
                            go_quote(binding.metadata.name.as_deref().unwrap_or_default()),
                            binding.role_ref.kind,
                            go_quote(&binding.role_ref.name),
                            describe_subject(subject, "")
                        ));
                    }
                }
            }
        }
        let namespace = request.namespace();
        if !namespace.is_empty() {
            for binding in self
                .role_bindings
                .iter()
                .filter(|b| b.metadata.namespace.as_deref() == Some(namespace))
            {
                let Some(subject) = applies_to(user, binding.subjects.as_deref(), namespace) else {
                    continue;
                };
                match self.role_ref_rules(&binding.role_ref.kind, &binding.role_ref.name, namespace)
                {
                    Err(e) => errors.push(e),
                    Ok(rules) => {
                        if rules.iter().any(|rule| rule_allows(request, rule)) {
                            let name = binding.metadata.name.as_deref().unwrap_or_default();
                            return Decision::Allow(format!(
                                "RBAC: allowed by RoleBinding {} of {} {} to {}",
                                go_quote(&format!("{name}/{namespace}")),
                                binding.role_ref.kind,
                                go_quote(&binding.role_ref.name),
                                describe_subject(subject, namespace)
                            ));
                        }
                    }
                }
            }
        }
        Decision::NoOpinion(match aggregate_errors(errors) {
            None => String::new(),
            Some(text) => format!("RBAC: {text}"),
        })
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: one error as itself, several as `[a, b]`, repeated
/// messages once.
fn aggregate_errors(errors: Vec<String>) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<String> = errors
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .collect();
    match unique.len() {
        0 => None,
        1 => unique.into_iter().next(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

/// Upstream `appliesTo`: the first subject of a binding that is this user.
fn applies_to<'a>(
    user: &UserInfo,
    subjects: Option<&'a [Subject]>,
    namespace: &str,
) -> Option<&'a Subject> {
    subjects
        .unwrap_or_default()
        .iter()
        .find(|s| applies_to_user(user, s, namespace))
}

/// Upstream `appliesToUser`: users by name, groups by membership, ServiceAccounts by their
/// user name, a subject without a namespace taking the binding's (none for a
/// ClusterRoleBinding, which then never matches). The subject's `apiGroup` is not read.
fn applies_to_user(user: &UserInfo, subject: &Subject, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let sa_namespace = match subject.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns,
                _ => namespace,
            };
            !sa_namespace.is_empty()
                && user.name == format!("{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{}", subject.name)
        }
        _ => false,
    }
}

/// Go's `%q` (`strconv.Quote`) of text: quotes and backslashes escaped, `\n`, `\t` and the
/// other C escapes, other control characters as `\xNN` or `\uNNNN`, printable Unicode kept.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Upstream `describeSubject`.
fn describe_subject(subject: &Subject, binding_namespace: &str) -> String {
    match subject.kind.as_str() {
        "ServiceAccount" => {
            let ns = match subject.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns,
                _ => binding_namespace,
            };
            format!(
                "{} {}",
                subject.kind,
                go_quote(&format!("{}/{ns}", subject.name))
            )
        }
        _ => format!("{} {}", subject.kind, go_quote(&subject.name)),
    }
}

fn list(values: &Option<Vec<String>>) -> &[String] {
    values.as_deref().unwrap_or_default()
}

/// Upstream `RuleAllows`.
pub fn rule_allows(request: &Request, rule: &PolicyRule) -> bool {
    match request {
        Request::Resource {
            verb,
            api_group,
            resource,
            subresource,
            name,
            ..
        } => {
            let combined = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            verb_matches(rule, verb)
                && api_group_matches(rule, api_group)
                && resource_matches(rule, &combined, subresource)
                && resource_name_matches(rule, name)
        }
        Request::NonResource { verb, path } => {
            verb_matches(rule, verb) && non_resource_url_matches(rule, path)
        }
    }
}

/// Upstream `VerbMatches`: `*` or the exact verb (case-sensitive).
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// Upstream `APIGroupMatches`: `*` or the exact group (`""` is core).
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == "*" || g == group)
}

/// Upstream `ResourceMatches`: `*`, the exact `resource` or `resource/subresource`, or
/// `*/subresource` when a subresource is requested.
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// Upstream `ResourceNameMatches`: no names means any name (lists and creates included);
/// otherwise the exact name (an unnamed request never matches).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// Upstream `NonResourceURLMatches`: `*`, the exact path, or a prefix ending in `*` (every
/// trailing `*` trimmed, as `strings.TrimRight`).
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls).iter().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// `equality.Semantic.DeepEqual` of two rules: absent and empty lists are equal.
fn same_rule(a: &PolicyRule, b: &PolicyRule) -> bool {
    a.verbs == b.verbs
        && list(&a.api_groups) == list(&b.api_groups)
        && list(&a.resources) == list(&b.resources)
        && list(&a.resource_names) == list(&b.resource_names)
        && list(&a.non_resource_urls) == list(&b.non_resource_urls)
}

/// The cluster-role-aggregation controller's work: every ClusterRole with an
/// `aggregationRule` gets the rules of the ClusterRoles its selectors pick (selector by
/// selector, each selector's roles by name, itself excluded, duplicate rules dropped), its own
/// rules replaced. Aggregated roles picked by other aggregated roles contribute their
/// aggregated rules: the controller re-syncs until nothing changes, and so does this (at most
/// one round per role plus one). A selector that does not parse leaves that role's rules as
/// stored (upstream's sync fails and retries).
pub fn aggregate_cluster_roles(mut roles: Vec<ClusterRole>) -> Vec<ClusterRole> {
    roles.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for _ in 0..=roles.len() {
        let mut changed = false;
        for i in 0..roles.len() {
            let Some(rule) = &roles[i].aggregation_rule else {
                continue;
            };
            let me = roles[i].metadata.name.clone();
            let mut rules: Vec<PolicyRule> = Vec::new();
            let mut valid = true;
            for selector in rule.cluster_role_selectors.as_deref().unwrap_or_default() {
                let value = serde_json::to_value(selector).unwrap_or_default();
                let selector = match LabelSelector::from_meta(&value) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(
                            cluster_role = me.as_deref().unwrap_or_default(),
                            "aggregationRule.clusterRoleSelectors: {e}"
                        );
                        valid = false;
                        break;
                    }
                };
                for other in roles.iter().filter(|r| r.metadata.name != me) {
                    if !selector.matches(&other.metadata.labels.clone().unwrap_or_default()) {
                        continue;
                    }
                    for r in other.rules.as_deref().unwrap_or_default() {
                        if !rules.iter().any(|have| same_rule(have, r)) {
                            rules.push(r.clone());
                        }
                    }
                }
            }
            if !valid {
                continue;
            }
            let current = roles[i].rules.as_deref().unwrap_or_default();
            let same = current.len() == rules.len()
                && current.iter().zip(&rules).all(|(a, b)| same_rule(a, b));
            if !same {
                roles[i].rules = Some(rules);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    roles
}

/// Upstream `ForbiddenStatusError` + `apierrors.NewForbidden`: the 403 message for a request
/// the authorizer did not allow, `reason` appended after `: ` when not empty.
pub fn forbidden_message(user: &UserInfo, request: &Request, reason: &str) -> String {
    let mut msg = format!("User {} cannot {}", go_quote(&user.name), request.verb());
    let prefix = match request {
        Request::Resource {
            api_group,
            resource,
            subresource,
            namespace,
            name,
            ..
        } => {
            let shown = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            msg.push_str(&format!(
                " resource {} in API group {}",
                go_quote(&shown),
                go_quote(api_group)
            ));
            if namespace.is_empty() {
                msg.push_str(" at the cluster scope");
            } else {
                msg.push_str(&format!(" in the namespace {}", go_quote(namespace)));
            }
            // schema.GroupResource.String(): `resource` or `resource.group`.
            let qualified = if api_group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{api_group}")
            };
            if qualified.is_empty() {
                "forbidden".to_string()
            } else if name.is_empty() {
                format!("{qualified} is forbidden")
            } else {
                format!("{qualified} {} is forbidden", go_quote(name))
            }
        }
        Request::NonResource { path, .. } => {
            msg.push_str(&format!(" path {}", go_quote(path)));
            "forbidden".to_string()
        }
    };
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    format!("{prefix}: {msg}")
}

#[cfg(test)]
mod tests {
    //! Table tests after upstream's `plugin/pkg/auth/authorizer/rbac/rbac_test.go`
    //! (`TestRuleMatches`, `TestAuthorizer`, `TestAppliesTo`),
    //! `pkg/controller/clusterroleaggregation/clusterroleaggregation_controller_test.go` and
    //! `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors_test.go`
    //! (`TestForbidden`).

    use super::*;
    use serde_json::json;

    fn rule(value: serde_json::Value) -> PolicyRule {
        serde_json::from_value(value).expect("a PolicyRule")
    }

    fn get(group: &str, resource: &str, sub: &str, name: &str) -> Request {
        Request::resource("get", group, resource, sub, "ns1", name)
    }

    /// rbac_test.go `TestRuleMatches` and the matchers of evaluation_helpers.go.
    /// One case: a name, a rule, requests and whether the rule allows each.
    type RuleCase = (&'static str, PolicyRule, Vec<(Request, bool)>);

    #[test]
    fn rule_matching_follows_upstream_evaluation_helpers() {
        let cases: Vec<RuleCase> = vec![
            (
                "star verb, exact match other",
                rule(json!({"verbs": ["*"], "apiGroups": ["group1"], "resources": ["resource1"]})),
                vec![
                    (get("group1", "resource1", "", ""), true),
                    (get("group2", "resource1", "", ""), false),
                    (get("group1", "resource2", "", ""), false),
                    (Request::resource("update", "group1", "resource1", "", "", ""), true),
                    (Request::resource("escalate", "group1", "resource1", "", "", ""), true),
                ],
            ),
            (
                "star group, exact match other",
                rule(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["resource1"]})),
                vec![
                    (get("group1", "resource1", "", ""), true),
                    (get("", "resource1", "", ""), true),
                    (get("group1", "resource2", "", ""), false),
                    (Request::resource("update", "group1", "resource1", "", "", ""), false),
                ],
            ),
            (
                "star resource matches every resource and subresource",
                rule(json!({"verbs": ["get"], "apiGroups": ["group1"], "resources": ["*"]})),
                vec![
                    (get("group1", "resource1", "", ""), true),
                    (get("group1", "resource1", "status", ""), true),
                    (get("group2", "resource1", "", ""), false),
                ],
            ),
            (
                "verbs and groups are case-sensitive",
                rule(json!({"verbs": ["Get"], "apiGroups": ["Apps"], "resources": ["pods"]})),
                vec![(get("apps", "pods", "", ""), false), (get("Apps", "pods", "", ""), false)],
            ),
            (
                "a resource does not grant its subresources, nor a subresource its resource",
                rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "services/status"]})),
                vec![
                    (get("", "pods", "", ""), true),
                    (get("", "pods", "log", ""), false),
                    (get("", "services", "status", ""), true),
                    (get("", "services", "", ""), false),
                ],
            ),
            (
                "*/subresource grants that subresource of every resource",
                rule(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]})),
                vec![
                    (get("apps", "deployments", "scale", ""), true),
                    (get("", "replicationcontrollers", "scale", ""), true),
                    (get("apps", "deployments", "", ""), false),
                    (get("apps", "deployments", "status", ""), false),
                    // HasSuffix with the length check: not `*/xscale` for `scale`.
                    (get("apps", "deployments", "cale", ""), false),
                ],
            ),
            (
                "resource/* is no wildcard upstream: it matches only the subresource named `*`",
                rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/*"]})),
                vec![
                    (get("", "pods", "log", ""), false),
                    (get("", "pods", "", ""), false),
                    (get("", "pods", "*", ""), true),
                ],
            ),
            (
                "resourceNames restrict to those names; unnamed requests (list, create) never match",
                rule(json!({"verbs": ["get", "list", "create"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["foo", "bar"]})),
                vec![
                    (get("", "configmaps", "", "foo"), true),
                    (get("", "configmaps", "", "bar"), true),
                    (get("", "configmaps", "", "baz"), false),
                    (get("", "configmaps", "", ""), false),
                    (Request::resource("list", "", "configmaps", "", "ns1", ""), false),
                    (Request::resource("create", "", "configmaps", "", "ns1", ""), false),
                ],
            ),
            (
                "no resourceNames: any name",
                rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": []})),
                vec![(get("", "configmaps", "", "anything"), true), (get("", "configmaps", "", ""), true)],
            ),
            (
                "resource rules never grant non-resource paths",
                rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})),
                vec![(Request::non_resource("get", "/healthz"), false), (get("x", "y", "z", "n"), true)],
            ),
            (
                "non-resource URLs: exact, trailing star prefix, star",
                rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*", "/metrics**"]})),
                vec![
                    (Request::non_resource("get", "/healthz"), true),
                    (Request::non_resource("get", "/healthz/ready"), false),
                    (Request::non_resource("post", "/healthz"), false),
                    (Request::non_resource("get", "/apis/"), true),
                    (Request::non_resource("get", "/apis/apps/v1"), true),
                    (Request::non_resource("get", "/apis"), false),
                    // TrimRight trims every trailing star.
                    (Request::non_resource("get", "/metrics"), true),
                    (Request::non_resource("get", "/metricsx/y"), true),
                    (get("", "pods", "", ""), false),
                ],
            ),
            (
                "non-resource star",
                rule(json!({"verbs": ["*"], "nonResourceURLs": ["*"]})),
                vec![(Request::non_resource("put", "/anything/at/all"), true)],
            ),
        ];
        for (case, rule, requests) in cases {
            for (request, expected) in requests {
                assert_eq!(
                    rule_allows(&request, &rule),
                    expected,
                    "{case}: {request:?}"
                );
            }
        }
    }

    fn cluster_role(
        name: &str,
        labels: serde_json::Value,
        rules: serde_json::Value,
    ) -> ClusterRole {
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": labels}, "rules": rules}),
        )
        .unwrap()
    }

    fn binding<T: serde::de::DeserializeOwned>(
        namespace: Option<&str>,
        name: &str,
        role_kind: &str,
        role: &str,
        subjects: serde_json::Value,
    ) -> T {
        let mut metadata = json!({"name": name});
        if let Some(ns) = namespace {
            metadata["namespace"] = json!(ns);
        }
        serde_json::from_value(json!({
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects,
        }))
        .unwrap()
    }

    fn policy() -> Policy {
        let roles: Vec<Role> = vec![serde_json::from_value(json!({
            "metadata": {"name": "cm-reader", "namespace": "ns1"},
            "rules": [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["configmaps"]}],
        }))
        .unwrap()];
        Policy::new(
            vec![
                cluster_role(
                    "admin",
                    json!({}),
                    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
                ),
                cluster_role(
                    "endpointslice-controller",
                    json!({}),
                    json!([
                        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["services", "pods", "nodes"]},
                        {"verbs": ["update"], "apiGroups": [""], "resources": ["services/finalizers"]},
                        {"verbs": ["create", "update", "delete"], "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"]},
                        {"verbs": ["create", "patch", "update"], "apiGroups": ["", "events.k8s.io"], "resources": ["events"]},
                    ]),
                ),
                cluster_role(
                    "metrics",
                    json!({}),
                    json!([{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]),
                ),
                cluster_role(
                    "lease-holder",
                    json!({}),
                    json!([{"verbs": ["get", "update"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["svcplane"]}]),
                ),
            ],
            roles,
            vec![
                binding(
                    None,
                    "admins",
                    "ClusterRole",
                    "admin",
                    json!([{"kind": "Group", "name": "system:masters"}]),
                ),
                binding(
                    None,
                    "slices",
                    "ClusterRole",
                    "endpointslice-controller",
                    json!([{"kind": "ServiceAccount", "name": "cm", "namespace": "svcplane"}]),
                ),
                // A ServiceAccount subject without a namespace in a ClusterRoleBinding never
                // applies (appliesToUser: no namespace to default to).
                binding(
                    None,
                    "no-ns",
                    "ClusterRole",
                    "admin",
                    json!([{"kind": "ServiceAccount", "name": "node"}]),
                ),
                binding(
                    None,
                    "metrics",
                    "ClusterRole",
                    "metrics",
                    json!([{"kind": "User", "name": "prometheus"}]),
                ),
                binding(
                    None,
                    "dangling",
                    "ClusterRole",
                    "not-there",
                    json!([{"kind": "User", "name": "bob"}]),
                ),
                binding(
                    None,
                    "odd-kind",
                    "Thing",
                    "x",
                    json!([{"kind": "User", "name": "carol"}]),
                ),
            ],
            vec![
                // Namespace defaulted from the binding for the ServiceAccount subject.
                binding(
                    Some("ns1"),
                    "read-cm",
                    "Role",
                    "cm-reader",
                    json!([{"kind": "ServiceAccount", "name": "app"}]),
                ),
                // A ClusterRole bound in one namespace grants only there.
                binding(
                    Some("svcplane"),
                    "leader",
                    "ClusterRole",
                    "lease-holder",
                    json!([{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "cm"}]),
                ),
                binding(
                    Some("ns1"),
                    "dangling-role",
                    "Role",
                    "gone",
                    json!([{"kind": "User", "name": "bob"}]),
                ),
            ],
        )
    }

    /// rbac_test.go `TestAuthorizer` / rule.go `VisitRulesFor` and `appliesToUser`.
    #[test]
    fn authorizer_decisions_follow_upstream_rbac() {
        let p = policy();
        let cm = UserInfo::service_account("svcplane", "cm");
        let app = UserInfo::service_account("ns1", "app");
        let cases: Vec<(&str, UserInfo, Request, bool)> = vec![
            (
                "system:masters may do anything",
                UserInfo::new("admin", &["system:masters"]),
                Request::resource("delete", "apps", "deployments", "", "x", "y"),
                true,
            ),
            (
                "a name alone is no group",
                UserInfo::new("system:masters", &[]),
                get("", "pods", "", ""),
                false,
            ),
            (
                "ClusterRoleBinding grants in every namespace",
                cm.clone(),
                Request::resource("list", "", "services", "", "", ""),
                true,
            ),
            (
                "ClusterRoleBinding grants in another namespace",
                cm.clone(),
                Request::resource("watch", "", "pods", "", "anywhere", ""),
                true,
            ),
            (
                "a verb not granted",
                cm.clone(),
                Request::resource("delete", "", "services", "", "ns1", "a"),
                false,
            ),
            (
                "a subresource granted alone",
                cm.clone(),
                Request::resource("update", "", "services", "finalizers", "ns1", "a"),
                true,
            ),
            (
                "the resource of a granted subresource",
                cm.clone(),
                Request::resource("update", "", "services", "", "ns1", "a"),
                false,
            ),
            (
                "events in either group",
                cm.clone(),
                Request::resource("patch", "events.k8s.io", "events", "", "ns1", "e"),
                true,
            ),
            (
                "another ServiceAccount of the same name",
                UserInfo::service_account("other", "cm"),
                Request::resource("list", "", "services", "", "", ""),
                false,
            ),
            (
                "ServiceAccount subject without namespace in a ClusterRoleBinding",
                UserInfo::service_account("default", "node"),
                get("", "pods", "", ""),
                false,
            ),
            (
                "RoleBinding: ServiceAccount namespace defaulted",
                app.clone(),
                Request::resource("list", "", "configmaps", "", "ns1", ""),
                true,
            ),
            (
                "RoleBinding grants nothing in another namespace",
                app.clone(),
                Request::resource("list", "", "configmaps", "", "ns2", ""),
                false,
            ),
            (
                "RoleBinding grants nothing at the cluster scope",
                app.clone(),
                Request::resource("list", "", "configmaps", "", "", ""),
                false,
            ),
            (
                "ClusterRole through a RoleBinding, named object",
                UserInfo::new("alice", &[]),
                Request::resource(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "svcplane",
                    "svcplane",
                ),
                true,
            ),
            (
                "ClusterRole through a RoleBinding, other name",
                UserInfo::new("alice", &[]),
                Request::resource(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "svcplane",
                    "other",
                ),
                false,
            ),
            (
                "ClusterRole through a RoleBinding, other namespace",
                UserInfo::new("alice", &[]),
                Request::resource(
                    "get",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-system",
                    "svcplane",
                ),
                false,
            ),
            (
                "second subject of a RoleBinding",
                cm.clone(),
                Request::resource(
                    "get",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "svcplane",
                    "svcplane",
                ),
                true,
            ),
            (
                "non-resource URL",
                UserInfo::new("prometheus", &[]),
                Request::non_resource("get", "/metrics"),
                true,
            ),
            (
                "non-resource URL, other path",
                UserInfo::new("prometheus", &[]),
                Request::non_resource("get", "/healthz"),
                false,
            ),
            (
                "anonymous",
                UserInfo::new("system:anonymous", &["system:unauthenticated"]),
                Request::non_resource("get", "/metrics"),
                false,
            ),
        ];
        for (case, user, request, allowed) in cases {
            let decision = p.authorize(&user, &request);
            assert_eq!(decision.allowed(), allowed, "{case}: {decision:?}");
        }
    }

    #[test]
    fn reasons_name_the_binding_or_the_errors_met() {
        let p = policy();
        let d = p.authorize(
            &UserInfo::service_account("svcplane", "cm"),
            &Request::resource("list", "", "services", "", "", ""),
        );
        assert_eq!(
            d,
            Decision::Allow(
                "RBAC: allowed by ClusterRoleBinding \"slices\" of ClusterRole \"endpointslice-controller\" to ServiceAccount \"cm/svcplane\"".into()
            )
        );
        let d = p.authorize(
            &UserInfo::service_account("ns1", "app"),
            &Request::resource("get", "", "configmaps", "", "ns1", "x"),
        );
        assert_eq!(
            d.reason(),
            "RBAC: allowed by RoleBinding \"read-cm/ns1\" of Role \"cm-reader\" to ServiceAccount \"app/ns1\""
        );
        let d = p.authorize(
            &UserInfo::new("alice", &[]),
            &Request::resource(
                "get",
                "coordination.k8s.io",
                "leases",
                "",
                "svcplane",
                "svcplane",
            ),
        );
        assert_eq!(d.reason(), "RBAC: allowed by RoleBinding \"leader/svcplane\" of ClusterRole \"lease-holder\" to User \"alice\"");
        // Denied with no error: no reason.
        let d = p.authorize(&UserInfo::new("nobody", &[]), &get("", "pods", "", ""));
        assert_eq!(d, Decision::NoOpinion(String::new()));
        // A binding whose role is missing: its error (an aggregate of both) is the reason.
        let d = p.authorize(&UserInfo::new("bob", &[]), &get("", "pods", "", ""));
        assert_eq!(
            d,
            Decision::NoOpinion(
                "RBAC: [clusterrole.rbac.authorization.k8s.io \"not-there\" not found, role.rbac.authorization.k8s.io \"gone\" not found]".into()
            )
        );
        let d = p.authorize(
            &UserInfo::new("bob", &[]),
            &Request::resource("get", "", "pods", "", "", ""),
        );
        assert_eq!(
            d.reason(),
            "RBAC: clusterrole.rbac.authorization.k8s.io \"not-there\" not found"
        );
        let d = p.authorize(
            &UserInfo::new("carol", &[]),
            &Request::non_resource("get", "/"),
        );
        assert_eq!(
            d.reason(),
            "RBAC: unsupported role reference kind: \"Thing\""
        );
    }

    /// rule.go `RulesFor` / rbac.go `RBACAuthorizer.RulesFor`.
    #[test]
    fn rules_for_lists_what_each_binding_grants_in_the_namespace() {
        let p = policy();
        let cm = UserInfo::service_account("svcplane", "cm");
        let verbs = |rules: &[PolicyRule]| -> Vec<String> {
            rules
                .iter()
                .map(|r| format!("{} {}", r.verbs.join(","), list(&r.resources).join(",")))
                .collect()
        };
        let r = p.rules_for(&cm, "svcplane");
        assert_eq!(
            verbs(&r.resource_rules),
            [
                "get,list,watch services,pods,nodes",
                "update services/finalizers",
                "create,update,delete endpointslices",
                "create,patch,update events",
                "get,update leases",
            ]
        );
        assert_eq!(
            r.resource_rules[4].resource_names.as_deref(),
            Some(&["svcplane".to_string()][..])
        );
        assert!(r.non_resource_rules.is_empty());
        assert_eq!(r.evaluation_error, None);
        // Elsewhere, and at the cluster scope, only the ClusterRoleBindings count.
        assert_eq!(p.rules_for(&cm, "ns1").resource_rules.len(), 4);
        assert_eq!(p.rules_for(&cm, "").resource_rules.len(), 4);
        let r = p.rules_for(&UserInfo::new("prometheus", &[]), "ns1");
        assert!(r.resource_rules.is_empty());
        assert_eq!(r.non_resource_rules.len(), 1);
        assert_eq!(
            r.non_resource_rules[0].non_resource_urls.as_deref(),
            Some(&["/metrics".to_string()][..])
        );
        let r = p.rules_for(&UserInfo::new("bob", &[]), "ns1");
        assert_eq!(
            r.evaluation_error.as_deref(),
            Some("[clusterrole.rbac.authorization.k8s.io \"not-there\" not found, role.rbac.authorization.k8s.io \"gone\" not found]")
        );
    }

    /// clusterroleaggregation_controller_test.go `TestSyncClusterRole`.
    #[test]
    fn aggregated_cluster_roles_take_the_selected_roles_rules() {
        let agg = |name: &str,
                   labels: serde_json::Value,
                   selectors: serde_json::Value,
                   rules: serde_json::Value|
         -> ClusterRole {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "aggregationRule": {"clusterRoleSelectors": selectors},
                "rules": rules,
            }))
            .unwrap()
        };
        let pods = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        let slices = json!({"verbs": ["list"], "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"]});
        let leases = json!({"verbs": ["get"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"]});
        let roles = aggregate_cluster_roles(vec![
            // Own rules replaced; selectors in order, each selector's roles by name.
            agg(
                "view",
                json!({}),
                json!([{"matchLabels": {"agg/view": "true"}}, {"matchLabels": {"extra": "yes"}}]),
                json!([leases.clone()]),
            ),
            cluster_role(
                "b-slices",
                json!({"agg/view": "true"}),
                json!([slices.clone(), pods.clone()]),
            ),
            cluster_role(
                "a-pods",
                json!({"agg/view": "true", "extra": "yes"}),
                json!([pods.clone()]),
            ),
            // Nested: aggregates `view`, which it selects by label, and gets its aggregated rules.
            agg(
                "edit",
                json!({}),
                json!([{"matchLabels": {"agg/edit": "true"}}]),
                json!([]),
            ),
            agg(
                "view2",
                json!({"agg/edit": "true"}),
                json!([{"matchExpressions": [{"key": "agg/view", "operator": "Exists"}]}]),
                json!([]),
            ),
            // An empty selector picks every other ClusterRole (itself excluded).
            agg("everything", json!({}), json!([{}]), json!([])),
            // A bad selector leaves the stored rules.
            agg(
                "broken",
                json!({}),
                json!([{"matchExpressions": [{"key": "x", "operator": "Bogus"}]}]),
                json!([leases.clone()]),
            ),
        ]);
        let rules_of = |name: &str| -> serde_json::Value {
            let role = roles
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
                .unwrap();
            serde_json::to_value(role.rules.clone().unwrap_or_default()).unwrap()
        };
        assert_eq!(rules_of("view"), json!([pods.clone(), slices.clone()]));
        assert_eq!(rules_of("view2"), json!([pods.clone(), slices.clone()]));
        // `edit` is synced before `view2` (by name): only the second round gives it view2's
        // aggregated rules, as the controller's re-sync would.
        assert_eq!(rules_of("edit"), rules_of("view2"));
        assert_eq!(
            rules_of("everything"),
            json!([pods.clone(), slices.clone(), leases.clone()])
        );
        assert_eq!(rules_of("broken"), json!([leases.clone()]));
        // The authorizer reads aggregated rules.
        let p = Policy::new(
            roles,
            vec![],
            vec![binding(
                None,
                "v",
                "ClusterRole",
                "view",
                json!([{"kind": "User", "name": "u"}]),
            )],
            vec![],
        );
        let u = UserInfo::new("u", &[]);
        assert!(p
            .authorize(
                &u,
                &Request::resource("list", "discovery.k8s.io", "endpointslices", "", "", "")
            )
            .allowed());
        assert!(!p
            .authorize(
                &u,
                &Request::resource("get", "coordination.k8s.io", "leases", "", "", "")
            )
            .allowed());
    }

    /// errors_test.go `TestForbidden` and the message of issue 11.
    #[test]
    fn forbidden_messages_are_upstreams() {
        let sa = UserInfo::service_account("ns", "name");
        let cases = [
            (
                Request::resource("list", "", "services", "", "ns", ""),
                "",
                r#"services is forbidden: User "system:serviceaccount:ns:name" cannot list resource "services" in API group "" in the namespace "ns""#,
            ),
            (
                Request::resource("list", "", "services", "", "", ""),
                "",
                r#"services is forbidden: User "system:serviceaccount:ns:name" cannot list resource "services" in API group "" at the cluster scope"#,
            ),
            (
                Request::resource("get", "apps", "deployments", "scale", "ns", "web"),
                "",
                r#"deployments.apps "web" is forbidden: User "system:serviceaccount:ns:name" cannot get resource "deployments/scale" in API group "apps" in the namespace "ns""#,
            ),
            (
                Request::resource(
                    "create",
                    "rbac.authorization.k8s.io",
                    "clusterroles",
                    "",
                    "",
                    "",
                ),
                r#"RBAC: clusterrole.rbac.authorization.k8s.io "x" not found"#,
                r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:ns:name" cannot create resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "x" not found"#,
            ),
            (
                Request::non_resource("get", "/metrics"),
                "",
                r#"forbidden: User "system:serviceaccount:ns:name" cannot get path "/metrics""#,
            ),
        ];
        for (request, reason, expected) in cases {
            let got = forbidden_message(&sa, &request, reason);
            assert_eq!(got, expected, "{request:?}");
        }
        assert_eq!(
            forbidden_message(
                &UserInfo::new("we\"ird\n", &[]),
                &Request::non_resource("get", "/a\tb"),
                ""
            ),
            r#"forbidden: User "we\"ird\n" cannot get path "/a\tb""#
        );
    }

    #[test]
    fn go_quote_escapes_as_strconv_quote() {
        assert_eq!(go_quote("plain"), r#""plain""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\u{7f}\u{85}é"), "\"\\x00\\x7f\\u0085é\"");
    }
}
