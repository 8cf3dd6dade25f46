//! Test support (feature `testing`): a tiny image built from the host's static busybox.
//!
//! No registry is reachable from the test machines, so tests import their own image: a rootfs
//! tarball holding `/bin/busybox` (Debian package `busybox-static`) with one symlink per applet
//! (`sh`, `cat`, `sleep`, ...), `/tmp` (1777), `/pfs`, `/etc/passwd` (root, nobody) and
//! `/etc/group`, loaded with the image-import API as [`TEST_IMAGE`] with `PATH=/bin`.
//! [`ensure_test_image`] is idempotent: it does nothing when the tag already exists.

use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

/// Repository of the test image.
pub const TEST_IMAGE_REPO: &str = "executor-docker-test/busybox";
/// Tag of the test image.
pub const TEST_IMAGE_TAG: &str = "1";
/// `repo:tag` of the test image.
pub const TEST_IMAGE: &str = "executor-docker-test/busybox:1";

/// Why the test image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TestImageError {
    /// No static busybox binary on the host.
    #[error(
        "no static busybox found (looked at {looked:?}; install the Debian package `busybox-static` \
         or set EXECUTOR_DOCKER_BUSYBOX)"
    )]
    NoBusybox {
        /// Paths checked.
        looked: Vec<PathBuf>,
    },
    /// The busybox found is dynamically linked and would not run in an empty image.
    #[error("{path} is dynamically linked; the test image needs busybox-static")]
    NotStatic {
        /// The binary.
        path: PathBuf,
    },
    /// Reading the binary or listing its applets failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The daemon refused the import.
    #[error("importing {TEST_IMAGE}")]
    Docker(#[from] bollard::errors::Error),
}

/// Finds a static busybox: `$EXECUTOR_DOCKER_BUSYBOX`, `/bin/busybox`, `/usr/bin/busybox`.
pub fn find_static_busybox() -> Result<PathBuf, TestImageError> {
    let mut looked = Vec::new();
    let candidates = std::env::var_os("EXECUTOR_DOCKER_BUSYBOX")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from("/bin/busybox"),
            PathBuf::from("/usr/bin/busybox"),
        ]);
    for p in candidates {
        if p.is_file() {
            return if is_static_elf(&p)? {
                Ok(p)
            } else {
                Err(TestImageError::NotStatic { path: p })
            };
        }
        looked.push(p);
    }
    Err(TestImageError::NoBusybox { looked })
}

