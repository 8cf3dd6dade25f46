//! Getting a datum's `/pfs` into a worker container and its `/pfs/out` back.
//!
//! **Bind mode.** Each worker owns two host directories, bind-mounted when its container is
//! created: `<work>/in` at `/pfs` **read-only** and `<work>/in/out` at `/pfs/out` read-write. A bind
//! mount shows later changes to the directory's contents, so per datum the executor *renames*
//! `scratch/<input>` into `<work>/in/<input>` (O(1) on one filesystem; a copy otherwise), runs
//! the datum, renames the inputs back and moves everything in `<work>/out` into
//! `scratch/out`. Both directories are empty between datums, so nothing of one datum is visible
//! to the next. (Alternatives rejected: host bind mounts with mount propagation need mount
//! privileges on the host; one container per datum costs a container start per datum.)
//!
//! For datum batching the engine fills `<work>/in` itself, as a scratch directory the running
//! program sees change ([`BindDirs::input`], `Worker::batch_scratch`); nothing is moved then.
//!
//! **Archive mode.** `/pfs` is emptied by a root exec, the inputs are uploaded as one tar
//! (files and directories without write bits, `out/` mode 0777) and `/pfs/out` is downloaded as
//! a tar afterwards and unpacked safely into `scratch/out`.
//!
//! In both modes symlinks are kept as symlinks and never followed.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use pipeline_core::executor::ExecutorError;

fn io_err(context: String) -> impl FnOnce(io::Error) -> ExecutorError {
    move |source| ExecutorError::Io { context, source }
}

/// Checks that an input name is a single plain path component other than `out`.
pub fn check_input_name(name: &str) -> Result<(), ExecutorError> {
    let ok = !name.is_empty()
        && name != "out"
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(ExecutorError::InvalidTask {
            field: "inputs".to_string(),
            message: format!(
                "input name {name:?} must be one path component other than \"out\", \".\" or \"..\""
            ),
        })
    }
}

/// The two host directories of a bind-mode worker.
#[derive(Debug, Clone)]
pub struct BindDirs {
    /// Mounted read-only at `/pfs`; contains the `out` mount point.
    pub input: PathBuf,
    /// Mounted read-write at `/pfs/out`: `out` inside [`BindDirs::input`], so `input` is laid
    /// out as a whole scratch directory (`<input>/...`, `out/`).
    pub output: PathBuf,
}

impl BindDirs {
    /// `<dir>/in` and `<dir>/in/out`.
    pub fn new(dir: &Path) -> Self {
        let input = dir.join("in");
        BindDirs {
            output: input.join("out"),
            input,
        }
    }

    /// Creates both directories (and the `out` mount point inside `in`) with modes that let any
    /// container user read inputs and write outputs.
    pub fn create(&self) -> Result<(), ExecutorError> {
        for (dir, mode) in [(&self.input, 0o755), (&self.output, 0o777)] {
            fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .map_err(io_err(format!("setting the mode of {}", dir.display())))?;
        }
        Ok(())
    }

    /// Empties both directories (keeping the `out` mount point): leftovers of an interrupted datum.
    pub fn clear(&self) -> Result<(), ExecutorError> {
        clear_dir(&self.input, Some("out"))?;
        clear_dir(&self.output, None)
    }
}

fn clear_dir(dir: &Path, keep: Option<&str>) -> Result<(), ExecutorError> {
    let entries = fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
        if keep.is_some_and(|k| entry.file_name() == k) {
            continue;
        }
        remove_any(&entry.path())?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), ExecutorError> {
    let meta =
        fs::symlink_metadata(path).map_err(io_err(format!("inspecting {}", path.display())))?;
    let r = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    r.map_err(io_err(format!("removing {}", path.display())))
}

/// How an input got into the worker directory, so it can be put back.
#[derive(Debug)]
enum Placed {
    Renamed { from: PathBuf, to: PathBuf },
    Copied { to: PathBuf },
}

/// Inputs of one datum placed in a bind-mode worker directory; [`StagedBind::finish`] (or
/// `Drop`) puts them back.
#[derive(Debug)]
pub struct StagedBind {
    placed: Vec<Placed>,
    output: PathBuf,
}

