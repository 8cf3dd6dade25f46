//! A cgroup per worker: every process a datum starts is in it, so all of them can be killed
//! when the datum ends, and the pipeline's `resource_limits` / `resource_requests` apply to
//! them.
//!
//! Both cgroup versions, and the hybrid layout (v1 controllers plus an empty v2 `unified`
//! hierarchy, as on this project's CI):
//! - **killing**: v2 `cgroup.kill` wherever a v2 hierarchy is mounted (it needs no
//!   controller); else the v1 freezer (freeze, `SIGKILL` every member, thaw); else, with
//!   neither, `SIGKILL` to the members of another hierarchy's cgroup until it is empty;
//! - **limits**: each controller (`memory`, `pids`, `cpu`) from v2 when the v2 hierarchy
//!   offers it, else from its v1 hierarchy.
//!
//! Cgroups are made under the host process's own cgroup of each hierarchy
//! (`<own>/executor-process-<pid>/<pipeline>-<worker>`), so limits set on the host also
//! bound its workers.
//!
//! This module writes the few cgroup files itself rather than use `cgroups-rs`: a datum's
//! child joins its cgroups between `clone` and `execve`, while sharing the host's memory,
//! where it may only write to descriptors opened beforehand (no allocation, no locks); the
//! crate's API opens and formats on each call. Everything else is a handful of file writes.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pipeline_core::spec::Resources;

use crate::child::CgroupJoin;

/// How long ending a datum may wait for its processes to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The v1 controllers used.
const V1_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "freezer"];

/// Where this host process can make cgroups (found once, when the executor is built).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CgroupRoot {
    /// Base directory in the v2 hierarchy, when one is mounted and writable.
    pub(crate) v2: Option<PathBuf>,
    /// Controllers enabled for the children of `v2`'s base.
    pub(crate) v2_controllers: Vec<String>,
    /// Base directory per v1 controller that is mounted and writable.
    pub(crate) v1: Vec<(&'static str, PathBuf)>,
}

/// How a worker's processes are killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMethod {
    /// v2 `cgroup.kill`.
    CgroupKill,
    /// v1 freezer: freeze, kill every member, thaw.
    Freezer,
    /// Kill the members of a cgroup until it is empty (no freezer: a process forking fast
    /// enough could in theory race it; bounded by the pids limit).
    KillMembers,
}

