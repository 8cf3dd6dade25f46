//! A worker's scratch directory (`/pfs` as its user code sees it), reused from datum to
//! datum.
//!
//! Emptying the directories in place instead of removing and re-creating them matters for
//! speed: every directory made and removed per datum is an inode allocated and freed, and on
//! ext4 each allocation gets slower the more inodes were freed in the last seconds (the
//! allocator skips recently deleted ones), for the user code's own output files too.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A scratch root in the system temp dir for an engine whose store has no directory:
/// `pps-scratch-<pid>-<n>`, one per engine (two engines in one process must not share one:
/// each empties its root when built). Roots left by processes that are gone are removed.
pub(crate) fn temp_scratch() -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let temp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&temp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix("pps-scratch-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let n = N.fetch_add(1, Ordering::Relaxed);
    temp.join(format!("pps-scratch-{}-{n}", std::process::id()))
}

/// Removes everything inside `dir` without following symlinks, keeping `dir` (made when
/// missing, or replacing a non-directory) and, emptied, its subdirectories named in `keep`
/// (made when missing). Those also named in `clean` are known to be empty already (the
/// datum that used them left them so) and are not read again.
pub(crate) fn empty_dir(dir: &Path, keep: &[&str], clean: &[&str]) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            std::fs::remove_file(dir)?;
            std::fs::create_dir(dir)?;
            return make_kept(dir, keep, &vec![false; keep.len()]);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            return make_kept(dir, keep, &vec![false; keep.len()]);
        }
        Err(e) => return Err(e),
    }
    let found = empty_entries(dir, keep, clean)?;
    make_kept(dir, keep, &found)
}

/// Removes the entries of directory `dir` but the `keep` subdirectories, which are emptied
/// (unless also in `clean`); which of `keep` were there.
fn empty_entries(dir: &Path, keep: &[&str], clean: &[&str]) -> io::Result<Vec<bool>> {
    let mut found = vec![false; keep.len()];
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            let name = entry.file_name();
            match keep.iter().position(|k| name == *k) {
                Some(i) => {
                    found[i] = true;
                    if !clean.iter().any(|c| name == *c) {
                        empty_entries(&path, &[], &[])?;
                    }
                }
                None => std::fs::remove_dir_all(&path)?,
            }
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(found)
}

/// Makes the directories of `keep` not `found` in `dir`.
fn make_kept(dir: &Path, keep: &[&str], found: &[bool]) -> io::Result<()> {
    for (k, _) in keep.iter().zip(found).filter(|(_, f)| !**f) {
        std::fs::create_dir_all(dir.join(k))?;
    }
    Ok(())
}