/// Moves `scratch/<input>` for each input into `dirs.input`.
pub fn stage_bind(
    dirs: &BindDirs,
    scratch: &Path,
    inputs: &[String],
) -> Result<StagedBind, ExecutorError> {
    dirs.clear()?;
    let mut staged = StagedBind {
        placed: Vec::new(),
        output: dirs.output.clone(),
    };
    for name in inputs {
        check_input_name(name)?;
        let from = scratch.join(name);
        let to = dirs.input.join(name);
        if fs::symlink_metadata(&from).is_err() || fs::symlink_metadata(&to).is_ok() {
            // Absent in scratch, or a duplicate name: nothing (more) to place.
            continue;
        }
        match fs::rename(&from, &to) {
            Ok(()) => staged.placed.push(Placed::Renamed { from, to }),
            Err(e) if e.raw_os_error() == Some(libc_exdev()) => {
                copy_entry(&from, &to, true)?;
                staged.placed.push(Placed::Copied { to });
            }
            Err(source) => {
                return Err(ExecutorError::Io {
                    context: format!("moving {} to {}", from.display(), to.display()),
                    source,
                });
            }
        }
    }
    Ok(staged)
}

/// `EXDEV` ("cross-device link") on Linux.
const fn libc_exdev() -> i32 {
    18
}

