//! Bitmap allocators for Service ClusterIPs and NodePorts, as kube-apiserver
//! allocates them (`pkg/registry/core/service/ipallocator`, `portallocator`,
//! `allocator`).
//!
//! # Bands (KEP-3070, KEP-3668)
//!
//! Every range is split in two:
//!
//! - a lower **static band** `[0, band)`, which dynamic allocation avoids so
//!   that users who pick their own `clusterIP` or `nodePort` (DNS service IPs,
//!   well-known node ports) rarely collide with an automatically chosen one;
//! - an upper **dynamic band** `[band, size)`, where
//!   [`ClusterIpAllocator::allocate_next`] and [`NodePortAllocator::allocate_next`]
//!   take values first. Only when it is full do they fall back to the static band.
//!
//! A user-specified value may be anywhere in the range. Band sizes follow
//! upstream `calculateRangeOffset`:
//!
//! | range     | band size                        | none when            |
//! |-----------|----------------------------------|----------------------|
//! | ClusterIP | `min(max(16, cidr_size/16), 256)` | CIDR of ≤ 16 addresses |
//! | NodePort  | `min(max(16, size/32), 128)`      | ≤ 16 ports           |
//!
//! So with a /24 dynamic ClusterIPs start at offset 16 (x.x.x.17), and with the
//! default node port range 30000-32767 dynamic ports are ≥ 30086.
//!
//! # Beyond upstream
//!
//! Upstream picks a random start in the band and probes bit by bit. Here the
//! [`RangeBitmap`] keeps a next-fit cursor per band and skips full 64-bit
//! words, so a dynamic allocation stays cheap when the range is almost full;
//! counts per band are O(1). Releasing a value outside the range is an error
//! here (upstream ignores it).

#![warn(missing_docs)]
// Slicing a string at a byte index panics inside a multi-byte character: request text (and
// flags) are cut with `get`, `split_once`, `strip_prefix` or `split_at_checked` instead.
#![warn(clippy::string_slice)]

mod band;
mod bitmap;
mod cluster_ip;
mod dual_stack;
mod error;
mod ip_family;
mod node_port;
mod port_range;
mod snapshot;
mod usage;

pub use band::{cluster_ip_static_band_size, node_port_static_band_size};
pub use bitmap::RangeBitmap;
pub use cluster_ip::{ClusterIpAllocator, MAX_SERVICE_CIDR_HOST_BITS};
pub use dual_stack::{DualStackClusterIps, FALLBACK_SERVICE_CLUSTER_IP_RANGE};
pub use error::{Error, Resource, Result};
pub use ip_family::IpFamily;
pub use node_port::NodePortAllocator;
pub use port_range::{PortRange, DEFAULT_SERVICE_NODE_PORT_RANGE};
pub use snapshot::RangeSnapshot;
pub use usage::RangeUsage;
