//! `pipectl serve` as a library: the store's one owner. [`Server::start`] binds the store's
//! Unix socket (and optionally TCP behind a token), starts the background runner and serves
//! the API; [`Server::stop`] stops cleanly (503 to new requests, running datums cancelled
//! and their job left resumable, workers stopped, connections drained, socket removed).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use pipeline_core::pps::Engine;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{TokenError, load_or_create_token, require_token};
use crate::listen::{Limits, ListenError, Listener, SocketFile, accept, bind_tcp, bind_unix};
use crate::shutdown::refuse_when_stopping;
use crate::state::{AppState, JobRunner};

/// The socket's file name inside the store directory.
pub const SOCKET_NAME: &str = "api.sock";

/// What a server listens on and how.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The store directory (the socket and the token file live there).
    pub root: PathBuf,
    /// Also listen on this TCP address.
    pub listen: Option<SocketAddr>,
    /// Also serve the S3 gateway ([`crate::s3`]) on this TCP address.
    pub s3: Option<SocketAddr>,
    /// Serve TCP (API and S3 gateway) without a token (refused unless the address is
    /// loopback).
    pub no_auth: bool,
    /// The longest the runner waits before looking for pending jobs again.
    pub poll: Duration,
    /// Connection limits.
    pub limits: Limits,
    /// A directory put first on the `PATH` of spouts on the process executor (where
    /// `pipectl` is), see [`crate::spout`].
    pub spout_bin_dir: Option<PathBuf>,
}

impl ServeOptions {
    /// Options for the store at `root`: the socket only, a 1 s poll, default limits.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ServeOptions {
            root: root.into(),
            listen: None,
            s3: None,
            no_auth: false,
            poll: Duration::from_secs(1),
            limits: Limits::default(),
            spout_bin_dir: None,
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The token could not be read or created.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A running server.
pub struct Server {
    state: AppState,
    socket: SocketFile,
    tcp: Option<SocketAddr>,
    s3: Option<SocketAddr>,
    accepting: CancellationToken,
    runner_stop: CancellationToken,
    runner: tokio::task::JoinHandle<()>,
    tasks: TaskTracker,
    drain: Duration,
}

impl Server {
    /// Binds the listeners and starts serving `engine` (which must own the store at
    /// `opts.root`) with a background runner. Call from within a tokio runtime.
    pub async fn start(engine: Engine, opts: ServeOptions) -> Result<Server, ServeError> {
        let (unix, socket) = bind_unix(&opts.root.join(SOCKET_NAME))?;
        let tcp = match opts.listen {
            Some(addr) => Some(bind_tcp(addr, !opts.no_auth).await?),
            None => None,
        };
        let s3 = match opts.s3 {
            Some(addr) => Some(bind_tcp(addr, !opts.no_auth).await?),
            None => None,
        };
        let token = match (tcp.is_some() || s3.is_some(), opts.no_auth) {
            (true, false) => Some(load_or_create_token(&opts.root)?),
            _ => None,
        };
        let state = AppState::new(engine, JobRunner::Background, true);
        let tasks = TaskTracker::new();
        let accepting = CancellationToken::new();
        tasks.spawn(accept(
            Listener::Unix(unix),
            app(&state),
            opts.limits,
            accepting.clone(),
            tasks.clone(),
        ));
        let s3_addr = s3.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(l) = s3 {
            let auth = match &token {
                Some(t) => crate::s3::S3Auth::Token(t.as_str().into()),
                None => crate::s3::S3Auth::Open,
            };
            // Parts go to owner-only directories in the system's temporary directory.
            let spool = None;
            tasks.spawn(accept(
                Listener::Tcp(l),
                crate::s3::router(state.clone(), auth, spool),
                opts.limits,
                accepting.clone(),
                tasks.clone(),
            ));
        }
        let mut tcp_addr = None;
        if let Some(l) = tcp {
            tcp_addr = l.local_addr().ok();
            let mut tcp_app = app(&state.with_local_paths(false));
            if let Some(t) = token {
                let t: Arc<str> = t.into();
                tcp_app = tcp_app.layer(from_fn_with_state(t, require_token));
            }
            tasks.spawn(accept(
                Listener::Tcp(l),
                tcp_app,
                opts.limits,
                accepting.clone(),
                tasks.clone(),
            ));
        }
        let gate = crate::spout::SpoutGate::new(
            state.clone(),
            opts.limits,
            accepting.clone(),
            tasks.clone(),
            opts.spout_bin_dir.clone(),
        );
        state.engine().set_spout_host(Arc::new(gate));
        let runner_stop = CancellationToken::new();
        let runner = tokio::spawn(crate::runner::run_jobs(
            state.clone(),
            opts.poll,
            runner_stop.clone(),
        ));
        Ok(Server {
            state,
            socket,
            tcp: tcp_addr,
            s3: s3_addr,
            accepting,
            runner_stop,
            runner,
            tasks,
            drain: opts.limits.drain,
        })
    }
}

impl Server {
    /// The Unix socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.socket.path
    }

    /// The TCP address actually bound (with the port the system chose for port 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The S3 gateway's address actually bound, when it runs.
    pub fn s3_addr(&self) -> Option<SocketAddr> {
        self.s3
    }

    /// The state the handlers share.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops cleanly: new requests get 503 `unavailable` from now on, event streams and
    /// waits end; the runner stops and the running job's datums are cancelled, leaving the job
    /// RUNNING with what it recorded (the next start resumes it; nothing half-done is
    /// committed); workers stop; open connections get `drain` to finish; the socket file is
    /// removed.
    pub async fn stop(self) {
        self.state.begin_stop();
        let engine = self.state.engine().clone();
        engine.park();
        self.runner_stop.cancel();
        let _ = self.runner.await;
        engine.shutdown().await;
        self.accepting.cancel();
        self.tasks.close();
        let _ =
            tokio::time::timeout(self.drain + Duration::from_millis(500), self.tasks.wait()).await;
        self.socket.remove();
    }
}

/// The API for one listener: the router, behind the stop gate.
pub(crate) fn app(state: &AppState) -> axum::Router {
    crate::router::router(state.clone())
        .layer(from_fn_with_state(state.clone(), refuse_when_stopping))
}