impl StagedBind {
    /// Puts the inputs back into scratch and moves the outputs into `scratch_out`.
    pub fn finish(mut self, scratch_out: &Path) -> Result<(), ExecutorError> {
        self.restore_inputs()?;
        fs::create_dir_all(scratch_out)
            .map_err(io_err(format!("creating {}", scratch_out.display())))?;
        let entries = fs::read_dir(&self.output)
            .map_err(io_err(format!("listing {}", self.output.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("listing {}", self.output.display())))?;
            let from = entry.path();
            let to = scratch_out.join(entry.file_name());
            match fs::rename(&from, &to) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc_exdev()) => {
                    copy_tree(&from, &to)?;
                    remove_any(&from)?;
                }
                Err(source) => {
                    return Err(ExecutorError::Io {
                        context: format!("moving output {} to {}", from.display(), to.display()),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Puts the inputs back and drops the outputs (the datum was lost).
    pub fn abandon(mut self) -> Result<(), ExecutorError> {
        self.restore_inputs()?;
        clear_dir(&self.output, None)
    }

    fn restore_inputs(&mut self) -> Result<(), ExecutorError> {
        let mut first_err = None;
        for placed in self.placed.drain(..) {
            let r = match &placed {
                Placed::Renamed { from, to } => fs::rename(to, from).map_err(io_err(format!(
                    "moving {} back to {}",
                    to.display(),
                    from.display()
                ))),
                Placed::Copied { to } => remove_any(to),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for StagedBind {
    fn drop(&mut self) {
        // Cancelled future: give the engine its inputs back; errors have nowhere to go.
        if let Err(e) = self.restore_inputs() {
            tracing::warn!("restoring datum inputs after an interrupted run: {e}");
        }
    }
}

/// Copies a tree, recreating symlinks as symlinks (never following them).
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), ExecutorError> {
    copy_entry(from, to, false)
}

/// Copies one entry as [`copy_tree`] does; with `read_pipes`, a named pipe (a `lazy` input
/// the engine feeds when it is opened) is copied as the file read from it. Only inputs are
/// copied so: a pipe user code made under `out/` may have no writer, and is skipped.
fn copy_entry(from: &Path, to: &Path, read_pipes: bool) -> Result<(), ExecutorError> {
    let meta =
        fs::symlink_metadata(from).map_err(io_err(format!("inspecting {}", from.display())))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target =
            fs::read_link(from).map_err(io_err(format!("reading link {}", from.display())))?;
        symlink(&target, to).map_err(io_err(format!("creating link {}", to.display())))?;
    } else if ft.is_dir() {
        fs::create_dir(to).map_err(io_err(format!("creating {}", to.display())))?;
        let entries = fs::read_dir(from).map_err(io_err(format!("listing {}", from.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("listing {}", from.display())))?;
            copy_entry(&entry.path(), &to.join(entry.file_name()), read_pipes)?;
        }
        fs::set_permissions(to, meta.permissions())
            .map_err(io_err(format!("setting the mode of {}", to.display())))?;
    } else if ft.is_file() {
        fs::copy(from, to).map_err(io_err(format!(
            "copying {} to {}",
            from.display(),
            to.display()
        )))?;
    } else if read_pipes && std::os::unix::fs::FileTypeExt::is_fifo(&ft) {
        let ctx = format!("copying lazy input {} to {}", from.display(), to.display());
        let mut src = fs::File::open(from).map_err(io_err(ctx.clone()))?;
        let mut dst = fs::File::create(to).map_err(io_err(ctx.clone()))?;
        io::copy(&mut src, &mut dst).map_err(io_err(ctx))?;
    }
    // Sockets, other fifos and devices are skipped: they cannot be datum contents.
    Ok(())
}

/// Writes the tar uploaded to `/pfs` in archive mode: each input's tree (write bits removed) and
/// an empty `out/` (mode 0777). Streams: file contents are read as they are written out.
pub fn write_inputs_tar<W: io::Write>(
    out: W,
    scratch: &Path,
    inputs: &[String],
) -> Result<W, ExecutorError> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut seen = std::collections::BTreeSet::new();
    for name in inputs {
        check_input_name(name)?;
        let src = scratch.join(name);
        if !seen.insert(name.clone()) || fs::symlink_metadata(&src).is_err() {
            continue;
        }
        append_tree(&mut builder, &src, Path::new(name))?;
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o777);
    header.set_size(0);
    header.set_mtime(0);
    builder
        .append_data(&mut header, "out", io::empty())
        .map_err(io_err("building the input archive".to_string()))?;
    builder
        .into_inner()
        .map_err(io_err("building the input archive".to_string()))
}

fn append_tree<W: io::Write>(
    builder: &mut tar::Builder<W>,
    src: &Path,
    name: &Path,
) -> Result<(), ExecutorError> {
    let ctx = || format!("archiving {}", src.display());
    let meta = fs::symlink_metadata(src).map_err(io_err(ctx()))?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    header.set_uid(0);
    header.set_gid(0);
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_err(ctx()))?;
        header.set_size(0);
        builder
            .append_link(&mut header, name, &target)
            .map_err(io_err(ctx()))?;
    } else if ft.is_dir() {
        header.set_mode(0o555);
        header.set_size(0);
        builder
            .append_data(&mut header, name, io::empty())
            .map_err(io_err(ctx()))?;
        let mut entries: Vec<_> = fs::read_dir(src)
            .map_err(io_err(ctx()))?
            .collect::<Result<_, _>>()
            .map_err(io_err(ctx()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            append_tree(builder, &entry.path(), &name.join(entry.file_name()))?;
        }
    } else if ft.is_file() {
        header.set_mode(meta.permissions().mode() & 0o555);
        let file = fs::File::open(src).map_err(io_err(ctx()))?;
        builder
            .append_data(&mut header, name, file)
            .map_err(io_err(ctx()))?;
    }
    Ok(())
}

/// Unpacks the tar of `/pfs/out` (entries start with `out/`) into `dest`, refusing entries that
/// would leave `dest` and never writing through a symlink. Streams entry by entry. Returns the
/// number of entries written.
pub fn unpack_outputs<R: io::Read>(archive: R, dest: &Path) -> Result<usize, ExecutorError> {
    fs::create_dir_all(dest).map_err(io_err(format!("creating {}", dest.display())))?;
    let ctx = || format!("unpacking /pfs/out into {}", dest.display());
    let mut ar = tar::Archive::new(archive);
    let mut count = 0;
    for entry in ar.entries().map_err(io_err(ctx()))? {
        let mut entry = entry.map_err(io_err(ctx()))?;
        let raw = entry.path().map_err(io_err(ctx()))?.into_owned();
        let Some(rel) = output_relative(&raw) else {
            return Err(ExecutorError::Io {
                context: ctx(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("archive entry {} leaves /pfs/out", raw.display()),
                ),
            });
        };
        if rel.as_os_str().is_empty() {
            continue; // `out/` itself
        }
        let target = dest.join(&rel);
        ensure_real_dirs(dest, &rel)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                if fs::symlink_metadata(&target).is_err() {
                    fs::create_dir(&target)
                        .map_err(io_err(format!("creating {}", target.display())))?;
                }
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(io_err(ctx()))?
                    .unwrap_or_default();
                symlink(&*link, &target)
                    .map_err(io_err(format!("creating link {}", target.display())))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(io_err(format!("creating {}", target.display())))?;
                io::copy(&mut entry, &mut file)
                    .map_err(io_err(format!("writing {}", target.display())))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o777))
                    .map_err(io_err(format!("setting the mode of {}", target.display())))?;
            }
            tar::EntryType::Link => {
                // A hard link inside /pfs/out: materialise it as a copy of its (already written)
                // target, which must also be inside /pfs/out.
                let link = entry
                    .link_name()
                    .map_err(io_err(ctx()))?
                    .unwrap_or_default();
                let Some(src_rel) = output_relative(&link) else {
                    return Err(ExecutorError::Io {
                        context: ctx(),
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("hard link {} leaves /pfs/out", raw.display()),
                        ),
                    });
                };
                ensure_real_dirs(dest, &src_rel)?;
                fs::copy(dest.join(&src_rel), &target)
                    .map_err(io_err(format!("creating {}", target.display())))?;
            }
            _ => continue, // devices, fifos: not datum outputs
        }
        count += 1;
    }
    Ok(count)
}

