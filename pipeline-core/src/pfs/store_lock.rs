//! The embedded store's one-process lock (`root/LOCK`): an advisory file lock naming its
//! holder (`pid N on host H`), and a process-wide set of the roots this process has open,
//! so a second open from the same process fails at once instead of waiting out the grace
//! period meant for a holder that is on its way out.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::{PfsError, Result};

const LOCK_FILE: &str = "LOCK";

/// How long [`StoreLock::take`] waits for the last processes of a holder that is gone (or
/// for this process's children to close a lock this process released).
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Roots (as opened) this process holds the lock of.
static OPEN_ROOTS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The held lock of one store directory; released (file closed, root forgotten) on drop.
pub(crate) struct StoreLock {
    _file: File,
    root: PathBuf,
}

impl StoreLock {
    /// Takes the lock of the store in `root`, or reports [`PfsError::Locked`] naming the
    /// holder.
    #[cfg_attr(not(feature = "store-redb"), allow(dead_code))]
    pub(crate) fn take(root: &Path) -> Result<StoreLock> {
        let key = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let host = fs::read_to_string("/etc/hostname").unwrap_or_default();
        let me = format!("pid {} on host {}", std::process::id(), host.trim());
        if !remember(&key) {
            return Err(PfsError::Locked {
                root: root.to_path_buf(),
                holder: format!("{me} (this process has it open: clone the Store to share it)"),
            });
        }
        match lock_file(root, host.trim(), &me) {
            Ok(file) => Ok(StoreLock {
                _file: file,
                root: key,
            }),
            Err(e) => {
                forget(&key);
                Err(e)
            }
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        forget(&self.root);
    }
}

/// Adds `root` to the open set; false when it is there already.
fn remember(root: &Path) -> bool {
    let mut open = OPEN_ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    open.get_or_insert_with(HashSet::new)
        .insert(root.to_path_buf())
}

fn forget(root: &Path) {
    let mut open = OPEN_ROOTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(open) = open.as_mut() {
        open.remove(root);
    }
}

fn lock_file(root: &Path, host: &str, me: &str) -> Result<File> {
    let path = root.join(LOCK_FILE);
    let (mut f, _) = super::private::private_file(&path)?;
    let started = std::time::Instant::now();
    loop {
        match f.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {
                // Read afresh each time round (a read through `f` would go on from where the
                // last one ended, and find nothing).
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim().to_string();
                // A holder that died moments ago may still have children on their way out
                // (killed with it) that share the lock: wait for them, briefly. So does a
                // store this process closed while a child it forked meanwhile (an executor
                // starting a worker) still has the lock's descriptor, until it closes it.
                let passing = holder_is_gone(&holder, host) || holder == me;
                if passing && started.elapsed() < LOCK_GRACE {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                return Err(PfsError::Locked {
                    root: root.to_path_buf(),
                    holder: if holder.is_empty() {
                        "unknown holder".into()
                    } else {
                        holder
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(PfsError::io(&path, e)),
        }
    }
    f.set_len(0).map_err(|e| PfsError::io(&path, e))?;
    write!(f, "{me}")
        .and_then(|_| f.flush())
        .map_err(|e| PfsError::io(&path, e))?;
    Ok(f)
}

/// Whether the lock file's `pid N on host H` names a process of this host that no longer
/// runs (its children, killed with it, may hold the lock for a few milliseconds more).
fn holder_is_gone(holder: &str, host: &str) -> bool {
    let mut words = holder.split_whitespace();
    let (Some("pid"), Some(pid), Some("on"), Some("host")) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    if words.next().unwrap_or("") != host {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    // Gone: no `/proc/PID` (reaped), or a zombie (`State: Z`) or dead (`X`) process. A pid
    // reused by a live process reads as running: the lock is then reported, never stolen.
    match fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|state| state.trim_start().starts_with(['Z', 'X'])),
    }
}

#[cfg(test)]
mod tests {
    use super::holder_is_gone;

    #[test]
    fn a_holder_is_gone_only_when_its_process_on_this_host_has_ended() {
        let me = format!("pid {} on host h", std::process::id());
        assert!(!holder_is_gone(&me, "h"), "we are running");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = format!("pid {} on host h", child.id());
        child.wait().unwrap();
        assert!(holder_is_gone(&dead, "h"));
        assert!(
            !holder_is_gone(&dead, "other-host"),
            "another host's pid says nothing"
        );
        assert!(!holder_is_gone("unknown holder", "h"));
        assert!(!holder_is_gone("pid x on host h", "h"));
    }
}
