//! The root file system user code sees: built once per worker, in the child that makes the
//! worker's namespaces ([`crate::spawn::capture_namespace`]).
//!
//! The parent prepares a list of [`Step`]s (every path a C string, every flag computed);
//! the child only runs them, then pivots into the new root. The new root is a tmpfs staged on
//! the host's mount point (`/pfs`, inside the child's private mount namespace, so the host
//! never sees it) and holds only:
//!
//! | path | what |
//! |---|---|
//! | `/bin`, `/sbin`, `/usr`, `/lib*`, `/etc`, `/opt` | the host's, bound **read-only** (symlinks, as on merged-`/usr` systems, copied as symlinks) |
//! | `/proc` | the host's `/proc`, bound read-only (no PID namespace, see the crate docs) |
//! | `/dev` | a tmpfs with `null`, `zero`, `full`, `random`, `urandom`, `tty` bound from the host, `fd`/`stdin`/`stdout`/`stderr` links, a tmpfs `shm` |
//! | `/tmp` | a private tmpfs (per worker) |
//! | the mount point (`/pfs`) | the worker's scratch directory, **read-only** |
//! | `<mount point>/out` | the scratch directory's `out`, writable |
//! | each secret's `mount_path` | a small tmpfs of its own with one 0444 file per key, **read-only** ([`crate::secret_files`]) |
//! | directories the host exposes ([`crate::ProcessExecutorBuilder::expose`]) | the host's, at the same path, **read-only** |
//!
//! The tmpfs root itself is read-only. Nothing else of the host, in particular not the store
//! or any other scratch directory, is in the tree.

use std::ffi::{CStr, CString};
use std::io;
use std::path::{Path, PathBuf};

use pipeline_core::executor::ExecutorError;

use crate::secret_files::SecretMount;

/// Host directories bound read-only into the root (those that exist).
const SYSTEM_DIRS: &[&str] = &[
    "/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];

/// Device nodes bound from the host's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// One step of building the root, run by the child in order.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// `mkdir` (an existing directory is fine).
    Dir(CString),
    /// An empty file (a bind target for a device).
    File(CString),
    /// A symbolic link `link` → `target`.
    Symlink { target: CString, link: CString },
    /// A bind mount (`recursive`: with the mounts below `source`).
    Bind {
        source: CString,
        target: CString,
        recursive: bool,
    },
    /// Remount a bind read-only, keeping `keep` (flags a user namespace may not clear).
    ReadOnly { target: CString, keep: u64 },
    /// A new file with `contents`, mode 0444 (a secret file on its own tmpfs).
    SecretFile {
        path: CString,
        contents: pipeline_core::executor::SecretValue,
    },
    /// A new tmpfs with `options` (`mode=...`), `nosuid,nodev` and `extra` mount flags.
    Tmpfs {
        target: CString,
        options: CString,
        extra: u64,
    },
}

/// Everything the child needs to build and enter the root.
#[derive(Debug, Clone)]
pub(crate) struct RootPlan {
    /// Where the new root is staged (the host's mount point; a tmpfs is mounted on it).
    pub(crate) new_root: CString,
    /// Steps after the root tmpfs is mounted, in order.
    pub(crate) steps: Vec<Step>,
}

fn c(path: &Path) -> Result<CString, ExecutorError> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| ExecutorError::InvalidTask {
        field: "scratch".into(),
        message: format!("{} contains a NUL byte", path.display()),
    })
}

/// `root` joined with the absolute `path` (`/usr` under `/pfs` is `/pfs/usr`).
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The flags of the mount holding `path` that a read-only remount must keep.
fn keep_flags(path: &Path) -> Result<u64, ExecutorError> {
    nix::sys::statvfs::statvfs(path)
        .map(|st| crate::worker::keep_flags(st.flags()))
        .map_err(|e| ExecutorError::Io {
            context: format!("reading the mount flags of {}", path.display()),
            source: e.into(),
        })
}

/// Checks the directories a host wants to expose (see
/// [`crate::ProcessExecutorBuilder::expose`]); returns them canonical.
pub(crate) fn check_exposed(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ExecutorError> {
    let bad = |dir: &Path, message: &str| ExecutorError::InvalidTask {
        field: "expose".into(),
        message: format!("{}: {message}", dir.display()),
    };
    dirs.iter()
        .map(|dir| {
            if !dir.is_absolute() {
                return Err(bad(dir, "expected an absolute path"));
            }
            let real = std::fs::canonicalize(dir)
                .map_err(|e| bad(dir, &format!("cannot be resolved ({e})")))?;
            if !real.is_dir() {
                return Err(bad(dir, "expected a directory"));
            }
            let hidden = ["/proc", "/sys", "/dev"];
            if real == Path::new("/") || hidden.iter().any(|h| real.starts_with(h)) {
                return Err(bad(dir, "the root, /proc, /sys and /dev cannot be exposed"));
            }
            Ok(real)
        })
        .collect()
}

/// Whether `dir` lies in a system directory the sandbox shows anyway.
pub(crate) fn in_system_dir(dir: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|s| dir.starts_with(s))
}

