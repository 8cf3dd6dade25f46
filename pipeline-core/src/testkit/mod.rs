//! The executor conformance suite and the engine scenarios (feature `testkit`).
//!
//! Every backend runs the same checks on itself, the way object_store's backends share one
//! integration suite: describe the backend in a [`Harness`], then call [`run_all`] (or the
//! individual `async fn`s in [`cases`]) from the backend crate's tests. Each check panics with
//! a message naming what went wrong, like `assert!`.
//!
//! The [`engine`] module goes one level up: whole scenarios (reference §2.15, `err_cmd`)
//! driven through the pipeline engine, which the engine's tests and every backend's tests run
//! with their own executor.
//!
//! ```no_run
//! # async fn demo(executor: std::sync::Arc<dyn pipeline_core::executor::Executor>,
//! #               pool: pipeline_core::executor::WorkerPoolSpec) {
//! use pipeline_core::testkit::{self, Harness};
//!
//! let harness = Harness::new(executor, pool)
//!     .large_output_bytes(64 << 20) // a slow backend may use less than 1 GiB
//!     .host_process_checks(true);   // user processes are visible in this host's /proc
//! testkit::run_all(&harness).await;
//! # }
//! ```
//!
//! # What user programs the suite runs
//!
//! Only busybox applets (`sh`, `cat`, `echo`, `printf`, `sleep`, `env`, `ls`, `mkdir`, `ln`,
//! `dd`, `head`, `wc`, `kill`, `ps`, `tr`) and `sh` builtins, found through `PATH`, so a
//! busybox-static image works. Inputs are created on the host under
//! [`Harness::scratch_root`] and must appear to user code as `/pfs/<input>/...`.
//!
//! # Leftover processes
//!
//! Every user process gets an environment variable [`MARKER_VAR`] with a value unique to the
//! check. After each check the suite looks for processes still carrying it: in this host's
//! `/proc` when [`Harness::host_process_checks`] is on (local processes, a local Docker daemon),
//! otherwise by running a probe datum on a worker of the backend.

pub mod cases;
pub mod engine;
pub mod meta;
#[cfg(feature = "store-object")]
pub mod objects;
pub mod service;
#[cfg(all(feature = "store-redb", feature = "store-postgres"))]
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::executor::CancellationToken;

/// The longest one run of a check may take before the check fails instead of hanging.
const RUN_LIMIT: Duration = Duration::from_secs(120);

use crate::executor::{
    DatumTask, Executor, LogSink, LogStream, Program, ProgramKind, Worker, WorkerPoolSpec,
};

/// Name of the environment variable that marks every process a check starts.
pub const MARKER_VAR: &str = "PIPELINE_CONFORMANCE_MARKER";

/// Describes the backend under test. Build with [`Harness::new`] and the setters; the defaults
/// suit a fast local backend.
#[derive(Debug, Clone)]
pub struct Harness {
    executor: Arc<dyn Executor>,
    pool: WorkerPoolSpec,
    scratch_root: PathBuf,
    host_process_checks: bool,
    large_output_bytes: u64,
    reuse_datums: usize,
    inputs_read_only: bool,
    parallel_workers: usize,
    pfs_substitution: bool,
    user_check: Option<(String, u32)>,
}

impl Harness {
    /// A harness for `executor`. `pool` is the template every check starts workers from: its
    /// spec's image (if the backend uses one) must provide the busybox applets listed in the
    /// module docs. The suite overrides `workers`, and sets `pipeline` to the template's name,
    /// a dash, and the check's name with `_` turned into `-` (e.g. `conf-timeout-kills-tree`,
    /// valid in container and pod names); everything else is used as given.
    ///
    /// Defaults: scratch directories under [`std::env::temp_dir`], host process checks **off**,
    /// large output 1 GiB, 1,000 datums for the reuse check, inputs checked read-only, 3
    /// parallel workers.
    pub fn new(executor: Arc<dyn Executor>, pool: WorkerPoolSpec) -> Self {
        Harness {
            executor,
            pool,
            scratch_root: std::env::temp_dir(),
            host_process_checks: false,
            large_output_bytes: 1 << 30,
            reuse_datums: 1000,
            inputs_read_only: true,
            parallel_workers: 3,
            pfs_substitution: false,
            user_check: None,
        }
    }

