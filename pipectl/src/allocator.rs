//! The allocator setting of the `pipectl` process.
//!
//! glibc's malloc gives each thread that allocates an arena of its own, up to eight per core,
//! and keeps what those arenas freed instead of returning it to the system. The engine's
//! threads (planner, workers, the blocking pool's commit threads) each take one, so a long job
//! grew its resident memory with the number of datums although its live heap stayed flat
//! (50-78 MB, `heaptrack`). Peak RSS of a null job (`benches/README.md`, "Engine per datum"):
//! 1,000,000 datums, 229 MiB with two arenas, 155 MiB with one; 100,000 datums on one core,
//! 118-128 MiB with two, 85-87 MiB with one, at the same time per datum (within noise).
//!
//! `MALLOC_ARENA_MAX` in the environment still wins (glibc reads it before `main`; this only
//! applies when it is unset). Embedders that want the same set it themselves.

/// Limits glibc's malloc to one arena unless `MALLOC_ARENA_MAX` is set. Call first in `main`,
/// before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
