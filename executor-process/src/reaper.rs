//! Finding processes a host left behind, by the labels every user process carries.
//!
//! Each user process gets two environment variables, inherited by all its descendants:
//! [`LABEL_VAR`](crate::LABEL_VAR) (`<project>/<pipeline>`) and [`HOST_VAR`](crate::HOST_VAR)
//! (`<host pid>:<host start time>`). `PR_SET_PDEATHSIG` kills a datum's leader when the host
//! dies, but not the leader's children; those are found here, either by pipeline
//! (`Executor::remove_pipeline`) or because their host is gone (when an executor is built).

use std::sync::OnceLock;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `<pid>:<start time in clock ticks since boot>` of this process.
pub(crate) fn host_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}:{}", start_time(pid).unwrap_or(0))
    })
}

/// A fresh value of [`HOST_VAR`](crate::HOST_VAR) for one executor: [`host_id`] and a number
/// of its own.
pub(crate) fn new_instance() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}:{}", host_id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Field 22 of `/proc/<pid>/stat` (start time), parsed after the command name, which may
/// contain spaces and parentheses.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the host named by a `HOST_VAR` value (`pid:start`, and an executor number that
/// does not matter here) is still running.
fn host_alive(id: &str) -> bool {
    let mut parts = id.split(':');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        _ => false,
    }
}

/// Sends SIGKILL to every process but ours whose environment makes `select` return true;
/// returns how many were killed.
fn kill_where(what: &str, select: impl Fn(&[&[u8]]) -> bool) -> usize {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in rd.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Unreadable (gone, or another user's): skip.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if select(&vars)
            && let Ok(raw) = i32::try_from(pid)
            && kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok()
        {
            tracing::info!(pid, what, "process executor: killed a leftover process");
            killed += 1;
        }
    }
    killed
}

fn value<'a>(vars: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    vars.iter().find_map(|kv| {
        kv.strip_prefix(name.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"="))
    })
}

/// Kills every process labelled `<project>/<pipeline>` that executor `host` started, or
/// that a host no longer running left behind.
pub(crate) fn kill_pipeline(label: &str, host: &str) -> usize {
    kill_where(label, |vars| {
        value(vars, crate::LABEL_VAR) == Some(label.as_bytes())
            && value(vars, crate::HOST_VAR).is_some_and(|h| h == host.as_bytes() || host_gone(h))
    })
}

/// Kills every labelled process whose host is no longer running.
pub(crate) fn reap_orphans() -> usize {
    kill_where("orphan of a dead host", |vars| {
        value(vars, crate::HOST_VAR).is_some_and(host_gone)
    })
}

/// Whether a `HOST_VAR` value names a host that is no longer running.
fn host_gone(host: &[u8]) -> bool {
    !std::str::from_utf8(host).is_ok_and(host_alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_host_is_alive_and_made_up_ones_are_not() {
        assert!(host_alive(host_id()));
        let (pid, start) = host_id().split_once(':').expect("pid:start");
        let start: u64 = start.parse().expect("start");
        assert!(
            !host_alive(&format!("{pid}:{}", start + 1)),
            "pid reused by another process"
        );
        assert!(!host_alive("999999999:1"));
        assert!(!host_alive("garbage"));
    }

    #[test]
    fn values_are_matched_by_exact_name() {
        let vars: Vec<&[u8]> = vec![b"AB=1", b"A=2", b"A"];
        assert_eq!(value(&vars, "A"), Some(&b"2"[..]));
        assert_eq!(value(&vars, "AB"), Some(&b"1"[..]));
        assert_eq!(value(&vars, "B"), None);
    }
}
