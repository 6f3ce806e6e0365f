//! The desired table as people read it (`--backend dry-run`, `svcplane dev`'s per-node debug
//! URL): one line per virtual address and port, sorted, stable for diffs; and the same as JSON.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::{json, Value};

use super::node::NodeInfo;
use super::table::{Destination, EndpointSet, VirtualKey, VirtualServer};
use super::DesiredTable;

/// Renders the table as text. Lines look like
/// `TCP 10.96.0.10:53 ClusterIP kube-system/kube-dns:dns-tcp rr -> 10.244.1.5:53{local}`,
/// sorted by family, address, protocol and port; a row with no endpoint ends in
/// `-> none (reject)`. Health-check node ports follow, one line each.
pub fn render_text(table: &DesiredTable, node: &NodeInfo) -> String {
    let mut rows: Vec<&VirtualServer> = table.virtual_servers().collect();
    rows.sort_by_key(|vs| vs.key);
    let mut out = String::new();
    let zone = if node.zone.is_empty() {
        "none"
    } else {
        node.zone.as_str()
    };
    let _ = writeln!(
        out,
        "# node {} (zone {zone}): {} virtual servers",
        node.name,
        rows.len()
    );
    for vs in rows {
        let _ = write!(
            out,
            "{} {} {} {}",
            vs.key, vs.kind, vs.service_port, vs.scheduler
        );
        if vs.endpoint_set == EndpointSet::Local {
            out.push_str(" policy=Local");
        }
        if let Some(t) = vs.affinity_timeout {
            let _ = write!(out, " affinity=ClientIP/{t}s");
        }
        if !vs.source_ranges.is_empty() {
            let ranges: Vec<String> = vs.source_ranges.iter().map(|r| r.to_string()).collect();
            let _ = write!(out, " source-ranges={}", ranges.join(","));
        }
        out.push_str(" ->");
        if vs.destinations.is_empty() {
            out.push_str(" none (reject)");
        }
        for d in vs.destinations.iter() {
            out.push(' ');
            out.push_str(&destination_text(d));
        }
        out.push('\n');
    }
    let mut checks: Vec<(String, u16, usize)> = table
        .services()
        .filter_map(|s| {
            s.health_check
                .as_ref()
                .map(|h| (s.service.to_string(), h.node_port, h.local_endpoints))
        })
        .collect();
    checks.sort_by_key(|(_, port, _)| *port);
    for (service, port, local) in checks {
        let _ = writeln!(out, "health-check {service} :{port} localEndpoints={local}");
    }
    out
}

fn address_port(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn destination_text(d: &Destination) -> String {
    let mut flags = Vec::new();
    if d.local {
        flags.push("local");
    }
    if !d.ready {
        flags.push("terminating");
    }
    let base = address_port(d.address, d.port);
    if flags.is_empty() {
        base
    } else {
        format!("{base}{{{}}}", flags.join(","))
    }
}

fn key_json(key: &VirtualKey) -> Value {
    json!({
        "address": key.address.to_string(),
        "protocol": key.protocol.as_str(),
        "port": key.port,
    })
}

/// Renders the table as JSON: `{"node": {...}, "virtualServers": [...], "healthChecks": [...]}`,
/// in the same order as [`render_text`].
pub fn render_json(table: &DesiredTable, node: &NodeInfo) -> Value {
    let mut rows: Vec<&VirtualServer> = table.virtual_servers().collect();
    rows.sort_by_key(|vs| vs.key);
    let virtual_servers: Vec<Value> = rows
        .iter()
        .map(|vs| {
            let mut v = key_json(&vs.key);
            let obj = v.as_object_mut().expect("key_json builds an object");
            obj.insert("kind".into(), json!(vs.kind.to_string()));
            obj.insert(
                "service".into(),
                json!({
                    "namespace": vs.service_port.service.namespace,
                    "name": vs.service_port.service.name,
                    "port": vs.service_port.port,
                }),
            );
            obj.insert("scheduler".into(), json!(vs.scheduler.as_str()));
            obj.insert(
                "trafficPolicy".into(),
                json!(match vs.endpoint_set {
                    EndpointSet::Cluster => "Cluster",
                    EndpointSet::Local => "Local",
                }),
            );
            obj.insert("affinityTimeoutSeconds".into(), json!(vs.affinity_timeout));
            obj.insert(
                "sourceRanges".into(),
                json!(vs
                    .source_ranges
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()),
            );
            obj.insert("masquerade".into(), json!(vs.masquerade));
            obj.insert(
                "endpoints".into(),
                Value::Array(
                    vs.destinations
                        .iter()
                        .map(|d| {
                            json!({
                                "address": d.address.to_string(),
                                "port": d.port,
                                "weight": d.weight,
                                "local": d.local,
                                "ready": d.ready,
                            })
                        })
                        .collect(),
                ),
            );
            v
        })
        .collect();
    let mut health_checks: Vec<Value> = table
        .services()
        .filter_map(|s| {
            s.health_check.as_ref().map(|h| {
                json!({
                    "service": {"namespace": s.service.namespace, "name": s.service.name},
                    "nodePort": h.node_port,
                    "localEndpoints": h.local_endpoints,
                })
            })
        })
        .collect();
    health_checks.sort_by_key(|v| v["nodePort"].as_u64());
    json!({
        "node": {
            "name": node.name,
            "zone": node.zone,
            "addresses": node.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        },
        "virtualServers": virtual_servers,
        "healthChecks": health_checks,
    })
}
