//! Per-range usage figures, for the debug page and `svcplane_allocator_*` metrics.

use serde::{Deserialize, Serialize};

/// How full one range is, split by band (KEP-3070 / KEP-3668).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeUsage {
    /// Allocatable values in the range (for ClusterIPs: without the network,
    /// and for IPv4 the broadcast, address).
    pub total: usize,
    /// Allocated values.
    pub used: usize,
    /// Size of the lower static band.
    pub static_band_size: usize,
    /// Allocated values in the static band.
    pub static_used: usize,
    /// Allocated values in the upper dynamic band.
    pub dynamic_used: usize,
}

impl RangeUsage {
    /// Free values (`total - used`).
    pub fn free(&self) -> usize {
        self.total - self.used
    }

    pub(crate) fn of(bitmap: &crate::RangeBitmap) -> Self {
        Self {
            total: bitmap.size(),
            used: bitmap.used(),
            static_band_size: bitmap.static_band_size(),
            static_used: bitmap.used_in_static_band(),
            dynamic_used: bitmap.used_in_dynamic_band(),
        }
    }
}
