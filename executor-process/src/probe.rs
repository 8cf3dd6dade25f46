//! Trying a namespace mode once, with a real child, before trusting it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::executor::PfsMode;
use crate::worker::{containing_mount, plan_for};

/// Runs `true` in a throw-away scratch directory with `mode`'s child setup.
pub(crate) fn probe(mode: PfsMode, mount_point: &Path) -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let scratch = std::env::temp_dir().join(format!(
        "executor-process-probe-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(scratch.join("in")).map_err(|e| e.to_string())?;
    let result = (|| {
        let plan = plan_for(
            mode,
            mount_point,
            &containing_mount(mount_point),
            &scratch,
            &["in".to_owned()],
            None,
            None,
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new("true");
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        crate::child::install(&mut cmd, plan);
        let status = cmd.status().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("probe exited with {status}"))
        }
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
