//! The report as text (`-o wide` adds per-endpoint columns) and as JSON.

use std::fmt::Write as _;

use svcplane_dataplane::model::{EndpointSet, TopologyMode};

use super::report::{
    EndpointVerdict, NodeReport, PortForwarding, Report, SetReport, Severity, SliceReport,
};

/// Output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Sections for people.
    #[default]
    Text,
    /// Text with per-endpoint columns.
    Wide,
    /// The report as a JSON document.
    Json,
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report)
                .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
            text.push('\n');
            text
        }
        Format::Text => text(report, false),
        Format::Wide => text(report, true),
    }
}

/// Left-aligned columns separated by two spaces, without trailing blanks.
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_string()
}

fn text(report: &Report, wide: bool) -> String {
    let mut out = String::new();
    let s = &report.service;
    let _ = writeln!(out, "Service {}/{}", s.namespace, s.name);
    let mut rows = vec![vec!["Type:".to_string(), s.type_.clone()]];
    if let Some(selector) = &s.selector {
        let text: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec!["Selector:".into(), text.join(",")]);
    } else {
        rows.push(vec![
            "Selector:".into(),
            "none (endpoints managed by hand)".into(),
        ]);
    }
    rows.push(vec![
        "Internal traffic policy:".into(),
        s.internal_traffic_policy.clone(),
    ]);
    if let Some(policy) = &s.external_traffic_policy {
        rows.push(vec!["External traffic policy:".into(), policy.clone()]);
    }
    if let Some(distribution) = &s.traffic_distribution {
        rows.push(vec!["Traffic distribution:".into(), distribution.clone()]);
    }
    table(&mut out, "  ", &rows);
    for warning in &s.proxy_warnings {
        let _ = writeln!(out, "  node agents skip: {warning}");
    }
    addresses(&mut out, report);
    slices(&mut out, &report.endpoint_slices, wide);
    for node in &report.nodes {
        node_section(&mut out, node, wide);
    }
    out.push_str("\nFindings\n");
    if report.findings.is_empty() {
        out.push_str("  none\n");
    }
    for f in &report.findings {
        let severity = match f.severity {
            Severity::Warning => "Warning",
            Severity::Info => "Info",
        };
        let _ = writeln!(out, "  {severity} {}: {}", f.code, f.message);
    }
    out
}

fn addresses(out: &mut String, report: &Report) {
    let a = &report.addresses;
    out.push_str("\nAddresses\n");
    let mut rows = Vec::new();
    for ip in &a.cluster_ips {
        rows.push(vec![
            "ClusterIP".into(),
            format!("{} ({})", ip.ip, ip.family),
            ip.allocation.detail.clone(),
        ]);
    }
    for ip in &a.external_ips {
        rows.push(vec![
            "ExternalIP".into(),
            ip.clone(),
            "set by the user in spec.externalIPs".into(),
        ]);
    }
    for np in &a.node_ports {
        let port = if np.port_name.is_empty() {
            format!("{}/{}", np.port, np.protocol)
        } else {
            format!("{} {}/{}", np.port_name, np.port, np.protocol)
        };
        rows.push(vec![
            "NodePort".into(),
            format!("{} (port {port})", np.node_port),
            np.allocation.detail.clone(),
        ]);
    }
    for lb in &a.load_balancer_ips {
        rows.push(vec![
            "LoadBalancer".into(),
            format!("{} ({})", lb.ip, lb.ip_mode),
            lb.detail.clone(),
        ]);
    }
    if rows.is_empty() {
        rows.push(vec!["none".into()]);
    }
    table(out, "  ", &rows);
    if let Some(pools) = &a.pools {
        let _ = writeln!(out, "  Pools: {pools}");
    }
}