    /// Where the suite creates scratch directories (must exist, and be usable by the backend,
    /// e.g. under a directory the Docker executor bind-mounts).
    pub fn scratch_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch_root = dir.into();
        self
    }

    /// Whether user processes show up in this host's `/proc` (local processes, local Docker).
    pub fn host_process_checks(mut self, on: bool) -> Self {
        self.host_process_checks = on;
        self
    }

    /// Size of the file written by [`cases::large_output`] (default 1 GiB).
    pub fn large_output_bytes(mut self, bytes: u64) -> Self {
        self.large_output_bytes = bytes;
        self
    }

    /// Number of datums [`cases::worker_reuse`] runs on one worker (default 1,000).
    pub fn reuse_datums(mut self, n: usize) -> Self {
        self.reuse_datums = n.max(2);
        self
    }

    /// Whether the backend makes inputs read-only to user code (default true). When false,
    /// [`cases::inputs_read_only`] only checks that the host copy is intact, unless the
    /// executor says it keeps inputs read-only
    /// ([`Executor::keeps_inputs_read_only`](crate::executor::Executor::keeps_inputs_read_only)):
    /// that claim is always checked.
    pub fn inputs_read_only(mut self, on: bool) -> Self {
        self.inputs_read_only = on;
        self
    }

    /// Number of workers [`cases::parallel_workers`] starts (default 3, at least 2).
    pub fn parallel_workers(mut self, n: usize) -> Self {
        self.parallel_workers = n.max(2);
        self
    }

    /// Declares that the backend rewrites `/pfs` in env values to the host scratch directory
    /// (the process executor's fallback mode) instead of making `/pfs` itself resolve; the
    /// env check then expects rewritten values (default false).
    pub fn pfs_substitution(mut self, on: bool) -> Self {
        self.pfs_substitution = on;
        self
    }

    /// Enables [`cases::user`]: running with `transform.user = spec` must give files written to
    /// `/pfs/out` the owner `uid` on the host (off by default: it needs root, or a backend
    /// whose image knows `spec`).
    pub fn user_check(mut self, spec: impl Into<String>, uid: u32) -> Self {
        self.user_check = Some((spec.into(), uid));
        self
    }

    /// The value user code sees for a `/pfs/...` path in an env var of `scratch`.
    pub fn expected_env_path(&self, scratch: &Scratch, pfs_path: &str) -> String {
        match pfs_path.strip_prefix("/pfs") {
            Some(rest) if self.pfs_substitution => format!("{}{rest}", scratch.path().display()),
            _ => pfs_path.to_owned(),
        }
    }

    /// The executor under test.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// The directory scratch directories are created in.
    pub fn scratch_dir_root(&self) -> &Path {
        &self.scratch_root
    }

    /// Starts `n` workers from the template, for a pipeline named after `check`.
    pub async fn start_workers(&self, check: &str, n: usize) -> Vec<Box<dyn Worker>> {
        let mut pool = self.pool.clone();
        pool.workers = n;
        pool.pipeline = format!("{}-{}", self.pool.pipeline, check.replace('_', "-"));
        let workers = match self.executor.start_workers(&pool).await {
            Ok(w) => w,
            Err(e) => panic!("{check}: start_workers({n}) failed: {e}"),
        };
        assert_eq!(
            workers.len(),
            n,
            "{check}: start_workers({n}) returned {} workers",
            workers.len()
        );
        workers
    }

    /// Starts one worker for `check`.
    pub async fn start_worker(&self, check: &str) -> Box<dyn Worker> {
        let mut w = self.start_workers(check, 1).await;
        match w.pop() {
            Some(w) => w,
            None => panic!("{check}: no worker"),
        }
    }

    /// A fresh scratch directory (with an empty `out/`) under [`Harness::scratch_root`].
    pub fn scratch(&self) -> Scratch {
        Scratch::new(&self.scratch_root)
    }
}

/// A scratch directory laid out as the engine lays it out: `<input>/<path>` and an empty
/// `out/`. Removed on drop.
#[derive(Debug)]
pub struct Scratch {
    root: PathBuf,
    inputs: Vec<String>,
}

