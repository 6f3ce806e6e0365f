//! Index from Pod labels to the Services whose selector matches them, so that a Pod event
//! costs O(labels of the Pod) instead of a scan over every Service of the namespace
//! (upstream `getServicesForPod` scans; with 10,000 Services that scan dominated churn).
//!
//! Each Service is indexed under the first `key=value` of its selector: a Pod it selects
//! must carry that label, so the candidates for a Pod are the Services indexed under one of
//! its labels, then checked against the full selector. An empty selector selects every Pod.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::Service;
use parking_lot::RwLock;

type Selector = BTreeMap<String, String>;

#[derive(Default)]
struct Inner {
    by_label: HashMap<(String, String, String), HashSet<String>>,
    match_all: HashMap<String, HashSet<String>>,
    selectors: HashMap<(String, String), Selector>,
}

/// The index; keys returned are `namespace/name`.
#[derive(Default)]
pub struct SelectorIndex {
    inner: RwLock<Inner>,
}

fn ns_name(svc: &Service) -> (String, String) {
    (
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

impl Inner {
    fn remove(&mut self, ns: &str, name: &str) {
        let Some(selector) = self.selectors.remove(&(ns.to_string(), name.to_string())) else {
            return;
        };
        match selector.iter().next() {
            None => {
                if let Some(set) = self.match_all.get_mut(ns) {
                    set.remove(name);
                }
            }
            Some((k, v)) => {
                let key = (ns.to_string(), k.clone(), v.clone());
                if let Some(set) = self.by_label.get_mut(&key) {
                    set.remove(name);
                    if set.is_empty() {
                        self.by_label.remove(&key);
                    }
                }
            }
        }
    }

    fn insert(&mut self, svc: &Service) {
        let (ns, name) = ns_name(svc);
        self.remove(&ns, &name);
        let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.clone()) else {
            return;
        };
        match selector.iter().next() {
            None => {
                self.match_all
                    .entry(ns.clone())
                    .or_default()
                    .insert(name.clone());
            }
            Some((k, v)) => {
                self.by_label
                    .entry((ns.clone(), k.clone(), v.clone()))
                    .or_default()
                    .insert(name.clone());
            }
        }
        self.selectors.insert((ns, name), selector);
    }
}

impl SelectorIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or updates a Service.
    pub fn insert(&self, svc: &Service) {
        self.inner.write().insert(svc);
    }

    /// Removes a Service.
    pub fn remove(&self, svc: &Service) {
        let (ns, name) = ns_name(svc);
        self.inner.write().remove(&ns, &name);
    }

    /// Rebuilds from a full list.
    pub fn rebuild<'a>(&self, services: impl IntoIterator<Item = &'a Service>) {
        let mut fresh = Inner::default();
        for svc in services {
            fresh.insert(svc);
        }
        *self.inner.write() = fresh;
    }

    /// Keys of the Services in `namespace` whose selector matches `labels`.
    pub fn services_selecting(
        &self,
        namespace: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Vec<String> {
        let inner = self.inner.read();
        let empty = BTreeMap::new();
        let labels = labels.unwrap_or(&empty);
        let mut out: Vec<String> = inner
            .match_all
            .get(namespace)
            .into_iter()
            .flatten()
            .map(|name| format!("{namespace}/{name}"))
            .collect();
        for (k, v) in labels {
            let key = (namespace.to_string(), k.clone(), v.clone());
            for name in inner.by_label.get(&key).into_iter().flatten() {
                let selector = &inner.selectors[&(namespace.to_string(), name.clone())];
                if selector.iter().all(|(sk, sv)| labels.get(sk) == Some(sv)) {
                    out.push(format!("{namespace}/{name}"));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(name: &str, selector: Option<&[(&str, &str)]>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: selector.map(|s| {
                    s.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn labels(l: &[(&str, &str)]) -> BTreeMap<String, String> {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn finds_exactly_the_services_whose_selector_matches() {
        let idx = SelectorIndex::new();
        idx.insert(&svc("web", Some(&[("app", "web")])));
        idx.insert(&svc(
            "web-canary",
            Some(&[("app", "web"), ("track", "canary")]),
        ));
        idx.insert(&svc("all", Some(&[])));
        idx.insert(&svc("none", None));
        idx.insert(&svc("db", Some(&[("app", "db")])));
        assert_eq!(
            idx.services_selecting("ns", Some(&labels(&[("app", "web")]))),
            vec!["ns/all", "ns/web"]
        );
        assert_eq!(
            idx.services_selecting("ns", Some(&labels(&[("app", "web"), ("track", "canary")]))),
            vec!["ns/all", "ns/web", "ns/web-canary"]
        );
        assert!(idx
            .services_selecting("other", Some(&labels(&[("app", "web")])))
            .is_empty());
        // Selector change and removal follow.
        idx.insert(&svc("web", Some(&[("app", "db")])));
        assert_eq!(
            idx.services_selecting("ns", Some(&labels(&[("app", "web")]))),
            vec!["ns/all"]
        );
        idx.remove(&svc("all", None));
        assert_eq!(
            idx.services_selecting("ns", Some(&labels(&[("app", "db")]))),
            vec!["ns/db", "ns/web"]
        );
    }
}
