#![warn(missing_docs)]
//! svcplane's own API: the `svcplane.io/v1alpha1` kinds svcplane serves as
//! CustomResourceDefinitions, and their validation.
//!
//! - [`LoadBalancerIPPool`] (cluster-scoped): the addresses the LoadBalancer IPAM controller
//!   hands out as `status.loadBalancer.ingress[].ip` to `type: LoadBalancer` Services of
//!   svcplane's class. Its blocks are parsed once, into [`AddressBlock`]s, by
//!   [`LoadBalancerIPPoolSpec::address_blocks`]; the controller, the webhook and
//!   `svcplane explain` all read them through it.
//! - [`validate_pool`] checks one pool on its own, [`validate_pool_overlaps`] against the
//!   other pools of the cluster; both return field errors worded like kube-apiserver's.
//!
//! The well-known keys the controller reads on Services are constants here
//! ([`DEFAULT_LOAD_BALANCER_CLASS`], [`LOAD_BALANCER_IPS_ANNOTATION`],
//! [`ALLOW_SHARED_IP_ANNOTATION`]).

mod block;
mod pool;
mod validation;

pub use block::{AddressBlock, BlockError, IpBlock, MAX_BLOCK_ADDRESSES};
pub use pool::{
    FamilyUsage, LoadBalancerIPPool, LoadBalancerIPPoolSpec, LoadBalancerIPPoolStatus,
    PoolConditionType, ALLOW_SHARED_IP_ANNOTATION, API_GROUP, API_VERSION,
    DEFAULT_LOAD_BALANCER_CLASS, LOAD_BALANCER_IPS_ANNOTATION,
};
pub use validation::{validate_pool, validate_pool_overlaps};
