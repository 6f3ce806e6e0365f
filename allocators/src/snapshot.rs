//! Persisted allocator state, shaped like upstream `api.RangeAllocation`.

use serde::{Deserialize, Serialize};

/// A snapshot of one allocator: the range it covers and its bitmap bytes
/// ([`crate::RangeBitmap::to_bytes`]).
///
/// Like upstream `RangeAllocation {range, data}`; restoring into an allocator
/// of another range fails with [`crate::Error::MismatchedRange`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSnapshot {
    /// The range, e.g. `10.96.0.0/12` or `30000-32767`.
    pub range: String,
    /// The bitmap, header included.
    pub data: Vec<u8>,
}
