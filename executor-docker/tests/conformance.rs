//! The core's executor conformance suite (`pipeline_core::testkit`) against the real Docker
//! Engine, in both data modes. Skipped outside CI when the daemon is absent.

mod support;

use std::sync::Arc;

use executor_docker::DataMode;
use pipeline_core::testkit::{self, Harness};

async fn conformance(test: &str, mode: DataMode, reuse: usize, large: u64, read_only: bool) {
    let _cleanup = support::Cleanup(support::owner(test));
    let Some(exec) = support::executor(test, mode).await else {
        return;
    };
    let harness = Harness::new(Arc::new(exec), support::pool(test, 1, |_| {}))
        // A local daemon's container processes are visible in this host's /proc.
        .host_process_checks(true)
        .reuse_datums(reuse)
        .large_output_bytes(large)
        .inputs_read_only(read_only);
    // Bind mode keeps the owner of files written to /pfs/out; archive mode unpacks them as the
    // host process (ownership is not carried over), so the check is bind-only.
    let harness = if mode == DataMode::Bind {
        harness.user_check("nobody", 65534)
    } else {
        harness
    };
    testkit::run_all(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_bind_mode() {
    conformance("conf-bind", DataMode::Bind, 200, 256 << 20, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_archive_mode() {
    // Archive mode can only make inputs read-only by file mode, which root ignores (documented).
    conformance("conf-archive", DataMode::Archive, 50, 64 << 20, false).await;
}
