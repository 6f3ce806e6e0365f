//! One planning pass over the cluster: which Nodes get pod CIDRs, which Pods are bound where,
//! which are started, whose readiness flips. Pure: the world and memory in, actions out.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::model::{due, Action, Plan, PodRef, SimConfig, World};
use crate::workloads::{self, Expectations};
use crate::{ipam, kubelet, scheduler};

/// What the simulator wrote and the world does not show yet (watch events lag behind
/// writes): without it, a second pass would hand the same address or block out twice.
#[derive(Debug, Default)]
pub struct Memory {
    node_cidrs: HashMap<String, Vec<IpNet>>,
    bindings: HashMap<String, String>,
    unschedulable: HashMap<String, String>,
    pod_ips: HashMap<String, Vec<IpAddr>>,
    readiness: HashMap<String, bool>,
    workloads: Expectations,
}

impl Memory {
    /// Remembers a write that succeeded at `now`.
    pub fn record(&mut self, action: &Action, now: Timestamp) {
        self.workloads.record(action, now);
        match action {
            Action::AssignPodCidrs { node, cidrs } => {
                self.node_cidrs.insert(node.clone(), cidrs.clone());
            }
            Action::Bind { pod, node } => {
                self.bindings.insert(pod.uid.clone(), node.clone());
            }
            Action::Unschedulable { pod, message } => {
                self.unschedulable.insert(pod.uid.clone(), message.clone());
            }
            Action::Start { pod, ips, .. } => {
                self.pod_ips.insert(pod.uid.clone(), ips.clone());
            }
            Action::SetReady { pod, ready, .. } => {
                self.readiness.insert(pod.uid.clone(), *ready);
            }
            _ => {}
        }
    }

    /// Forgets what the world now shows, and everything about objects that are gone.
    pub fn settle(&mut self, world: &World, now: Timestamp) {
        self.workloads.settle(world, now);
        let nodes: HashMap<&str, &Node> = world
            .nodes
            .iter()
            .map(|n| (n.metadata.name.as_deref().unwrap_or_default(), n.as_ref()))
            .collect();
        self.node_cidrs.retain(|name, _| {
            nodes
                .get(name.as_str())
                .is_some_and(|n| ipam::node_pod_cidrs(n).is_empty())
        });
        let pods: HashMap<&str, &Pod> = world
            .pods
            .iter()
            .map(|p| (p.metadata.uid.as_deref().unwrap_or_default(), p.as_ref()))
            .collect();
        self.bindings.retain(|uid, _| {
            pods.get(uid.as_str())
                .is_some_and(|p| node_name(p).is_none())
        });
        self.unschedulable
            .retain(|uid, _| pods.contains_key(uid.as_str()));
        self.pod_ips.retain(|uid, _| {
            pods.get(uid.as_str())
                .is_some_and(|p| pod_ips(p).is_empty())
        });
        self.readiness.retain(|uid, ready| {
            pods.get(uid.as_str())
                .is_some_and(|p| kubelet::is_ready(p) != *ready)
        });
    }
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let status = pod.status.as_ref();
    let listed = status.and_then(|s| s.pod_ips.as_ref());
    let mut out: Vec<IpAddr> = listed
        .into_iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if out.is_empty() {
        out.extend(status.and_then(|s| s.pod_ip.as_deref()?.parse::<IpAddr>().ok()));
    }
    out
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn finished(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// Plans one pass: Deployments, ReplicaSets, node IPAM, scheduling, then the kubelet
/// stand-in.
pub fn plan(world: &World, memory: &Memory, config: &SimConfig, now: Timestamp) -> Plan {
    let mut out = Plan::default();
    workloads::plan_deployments(world, &memory.workloads, now, &mut out);
    workloads::plan_replica_sets(world, &memory.workloads, now, &mut out);
    let node_cidrs = plan_node_ipam(world, memory, config, &mut out);
    plan_scheduling(world, memory, &mut out);
    plan_kubelet(world, memory, config, now, &node_cidrs, &mut out);
    out
}

/// Every Node's pod CIDRs after this pass (from the world, memory or this pass).
fn plan_node_ipam(
    world: &World,
    memory: &Memory,
    config: &SimConfig,
    out: &mut Plan,
) -> HashMap<String, Vec<IpNet>> {
    let mut cidrs: HashMap<String, Vec<IpNet>> = HashMap::new();
    let mut nodes: Vec<&Node> = world.nodes.iter().map(|n| n.as_ref()).collect();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for node in &nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let have = ipam::node_pod_cidrs(node);
        let have = if have.is_empty() {
            memory.node_cidrs.get(&name).cloned().unwrap_or_default()
        } else {
            have
        };
        cidrs.insert(name, have);
    }
    for node in &nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        if !cidrs[&name].is_empty() || config.cluster_cidrs.is_empty() {
            continue;
        }
        let taken: Vec<IpNet> = cidrs.values().flatten().copied().collect();
        let mut blocks = Vec::new();
        for cluster in &config.cluster_cidrs {
            let prefix = match cluster {
                IpNet::V4(_) => config.node_prefix_v4,
                IpNet::V6(_) => config.node_prefix_v6,
            };
            match ipam::next_free_block(*cluster, prefix, &taken) {
                Some(block) => blocks.push(block),
                None => tracing::warn!(node = %name, %cluster, "no free pod CIDR block left"),
            }
        }
        if blocks.len() == config.cluster_cidrs.len() {
            cidrs.insert(name.clone(), blocks.clone());
            out.actions.push(Action::AssignPodCidrs {
                node: name,
                cidrs: blocks,
            });
        }
    }
    cidrs
}