/// Binds for the exposed directories, refusing one that overlaps `scratch` or `pfs`.
fn exposed_steps(
    root: &Path,
    exposed: &[PathBuf],
    scratch: &Path,
    pfs: &Path,
) -> Result<Vec<Step>, ExecutorError> {
    let mut steps = Vec::new();
    // Exposed directories are canonical: compare with the scratch directory's real path.
    let scratch = &std::fs::canonicalize(scratch).unwrap_or_else(|_| scratch.to_path_buf());
    for dir in exposed {
        let overlaps = |other: &Path| dir.starts_with(other) || other.starts_with(dir);
        if overlaps(scratch) || overlaps(pfs) {
            return Err(ExecutorError::InvalidTask {
                field: "expose".into(),
                message: format!(
                    "{} holds or lies inside the scratch directory {} or the mount point {}",
                    dir.display(),
                    scratch.display(),
                    pfs.display()
                ),
            });
        }
        let target = under(root, dir);
        for ancestor in target.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if ancestor.starts_with(root) && ancestor != root && ancestor != target {
                steps.push(Step::Dir(c(ancestor)?));
            }
        }
        steps.extend(read_only_bind(dir, &target, false)?);
    }
    Ok(steps)
}

/// A tmpfs per secret mount with its files, made read-only; refuses a `mount_path` that
/// would shadow `/pfs`, `/proc`, `/dev` or `/sys`, or that lies in a read-only system
/// directory where it does not exist.
fn secret_steps(
    root: &Path,
    secrets: &[SecretMount],
    pfs: &Path,
) -> Result<Vec<Step>, ExecutorError> {
    let mut steps = Vec::new();
    for mount in secrets {
        let dir = &mount.dir;
        let refuse = |why: String| ExecutorError::InvalidTask {
            field: format!("{}.mount_path", mount.field),
            message: format!("{}: {why}", dir.display()),
        };
        let hidden = [
            pfs,
            Path::new("/proc"),
            Path::new("/dev"),
            Path::new("/sys"),
        ];
        if hidden
            .iter()
            .any(|h| dir.starts_with(h) || h.starts_with(dir))
        {
            return Err(refuse(format!(
                "would shadow {} or /proc, /dev, /sys",
                pfs.display()
            )));
        }
        let in_system = SYSTEM_DIRS.iter().any(|s| dir.starts_with(s));
        if in_system && !dir.is_dir() {
            return Err(refuse(
                "lies in a read-only system directory where it does not exist; choose a \
                 path outside /bin, /sbin, /usr, /lib*, /etc and /opt"
                    .into(),
            ));
        }
        let target = under(root, dir);
        for ancestor in target.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if ancestor.starts_with(root) && ancestor != root {
                steps.push(Step::Dir(c(ancestor)?));
            }
        }
        steps.push(tmpfs(&target, "mode=755,size=4m", 0)?);
        for (key, value) in &mount.files {
            steps.push(Step::SecretFile {
                path: c(&target.join(key))?,
                contents: value.clone(),
            });
        }
        let keep = nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
        steps.push(Step::ReadOnly {
            target: c(&target)?,
            keep: keep.bits(),
        });
    }
    Ok(steps)
}

impl RootPlan {
    /// The plan of a worker's root over `scratch`, staged on (and showing the scratch
    /// directory at) `mount_point`, with the host's `exposed` directories.
    pub(crate) fn new(
        mount_point: &Path,
        scratch: &Path,
        exposed: &[PathBuf],
        secrets: &[SecretMount],
    ) -> Result<RootPlan, ExecutorError> {
        let root = mount_point;
        let mut steps = Vec::new();
        for dir in SYSTEM_DIRS.iter().map(Path::new) {
            let Ok(meta) = std::fs::symlink_metadata(dir) else {
                continue;
            };
            let target = under(root, dir);
            if meta.file_type().is_symlink() {
                let link = std::fs::read_link(dir).map_err(|source| ExecutorError::Io {
                    context: format!("reading the link {}", dir.display()),
                    source,
                })?;
                steps.push(Step::Symlink {
                    target: c(&link)?,
                    link: c(&target)?,
                });
            } else if meta.is_dir() {
                steps.extend(read_only_bind(dir, &target, true)?);
            }
        }
        steps.extend(read_only_bind(
            Path::new("/proc"),
            &under(root, Path::new("/proc")),
            true,
        )?);
        let tmp = under(root, Path::new("/tmp"));
        steps.push(Step::Dir(c(&tmp)?));
        steps.push(tmpfs(&tmp, "mode=1777", 0)?);
        steps.extend(dev(root)?);
        steps.extend(exposed_steps(root, exposed, scratch, mount_point)?);
        steps.extend(secret_steps(root, secrets, mount_point)?);
        // The mount point may be nested (tests use a directory under /tmp): make its parents
        // (inside the tmpfs mounted above, when under /tmp).
        let pfs = under(root, mount_point);
        for ancestor in pfs.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if ancestor.starts_with(root) && ancestor != root {
                steps.push(Step::Dir(c(ancestor)?));
            }
        }
        steps.extend(read_only_bind(scratch, &pfs, false)?);
        steps.push(Step::Bind {
            source: c(&scratch.join("out"))?,
            target: c(&pfs.join("out"))?,
            recursive: false,
        });
        steps.push(Step::ReadOnly {
            target: c(root)?,
            keep: (nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV).bits(),
        });
        Ok(RootPlan {
            new_root: c(root)?,
            steps,
        })
    }
}

