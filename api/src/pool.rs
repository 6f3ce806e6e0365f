//! The `LoadBalancerIPPool` kind (`svcplane.io/v1alpha1`, cluster-scoped).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::core::{Selector, SelectorExt};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::block::{AddressBlock, BlockError, IpBlock};

/// The API group of svcplane's own kinds.
pub const API_GROUP: &str = "svcplane.io";
/// The version of svcplane's own kinds.
pub const API_VERSION: &str = "v1alpha1";
/// The `spec.loadBalancerClass` svcplane's LoadBalancer IPAM serves unless configured
/// otherwise.
pub const DEFAULT_LOAD_BALANCER_CLASS: &str = "svcplane.io/lb";
/// Service annotation requesting specific addresses: comma-separated IPs, at most one per
/// IP family (the place MetalLB and Cilium also moved to from the deprecated
/// `spec.loadBalancerIP`).
pub const LOAD_BALANCER_IPS_ANNOTATION: &str = "svcplane.io/load-balancer-ips";
/// Service annotation: Services carrying the same value may share an address when their
/// ports (protocol and port) do not clash (MetalLB's `allow-shared-ip`).
pub const ALLOW_SHARED_IP_ANNOTATION: &str = "svcplane.io/allow-shared-ip";

/// A pool of addresses for `type: LoadBalancer` Services.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "svcplane.io",
    version = "v1alpha1",
    kind = "LoadBalancerIPPool",
    plural = "loadbalancerippools",
    shortname = "lbpool",
    status = "LoadBalancerIPPoolStatus",
    printcolumn = r#"{"name":"Disabled","type":"boolean","jsonPath":".spec.disabled"}"#,
    printcolumn = r#"{"name":"Total","type":"integer","jsonPath":".status.total"}"#,
    printcolumn = r#"{"name":"Used","type":"integer","jsonPath":".status.used"}"#,
    printcolumn = r#"{"name":"Valid","type":"string","jsonPath":".status.conditions[?(@.type==\"Valid\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIPPoolSpec {
    /// The pool's addresses: CIDRs and inclusive ranges, of either family or both.
    pub blocks: Vec<IpBlock>,
    /// Only Services whose labels match are served from this pool (all when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_selector: Option<LabelSelector>,
    /// Only Services in Namespaces whose labels match are served from this pool (all when
    /// unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Skip IPv4 addresses ending in `.0` and `.255`, which some old network equipment
    /// mistakes for network or broadcast addresses.
    #[serde(default, rename = "avoidBuggyIPs")]
    pub avoid_buggy_ips: bool,
    /// A disabled pool hands out no new address; Services keep the ones they hold.
    #[serde(default)]
    pub disabled: bool,
}

/// What the controller observed of a pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIPPoolStatus {
    /// Addresses the pool can hand out, both families (after `avoidBuggyIPs`).
    #[serde(default)]
    pub total: i64,
    /// Addresses held by Services.
    #[serde(default)]
    pub used: i64,
    /// Per-family counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<FamilyUsage>,
    /// Per-family counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<FamilyUsage>,
    /// `Valid` and `Exhausted` (see [`PoolConditionType`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Address counts of one family of a pool.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FamilyUsage {
    /// Addresses the pool can hand out in this family.
    pub total: i64,
    /// Addresses of this family held by Services.
    pub used: i64,
}

/// The condition types of a pool's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolConditionType {
    /// `True` when the pool is usable; `False` (reason `Invalid` or `Overlapping`) when it
    /// is not, with the reason in the message.
    Valid,
    /// `True` when a Service that the pool would serve is waiting for an address of a
    /// family the pool has no free address of.
    Exhausted,
}

impl PoolConditionType {
    /// The condition's `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolConditionType::Valid => "Valid",
            PoolConditionType::Exhausted => "Exhausted",
        }
    }
}

impl LoadBalancerIPPool {
    /// A pool of these blocks, everything else unset (selects every Service, enabled).
    pub fn with_blocks(name: &str, blocks: Vec<IpBlock>) -> Self {
        LoadBalancerIPPool::new(
            name,
            LoadBalancerIPPoolSpec {
                blocks,
                ..Default::default()
            },
        )
    }
}

impl LoadBalancerIPPoolSpec {
    /// The blocks parsed, in order; the first block that does not parse is the error, with
    /// its index.
    pub fn address_blocks(&self) -> Result<Vec<AddressBlock>, (usize, BlockError)> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(i, block)| AddressBlock::parse(block).map_err(|err| (i, err)))
            .collect()
    }

    /// Whether this pool serves a Service with these labels in a Namespace with these
    /// labels. An unset selector matches everything, an empty one too (as upstream's
    /// `LabelSelectorAsSelector`); a selector that does not parse matches nothing.
    pub fn selects(
        &self,
        service_labels: &BTreeMap<String, String>,
        namespace_labels: &BTreeMap<String, String>,
    ) -> bool {
        selector_matches(self.service_selector.as_ref(), service_labels)
            && selector_matches(self.namespace_selector.as_ref(), namespace_labels)
    }
}

fn selector_matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    match selector {
        None => true,
        Some(selector) => match Selector::try_from(selector.clone()) {
            Ok(selector) => selector.matches(labels),
            Err(_) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn crd_is_cluster_scoped_with_status_and_columns() {
        let crd = LoadBalancerIPPool::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.group, API_GROUP);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, API_VERSION);
        assert!(version.subresources.as_ref().unwrap().status.is_some());
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Disabled", "Total", "Used", "Valid", "Age"]);
    }

    /// The field names users write: `avoidBuggyIPs` (not serde's camelCase `avoidBuggyIps`,
    /// which the API server would prune from what users write).
    #[test]
    fn spec_field_names() {
        let spec: LoadBalancerIPPoolSpec = serde_json::from_value(serde_json::json!({
            "blocks": [{"cidr": "192.0.2.0/28"}], "avoidBuggyIPs": true, "disabled": true,
            "serviceSelector": {}, "namespaceSelector": {}}))
        .unwrap();
        assert!(spec.avoid_buggy_ips && spec.disabled);
        let crd = serde_json::to_string(&LoadBalancerIPPool::crd()).unwrap();
        assert!(crd.contains("\"avoidBuggyIPs\"") && !crd.contains("avoidBuggyIps"));
    }

    #[test]
    fn selectors_unset_empty_and_expressions() {
        let labels: BTreeMap<String, String> = [("tier".to_string(), "web".to_string())].into();
        let none = BTreeMap::new();
        let mut spec = LoadBalancerIPPoolSpec::default();
        assert!(spec.selects(&labels, &none));
        spec.service_selector = Some(LabelSelector::default());
        assert!(spec.selects(&none, &none));
        spec.service_selector = Some(LabelSelector {
            match_labels: Some([("tier".to_string(), "web".to_string())].into()),
            ..Default::default()
        });
        assert!(spec.selects(&labels, &none));
        assert!(!spec.selects(&none, &none));
        spec.namespace_selector = Some(LabelSelector {
            match_labels: Some([("team".to_string(), "a".to_string())].into()),
            ..Default::default()
        });
        assert!(!spec.selects(&labels, &none));
    }
}
