//! `pipectl serve`: the store's one owner. Holds the store lock, serves the API on the
//! store's socket (and `--listen` over TCP behind a token), runs jobs, cron ticks and
//! triggers in the background, and stops cleanly on SIGTERM or Ctrl-C.
//!
//! On a server store (`--store postgres://...`) any number of `pipectl serve` processes,
//! on any hosts, share the work: the first owns the store (the leader: API, scheduling,
//! recording) and every one of them runs datum sets from the store's work queue on its own
//! executors. A process that finds the store owned follows: it runs datum sets for the
//! leader and takes the store over when the leader goes away (see `cluster` below and
//! `pipeline_core::pps::Engine::run_host`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::Executor;
use pipeline_core::pfs::Store;
use pipeline_core::pps::Engine;
use pipeline_server::{ServeOptions, Server};

use crate::conn::Global;
use crate::engine::{ExecutorKind, process_executor};
use crate::error::{CliError, Res};

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Also serve the API over TCP at ADDR:PORT (port 0: any free port); every request then
    /// needs `Authorization: Bearer <token>` (see `--print-token`) unless `--no-auth`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Also serve the S3 gateway at ADDR:PORT: every branch as a bucket `BRANCH.REPO`
    /// (`COMMIT.BRANCH.REPO` read-only), for any S3 client; the access key ID and secret are
    /// the token (`--print-token`) unless `--no-auth`, which accepts any.
    #[arg(long, value_name = "ADDR:PORT")]
    pub s3: Option<SocketAddr>,
    /// Serve `--listen` and `--s3` without a token (refused unless the address is loopback).
    #[arg(long)]
    pub no_auth: bool,
    /// Print the store's API token (creating it on first use) and exit.
    #[arg(long)]
    pub print_token: bool,
    /// The longest time between looks for pending jobs, in milliseconds (writes through the
    /// server and cron ticks wake it earlier).
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// With a server store: this engine host's name among the hosts sharing the store, as
    /// datum records show it (default: the machine's host name and this process's pid).
    #[arg(long, value_name = "NAME")]
    pub host_name: Option<String>,
    /// With a server store: seconds a datum set claimed by a host stays its own without the
    /// host renewing the claim; a host that dies or is cut off for longer loses its sets to
    /// the other hosts.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub lease_secs: u64,
}

/// `serve`: serves the store until SIGTERM or Ctrl-C, then stops cleanly (exit 0).
pub fn serve(g: &Global, args: ServeArgs) -> Res {
    let root = g.root.as_path();
    if args.print_token {
        if !root.is_dir() {
            return Err(CliError::NoStore(
                std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
            ));
        }
        let token = pipeline_server::auth::load_or_create_token(root).map_err(failed)?;
        println!("{token}");
        return Ok(());
    }
    check_no_auth(&args)?;
    let socket = crate::conn::socket_path(root);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(CliError::Usage(format!(
            "another `pipectl serve` already serves {} (it answers on {})",
            root.display(),
            socket.display()
        )));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let Some(location) = crate::conn::location(g)? else {
        let store = crate::conn::open_served_store(g)?;
        let engine = rt.block_on(build_engine(store, root, None))?;
        let stop = std::pin::pin!(stopped());
        return rt
            .block_on(serve_engine(engine, &args, root, stop, None))
            .map(drop);
    };
    rt.block_on(crate::serve_hosts::serve_shared(&location, &args, root))
}

/// Why [`serve_engine`] returned.
pub(crate) enum Ended {
    /// Stopped by SIGTERM or Ctrl-C.
    Stopped,
    /// The server store's ownership was lost (its owner session ended).
    LostStore,
}

/// Serves `engine`'s store (and, as a host of several, runs datum sets from its work queue)
/// until `stop` completes or, with `owned`, that server store's ownership is lost.
pub(crate) async fn serve_engine(
    engine: Engine,
    args: &ServeArgs,
    root: &std::path::Path,
    stop: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    owned: Option<&Store>,
) -> Res<Ended> {
    let opts = ServeOptions {
        listen: args.listen,
        s3: args.s3,
        no_auth: args.no_auth,
        poll: Duration::from_millis(args.poll_ms),
        spout_bin_dir: spout_bin_dir(),
        ..ServeOptions::new(root)
    };
    let stop_host = CancellationToken::new();
    let host = engine.is_cluster_host().then(|| {
        let (engine, stop_host) = (engine.clone(), stop_host.clone());
        tokio::spawn(async move { engine.run_host(stop_host).await })
    });
    let server = Server::start(engine, opts).await.map_err(failed)?;
    println!("listening on unix:{}", server.socket_path().display());
    if let Some(addr) = server.tcp_addr() {
        let auth = if args.no_auth {
            "no token"
        } else {
            "bearer token: `pipectl serve --print-token`"
        };
        println!("listening on http://{addr} ({auth})");
        println!("console: http://{addr}/");
    }
    if let Some(addr) = server.s3_addr() {
        let auth = if args.no_auth {
            "any credentials"
        } else {
            "access key and secret: `pipectl serve --print-token`"
        };
        println!("S3 gateway: http://{addr} ({auth})");
    }
    eprintln!("serving {}: SIGTERM or Ctrl-C stops", root.display());
    let ended = tokio::select! {
        () = stop => Ended::Stopped,
        () = crate::serve_hosts::ownership_lost(owned) => Ended::LostStore,
    };
    match ended {
        Ended::Stopped => {
            eprintln!("stopping: running datums are cancelled; their jobs resume at the next start")
        }
        Ended::LostStore => eprintln!(
            "pipectl: warning: lost the store's ownership (the database ended this host's \
             owner session); stopping this engine, then taking the store over again or \
             following its new owner"
        ),
    }
    stop_host.cancel();
    if let Some(h) = host {
        let _ = h.await;
    }
    server.stop().await;
    Ok(ended)
}