/// `out/a/b` → `a/b`; `None` for anything not under `out` or with `..`/absolute components.
fn output_relative(path: &Path) -> Option<PathBuf> {
    let mut comps = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    match comps.next() {
        Some(Component::Normal(first)) if first == "out" => {}
        _ => return None,
    }
    let mut rel = PathBuf::new();
    for c in comps {
        match c {
            Component::Normal(n) => rel.push(n),
            _ => return None,
        }
    }
    Some(rel)
}

/// Fails if any parent of `rel` under `root` is a symlink or not a directory.
fn ensure_real_dirs(root: &Path, rel: &Path) -> Result<(), ExecutorError> {
    let mut cur = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(ExecutorError::Io {
                        context: format!("unpacking /pfs/out entry {}", rel.display()),
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{} is not a real directory", cur.display()),
                        ),
                    });
                }
                Err(_) => {
                    fs::create_dir(&cur).map_err(io_err(format!("creating {}", cur.display())))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    #[test]
    fn bind_stage_and_finish_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let scratch = t.path().join("scratch");
        write(&scratch.join("in1/dir/a.txt"), "a");
        fs::create_dir_all(scratch.join("out")).unwrap();
        let dirs = BindDirs::new(&t.path().join("w"));
        dirs.create().unwrap();
        let staged = stage_bind(&dirs, &scratch, &["in1".to_string()]).unwrap();
        assert!(!scratch.join("in1").exists());
        assert_eq!(
            fs::read_to_string(dirs.input.join("in1/dir/a.txt")).unwrap(),
            "a"
        );
        write(&dirs.output.join("x/y.txt"), "y");
        symlink("../../etc/passwd", dirs.output.join("link")).unwrap();
        staged.finish(&scratch.join("out")).unwrap();
        assert_eq!(
            fs::read_to_string(scratch.join("in1/dir/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(
            fs::read_to_string(scratch.join("out/x/y.txt")).unwrap(),
            "y"
        );
        assert!(
            fs::symlink_metadata(scratch.join("out/link"))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(fs::read_dir(&dirs.output).unwrap().count(), 0);
        let left: Vec<_> = fs::read_dir(&dirs.input)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec!["out"]);
    }

    #[test]
    fn dropping_a_staged_datum_restores_inputs() {
        let t = tempfile::tempdir().unwrap();
        let scratch = t.path().join("scratch");
        write(&scratch.join("in1/a"), "a");
        let dirs = BindDirs::new(&t.path().join("w"));
        dirs.create().unwrap();
        drop(stage_bind(&dirs, &scratch, &["in1".to_string()]).unwrap());
        assert!(scratch.join("in1/a").exists());
    }

    #[test]
    fn bad_input_names_are_refused() {
        for n in ["out", "..", "a/b", ""] {
            let e = check_input_name(n).unwrap_err().to_string();
            assert!(e.starts_with("inputs:"), "{e}");
        }
    }

    #[test]
    fn archive_round_trip_keeps_symlinks_and_refuses_escapes() {
        let t = tempfile::tempdir().unwrap();
        let scratch = t.path().join("s");
        write(&scratch.join("in1/a.txt"), "hello");
        symlink("a.txt", scratch.join("in1/l")).unwrap();
        let tar_bytes = write_inputs_tar(Vec::new(), &scratch, &["in1".to_string()]).unwrap();
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(&tar_bytes[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            names.push((
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap() & 0o222,
            ));
        }
        assert!(names.iter().any(|(n, w)| n == "in1/a.txt" && *w == 0));
        assert!(names.iter().any(|(n, _)| n == "out"));

        // An archive of /pfs/out as Docker returns it.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "out/", io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(2);
        b.append_data(&mut h, "out/d/f", &b"hi"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "out/esc", "/etc").unwrap();
        let good = b.into_inner().unwrap();
        let dest = t.path().join("dest");
        assert_eq!(unpack_outputs(&good[..], &dest).unwrap(), 2);
        assert_eq!(fs::read_to_string(dest.join("d/f")).unwrap(), "hi");
        assert!(fs::symlink_metadata(dest.join("esc")).unwrap().is_symlink());

        // Writing through the symlink `esc` must be refused.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1);
        b.append_data(&mut h, "out/esc/x", &b"x"[..]).unwrap();
        let evil = b.into_inner().unwrap();
        assert!(unpack_outputs(&evil[..], &dest).is_err());
        assert!(output_relative(Path::new("out/../x")).is_none());
        assert!(output_relative(Path::new("other/x")).is_none());
    }
}
