//! Trying a namespace mode once, with a real child, before trusting it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::settings::PfsMode;
use crate::worker::{capture_plan, datum_plan};

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
        std::fs::create_dir_all(scratch.join("out")).map_err(|e| e.to_string())?;
        let (id_base, run_as) = match mode {
            PfsMode::Substitution => return Err("substitution mode needs no probe".into()),
            PfsMode::MountNamespace => (
                Some(crate::settings::next_id_base()),
                Some(crate::user::RunAs {
                    uid: nix::unistd::Uid::from_raw(0),
                    gid: nix::unistd::Gid::from_raw(0),
                }),
            ),
            PfsMode::UserNamespace => (None, None),
        };
        let create =
            capture_plan(mount_point, &scratch, id_base, &[], &[]).map_err(|e| e.to_string())?;
        let mut stack = crate::spawn::Stack::new().map_err(|e| e.to_string())?;
        let ns = crate::spawn::capture_namespace(&create, &mut stack)
            .map_err(|e| format!("making the namespace: {e}"))?;
        let plan =
            datum_plan(Some(&ns), Default::default(), None, run_as).map_err(|e| e.to_string())?;
        let program =
            crate::spawn::Program::new(std::ffi::OsStr::new("true"), [], std::env::vars_os())
                .map_err(|(field, _)| format!("{field} contains a NUL byte"))?;
        let mut child = crate::spawn::spawn(&program, &plan, &mut stack).map_err(|e| match e {
            crate::spawn::SpawnError::Setup(e) | crate::spawn::SpawnError::Exec(e) => e.to_string(),
        })?;
        let status = child.process.wait_blocking().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("probe exited with {status}"))
        }
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
