//! The page's HTML, from a [`Snapshot`] (pure: no I/O). Every value that comes from the API
//! goes through [`esc`]: names cannot hold markup, but annotations, Event messages and
//! condition messages can.

use std::fmt::Write as _;

use super::html::{bar, esc};
use super::model::{
    BandRow, Capped, EndpointRow, EventRow, NodeTables, PoolRow, Pools, Section, ServiceRow,
    Snapshot,
};

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}\
header{background:#24292f;color:#fff;padding:12px 24px}header h1{margin:0;font-size:20px}\
header p{margin:2px 0 0;color:#c9d1d9;font-size:12px}\
nav a{color:#c9d1d9;margin-right:12px}\
main{padding:8px 24px 24px}section{background:#fff;border:1px solid #d0d7de;border-radius:6px;\
margin:16px 0;padding:8px 16px}h2{font-size:16px;margin:8px 0}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}\
th{background:#f6f8fa}table table{width:auto;min-width:60%}td.sub{padding-left:32px;color:#57606a}\
code,pre{font:12px ui-monospace,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto;\
max-height:320px;margin:4px 0 12px}\
.bar-row{display:flex;align-items:center;gap:8px;margin:4px 0}\
.bar-label{width:220px}.bar{display:inline-block;width:320px;height:14px;background:#eaeef2;\
border-radius:7px;overflow:hidden}.fill{display:block;height:100%;background:#2da44e}\
.bar.full .fill{background:#cf222e}.bar-count{color:#57606a;font-size:12px}\
.ok{color:#1a7f37}.bad{color:#cf222e}.warn{color:#9a6700}.more,.note{color:#57606a;\
font-style:italic}.Warning{color:#cf222e;font-weight:600}";

/// The whole page.
pub fn page(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>svcplane status</title><style>{STYLE}</style></head><body>\
         <header><h1>svcplane status</h1><p>{} · {}</p>\
         <nav><a href=\"#services\">Services</a><a href=\"#allocators\">Allocators</a>\
         <a href=\"#pools\">LoadBalancer pools</a><a href=\"#nodes\">Node tables</a>\
         <a href=\"#events\">Events</a></nav></header><main>",
        esc(&snapshot.source),
        esc(&snapshot.taken_at)
    );
    section(&mut out, "allocators", "Allocator bands", |out| {
        with_section(out, &snapshot.bands, |out, rows| bands(out, rows))
    });
    section(&mut out, "pools", "LoadBalancer IP pools", |out| {
        with_section(out, &snapshot.pools, pools)
    });
    section(&mut out, "services", "Services", |out| {
        with_section(out, &snapshot.services, services)
    });
    section(&mut out, "nodes", "Node forwarding tables", |out| {
        node_tables(out, &snapshot.node_tables)
    });
    section(&mut out, "events", "Recent Events", |out| {
        with_section(out, &snapshot.events, events)
    });
    out.push_str("</main></body></html>");
    out
}

fn section(out: &mut String, id: &str, title: &str, body: impl FnOnce(&mut String)) {
    let _ = write!(out, "<section id=\"{id}\"><h2>{title}</h2>");
    body(out);
    out.push_str("</section>");
}

fn with_section<T>(out: &mut String, section: &Section<T>, body: impl FnOnce(&mut String, &T)) {
    match section {
        Ok(value) => body(out, value),
        Err(err) => {
            let _ = write!(out, "<p class=\"bad\">cannot read: {}</p>", esc(err));
        }
    }
}

fn more<T>(out: &mut String, capped: &Capped<T>, what: &str) {
    if capped.more() > 0 {
        let _ = write!(
            out,
            "<p class=\"more\">{} more {what} not shown (first {} of {}).</p>",
            capped.more(),
            capped.items.len(),
            capped.total
        );
    }
}

fn bands(out: &mut String, rows: &[BandRow]) {
    for row in rows {
        let u = &row.usage;
        let _ = write!(
            out,
            "<h3>{} <code>{}</code></h3>",
            esc(&row.kind),
            esc(&row.range)
        );
        bar(out, "all", u.used as i64, u.total as i64);
        bar(
            out,
            "static band (user-chosen first)",
            u.static_used as i64,
            u.static_band_size as i64,
        );
        bar(
            out,
            "dynamic band (allocated first)",
            u.dynamic_used as i64,
            u.total.saturating_sub(u.static_band_size) as i64,
        );
        if row.outside > 0 {
            let _ = write!(
                out,
                "<p class=\"warn\">{} value(s) held outside this range.</p>",
                row.outside
            );
        }
    }
}

fn pools(out: &mut String, pools: &Pools) {
    let list = match pools {
        Pools::NoCrd => {
            out.push_str(
                "<p class=\"note\">no LoadBalancerIPPool CRD \
                 (loadbalancerippools.svcplane.io is not installed)</p>",
            );
            return;
        }
        Pools::Listed(list) => list,
    };
    if list.total == 0 {
        out.push_str("<p class=\"note\">no LoadBalancerIPPool</p>");
        return;
    }
    for pool in &list.items {
        pool_row(out, pool);
    }
    more(out, list, "pools");
}

fn pool_row(out: &mut String, pool: &PoolRow) {
    let _ = write!(
        out,
        "<div class=\"pool\" data-pool=\"{name}\"><h3>{name}{}</h3><p>blocks: <code>{}</code></p>",
        if pool.disabled { " (disabled)" } else { "" },
        esc(&pool.blocks.join(", ")),
        name = esc(&pool.name),
    );
    match pool.counts {
        Some((total, used)) => bar(out, "addresses used", used, total),
        None => out.push_str("<p class=\"note\">no status yet</p>"),
    }
    for (type_, status, reason, message) in &pool.conditions {
        let class = match (type_.as_str(), status.as_str()) {
            ("Valid", "True") | ("Exhausted", "False") => "ok",
            _ => "bad",
        };
        let _ = write!(
            out,
            "<p class=\"{class}\">{}={} {}: {}</p>",
            esc(type_),
            esc(status),
            esc(reason),
            esc(message)
        );
    }
    out.push_str("</div>");
}

fn services(out: &mut String, list: &Capped<ServiceRow>) {
    if list.total == 0 {
        out.push_str("<p class=\"note\">no Service</p>");
        return;
    }
    out.push_str(
        "<table><tr><th>Namespace</th><th>Name</th><th>Type</th><th>ClusterIPs</th>\
         <th>Ports</th><th>LoadBalancer</th></tr>",
    );
    for s in &list.items {
        let ports: Vec<String> = s
            .ports
            .iter()
            .map(|p| {
                let mut text = format!("{}/{}→{}", p.port, p.protocol, p.target_port);
                if !p.name.is_empty() {
                    text = format!("{}:{text}", p.name);
                }
                if let Some(node_port) = p.node_port {
                    let _ = write!(text, " (node {node_port})");
                }
                text
            })
            .chain(
                s.health_check_node_port
                    .map(|p| format!("health check node {p}")),
            )
            .collect();
        let _ = write!(
            out,
            "<tr class=\"service\" data-service=\"{ns}/{name}\"><td>{ns}</td><td><b>{name}</b></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.type_),
            esc(&s.cluster_ips.join(", ")),
            esc(&ports.join(", ")),
            esc(&s.lb_ingress.join(", ")),
            ns = esc(&s.namespace),
            name = esc(&s.name),
        );
        if s.slices.is_empty() {
            out.push_str("<tr><td class=\"sub\" colspan=\"6\">no EndpointSlice</td></tr>");
        }
        for slice in &s.slices {
            let _ = write!(
                out,
                "<tr><td class=\"sub\" colspan=\"6\">EndpointSlice <code>{}</code> {} \
                 ports {}",
                esc(&slice.name),
                esc(&slice.address_type),
                esc(&slice.ports.join(", "))
            );
            if slice.endpoints.total == 0 {
                out.push_str(" · no endpoints");
            } else {
                out.push_str(
                    "<table><tr><th>Addresses</th><th>ready</th><th>serving</th>\
                     <th>terminating</th><th>Node</th><th>Zone</th></tr>",
                );
                for e in &slice.endpoints.items {
                    endpoint(out, e);
                }
                out.push_str("</table>");
                more(out, &slice.endpoints, "endpoints");
            }
            out.push_str("</td></tr>");
        }
    }
    out.push_str("</table>");
    more(out, list, "Services");
}

/// A condition: unset `ready`/`serving` mean true to consumers, unset `terminating` false
/// (`discovery.k8s.io/v1` EndpointConditions).
fn condition(value: Option<bool>, unset_means: bool) -> String {
    let shown = value.unwrap_or(unset_means);
    let good = if unset_means { shown } else { !shown };
    let class = if good { "ok" } else { "bad" };
    let text = match value {
        Some(v) => v.to_string(),
        None => format!("unset ({unset_means})"),
    };
    format!("<span class=\"{class}\">{text}</span>")
}

fn endpoint(out: &mut String, e: &EndpointRow) {
    let _ = write!(
        out,
        "<tr class=\"endpoint\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td></tr>",
        esc(&e.addresses.join(", ")),
        condition(e.ready, true),
        condition(e.serving, true),
        condition(e.terminating, false),
        esc(e.node.as_deref().unwrap_or("")),
        esc(e.zone.as_deref().unwrap_or("")),
    );
}

fn node_tables(out: &mut String, tables: &NodeTables) {
    match tables {
        NodeTables::NotAvailable(why) => {
            let _ = write!(out, "<p class=\"note\">{}</p>", esc(why));
        }
        NodeTables::Tables(list) => {
            if list.total == 0 {
                out.push_str("<p class=\"note\">no node agent</p>");
            }
            for (node, table) in &list.items {
                let _ = write!(
                    out,
                    "<h3 data-node=\"{node}\">{node}</h3><pre>{}</pre>",
                    esc(table),
                    node = esc(node)
                );
            }
            more(out, list, "nodes");
        }
    }
}

fn events(out: &mut String, list: &Capped<EventRow>) {
    if list.total == 0 {
        out.push_str("<p class=\"note\">no Event</p>");
        return;
    }
    out.push_str(
        "<table><tr><th>Last seen</th><th>Type</th><th>Reason</th><th>Object</th>\
         <th>Count</th><th>Message</th></tr>",
    );
    for e in &list.items {
        let _ = write!(
            out,
            "<tr class=\"event\"><td>{}</td><td class=\"{type_}\">{type_}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.last_seen),
            esc(&e.reason),
            esc(&e.object),
            e.count,
            esc(&e.message),
            type_ = esc(&e.type_),
        );
    }
    out.push_str("</table>");
    more(out, list, "Events");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_page::model::{PortRow, SliceRow};
    use svcplane_allocators::RangeUsage;

    fn snapshot() -> Snapshot {
        Snapshot {
            source: "test".into(),
            taken_at: "2026-01-01T00:00:00Z".into(),
            services: Ok(Capped {
                items: vec![ServiceRow {
                    namespace: "default".into(),
                    name: "web".into(),
                    type_: "NodePort".into(),
                    cluster_ips: vec!["10.96.0.10".into()],
                    ports: vec![PortRow {
                        name: "http".into(),
                        protocol: "TCP".into(),
                        port: 80,
                        target_port: "8080".into(),
                        node_port: Some(30080),
                    }],
                    lb_ingress: vec!["192.0.2.1".into()],
                    health_check_node_port: None,
                    slices: vec![SliceRow {
                        name: "web-1".into(),
                        address_type: "IPv4".into(),
                        ports: vec!["http:8080/TCP".into()],
                        endpoints: Capped {
                            items: vec![EndpointRow {
                                addresses: vec!["10.244.1.5".into()],
                                ready: Some(false),
                                serving: Some(true),
                                terminating: Some(true),
                                node: Some("node-a".into()),
                                zone: Some("zone-a".into()),
                            }],
                            total: 3,
                        },
                    }],
                }],
                total: 250,
            }),
            bands: Ok(vec![BandRow {
                kind: "NodePorts".into(),
                range: "30000-32767".into(),
                usage: RangeUsage {
                    total: 2768,
                    used: 3,
                    static_band_size: 86,
                    static_used: 1,
                    dynamic_used: 2,
                },
                outside: 0,
            }]),
            pools: Ok(Pools::Listed(Capped {
                items: vec![PoolRow {
                    name: "pool-a".into(),
                    blocks: vec!["192.0.2.0/28".into()],
                    disabled: false,
                    counts: Some((16, 4)),
                    conditions: vec![(
                        "Valid".into(),
                        "False".into(),
                        "Overlapping".into(),
                        "overlaps <pool-b>".into(),
                    )],
                }],
                total: 1,
            })),
            node_tables: NodeTables::NotAvailable("no agents <here>".into()),
            events: Ok(Capped {
                items: vec![EventRow {
                    last_seen: "2026-01-01T00:00:00Z".into(),
                    type_: "Warning".into(),
                    reason: "PoolExhausted".into(),
                    object: "Service default/web".into(),
                    message: "<img src=x onerror=alert(1)> & more".into(),
                    count: 2,
                }],
                total: 1,
            }),
        }
    }

    #[test]
    fn values_from_the_api_are_escaped() {
        let html = page(&snapshot());
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; more"),
            "{html}"
        );
        assert!(html.contains("overlaps &lt;pool-b&gt;"), "{html}");
        assert!(html.contains("no agents &lt;here&gt;"), "{html}");
        assert!(!html.contains("<script"), "no JavaScript at all");
    }

    #[test]
    fn bands_and_pools_are_bars_with_their_numbers() {
        let html = page(&snapshot());
        // Static band: 1 of 86; dynamic band: 2 of 2768 - 86.
        assert!(html.contains("data-used=\"1\" data-total=\"86\""), "{html}");
        assert!(
            html.contains("data-used=\"2\" data-total=\"2682\""),
            "{html}"
        );
        assert!(html.contains("data-used=\"4\" data-total=\"16\""), "{html}");
        assert!(html.contains("style=\"width:25%"), "{html}");
    }

    #[test]
    fn capped_lists_say_how_many_are_not_shown() {
        let html = page(&snapshot());
        assert!(
            html.contains("249 more Services not shown (first 1 of 250)"),
            "{html}"
        );
        assert!(html.contains("2 more endpoints not shown"), "{html}");
        assert!(!html.contains("more Events"), "{html}");
    }

    #[test]
    fn missing_crd_and_failed_sections_are_said_so() {
        let mut s = snapshot();
        s.pools = Ok(Pools::NoCrd);
        s.events = Err("forbidden: <events>".into());
        let html = page(&s);
        assert!(html.contains("no LoadBalancerIPPool CRD"), "{html}");
        assert!(
            html.contains("cannot read: forbidden: &lt;events&gt;"),
            "{html}"
        );
        // The other sections still render.
        assert!(html.contains("data-service=\"default/web\""), "{html}");
    }

    #[test]
    fn endpoint_conditions_are_marked_good_or_bad() {
        assert_eq!(
            condition(Some(true), true),
            "<span class=\"ok\">true</span>"
        );
        assert_eq!(
            condition(Some(false), true),
            "<span class=\"bad\">false</span>"
        );
        assert_eq!(
            condition(Some(true), false),
            "<span class=\"bad\">true</span>"
        );
        assert_eq!(
            condition(None, false),
            "<span class=\"ok\">unset (false)</span>"
        );
    }
}
