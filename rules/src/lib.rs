//! svcplane rules: Kubernetes' rules for Services, EndpointSlices and Endpoints, pure (no I/O,
//! no server): field errors worded as upstream's, names (DNS-1123/1035, qualified names, label
//! values), object metadata, defaulting, validation and warnings the way kube-apiserver does
//! them, IP helpers, bounded object decoding, the allocation-range checks that need no cluster
//! state, and the well-known label and annotation keys.
//!
//! One source of truth: the embedded API server, the admission webhook (`svcplane-webhook`),
//! `svcplane validate`, the controllers and the node agent all call these functions and name
//! these constants. The API server, controllers and node agent depend on this crate only, not
//! on a server stack.
//!
//! The embedded API server's write path for a Service, mirroring kube-apiserver:
//! 1. decode, then [`default_service`] (warnings it returns go to the client);
//! 2. create: [`prepare_service_create`]; update: [`prepare_service_update`] (keeps allocated
//!    values, syncs `clusterIP`/`clusterIPs`, clears fields of an abandoned type);
//! 3. [`init_ip_family_fields`] with the cluster's [`ClusterFamilies`], then allocate;
//! 4. [`validate_service`] / [`validate_service_update`] with [`Phase::Storage`], plus
//!    [`warnings_for_service`];
//! 5. on errors answer 422 with [`invalid_message`] and per-error [`FieldError::body`] /
//!    [`ErrorKind::reason`] / `field` as causes.
//!
//! EndpointSlices: [`default_endpoint_slice`], [`drop_topology_on_v1`],
//! [`validate_endpoint_slice`] / [`validate_endpoint_slice_update`],
//! [`warnings_for_endpoint_slice`]. Endpoints: [`default_endpoints`], [`validate_endpoints`] /
//! [`validate_endpoints_update`], [`warnings_for_endpoints`]. Any of the three as JSON:
//! [`validate_object`]; a stream of manifests: [`validate_documents`].

#![warn(missing_docs)]
// Slicing a string at a byte index panics inside a multi-byte character: request text (and
// flags) are cut with `get`, `split_once`, `strip_prefix` or `split_at_checked` instead.
#![warn(clippy::string_slice)]

// Sub-APIs used by name from other crates.
pub mod bounded_yaml;
pub mod field_error;
pub mod ip;
pub mod meta;
pub mod names;
pub mod well_known;

mod allocation_ranges;
mod cluster_ips;
mod defaults;
mod documents;
mod endpoint_slice;
mod endpoints;
mod ip_families;
mod object;
mod service;
mod service_model;
mod service_status;
mod service_update;

pub use allocation_ranges::{
    ServiceRanges, DEFAULT_SERVICE_CLUSTER_IP_RANGE, DEFAULT_SERVICE_NODE_PORT_RANGE,
};
pub use defaults::{
    default_endpoint_slice, default_endpoints, default_service, prepare_service_create,
    prepare_service_update,
};
pub use documents::{
    parse_documents, validate_documents, validate_documents_in, EXIT_ALLOWED, EXIT_REJECTED,
    EXIT_UNREADABLE,
};
pub use endpoint_slice::{
    drop_topology_on_v1, validate_endpoint_slice, validate_endpoint_slice_update,
    warnings_for_endpoint_slice, MAX_ENDPOINTS as MAX_ENDPOINTS_PER_SLICE,
};
pub use endpoints::{validate_endpoints, validate_endpoints_update, warnings_for_endpoints};
pub use field_error::{invalid_message, BadValue, ErrorKind, FieldError, Verdict};
pub use ip::parse_ip_sloppy;
pub use ip_families::{init_ip_family_fields, ClusterFamilies};
pub use object::{
    decode, decode_object, decode_object_fast, kind_of, validate_decoded, validate_object,
    validate_object_owned, DecodeError, Kind, Object,
};
pub use service::{validate_service, warnings_for_service, Phase};
pub use service_model::{needs_hc_node_port, needs_node_port, spec_type};
pub use service_status::{default_load_balancer_ip_mode, validate_service_status_update};
pub use service_update::validate_service_update;
