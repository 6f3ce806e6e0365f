//! Calling `ValidatingWebhookConfiguration` webhooks on writes, as kube-apiserver's
//! ValidatingAdmissionWebhook plugin does: rule matching by operation, group, version,
//! resource and scope; `namespaceSelector` and `objectSelector`; `caBundle` verification;
//! `timeoutSeconds`; `failurePolicy` Fail/Ignore; `sideEffects` on dry runs; denial messages
//! and warnings passed back to the client.
//!
//! Not supported (beyond what we serve): `matchConditions` (CEL) are ignored, and
//! `clientConfig.service` references are resolved to `https://<service>.<namespace>.svc:<port><path>`,
//! which only works where that name resolves; use `clientConfig.url` for the embedded server.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::resources::{ResourceInfo, ResourceKey};
use crate::selector::LabelSelector;
use crate::store::Store;
use crate::string_list::strings;

/// Default `timeoutSeconds` of a webhook (upstream: 10).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

/// HTTP clients per `caBundle`, so TLS sessions and connections are reused across calls, and
/// the parsed webhook configurations, re-parsed only when one changes.
#[derive(Default)]
pub struct WebhookClients {
    by_ca: Mutex<HashMap<String, reqwest::Client>>,
    parsed: Mutex<ParsedConfigs>,
}

#[derive(Default)]
struct ParsedConfigs {
    versions: Vec<u64>,
    configs: Arc<Vec<Value>>,
}

impl WebhookClients {
    /// The parsed configurations for the stored ones (cached by their revisions).
    fn configs(&self, stored: &[Arc<crate::store::StoredObject>]) -> Arc<Vec<Value>> {
        let versions: Vec<u64> = stored.iter().map(|o| o.rv).collect();
        let mut parsed = self.parsed.lock();
        if parsed.versions != versions {
            parsed.configs = Arc::new(stored.iter().map(|o| o.value()).collect());
            parsed.versions = versions;
        }
        parsed.configs.clone()
    }

