//! Where the server listens and how it reads requests: the store's owner-only Unix socket,
//! an optional TCP address, and one HTTP/1.1 connection task per client with a cap on header
//! size (431 beyond it) and a deadline for the headers (slow clients are dropped).

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How connections are read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request head (request line and headers) accepted; larger gets 431.
    pub max_header_bytes: usize,
    /// How long a client may take to send a request head before it is disconnected.
    pub header_read_timeout: Duration,
    /// How long open connections get to finish their requests when the server stops.
    pub drain: Duration,
}

impl Default for Limits {
    /// 64 KiB of headers, 10 s to send them, 3 s to drain.
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(3),
        }
    }
}

/// Why the server could not listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// A server answers on the store's socket already.
    #[error("another server already serves this store (it answers on {0}); stop it first")]
    SocketInUse(PathBuf),
    /// `--no-auth` on an address other hosts can reach.
    #[error(
        "--no-auth on {0}: refused on a non-loopback address (anyone who reaches it could use the store); use 127.0.0.1 or ::1, or drop --no-auth"
    )]
    NoAuthNotLoopback(SocketAddr),
    /// Binding or preparing a listener failed.
    #[error("listening on {what}")]
    Bind {
        /// The socket path or address.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The file a bound Unix socket is at, with its identity (so that only our own file is
/// removed at the end, never a later server's).
#[derive(Debug)]
pub struct SocketFile {
    /// Where it is.
    pub path: PathBuf,
    ino: (u64, u64),
}

impl SocketFile {
    /// Removes the socket file if it is still ours.
    pub fn remove(&self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && (m.dev(), m.ino()) == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the Unix socket at `path`, mode 0600 from the moment it has that name: it is bound
/// in a fresh 0700 directory next to it, narrowed to 0600, then renamed into place (which
/// also replaces a stale socket a killed server left). A socket something answers on is
/// another server: refused.
pub fn bind_unix(path: &Path) -> Result<(tokio::net::UnixListener, SocketFile), ListenError> {
    let bind_err = |source| ListenError::Bind {
        what: path.display().to_string(),
        source,
    };
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ListenError::SocketInUse(path.to_path_buf()));
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    let private = parent.join(format!(".api-sock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(bind_err)?;
    let tmp = private.join("s");
    let bound = (|| {
        let l = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        l.set_nonblocking(true)?;
        let m = std::fs::symlink_metadata(path)?;
        Ok::<_, std::io::Error>((tokio::net::UnixListener::from_std(l)?, (m.dev(), m.ino())))
    })();
    let _ = std::fs::remove_dir_all(&private);
    let (listener, ino) = bound.map_err(bind_err)?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            ino,
        },
    ))
}

/// Binds TCP at `addr`; without a token (`authenticated` false) only on a loopback address.
pub async fn bind_tcp(
    addr: SocketAddr,
    authenticated: bool,
) -> Result<tokio::net::TcpListener, ListenError> {
    if !authenticated && !addr.ip().is_loopback() {
        return Err(ListenError::NoAuthNotLoopback(addr));
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind {
            what: addr.to_string(),
            source,
        })
}

/// A listener of either kind.
pub enum Listener {
    /// The store's Unix socket.
    Unix(tokio::net::UnixListener),
    /// TCP.
    Tcp(tokio::net::TcpListener),
}

/// Accepts connections until `stop` is cancelled, serving each with `app` on a task of
/// `tasks`; a connection still open at `stop` is asked to finish (graceful HTTP/1.1 close)
/// and dropped after `limits.drain`.
pub async fn accept(
    listener: Listener,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = accept_one(&listener) => a,
        };
        match accepted {
            Ok(Stream::Unix(s)) => {
                tasks.spawn(connection(s, app.clone(), limits, stop.clone()));
            }
            Ok(Stream::Tcp(s)) => {
                let _ = s.set_nodelay(true);
                tasks.spawn(connection(s, app.clone(), limits, stop.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "server: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept_one(l: &Listener) -> std::io::Result<Stream> {
    match l {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Stream::Tcp(s)),
    }
}

/// Serves one connection until the client closes it, or `stop` (then drains).
async fn connection<S>(stream: S, app: Router, limits: Limits, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "server: connection ended with an error");
            }
        }
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.drain, conn).await;
        }
    }
}