fn read_only_bind(
    source: &Path,
    target: &Path,
    recursive: bool,
) -> Result<Vec<Step>, ExecutorError> {
    Ok(vec![
        Step::Dir(c(target)?),
        Step::Bind {
            source: c(source)?,
            target: c(target)?,
            recursive,
        },
        Step::ReadOnly {
            target: c(target)?,
            keep: keep_flags(source)?,
        },
    ])
}

fn tmpfs(target: &Path, options: &str, extra: u64) -> Result<Step, ExecutorError> {
    Ok(Step::Tmpfs {
        target: c(target)?,
        options: CString::new(options).unwrap_or_default(),
        extra,
    })
}

/// A minimal `/dev`.
fn dev(root: &Path) -> Result<Vec<Step>, ExecutorError> {
    let dev = under(root, Path::new("/dev"));
    let mut steps = vec![
        Step::Dir(c(&dev)?),
        tmpfs(&dev, "mode=755", nix::mount::MsFlags::MS_NOEXEC.bits())?,
    ];
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if !host.exists() {
            continue;
        }
        let target = dev.join(name);
        steps.push(Step::File(c(&target)?));
        steps.push(Step::Bind {
            source: c(&host)?,
            target: c(&target)?,
            recursive: false,
        });
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        steps.push(Step::Symlink {
            target: c(Path::new(target))?,
            link: c(&dev.join(link))?,
        });
    }
    let shm = dev.join("shm");
    steps.push(Step::Dir(c(&shm)?));
    steps.push(tmpfs(&shm, "mode=1777", 0)?);
    Ok(steps)
}

#[cfg(target_os = "linux")]
impl Step {
    /// Runs the step (in the child: plain system calls on prepared strings).
    pub(crate) fn apply(&self) -> io::Result<()> {
        use nix::errno::Errno;
        use nix::mount::{MsFlags, mount};
        use nix::sys::stat::Mode;
        let none: Option<&CStr> = None;
        match self {
            Step::Dir(path) => {
                match nix::unistd::mkdir(path.as_c_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Step::File(path) => {
                let fd = nix::fcntl::open(
                    path.as_c_str(),
                    nix::fcntl::OFlag::O_CREAT
                        | nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?;
                drop(fd);
                Ok(())
            }
            Step::SecretFile { path, contents } => {
                let fd = nix::fcntl::open(
                    path.as_c_str(),
                    nix::fcntl::OFlag::O_CREAT
                        | nix::fcntl::OFlag::O_EXCL
                        | nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o444),
                )?;
                let mut rest = &contents.0[..];
                while !rest.is_empty() {
                    let n = nix::unistd::write(&fd, rest)?;
                    rest = &rest[n..];
                }
                Ok(())
            }
            Step::Symlink { target, link } => {
                nix::unistd::symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, link.as_c_str())?;
                Ok(())
            }
            Step::Bind {
                source,
                target,
                recursive,
            } => {
                let mut flags = MsFlags::MS_BIND;
                if *recursive {
                    flags |= MsFlags::MS_REC;
                }
                mount(
                    Some(source.as_c_str()),
                    target.as_c_str(),
                    none,
                    flags,
                    none,
                )?;
                Ok(())
            }
            Step::ReadOnly { target, keep } => {
                let flags = MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::from_bits_truncate(*keep);
                mount(none, target.as_c_str(), none, flags, none)?;
                Ok(())
            }
            Step::Tmpfs {
                target,
                options,
                extra,
            } => {
                let flags =
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::from_bits_truncate(*extra);
                mount(
                    Some(c"tmpfs"),
                    target.as_c_str(),
                    Some(c"tmpfs"),
                    flags,
                    Some(options.as_c_str()),
                )?;
                Ok(())
            }
        }
    }
}

#[cfg(target_os = "linux")]
impl RootPlan {
    /// In a new mount namespace: stops propagation, mounts the root tmpfs, runs the steps,
    /// and pivots into the new root (the old root is detached).
    pub(crate) fn build_and_enter(&self) -> io::Result<()> {
        use nix::mount::{MntFlags, MsFlags, mount, umount2};
        let none: Option<&CStr> = None;
        mount(
            none,
            c"/",
            none,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            none,
        )?;
        mount(
            Some(c"tmpfs"),
            self.new_root.as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(c"mode=755"),
        )?;
        for step in &self.steps {
            step.apply()?;
        }
        nix::unistd::chdir(self.new_root.as_c_str())?;
        nix::unistd::pivot_root(c".", c".")?;
        umount2(c".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir(c"/")?;
        Ok(())
    }
}
