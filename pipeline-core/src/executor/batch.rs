//! The datum-batching control channel (reference §3.5, `transform.datum_batching`): how a
//! user process that starts once per datum set asks for its next datum.
//!
//! The worker listens on a Unix stream socket in the datum's scratch directory
//! ([`SOCKET`], seen by user code as `/pfs/.batch/next.sock`, named by the
//! [`SOCKET_ENV`] variable). Each `pipectl next datum` call is one connection:
//!
//! 1. the client sends one line, `next ok` or `next error <message>`: its report of the
//!    previous datum (ignored on the first call, when there was none);
//! 2. the worker reads it ([`BatchControl::next_call`]), records the previous datum's result,
//!    mounts the next datum (its per-datum variables in `/pfs/.env`) and answers `datum`
//!    ([`BatchControl::release`]); the client returns 0.
//!
//! After the set's last datum the call is never answered: the worker ends the process.
//!
//! Status: the protocol, its server side here and its client (`pipectl next datum`) exist;
//! no executor runs a batching process yet, so `datum_batching` is still refused at create
//! time.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// The socket's path relative to the datum's scratch directory (`/pfs` for user code).
pub const SOCKET: &str = ".batch/next.sock";

/// The environment variable naming the socket for `pipectl next datum`.
pub const SOCKET_ENV: &str = "PIPECTL_NEXT_DATUM_SOCKET";

/// Where `pipectl next datum` looks when [`SOCKET_ENV`] is not set.
pub const DEFAULT_SOCKET: &str = "/pfs/.batch/next.sock";

/// The longest request line accepted, bytes.
const MAX_LINE: u64 = 64 * 1024;

/// What a `next datum` call reports about the previous datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// It succeeded.
    Ok,
    /// It failed, with this message.
    Error(String),
}

impl Report {
    /// The request line sending this report.
    fn line(&self) -> String {
        match self {
            Report::Ok => "next ok\n".to_string(),
            Report::Error(m) => format!("next error {}\n", m.replace(['\n', '\r'], " ")),
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
    /// The socket could not be reached (not running under datum batching?).
    #[error(
        "connecting to the datum-batching socket {path}: {source} (is this datum_batching user code?)"
    )]
    Connect {
        /// The socket's path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("talking to the datum-batching socket {path}: {source}")]
    Io {
        /// The socket's path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The worker answered something other than `datum`.
    #[error("the datum-batching socket {path} answered {answer:?}, expected \"datum\"")]
    Answer {
        /// The socket's path.
        path: String,
        /// What it answered.
        answer: String,
    },
}

/// The client side (`pipectl next datum`): reports the previous datum and blocks until the
/// next one is mounted.
pub fn next_datum(socket: &Path, report: &Report) -> Result<(), NextDatumError> {
    let path = socket.display().to_string();
    let io = |source| NextDatumError::Io {
        path: path.clone(),
        source,
    };
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(|source| {
        NextDatumError::Connect {
            path: path.clone(),
            source,
        }
    })?;
    s.write_all(report.line().as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(&s)
        .take(MAX_LINE)
        .read_line(&mut answer)
        .map_err(io)?;
    if answer.trim_end() != "datum" {
        return Err(NextDatumError::Answer { path, answer });
    }
    Ok(())
}

pub use server::BatchControl;

/// The worker side.
mod server {
    use std::io;
    use std::path::Path;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{UnixListener, UnixStream};

    use super::{MAX_LINE, Report};

    /// The worker side: accepts `next datum` calls and answers them.
    #[derive(Debug)]
    pub struct BatchControl {
        listener: UnixListener,
        pending: Option<UnixStream>,
    }

    impl BatchControl {
        /// Listens on `socket` (its directory is created; a stale socket file is replaced).
        pub fn bind(socket: &Path) -> io::Result<Self> {
            if let Some(dir) = socket.parent() {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::remove_file(socket) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            Ok(BatchControl {
                listener: UnixListener::bind(socket)?,
                pending: None,
            })
        }

        /// Waits for the next `next datum` call and returns its report; the caller stays
        /// blocked until [`BatchControl::release`]. A malformed request is
        /// [`io::ErrorKind::InvalidData`].
        pub async fn next_call(&mut self) -> io::Result<Report> {
            self.pending = None;
            let (stream, _) = self.listener.accept().await?;
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            (&mut reader).take(MAX_LINE).read_line(&mut line).await?;
            let report = Report::parse(&line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("expected \"next ok\" or \"next error MESSAGE\", got {line:?}"),
                )
            })?;
            self.pending = Some(reader.into_inner());
            Ok(report)
        }

        /// Lets the pending call return: the next datum is mounted.
        pub async fn release(&mut self) -> io::Result<()> {
            match self.pending.take() {
                Some(mut s) => s.write_all(b"datum\n").await,
                None => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "no next datum call is waiting",
                )),
            }
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
    }

    #[tokio::test]
    async fn a_call_blocks_until_released_and_carries_its_report() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join(SOCKET);
        let mut control = BatchControl::bind(&socket).unwrap();
        let (s, released) = (
            socket.clone(),
            std::sync::Arc::new(std::sync::Mutex::new(0)),
        );
        let r = released.clone();
        let client = std::thread::spawn(move || {
            next_datum(&s, &Report::Ok).unwrap();
            *r.lock().unwrap() += 1;
            next_datum(&s, &Report::Error("it broke".into())).unwrap();
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
        let missing = next_datum(&dir.path().join("nope"), &Report::Ok).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
