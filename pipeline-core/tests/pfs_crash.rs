//! Crash safety under SIGKILL (custom harness: `harness = false`), on a store directory or,
//! with `PIPELINE_TEST_STORE=postgres`, with the metadata on the test PostgreSQL server.
//!
//! The parent re-executes this binary as a child writer (`PFS_CRASH_CHILD=<store dir>`),
//! kills it with SIGKILL at a random moment, reopens the store and checks the invariants:
//!
//! - the store opens without any repair step and `objects/tmp` is empty afterwards;
//! - every finished commit holds exactly the files its writer planned, each byte-identical
//!   (bytes checked once per commit; file lists and object sizes of the newest five on
//!   every round and of all of them every tenth round), and inherits every file of its
//!   finished ancestors;
//! - every file entry has its object, of the recorded size (no half-written object visible);
//! - an open commit left by a kill is resumed by the next child, which completes and
//!   finishes it.
//!
//! The writer's files are derived from `(commit seq, index)` so any process can regenerate
//! the expected bytes. Sizes are mostly small with some multi-MiB files, so kills land in
//! puts (object streaming), in batched directory puts, in metadata commits and in finishes.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pipeline_core::hash::ContentHash;
use pipeline_core::pfs::{CommitInfo, FinishOptions, PfsError, RepoRef, Store};
use pipeline_core::testkit::store::try_open_test_store;

const ROUNDS: usize = 120;
/// Finished commits the run must reach, with up to `EXTRA_ROUNDS` longer rounds if the
/// short ones did not get there.
const MIN_FINISHED: usize = 10;
const EXTRA_ROUNDS: usize = 30;

/// One crash run: the store, the checker and what the rounds saw so far.
struct Run {
    root: PathBuf,
    exe: PathBuf,
    checker: Checker,
    kills: usize,
    open_heads: usize,
    last_finished: usize,
}

impl Run {
    /// Starts a writer, kills it after `delay_ms` and checks the store; exits the process
    /// with a failure on a broken invariant.
    fn round_or_exit(&mut self, round: usize, delay_ms: u64, check_all: bool) {
        if let Err(e) = self.round(delay_ms, check_all) {
            eprintln!("round {round} (killed after {delay_ms} ms): {e}");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    }

    fn round(&mut self, delay_ms: u64, check_all: bool) -> Result<(), String> {
        let mut child = Command::new(&self.exe)
            .env("PFS_CRASH_CHILD", &self.root)
            .spawn()
            .map_err(|e| format!("spawn child writer: {e}"))?;
        std::thread::sleep(Duration::from_millis(delay_ms));
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("child exited early: {status}"));
        }
        child.kill().map_err(|e| format!("SIGKILL child: {e}"))?;
        let _ = child.wait();
        self.kills += 1;
        let (finished, head_open) = self
            .checker
            .check(&self.root, check_all)
            .map_err(|e| format!("invariant broken: {e}"))?;
        if finished < self.last_finished {
            return Err(format!(
                "finished commits went from {} to {finished}",
                self.last_finished
            ));
        }
        self.last_finished = finished;
        self.open_heads += usize::from(head_open);
        Ok(())
    }
}

