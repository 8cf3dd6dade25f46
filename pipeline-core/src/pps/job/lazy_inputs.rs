//! `lazy: true` inputs (reference §2.10): each file of the input is a **named pipe** in the
//! datum's scratch directory, and its content streams from the store only when user code
//! opens it. Nothing is copied before the datum starts and nothing beyond what is read is
//! materialised (at most one pipe buffer, 64 KiB, ahead of the reader).
//!
//! One feeder thread per pipe waits for a reader. As soon as one has opened the pipe, it
//! puts a fresh pipe under the name and streams the file (verified as it goes) to that
//! reader from a thread of its own. Nothing is written before the fresh pipe is in place,
//! so whoever opens the name after reading from it gets a pipe of its own and the whole
//! file from the start: a retried attempt, code that reads a file twice, or closes it early
//! and opens it again. (Replacing the pipe only after the copy let a quick reopen join the
//! old pipe and read what it still held.) A reader sees the end of the file when its copy
//! closes its pipe. Two opens at the same instant, before the fresh pipe is placed, can
//! still share one pipe: a FIFO cannot tell its readers apart. Seeking does not work (it
//! never does on a pipe; Pachyderm's lazy inputs are the same).
//!
//! Pipes are reached through an `O_PATH` descriptor of their directory, not by the scratch
//! path, so an executor may move the scratch directory's entries (the Docker executor's bind
//! mode renames inputs into the mounted directory) and the pipes still get fed.
//!
//! Only executors whose user code opens the pipes on this host's kernel can use them
//! ([`Executor::serves_named_pipes`](crate::executor::Executor::serves_named_pipes)); for the
//! others a lazy input is materialised as any other.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error_chain::ErrorChain;
use crate::pfs::{CommitRef, Store};

/// Most lazy files one datum may have (each takes a thread while the datum runs); the limit
/// Pachyderm documents for lazy datums.
pub(super) const MAX_LAZY_FILES: usize = 10_000;

/// Stack of a feeder thread: it only copies between a store reader and a pipe.
const FEEDER_STACK: usize = 256 * 1024;

/// How long [`LazyFeeds::stop`] keeps releasing a feeder that is about to wait for a reader.
const STOP_PATIENCE: Duration = Duration::from_secs(2);

/// The pipes of one datum's lazy inputs and the threads feeding them; stopped on drop.
#[derive(Default)]
pub(super) struct LazyFeeds {
    stopping: Arc<AtomicBool>,
    feeders: Vec<Feeder>,
    /// The directory of the last pipe made (files come in path order, so one descriptor
    /// serves a directory's files).
    last_dir: Option<(PathBuf, Arc<File>)>,
    /// The first thing that went wrong feeding a pipe (a damaged object, say).
    error: Arc<Mutex<Option<String>>>,
}

struct Feeder {
    pipe: PipeName,
    thread: JoinHandle<()>,
}

/// A pipe's name in a directory held by an `O_PATH` descriptor.
#[derive(Clone)]
struct PipeName {
    dir: Arc<File>,
    name: OsString,
}

impl PipeName {
    /// The pipe's path now, wherever its directory was moved.
    fn path(&self) -> PathBuf {
        Path::new(&format!("/proc/self/fd/{}", self.dir.as_raw_fd())).join(&self.name)
    }

    /// Makes a fresh pipe under this name (replacing one that is there, whose readers keep
    /// it).
    fn make(&self) -> Result<(), String> {
        let mut temp = OsString::from(".");
        temp.push(&self.name);
        // `*` is never part of a stored path's name: no collision with an input file.
        temp.push("*lazy");
        let temp = self.path().with_file_name(temp);
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
        nix::unistd::mkfifo(&temp, mode).map_err(|e| format!("making a named pipe: {e}"))?;
        std::fs::rename(&temp, self.path()).map_err(|e| format!("placing a named pipe: {e}"))
    }
}

impl LazyFeeds {
    /// Makes `target` a named pipe that streams `path` of `commit` to whoever opens it.
    pub(super) fn add(
        &mut self,
        store: &Store,
        commit: &CommitRef,
        path: &str,
        target: &Path,
    ) -> Result<(), String> {
        if self.feeders.len() >= MAX_LAZY_FILES {
            return Err(format!(
                "a datum can have at most {MAX_LAZY_FILES} files in `lazy` inputs (each is a \
                 named pipe fed while the datum runs); use a finer glob or drop `lazy`"
            ));
        }
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(format!("{} is not a file path", target.display()));
        };
        let pipe = PipeName {
            dir: self.dir(parent)?,
            name: name.to_os_string(),
        };
        pipe.make()
            .map_err(|e| format!("{}: {e}", target.display()))?;
        let feed = Feed {
            store: store.clone(),
            commit: commit.clone(),
            path: path.to_string(),
            pipe: pipe.clone(),
            stopping: self.stopping.clone(),
            error: self.error.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("lazy-input".into())
            .stack_size(FEEDER_STACK)
            .spawn(move || feed.run())
            .map_err(|e| format!("starting the feeder of {}: {e}", target.display()))?;
        self.feeders.push(Feeder { pipe, thread });
        Ok(())
    }