impl Scratch {
    /// Creates `<parent>/conformance-<unique>/out`.
    pub fn new(parent: &Path) -> Self {
        let root = parent.join(format!("conformance-{}", unique_id()));
        let out = root.join("out");
        if let Err(e) = std::fs::create_dir_all(&out) {
            panic!("creating scratch {}: {e}", out.display());
        }
        Scratch {
            root,
            inputs: Vec::new(),
        }
    }

    /// Writes input file `<input>/<path>` (parents created).
    pub fn add_input(&mut self, input: &str, path: &str, contents: &[u8]) -> &mut Self {
        let file = self.root.join(input).join(path.trim_start_matches('/'));
        if let Some(parent) = file.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            panic!("creating {}: {e}", parent.display());
        }
        if let Err(e) = std::fs::write(&file, contents) {
            panic!("writing {}: {e}", file.display());
        }
        if !self.inputs.iter().any(|i| i == input) {
            self.inputs.push(input.to_owned());
        }
        self
    }

    /// The scratch root (what user code sees as `/pfs`).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `scratch/out` on the host.
    pub fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    /// Input names added so far.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Reads `out/<path>` as a string (panics naming the path when absent).
    pub fn read_out(&self, path: &str) -> String {
        let p = self.out().join(path);
        match std::fs::read(&p) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => panic!("expected output {}: {e}", p.display()),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = make_writable_and_remove(&self.root);
    }
}

fn make_writable_and_remove(root: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(root) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            // A backend running user code as another user may leave read-only directories.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mut stack = vec![root.to_path_buf()];
                while let Some(d) = stack.pop() {
                    let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755));
                    if let Ok(rd) = std::fs::read_dir(&d) {
                        for e in rd.flatten() {
                            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                                stack.push(e.path());
                            }
                        }
                    }
                }
            }
            std::fs::remove_dir_all(root)
        }
    }
}

/// A unique, printable id (process id, time, counter).
pub fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{:x}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A [`LogSink`] that records every line, for assertions.
#[derive(Debug, Default)]
pub struct RecordingLogSink {
    lines: Mutex<Vec<(LogStream, String)>>,
}

impl RecordingLogSink {
    /// A new, empty sink.
    pub fn new() -> Arc<Self> {
        Arc::new(RecordingLogSink::default())
    }

    /// All lines so far, in arrival order.
    pub fn lines(&self) -> Vec<(LogStream, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The lines of one stream, in order.
    pub fn stream(&self, stream: LogStream) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l)
            .collect()
    }

    /// Forgets all lines.
    pub fn clear(&self) {
        if let Ok(mut l) = self.lines.lock() {
            l.clear();
        }
    }
}

impl LogSink for RecordingLogSink {
    fn line(&self, stream: LogStream, line: &str) {
        if let Ok(mut l) = self.lines.lock() {
            l.push((stream, line.to_owned()));
        }
    }
}

/// Per-check context: the marker and the task defaults.
#[derive(Debug)]
pub(crate) struct Check<'h> {
    pub(crate) h: &'h Harness,
    pub(crate) name: &'static str,
    pub(crate) marker: String,
    pub(crate) logs: Arc<RecordingLogSink>,
}

impl<'h> Check<'h> {
    pub(crate) fn new(h: &'h Harness, name: &'static str) -> Self {
        Check {
            h,
            name,
            marker: format!("m{}", unique_id()),
            logs: RecordingLogSink::new(),
        }
    }

    /// A task running `argv` (no stdin) in `scratch`, carrying the marker.
    pub(crate) fn task(&self, scratch: &Scratch, argv: &[&str]) -> DatumTask {
        DatumTask {
            job_id: "0123456789abcdef0123456789abcdef".into(),
            datum_id: "a".repeat(64),
            scratch: scratch.path().to_path_buf(),
            inputs: scratch.inputs().to_vec(),
            program: Program::new(
                ProgramKind::Cmd,
                argv.iter().map(|s| (*s).to_owned()).collect(),
                &[],
            ),
            env: vec![(MARKER_VAR.into(), self.marker.clone())],
            user: None,
            working_dir: None,
            cancel: CancellationToken::new(),
            logs: self.logs.clone(),
        }
    }

    /// A `sh -c <script>` task.
    pub(crate) fn sh(&self, scratch: &Scratch, script: &str) -> DatumTask {
        self.task(scratch, &["sh", "-c", script])
    }

