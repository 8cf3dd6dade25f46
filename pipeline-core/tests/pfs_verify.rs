//! Issue #13 items 4-6 on the store: it is private, every read is verified, damage is found
//! by `Store::check` and repaired by a re-put, and a store never opens as something it is not.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pipeline_core::hash::ContentHash;
use pipeline_core::pfs::meta::{MetaStore, Table};
use pipeline_core::pfs::{
    CheckProblem, CommitRef, FinishOptions, ObjectProblem, PfsError, RedbMetaStore, RepoRef, Store,
};

/// A store under a world-traversable directory (so only the store's own modes protect it),
/// holding `data@master` with `/a.txt` = "hello world" and `/b.txt` = "other content".
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: Store,
    commit: CommitRef,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let repo = RepoRef::new("data").unwrap();
    store.create_repo(&repo, "").unwrap();
    let commit = store
        .start_commit(&repo.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    store
        .put_file_bytes(&commit, "/a.txt", b"hello world")
        .unwrap();
    store
        .put_file_bytes(&commit, "/b.txt", b"other content")
        .unwrap();
    store
        .finish_commit(&commit, FinishOptions::default())
        .unwrap();
    Fixture {
        _dir: dir,
        root,
        store,
        commit,
    }
}

fn object_path(root: &Path, data: &[u8]) -> PathBuf {
    let hex = ContentHash::of_bytes(data).to_hex();
    root.join("objects").join(&hex[..2]).join(&hex[2..])
}

/// Overwrites a stored object (as outside damage would).
fn damage(root: &Path, data: &[u8], new: &[u8]) {
    let p = object_path(root, data);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&p, new).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
}

/// Reads a file to the end, returning the store error that ended it, if any.
fn get(store: &Store, commit: &CommitRef, path: &str) -> Result<Vec<u8>, PfsError> {
    let (_, mut r) = store.get_file(commit, path)?;
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => {
            let pfs = PfsError::from_io(&e).unwrap_or_else(|| panic!("not a store error: {e}"));
            Err(clone_corrupt(pfs))
        }
    }
}

fn clone_corrupt(e: &PfsError) -> PfsError {
    match e {
        PfsError::ObjectCorrupt(c) => PfsError::ObjectCorrupt(c.clone()),
        other => PfsError::Corrupt(other.to_string()),
    }
}

fn assert_names(e: &PfsError, f: &Fixture, path: &str, object: &[u8]) -> ObjectProblem {
    let msg = e.to_string();
    for part in [
        path,
        f.commit.id.as_str(),
        &ContentHash::of_bytes(object).to_hex(),
    ] {
        assert!(msg.contains(part), "{msg:?} does not name {part}");
    }
    match e {
        PfsError::ObjectCorrupt(c) => c.problem,
        other => panic!("expected ObjectCorrupt, got {other:?}"),
    }
}

fn file_problems(store: &Store, fix: bool) -> Vec<(String, ObjectProblem)> {
    store
        .check(fix)
        .unwrap()
        .problems
        .into_iter()
        .filter_map(|p| match p {
            CheckProblem::File { path, detail, .. } => Some((path, detail)),
            _ => None,
        })
        .collect()
}