impl CgroupRoot {
    /// Finds and prepares the hierarchies (`/proc/self/mountinfo`, `/proc/self/cgroup`);
    /// `Err` says why no cgroup can be used.
    pub(crate) fn detect() -> Result<CgroupRoot, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
        let name = format!("executor-process-{}", std::process::id());
        let mut root = CgroupRoot::default();
        let mut errors = Vec::new();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split(' ').nth(4).unwrap_or("");
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or("");
            let options = right.nth(1).unwrap_or("");
            match fstype {
                "cgroup2" if root.v2.is_none() => {
                    let base = own_path(&own, |c| c.is_empty()).map(|p| {
                        Path::new(mount_point)
                            .join(p.trim_start_matches('/'))
                            .join(&name)
                    });
                    match base.map(|b| prepare_v2(&b).map(|c| (b, c))) {
                        Some(Ok((b, controllers))) => {
                            root.v2 = Some(b);
                            root.v2_controllers = controllers;
                        }
                        Some(Err(e)) => errors.push(format!("v2 at {mount_point}: {e}")),
                        None => {}
                    }
                }
                "cgroup" => {
                    for ctrl in V1_CONTROLLERS {
                        if !options.split(',').any(|o| o == ctrl)
                            || root.v1.iter().any(|(c, _)| *c == ctrl)
                        {
                            continue;
                        }
                        let Some(p) = own_path(&own, |c| c.split(',').any(|x| x == ctrl)) else {
                            continue;
                        };
                        let base = Path::new(mount_point)
                            .join(p.trim_start_matches('/'))
                            .join(&name);
                        match std::fs::create_dir_all(&base) {
                            Ok(()) => root.v1.push((ctrl, base)),
                            Err(e) => errors.push(format!("{ctrl} at {}: {e}", base.display())),
                        }
                    }
                }
                _ => {}
            }
        }
        if root.v2.is_none() && root.v1.is_empty() {
            return Err(if errors.is_empty() {
                "no cgroup hierarchy is mounted".into()
            } else {
                errors.join("; ")
            });
        }
        Ok(root)
    }

    /// Kills what hosts that are no longer running left in their cgroups (found by name,
    /// `executor-process-<pid>`, beside ours) and removes those cgroups; returns how many
    /// processes were killed.
    pub(crate) fn reap_stale(&self) -> usize {
        let mut killed = 0;
        let bases = self.v2.iter().chain(self.v1.iter().map(|(_, b)| b));
        for base in bases {
            let Some(parent) = base.parent() else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("executor-process-"))
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
                killed += remove_tree(&entry.path());
            }
        }
        killed
    }

    /// How processes are killed with this root.
    pub(crate) fn kill_method(&self) -> KillMethod {
        if self.v2.is_some() {
            KillMethod::CgroupKill
        } else if self.v1.iter().any(|(c, _)| *c == "freezer") {
            KillMethod::Freezer
        } else {
            KillMethod::KillMembers
        }
    }

    /// Whether `controller` can be limited (from v2 or v1).
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.v2_controllers.iter().any(|c| c == controller)
            || self.v1.iter().any(|(c, _)| *c == controller)
    }

    /// Makes the cgroups of one worker (`name` must be unique among this host's workers),
    /// with `resources` applied.
    pub(crate) fn worker(&self, name: &str, resources: &Resources) -> io::Result<WorkerCgroup> {
        let mut cg = WorkerCgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
            v2_dir: None,
            kill_dir: None,
            kill: self.kill_method(),
            memory: None,
            killed: AtomicBool::new(false),
            known_empty: AtomicBool::new(false),
            resources: *resources,
            v2_controllers: self.v2_controllers.clone(),
        };
        let v2_has = |c: &str| self.v2_controllers.iter().any(|x| x == c);
        if let Some(base) = &self.v2 {
            let dir = base.join(name);
            cg.add(&dir)?;
            cg.v2_dir = Some(open_dir(&dir)?);
            cg.kill_dir = Some(dir.clone());
            if !dir.join("cgroup.kill").exists() {
                cg.kill = KillMethod::KillMembers; // Linux before 5.14
            }
            apply_v2(&dir, resources, &v2_has)?;
            if v2_has("memory") {
                cg.memory = Some(Memory::V2(dir));
            }
        }
        for (i, (ctrl, base)) in self.v1.iter().enumerate() {
            // A v1 controller is joined only when it is needed: to kill (freezer; or, with
            // neither v2 nor a freezer, the first hierarchy) or for a limit the pipeline sets.
            // Every join is a cgroup migration per datum, and a cpu cgroup changes scheduling.
            let needed = match *ctrl {
                "freezer" => cg.kill == KillMethod::Freezer,
                _ if v2_has(ctrl) => false,
                _ if cg.kill == KillMethod::KillMembers && self.v2.is_none() && i == 0 => true,
                c => asks_for(c, resources),
            };
            if !needed {
                continue;
            }
            let dir = base.join(name);
            cg.add(&dir)?;
            apply_v1(ctrl, &dir, resources)?;
            match *ctrl {
                "memory" => cg.memory = Some(Memory::V1(dir.clone())),
                "freezer" if cg.kill == KillMethod::Freezer => cg.kill_dir = Some(dir.clone()),
                _ => {}
            }
            if cg.kill_dir.is_none() {
                cg.kill_dir = Some(dir);
            }
        }
        Ok(cg)
    }
}