fn seed(seq: u64, i: u64) -> u64 {
    let h = blake3::hash(format!("{seq}/{i}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

fn content(seq: u64, i: u64) -> Vec<u8> {
    let s = seed(seq, i);
    let size = if s.is_multiple_of(8) {
        (2 << 20) + (s % (2 << 20))
    } else {
        s % (96 << 10)
    } as usize;
    let mut out = vec![0u8; size];
    let mut h = blake3::Hasher::new();
    h.update(&s.to_le_bytes());
    h.finalize_xof().fill(&mut out);
    out
}

fn planned_files(seq: u64) -> u64 {
    1 + seed(seq, u64::MAX) % 12
}

fn file_path(seq: u64, i: u64) -> String {
    format!("/k{seq:05}/f{i:02}")
}

fn parse_desc(d: &str) -> Option<u64> {
    d.strip_prefix("seq=")?.parse().ok()
}

/// Opens the test store of `root` (a store directory; with `PIPELINE_TEST_STORE=postgres`
/// metadata on the test server and objects in `root/objects`), waiting up to 10 s while the
/// killed writer's database session still holds the store.
fn open_after_kill(root: &Path) -> Result<Store, PfsError> {
    let t = Instant::now();
    loop {
        match try_open_test_store(root) {
            Err(PfsError::StoreInUse { .. }) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The child: resume an open head commit or start the next one, put its files, finish.
fn child(root: &Path) -> Result<(), PfsError> {
    let s = open_after_kill(root)?;
    let repo = RepoRef::new("data")?;
    if s.inspect_repo(&repo).is_err() {
        s.create_repo(&repo, "")?;
    }
    let branch = repo.branch("master")?;
    loop {
        let (commit, seq) = match s.inspect_branch(&branch) {
            Ok(b) => {
                let head = s.inspect_commit(&repo.commit(&b.head))?;
                let seq = parse_desc(&head.description).unwrap_or(0);
                if head.is_finished() {
                    let next = seq + 1;
                    (
                        s.start_commit(&branch, &format!("seq={next}"))?.commit,
                        next,
                    )
                } else {
                    (head.commit, seq)
                }
            }
            Err(_) => (s.start_commit(&branch, "seq=0")?.commit, 0),
        };
        if seq % 3 == 0 {
            // Every third commit goes through the batched directory put (deferred object
            // durability + one barrier before the metadata transaction).
            let stage = root.with_file_name(format!("stage-{seq}"));
            std::fs::create_dir_all(&stage).map_err(|e| PfsError::Corrupt(e.to_string()))?;
            for i in 0..planned_files(seq) {
                std::fs::write(stage.join(format!("f{i:02}")), content(seq, i))
                    .map_err(|e| PfsError::Corrupt(e.to_string()))?;
            }
            s.put_dir_local(&commit, &format!("/k{seq:05}"), &stage, &mut |_| {})?;
        }
        for i in 0..planned_files(seq) {
            let p = file_path(seq, i);
            if s.inspect_file(&commit, &p).is_ok() {
                continue;
            }
            s.put_file_bytes(&commit, &p, &content(seq, i))?;
        }
        s.finish_commit(&commit, FinishOptions::default())?;
    }
}

struct Checker {
    fully_checked: BTreeSet<String>,
}

impl Checker {
    /// `all`: check every finished commit's tree (else the newest five and any not yet
    /// fully checked), to keep rounds cheap as history grows.
    fn check(&mut self, root: &Path, all: bool) -> Result<(usize, bool), String> {
        let s = open_after_kill(root).map_err(|e| format!("reopen failed: {e}"))?;
        let tmp = root.join("objects/tmp");
        if std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) != 0 {
            return Err("temp objects left after open".into());
        }
        let repo = RepoRef::new("data").unwrap();
        if s.inspect_repo(&repo).is_err() {
            return Ok((0, false));
        }
        // Killed after creating the repo, before its first commit made the branch.
        match s.inspect_branch(&repo.branch("master").unwrap()) {
            Err(PfsError::BranchNotFound { .. }) => return Ok((0, false)),
            Err(e) => return Err(e.to_string()),
            Ok(_) => {}
        }
        let commits = s
            .list_commits(&repo, Some("master"), 0)
            .map_err(|e| e.to_string())?;
        let head_open = commits.first().is_some_and(|c| !c.is_finished());
        let finished: Vec<&CommitInfo> = commits.iter().filter(|c| c.is_finished()).collect();
        for (n, c) in finished.iter().enumerate() {
            if !all && n >= 5 && self.fully_checked.contains(&c.commit.id.to_string()) {
                continue;
            }
            let seq = parse_desc(&c.description).ok_or("bad description")?;
            let files: Vec<_> = s
                .list_file_recursive(&c.commit, "/")
                .map_err(|e| e.to_string())?
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            // Exactly the planned files of every seq up to this one.
            let want: usize = (0..=seq).map(|q| planned_files(q) as usize).sum();
            if files.len() != want {
                return Err(format!(
                    "commit seq={seq} has {} files, expected {want}",
                    files.len()
                ));
            }
            for f in &files {
                let obj = root
                    .join("objects")
                    .join(&f.hash.to_hex()[..2])
                    .join(&f.hash.to_hex()[2..]);
                let len = std::fs::metadata(&obj)
                    .map_err(|e| format!("object of {} missing: {e}", f.path))?
                    .len();
                if len != f.size {
                    return Err(format!(
                        "object of {} has {len} bytes, entry says {}",
                        f.path, f.size
                    ));
                }
            }
            let key = c.commit.id.to_string();
            if self.fully_checked.insert(key) {
                for i in 0..planned_files(seq) {
                    let p = file_path(seq, i);
                    let (info, mut r) = s.get_file(&c.commit, &p).map_err(|e| e.to_string())?;
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).map_err(|e| e.to_string())?;
                    let want = content(seq, i);
                    if got != want || info.hash != ContentHash::of_bytes(&want) {
                        return Err(format!("{p} of seq={seq} differs"));
                    }
                }
            }
        }
        Ok((finished.len(), head_open))
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn main() {
    if let Ok(root) = std::env::var("PFS_CRASH_CHILD") {
        if let Err(e) = child(Path::new(&root)) {
            eprintln!("child writer failed: {e}");
            std::process::exit(2);
        }
        return;
    }
    // Honour `cargo test <filter>` / `--list` minimally.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("sigkill_writer_many_times: test");
        return;
    }
    if let Some(f) = args.iter().find(|a| !a.starts_with('-'))
        && !"sigkill_writer_many_times".contains(f.as_str())
    {
        println!("0 passed, 0 failed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = Run {
        root: dir.path().join("store"),
        exe: std::env::current_exe().expect("current exe"),
        checker: Checker {
            fully_checked: BTreeSet::new(),
        },
        kills: 0,
        open_heads: 0,
        last_finished: 0,
    };
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let delay = 15 + xorshift(&mut rng) % 200;
        run.round_or_exit(round, delay, round % 10 == 9 || round + 1 == ROUNDS);
    }
    // Short kills on a loaded machine (or with the metadata on PostgreSQL) may land before
    // most writers finish a commit. Longer rounds then show whether the writer progresses
    // at all; every one of them is checked like the others.
    let mut round = ROUNDS;
    while run.last_finished < MIN_FINISHED && round < ROUNDS + EXTRA_ROUNDS {
        let delay = 500 + xorshift(&mut rng) % 1000;
        run.round_or_exit(round, delay, true);
        round += 1;
    }
    eprintln!(
        "crash test: {} SIGKILLs ({} longer ones), {} finished commits verified, \
         {} kills left an open commit that the next writer resumed, {:.1} s",
        run.kills,
        round - ROUNDS,
        run.last_finished,
        run.open_heads,
        started.elapsed().as_secs_f64()
    );
    if run.last_finished < MIN_FINISHED {
        eprintln!(
            "too few commits finished ({}); the writer made no progress",
            run.last_finished
        );
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
    println!("test sigkill_writer_many_times ... ok");
    println!("1 passed, 0 failed");
}