#[test]
fn same_size_garbled_object_fails_get_materialize_and_check_then_reput_repairs() {
    let f = fixture();
    // Verified once (by the put) and then changed on disk: the memo must notice.
    damage(&f.root, b"hello world", b"hellO world");
    let e = get(&f.store, &f.commit, "/a.txt").unwrap_err();
    assert!(matches!(
        assert_names(&e, &f, "/a.txt", b"hello world"),
        ObjectProblem::Hash { .. }
    ));
    let out = tempfile::tempdir().unwrap();
    let e = f.store.materialize(&f.commit, "/", out.path()).unwrap_err();
    assert_names(&e, &f, "/a.txt", b"hello world");
    let h = ContentHash::of_bytes(b"hello world");
    assert!(f.store.object_local_path(&h).is_none());
    assert!(!f.store.link_object(&h, &out.path().join("x")).unwrap());
    let report = f.store.check(false).unwrap();
    assert!(report.problems.iter().any(|p| matches!(p,
        CheckProblem::Object { object, .. } if *object == h.to_hex())));
    assert!(matches!(
        file_problems(&f.store, false).as_slice(),
        [(p, ObjectProblem::Hash { .. })] if p == "/a.txt"
    ));
    // A re-put of the right content never dedups onto the damaged object: it repairs it.
    let repo = f.commit.repo.clone();
    let c2 = f
        .store
        .start_commit(&repo.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    let put = f.store.put_file_bytes(&c2, "/again.txt", b"hello world");
    put.unwrap();
    assert_eq!(get(&f.store, &f.commit, "/a.txt").unwrap(), b"hello world");
    assert!(f.store.check(false).unwrap().is_clean());
}

#[test]
fn truncated_object_fails_with_size_and_fsck_fix_moves_it_aside() {
    let f = fixture();
    damage(&f.root, b"hello world", b"hello");
    let e = get(&f.store, &f.commit, "/a.txt").unwrap_err();
    assert_eq!(
        assert_names(&e, &f, "/a.txt", b"hello world"),
        ObjectProblem::Size {
            expected: 11,
            found: 5
        }
    );
    let report = f.store.check(true).unwrap();
    assert_eq!(report.moved, 1);
    let moved = report
        .problems
        .iter()
        .find_map(|p| match p {
            CheckProblem::Object { moved_to, .. } => moved_to.clone(),
            _ => None,
        })
        .unwrap();
    assert_eq!(fs::read(&moved).unwrap(), b"hello", "moved, never deleted");
    assert_eq!(moved.parent().unwrap(), f.root.join("lost+found"));
    let mode = fs::metadata(f.root.join("lost+found"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // Now the entry's object is missing, until a put of the right content restores it.
    assert_eq!(
        file_problems(&f.store, false),
        [("/a.txt".to_string(), ObjectProblem::Missing)]
    );
    let e = get(&f.store, &f.commit, "/a.txt").unwrap_err();
    assert_eq!(
        assert_names(&e, &f, "/a.txt", b"hello world"),
        ObjectProblem::Missing
    );
    let c2 = f
        .store
        .start_commit(&f.commit.repo.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    f.store
        .put_file_bytes(&c2, "/a.txt", b"hello world")
        .unwrap();
    assert_eq!(get(&f.store, &f.commit, "/a.txt").unwrap(), b"hello world");
    assert!(f.store.check(false).unwrap().is_clean());
}

/// Rewrites the file entry of `path` to name `hash` (keeping its recorded size).
fn swap_entry_hash(root: &Path, path: &str, hash: ContentHash) {
    let meta = RedbMetaStore::open(&root.join("meta.redb")).unwrap();
    let (key, value) = meta
        .read()
        .unwrap()
        .scan(Table::Files, &[], &[0xff])
        .unwrap()
        .map(Result::unwrap)
        .find(|(k, _)| k.ends_with(path.as_bytes()))
        .unwrap();
    assert_eq!(value.len(), 41, "entry = 1, size (8), hash (32)");
    let mut new = value[..9].to_vec();
    new.extend_from_slice(hash.as_bytes());
    let mut w = meta.write().unwrap();
    w.put(Table::Files, &key, &new).unwrap();
    w.commit().unwrap();
}

#[test]
fn swapped_hash_in_metadata_fails_get_and_is_found_by_check() {
    let f = fixture();
    let (root, commit) = (f.root.clone(), f.commit.clone());
    drop(f.store);
    swap_entry_hash(&root, "/a.txt", ContentHash::of_bytes(b"other content"));
    swap_entry_hash(&root, "/b.txt", ContentHash::of_bytes(b"never stored"));
    let store = Store::open(&root).unwrap();
    let f = Fixture { store, ..f };
    let e = get(&f.store, &commit, "/a.txt").unwrap_err();
    assert_eq!(
        assert_names(&e, &f, "/a.txt", b"other content"),
        ObjectProblem::Size {
            expected: 11,
            found: 13
        }
    );
    let e = get(&f.store, &commit, "/b.txt").unwrap_err();
    assert_eq!(
        assert_names(&e, &f, "/b.txt", b"never stored"),
        ObjectProblem::Missing
    );
    let out = tempfile::tempdir().unwrap();
    let e = f
        .store
        .materialize(&commit, "/a.txt", out.path())
        .unwrap_err();
    assert_names(&e, &f, "/a.txt", b"other content");
    let problems = file_problems(&f.store, false);
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn store_is_private_from_the_start_and_tightened_when_opened() {
    let f = fixture();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&f.root), 0o700);
    assert_eq!(mode(&f.root.join("objects")), 0o700);
    assert_eq!(mode(&f.root.join("objects/tmp")), 0o700);
    assert_eq!(mode(&f.root.join("objects/00")), 0o700);
    assert_eq!(mode(&f.root.join("meta.redb")), 0o600);
    assert_eq!(mode(&f.root.join("LOCK")), 0o600);
    let obj = object_path(&f.root, b"hello world");
    assert_eq!(mode(&obj), 0o444);
    assert_nobody_cannot_read(&obj);
    assert_nobody_cannot_read(&f.root.join("meta.redb"));
    // An old, world-readable store is tightened when opened.
    drop(f);
    let f2 = fixture();
    drop(f2.store);
    for p in [
        &f2.root,
        &f2.root.join("objects"),
        &f2.root.join("objects/ab"),
    ] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(f2.root.join("meta.redb"), fs::Permissions::from_mode(0o644)).unwrap();
    let _s = Store::open(&f2.root).unwrap();
    for p in [
        &f2.root,
        &f2.root.join("objects"),
        &f2.root.join("objects/ab"),
    ] {
        assert_eq!(mode(p), 0o700, "{}", p.display());
    }
    assert_eq!(mode(&f2.root.join("meta.redb")), 0o600);
}

/// As root, `nobody` (uid 65534) must not read `path`; skipped (with the reason) otherwise.
fn assert_nobody_cannot_read(path: &Path) {
    if !nix_is_root() {
        eprintln!("skipped: reading as nobody needs root (to switch user)");
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(path)
        .output();
    match out {
        Ok(out) => assert!(
            !out.status.success(),
            "nobody read {}: {:?}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("setpriv: {e}"),
        Err(e) => eprintln!("skipped: setpriv unavailable: {e}"),
    }
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn missing_or_empty_metadata_beside_objects_refuses_to_open() {
    let f = fixture();
    let root = f.root.clone();
    drop(f.store);
    let meta = root.join("meta.redb");
    let saved = fs::read(&meta).unwrap();
    for (what, empty) in [("is missing", false), ("is empty", true)] {
        if empty {
            fs::write(&meta, b"").unwrap();
        } else {
            fs::remove_file(&meta).unwrap();
        }
        let e = Store::open(&root).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, PfsError::MetaCorrupt { .. }), "{e:?}");
        assert!(
            msg.contains(what) && msg.contains("backup") && msg.contains("aside"),
            "{msg}"
        );
        assert!(Store::open_existing(&root).is_err());
        assert_eq!(
            fs::metadata(&meta).map(|m| m.len()).unwrap_or(0),
            0,
            "nothing created"
        );
    }
    fs::write(&meta, &saved).unwrap();
    let s = Store::open(&root).unwrap();
    assert_eq!(get(&s, &f.commit, "/a.txt").unwrap(), b"hello world");
    // A brand-new directory, and one whose first open was interrupted before any object,
    // still open as new stores.
    let d = tempfile::tempdir().unwrap();
    drop(Store::open(d.path().join("new")).unwrap());
    fs::remove_file(d.path().join("new/meta.redb")).unwrap();
    drop(Store::open(d.path().join("new")).unwrap());
}

/// A small deterministic generator (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything a command might read; each step may fail, none may panic.
fn exercise(store: &Store) {
    let Ok(repos) = store.list_repos() else {
        return;
    };
    for r in repos {
        let _ = store.list_branches(&r.repo);
        if let Ok(c) = store.resolve_commit(&r.repo, "master") {
            if let Ok(files) = store.list_file_recursive(&c, "/") {
                for file in files.flatten() {
                    let _ = get(store, &c, &file.path);
                }
            }
            let _ = store.walk(&c).map(|w| w.count());
        }
    }
    let _ = store.check(false);
}

#[test]
fn random_damage_to_metadata_never_panics() {
    let f = fixture();
    let root = f.root.clone();
    drop(f.store);
    let meta = root.join("meta.redb");
    let good = fs::read(&meta).unwrap();
    let mut rng = Rng(0x005e_ed13);
    let (mut opened, mut refused) = (0, 0);
    for i in 0..160 {
        let mut bytes = good.clone();
        if i % 4 == 3 {
            bytes.truncate(rng.below(good.len()));
        } else {
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        fs::write(&meta, &bytes).unwrap();
        let outcome = std::panic::catch_unwind(|| match Store::open(&root) {
            Ok(s) => {
                exercise(&s);
                true
            }
            Err(_) => false,
        });
        match outcome {
            Ok(true) => opened += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("iteration {i} (seed 0x005e_ed13) panicked"),
        }
    }
    eprintln!("{opened} damaged databases opened, {refused} refused with an error");
}