/// The directory of the running `pipectl`: first on the `PATH` of spouts on the process
/// executor, so a bare `pipectl put file ...` in a spout runs this same binary.
pub fn spout_bin_dir() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.parent().map(std::path::Path::to_path_buf)
}

/// [`spout_bin_dir`] when the process executor's sandbox does not show it already (it shows
/// the host's system directories only): `pipectl serve` exposes it read-only to user code.
pub fn spout_bin_dir_to_expose() -> Option<std::path::PathBuf> {
    const SHOWN: [&str; 6] = ["/bin", "/sbin", "/usr", "/lib", "/etc", "/opt"];
    spout_bin_dir().filter(|d| !SHOWN.iter().any(|s| d.starts_with(s)))
}

/// `--no-auth` needs a TCP listener, and only on loopback addresses.
fn check_no_auth(args: &ServeArgs) -> Res {
    if !args.no_auth {
        return Ok(());
    }
    if args.listen.is_none() && args.s3.is_none() {
        return Err(CliError::BadArgs(
            "--no-auth applies to --listen or --s3; give one of them".into(),
        ));
    }
    for addr in [args.listen, args.s3].into_iter().flatten() {
        if !addr.ip().is_loopback() {
            return Err(CliError::BadArgs(format!(
                "--no-auth on {addr}: refused on a non-loopback address (anyone who reaches it \
                 could use the store); listen on 127.0.0.1 or ::1, or drop --no-auth"
            )));
        }
    }
    Ok(())
}

/// A server error as a failure (exit 1), its causes on one line.
pub(crate) fn failed(e: impl std::error::Error) -> CliError {
    CliError::Usage(ErrorChain(&e).to_string())
}

/// Waits for SIGTERM or Ctrl-C (SIGINT).
pub(crate) async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
}

/// An engine with every executor this host can run: processes always; Docker when its daemon
/// answers; Kubernetes when a cluster configuration is found. One that cannot be built is
/// skipped with a warning (pipelines that use it fail their jobs, naming it).
pub(crate) async fn build_engine(
    store: Store,
    root: &std::path::Path,
    host: Option<&crate::serve_hosts::Host>,
) -> Res<Engine> {
    let owner = Store::owner_label("pipectl", root);
    let mut builder = Engine::builder(store);
    if let Some(h) = host {
        builder = builder.cluster_host(h.name.clone(), h.lease);
    }
    builder = builder
        .executor(process_executor()?)
        .job_gateways(Arc::new(pipeline_server::s3::S3JobGateways::default()))
        .echo_logs(false);
    let docker = executor_docker::DockerExecutor::builder()
        .config(executor_docker::DockerConfig {
            owner: owner.clone(),
            ..Default::default()
        })
        .build()
        .await;
    match docker {
        Ok(ex) => builder = builder.executor(Arc::new(ex) as Arc<dyn Executor>),
        Err(e) => skipped(ExecutorKind::Docker, &e),
    }
    let k8s = executor_k8s::K8sExecutor::builder()
        .cluster(executor_k8s::ClusterSource::Infer)
        .config(executor_k8s::K8sConfig {
            owner,
            ..Default::default()
        })
        .build()
        .await;
    match k8s {
        Ok(ex) => builder = builder.executor(Arc::new(ex) as Arc<dyn Executor>),
        Err(e) => skipped(ExecutorKind::Kubernetes, &e),
    }
    Ok(builder
        .default_executor(ExecutorKind::Process.name())
        .build()?)
}

/// One line: the error itself, not its chain (a missing cluster configuration explains
/// itself several times over).
fn skipped(kind: ExecutorKind, e: &dyn std::error::Error) {
    eprintln!(
        "pipectl: warning: executor {} unavailable, skipped: {e}",
        kind.name()
    );
}
