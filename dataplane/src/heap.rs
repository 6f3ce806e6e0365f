//! Handing freed heap back to the system.
//!
//! A full sync at 10,000 Services allocates tens of MiB of transients (rendered Services, the
//! plan, the encoded batch) that are freed when it ends; glibc's allocator keeps such memory
//! in its arenas, so the agent's RSS stayed ~20 MiB above what it holds (BENCHMARKS.md,
//! "nftables backend"). The `svcplane` binary runs on mimalloc, which returns freed pages by
//! itself; this matters for builds on glibc's allocator (the benchmarks, embedders).

/// Returns the free memory of glibc's heap to the system (`malloc_trim(0)`, glibc only; a
/// no-op elsewhere). Costs a walk of the heap: call it after a full sync, not per change.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            /// glibc, `malloc.h`: releases free memory at the top of the heap and, since
            /// glibc 2.8, free whole pages inside every arena; returns 1 when some was.
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: malloc_trim takes no pointer and only touches the allocator's own
        // state, under its locks; it is safe to call from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}