/// [`empty_dir`], or, when something in `dir` cannot be removed (user code may leave
/// unwritable directories behind), `dir` moved aside into `trash` (as `.trash-N`; the job's
/// scratch directory, removed with it, outside what user code sees) and made afresh. Either
/// way `dir` is empty afterwards apart from the empty `keep` subdirectories.
pub(crate) fn reset(dir: &Path, keep: &[&str], clean: &[&str], trash: &Path) -> io::Result<()> {
    if empty_dir(dir, keep, clean).is_ok() {
        return Ok(());
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let aside = trash.join(format!(".trash-{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::rename(dir, &aside)?;
    std::fs::create_dir_all(dir)?;
    make_kept(dir, keep, &vec![false; keep.len()])
}

/// What a worker's scratch directory is known to hold after its last datum, so the next
/// datum's [`prepare`] does the least work.
#[derive(Debug, Default)]
pub(crate) struct ScratchState {
    /// `out` is empty: the last datum succeeded writing nothing.
    pub out_clean: bool,
    /// What the engine laid out there, when nothing else can have changed it (the executor
    /// shows user code everything but `out` read-only); `None` when not known.
    pub laid: Option<Laid>,
}

/// The engine's own layout of a scratch directory: its top-level directories and what it
/// made below them, in the order made (so removing it in reverse leaves them empty).
#[derive(Debug, Default)]
pub(crate) struct Laid {
    dirs: Vec<String>,
    made: Vec<(PathBuf, bool)>,
}

impl Laid {
    /// Notes the file (or, when `is_dir`, the directory) at `path`, just made below one of
    /// the top-level directories.
    pub(crate) fn made(&mut self, path: PathBuf, is_dir: bool) {
        self.made.push((path, is_dir));
    }

    /// Makes the directories from `base` (a top-level directory) down to `path`'s parent
    /// that are missing, noting each one made.
    pub(crate) fn make_parents(&mut self, base: &Path, path: &Path) -> io::Result<()> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        let Ok(below) = parent.strip_prefix(base) else {
            return Err(io::Error::other(format!(
                "{} is not below {}",
                path.display(),
                base.display()
            )));
        };
        let mut dir = base.to_path_buf();
        for part in below.components() {
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => self.made(dir.clone(), true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes what was made, newest first, then the top-level directories not in `keep`,
    /// and makes those of `keep` missing; fails on anything unexpected (something removed
    /// or added behind the engine's back).
    fn undo(&self, dir: &Path, keep: &[&str]) -> io::Result<()> {
        for (path, is_dir) in self.made.iter().rev() {
            if *is_dir {
                std::fs::remove_dir(path)?;
            } else {
                std::fs::remove_file(path)?;
            }
        }
        for d in self.dirs.iter().filter(|d| !keep.contains(&d.as_str())) {
            std::fs::remove_dir(dir.join(d))?;
        }
        for k in keep.iter().filter(|k| !self.dirs.iter().any(|d| d == *k)) {
            std::fs::create_dir(dir.join(k))?;
        }
        Ok(())
    }
}

/// Readies `dir` for a datum: [`reset`] to the empty `keep` subdirectories (`out` and the
/// inputs' names; those in `clean`, and `out` when `state` says it is empty, are known to be
/// empty and left unread), or, when `state` knows
/// what the engine laid out there, that removed without reading a directory. `state.laid`
/// starts afresh (listing the `keep` directories) when `track` (nothing but the engine
/// changes the directory outside `out`), else is `None`.
///
/// What `track` trusts: a file that appeared in a kept directory behind the engine's back is
/// not seen (nothing reads there); anything else amiss (a noted file gone, a directory to
/// remove that is not empty) makes it read everything, as [`reset`] does.
pub(crate) fn prepare(
    dir: &Path,
    (keep, clean): (&[&str], &[&str]),
    state: &mut ScratchState,
    track: bool,
    trash: &Path,
) -> io::Result<()> {
    let out_clean = std::mem::take(&mut state.out_clean);
    let fast = state.laid.take().is_some_and(|laid| {
        laid.undo(dir, keep).is_ok()
            && (out_clean || empty_entries(&dir.join("out"), &[], &[]).is_ok())
    });
    if !fast {
        let clean: Vec<&str> = clean
            .iter()
            .copied()
            .chain(out_clean.then_some("out"))
            .collect();
        reset(dir, keep, &clean, trash)?;
    }
    state.laid = track.then(|| Laid {
        dirs: keep.iter().map(|k| k.to_string()).collect(),
        made: Vec::new(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn engines_without_a_store_directory_get_scratch_roots_of_their_own() {
        let stale = std::env::temp_dir().join("pps-scratch-999999999-0");
        std::fs::create_dir_all(&stale).unwrap();
        let (a, b) = (temp_scratch(), temp_scratch());
        assert_ne!(a, b);
        let mine = format!("pps-scratch-{}-", std::process::id());
        assert!(a.to_string_lossy().contains(&mine), "{}", a.display());
        assert!(
            !stale.exists(),
            "a root of a process that is gone is removed"
        );
    }

    use super::*;

    #[test]
    fn empties_in_place_keeping_named_dirs_and_never_following_links() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep-me"), b"x").unwrap();
        let s = t.path().join("w0");
        std::fs::create_dir_all(s.join("out/sub")).unwrap();
        std::fs::create_dir_all(s.join("in/a/b")).unwrap();
        std::fs::create_dir_all(s.join("other/c")).unwrap();
        std::fs::write(s.join("out/sub/f"), b"1").unwrap();
        std::fs::write(s.join("in/a/b/g"), b"2").unwrap();
        std::fs::write(s.join("loose"), b"3").unwrap();
        std::os::unix::fs::symlink(&outside, s.join("out/link")).unwrap();
        let out_inode =
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(s.join("out")).unwrap());

        reset(&s, &["out", "in", "new"], &[], t.path()).unwrap();

        let mut names: Vec<_> = std::fs::read_dir(&s)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["in", "new", "out"], "missing kept dirs are made");
        assert_eq!(std::fs::read_dir(s.join("out")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(s.join("in")).unwrap().count(), 0);
        let again = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(s.join("out")).unwrap());
        assert_eq!(out_inode, again, "out is emptied in place, not re-created");
        assert!(outside.join("keep-me").exists(), "a symlink was followed");
    }

    /// A kept directory named clean is left as it is (not read); the others are emptied.
    #[test]
    fn clean_dirs_are_not_read() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("w0");
        std::fs::create_dir_all(s.join("out")).unwrap();
        std::fs::create_dir_all(s.join("in")).unwrap();
        std::fs::write(s.join("out/f"), b"1").unwrap();
        std::fs::write(s.join("in/g"), b"2").unwrap();
        reset(&s, &["out", "in"], &["out"], t.path()).unwrap();
        assert!(s.join("out/f").exists(), "a clean dir was read");
        assert!(!s.join("in/g").exists());
    }

    #[test]
    fn a_file_where_the_dir_should_be_is_replaced_and_missing_dirs_are_made() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("out");
        std::fs::write(&f, b"x").unwrap();
        reset(&f, &["out"], &[], t.path()).unwrap();
        assert!(f.join("out").is_dir());
        assert!(f.is_dir());
        let missing = t.path().join("a/b");
        reset(&missing, &[], &[], t.path()).unwrap();
        assert!(missing.is_dir());
    }

    /// Every path below `dir`, sorted, relative.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// Lays out `files` below the tracked input `name` of `dir`, as the engine does.
    fn lay(dir: &Path, state: &mut ScratchState, name: &str, files: &[&str]) {
        let laid = state.laid.as_mut().expect("tracked");
        let base = dir.join(name);
        for f in files {
            let target = base.join(f);
            laid.make_parents(&base, &target).unwrap();
            std::fs::write(&target, b"x").unwrap();
            laid.made(target, false);
        }
    }

    /// A tracked directory is readied by undoing what was laid out (inputs gone or kept,
    /// nested directories, a dirty `out`), and ends as the full reset leaves it.
    #[test]
    fn prepare_undoes_what_was_laid_out() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("w0");
        let mut state = ScratchState::default();
        prepare(&s, (&["out", "a", "b"], &[]), &mut state, true, t.path()).unwrap();
        assert_eq!(tree(&s), ["a", "b", "out"]);
        lay(&s, &mut state, "a", &["x", "d/e/y", "d/z"]);
        lay(&s, &mut state, "b", &["k"]);
        std::fs::write(s.join("out/o"), b"o").unwrap();
        prepare(&s, (&["out", "b", "c"], &[]), &mut state, true, t.path()).unwrap();
        assert_eq!(tree(&s), ["b", "c", "out"]);
        lay(&s, &mut state, "c", &["q"]);
        state.out_clean = true;
        prepare(&s, (&["out", "c"], &[]), &mut state, false, t.path()).unwrap();
        assert_eq!(tree(&s), ["c", "out"]);
        assert!(state.laid.is_none(), "untracked");
    }

    /// Where what is there is not what was noted (which an executor that keeps inputs
    /// read-only never lets user code cause), the full reset runs instead: a file the engine
    /// did not make in a directory it removes, a file it made that is gone.
    #[test]
    fn prepare_falls_back_to_reading_when_the_layout_is_not_what_was_noted() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("w0");
        let mut state = ScratchState::default();
        prepare(&s, (&["out", "a"], &[]), &mut state, true, t.path()).unwrap();
        lay(&s, &mut state, "a", &["x"]);
        std::fs::write(s.join("a/stray"), b"s").unwrap();
        prepare(&s, (&["out", "b"], &[]), &mut state, true, t.path()).unwrap();
        assert_eq!(tree(&s), ["b", "out"]);
        prepare(&s, (&["out", "a"], &[]), &mut state, true, t.path()).unwrap();
        lay(&s, &mut state, "a", &["x"]);
        std::fs::remove_file(s.join("a/x")).unwrap();
        prepare(&s, (&["out"], &[]), &mut state, true, t.path()).unwrap();
        assert_eq!(tree(&s), ["out"]);
    }

    #[test]
    fn unremovable_contents_are_moved_aside() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("w0");
        std::fs::create_dir_all(s.join("locked")).unwrap();
        std::fs::write(s.join("locked/f"), b"x").unwrap();
        std::fs::set_permissions(s.join("locked"), std::fs::Permissions::from_mode(0o500)).unwrap();
        reset(&s, &[], &[], t.path()).unwrap();
        assert_eq!(std::fs::read_dir(&s).unwrap().count(), 0);
        // (as root the locked directory is removable and nothing is moved aside)
        for e in std::fs::read_dir(t.path()).unwrap() {
            let p = e.unwrap().path();
            let _ =
                std::fs::set_permissions(p.join("locked"), std::fs::Permissions::from_mode(0o700));
        }
    }
}
