//! `pipectl serve` on a server store, as one engine host of several: lead (own the store:
//! serve the API, schedule, record, and run datum sets) or follow (run datum sets for the
//! owner) and take the store over when its owner goes away; a leader that loses the store
//! (its database session ended, say the server restarted) stops its engine and goes round
//! again. The engine side is `pipeline_core::pps::Engine::run_host`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use pipeline_core::executor::CancellationToken;
use pipeline_core::pfs::{PfsError, Store, StoreLocation};

use crate::error::Res;
use crate::serve::{Ended, ServeArgs, build_engine, failed, serve_engine, stopped};

/// This process as one engine host of several sharing a server store.
pub(crate) struct Host {
    /// Its name among the hosts.
    pub(crate) name: String,
    /// How long its claims last unrenewed.
    pub(crate) lease: Duration,
}

/// How often a following host tries to take the store over, and a leader checks it still
/// owns the store.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The longest wait between two tries to reach a store that was reachable before.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Serves the server store at `location` until SIGTERM or Ctrl-C, leading or following
/// (see the module docs). Only the first attempt to reach the store fails the command;
/// later ones (after a lost store) are retried with backoff, saying so.
pub(crate) async fn serve_shared(
    location: &StoreLocation,
    args: &ServeArgs,
    root: &std::path::Path,
) -> Res {
    let host = Host {
        name: args.host_name.clone().unwrap_or_else(default_host_name),
        lease: Duration::from_secs(args.lease_secs.max(1)),
    };
    let mut stop = std::pin::pin!(stopped());
    let mut first = true;
    loop {
        let owned = if first {
            lead_or_follow(location, &host, root, stop.as_mut()).await?
        } else {
            retry_lead_or_follow(location, &host, root, stop.as_mut()).await
        };
        let Some(store) = owned else { return Ok(()) };
        first = false;
        crate::engine::report_recovered(&store);
        drop_leftover_sets(&store).await;
        let engine = build_engine(store.clone(), root, Some(&host)).await?;
        if let Ended::Stopped =
            serve_engine(engine, args, root, stop.as_mut(), Some(&store)).await?
        {
            return Ok(());
        }
    }
}

/// [`lead_or_follow`] until it works (the store's server may be away for a while), waiting
/// 1 s doubling to [`MAX_BACKOFF`] between tries; `None` when stopped meanwhile.
async fn retry_lead_or_follow(
    location: &StoreLocation,
    host: &Host,
    root: &std::path::Path,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) -> Option<Store> {
    let mut wait = Duration::from_secs(1);
    loop {
        match lead_or_follow(location, host, root, stop.as_mut()).await {
            Ok(owned) => return owned,
            Err(e) => eprintln!(
                "pipectl: warning: reaching the store again: {e}; trying again in {} s",
                wait.as_secs()
            ),
        }
        tokio::select! {
            () = stop.as_mut() => return None,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

/// Drops every datum set a former owner left in the queue: this owner resumes the running
/// jobs and publishes their sets again, and sets of jobs that no longer run are litter.
async fn drop_leftover_sets(store: &Store) {
    let Some(queue) = store.work_queue() else {
        return;
    };
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || queue.drop_all()).await {
        eprintln!("pipectl: warning: dropping a former owner's datum sets: {e}");
    }
}

/// `HOSTNAME-PID`.
fn default_host_name() -> String {
    format!("{}-{}", pipeline_core::pfs::host_name(), std::process::id())
}

/// The server store, owned: at once when no process owns it; else after following the
/// owner (running datum sets for it) until it goes away. `None` when stopped meanwhile.
async fn lead_or_follow(
    location: &StoreLocation,
    host: &Host,
    root: &std::path::Path,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) -> Res<Option<Store>> {
    let (shown, holder) = match connect(location).await? {
        Ok(store) => return Ok(Some(store)),
        Err(in_use) => in_use,
    };
    let shared = Store::connect_shared(location)?;
    let engine = build_engine(shared, root, Some(host)).await?;
    eprintln!(
        "following: the store {shown} is owned by {holder}; host {} runs datum sets for it \
         and takes the store over when its owner goes away. SIGTERM or Ctrl-C stops",
        host.name
    );
    let stop_host = CancellationToken::new();
    let running = tokio::spawn({
        let (engine, stop_host) = (engine.clone(), stop_host.clone());
        async move { engine.run_host(stop_host).await }
    });
    let owned = loop {
        tokio::select! {
            () = stop.as_mut() => break None,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        match connect(location).await {
            Ok(Ok(store)) => break Some(store),
            Ok(Err(_)) => {}
            Err(e) => eprintln!("pipectl: warning: taking the store over: {e}; trying again"),
        }
    };
    stop_host.cancel();
    let _ = running.await;
    engine.shutdown().await;
    if owned.is_some() {
        eprintln!("taking over: host {} owns the store {shown} now", host.name);
    }
    Ok(owned)
}

/// The store at `location`, owned by this process; `Ok(Err((store, holder)))` when another
/// process owns it.
async fn connect(location: &StoreLocation) -> Res<Result<Store, (String, String)>> {
    let location = location.clone();
    let opened = tokio::task::spawn_blocking(move || Store::connect(&location))
        .await
        .map_err(failed)?;
    match opened {
        Ok(store) => Ok(Ok(store)),
        Err(PfsError::StoreInUse { store, holder }) => Ok(Err((store, holder))),
        Err(e) => Err(e.into()),
    }
}

/// Completes once `store` (when given) lost its ownership, checking every [`CHECK_EVERY`];
/// never without a store.
pub(crate) async fn ownership_lost(store: Option<&Store>) {
    let Some(store) = store else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let s = store.clone();
        if tokio::task::spawn_blocking(move || s.ownership_lost())
            .await
            .unwrap_or(false)
        {
            return;
        }
    }
}
