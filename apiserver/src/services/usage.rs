//! The `/debug/allocators` page: per-range usage, split by band.

use serde_json::{json, Value};
use svcplane_allocators::RangeUsage;

use super::pools::Pools;

fn range_json(range: String, resource: &str, family: Option<&str>, u: RangeUsage) -> Value {
    let mut v = json!({
        "range": range,
        "resource": resource,
        "total": u.total,
        "used": u.used,
        "free": u.free(),
        "staticBandSize": u.static_band_size,
        "staticBandUsed": u.static_used,
        "dynamicBandSize": u.total - u.static_band_size,
        "dynamicBandUsed": u.dynamic_used,
    });
    if let Some(f) = family {
        v["family"] = json!(f);
    }
    v
}

/// Usage of every range: ClusterIP ranges (primary first), then the node port range.
pub fn usage_json(pools: &Pools, cluster_ip_flag: &str, node_port_flag: &str) -> Value {
    let mut ranges: Vec<Value> = pools
        .ips
        .allocators()
        .map(|a| {
            range_json(
                a.cidr().to_string(),
                "ClusterIP",
                Some(a.family().as_str()),
                a.usage(),
            )
        })
        .collect();
    ranges.push(range_json(
        pools.ports.range().to_string(),
        "NodePort",
        None,
        pools.ports.usage(),
    ));
    json!({
        "serviceClusterIPRange": cluster_ip_flag,
        "serviceNodePortRange": node_port_flag,
        "ranges": ranges,
    })
}
