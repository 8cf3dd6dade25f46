//! Reaching the store: through its server when one runs (the store's Unix socket, or
//! `--server`), otherwise by opening it in this process behind the same API for the length
//! of one command (embedded mode). Every command then talks to a [`Client`], so output and
//! exit codes are the same in both modes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pipeline_core::pfs::{PfsError, Store, StoreLocation, shown_location};
use pipeline_server::{AppState, Client, ClientResult, JobRunner};

use crate::engine::ExecutorKind;
use crate::error::{CliError, Res};

/// The global options that say where the store is and how to reach it.
#[derive(Debug, Clone)]
pub struct Global {
    /// The store directory; with `store`, this host's own state (socket, scratch).
    pub root: PathBuf,
    /// A server store (`postgres://...`) instead of the `root` directory (`--store`).
    pub store: Option<String>,
    /// Where a server store keeps contents (`--objects`).
    pub objects: Option<String>,
    /// A server to use instead of the store's own (`http://HOST:PORT` or `unix:PATH`).
    pub server: Option<String>,
    /// The bearer token for `server`.
    pub token: Option<String>,
    /// Don't wait for the jobs a command starts.
    pub no_wait: bool,
    /// Fail at once when another process holds the store, instead of waiting for it.
    pub no_wait_lock: bool,
    /// The project to act in (`--project`, PIPECTL_PROJECT).
    pub project: Option<String>,
}

/// Whether a command may create the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: a missing store is an error naming where we looked.
    Read,
    /// Writes: creates the store when it does not exist yet.
    Write,
}

/// The file name of the server's socket inside the store directory.
pub const SOCKET_NAME: &str = "api.sock";

/// The socket a server of the store at `root` listens on.
pub fn socket_path(root: &Path) -> PathBuf {
    root.join(SOCKET_NAME)
}

/// A client of the store's API and the runtime its calls run on.
pub struct Conn {
    rt: tokio::runtime::Runtime,
    /// The client.
    pub client: Client,
}

impl Conn {
    /// Runs one client call to completion.
    pub fn call<T>(&self, f: impl Future<Output = ClientResult<T>>) -> Res<T> {
        self.rt.block_on(f).map_err(CliError::from)
    }

    /// Runs any future on the connection's runtime (e.g. a local executor's).
    pub fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt.block_on(f)
    }
}

/// Connects to the store's server, or opens the store in this process (with the executors
/// its pipelines use, plus `extra`).
pub fn connect(g: &Global, access: Access, extra: Option<ExecutorKind>) -> Res<Conn> {
    let server = server_client(g)?;
    if let Some(client) = server {
        if crate::engine::exposes_any() {
            return Err(CliError::BadArgs(format!(
                "--expose (or PIPECTL_EXPOSE) has no effect through a server ({}): user code \
                 runs in the server, so pass it to `pipectl serve`",
                client.target()
            )));
        }
        return Ok(Conn {
            rt: runtime()?,
            client,
        });
    }
    let store = open_store(g, access)?;
    let (rt, engine) = crate::engine::open_engine_on(store, &g.root, extra)?;
    let state = AppState::new(engine, JobRunner::OnWait, true);
    Ok(Conn {
        rt,
        client: Client::in_process(state),
    })
}

/// A client of the server `--server` names, or of the store's own server when its socket
/// answers; `None` when there is none (embedded mode).
fn server_client(g: &Global) -> Res<Option<Client>> {
    if let Some(url) = &g.server {
        return Ok(Some(Client::from_url(url, g.token.clone())?));
    }
    let socket = socket_path(&g.root);
    match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(probe) if listener_alive(&probe) => Ok(Some(Client::unix(socket))),
        _ => Ok(None),
    }
}

/// Whether the process that made the listening end of `stream` still runs. A server killed a
/// moment ago can leave its socket listening in a child that has not exited yet (a datum's
/// process between `clone` and `execve` holds every descriptor), which accepts connections
/// no one will serve. The peer's credentials are the listener's, taken when it listened.
fn listener_alive(stream: &std::os::unix::net::UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    match getsockopt(stream, PeerCredentials) {
        // A pid from another pid namespace reads as 0: nothing to check it against.
        Ok(cred) if cred.pid() > 0 => {
            let probe = nix::sys::signal::kill(nix::unistd::Pid::from_raw(cred.pid()), None);
            probe != Err(nix::errno::Errno::ESRCH)
        }
        _ => true,
    }
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// The server store `--store` names, with `--objects` and `--root` as this host's state.
pub fn location(g: &Global) -> Res<Option<StoreLocation>> {
    match (&g.store, &g.objects) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(CliError::BadArgs(
            "--objects (PIPECTL_OBJECTS) goes with --store (PIPECTL_STORE): a store directory \
             (--root) keeps its objects inside it"
                .into(),
        )),
        (Some(store), objects) => Ok(Some(StoreLocation {
            store: store.clone(),
            objects: objects.clone(),
            local: g.root.clone(),
        })),
    }
}

/// `pipectl init --store URL --objects DIR`: creates (or upgrades) the server store's schema
/// and says where the store is.
pub fn init_server_store(g: &Global) -> Res {
    let Some(location) = location(g)? else {
        return Ok(());
    };
    let store = Store::init(&location)?;
    drop(store);
    crate::output::outln!(
        "store at {} (schema version {}), objects at {}",
        shown_location(&location.store),
        pipeline_core::pfs::POSTGRES_SCHEMA_VERSION,
        location.objects.as_deref().unwrap_or("")
    );
    Ok(())
}

/// The store `pipectl serve` owns: the `--store` server store, or the `--root` directory
/// (created). A store another process holds is an error, not waited for.
pub fn open_served_store(g: &Global) -> Res<Store> {
    let store = match location(g)? {
        Some(location) => Store::connect(&location)?,
        None => Store::open(&g.root)?,
    };
    crate::engine::report_recovered(&store);
    Ok(store)
}

/// Opens the server store at `location`, waiting (with a message) while another process
/// holds it unless `--no-wait-lock`. Never creates its schema (`pipectl init` does).
fn open_server_store(g: &Global, location: &StoreLocation) -> Res<Store> {
    let mut told = false;
    loop {
        match Store::connect(location) {
            Ok(store) => {
                crate::engine::report_recovered(&store);
                return Ok(store);
            }
            Err(PfsError::StoreInUse { holder, store }) if !g.no_wait_lock => {
                if !told {
                    eprintln!(
                        "pipectl: waiting for the store {store} (in use by {holder}); \
                         --no-wait-lock fails at once instead"
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Opens the store in this process: the `--store` server store, or the store at `g.root`.
/// A read never creates a store directory; a store another process holds is waited for
/// (with a message) unless `--no-wait-lock`.
pub fn open_store(g: &Global, access: Access) -> Res<Store> {
    if let Some(location) = location(g)? {
        return open_server_store(g, &location);
    }
    let mut told = false;
    loop {
        let opened = match access {
            Access::Write => Store::open(&g.root).map(Some),
            Access::Read => Store::open_existing(&g.root),
        };
        match opened {
            Ok(Some(store)) => {
                crate::engine::report_recovered(&store);
                return Ok(store);
            }
            Ok(None) => return Err(missing_store(&g.root)),
            Err(PfsError::Locked { holder, .. }) if !g.no_wait_lock => {
                if !told {
                    eprintln!(
                        "pipectl: waiting for the store {} (in use by {holder}); \
                         --no-wait-lock fails at once instead",
                        g.root.display()
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn missing_store(root: &Path) -> CliError {
    let shown = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    CliError::NoStore(shown)
}