    /// An `O_PATH` descriptor of directory `dir` (the last one is reused).
    fn dir(&mut self, dir: &Path) -> Result<Arc<File>, String> {
        if let Some((path, file)) = &self.last_dir
            && path == dir
        {
            return Ok(file.clone());
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY)
            .open(dir)
            .map_err(|e| format!("opening {}: {e}", dir.display()))?;
        let file = Arc::new(file);
        self.last_dir = Some((dir.to_path_buf(), file.clone()));
        Ok(file)
    }

    /// The first error feeding a pipe, if any (the datum then fails with it).
    pub(super) fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Ends every feeder: one waiting for a reader is released by a reader of our own that
    /// closes at once; one writing ends when its reader is gone (the datum's processes are).
    /// All are released in one pass, then the few that were not yet waiting again.
    pub(super) fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let mut pending = std::mem::take(&mut self.feeders);
        while !pending.is_empty() && started.elapsed() < STOP_PATIENCE {
            for feeder in &pending {
                // Opening for reading without blocking lets a feeder's open return; it then
                // sees `stopping` and ends without writing.
                drop(
                    std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(nix::libc::O_NONBLOCK)
                        .open(feeder.pipe.path()),
                );
            }
            std::thread::sleep(Duration::from_millis(1));
            pending.retain(|feeder| !feeder.thread.is_finished());
        }
        // A feeder still running has a reader that outlived the datum: it ends when that
        // reader is gone, and is not waited for.
        self.last_dir = None;
    }
}

impl Drop for LazyFeeds {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What one feeder thread needs.
struct Feed {
    store: Store,
    commit: CommitRef,
    path: String,
    pipe: PipeName,
    stopping: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
}

impl Feed {
    /// Waits for each reader of the pipe in turn; each one's copy runs on a thread of its
    /// own.
    fn run(self) {
        let feed = Arc::new(self);
        loop {
            // Blocks until user code (or `stop`) opens the pipe for reading.
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .open(feed.pipe.path());
            if feed.stopping.load(Ordering::SeqCst) {
                return;
            }
            let pipe = match opened {
                Ok(p) => p,
                Err(e) => return feed.fail(format!("opening the pipe: {e}")),
            };
            // A fresh pipe goes under the name before a byte is written: this one stays
            // its reader's alone and ends for it when closed. Whoever opens the name after
            // reading from it (code that closed the file early and opens it again) gets a
            // pipe and a copy of its own, from the start.
            if let Err(e) = feed.pipe.make() {
                return feed.fail(e);
            }
            let copier = Arc::clone(&feed);
            let spawned = std::thread::Builder::new()
                .name("lazy-input-copy".into())
                .stack_size(FEEDER_STACK)
                .spawn(move || copier.copy_to_end(pipe));
            if let Err(e) = spawned {
                return feed.fail(format!("starting a copy: {e}"));
            }
        }
    }

    /// Copies the file into one reader's pipe. A failure is recorded before the pipe is
    /// closed, so a reader that sees the end finds the datum's error already set.
    fn copy_to_end(&self, mut pipe: File) {
        match self.copy_into(&mut pipe) {
            Ok(()) => {}
            // The reader closed early (read a part, or nothing): fine, as with a file.
            Err(Stop::ReaderGone) => {}
            Err(Stop::Failed(e)) => self.fail(e),
        }
        drop(pipe);
    }

    fn copy_into(&self, pipe: &mut File) -> Result<(), Stop> {
        let (_, mut reader) = self
            .store
            .get_file(&self.commit, &self.path)
            .map_err(|e| Stop::Failed(ErrorChain(&e).to_string()))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Stop::Failed(ErrorChain(&e).to_string()))?;
            if n == 0 {
                return Ok(());
            }
            if let Err(e) = pipe.write_all(&buf[..n]) {
                return Err(if e.kind() == std::io::ErrorKind::BrokenPipe {
                    Stop::ReaderGone
                } else {
                    Stop::Failed(format!("writing the pipe: {e}"))
                });
            }
        }
    }

    fn fail(&self, message: String) {
        let mut error = self.error.lock().unwrap_or_else(|e| e.into_inner());
        error.get_or_insert_with(|| {
            format!(
                "lazy input file {} of {}: {message}",
                self.path, self.commit
            )
        });
    }
}

/// Why copying into a pipe stopped early.
enum Stop {
    ReaderGone,
    Failed(String),
}