fn plan_scheduling(world: &World, memory: &Memory, out: &mut Plan) {
    let nodes: Vec<&Node> = world.nodes.iter().map(|n| n.as_ref()).collect();
    let mut load: HashMap<String, usize> = HashMap::new();
    let mut waiting: Vec<&Pod> = Vec::new();
    for pod in &world.pods {
        if finished(pod) {
            continue;
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let bound = node_name(pod).or_else(|| memory.bindings.get(uid).map(String::as_str));
        match bound {
            Some(node) => *load.entry(node.to_string()).or_default() += 1,
            None if !deleting(pod) && ours_to_schedule(pod) => waiting.push(pod),
            None => {}
        }
    }
    waiting.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                p.metadata.namespace.clone(),
                p.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    for pod in waiting {
        let pod_ref = PodRef::of(pod);
        match scheduler::choose_node(pod, &nodes, &load) {
            Ok(node) => {
                *load.entry(node.clone()).or_default() += 1;
                out.actions.push(Action::Bind { pod: pod_ref, node });
            }
            Err(message) => {
                let shown = scheduled_message(pod);
                let remembered = memory.unschedulable.get(&pod_ref.uid);
                if shown.as_deref() != Some(message.as_str()) && remembered != Some(&message) {
                    out.actions.push(Action::Unschedulable {
                        pod: pod_ref,
                        message,
                    });
                }
            }
        }
    }
}

/// Pods for kube-scheduler's default profile (`spec.schedulerName` empty or
/// `default-scheduler`).
fn ours_to_schedule(pod: &Pod) -> bool {
    let name = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref());
    matches!(name, None | Some("") | Some("default-scheduler"))
}

/// The message of a `PodScheduled=False` condition, if the Pod has one.
fn scheduled_message(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let c = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    c.message.clone()
}

fn plan_kubelet(
    world: &World,
    memory: &Memory,
    config: &SimConfig,
    now: Timestamp,
    node_cidrs: &HashMap<String, Vec<IpNet>>,
    out: &mut Plan,
) {
    let nodes: HashMap<&str, &Node> = world
        .nodes
        .iter()
        .map(|n| (n.metadata.name.as_deref().unwrap_or_default(), n.as_ref()))
        .collect();
    // Addresses in use per Node: every live Pod's, plus what this simulator handed out.
    let mut used: HashMap<String, HashSet<IpAddr>> = HashMap::new();
    for pod in &world.pods {
        let (Some(node), false) = (node_name(pod), finished(pod)) else {
            continue;
        };
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let set = used.entry(node.to_string()).or_default();
        set.extend(pod_ips(pod));
        set.extend(memory.pod_ips.get(uid).into_iter().flatten());
    }
    let mut pods: Vec<&Pod> = world.pods.iter().map(|p| p.as_ref()).collect();
    pods.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    for pod in pods {
        let Some(node_name) = node_name(pod) else {
            continue;
        };
        let Some(node) = nodes.get(node_name) else {
            continue;
        };
        if deleting(pod) || finished(pod) {
            continue;
        }
        let pod_ref = PodRef::of(pod);
        if kubelet::is_managed(pod) {
            plan_readiness(pod, pod_ref, memory, config, now, out);
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let unstarted = matches!(phase, None | Some("") | Some("Pending"));
        if !unstarted || !pod_ips(pod).is_empty() || memory.pod_ips.contains_key(&pod_ref.uid) {
            continue;
        }
        let ips = if host_network(pod) {
            kubelet::host_ips(node)
        } else {
            let taken = used.entry(node_name.to_string()).or_default();
            let mut ips = Vec::new();
            for cidr in node_cidrs.get(node_name).into_iter().flatten() {
                match ipam::next_free_ip(*cidr, taken) {
                    Some(ip) => {
                        taken.insert(ip);
                        ips.push(ip);
                    }
                    None => tracing::warn!(node = node_name, %cidr, "pod CIDR is full"),
                }
            }
            ips
        };
        if ips.is_empty() {
            // No pod CIDR yet (or a full one): the Pod waits, as it would for its sandbox.
            continue;
        }
        let ready = config.ready_delay.is_zero() && !kubelet::held_not_ready(pod);
        if !ready && !kubelet::held_not_ready(pod) {
            due(out, now + config.ready_delay);
        }
        let status = kubelet::started_status(pod, node, &ips, now, ready);
        out.actions.push(Action::Start {
            pod: pod_ref,
            ips,
            status,
        });
    }
}

fn plan_readiness(
    pod: &Pod,
    pod_ref: PodRef,
    memory: &Memory,
    config: &SimConfig,
    now: Timestamp,
    out: &mut Plan,
) {
    let ready_at = kubelet::start_time(pod).map(|t| t + config.ready_delay);
    let held = kubelet::held_not_ready(pod);
    let want = !held && ready_at.is_none_or(|at| at <= now);
    if !held && !want {
        if let Some(at) = ready_at {
            due(out, at);
        }
    }
    let shown = memory
        .readiness
        .get(&pod_ref.uid)
        .copied()
        .unwrap_or_else(|| kubelet::is_ready(pod));
    if want != shown {
        let status = kubelet::readiness_status(pod, want, now);
        out.actions.push(Action::SetReady {
            pod: pod_ref,
            ready: want,
            status,
        });
    }
}

#[cfg(test)]
mod tests;
