//! A real container registry for tests (feature `testing`): Debian's `docker-registry`
//! (distribution 2.x) started on a free loopback port with its own storage directory, and
//! optionally htpasswd authentication. The Docker daemon pushes to `127.0.0.1:PORT` over
//! plain HTTP (loopback registries are insecure-allowed by default).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the registry binary is looked for (`$DOCKER_REGISTRY_BIN` first).
pub const REGISTRY_BINARIES: [&str; 2] = ["/usr/bin/docker-registry", "/usr/bin/registry"];

/// Why a test registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestRegistryError {
    /// No registry binary on this machine.
    #[error(
        "no registry binary (looked at $DOCKER_REGISTRY_BIN and {REGISTRY_BINARIES:?}; install the Debian package `docker-registry`)"
    )]
    NotInstalled,
    /// Files, ports or the process.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The registry did not answer `GET /v2/` in time.
    #[error("the registry on {address} did not answer within {0:?}; its log:\n{log}", .wait)]
    NotReady {
        /// `127.0.0.1:PORT`.
        address: String,
        /// How long we waited.
        wait: Duration,
        /// The registry's output.
        log: String,
    },
}

/// A running registry; killed (and its storage removed) when dropped.
#[derive(Debug)]
pub struct TestRegistry {
    /// `127.0.0.1:PORT`: the registry part of image references.
    pub address: String,
    child: Child,
    dir: PathBuf,
}

impl TestRegistry {
    /// Starts a registry under `dir` (created; holds config, storage and log). With
    /// `credentials`, pushes and pulls need that user and password (htpasswd, bcrypt).
    pub fn start(dir: &Path, credentials: Option<(&str, &str)>) -> Result<Self, TestRegistryError> {
        let bin = registry_binary().ok_or(TestRegistryError::NotInstalled)?;
        let io = |context: String| move |source| TestRegistryError::Io { context, source };
        std::fs::create_dir_all(dir.join("data"))
            .map_err(io(format!("creating {}", dir.display())))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free port".into()))?
            .port();
        let address = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
            dir.join("data").display()
        );
        if let Some((user, password)) = credentials {
            let hash = bcrypt::hash(password, 4)
                .map_err(|e| io("hashing the password".into())(std::io::Error::other(e)))?;
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n"))
                .map_err(io(format!("writing {}", htpasswd.display())))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config)
            .map_err(io(format!("writing {}", config_path.display())))?;
        let log = std::fs::File::create(dir.join("log")).map_err(io("creating the log".into()))?;
        let log2 = log.try_clone().map_err(io("creating the log".into()))?;
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io(format!("starting {}", bin.display())))?;
        let registry = TestRegistry {
            address,
            child,
            dir: dir.to_path_buf(),
        };
        registry.wait_ready(Duration::from_secs(20))?;
        Ok(registry)
    }

    /// Waits until `GET /v2/` answers (200, or 401 with authentication).
    fn wait_ready(&self, wait: Duration) -> Result<(), TestRegistryError> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(&self.address) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.address);
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut buf = [0u8; 16];
                    if std::io::Read::read(&mut s, &mut buf).is_ok_and(|n| n >= 12)
                        && (buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.0 401"))
                    {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(TestRegistryError::NotReady {
            address: self.address.clone(),
            wait,
            log: std::fs::read_to_string(self.dir.join("log")).unwrap_or_default(),
        })
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The registry binary: `$DOCKER_REGISTRY_BIN`, else the first of [`REGISTRY_BINARIES`].
pub fn registry_binary() -> Option<PathBuf> {
    std::env::var_os("DOCKER_REGISTRY_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(REGISTRY_BINARIES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}
