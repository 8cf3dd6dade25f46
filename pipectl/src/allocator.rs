//! The allocator setting of the `pipectl` process.
//!
//! glibc's malloc gives each thread that allocates an arena of its own, up to eight per core,
//! and keeps what those arenas freed instead of returning it to the system. The engine's
//! threads (planner, workers, the blocking pool's commit threads) each take one, so a long job
//! grew its resident memory with the number of datums although its live heap stayed flat:
//! a null job of 1,000,000 datums peaked at 213 MiB with the default and at 144 MiB with two
//! arenas (`benches/README.md`, "Memory"). Two arenas cost nothing measurable per datum there.
//!
//! `MALLOC_ARENA_MAX` in the environment still wins (glibc reads it before `main`; this only
//! applies when it is unset). Embedders that want the same set it themselves.

/// Limits glibc's malloc to two arenas unless `MALLOC_ARENA_MAX` is set. Call first in `main`,
/// before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; called before other threads exist.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
