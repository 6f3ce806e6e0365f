//! What a pass works on and produces: the configuration, the world as the API shows it, the
//! writes, and the pass's plan.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::Value;

/// What the simulator simulates with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long a started Pod stays not-ready before it turns Ready (0: ready at once).
    pub ready_delay: Duration,
    /// Cluster CIDRs (at most one per family) Nodes without `spec.podCIDR` get blocks of, as
    /// kube-controller-manager's `--cluster-cidr`; empty: no node IPAM.
    pub cluster_cidrs: Vec<IpNet>,
    /// Prefix length of an IPv4 Node block (`--node-cidr-mask-size-ipv4`, default 24).
    pub node_prefix_v4: u8,
    /// Prefix length of an IPv6 Node block (`--node-cidr-mask-size-ipv6`, default 64).
    pub node_prefix_v6: u8,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            ready_delay: Duration::from_secs(1),
            cluster_cidrs: vec!["10.244.0.0/16".parse().expect("valid CIDR")],
            node_prefix_v4: 24,
            node_prefix_v6: 64,
        }
    }
}

/// The objects the API holds (a reflector's view).
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Every Pod.
    pub pods: Vec<Arc<Pod>>,
    /// Every Node.
    pub nodes: Vec<Arc<Node>>,
    /// Every Deployment (empty where the server does not serve `apps/v1`).
    pub deployments: Vec<Arc<Deployment>>,
    /// Every ReplicaSet.
    pub replica_sets: Vec<Arc<ReplicaSet>>,
}

/// One write the simulator makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set the Node's `spec.podCIDR` and `spec.podCIDRs`.
    AssignPodCidrs {
        /// The Node.
        node: String,
        /// One block per family.
        cidrs: Vec<IpNet>,
    },
    /// Bind the Pod to the Node (`pods/binding`).
    Bind {
        /// The Pod.
        pod: PodRef,
        /// The Node.
        node: String,
    },
    /// Record `PodScheduled=False`, reason `Unschedulable`, with this message.
    Unschedulable {
        /// The Pod.
        pod: PodRef,
        /// Upstream's `FailedScheduling` message.
        message: String,
    },
    /// Start the Pod: write its running `status` with these addresses.
    Start {
        /// The Pod.
        pod: PodRef,
        /// The addresses given to it.
        ips: Vec<IpAddr>,
        /// The new `status`.
        status: Value,
    },
    /// Flip a started Pod's readiness.
    SetReady {
        /// The Pod.
        pod: PodRef,
        /// Whether it is now Ready.
        ready: bool,
        /// The new `status`.
        status: Value,
    },
    /// Create a Pod from a ReplicaSet's template.
    CreatePod {
        /// Namespace.
        namespace: String,
        /// Name (the ReplicaSet's name and a suffix).
        name: String,
        /// UID of the owning ReplicaSet.
        owner: String,
        /// The Pod.
        body: Value,
    },
    /// Delete a Pod a ReplicaSet no longer wants.
    DeletePod {
        /// The Pod.
        pod: PodRef,
        /// UID of the owning ReplicaSet.
        owner: String,
    },
    /// Write a ReplicaSet's `status`.
    ReplicaSetStatus {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The new `status`.
        status: Value,
    },
    /// Create a Deployment's ReplicaSet for its current template.
    CreateReplicaSet {
        /// Namespace.
        namespace: String,
        /// Name (`DEPLOYMENT-HASH`).
        name: String,
        /// UID of the owning Deployment.
        owner: String,
        /// The ReplicaSet.
        body: Value,
    },
    /// Set a ReplicaSet's `spec.replicas` (and its revision annotation when given).
    ScaleReplicaSet {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// UID.
        uid: String,
        /// The new `spec.replicas`.
        replicas: i32,
        /// A new `deployment.kubernetes.io/revision`.
        revision: Option<i64>,
    },
    /// Delete an old ReplicaSet beyond the Deployment's `revisionHistoryLimit`.
    DeleteReplicaSet {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// UID.
        uid: String,
    },
    /// Set a Deployment's `deployment.kubernetes.io/revision` annotation.
    AnnotateDeployment {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The revision of its newest ReplicaSet.
        revision: i64,
    },
    /// Write a Deployment's `status`.
    DeploymentStatus {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The new `status`.
        status: Value,
    },
}

/// A Pod by namespace, name and UID (the UID keys the simulator's memory).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

impl PodRef {
    pub(crate) fn of(pod: &Pod) -> PodRef {
        PodRef {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        }
    }
}

/// The actions of one pass, and when the next pass is due if nothing changes before.
#[derive(Debug, Default)]
pub struct Plan {
    /// Writes to make, in order.
    pub actions: Vec<Action>,
    /// The earliest pending readiness flip.
    pub next_due: Option<Timestamp>,
}

/// Moves the plan's next pass to `at` if that is earlier.
pub(crate) fn due(out: &mut Plan, at: Timestamp) {
    out.next_due = Some(out.next_due.map_or(at, |d| d.min(at)));
}
