//! Telling an out-of-memory kill from a plain `kill -9`: the container memory cgroup's
//! `oom_kill` counter, which the kernel increments before it delivers the SIGKILL.
//!
//! Where the counter is read from:
//!
//! - **the host**, when the daemon runs on this machine (bind mode) and the container's main
//!   process is visible here: its `/proc/<pid>/cgroup` names the memory cgroup (accepted only
//!   if the path holds the container's ID), whose `memory.oom_control` (cgroup v1) or
//!   `memory.events` (v2) is then read directly, after every datum (microseconds);
//! - else **a root exec** in the container (`cat` of the same files, which Docker mounts as
//!   the container's own cgroup), only after a datum that failed (an exec costs about 50 ms).

use std::path::{Path, PathBuf};

/// Prints the container memory cgroup's counters (cgroup v2, else v1), from inside it.
pub(crate) const COUNTER_SCRIPT: &str = "cat /sys/fs/cgroup/memory.events 2>/dev/null || cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null; exit 0";

/// The `oom_kill N` line of `memory.events` (v2) or `memory.oom_control` (v1).
pub(crate) fn oom_kill_count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// The host file with the OOM counter of container `id` whose main process is `pid` here, if
/// it can be found (see the module docs).
pub(crate) fn host_counter_file(pid: i64, id: &str) -> Option<PathBuf> {
    if pid <= 0 || id.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    counter_file_in(&text, id, Path::new("/sys/fs/cgroup"))
}

/// The counter file named by a `/proc/<pid>/cgroup` listing, under cgroup mount `root`.
fn counter_file_in(listing: &str, id: &str, root: &Path) -> Option<PathBuf> {
    listing.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if !path.contains(id) {
            return None;
        }
        let rel = path.trim_start_matches('/');
        let file = if controllers.split(',').any(|c| c == "memory") {
            root.join("memory").join(rel).join("memory.oom_control")
        } else if controllers.is_empty() {
            root.join(rel).join("memory.events")
        } else {
            return None;
        };
        file.is_file().then_some(file)
    })
}

/// Reads the counter from a host file.
pub(crate) fn read_host_counter(file: &Path) -> Option<u64> {
    oom_kill_count(&std::fs::read_to_string(file).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_counters_of_both_cgroup_versions() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(oom_kill_count(v1), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kill_count(v2), Some(2));
        assert_eq!(oom_kill_count(""), None);
        assert_eq!(oom_kill_count("oom_kill x\n"), None);
    }

    #[test]
    fn the_counter_file_of_v1_and_v2_listings() {
        let root = tempfile::tempdir().unwrap();
        let id = "abc123";
        let v1 = root.path().join("memory/docker/abc123");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.oom_control"), "oom_kill 0\n").unwrap();
        let listing = "4:memory:/docker/abc123\n0::/docker/abc123\n";
        assert_eq!(
            counter_file_in(listing, id, root.path()),
            Some(v1.join("memory.oom_control"))
        );
        let v2 = root.path().join("system.slice/docker-abc123.scope");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.events"), "oom_kill 0\n").unwrap();
        let listing = "0::/system.slice/docker-abc123.scope\n";
        assert_eq!(
            counter_file_in(listing, id, root.path()),
            Some(v2.join("memory.events"))
        );
        // Another container's cgroup (a reused PID) is never taken.
        assert_eq!(
            counter_file_in("4:memory:/docker/zzz\n", id, root.path()),
            None
        );
    }
}