/// An ELF64 without a `PT_INTERP` program header is statically linked.
fn is_static_elf(path: &Path) -> Result<bool, TestImageError> {
    let bytes = std::fs::read(path).map_err(|source| TestImageError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Ok(false);
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return Ok(false);
    };
    for i in 0..usize::from(phnum) {
        let off = usize::try_from(phoff).unwrap_or(usize::MAX) + i * usize::from(phentsize);
        let p_type = bytes
            .get(off..off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if p_type == Some(3) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Builds the rootfs tarball of the test image.
pub fn busybox_rootfs_tar() -> Result<Vec<u8>, TestImageError> {
    busybox_rootfs_tar_with(&[])
}

/// The test image's rootfs plus regular files `extra` (`(path, contents)`, paths relative to
/// `/`, in existing directories): a way to build images that differ in content only.
pub fn busybox_rootfs_tar_with(extra: &[(&str, &[u8])]) -> Result<Vec<u8>, TestImageError> {
    let extra: Vec<(String, Vec<u8>, u32)> = extra
        .iter()
        .map(|(p, d)| (p.to_string(), d.to_vec(), 0o644))
        .collect();
    rootfs_tar(&extra)
}

/// The test image's rootfs plus regular files `(path, contents, mode)`.
fn rootfs_tar(extra: &[(String, Vec<u8>, u32)]) -> Result<Vec<u8>, TestImageError> {
    let busybox = find_static_busybox()?;
    let io = |context: String| move |source| TestImageError::Io { context, source };
    let list = std::process::Command::new(&busybox)
        .arg("--list")
        .output()
        .map_err(io(format!("running {} --list", busybox.display())))?;
    let applets = String::from_utf8_lossy(&list.stdout).into_owned();
    let bin = std::fs::read(&busybox).map_err(io(format!("reading {}", busybox.display())))?;

    let mut b = tar::Builder::new(Vec::new());
    let tar_io = io("building the test rootfs".to_string());
    let add = |b: &mut tar::Builder<Vec<u8>>,
               path: &str,
               kind: tar::EntryType,
               mode: u32,
               data: &[u8],
               link: Option<&str>|
     -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        match link {
            Some(target) => b.append_link(&mut h, path, target),
            None => b.append_data(&mut h, path, data),
        }
    };
    let build = (|| -> std::io::Result<Vec<u8>> {
        use tar::EntryType::{Directory, Regular, Symlink};
        for (dir, mode) in [
            ("bin", 0o755),
            ("etc", 0o755),
            ("pfs", 0o755),
            ("root", 0o700),
            ("tmp", 0o1777),
        ] {
            add(&mut b, dir, Directory, mode, &[], None)?;
        }
        add(&mut b, "bin/busybox", Regular, 0o755, &bin, None)?;
        for applet in applets
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "busybox")
        {
            add(
                &mut b,
                &format!("bin/{applet}"),
                Symlink,
                0o777,
                &[],
                Some("busybox"),
            )?;
        }
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
        add(&mut b, "etc/passwd", Regular, 0o644, passwd, None)?;
        add(
            &mut b,
            "etc/group",
            Regular,
            0o644,
            b"root:x:0:\nnogroup:x:65534:\n",
            None,
        )?;
        for (path, data, mode) in extra {
            add(&mut b, path, Regular, *mode, data, None)?;
        }
        b.into_inner()
    })();
    build.map_err(tar_io)
}

/// The test image with the host's `curl` (its binary as `/bin/curl` and the shared
/// libraries `ldd` names, at their paths): an S3 client (`curl --aws-sigv4`) for tests of
/// user code that reads and writes over S3.
pub const CURL_TEST_IMAGE: &str = "pipeline-test-curl:1";

/// Imports [`CURL_TEST_IMAGE`] unless it is already present. Returns its reference.
pub async fn ensure_curl_test_image(docker: &Docker) -> Result<String, TestImageError> {
    if docker.inspect_image(CURL_TEST_IMAGE).await.is_ok() {
        return Ok(CURL_TEST_IMAGE.to_string());
    }
    let tar = tokio::task::spawn_blocking(|| rootfs_tar(&host_program_files("curl")?))
        .await
        .map_err(|e| TestImageError::Io {
            context: "building the curl test rootfs".to_string(),
            source: std::io::Error::other(e),
        })??;
    let (repo, tag) = CURL_TEST_IMAGE
        .split_once(':')
        .unwrap_or((CURL_TEST_IMAGE, "1"));
    import_rootfs(docker, repo, tag, tar).await?;
    Ok(CURL_TEST_IMAGE.to_string())
}

/// A program of the host's `PATH` as `bin/<name>`, with the libraries `ldd` lists for it.
fn host_program_files(name: &str) -> Result<Vec<(String, Vec<u8>, u32)>, TestImageError> {
    let io = |context: String| move |source| TestImageError::Io { context, source };
    let program = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| TestImageError::Io {
            context: format!("finding {name} on PATH"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
    let ldd = std::process::Command::new("ldd")
        .arg(&program)
        .output()
        .map_err(io(format!("running ldd {}", program.display())))?;
    let mut files = vec![(
        format!("bin/{name}"),
        std::fs::read(&program).map_err(io(format!("reading {}", program.display())))?,
        0o755,
    )];
    // Lines are `libx.so => /lib/.../libx.so (0x...)` or `/lib64/ld-linux... (0x...)`.
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split("=>")
            .last()
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(path) = path {
            let data = std::fs::read(path).map_err(io(format!("reading {path}")))?;
            files.push((path.trim_start_matches('/').to_string(), data, 0o755));
        }
    }
    Ok(files)
}

/// Imports [`TEST_IMAGE`] unless it is already present. Returns its reference.
pub async fn ensure_test_image(docker: &Docker) -> Result<String, TestImageError> {
    if docker.inspect_image(TEST_IMAGE).await.is_ok() {
        return Ok(TEST_IMAGE.to_string());
    }
    let tar = tokio::task::spawn_blocking(busybox_rootfs_tar)
        .await
        .map_err(|e| TestImageError::Io {
            context: "building the test rootfs".to_string(),
            source: std::io::Error::other(e),
        })??;
    import_rootfs(docker, TEST_IMAGE_REPO, TEST_IMAGE_TAG, tar).await?;
    Ok(TEST_IMAGE.to_string())
}

/// Imports rootfs tarball `tar` as image `repo:tag` with `PATH=/bin` (replacing the tag if
/// it exists). Returns the image ID.
pub async fn import_rootfs(
    docker: &Docker,
    repo: &str,
    tag: &str,
    tar: Vec<u8>,
) -> Result<String, TestImageError> {
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(vec!["ENV PATH=/bin".to_string()])
        .build();
    let mut stream = docker.create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
    while let Some(item) = stream.next().await {
        item?;
    }
    Ok(docker
        .inspect_image(&format!("{repo}:{tag}"))
        .await?
        .id
        .unwrap_or_default())
}

/// A rootfs tarball with one regular file and no shell: an image workers cannot run.
pub fn shell_less_rootfs_tar() -> Result<Vec<u8>, TestImageError> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(6);
    let io = |source| TestImageError::Io {
        context: "building the shell-less rootfs".to_string(),
        source,
    };
    b.append_data(&mut h, "hello", &b"hello\n"[..])
        .map_err(io)?;
    b.into_inner().map_err(io)
}
