//! Reading the objects an explanation needs from the API server: the Service, its
//! EndpointSlices, the Pods its selector matches, the Nodes, its Namespace's labels, the
//! `LoadBalancerIPPool`s and the `ServiceCIDR`s. The only I/O of `svcplane explain`.

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use kube::api::ListParams;
use kube::Api;
use svcplane_api::LoadBalancerIPPool;
use svcplane_rules::well_known::LABEL_SERVICE_NAME;

/// What the cluster says about `LoadBalancerIPPool`s.
#[derive(Debug, Clone)]
pub enum Pools {
    /// The CRD is not installed (the list answered 404).
    NotInstalled,
    /// The pools, possibly none.
    Listed(Vec<LoadBalancerIPPool>),
    /// The list failed otherwise (e.g. forbidden); the message says why.
    Unavailable(String),
}

/// Everything an explanation is computed from.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The Service.
    pub service: Service,
    /// Slices labelled `kubernetes.io/service-name: NAME`, sorted by name.
    pub slices: Vec<EndpointSlice>,
    /// Pods of the Namespace the Service's selector matches (empty without a selector).
    pub pods: Vec<Pod>,
    /// Every Node, sorted by name.
    pub nodes: Vec<Node>,
    /// The Namespace's labels (for pools' `namespaceSelector`).
    pub namespace_labels: BTreeMap<String, String>,
    /// The load-balancer pools.
    pub pools: Pools,
    /// `spec.cidrs` of every `ServiceCIDR` (networking.k8s.io/v1): the Service CIDRs the
    /// server exposes; empty when it exposes none.
    pub service_cidrs: Vec<IpNet>,
}

/// Why gathering failed.
#[derive(Debug)]
pub enum GatherError {
    /// The Service does not exist.
    ServiceNotFound {
        /// Namespace searched.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// Another API error or an unreachable server, with what was being read.
    Api {
        /// What was being read.
        what: &'static str,
        /// The client's error.
        source: kube::Error,
    },
}

impl std::fmt::Display for GatherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatherError::ServiceNotFound { namespace, name } => {
                write!(f, "service {name:?} not found in namespace {namespace:?}")
            }
            GatherError::Api { what, source } => match source {
                kube::Error::Api(status) => write!(f, "reading {what}: {}", status.message),
                other => write!(
                    f,
                    "cannot reach the API server while reading {what}: {other}"
                ),
            },
        }
    }
}

impl std::error::Error for GatherError {}

fn api_error(what: &'static str) -> impl FnOnce(kube::Error) -> GatherError {
    move |source| GatherError::Api { what, source }
}

fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// Reads the Service `namespace/name` and everything around it.
pub async fn gather(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Gathered, GatherError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = match services.get(name).await {
        Ok(service) => service,
        Err(err) if is_not_found(&err) => {
            return Err(GatherError::ServiceNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
        }
        Err(err) => return Err(api_error("the Service")(err)),
    };
    let slices_api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let mut slices = slices_api
        .list(&ListParams::default().labels(&format!("{LABEL_SERVICE_NAME}={name}")))
        .await
        .map_err(api_error("EndpointSlices"))?
        .items;
    slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let selector = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty());
    let pods = match selector {
        Some(selector) => {
            let query: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let mut pods = pods_api
                .list(&ListParams::default().labels(&query.join(",")))
                .await
                .map_err(api_error("Pods"))?
                .items;
            pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            pods
        }
        None => Vec::new(),
    };
    let mut nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_error("Nodes"))?
        .items;
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    // A Namespace that cannot be read only makes `namespaceSelector`s match less.
    let namespace_labels = Api::<Namespace>::all(client.clone())
        .get_opt(namespace)
        .await
        .ok()
        .flatten()
        .and_then(|ns| ns.metadata.labels)
        .unwrap_or_default();
    let pools = match Api::<LoadBalancerIPPool>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Pools::Listed(list.items),
        Err(err) if is_not_found(&err) => Pools::NotInstalled,
        Err(kube::Error::Api(status)) => Pools::Unavailable(status.message),
        Err(err) => return Err(api_error("LoadBalancerIPPools")(err)),
    };
    // Servers without the ServiceCIDR API, or without objects, expose no range.
    let service_cidrs = Api::<ServiceCIDR>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|list| {
            list.items
                .iter()
                .filter_map(|c| c.spec.as_ref()?.cidrs.clone())
                .flatten()
                .filter_map(|c| c.parse::<IpNet>().ok().map(|n| n.trunc()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Gathered {
        service,
        slices,
        pods,
        nodes,
        namespace_labels,
        pools,
        service_cidrs,
    })
}
