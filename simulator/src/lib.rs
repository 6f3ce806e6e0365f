//! A simulated cluster for `svcplane dev`, in the spirit of KWOK (the Kubernetes SIG project
//! that fakes nodes and kubelets): what makes a Pod useful on a cluster without machines.
//!
//! Three stand-ins, each a pure planning step over the API's Pods and Nodes, applied through
//! an ordinary client (so they work against any API server):
//! - **node IPAM** (kube-controller-manager's `nodeipam` with `--allocate-node-cidrs`): a Node
//!   without `spec.podCIDR` gets the next free block of the cluster CIDR;
//! - **scheduler** (kube-scheduler's filters `NodeUnschedulable`, `TaintToleration`,
//!   `NodeAffinity` for `nodeSelector` and required node affinity): an unbound Pod is bound to
//!   the feasible Node with the fewest Pods through `pods/binding`, or marked
//!   `PodScheduled=False` / `Unschedulable` with upstream's message;
//! - **kubelet** stand-in: a Pod bound to a Node gets an IP from the Node's `podCIDR`s and
//!   moves to `Running`; it turns Ready after [`SimConfig::ready_delay`], and not-ready again
//!   while it carries the annotation [`HOLD_NOT_READY_ANNOTATION`]. It manages only the Pods
//!   it started (their container IDs start with [`CONTAINER_ID_SCHEME`]), so hand-written
//!   Pod statuses are left alone.
//!
//! - **Deployment and ReplicaSet controllers** (kube-controller-manager's): a Deployment gets
//!   a ReplicaSet per Pod template and rolls between them within `maxSurge` /
//!   `maxUnavailable` (or Recreate), with the revisions `kubectl rollout` reads; a ReplicaSet
//!   keeps `spec.replicas` Pods from its template. They run where the server serves `apps/v1`.
//!
//! Deletions finish in the API server itself (its garbage collector ends a Pod's graceful
//! deletion period), as they do today without the simulator.
#![warn(missing_docs)]

mod ipam;
mod kubelet;
mod model;
mod plan;
mod run;
mod scheduler;
mod workloads;

pub use model::{Action, Plan, PodRef, World};
pub use plan::{plan, Memory};
pub use run::{run, SimConfig};

/// Annotation that holds a simulated Pod not-ready while its value is `"true"` (for demos of
/// readiness: `kubectl annotate pod NAME svcplane.io/hold-not-ready=true`).
pub const HOLD_NOT_READY_ANNOTATION: &str = "svcplane.io/hold-not-ready";

/// Scheme of the container IDs the kubelet stand-in writes (`svcplane-sim://UID/NAME`); a Pod
/// whose container statuses carry it is managed by the simulator.
pub const CONTAINER_ID_SCHEME: &str = "svcplane-sim://";
