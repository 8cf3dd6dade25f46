//! `executor-docker`: runs pipeline user code in **warm Docker containers** through the
//! [`pipeline_core::executor::Executor`] trait.
//!
//! # Why bollard
//!
//! The executor talks to the Docker Engine API directly with [`bollard`] rather than shelling
//! out to the `docker` CLI: one typed, async client (tokio + hyper) that speaks unix sockets and
//! TCP, negotiates the API version with older daemons, demultiplexes exec output into stdout and
//! stderr frames, and exposes the archive endpoints the remote mode needs. It is actively
//! maintained; the alternative crate (`docker-api`) has been idle since 2023, and the CLI would
//! cost a process per call and leave us parsing text.
//!
//! # Model
//!
//! - [`DockerExecutor::builder`] then [`DockerExecutorBuilder::build`] reaches the daemon at
//!   [`DockerConfig::host`], `DOCKER_HOST`, or `unix:///var/run/docker.sock`; an absent or
//!   silent daemon is
//!   [`ExecutorError::Unavailable`](pipeline_core::executor::ExecutorError::Unavailable) naming
//!   the address. It removes containers left by a crashed run of the same [`DockerConfig::owner`].
//! - `start_workers` resolves `transform.image` locally, pulls it per [`PullPolicy`] within
//!   [`DockerConfig::pull_timeout`] (credentials from [`DockerConfig::registry_auth`] by
//!   `image_pull_secrets` name), then starts one container per worker, labelled with owner,
//!   project, pipeline, version and worker index (see [`labels`]). Its main process is a small
//!   `sh` keep-alive loop; resources map to container limits (`resources.rs`), the network mode is
//!   [`DockerConfig::network_mode`] (default `none`), secret *files* are copied into the
//!   container before it starts.
//! - Each datum is **one exec** in the worker's container (`worker.rs` explains the wrapper, the
//!   kill of the process tree on cancel, the engine's timeout included, and how a dead
//!   container is replaced). Secret *environment variables* are part of the datum's
//!   environment, passed at exec time, so they are never in the container's configuration,
//!   labels or logs.
//! - `/pfs` reaches the container by bind mounts (daemon on this machine) or by the archive API
//!   (remote daemon): see [`DataMode`] and `staging.rs`. [`DataMode::Auto`] picks bind mounts for
//!   a `unix://` address and the archive API for `tcp://`/`http://`.
//!
//! # Guarantees and their limits
//!
//! - **Inputs are read-only.** Bind mode mounts them read-only: enforced for every user,
//!   root included. Archive mode can only upload them without write bits, which stops non-root
//!   users but not root (root's writes stay inside the container and are wiped after the datum).
//! - **Nothing of one datum reaches the next** under `/pfs` (emptied around every datum) or in
//!   processes (killed). Files written elsewhere in the container (e.g. `/tmp`) persist in the
//!   warm worker, as in Pachyderm.
//! - **Bind mode needs a shared filesystem.** `unix://` is taken to mean "daemon on this machine,
//!   same filesystem". A socket forwarded from another machine (or a daemon in another mount
//!   namespace) needs [`DataMode::Archive`] set explicitly.
//! - Inputs are *renamed* from the scratch directory into the worker's mounted directory and
//!   renamed back before `run` returns (copied instead when [`DockerConfig::work_root`] is on
//!   another filesystem).
//!
//! - **Limits hold.** `resource_limits` become the container's `Memory` (no swap beyond it),
//!   `NanoCpus` and `PidsLimit`; a datum over its memory limit is
//!   [`DatumOutcome::OutOfMemory`](pipeline_core::executor::DatumOutcome::OutOfMemory)
//!   (the cgroup's `oom_kill` counter tells it from a plain `kill -9`, see `oom.rs`), and
//!   the worker container survives for the next datum.
//! - **Secrets and tracing.** Secret values never go into container configuration, labels,
//!   errors or this crate's logs. bollard itself logs raw request bodies at `TRACE` level, and
//!   the exec request carries the datum's environment: keep `bollard=trace` off where secrets
//!   matter.
//! - **Ownership of outputs.** Bind mode keeps the owner of files user code wrote to
//!   `/pfs/out` (the container user's uid on the host); archive mode unpacks them as the host
//!   process.
//!
//! # Requirements on the image
//!
//! The worker image must have a POSIX `sh` with `kill` and `printf` (builtins in busybox, dash
//! and bash) on its `PATH`: the keep-alive and the per-datum wrapper are shell snippets. An
//! image without `sh` fails `start_workers` with
//! [`ExecutorError::Unsupported`](pipeline_core::executor::ExecutorError::Unsupported) naming
//! the image. (Pachyderm avoids this by injecting its own static binary into user containers;
//! doing the same here needs a static helper binary shipped with the host application, which
//! is future work.) The archive mode also needs `rm` and `mkdir`.
//!
//! ```no_run
//! use executor_docker::{DataMode, DockerExecutor};
//! use pipeline_core::executor::Executor;
//!
//! # async fn demo() -> Result<(), pipeline_core::executor::ExecutorError> {
//! let executor = DockerExecutor::builder()
//!     .owner("my-app")
//!     .data_mode(DataMode::Auto)
//!     .build()
//!     .await?;
//! assert_eq!(executor.name(), "docker");
//! # Ok(())
//! # }
//! ```

mod config;
mod container;
mod executor;
mod images;
mod network;
mod oom;
mod pipe;
mod push;
mod resources;
mod staging;
#[cfg(feature = "testing")]
pub mod test_registry;
#[cfg(feature = "testing")]
pub mod testing;
mod worker;

pub use config::{
    DEFAULT_DOCKER_HOST, DataMode, DockerConfig, DockerHost, PullPolicy, RegistryAuth,
};
pub use container::labels;
pub use executor::{DockerExecutor, DockerExecutorBuilder};
pub use network::WORKER_NETWORK;
pub use push::{PushError, PushedImage};
pub use worker::DockerWorker;
