//! Server-side printing: `meta.k8s.io/v1` Table responses, which `kubectl get` asks for, with
//! the columns upstream's printers use for the served types (priority-1 columns are `-o wide`).

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{json, Value};

use crate::printer_columns::PrinterColumn;
use crate::request::Query;
use crate::resources::ResourceInfo;
use crate::store::StoredObject;
use crate::string_list::strings;

/// Whether the client asked for a Table (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    cell: fn(&Value) -> Value,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: u8,
    cell: fn(&Value) -> Value,
) -> Column {
    Column {
        name,
        kind,
        priority,
        cell,
    }
}

fn name_cell(o: &Value) -> Value {
    o["metadata"]["name"].clone()
}

fn age_cell(o: &Value) -> Value {
    json!(age(o["metadata"]["creationTimestamp"].as_str()))
}

/// Upstream's `HumanDuration`-style age (`5s`, `3m`, `2d`).
pub fn age(timestamp: Option<&str>) -> String {
    let Some(then) = timestamp.and_then(crate::metadata::parse_rfc3339) else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - then).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn none_if_empty(s: String) -> Value {
    if s.is_empty() {
        json!("<none>")
    } else {
        json!(s)
    }
}

fn pod_ready(o: &Value) -> Value {
    let total = o["spec"]["containers"].as_array().map_or(0, |c| c.len());
    let ready = o["status"]["containerStatuses"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|s| s["ready"] == true).count());
    json!(format!("{ready}/{total}"))
}

fn pod_status(o: &Value) -> Value {
    if o["metadata"]["deletionTimestamp"].is_string() {
        return json!("Terminating");
    }
    json!(o["status"]["phase"].as_str().unwrap_or("Unknown"))
}

fn pod_restarts(o: &Value) -> Value {
    json!(o["status"]["containerStatuses"].as_array().map_or(0, |c| c
        .iter()
        .map(|s| s["restartCount"].as_i64().unwrap_or(0))
        .sum::<i64>()))
}

fn svc_type(o: &Value) -> Value {
    o["spec"]["type"].clone()
}