fn slices(out: &mut String, slices: &[SliceReport], wide: bool) {
    out.push_str("\nEndpointSlices\n");
    if slices.is_empty() {
        out.push_str("  none\n");
    }
    for slice in slices {
        let ports: Vec<String> = slice
            .ports
            .iter()
            .map(|p| {
                let number = p.port.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                if p.name.is_empty() {
                    format!("{number}/{}", p.protocol)
                } else {
                    format!("{}:{number}/{}", p.name, p.protocol)
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "  {} ({}, ports {})",
            slice.name,
            slice.address_type,
            if ports.is_empty() {
                "none".to_string()
            } else {
                ports.join(" ")
            }
        );
        if let Some(why) = &slice.ignored {
            let _ = writeln!(out, "    {why}");
        }
        let mut rows = Vec::new();
        if wide {
            rows.push(
                [
                    "ADDRESS",
                    "READY",
                    "SERVING",
                    "TERMINATING",
                    "NODE",
                    "ZONE",
                    "HINTS",
                    "TARGET",
                ]
                .map(String::from)
                .to_vec(),
            );
        }
        for ep in &slice.endpoints {
            let mut hints = Vec::new();
            if !ep.for_zones.is_empty() {
                hints.push(format!("zones={}", ep.for_zones.join(",")));
            }
            if !ep.for_nodes.is_empty() {
                hints.push(format!("nodes={}", ep.for_nodes.join(",")));
            }
            let hints = if hints.is_empty() {
                "-".to_string()
            } else {
                hints.join(" ")
            };
            if wide {
                rows.push(vec![
                    ep.addresses.join(","),
                    ep.ready.to_string(),
                    ep.serving.to_string(),
                    ep.terminating.to_string(),
                    or_dash(ep.node_name.as_deref()),
                    or_dash(ep.zone.as_deref()),
                    hints,
                    or_dash(ep.target_ref.as_deref()),
                ]);
            } else {
                let conditions = format!(
                    "ready={} serving={} terminating={}",
                    ep.ready, ep.serving, ep.terminating
                );
                rows.push(vec![
                    ep.addresses.join(","),
                    conditions,
                    format!("node={}", or_dash(ep.node_name.as_deref())),
                    format!("zone={}", or_dash(ep.zone.as_deref())),
                    format!("hints={hints}"),
                ]);
            }
        }
        table(out, "    ", &rows);
    }
}

fn topology(mode: TopologyMode) -> &'static str {
    match mode {
        TopologyMode::None => "no topology hints followed",
        TopologyMode::PreferSameNode => "node hints followed",
        TopologyMode::PreferSameZone => "zone hints followed",
    }
}

fn set_name(set: EndpointSet) -> &'static str {
    match set {
        EndpointSet::Cluster => "cluster set",
        EndpointSet::Local => "local set",
    }
}

fn node_section(out: &mut String, node: &NodeReport, wide: bool) {
    let zone = if node.zone.is_empty() {
        "none"
    } else {
        &node.zone
    };
    let _ = writeln!(out, "\nNode {} (zone {zone})", node.name);
    if let Some(local) = node.health_check_local_endpoints {
        let _ = writeln!(
            out,
            "  health check node port: {local} local ready endpoint(s) ({})",
            if local > 0 {
                "200, load balancers send traffic here"
            } else {
                "503, load balancers avoid this node"
            }
        );
    }
    if node.ports.is_empty() {
        out.push_str("  no ports\n");
    }
    for port in &node.ports {
        port_section(out, port, wide);
    }
}

fn port_section(out: &mut String, port: &PortForwarding, wide: bool) {
    let name = if port.port_name.is_empty() {
        "(unnamed)".to_string()
    } else {
        port.port_name.clone()
    };
    let _ = writeln!(
        out,
        "  Port {name}/{} {}: {}",
        port.protocol,
        port.family,
        topology(port.topology)
    );
    for fe in &port.frontends {
        let address = match fe.address {
            std::net::IpAddr::V4(a) => format!("{a}:{}", fe.port),
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", fe.port),
        };
        let target = if fe.destinations == 0 {
            "no endpoint: rejected".to_string()
        } else {
            format!("{} endpoint(s)", fe.destinations)
        };
        let _ = writeln!(
            out,
            "    {} {address} -> {} ({target})",
            fe.kind,
            set_name(fe.endpoint_set)
        );
    }
    if wide {
        let mut rows = vec!["ENDPOINT NODE ZONE CLUSTER LOCAL"
            .split(' ')
            .map(String::from)
            .collect::<Vec<_>>()];
        for (c, l) in port.cluster.endpoints.iter().zip(&port.local.endpoints) {
            rows.push(vec![
                endpoint_address(c),
                or_dash(c.node_name.as_deref()),
                or_dash(c.zone.as_deref()),
                wide_cell(&port.cluster, c),
                wide_cell(&port.local, l),
            ]);
        }
        if rows.len() == 1 {
            out.push_str("    no endpoints\n");
        } else {
            table(out, "    ", &rows);
        }
    } else {
        set_lines(out, "cluster set", &port.cluster);
        set_lines(out, "local set", &port.local);
    }
}

fn endpoint_address(ep: &EndpointVerdict) -> String {
    match ep.address {
        std::net::IpAddr::V4(a) => format!("{a}:{}", ep.port),
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", ep.port),
    }
}

fn wide_cell(set: &SetReport, ep: &EndpointVerdict) -> String {
    if !set.in_use {
        "-".into()
    } else if ep.used {
        if set.fallback {
            "used (terminating fallback)".into()
        } else {
            "used".into()
        }
    } else {
        ep.detail.clone().unwrap_or_default()
    }
}

fn set_lines(out: &mut String, name: &str, set: &SetReport) {
    if !set.in_use {
        let _ = writeln!(
            out,
            "    {name}: not used by this port under its traffic policies"
        );
        return;
    }
    let used = set.endpoints.iter().filter(|e| e.used).count();
    let _ = writeln!(
        out,
        "    {name}: {used} of {} endpoint(s){}",
        set.endpoints.len(),
        if set.fallback {
            ", serving-and-terminating fallback: none is ready"
        } else {
            ""
        }
    );
    let mut rows = Vec::new();
    for ep in &set.endpoints {
        rows.push(vec![
            if ep.used { "used" } else { "excluded" }.to_string(),
            endpoint_address(ep),
            ep.detail.clone().unwrap_or_default(),
        ]);
    }
    table(out, "      ", &rows);
}
