//! API objects to page rows (pure: no I/O).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use svcplane_api::LoadBalancerIPPool;

use super::model::{Capped, EndpointRow, EventRow, PoolRow, PortRow, ServiceRow, SliceRow};

/// The label that ties an EndpointSlice to its Service (`discovery.k8s.io/v1`).
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service's rows without slices.
pub fn service_row(service: &Service) -> ServiceRow {
    let spec = service.spec.clone().unwrap_or_default();
    let cluster_ips = match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.clone(),
        (_, Some(ip)) => vec![ip.clone()],
        _ => Vec::new(),
    };
    let ports = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| PortRow {
            name: p.name.unwrap_or_default(),
            protocol: p.protocol.unwrap_or_else(|| "TCP".into()),
            port: p.port,
            target_port: match p.target_port {
                Some(IntOrString::Int(n)) => n.to_string(),
                Some(IntOrString::String(s)) => s,
                None => p.port.to_string(),
            },
            node_port: p.node_port,
        })
        .collect();
    let lb_ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| {
            ingress
                .iter()
                .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                .collect()
        })
        .unwrap_or_default();
    ServiceRow {
        namespace: service.metadata.namespace.clone().unwrap_or_default(),
        name: service.metadata.name.clone().unwrap_or_default(),
        type_: spec.type_.unwrap_or_else(|| "ClusterIP".into()),
        cluster_ips,
        ports,
        lb_ingress,
        health_check_node_port: spec.health_check_node_port,
        slices: Vec::new(),
    }
}

/// A slice's row, with at most `endpoint_limit` endpoints.
pub fn slice_row(slice: &EndpointSlice, endpoint_limit: usize) -> SliceRow {
    let ports = slice
        .ports
        .iter()
        .flatten()
        .map(|p| {
            format!(
                "{}:{}/{}",
                p.name.as_deref().unwrap_or(""),
                p.port.map(|n| n.to_string()).unwrap_or_else(|| "*".into()),
                p.protocol.as_deref().unwrap_or("TCP")
            )
        })
        .collect();
    let endpoints = slice.endpoints.iter().map(|e| {
        let conditions = e.conditions.clone().unwrap_or_default();
        EndpointRow {
            addresses: e.addresses.clone(),
            ready: conditions.ready,
            serving: conditions.serving,
            terminating: conditions.terminating,
            node: e.node_name.clone(),
            zone: e.zone.clone(),
        }
    });
    SliceRow {
        name: slice.metadata.name.clone().unwrap_or_default(),
        address_type: slice.address_type.clone(),
        ports,
        endpoints: Capped::first(endpoints, endpoint_limit),
    }
}

/// The first `limit` Services (by namespace and name), each with its slices (by name).
pub fn services_with_slices(
    services: &[Service],
    slices: &[EndpointSlice],
    limit: usize,
    endpoint_limit: usize,
) -> Capped<ServiceRow> {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        by_service
            .entry((namespace, service.clone()))
            .or_default()
            .push(slice);
    }
    let mut sorted: Vec<&Service> = services.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let rows = sorted.into_iter().map(|service| {
        let mut row = service_row(service);
        if let Some(own) = by_service.get(&(row.namespace.clone(), row.name.clone())) {
            let mut own = own.clone();
            own.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            row.slices = own
                .into_iter()
                .map(|s| slice_row(s, endpoint_limit))
                .collect();
        }
        row
    });
    Capped::first(rows, limit)
}

/// A pool's row.
pub fn pool_row(pool: &LoadBalancerIPPool) -> PoolRow {
    let blocks = pool
        .spec
        .blocks
        .iter()
        .map(|b| match (&b.cidr, &b.start, &b.stop) {
            (Some(cidr), _, _) => cidr.clone(),
            (None, start, stop) => format!(
                "{}-{}",
                start.as_deref().unwrap_or("?"),
                stop.as_deref().unwrap_or("?")
            ),
        })
        .collect();
    let status = pool.status.as_ref();
    PoolRow {
        name: pool.metadata.name.clone().unwrap_or_default(),
        blocks,
        disabled: pool.spec.disabled,
        counts: status.map(|s| (s.total, s.used)),
        conditions: status
            .map(|s| {
                s.conditions
                    .iter()
                    .map(|c| {
                        (
                            c.type_.clone(),
                            c.status.clone(),
                            c.reason.clone(),
                            c.message.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// When an Event was last seen: `lastTimestamp`, else `eventTime`, else `firstTimestamp`, else
/// its creation (kubectl's `get events` sorts by the same fallbacks).
fn last_seen(event: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The `limit` most recent Events, newest first.
pub fn recent_events(events: &[Event], limit: usize) -> Capped<EventRow> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(last_seen(e)));
    let rows = sorted.into_iter().map(|e| {
        let object = &e.involved_object;
        let name = match object.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => {
                format!("{ns}/{}", object.name.as_deref().unwrap_or(""))
            }
            _ => object.name.clone().unwrap_or_default(),
        };
        EventRow {
            last_seen: last_seen(e).map(|t| t.to_string()).unwrap_or_default(),
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            object: format!("{} {name}", object.kind.as_deref().unwrap_or("")),
            message: e.message.clone().unwrap_or_default(),
            count: e.count.unwrap_or(1),
        }
    });
    Capped::first(rows, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn services_are_sorted_capped_and_carry_their_own_slices() {
        let services: Vec<Service> = ["b", "a", "c"]
            .iter()
            .map(|n| service(json!({"metadata": {"namespace": "default", "name": n}})))
            .collect();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "a-1",
                         "labels": {"kubernetes.io/service-name": "a"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "nodeName": "n1"},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "terminating": true}},
                {"addresses": ["10.0.0.3"]},
            ],
            "ports": [{"name": "http", "port": 8080}],
        }))
        .unwrap();
        let rows = services_with_slices(&services, &[slice], 2, 2);
        assert_eq!(rows.total, 3);
        let names: Vec<&str> = rows.items.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &rows.items[0];
        assert_eq!(a.slices.len(), 1);
        assert_eq!(a.slices[0].ports, ["http:8080/TCP"]);
        assert_eq!(a.slices[0].endpoints.total, 3);
        assert_eq!(a.slices[0].endpoints.items.len(), 2);
        assert_eq!(a.slices[0].endpoints.items[1].terminating, Some(true));
        assert!(rows.items[1].slices.is_empty());
    }

    #[test]
    fn events_are_newest_first() {
        let event = |name: &str, at: &str| -> Event {
            serde_json::from_value(json!({
                "metadata": {"namespace": "default", "name": name},
                "involvedObject": {"kind": "Service", "namespace": "default", "name": "web"},
                "reason": name, "lastTimestamp": at,
            }))
            .unwrap()
        };
        let events = [
            event("old", "2026-01-01T00:00:00Z"),
            event("new", "2026-01-03T00:00:00Z"),
            event("mid", "2026-01-02T00:00:00Z"),
        ];
        let rows = recent_events(&events, 2);
        let reasons: Vec<&str> = rows.items.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, ["new", "mid"]);
        assert_eq!(rows.more(), 1);
        assert_eq!(rows.items[0].object, "Service default/web");
        assert_eq!(rows.items[0].count, 1);
    }
}
