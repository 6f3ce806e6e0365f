//! The process's allocator: mimalloc, and how soon it gives freed memory back.

/// mimalloc instead of glibc malloc: the API server allocates many small JSON values per
/// request, and glibc's per-thread arenas fragment under that load (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in mimalloc's `mi_option_t` (`include/mimalloc.h`, the
/// same in its v2 and v3 enums); libmimalloc-sys declares `mi_option_set` but names no
/// constant for this option.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc return freed pages to the system at once instead of after its purge delay
/// (1 s in the mimalloc v3 that libmimalloc-sys builds). For the node agent: a sync at
/// 10,000 Services allocates and frees tens of MiB within seconds, and with the delay
/// freed and newly touched pages add up — its peak RSS was ~150 MiB with the delay and
/// ~129 MiB without (BENCHMARKS.md, "Agent RSS"); the cost is an `madvise` per freed span,
/// which an agent that syncs at most once per `--min-sync-period` does not notice.
pub fn return_freed_memory_at_once() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; the purge
    // delay is read afresh on every purge decision, so setting it while allocating is fine.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}