fn svc_cluster_ip(o: &Value) -> Value {
    match o["spec"]["clusterIPs"].as_array() {
        Some(ips) if !ips.is_empty() => json!(ips
            .iter()
            .filter_map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join(",")),
        _ => none_if_empty(
            o["spec"]["clusterIP"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
    }
}

fn svc_external_ip(o: &Value) -> Value {
    let spec = &o["spec"];
    match spec["type"].as_str() {
        Some("ExternalName") => spec["externalName"].clone(),
        Some("LoadBalancer") => {
            let mut ips: Vec<String> = o["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(str::to_string)
                })
                .collect();
            ips.extend(strings(&spec["externalIPs"]));
            if ips.is_empty() {
                json!("<pending>")
            } else {
                json!(ips.join(","))
            }
        }
        _ => none_if_empty(strings(&spec["externalIPs"]).join(",")),
    }
}

fn svc_ports(o: &Value) -> Value {
    let ports: Vec<String> = o["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    none_if_empty(ports.join(","))
}

fn selector_cell(o: &Value) -> Value {
    let sel: Vec<String> = o["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    none_if_empty(sel.join(","))
}

fn node_status(o: &Value) -> Value {
    let ready = o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"].as_str() == Some("True"));
    let mut s = match ready {
        Some(true) => "Ready".to_string(),
        _ => "NotReady".to_string(),
    };
    if o["spec"]["unschedulable"] == true {
        s.push_str(",SchedulingDisabled");
    }
    json!(s)
}

fn node_roles(o: &Value) -> Value {
    let roles: Vec<String> = o["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    none_if_empty(roles.join(","))
}

fn node_address(o: &Value, kind: &str) -> Value {
    none_if_empty(
        o["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == kind)
            .and_then(|a| a["address"].as_str())
            .unwrap_or_default()
            .to_string(),
    )
}

/// Upstream prints at most 3 endpoints then `+ N more...`.
fn format_endpoints(list: Vec<String>) -> Value {
    if list.is_empty() {
        return json!("<none>");
    }
    let shown = list.iter().take(3).cloned().collect::<Vec<_>>().join(",");
    if list.len() > 3 {
        json!(format!("{shown} + {} more...", list.len() - 3))
    } else {
        json!(shown)
    }
}

fn endpoints_cell(o: &Value) -> Value {
    let mut list = Vec::new();
    for s in o["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<i64> = s["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_i64())
            .collect();
        for a in s["addresses"].as_array().into_iter().flatten() {
            let ip = a["ip"].as_str().unwrap_or_default();
            if ports.is_empty() {
                list.push(ip.to_string());
            }
            for p in &ports {
                list.push(format!("{ip}:{p}"));
            }
        }
    }
    format_endpoints(list)
}

fn slice_ports(o: &Value) -> Value {
    let ports: Vec<String> = o["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_i64().map(|n| n.to_string()))
        .collect();
    if ports.is_empty() {
        json!("<unset>")
    } else {
        json!(ports.join(","))
    }
}

fn slice_endpoints(o: &Value) -> Value {
    let list: Vec<String> = o["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| strings(&e["addresses"]))
        .collect();
    if list.is_empty() {
        return json!("<unset>");
    }
    format_endpoints(list)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `spec.replicas`, defaulted to 1 as upstream's workload defaults do.
fn desired(o: &Value) -> i64 {
    o["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// `ready/desired` (Deployment and StatefulSet printers' `Ready` column).
fn ready_of_desired(o: &Value) -> Value {
    json!(format!(
        "{}/{}",
        int(&o["status"]["readyReplicas"]),
        desired(o)
    ))
}

/// Containers of a workload's pod template (the `-o wide` `Containers` column).
fn template_containers(o: &Value) -> Value {
    template_container_field(o, "name")
}

/// Images of a workload's pod template (the `-o wide` `Images` column).
fn template_images(o: &Value) -> Value {
    template_container_field(o, "image")
}

/// One field of each container of a workload's pod template, comma-joined as upstream's
/// printers `layoutContainerCells` join names and images.
fn template_container_field(o: &Value, field: &str) -> Value {
    let values: Vec<&str> = o["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c[field].as_str())
        .collect();
    json!(values.join(","))
}

/// A `metav1.LabelSelector` as upstream's `FormatLabelSelector` prints it.
fn label_selector_cell(o: &Value) -> Value {
    match crate::selector::LabelSelector::from_meta(&o["spec"]["selector"]) {
        Ok(s) if s.is_empty() => json!("<none>"),
        Ok(s) => json!(s.to_string()),
        Err(_) => json!("<error>"),
    }
}

fn columns(info: &ResourceInfo) -> Vec<Column> {
    let name = col("Name", "string", 0, name_cell);
    let age_column = col("Age", "string", 0, age_cell);
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => vec![
            name,
            col("Ready", "string", 0, pod_ready),
            col("Status", "string", 0, pod_status),
            col("Restarts", "string", 0, pod_restarts),
            age_column,
            col("IP", "string", 1, |o| {
                none_if_empty(o["status"]["podIP"].as_str().unwrap_or_default().into())
            }),
            col("Node", "string", 1, |o| {
                none_if_empty(o["spec"]["nodeName"].as_str().unwrap_or_default().into())
            }),
            col("Nominated Node", "string", 1, |_| json!("<none>")),
            col("Readiness Gates", "string", 1, |_| json!("<none>")),
        ],
        ("", "services") => vec![
            name,
            col("Type", "string", 0, svc_type),
            col("Cluster-IP", "string", 0, svc_cluster_ip),
            col("External-IP", "string", 0, svc_external_ip),
            col("Port(s)", "string", 0, svc_ports),
            age_column,
            col("Selector", "string", 1, selector_cell),
        ],
        ("", "nodes") => vec![
            name,
            col("Status", "string", 0, node_status),
            col("Roles", "string", 0, node_roles),
            age_column,
            col("Version", "string", 0, |o| {
                o["status"]["nodeInfo"]["kubeletVersion"].clone()
            }),
            col("Internal-IP", "string", 1, |o| {
                node_address(o, "InternalIP")
            }),
            col("External-IP", "string", 1, |o| {
                node_address(o, "ExternalIP")
            }),
        ],
        ("", "endpoints") => vec![
            name,
            col("Endpoints", "string", 0, endpoints_cell),
            age_column,
        ],
        ("discovery.k8s.io", "endpointslices") => vec![
            name,
            col("AddressType", "string", 0, |o| o["addressType"].clone()),
            col("Ports", "string", 0, slice_ports),
            col("Endpoints", "string", 0, slice_endpoints),
            age_column,
        ],
        ("", "namespaces") => vec![
            name,
            col("Status", "string", 0, |o| o["status"]["phase"].clone()),
            age_column,
        ],
        ("", "configmaps") => vec![
            name,
            col("Data", "integer", 0, |o| {
                json!(
                    o["data"].as_object().map_or(0, |m| m.len())
                        + o["binaryData"].as_object().map_or(0, |m| m.len())
                )
            }),
            age_column,
        ],
        ("", "secrets") => vec![
            name,
            col("Type", "string", 0, |o| o["type"].clone()),
            col("Data", "integer", 0, |o| {
                json!(o["data"].as_object().map_or(0, |m| m.len()))
            }),
            age_column,
        ],
        ("coordination.k8s.io", "leases") => vec![
            name,
            col("Holder", "string", 0, |o| {
                o["spec"]["holderIdentity"].clone()
            }),
            age_column,
        ],
        ("", "events") => vec![
            col("Last Seen", "string", 0, |o| {
                json!(self::age(
                    o["lastTimestamp"].as_str().or(o["eventTime"].as_str())
                ))
            }),
            col("Type", "string", 0, |o| o["type"].clone()),
            col("Reason", "string", 0, |o| o["reason"].clone()),
            col("Object", "string", 0, |o| {
                json!(format!(
                    "{}/{}",
                    o["involvedObject"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_lowercase(),
                    o["involvedObject"]["name"].as_str().unwrap_or_default()
                ))
            }),
            col("Message", "string", 0, |o| o["message"].clone()),
            col("Name", "string", 1, name_cell),
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => vec![
            name,
            col("Created At", "date", 0, |o| {
                o["metadata"]["creationTimestamp"].clone()
            }),
        ],
        // Upstream `pkg/printers/internalversion/printers.go` `AddHandlers`.
        ("apps", "deployments") => vec![
            name,
            col("Ready", "string", 0, ready_of_desired),
            col("Up-to-date", "integer", 0, |o| {
                json!(int(&o["status"]["updatedReplicas"]))
            }),
            col("Available", "integer", 0, |o| {
                json!(int(&o["status"]["availableReplicas"]))
            }),
            age_column,
            col("Containers", "string", 1, template_containers),
            col("Images", "string", 1, template_images),
            col("Selector", "string", 1, label_selector_cell),
        ],
        ("apps", "replicasets") | ("", "replicationcontrollers") => vec![
            name,
            col("Desired", "integer", 0, |o| json!(desired(o))),
            col("Current", "integer", 0, |o| {
                json!(int(&o["status"]["replicas"]))
            }),
            col("Ready", "integer", 0, |o| {
                json!(int(&o["status"]["readyReplicas"]))
            }),
            age_column,
            col("Containers", "string", 1, template_containers),
            col("Images", "string", 1, template_images),
            col("Selector", "string", 1, |o| {
                if o["spec"]["selector"].get("matchLabels").is_some()
                    || o["spec"]["selector"].get("matchExpressions").is_some()
                {
                    label_selector_cell(o)
                } else {
                    selector_cell(o)
                }
            }),
        ],
        ("apps", "statefulsets") => vec![
            name,
            col("Ready", "string", 0, ready_of_desired),
            age_column,
            col("Containers", "string", 1, template_containers),
            col("Images", "string", 1, template_images),
        ],
        ("apps", "daemonsets") => vec![
            name,
            col("Desired", "integer", 0, |o| {
                json!(int(&o["status"]["desiredNumberScheduled"]))
            }),
            col("Current", "integer", 0, |o| {
                json!(int(&o["status"]["currentNumberScheduled"]))
            }),
            col("Ready", "integer", 0, |o| {
                json!(int(&o["status"]["numberReady"]))
            }),
            col("Up-to-date", "integer", 0, |o| {
                json!(int(&o["status"]["updatedNumberScheduled"]))
            }),
            col("Available", "integer", 0, |o| {
                json!(int(&o["status"]["numberAvailable"]))
            }),
            col("Node Selector", "string", 0, |o| {
                let sel: Vec<String> = o["spec"]["template"]["spec"]["nodeSelector"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                none_if_empty(sel.join(","))
            }),
            age_column,
            col("Containers", "string", 1, template_containers),
            col("Images", "string", 1, template_images),
            col("Selector", "string", 1, label_selector_cell),
        ],
        ("", "serviceaccounts") => vec![
            name,
            col("Secrets", "integer", 0, |o| {
                json!(o["secrets"].as_array().map_or(0, Vec::len))
            }),
            age_column,
        ],
        ("", "persistentvolumeclaims") => vec![
            name,
            col("Status", "string", 0, |o| o["status"]["phase"].clone()),
            col("Volume", "string", 0, |o| o["spec"]["volumeName"].clone()),
            col("Capacity", "string", 0, |o| {
                o["status"]["capacity"]["storage"].clone()
            }),
            col("Access Modes", "string", 0, |o| {
                json!(strings(&o["status"]["accessModes"]).join(","))
            }),
            col("StorageClass", "string", 0, |o| {
                o["spec"]["storageClassName"].clone()
            }),
            age_column,
        ],
        ("batch", "jobs") => vec![
            name,
            col("Completions", "string", 0, |o| {
                json!(format!(
                    "{}/{}",
                    int(&o["status"]["succeeded"]),
                    o["spec"]["completions"].as_i64().unwrap_or(1)
                ))
            }),
            age_column,
        ],
        ("batch", "cronjobs") => vec![
            name,
            col("Schedule", "string", 0, |o| o["spec"]["schedule"].clone()),
            col("Suspend", "boolean", 0, |o| {
                json!(o["spec"]["suspend"].as_bool().unwrap_or(false))
            }),
            col("Active", "integer", 0, |o| {
                json!(o["status"]["active"].as_array().map_or(0, Vec::len))
            }),
            age_column,
        ],
        _ => vec![name, age_column],
    }
}

/// Computes one row's cells.
type RowCells = Box<dyn Fn(&Value) -> Vec<Value>>;

/// One `columnDefinitions` entry; the `Name` column has format `name`, as upstream's.
fn column_definition(name: &str, kind: &str, description: &str, priority: i64) -> Value {
    json!({
        "name": name,
        "type": kind,
        "format": if name == "Name" { "name" } else { "" },
        "description": description,
        "priority": priority,
    })
}

/// A custom resource's columns: `Name`, then its `additionalPrinterColumns` (upstream's
/// custom resource table convertor); `date` cells are ages, missing values empty.
fn custom_columns(columns: &[PrinterColumn]) -> (Vec<Value>, RowCells) {
    let mut defs = vec![column_definition("Name", "string", "", 0)];
    for c in columns {
        let mut def = column_definition(&c.name, &c.kind, &c.description, c.priority);
        def["format"] = json!(c.format);
        defs.push(def);
    }
    let columns = columns.to_vec();
    let cells = move |o: &Value| {
        let mut cells = vec![name_cell(o)];
        cells.extend(columns.iter().map(|c| match c.value_in(o) {
            Some(v) if c.kind == "date" => json!(age(v.as_str())),
            Some(v) => v,
            None => Value::Null,
        }));
        cells
    };
    (defs, Box::new(cells))
}

/// Builds a Table for the objects.
pub fn to_table(
    info: &ResourceInfo,
    objects: &[Arc<StoredObject>],
    resource_version: &str,
    continue_token: Option<&str>,
    query: &Query,
) -> Value {
    let values: Vec<Value> = objects.iter().map(|o| o.value()).collect();
    table_of_values(info, &values, resource_version, continue_token, query)
}

/// Builds a Table for parsed objects (also used for watch events).
pub fn table_of_values(
    info: &ResourceInfo,
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    query: &Query,
) -> Value {
    let include = query.get("includeObject").unwrap_or("Metadata");
    let (defs, cells): (Vec<Value>, RowCells) = if info.printer_columns.is_empty() {
        let cols = columns(info);
        let defs = cols
            .iter()
            .map(|c| column_definition(c.name, c.kind, "", c.priority as i64))
            .collect();
        (
            defs,
            Box::new(move |o| cols.iter().map(|c| (c.cell)(o)).collect()),
        )
    } else {
        custom_columns(&info.printer_columns)
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells = cells(o);
            let object = match include {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }),
            };
            let mut row = json!({"cells": cells});
            if !object.is_null() {
                row["object"] = object;
            }
            row
        })
        .collect();
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        meta["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}
