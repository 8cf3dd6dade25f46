//! The datum-batching control channel (reference §3.5, `transform.datum_batching`): how a
//! user process that starts once per datum set asks for its next datum.
//!
//! The worker makes two named pipes in the directory [`DIR`] of the datum's scratch
//! directory (user code sees `/pfs/.batch`; the [`DIR_ENV`] variable names it). Each
//! `next datum` call is:
//!
//! 1. the client writes one line to [`REQUEST`], `next ok` or `next error <message>`: its
//!    report of the previous datum (ignored on the first call, when there was none);
//! 2. the worker reads it ([`BatchControl::next_call`]), records the previous datum's result,
//!    mounts the next datum (its per-datum variables in `/pfs/.env`, [`ENV_FILE`]) and writes
//!    `datum` to [`REPLY`] ([`BatchControl::release`]); the client, which opened [`REPLY`]
//!    for reading, returns.
//!
//! After the set's last datum the call is never answered: the worker ends the process.
//!
//! Named pipes (not a socket) so that any shell can speak it without a helper binary, which
//! a minimal image does not have:
//!
//! ```sh
//! echo "next ok" > /pfs/.batch/request && read -r _ < /pfs/.batch/reply
//! ```
//!
//! `pipectl next datum` ([`next_datum`]) is the same exchange.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// The control directory, relative to the datum's scratch directory (`/pfs` for user code).
pub const DIR: &str = ".batch";

/// The request pipe in [`DIR`]: user code writes one report line per call.
pub const REQUEST: &str = "request";

/// The reply pipe in [`DIR`]: the worker writes `datum` once the next datum is mounted.
pub const REPLY: &str = "reply";

/// The file in the scratch directory (`/pfs/.env`) holding the current datum's variables,
/// one `NAME='value'` line each (shell quoting: `set -a; . /pfs/.env` exports them).
pub const ENV_FILE: &str = ".env";

/// The environment variable naming the control directory for `pipectl next datum`.
pub const DIR_ENV: &str = "PIPECTL_NEXT_DATUM_DIR";

/// Where `pipectl next datum` looks when [`DIR_ENV`] is not set.
pub const DEFAULT_DIR: &str = "/pfs/.batch";

/// The longest request line accepted, bytes.
const MAX_LINE: u64 = 64 * 1024;

/// The longest error message sent, bytes (a request line stays under `PIPE_BUF`, 4 KiB, so
/// it is written to the pipe at once).
const MAX_MESSAGE: usize = 4000;

/// What a `next datum` call reports about the previous datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// It succeeded.
    Ok,
    /// It failed, with this message.
    Error(String),
}

impl Report {
    /// The request line sending this report: one line, short enough for one atomic pipe
    /// write (a longer message is cut at [`MAX_MESSAGE`] bytes).
    fn line(&self) -> String {
        match self {
            Report::Ok => "next ok\n".to_string(),
            Report::Error(m) => {
                let mut end = m.len().min(MAX_MESSAGE);
                while !m.is_char_boundary(end) {
                    end -= 1;
                }
                format!("next error {}\n", m[..end].replace(['\n', '\r'], " "))
            }
        }
    }

    /// The report of request line `line`; `None` when it is not one.
    pub fn parse(line: &str) -> Option<Report> {
        let line = line.trim_end_matches(['\n', '\r']);
        match line.strip_prefix("next ")? {
            "ok" => Some(Report::Ok),
            rest => rest
                .strip_prefix("error")
                .map(|m| Report::Error(m.trim_start().to_string())),
        }
    }
}

/// Why a `next datum` call failed.
#[derive(Debug, thiserror::Error)]
pub enum NextDatumError {
    /// The control pipes are missing, or nobody serves them (not running under datum
    /// batching?).
    #[error("no datum-batching worker serves {path}: {source} (is this datum_batching user code?)")]
    NotServed {
        /// The control directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("talking to the datum-batching worker through {path}: {source}")]
    Io {
        /// The control directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The worker answered something other than `datum`.
    #[error("the datum-batching worker at {path} answered {answer:?}, expected \"datum\"")]
    Answer {
        /// The control directory.
        path: String,
        /// What it answered.
        answer: String,
    },
}

/// The client side (`pipectl next datum`): reports the previous datum through the control
/// directory `dir` and blocks until the next one is mounted.
pub fn next_datum(dir: &Path, report: &Report) -> Result<(), NextDatumError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.display().to_string();
    let io = |source| NextDatumError::Io {
        path: path.clone(),
        source,
    };
    // Non-blocking open: a pipe nobody reads is an error now, not a hang.
    let mut request = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(dir.join(REQUEST))
        .map_err(|source| NextDatumError::NotServed {
            path: path.clone(),
            source,
        })?;
    // One short line: a single atomic write into the pipe.
    request.write_all(report.line().as_bytes()).map_err(io)?;
    drop(request);
    let reply = std::fs::File::open(dir.join(REPLY)).map_err(io)?;
    // The pipe holds at most this one answer: the worker writes the next one only after
    // the next request, which comes after this reader is closed.
    let mut answer = String::new();
    BufReader::new(reply.take(MAX_LINE))
        .read_line(&mut answer)
        .map_err(io)?;
    let answer = answer.trim_end_matches('\n').to_string();
    if answer != "datum" {
        return Err(NextDatumError::Answer { path, answer });
    }
    Ok(())
}

pub use server::BatchControl;

/// The worker side.
mod server {
    use std::io;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::unix::pipe;

