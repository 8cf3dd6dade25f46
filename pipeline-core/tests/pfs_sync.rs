//! Re-puts of a local directory read only what changed (`Store::put_dir_local` and its
//! stat cache): proven by watching which files are opened (inotify), and by changes the
//! cache must not be fooled by.

use std::fs::{self, File, FileTimes};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use pipeline_core::hash::ContentHash;
use pipeline_core::pfs::{RepoRef, Store, TransferStats};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    repo: RepoRef,
    local: PathBuf,
    cache_dir: PathBuf,
}

/// A store, a repo `data` and a local directory of `n` files in `in/` and `in/sub/`, old
/// enough that none is racily clean.
fn fixture(n: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("in");
    fs::create_dir_all(local.join("sub")).unwrap();
    for i in 0..n {
        let sub = if i % 2 == 0 { "" } else { "sub/" };
        fs::write(local.join(format!("{sub}f{i:03}")), format!("file {i}\n")).unwrap();
    }
    let store = Store::open(dir.path().join("store")).unwrap();
    let repo = RepoRef::new("data").unwrap();
    store.create_repo(&repo, "").unwrap();
    let cache_dir = dir.path().join("store/sync-cache");
    let f = Fixture {
        _dir: dir,
        store,
        repo,
        local,
        cache_dir,
    };
    past_the_clock_tick();
    f
}

/// Waits until the file system's coarse clock has moved on (files written before are then
/// strictly older than the next put's probe).
fn past_the_clock_tick() {
    std::thread::sleep(Duration::from_millis(30));
}

impl Fixture {
    /// `put file -r data@master:/ -f in`, as pipectl does it (one auto commit).
    fn sync(&self) -> TransferStats {
        self.store
            .write_auto_commit(&self.repo, Some("master"), |c| {
                self.store.put_dir_local(c, "/", &self.local, &mut |_| {})
            })
            .unwrap()
            .value
    }

    /// The head's files: `(path, hash)`.
    fn tree(&self) -> Vec<(String, ContentHash)> {
        let head = self.store.resolve_commit(&self.repo, "master").unwrap();
        self.store
            .list_file_recursive(&head, "/")
            .unwrap()
            .map(|f| {
                let f = f.unwrap();
                (f.path, f.hash)
            })
            .collect()
    }

    fn hash_at(&self, path: &str) -> Option<ContentHash> {
        self.tree()
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, h)| h)
    }

    /// Runs a sync and returns the local files it opened (names, sorted).
    fn sync_watched(&self) -> (TransferStats, Vec<String>) {
        let w = OpenWatch::new(&[&self.local, &self.local.join("sub")]);
        let st = self.sync();
        (st, w.opened())
    }
}

/// An inotify watch reporting which files of some directories were opened.
struct OpenWatch {
    inotify: Inotify,
}

impl OpenWatch {
    fn new(dirs: &[&Path]) -> Self {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        for d in dirs {
            inotify.add_watch(*d, AddWatchFlags::IN_OPEN).unwrap();
        }
        OpenWatch { inotify }
    }

