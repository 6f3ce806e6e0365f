//! The LoadBalancer IPAM controller (`lb-ipam-controller`): hands out
//! `status.loadBalancer.ingress[].ip` from `LoadBalancerIPPool`s (`svcplane.io/v1alpha1`) to
//! `type: LoadBalancer` Services of svcplane's `loadBalancerClass`.
//!
//! - [`service_view`] reads what the plan needs of a Service (class, families, requested
//!   addresses, ports, sharing key);
//! - [`pools`] validates the pools and keeps one [`svcplane_allocators::RangeBitmap`] per
//!   block;
//! - [`plan`] decides, with no API call, every Service's addresses, every pool's status and
//!   the Events, from the pools, the Namespaces' labels and the Services alone. There is no
//!   store besides the Services' own status: the plan starts from the addresses Services
//!   hold, so a restarted controller rebuilds its state by listing;
//! - [`controller`] watches Services, Namespaces and pools and applies the plan.

pub mod controller;
pub mod plan;
pub mod pools;
pub mod service_view;