    /// Runs a task and panics on an executor error.
    pub(crate) async fn run(
        &self,
        worker: &mut dyn Worker,
        task: DatumTask,
    ) -> crate::executor::DatumOutcome {
        let argv = task.program.argv.clone();
        match tokio::time::timeout(RUN_LIMIT, worker.run(task)).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => panic!(
                "{}: run({argv:?}) failed with an executor error: {e}",
                self.name
            ),
            Err(_) => panic!("{}: run({argv:?}) did not end in {RUN_LIMIT:?}", self.name),
        }
    }

    /// Runs `task` under the engine's `policy` (timeout, accepted exit codes), panicking on
    /// an executor error.
    pub(crate) async fn run_with(
        &self,
        worker: &mut dyn Worker,
        task: DatumTask,
        policy: &crate::executor::policy::DatumPolicy,
    ) -> crate::executor::policy::Verdict {
        let argv = task.program.argv.clone();
        match tokio::time::timeout(RUN_LIMIT, policy.run(worker, task)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!(
                "{}: run({argv:?}) failed with an executor error: {e}",
                self.name
            ),
            Err(_) => panic!("{}: run({argv:?}) did not end in {RUN_LIMIT:?}", self.name),
        }
    }

    /// Asserts that no process carrying this check's marker is left, waiting up to 5 s for the
    /// kernel to finish killing. Uses a probe datum on `probe` when host checks are off.
    pub(crate) async fn assert_no_leftovers(&self, probe: &mut dyn Worker) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = processes_with_marker(self.h, probe, &self.marker).await;
            if found.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: processes outlived their datum (marker {}): {found:?}",
                    self.name, self.marker
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Processes whose environment holds `MARKER_VAR=<marker>`: looked up in this host's `/proc`
/// when [`Harness::host_process_checks`] is on, otherwise by a probe datum run on `probe`
/// (a `sh` loop over `/proc/*/environ` inside the worker; the marker is only in the probe's
/// arguments, never in its environment). Returns one line per process (PID, and the command
/// line for host checks).
pub async fn processes_with_marker(
    h: &Harness,
    probe: &mut dyn Worker,
    marker: &str,
) -> Vec<String> {
    if h.host_process_checks {
        return host_processes_with(marker);
    }
    let scratch = h.scratch();
    let script = format!(
        "for p in /proc/[0-9]*; do case \"$(tr '\\0' '\\n' < $p/environ 2>/dev/null)\" in \
         *{MARKER_VAR}={marker}*) echo \"${{p#/proc/}}\" >> /pfs/out/found;; esac; done; :"
    );
    let check = Check::new(h, "process_probe");
    let mut task = check.sh(&scratch, &script);
    task.env.clear();
    task.logs = Arc::new(crate::executor::NullLogSink);
    let outcome = check.run(probe, task).await;
    assert!(outcome.is_success(), "process probe failed: {outcome:?}");
    std::fs::read_to_string(scratch.out().join("found"))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// PIDs (with command lines) of host processes whose environment holds `MARKER_VAR=<marker>`.
/// Zombies have an empty environment and are not counted. Empty on non-Linux hosts.
pub fn host_processes_with(marker: &str) -> Vec<String> {
    let needle = format!("{MARKER_VAR}={marker}");
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            found.push(format!("{pid}: {}", cmdline.trim_end()));
        }
    }
    found
}

/// Runs every check in [`cases`], one after the other.
pub async fn run_all(h: &Harness) {
    cases::pfs_layout(h).await;
    cases::env_vars(h).await;
    cases::stdin_lines(h).await;
    cases::no_shell(h).await;
    cases::exit_codes(h).await;
    cases::program_not_found(h).await;
    cases::signals(h).await;
    cases::background_killed_on_exit(h).await;
    cases::timeout_kills_tree(h).await;
    cases::cancellation(h).await;
    cases::drop_kills(h).await;
    cases::working_dir(h).await;
    cases::user(h).await;
    cases::outputs(h).await;
    cases::symlinks_outside(h).await;
    cases::logs(h).await;
    cases::inputs_read_only(h).await;
    cases::parallel_workers(h).await;
    cases::worker_reuse(h).await;
    cases::large_output(h).await;
    cases::stop_and_remove(h).await;
}