    /// Names of the files (not directories) opened since the watch started.
    fn opened(&self) -> Vec<String> {
        let mut names = Vec::new();
        while let Ok(events) = self.inotify.read_events() {
            for e in events {
                if let Some(n) = e.name
                    && !e.mask.contains(AddWatchFlags::IN_ISDIR)
                {
                    names.push(n.to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// Sets a file's mtime (its ctime becomes now, as the kernel always does).
fn set_mtime(path: &Path, t: SystemTime) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_times(FileTimes::new().set_modified(t)).unwrap();
}

#[test]
fn unchanged_resync_opens_no_file() {
    let f = fixture(200);
    let first = f.sync();
    assert_eq!((first.files, first.unchanged), (200, 0));
    let before = f.tree();
    let (st, opened) = f.sync_watched();
    assert_eq!(
        opened,
        Vec::<String>::new(),
        "an unchanged re-sync opened files"
    );
    assert_eq!((st.files, st.unchanged), (200, 200));
    assert_eq!(st.bytes, first.bytes);
    assert_eq!(f.tree(), before);
    // Each sync is still its own commit (pachctl's auto-commit rule), as before.
    let commits = f
        .store
        .list_commits(&f.repo, Some("master"), 0)
        .unwrap()
        .len();
    assert_eq!(commits, 2);
}

#[test]
fn new_file_is_the_only_one_read() {
    let f = fixture(50);
    f.sync();
    fs::write(f.local.join("sub/new.txt"), "new\n").unwrap();
    let (st, opened) = f.sync_watched();
    assert_eq!(opened, ["new.txt"]);
    assert_eq!((st.files, st.unchanged), (51, 50));
    assert_eq!(
        f.hash_at("/sub/new.txt"),
        Some(ContentHash::of_bytes(b"new\n"))
    );
}

#[test]
fn same_size_and_mtime_with_a_new_ctime_is_read_again() {
    let f = fixture(10);
    let p = f.local.join("f000");
    fs::write(&p, "AAAA").unwrap();
    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
    past_the_clock_tick();
    f.sync();
    assert_eq!(f.hash_at("/f000"), Some(ContentHash::of_bytes(b"AAAA")));
    // New content, same size, mtime put back: only the ctime tells.
    past_the_clock_tick();
    fs::write(&p, "BBBB").unwrap();
    set_mtime(&p, mtime);
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.len(), m.modified().unwrap()), (4, mtime));
    let (_, opened) = f.sync_watched();
    assert_eq!(opened, ["f000"]);
    assert_eq!(f.hash_at("/f000"), Some(ContentHash::of_bytes(b"BBBB")));
}

#[test]
fn a_file_replaced_by_rename_is_read_again() {
    let f = fixture(10);
    let p = f.local.join("f002");
    let old = fs::metadata(&p).unwrap();
    f.sync();
    // Same size and mtime, another inode (and ctime): an editor's save.
    let tmp = f.local.join("sub/.tmp-save");
    fs::write(&tmp, "file X\n").unwrap();
    set_mtime(&tmp, old.modified().unwrap());
    fs::rename(&tmp, &p).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), old.len());
    f.sync();
    assert_eq!(f.hash_at("/f002"), Some(ContentHash::of_bytes(b"file X\n")));
}

#[test]
fn deleted_local_file_stays_in_the_repo_and_a_recreated_one_is_read() {
    let f = fixture(10);
    f.sync();
    let p = f.local.join("sub/f003");
    fs::remove_file(&p).unwrap();
    // `put file -r` adds and overwrites, never deletes (pachctl's behaviour, unchanged).
    let (st, opened) = f.sync_watched();
    assert_eq!(opened, Vec::<String>::new());
    assert_eq!((st.files, st.unchanged), (9, 9));
    assert_eq!(
        f.hash_at("/sub/f003"),
        Some(ContentHash::of_bytes(b"file 3\n"))
    );
    fs::write(&p, "file 9\n").unwrap();
    let (_, opened) = f.sync_watched();
    assert_eq!(opened, ["f003"]);
    assert_eq!(
        f.hash_at("/sub/f003"),
        Some(ContentHash::of_bytes(b"file 9\n"))
    );
}

#[test]
fn a_file_the_commit_no_longer_holds_is_put_again() {
    let f = fixture(10);
    f.sync();
    f.store
        .write_auto_commit(&f.repo, Some("master"), |c| f.store.delete_file(c, "/f004"))
        .unwrap();
    assert_eq!(f.hash_at("/f004"), None);
    let (st, opened) = f.sync_watched();
    assert_eq!(opened, ["f004"]);
    assert_eq!(st.unchanged, 9);
    assert_eq!(f.hash_at("/f004"), Some(ContentHash::of_bytes(b"file 4\n")));
}

#[test]
fn racily_clean_files_are_never_trusted() {
    let f = fixture(10);
    // A timestamp at or after the put's start could be shared by a later change of the
    // same size: such a file is read on every put until it is older than one.
    set_mtime(
        &f.local.join("f006"),
        SystemTime::now() + Duration::from_secs(3600),
    );
    f.sync();
    for _ in 0..2 {
        let (st, opened) = f.sync_watched();
        assert_eq!(opened, ["f006"]);
        assert_eq!(st.unchanged, 9);
    }
}

#[test]
fn a_damaged_cache_costs_a_read_never_a_wrong_hash() {
    let f = fixture(20);
    f.sync();
    let want = f.tree();
    let caches: Vec<PathBuf> = fs::read_dir(&f.cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(caches.len(), 1, "one cache, no temp file left: {caches:?}");
    let cache = &caches[0];
    let good = fs::read(cache).unwrap();
    for damaged in [
        b"garbage".to_vec(),
        good[..good.len() / 2].to_vec(),
        good.iter()
            .enumerate()
            .map(|(i, b)| if i == good.len() / 2 { b ^ 0x10 } else { *b })
            .collect(),
        Vec::new(),
    ] {
        fs::write(cache, &damaged).unwrap();
        let (_, opened) = f.sync_watched();
        assert!(!opened.is_empty(), "a damaged cache was trusted whole");
        assert_eq!(f.tree(), want);
        // The put wrote a whole cache again.
        let (_, opened) = f.sync_watched();
        assert_eq!(opened, Vec::<String>::new());
    }
}

#[test]
fn caches_are_per_destination() {
    let f = fixture(10);
    f.sync();
    // The same directory to another path reads everything once, then nothing.
    let to_copy = || {
        f.store
            .write_auto_commit(&f.repo, Some("master"), |c| {
                f.store.put_dir_local(c, "/copy", &f.local, &mut |_| {})
            })
            .unwrap()
            .value
    };
    assert_eq!(to_copy().unchanged, 0);
    assert_eq!(to_copy().unchanged, 10);
    assert_eq!(f.sync().unchanged, 10);
    assert_eq!(fs::read_dir(&f.cache_dir).unwrap().count(), 2);
}