    use super::{MAX_LINE, REPLY, REQUEST, Report};

    /// The worker side: serves `next datum` calls on the control pipes of one process.
    #[derive(Debug)]
    pub struct BatchControl {
        requests: BufReader<pipe::Receiver>,
        reply: pipe::Sender,
        /// A call was read and not answered yet.
        pending: bool,
    }

    /// Makes a fresh named pipe at `path`, writable by any user (user code may run as
    /// another user than the engine).
    fn fresh_pipe(path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
        nix::unistd::mkfifo(path, mode).map_err(io::Error::from)?;
        // The umask applied to mkfifo; the mode is set as meant.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
    }

    impl BatchControl {
        /// Makes the control pipes in `dir` (created; stale pipes are replaced, so nothing
        /// an earlier process left in them is read) and serves them. Must run inside a
        /// Tokio runtime.
        pub fn create(dir: &Path) -> io::Result<Self> {
            std::fs::create_dir_all(dir)?;
            let (request, reply) = (dir.join(REQUEST), dir.join(REPLY));
            fresh_pipe(&request)?;
            fresh_pipe(&reply)?;
            // Both ends are held open read-write: a client's open never blocks or fails
            // while this control lives, and a client going away is not an end of stream.
            let requests = pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(&request)?;
            let reply = pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(&reply)?;
            Ok(BatchControl {
                requests: BufReader::new(requests),
                reply,
                pending: false,
            })
        }

        /// Waits for the next `next datum` call and returns its report; the caller stays
        /// blocked until [`BatchControl::release`]. A malformed request is
        /// [`io::ErrorKind::InvalidData`].
        pub async fn next_call(&mut self) -> io::Result<Report> {
            let mut line = String::new();
            (&mut self.requests)
                .take(MAX_LINE)
                .read_line(&mut line)
                .await?;
            let report = Report::parse(&line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("expected \"next ok\" or \"next error MESSAGE\", got {line:?}"),
                )
            })?;
            self.pending = true;
            Ok(report)
        }

        /// Lets the pending call return: the next datum is mounted.
        pub async fn release(&mut self) -> io::Result<()> {
            if !std::mem::take(&mut self.pending) {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "no next datum call is waiting",
                ));
            }
            self.reply.write_all(b"datum\n").await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_bad_lines_are_refused() {
        assert_eq!(Report::parse(&Report::Ok.line()), Some(Report::Ok));
        let e = Report::Error("bad\ninput".into());
        assert_eq!(
            Report::parse(&e.line()),
            Some(Report::Error("bad input".into()))
        );
        assert_eq!(Report::parse("next maybe\n"), None);
        assert_eq!(Report::parse("hello\n"), None);
        let long = Report::Error("é".repeat(3000)).line();
        assert!(long.len() < 4096 && long.ends_with('\n'), "{}", long.len());
    }

    #[tokio::test]
    async fn a_call_blocks_until_released_and_carries_its_report() {
        let dir = tempfile::tempdir().unwrap();
        let control_dir = dir.path().join(DIR);
        let missing = next_datum(&control_dir, &Report::Ok).unwrap_err();
        assert!(
            matches!(missing, NextDatumError::NotServed { .. }),
            "{missing}"
        );
        let mut control = BatchControl::create(&control_dir).unwrap();
        let released = std::sync::Arc::new(std::sync::Mutex::new(0));
        let (d, r) = (control_dir.clone(), released.clone());
        let client = std::thread::spawn(move || {
            next_datum(&d, &Report::Ok).unwrap();
            *r.lock().unwrap() += 1;
            next_datum(&d, &Report::Error("it broke".into())).unwrap();
            *r.lock().unwrap() += 1;
        });
        assert_eq!(control.next_call().await.unwrap(), Report::Ok);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(*released.lock().unwrap(), 0, "returned before its release");
        control.release().await.unwrap();
        assert_eq!(
            control.next_call().await.unwrap(),
            Report::Error("it broke".into())
        );
        control.release().await.unwrap();
        tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap();
        assert_eq!(*released.lock().unwrap(), 2);
        assert!(control.release().await.is_err(), "nothing is waiting");
    }

    #[tokio::test]
    async fn a_shell_speaks_the_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let control_dir = dir.path().join(DIR);
        let mut control = BatchControl::create(&control_dir).unwrap();
        let script = format!(
            "echo 'next ok' > {d}/request && read -r a < {d}/reply && \
             echo 'next error no good' > {d}/request && read -r b < {d}/reply && echo \"$a $b\"",
            d = control_dir.display()
        );
        let child = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
        });
        let serve = async {
            assert_eq!(control.next_call().await.unwrap(), Report::Ok);
            control.release().await.unwrap();
            assert_eq!(
                control.next_call().await.unwrap(),
                Report::Error("no good".into())
            );
            control.release().await.unwrap();
        };
        let (out, ()) = tokio::join!(child, serve);
        let out = out.unwrap().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "datum datum\n");
    }
}
