//! A fixed-size allocation bitmap split into a lower static band and an upper
//! dynamic band (KEP-3070 / KEP-3668).
//!
//! Mirrors upstream `pkg/registry/core/service/allocator` (`AllocationBitmap`
//! with `randomScanStrategyWithOffset`) in *what* it hands out: dynamic
//! allocation takes from `[band, size)` first and falls back to `[0, band)` only
//! when the upper band is full. It differs in *how* it searches (beyond
//! upstream): instead of a random start offset followed by a bit-by-bit linear
//! probe, it keeps a next-fit cursor per band and skips whole `u64` words that
//! are full, so one allocation costs `O(distance to the next free word / 64)`
//! rather than `O(distance / 1)`, and stays fast at 99.99 % full. Like upstream's
//! random start, the cursor spreads allocations over the band and does not hand
//! a just-released value out again until the band has been walked round.

use bitvec::prelude::*;

use crate::error::{Error, Resource, Result};

/// Snapshot format marker: "svcplane range bitmap".
const MAGIC: &[u8; 4] = b"SVRB";
/// Snapshot format version.
const VERSION: u8 = 1;
/// Magic (4) + version (1) + reserved (3) + size (8) + band (8).
const HEADER_LEN: usize = 24;
/// Bits per storage word.
const WORD_BITS: usize = u64::BITS as usize;

/// A bitmap over offsets `0..size` with a static band `[0, band)` reserved for
/// user-chosen values and a dynamic band `[band, size)` preferred by
/// [`RangeBitmap::allocate_next`].
///
/// Memory: one bit per offset (rounded up to a `u64`) plus `size_of::<RangeBitmap>()`.
/// Counts ([`used`](Self::used), [`free`](Self::free), per band) are O(1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeBitmap {
    bits: BitVec<u64, Lsb0>,
    band: usize,
    static_used: usize,
    dynamic_used: usize,
    /// Next offset to look at in the dynamic band, always in `[band, size)` when that band is non-empty.
    dynamic_cursor: usize,
    /// Next offset to look at in the static band, always in `[0, band)` when that band is non-empty.
    static_cursor: usize,
}

impl RangeBitmap {
    /// Creates an empty bitmap of `size` offsets whose lowest `static_band_size`
    /// offsets form the static band.
    ///
    /// Fails with [`Error::InvalidRange`] when the band is larger than the range.
    pub fn new(size: usize, static_band_size: usize) -> Result<Self> {
        if static_band_size > size {
            return Err(Error::InvalidRange {
                resource: Resource::Offset,
                range: format!("0+{size}"),
                reason: format!(
                    "static band size {static_band_size} is larger than the range size {size}"
                ),
            });
        }
        Ok(Self::with_band_clamped(size, static_band_size))
    }

    /// Like [`RangeBitmap::new`], but a band larger than the range is cut to the range.
    pub(crate) fn with_band_clamped(size: usize, static_band_size: usize) -> Self {
        let band = static_band_size.min(size);
        Self {
            bits: BitVec::repeat(false, size),
            band,
            static_used: 0,
            dynamic_used: 0,
            dynamic_cursor: band,
            static_cursor: 0,
        }
    }

    /// Number of offsets in the range.
    pub fn size(&self) -> usize {
        self.bits.len()
    }

    /// Number of offsets in the lower static band `[0, band)`.
    pub fn static_band_size(&self) -> usize {
        self.band
    }

    /// Marks `offset` as allocated (a user-chosen value; may lie in either band).
    ///
    /// Errors: [`Error::NotInRange`] when `offset >= size`,
    /// [`Error::AlreadyAllocated`] when it is taken.
    pub fn allocate(&mut self, offset: usize) -> Result<()> {
        if offset >= self.size() {
            return Err(self.not_in_range(offset));
        }
        if self.bits[offset] {
            return Err(Error::AlreadyAllocated {
                resource: Resource::Offset,
                value: offset.to_string(),
            });
        }
        self.mark(offset);
        Ok(())
    }

