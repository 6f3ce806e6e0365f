//! Static band sizes (KEP-3070 for ClusterIPs, KEP-3668 for NodePorts).
//!
//! Both follow `min(max(16, size/step), cap)`, and are 0 for ranges of 16 or
//! fewer values, as upstream `calculateRangeOffset` in `ipallocator/bitmap.go`
//! and `portallocator/allocator.go`.

/// The band never goes below this many values (and ranges this small get none).
const BAND_MIN: u128 = 16;

/// ClusterIP static band size for a CIDR of `cidr_size` addresses (the whole
/// CIDR, network and broadcast included): `min(max(16, cidr_size/16), 256)`.
///
/// Upstream: `ipallocator.calculateRangeOffset` (KEP-3070). A /24 gets 16, a
/// /20 gets 256.
pub fn cluster_ip_static_band_size(cidr_size: u128) -> usize {
    graduated_band(cidr_size, 16, 256)
}

/// NodePort static band size for a range of `range_size` ports:
/// `min(max(16, range_size/32), 128)`.
///
/// Upstream: `portallocator.calculateRangeOffset` (KEP-3668). The default
/// range 30000-32767 (2768 ports) gets 86, so dynamic ports are >= 30086.
pub fn node_port_static_band_size(range_size: u128) -> usize {
    graduated_band(range_size, 32, 128)
}

fn graduated_band(size: u128, step: u128, cap: u128) -> usize {
    if size <= BAND_MIN {
        return 0;
    }
    // At most `cap` (<= 256), so the cast cannot truncate.
    (size / step).clamp(BAND_MIN, cap) as usize
}
