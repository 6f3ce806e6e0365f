//! NodePort allocation over the `--service-node-port-range` (upstream
//! `pkg/registry/core/service/portallocator`), with a static band at the bottom
//! (KEP-3668). Offset 0 of the bitmap is the first port of the range.

use crate::band::node_port_static_band_size;
use crate::bitmap::RangeBitmap;
use crate::error::{Error, Resource, Result};
use crate::port_range::PortRange;
use crate::snapshot::RangeSnapshot;
use crate::usage::RangeUsage;

/// Allocates NodePorts (also used for `spec.healthCheckNodePort`).
///
/// Ports are `i32` like `spec.ports[*].nodePort`, so out-of-range requests such
/// as 70000 get upstream's "not in the valid range" error rather than a type error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePortAllocator {
    range: PortRange,
    range_string: String,
    bitmap: RangeBitmap,
}

impl NodePortAllocator {
    /// Creates an empty allocator over `range`; its static band is
    /// `min(max(16, size/32), 128)` ports (0 for 16 ports or fewer).
    pub fn new(range: PortRange) -> Self {
        let size = range.size() as usize;
        let band = node_port_static_band_size(u128::from(range.size()));
        Self {
            range,
            range_string: range.to_string(),
            bitmap: RangeBitmap::with_band_clamped(size, band),
        }
    }

    /// Reserves a user-chosen `port` (static allocation; any band).
    ///
    /// Errors: [`Error::NotInRange`] ("provided port is not in the valid
    /// range. The range of valid ports is 30000-32767"),
    /// [`Error::AlreadyAllocated`] ("provided port is already allocated").
    pub fn allocate(&mut self, port: i32) -> Result<()> {
        let offset = self
            .offset_of(port)
            .ok_or_else(|| self.not_in_range(port))?;
        self.bitmap
            .allocate(offset)
            .map_err(|e| e.relabel(Resource::Port, port.to_string(), &self.range_string))
    }

    /// Whether [`allocate`](Self::allocate) would succeed for `port`, without
    /// reserving it (for dry-run requests).
    pub fn check_allocatable(&self, port: i32) -> Result<()> {
        let offset = self
            .offset_of(port)
            .ok_or_else(|| self.not_in_range(port))?;
        if self.bitmap.contains(offset) {
            return Err(Error::AlreadyAllocated {
                resource: Resource::Port,
                value: port.to_string(),
            });
        }
        Ok(())
    }

    /// Allocates a free port, from the upper (dynamic) band first and from the
    /// static band only when the upper one is full.
    ///
    /// Errors: [`Error::RangeFull`] ("range is full").
    pub fn allocate_next(&mut self) -> Result<i32> {
        let offset = self
            .bitmap
            .allocate_next()
            .map_err(|e| e.relabel(Resource::Port, String::new(), &self.range_string))?;
        Ok(self.port_at(offset))
    }

    /// Frees `port`; returns whether it was allocated.
    ///
    /// Errors: [`Error::NotInRange`] for ports outside the range (upstream
    /// ignores these silently).
    pub fn release(&mut self, port: i32) -> Result<bool> {
        let offset = self
            .offset_of(port)
            .ok_or_else(|| self.not_in_range(port))?;
        self.bitmap
            .release(offset)
            .map_err(|e| e.relabel(Resource::Port, port.to_string(), &self.range_string))
    }

    /// Whether `port` is allocated (upstream `Has`).
    pub fn contains(&self, port: i32) -> bool {
        self.offset_of(port)
            .is_some_and(|offset| self.bitmap.contains(offset))
    }

    /// Whether `port` lies in the range.
    pub fn in_range(&self, port: i32) -> bool {
        self.range.contains(port)
    }

    /// The port range.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// Usage figures, split by band.
    pub fn usage(&self) -> RangeUsage {
        RangeUsage::of(&self.bitmap)
    }

    /// Allocated ports in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.bitmap.iter().map(|offset| self.port_at(offset))
    }

    /// Bytes used by this allocator's bitmap (struct + heap words).
    pub fn memory_bytes(&self) -> usize {
        self.bitmap.memory_bytes()
    }

    /// The allocator's state, like upstream `PortAllocator.Snapshot`.
    pub fn snapshot(&self) -> RangeSnapshot {
        RangeSnapshot {
            range: self.range_string.clone(),
            data: self.bitmap.to_bytes(),
        }
    }

    /// Replaces this allocator's state with `snapshot`.
    ///
    /// Errors: [`Error::MismatchedRange`] ("the provided port range does not
    /// match the current port range"); [`Error::InvalidSnapshot`] for corrupt bytes.
    pub fn restore(&mut self, snapshot: &RangeSnapshot) -> Result<()> {
        let same_range = PortRange::parse(&snapshot.range).is_ok_and(|r| r == self.range);
        if snapshot.range.trim().is_empty() || !same_range {
            return Err(Error::MismatchedRange {
                resource: Resource::Port,
                expected: self.range_string.clone(),
                found: snapshot.range.clone(),
            });
        }
        let bitmap = RangeBitmap::from_bytes(&snapshot.data)
            .map_err(|e| e.relabel(Resource::Port, String::new(), &self.range_string))?;
        if bitmap.size() != self.bitmap.size()
            || bitmap.static_band_size() != self.bitmap.static_band_size()
        {
            return Err(Error::InvalidSnapshot {
                resource: Resource::Port,
                reason: format!(
                    "snapshot has {} ports with a static band of {}, {} has {} with a band of {}",
                    bitmap.size(),
                    bitmap.static_band_size(),
                    self.range_string,
                    self.bitmap.size(),
                    self.bitmap.static_band_size()
                ),
            });
        }
        self.bitmap = bitmap;
        Ok(())
    }

    /// Builds an allocator from a snapshot.
    ///
    /// Errors: [`Error::InvalidRange`] when the snapshot's range does not
    /// parse, and the errors of [`restore`](Self::restore).
    pub fn from_snapshot(snapshot: &RangeSnapshot) -> Result<Self> {
        let mut allocator = Self::new(PortRange::parse(&snapshot.range)?);
        allocator.restore(snapshot)?;
        Ok(allocator)
    }

    fn offset_of(&self, port: i32) -> Option<usize> {
        self.range
            .contains(port)
            .then(|| (port - i32::from(self.range.first())) as usize)
    }

    fn port_at(&self, offset: usize) -> i32 {
        // offset < size <= 65536.
        i32::from(self.range.first()) + offset as i32
    }

    fn not_in_range(&self, port: i32) -> Error {
        Error::NotInRange {
            resource: Resource::Port,
            value: port.to_string(),
            range: self.range_string.clone(),
        }
    }
}