    /// Allocates a free offset: from the dynamic band `[band, size)` while it
    /// has room, otherwise from the static band `[0, band)`.
    ///
    /// Errors: [`Error::RangeFull`] when every offset is taken.
    pub fn allocate_next(&mut self) -> Result<usize> {
        let size = self.size();
        let band = self.band;
        let dynamic = if self.dynamic_used < size - band {
            find_free(self.words(), band, size, self.dynamic_cursor)
        } else {
            None
        };
        if let Some(offset) = dynamic {
            self.dynamic_cursor = if offset + 1 == size { band } else { offset + 1 };
            self.mark(offset);
            return Ok(offset);
        }
        let fallback = if self.static_used < band {
            find_free(self.words(), 0, band, self.static_cursor)
        } else {
            None
        };
        if let Some(offset) = fallback {
            self.static_cursor = if offset + 1 == band { 0 } else { offset + 1 };
            self.mark(offset);
            return Ok(offset);
        }
        Err(Error::RangeFull {
            resource: Resource::Offset,
            range: self.range_string(),
        })
    }

    /// Frees `offset`; returns whether it was allocated (releasing a free
    /// offset is a no-op, as upstream).
    ///
    /// Errors: [`Error::NotInRange`] when `offset >= size` (upstream silently
    /// ignores these; we report them so callers notice bugs).
    pub fn release(&mut self, offset: usize) -> Result<bool> {
        if offset >= self.size() {
            return Err(self.not_in_range(offset));
        }
        if !self.bits[offset] {
            return Ok(false);
        }
        self.bits.set(offset, false);
        if offset < self.band {
            self.static_used -= 1;
        } else {
            self.dynamic_used -= 1;
        }
        Ok(true)
    }

    /// Whether `offset` is allocated (`false` for offsets outside the range).
    pub fn contains(&self, offset: usize) -> bool {
        self.bits.get(offset).is_some_and(|bit| *bit)
    }

    /// Number of allocated offsets.
    pub fn used(&self) -> usize {
        self.static_used + self.dynamic_used
    }

    /// Number of free offsets.
    pub fn free(&self) -> usize {
        self.size() - self.used()
    }

    /// Number of allocated offsets in the static band `[0, band)`.
    pub fn used_in_static_band(&self) -> usize {
        self.static_used
    }

    /// Number of allocated offsets in the dynamic band `[band, size)`.
    pub fn used_in_dynamic_band(&self) -> usize {
        self.dynamic_used
    }