/// Makes the cgroup `dir` (or takes the one there) and opens its `cgroup.procs`.
fn create_cgroup(dir: &Path) -> io::Result<OwnedFd> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("making {}: {e}", dir.display()),
            ));
        }
    }
    let procs = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("cgroup.procs"))?;
    Ok(procs.into())
}

/// A cgroup directory opened for `clone3`'s `CLONE_INTO_CGROUP`.
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", dir.display())))?;
    Ok(file.into())
}

/// Whether `resources` set anything controller `ctrl` enforces.
fn asks_for(ctrl: &str, r: &Resources) -> bool {
    match ctrl {
        "memory" => r.limits.memory_bytes.is_some() || r.requests.memory_bytes.is_some(),
        "pids" => r.limits.pids.is_some(),
        "cpu" => r.limits.cpu.is_some() || r.requests.cpu.is_some(),
        _ => false,
    }
}

/// The path of our own cgroup in the hierarchy whose controller list matches `select`.
fn own_path(own: &str, select: impl Fn(&str) -> bool) -> Option<&str> {
    own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        select(ctrls).then_some(path)
    })
}

/// Makes the v2 base and enables what it can of `memory`, `pids`, `cpu` for its children;
/// returns the enabled controllers.
fn prepare_v2(base: &Path) -> io::Result<Vec<String>> {
    std::fs::create_dir_all(base)?;
    // Our own cgroup must delegate the controllers to the base first; that fails when it
    // holds processes and is not the root (the "no internal processes" rule): then the base
    // only kills, and limits come from v1 when mounted.
    if let Some(parent) = base.parent() {
        for c in ["memory", "pids", "cpu"] {
            let _ = std::fs::write(parent.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
    let available = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let mut enabled = Vec::new();
    for c in ["memory", "pids", "cpu"] {
        if available.split_whitespace().any(|a| a == c)
            && std::fs::write(base.join("cgroup.subtree_control"), format!("+{c}")).is_ok()
        {
            enabled.push(c.to_string());
        }
    }
    Ok(enabled)
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value:?} to {}: {e}", dir.join(file).display()),
        )
    })
}

/// `cpu.shares` (v1) for a CPU request, as Kubernetes converts it.
fn shares(cpu: f64) -> u64 {
    ((cpu * 1024.0).round() as u64).max(2)
}

/// CFS quota in µs per 100 ms period for a CPU limit (at least 1 ms).
fn quota(cpu: f64) -> u64 {
    ((cpu * 100_000.0).round() as u64).max(1000)
}

fn apply_v2(dir: &Path, r: &Resources, has: &dyn Fn(&str) -> bool) -> io::Result<()> {
    if has("memory") {
        if let Some(m) = r.limits.memory_bytes {
            write(dir, "memory.max", &m.to_string())?;
            if dir.join("memory.swap.max").exists() {
                write(dir, "memory.swap.max", "0")?;
            }
        }
        if let Some(m) = r.requests.memory_bytes {
            write(dir, "memory.low", &m.to_string())?;
        }
    }
    if has("pids")
        && let Some(p) = r.limits.pids
    {
        write(dir, "pids.max", &p.to_string())?;
    }
    if has("cpu") {
        if let Some(c) = r.limits.cpu {
            write(dir, "cpu.max", &format!("{} 100000", quota(c)))?;
        }
        if let Some(c) = r.requests.cpu {
            // The kernel's own conversion from shares (2..262144) to weight (1..10000).
            let weight = 1 + (shares(c).clamp(2, 262_144) - 2) * 9999 / 262_142;
            write(dir, "cpu.weight", &weight.to_string())?;
        }
    }
    Ok(())
}

