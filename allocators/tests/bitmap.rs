//! Behaviour of the band-aware range bitmap (upstream `allocator.AllocationBitmap`
//! with `randomScanStrategyWithOffset`).

use svcplane_allocators::{Error, RangeBitmap};

#[test]
fn dynamic_allocation_fills_the_upper_band_before_the_static_band() {
    let mut bitmap = RangeBitmap::new(40, 16).unwrap();
    let first: Vec<usize> = (0..24).map(|_| bitmap.allocate_next().unwrap()).collect();
    assert!(first.iter().all(|offset| *offset >= 16), "{first:?}");
    assert_eq!(bitmap.used_in_dynamic_band(), 24);
    assert_eq!(bitmap.used_in_static_band(), 0);
    let fallback: Vec<usize> = (0..16).map(|_| bitmap.allocate_next().unwrap()).collect();
    assert!(fallback.iter().all(|offset| *offset < 16), "{fallback:?}");
    assert!(matches!(
        bitmap.allocate_next(),
        Err(Error::RangeFull { .. })
    ));
}

#[test]
fn every_offset_is_handed_out_exactly_once_until_full() {
    let mut bitmap = RangeBitmap::new(1000, 62).unwrap();
    let mut seen = vec![false; 1000];
    for _ in 0..1000 {
        let offset = bitmap.allocate_next().unwrap();
        assert!(!seen[offset], "offset {offset} handed out twice");
        seen[offset] = true;
    }
    assert_eq!(bitmap.free(), 0);
    assert!(matches!(
        bitmap.allocate_next(),
        Err(Error::RangeFull { .. })
    ));
}

#[test]
fn static_allocation_may_use_either_band_and_is_skipped_by_dynamic_allocation() {
    let mut bitmap = RangeBitmap::new(20, 16).unwrap();
    bitmap.allocate(3).unwrap();
    bitmap.allocate(17).unwrap();
    assert_eq!(bitmap.used_in_static_band(), 1);
    assert_eq!(bitmap.used_in_dynamic_band(), 1);
    let next: Vec<usize> = (0..7).map(|_| bitmap.allocate_next().unwrap()).collect();
    // Upper band 16..20 without 17, then the static band from 0 without 3.
    assert_eq!(next, vec![16, 18, 19, 0, 1, 2, 4]);
}

#[test]
fn allocating_a_taken_or_out_of_range_offset_is_a_typed_error() {
    let mut bitmap = RangeBitmap::new(10, 0).unwrap();
    bitmap.allocate(9).unwrap();
    assert!(matches!(
        bitmap.allocate(9),
        Err(Error::AlreadyAllocated { .. })
    ));
    assert!(matches!(bitmap.allocate(10), Err(Error::NotInRange { .. })));
    assert!(matches!(bitmap.release(10), Err(Error::NotInRange { .. })));
}

#[test]
fn release_makes_an_offset_reusable_and_is_idempotent() {
    let mut bitmap = RangeBitmap::new(2, 0).unwrap();
    let a = bitmap.allocate_next().unwrap();
    let b = bitmap.allocate_next().unwrap();
    assert!(bitmap.allocate_next().is_err());
    assert!(bitmap.release(a).unwrap());
    assert!(
        !bitmap.release(a).unwrap(),
        "second release reports nothing freed"
    );
    assert!(!bitmap.contains(a));
    assert_eq!(bitmap.allocate_next().unwrap(), a);
    assert!(bitmap.contains(b));
}

#[test]
fn dynamic_cursor_does_not_hand_a_released_value_straight_back() {
    let mut bitmap = RangeBitmap::new(100, 0).unwrap();
    let first = bitmap.allocate_next().unwrap();
    bitmap.release(first).unwrap();
    let second = bitmap.allocate_next().unwrap();
    assert_ne!(first, second);
}

#[test]
fn band_larger_than_the_range_is_refused() {
    assert!(matches!(
        RangeBitmap::new(8, 9),
        Err(Error::InvalidRange { .. })
    ));
}

#[test]
fn empty_bitmap_is_always_full() {
    let mut bitmap = RangeBitmap::new(0, 0).unwrap();
    assert!(matches!(
        bitmap.allocate_next(),
        Err(Error::RangeFull { .. })
    ));
    assert_eq!(bitmap.free(), 0);
}

#[test]
fn iter_lists_allocated_offsets_in_order() {
    let mut bitmap = RangeBitmap::new(200, 16).unwrap();
    for offset in [150, 3, 64, 65, 199] {
        bitmap.allocate(offset).unwrap();
    }
    assert_eq!(bitmap.iter().collect::<Vec<_>>(), vec![3, 64, 65, 150, 199]);
}

#[test]
fn snapshot_round_trips_bits_counts_and_band() {
    let mut bitmap = RangeBitmap::new(130, 16).unwrap();
    for offset in [0, 15, 16, 63, 64, 129] {
        bitmap.allocate(offset).unwrap();
    }
    let restored = RangeBitmap::from_bytes(&bitmap.to_bytes()).unwrap();
    assert_eq!(
        restored.iter().collect::<Vec<_>>(),
        vec![0, 15, 16, 63, 64, 129]
    );
    assert_eq!(restored.size(), 130);
    assert_eq!(restored.static_band_size(), 16);
    assert_eq!(restored.used_in_static_band(), 2);
    assert_eq!(restored.used_in_dynamic_band(), 4);
}

#[test]
fn corrupt_snapshots_are_refused() {
    let mut bitmap = RangeBitmap::new(70, 16).unwrap();
    bitmap.allocate(5).unwrap();
    let good = bitmap.to_bytes();

    let truncated = &good[..good.len() - 1];
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut bad_version = good.clone();
    bad_version[4] = 9;
    let mut band_over_size = good.clone();
    band_over_size[16..24].copy_from_slice(&71u64.to_le_bytes());
    let mut bit_beyond_size = good.clone();
    let last = bit_beyond_size.len() - 1;
    bit_beyond_size[last] |= 0x80; // bit 127 of a 70-offset bitmap

    for (name, bytes) in [
        ("empty", &[][..]),
        ("truncated", truncated),
        ("bad magic", &bad_magic[..]),
        ("bad version", &bad_version[..]),
        ("band over size", &band_over_size[..]),
        ("bit beyond size", &bit_beyond_size[..]),
    ] {
        assert!(
            matches!(
                RangeBitmap::from_bytes(bytes),
                Err(Error::InvalidSnapshot { .. })
            ),
            "{name} was accepted"
        );
    }
}

#[test]
fn memory_is_one_bit_per_offset_plus_a_small_constant() {
    let size = 1 << 20;
    let bitmap = RangeBitmap::new(size, 256).unwrap();
    let constant = std::mem::size_of::<RangeBitmap>();
    assert!(constant <= 128, "struct is {constant} bytes");
    assert_eq!(bitmap.memory_bytes(), size / 8 + constant);
}

#[test]
fn allocation_stays_correct_when_only_one_offset_is_free_far_from_the_cursor() {
    let size = 1 << 16;
    let mut bitmap = RangeBitmap::new(size, 256).unwrap();
    for _ in 0..size {
        bitmap.allocate_next().unwrap();
    }
    bitmap.release(300).unwrap();
    assert_eq!(bitmap.allocate_next().unwrap(), 300);
    bitmap.release(7).unwrap();
    assert_eq!(bitmap.allocate_next().unwrap(), 7);
}