    /// Allocated offsets in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits.iter_ones()
    }

    /// Bytes this bitmap occupies: the struct plus its heap words.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bits.capacity().div_ceil(WORD_BITS) * 8
    }

    /// Serializes the bitmap: a 24-byte header (magic `SVRB`, version, size,
    /// band) followed by the little-endian `u64` words.
    pub fn to_bytes(&self) -> Vec<u8> {
        let words = self.words();
        let mut out = Vec::with_capacity(HEADER_LEN + words.len() * 8);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&(self.size() as u64).to_le_bytes());
        out.extend_from_slice(&(self.band as u64).to_le_bytes());
        for word in words {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Restores a bitmap written by [`RangeBitmap::to_bytes`], validating the
    /// header, the length, the band and that no bit beyond `size` is set.
    ///
    /// Errors: [`Error::InvalidSnapshot`] describing the first problem found.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidSnapshot {
            resource: Resource::Offset,
            reason,
        };
        if bytes.len() < HEADER_LEN {
            return Err(invalid(format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        if &bytes[..4] != MAGIC {
            return Err(invalid("not a range bitmap (bad magic)".to_string()));
        }
        if bytes[4] != VERSION {
            return Err(invalid(format!("unsupported version {}", bytes[4])));
        }
        let read_u64 = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let size = usize::try_from(read_u64(8))
            .map_err(|_| invalid("size does not fit in memory".to_string()))?;
        let band = usize::try_from(read_u64(16))
            .map_err(|_| invalid("band does not fit in memory".to_string()))?;
        if band > size {
            return Err(invalid(format!(
                "static band size {band} is larger than the range size {size}"
            )));
        }
        let word_count = size.div_ceil(WORD_BITS);
        let body = &bytes[HEADER_LEN..];
        if Some(body.len()) != word_count.checked_mul(8) {
            return Err(invalid(format!(
                "expected {} bytes of bitmap for {size} offsets, found {}",
                word_count * 8,
                body.len()
            )));
        }
        let words: Vec<u64> = body
            .chunks_exact(8)
            .map(|chunk| {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                u64::from_le_bytes(word)
            })
            .collect();
        let tail = size % WORD_BITS;
        if tail != 0 && words[word_count - 1] >> tail != 0 {
            return Err(invalid(format!(
                "bits are set beyond the range size {size}"
            )));
        }
        let mut bits = BitVec::<u64, Lsb0>::from_vec(words);
        bits.truncate(size);
        let static_used = bits[..band].count_ones();
        let dynamic_used = bits[band..].count_ones();
        Ok(Self {
            bits,
            band,
            static_used,
            dynamic_used,
            dynamic_cursor: band,
            static_cursor: 0,
        })
    }

    /// Sets a free `offset` and updates its band's counter.
    fn mark(&mut self, offset: usize) {
        self.bits.set(offset, true);
        if offset < self.band {
            self.static_used += 1;
        } else {
            self.dynamic_used += 1;
        }
    }

    fn words(&self) -> &[u64] {
        self.bits.as_raw_slice()
    }

    fn range_string(&self) -> String {
        match self.size() {
            0 => "0-0 (empty)".to_string(),
            size => format!("0-{}", size - 1),
        }
    }

    fn not_in_range(&self, offset: usize) -> Error {
        Error::NotInRange {
            resource: Resource::Offset,
            value: offset.to_string(),
            range: self.range_string(),
        }
    }
}

/// First zero bit in `[lo, hi)` at or after `cursor`, wrapping round to `lo`.
fn find_free(words: &[u64], lo: usize, hi: usize, cursor: usize) -> Option<usize> {
    let cursor = cursor.clamp(lo, hi);
    first_zero(words, cursor, hi).or_else(|| first_zero(words, lo, cursor))
}

/// First zero bit in `[from, to)`, scanning a word (64 offsets) at a time and
/// skipping words that are all ones.
fn first_zero(words: &[u64], from: usize, to: usize) -> Option<usize> {
    if from >= to {
        return None;
    }
    let last = (to - 1) / WORD_BITS;
    let mut index = from / WORD_BITS;
    // Free bits of the first word, ignoring those below `from`.
    let mut free = !words[index] & (u64::MAX << (from % WORD_BITS));
    loop {
        if index == last {
            let used_bits = to - last * WORD_BITS;
            if used_bits < WORD_BITS {
                free &= (1u64 << used_bits) - 1;
            }
            return (free != 0).then(|| index * WORD_BITS + free.trailing_zeros() as usize);
        }
        if free != 0 {
            return Some(index * WORD_BITS + free.trailing_zeros() as usize);
        }
        index += 1;
        free = !words[index];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_zero_respects_both_bounds_within_and_across_words() {
        let words = [u64::MAX, 0b1011, u64::MAX];
        // The only zero below 192 is bit 64 + 2 = 66, plus bits 68..128.
        assert_eq!(first_zero(&words, 0, 192), Some(66));
        assert_eq!(first_zero(&words, 67, 192), Some(68));
        assert_eq!(first_zero(&words, 0, 66), None);
        assert_eq!(first_zero(&words, 128, 192), None);
        assert_eq!(first_zero(&words, 5, 5), None);
    }

    #[test]
    fn find_free_wraps_to_the_start_of_the_band() {
        let words = [0b1111_0111u64];
        // Band [0, 8): cursor at 5 sees 5..8 full, wraps and finds 3.
        assert_eq!(find_free(&words, 0, 8, 5), Some(3));
    }
}
