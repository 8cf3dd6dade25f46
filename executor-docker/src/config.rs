//! Executor settings: daemon address, data mode, image pulls, network, ownership.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use pipeline_core::executor::SecretValue;

/// The daemon address used when neither [`DockerConfig::host`] nor `DOCKER_HOST` is set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// When to pull `transform.image` from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Use the local image; pull only when it is absent (the default).
    #[default]
    IfNotPresent,
    /// Always pull before starting workers; a failed pull fails the pipeline.
    Always,
    /// Never pull; an absent image fails the pipeline.
    Never,
}

/// How a datum's `/pfs` reaches the worker container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// [`DataMode::Bind`] for a unix-socket daemon (same machine, shared filesystem),
    /// [`DataMode::Archive`] for a TCP daemon (the default).
    #[default]
    Auto,
    /// Bind-mount per-worker host directories: inputs read-only at `/pfs`, `/pfs/out` writable.
    /// The datum's inputs are moved (renamed) into the mounted directory, so no data is copied
    /// when the scratch directory and [`DockerConfig::work_root`] share a filesystem.
    Bind,
    /// Copy inputs in and outputs out through the Engine API archive endpoints (tar in, tar out).
    /// Works with a remote daemon; inputs are made read-only by file mode only.
    Archive,
}

/// Registry credentials for one `transform.image_pull_secrets` entry. `Debug` hides the password.
#[derive(Clone)]
pub struct RegistryAuth {
    /// Registry user name.
    pub username: String,
    /// Registry password or token.
    pub password: SecretValue,
    /// Registry address, e.g. `registry.example.com` (optional).
    pub server_address: Option<String>,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server_address", &self.server_address)
            .finish()
    }
}

/// Settings of a [`DockerExecutor`](crate::DockerExecutor). Start from `DockerConfig::default()`.
///
/// ```
/// use std::time::Duration;
/// use executor_docker::{DataMode, DockerConfig, PullPolicy};
///
/// let config = DockerConfig {
///     owner: "my-app".into(),
///     pull_policy: PullPolicy::Never,
///     data_mode: DataMode::Archive,
///     pull_timeout: Duration::from_secs(10),
///     ..DockerConfig::default()
/// };
/// assert_eq!(config.network_mode, "none");
/// ```
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Daemon address (`unix:///path`, `tcp://host:port`, `http://host:port`). `None`: the
    /// `DOCKER_HOST` environment variable, then [`DEFAULT_DOCKER_HOST`].
    pub host: Option<String>,
    /// How `/pfs` reaches containers. Default [`DataMode::Auto`].
    pub data_mode: DataMode,
    /// Image pull policy. Default [`PullPolicy::IfNotPresent`].
    pub pull_policy: PullPolicy,
    /// Upper bound for one image pull (a registry that does not answer fails, never hangs).
    pub pull_timeout: Duration,
    /// Upper bound for connecting to the daemon and for each ordinary API request.
    pub request_timeout: Duration,
    /// Docker network mode of worker containers (`none`, `bridge`, `host`, a network name).
    /// Default `none`: user code gets no network unless the host application allows it.
    pub network_mode: String,
    /// Identifies this host application instance. Every container carries it as a label so that
    /// a restarted host finds (and removes) the leftovers of a crashed one. Use a value unique
    /// per host application instance that shares a daemon.
    pub owner: String,
    /// Remove containers (and work directories) labelled with [`Self::owner`] when connecting:
    /// they are leftovers of a previous run of this host. Default `true`.
    pub remove_leftovers_on_connect: bool,
    /// Where [`DataMode::Bind`] keeps per-worker directories (`<work_root>/<container name>`).
    /// Put it on the same filesystem as the engine's scratch directories so inputs are renamed,
    /// not copied. Default: `<temp dir>/executor-docker`.
    pub work_root: PathBuf,
    /// Credentials by `image_pull_secrets` name, supplied by the host application.
    pub registry_auth: BTreeMap<String, RegistryAuth>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: None,
            data_mode: DataMode::Auto,
            pull_policy: PullPolicy::IfNotPresent,
            pull_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            network_mode: "none".to_string(),
            owner: "pipeline".to_string(),
            remove_leftovers_on_connect: true,
            work_root: std::env::temp_dir().join("executor-docker"),
            registry_auth: BTreeMap::new(),
        }
    }
}

/// The daemon address actually used, after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// A unix socket path (a daemon on this machine).
    Unix(PathBuf),
    /// An HTTP endpoint (`tcp://` is rewritten to `http://`).
    Http(String),
}

impl DockerHost {
    /// Parses `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`.
    pub fn parse(address: &str) -> Option<DockerHost> {
        if let Some(path) = address.strip_prefix("unix://") {
            return Some(DockerHost::Unix(PathBuf::from(path)));
        }
        if address.starts_with('/') {
            return Some(DockerHost::Unix(PathBuf::from(address)));
        }
        if let Some(rest) = address.strip_prefix("tcp://") {
            return Some(DockerHost::Http(format!("http://{rest}")));
        }
        if address.starts_with("http://") {
            return Some(DockerHost::Http(address.to_string()));
        }
        None
    }

    /// The address as a URL, for messages.
    pub fn display(&self) -> String {
        match self {
            DockerHost::Unix(p) => format!("unix://{}", p.display()),
            DockerHost::Http(u) => u.clone(),
        }
    }
}

impl DockerConfig {
    /// The address this config points at: [`Self::host`], `DOCKER_HOST`, or the default socket.
    pub fn address(&self) -> String {
        self.host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string())
    }

    /// The data mode after resolving [`DataMode::Auto`] for `host`.
    pub fn effective_data_mode(&self, host: &DockerHost) -> DataMode {
        match (self.data_mode, host) {
            (DataMode::Auto, DockerHost::Unix(_)) => DataMode::Bind,
            (DataMode::Auto, DockerHost::Http(_)) => DataMode::Archive,
            (mode, _) => mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_picks_modes() {
        let c = DockerConfig::default();
        let unix = DockerHost::parse("unix:///var/run/docker.sock").unwrap();
        assert_eq!(unix, DockerHost::Unix("/var/run/docker.sock".into()));
        assert_eq!(c.effective_data_mode(&unix), DataMode::Bind);
        let tcp = DockerHost::parse("tcp://10.0.0.1:2375").unwrap();
        assert_eq!(tcp, DockerHost::Http("http://10.0.0.1:2375".into()));
        assert_eq!(c.effective_data_mode(&tcp), DataMode::Archive);
        let forced = DockerConfig {
            data_mode: DataMode::Archive,
            ..DockerConfig::default()
        };
        assert_eq!(forced.effective_data_mode(&unix), DataMode::Archive);
        assert_eq!(DockerHost::parse("ssh://x"), None);
    }

    #[test]
    fn registry_auth_debug_hides_password() {
        let a = RegistryAuth {
            username: "u".into(),
            password: SecretValue(b"hunter2".to_vec()),
            server_address: None,
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