    fn client(&self, ca_bundle: &str) -> Result<reqwest::Client, String> {
        if let Some(c) = self.by_ca.lock().get(ca_bundle) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if !ca_bundle.is_empty() {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(ca_bundle.trim())
                .map_err(|e| format!("caBundle is not valid base64: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("caBundle holds no valid PEM certificate: {e}"))?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        self.by_ca
            .lock()
            .insert(ca_bundle.to_string(), client.clone());
        Ok(client)
    }
}

/// Whether admission webhooks apply to this resource at all (upstream never sends
/// webhook configurations themselves to webhooks, to avoid locking clusters out).
fn exempt(info: &ResourceInfo) -> bool {
    info.group == "admissionregistration.k8s.io"
}

fn matches_list(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

/// Whether a rule (`operations`, `apiGroups`, `apiVersions`, `resources`, `scope`) matches.
fn rule_matches(
    rule: &Value,
    info: &ResourceInfo,
    subresource: Option<&str>,
    operation: &str,
) -> bool {
    if !matches_list(&strings(&rule["operations"]), operation) {
        return false;
    }
    if !matches_list(&strings(&rule["apiGroups"]), &info.group) {
        return false;
    }
    if !matches_list(&strings(&rule["apiVersions"]), &info.version) {
        return false;
    }
    let resources = strings(&rule["resources"]);
    let ok = resources.iter().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
        let res_ok = res == "*" || res == info.plural;
        let sub_ok = match subresource {
            None => sub.is_empty(),
            Some(s) => sub == "*" || sub == s,
        };
        res_ok && sub_ok
    });
    if !ok {
        return false;
    }
    match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !info.namespaced,
        "Namespaced" => info.namespaced,
        _ => true,
    }
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> Result<bool, ApiError> {
    if selector.is_null() {
        return Ok(true);
    }
    let sel = LabelSelector::from_meta(selector)
        .map_err(|e| ApiError::internal(format!("invalid webhook selector: {e}")))?;
    Ok(sel.matches(labels))
}

/// One webhook that matched a request.
struct Matched {
    name: String,
    webhook: Value,
}

/// What a write asks admission about (upstream `admission.Attributes`): the resource and
/// subresource, the operation (`CREATE`, `UPDATE`, `DELETE`), the new object (`Null` for a
/// delete), the old one and `dryRun`.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// The resource written.
    pub info: &'a ResourceInfo,
    /// The subresource written (`status`), if any.
    pub subresource: Option<&'a str>,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub operation: &'a str,
    /// The object as it would be stored; `Null` for a delete.
    pub obj: &'a Value,
    /// The stored object an update or delete replaces.
    pub old: Option<&'a Value>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl Attributes<'_> {
    /// The object the request is about: the new one, or a delete's old one.
    fn source(&self) -> &Value {
        if self.obj.is_null() {
            self.old.unwrap_or(self.obj)
        } else {
            self.obj
        }
    }
}

fn matching_webhooks(
    state: Admission<'_>,
    attrs: Attributes<'_>,
) -> Result<Vec<Matched>, ApiError> {
    let Attributes {
        info,
        subresource,
        operation,
        obj,
        old,
        dry_run,
    } = attrs;
    let key = ResourceKey {
        group: "admissionregistration.k8s.io".into(),
        plural: "validatingwebhookconfigurations".into(),
    };
    let (_, stored, _) = state.store.list(&key, None, |_| true, None, None);
    if stored.is_empty() {
        return Ok(Vec::new());
    }
    let configs = state.clients.configs(&stored);
    let namespace = obj["metadata"]["namespace"]
        .as_str()
        .or_else(|| old.and_then(|o| o["metadata"]["namespace"].as_str()))
        .unwrap_or_default()
        .to_string();
    let ns_labels = if info.namespaced {
        let ns_key = ResourceKey {
            group: String::new(),
            plural: "namespaces".into(),
        };
        state
            .store
            .get(&ns_key, "", &namespace)
            .map(|o| o.labels.clone())
            .unwrap_or_default()
    } else if info.group.is_empty() && info.plural == "namespaces" {
        labels_of(attrs.source())
    } else {
        BTreeMap::new()
    };
    let mut out = Vec::new();
    for config in configs.iter() {
        for webhook in config["webhooks"].as_array().into_iter().flatten() {
            let rules = webhook["rules"].as_array().cloned().unwrap_or_default();
            if !rules
                .iter()
                .any(|r| rule_matches(r, info, subresource, operation))
            {
                continue;
            }
            // namespaceSelector does not filter cluster-scoped objects (except Namespaces).
            let ns_scoped =
                info.namespaced || (info.group.is_empty() && info.plural == "namespaces");
            if ns_scoped && !selector_matches(&webhook["namespaceSelector"], &ns_labels)? {
                continue;
            }
            let new_match =
                !obj.is_null() && selector_matches(&webhook["objectSelector"], &labels_of(obj))?;
            let old_match = old.is_some_and(|o| {
                selector_matches(&webhook["objectSelector"], &labels_of(o)).unwrap_or(false)
            });
            if !new_match && !old_match {
                continue;
            }
            if dry_run
                && !matches!(
                    webhook["sideEffects"].as_str(),
                    Some("None") | Some("NoneOnDryRun")
                )
            {
                return Err(ApiError::bad_request(format!(
                    "admission webhook {:?} has side effects and does not support dry run",
                    webhook["name"].as_str().unwrap_or_default()
                )));
            }
            out.push(Matched {
                name: webhook["name"].as_str().unwrap_or_default().to_string(),
                webhook: webhook.clone(),
            });
        }
    }
    Ok(out)
}

fn webhook_url(webhook: &Value) -> Result<String, String> {
    let cc = &webhook["clientConfig"];
    if let Some(url) = cc["url"].as_str() {
        return Ok(url.to_string());
    }
    let svc = &cc["service"];
    match (svc["name"].as_str(), svc["namespace"].as_str()) {
        (Some(name), Some(ns)) => Ok(format!(
            "https://{name}.{ns}.svc:{}{}",
            svc["port"].as_i64().unwrap_or(443),
            svc["path"].as_str().unwrap_or_default()
        )),
        _ => Err("clientConfig has neither url nor service".into()),
    }
}

fn review(attrs: Attributes<'_>) -> Value {
    let info = attrs.info;
    let source = attrs.source();
    let mut request = json!({
        "uid": uuid::Uuid::new_v4().to_string(),
        "kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "resource": {"group": info.group, "version": info.version, "resource": info.plural},
        "requestKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "requestResource": {"group": info.group, "version": info.version, "resource": info.plural},
        "name": source["metadata"]["name"],
        "operation": attrs.operation,
        "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
        "object": attrs.obj.clone(),
        "oldObject": attrs.old.cloned().unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
    });
    if let Some(ns) = source["metadata"]["namespace"].as_str() {
        request["namespace"] = json!(ns);
    }
    if let Some(sub) = attrs.subresource {
        request["subResource"] = json!(sub);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

async fn call_one(state: Admission<'_>, m: &Matched, body: &Value) -> Result<Value, String> {
    let url = webhook_url(&m.webhook)?;
    let ca = m.webhook["clientConfig"]["caBundle"]
        .as_str()
        .unwrap_or_default();
    let client = state.clients.client(ca)?;
    let timeout = m.webhook["timeoutSeconds"]
        .as_u64()
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let resp = client
        .post(&url)
        .timeout(Duration::from_secs(timeout))
        .json(body)
        .send()
        .await
        .map_err(|e| format!("failed to call webhook: Post {url:?}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "failed to call webhook: the server responded with the status code {}",
            status.as_u16()
        ));
    }
    let review: Value = resp
        .json()
        .await
        .map_err(|e| format!("received invalid webhook response: {e}"))?;
    let response = review["response"].clone();
    if !response.is_object() {
        return Err("received invalid webhook response: response is missing".into());
    }
    if response["uid"] != body["request"]["uid"] {
        return Err(format!(
            "expected response.uid={:?}, got {:?}",
            body["request"]["uid"].as_str().unwrap_or_default(),
            response["uid"].as_str().unwrap_or_default()
        ));
    }
    Ok(response)
}

/// What the admission stage reads: the stored webhook configurations (and namespaces, for
/// `namespaceSelector`) and the clients that call the webhooks.
#[derive(Clone, Copy)]
pub struct Admission<'a> {
    /// Where webhook configurations and namespaces are read.
    pub store: &'a Store,
    /// Cached clients and parsed configurations.
    pub clients: &'a WebhookClients,
}

/// Calls every matching validating webhook; returns their warnings, or the first denial.
pub async fn call_webhooks(
    state: Admission<'_>,
    attrs: Attributes<'_>,
) -> Result<Vec<String>, ApiError> {
    if exempt(attrs.info) {
        return Ok(Vec::new());
    }
    let matched = matching_webhooks(state, attrs)?;
    if matched.is_empty() {
        return Ok(Vec::new());
    }
    let body = review(attrs);
    // Upstream calls validating webhooks in parallel.
    let results =
        futures::future::join_all(matched.iter().map(|m| call_one(state, m, &body))).await;
    let mut warnings = Vec::new();
    for (m, result) in matched.iter().zip(results) {
        match result {
            Ok(response) => {
                warnings.extend(strings(&response["warnings"]));
                if response["allowed"] != true {
                    let status = &response["status"];
                    let message = status["message"].as_str().unwrap_or_default();
                    let text = if message.is_empty() {
                        format!(
                            "admission webhook {:?} denied the request without explanation",
                            m.name
                        )
                    } else {
                        format!(
                            "admission webhook {:?} denied the request: {message}",
                            m.name
                        )
                    };
                    let code = status["code"]
                        .as_u64()
                        .filter(|c| (400..600).contains(c))
                        .unwrap_or(400) as u16;
                    let mut err = ApiError::bad_request(text);
                    err.code = code;
                    err.reason = match status["reason"].as_str() {
                        Some("Invalid") => "Invalid",
                        Some("Forbidden") => "Forbidden",
                        Some("Conflict") => "Conflict",
                        _ if code == 403 => "Forbidden",
                        _ if code == 422 => "Invalid",
                        _ => "BadRequest",
                    };
                    err.details.causes = status["details"]["causes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|c| crate::error::Cause {
                            reason: c["reason"].as_str().unwrap_or_default().to_string(),
                            message: c["message"].as_str().unwrap_or_default().to_string(),
                            field: c["field"].as_str().unwrap_or_default().to_string(),
                        })
                        .collect();
                    // Upstream `webhookerrors.ToStatusErr` keeps the webhook's whole Status,
                    // details included: kubectl prints `The Kind "name" is invalid` from them.
                    let details = &status["details"];
                    let text_of = |key: &str| {
                        details[key]
                            .as_str()
                            .filter(|v| !v.is_empty())
                            .map(str::to_string)
                    };
                    err.details.name = text_of("name");
                    err.details.group = text_of("group");
                    err.details.kind = text_of("kind");
                    err.details.retry_after_seconds = details["retryAfterSeconds"]
                        .as_u64()
                        .and_then(|s| u32::try_from(s).ok());
                    return Err(err);
                }
            }
            Err(e) => {
                if m.webhook["failurePolicy"].as_str() == Some("Ignore") {
                    tracing::warn!(webhook = %m.name, error = %e, "webhook call failed; ignored by failurePolicy");
                    continue;
                }
                return Err(ApiError::internal(format!(
                    "Internal error occurred: failed calling webhook {:?}: {e}",
                    m.name
                )));
            }
        }
    }
    Ok(warnings)
}