fn apply_v1(ctrl: &str, dir: &Path, r: &Resources) -> io::Result<()> {
    match ctrl {
        "memory" => {
            if let Some(m) = r.limits.memory_bytes {
                write(dir, "memory.limit_in_bytes", &m.to_string())?;
                // No swap beyond the limit (the file exists when swap accounting is on).
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    write(dir, "memory.memsw.limit_in_bytes", &m.to_string())?;
                }
            }
            if let Some(m) = r.requests.memory_bytes {
                write(dir, "memory.soft_limit_in_bytes", &m.to_string())?;
            }
        }
        "pids" => {
            if let Some(p) = r.limits.pids {
                write(dir, "pids.max", &p.to_string())?;
            }
        }
        "cpu" => {
            if let Some(c) = r.limits.cpu {
                write(dir, "cpu.cfs_period_us", "100000")?;
                write(dir, "cpu.cfs_quota_us", &quota(c).to_string())?;
            }
            if let Some(c) = r.requests.cpu {
                write(dir, "cpu.shares", &shares(c).to_string())?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where the out-of-memory kill count is read.
#[derive(Debug)]
enum Memory {
    /// `memory.events`, `oom_kill` line.
    V2(PathBuf),
    /// `memory.oom_control`, `oom_kill` line.
    V1(PathBuf),
}

/// One worker's cgroups: joined by each datum's child, emptied when the datum ends, removed
/// when the worker is dropped.
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each cgroup, in the order of `dirs` (the v2 one first).
    procs: Vec<OwnedFd>,
    /// The v2 cgroup's directory, for creating children in it (`None`: children join by
    /// writing `cgroup.procs`).
    v2_dir: Option<OwnedFd>,
    kill_dir: Option<PathBuf>,
    kill: KillMethod,
    memory: Option<Memory>,
    /// `cgroup.kill` was written since the v2 cgroup was made. On Linux 6.18 (seen on this
    /// project's machines) a process created *into* a cgroup after that is killed at once,
    /// so [`WorkerCgroup::renew_after_kill`] makes the cgroup anew before the next datum.
    killed: AtomicBool,
    /// The cgroup was found empty by [`WorkerCgroup::kill_all`] and no child joined it
    /// since ([`WorkerCgroup::join`] clears it): nothing can be in it (a process only gets
    /// into a cgroup from inside it or by writing its `cgroup.procs`, which user code
    /// cannot), so the next `kill_all` need not look. Saves reading `cgroup.events` before
    /// every datum after the last one's was read at its end.
    known_empty: AtomicBool,
    /// What a renewed v2 cgroup gets again: the limits, and the controllers v2 offers.
    resources: Resources,
    v2_controllers: Vec<String>,
}

impl WorkerCgroup {
    fn add(&mut self, dir: &Path) -> io::Result<()> {
        let procs = create_cgroup(dir)?;
        self.dirs.push(dir.to_path_buf());
        self.procs.push(procs);
        Ok(())
    }

    /// Makes the v2 cgroup anew (same path, limits applied again) if it was killed since it
    /// was made, so that children can still be created in it. Where the old one cannot be
    /// removed, children join it by writing `cgroup.procs` from then on.
    pub(crate) fn renew_after_kill(&mut self) -> io::Result<()> {
        if !self.killed.swap(false, Ordering::Relaxed) || self.v2_dir.is_none() {
            return Ok(());
        }
        let Some(dir) = self.kill_dir.clone() else {
            return Ok(());
        };
        self.v2_dir = None;
        if let Err(e) = std::fs::remove_dir(&dir) {
            tracing::debug!("keeping {} ({e}); datums join it by pid", dir.display());
            return Ok(());
        }
        let procs = create_cgroup(&dir)?;
        let v2_has = |c: &str| self.v2_controllers.iter().any(|x| x == c);
        apply_v2(&dir, &self.resources, &v2_has)?;
        self.procs[0] = procs;
        self.v2_dir = Some(open_dir(&dir)?);
        Ok(())
    }

    /// How a datum's child joins these cgroups (descriptors the worker keeps open).
    pub(crate) fn join(&self) -> CgroupJoin {
        self.known_empty.store(false, Ordering::Relaxed);
        let mut procs = self.procs.iter().map(AsRawFd::as_raw_fd);
        let v2 = self
            .v2_dir
            .as_ref()
            .and_then(|dir| Some((dir.as_raw_fd(), procs.next()?)));
        CgroupJoin {
            v2,
            // Without the v2 directory, its `cgroup.procs` (first) is written like the rest.
            procs_to_write: procs.collect(),
        }
    }

    /// The out-of-memory kills so far (`None` without a memory controller).
    pub(crate) fn oom_kills(&self) -> Option<u64> {
        let (dir, file) = match self.memory.as_ref()? {
            Memory::V2(d) => (d, "memory.events"),
            Memory::V1(d) => (d, "memory.oom_control"),
        };
        let text = std::fs::read_to_string(dir.join(file)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Whether any process is left in the worker's cgroup.
    fn populated(&self) -> io::Result<bool> {
        let Some(dir) = &self.kill_dir else {
            return Ok(false);
        };
        if self.kill == KillMethod::CgroupKill {
            let events = std::fs::read_to_string(dir.join("cgroup.events"))?;
            return Ok(events.lines().any(|l| l.trim() == "populated 1"));
        }
        Ok(!std::fs::read_to_string(dir.join("cgroup.procs"))?
            .trim()
            .is_empty())
    }

    /// Kills every process in the worker's cgroup and waits (up to a few seconds) until it
    /// is empty.
    pub(crate) async fn kill_all(&self) -> io::Result<()> {
        let Some(dir) = &self.kill_dir else {
            return Ok(());
        };
        if self.known_empty.load(Ordering::Relaxed) {
            return Ok(());
        }
        if !self.populated()? {
            self.known_empty.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let deadline = std::time::Instant::now() + KILL_WAIT;
        let pause = Duration::from_micros(500);
        loop {
            match self.kill {
                KillMethod::CgroupKill => {
                    self.killed.store(true, Ordering::Relaxed);
                    write(dir, "cgroup.kill", "1")?;
                }
                KillMethod::Freezer => freeze_and_kill(dir, deadline).await?,
                KillMethod::KillMembers => kill_members(dir)?,
            }
            tokio::time::sleep(pause).await;
            if !self.populated()? {
                self.known_empty.store(true, Ordering::Relaxed);
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("processes left in {} after killing them", dir.display()),
                ));
            }
        }
    }

    /// Kills what is left, synchronously (for `Drop`), then removes the cgroups.
    fn remove(&mut self) {
        self.procs.clear();
        self.v2_dir = None;
        if let Some(dir) = &self.kill_dir {
            for _ in 0..200 {
                let _ = match self.kill {
                    KillMethod::CgroupKill => write(dir, "cgroup.kill", "1"),
                    KillMethod::Freezer | KillMethod::KillMembers => kill_members(dir),
                };
                if !self.populated().unwrap_or(false) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if self.kill == KillMethod::Freezer {
                let _ = write(dir, "freezer.state", "THAWED");
            }
        }
        for dir in self.dirs.drain(..).rev() {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

impl Drop for WorkerCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Kills every process in the cgroups below `dir` and removes them; returns how many
/// processes were signalled.
fn remove_tree(dir: &Path) -> usize {
    let mut killed = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                killed += remove_tree(&entry.path());
            }
        }
    }
    // A frozen process does not die of SIGKILL until thawed (v1 freezer).
    if dir.join("freezer.state").exists() {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    }
    for _ in 0..100 {
        let members = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if members.trim().is_empty() {
            break;
        }
        killed += members.split_whitespace().count();
        let _ = kill_members(dir);
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_dir(dir);
    killed
}

/// SIGKILL to every member of `dir`.
fn kill_members(dir: &Path) -> io::Result<()> {
    for pid in std::fs::read_to_string(dir.join("cgroup.procs"))?.split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    Ok(())
}

/// v1: freeze (so nothing forks while we kill), SIGKILL every member, thaw.
async fn freeze_and_kill(dir: &Path, deadline: std::time::Instant) -> io::Result<()> {
    write(dir, "freezer.state", "FROZEN")?;
    while std::fs::read_to_string(dir.join("freezer.state"))?.trim() != "FROZEN"
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let killed = kill_members(dir);
    write(dir, "freezer.state", "THAWED")?;
    killed
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::spec::ResourceAmounts;

    fn resources() -> Resources {
        Resources {
            requests: ResourceAmounts {
                cpu: Some(0.5),
                memory_bytes: Some(50 << 20),
                pids: None,
            },
            limits: ResourceAmounts {
                cpu: Some(1.5),
                memory_bytes: Some(100 << 20),
                pids: Some(20),
            },
        }
    }

    fn read(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// The v2 path against a fake cgroupfs (a plain directory): limits land in the v2 files,
    /// the datum joins the v2 cgroup only (by directory or `cgroup.procs`), killing writes
    /// `cgroup.kill`.
    #[tokio::test]
    async fn v2_limits_and_kill_on_a_fake_cgroupfs() {
        let t = tempfile::tempdir().expect("tmp");
        let root = CgroupRoot {
            v2: Some(t.path().to_path_buf()),
            v2_controllers: vec!["memory".into(), "pids".into(), "cpu".into()],
            v1: Vec::new(),
        };
        assert_eq!(root.kill_method(), KillMethod::CgroupKill);
        let dir = t.path().join("p-0");
        // The kernel makes `cgroup.kill` in every new cgroup (Linux 5.14 and later).
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("cgroup.kill"), "").expect("cgroup.kill");
        let cg = root.worker("p-0", &resources()).expect("worker cgroup");
        assert_eq!(read(&dir, "memory.max"), (100u64 << 20).to_string());
        assert_eq!(read(&dir, "memory.low"), (50u64 << 20).to_string());
        assert_eq!(read(&dir, "pids.max"), "20");
        assert_eq!(read(&dir, "cpu.max"), "150000 100000");
        assert_eq!(read(&dir, "cpu.weight"), "20"); // 512 shares
        let join = cg.join();
        assert!(
            join.v2.is_some() && join.procs_to_write.is_empty(),
            "{join:?}"
        );
        std::fs::write(dir.join("memory.events"), "low 0\noom 1\noom_kill 3\n").expect("events");
        assert_eq!(cg.oom_kills(), Some(3));
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("events");
        let killing = cg.kill_all();
        let writer = async {
            while std::fs::read_to_string(dir.join("cgroup.kill")).unwrap_or_default() != "1" {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            std::fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 0\n").expect("events");
        };
        let (killed, ()) = tokio::join!(killing, writer);
        killed.expect("kill");
        assert_eq!(read(&dir, "cgroup.kill"), "1");
    }

    /// A cgroup found empty is not read again until a child joins it; after a join the
    /// next `kill_all` looks (and kills) again.
    #[tokio::test]
    async fn a_cgroup_found_empty_is_read_again_only_after_a_join() {
        let t = tempfile::tempdir().expect("tmp");
        let root = CgroupRoot {
            v2: Some(t.path().to_path_buf()),
            v2_controllers: Vec::new(),
            v1: Vec::new(),
        };
        let dir = t.path().join("p-0");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("cgroup.kill"), "").expect("cgroup.kill");
        let cg = root
            .worker("p-0", &Default::default())
            .expect("worker cgroup");
        std::fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 0\n").expect("events");
        cg.kill_all().await.expect("kill");
        // Not read: a fake `populated 1` nobody could have caused goes unseen.
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("events");
        cg.kill_all().await.expect("kill");
        assert_eq!(read(&dir, "cgroup.kill"), "");
        let _ = cg.join();
        let killing = cg.kill_all();
        let writer = async {
            while std::fs::read_to_string(dir.join("cgroup.kill")).unwrap_or_default() != "1" {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            std::fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 0\n").expect("events");
        };
        let (killed, ()) = tokio::join!(killing, writer);
        killed.expect("kill");
        assert_eq!(read(&dir, "cgroup.kill"), "1");
    }

    #[test]
    fn v1_limits_land_in_v1_files() {
        let t = tempfile::tempdir().expect("tmp");
        let base = |c: &str| t.path().join(c);
        let root = CgroupRoot {
            v2: None,
            v2_controllers: Vec::new(),
            v1: ["memory", "pids", "cpu", "freezer"]
                .into_iter()
                .map(|c| (c, base(c)))
                .collect(),
        };
        for c in ["memory", "pids", "cpu", "freezer"] {
            std::fs::create_dir_all(base(c)).expect("base");
        }
        assert_eq!(root.kill_method(), KillMethod::Freezer);
        let cg = root.worker("w", &resources()).expect("worker");
        assert_eq!(
            read(&base("memory").join("w"), "memory.limit_in_bytes"),
            (100u64 << 20).to_string()
        );
        assert_eq!(
            read(&base("memory").join("w"), "memory.soft_limit_in_bytes"),
            (50u64 << 20).to_string()
        );
        assert_eq!(read(&base("pids").join("w"), "pids.max"), "20");
        assert_eq!(read(&base("cpu").join("w"), "cpu.cfs_quota_us"), "150000");
        assert_eq!(read(&base("cpu").join("w"), "cpu.shares"), "512");
        assert_eq!(cg.join().procs_to_write.len(), 4);
        assert_eq!(cg.kill_dir, Some(base("freezer").join("w")));
        // Without limits a datum joins only what kills it (one migration per datum).
        let plain = root.worker("plain", &Resources::default()).expect("worker");
        assert_eq!(plain.join().procs_to_write.len(), 1);
        assert_eq!(plain.kill_dir, Some(base("freezer").join("plain")));
        assert!(!base("memory").join("plain").exists());
    }

    /// The v1 freezer path on a real v1 freezer hierarchy (this project's CI has one): a
    /// process in the worker's cgroup is killed and the cgroup thawed and empty afterwards.
    #[tokio::test]
    async fn v1_freezer_kills_on_a_real_hierarchy() {
        let base = Path::new("/sys/fs/cgroup/freezer");
        if !nix::unistd::Uid::effective().is_root() || !base.join("cgroup.procs").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs as root with a v1 freezer"
            );
            eprintln!("skipped: needs root and a v1 freezer hierarchy");
            return;
        }
        let root = CgroupRoot {
            v2: None,
            v2_controllers: Vec::new(),
            v1: vec![(
                "freezer",
                base.join(format!("executor-process-test-{}", std::process::id())),
            )],
        };
        std::fs::create_dir_all(&root.v1[0].1).expect("base");
        let mut cg = root.worker("w", &Resources::default()).expect("worker");
        assert_eq!(cg.kill, KillMethod::Freezer);
        let mut child = std::process::Command::new("sleep")
            .arg("43.21")
            .spawn()
            .expect("sleep");
        let dir = root.v1[0].1.join("w");
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).expect("join");
        cg.kill_all().await.expect("kill");
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert_eq!(read(&dir, "freezer.state").trim(), "THAWED");
        cg.remove();
        assert!(!dir.exists());
        let _ = std::fs::remove_dir(&root.v1[0].1);
    }

    #[test]
    fn own_cgroup_paths_are_found_per_hierarchy() {
        let own = "4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/\n";
        assert_eq!(
            own_path(own, |c| c.split(',').any(|x| x == "memory")),
            Some("/a/b")
        );
        assert_eq!(
            own_path(own, |c| c.split(',').any(|x| x == "cpu")),
            Some("/c")
        );
        assert_eq!(own_path(own, str::is_empty), Some("/"));
        assert_eq!(own_path(own, |c| c == "pids"), None);
    }
}
