//! Finishing a commit computes its size and finds a file / directory path collision from its
//! own layer and one lookup per entry when the layer is small (`pfs/commits.rs`), instead of
//! walking the whole tree. Checked here against a model of the tree over a long random
//! history of small commits on nested paths (puts, re-puts, deletes, collisions, errored
//! commits the next ones skip, snapshots every 16 layers), and once over a large first
//! commit (walked, as before).

use std::collections::BTreeMap;

use pipeline_core::pfs::{FinishOptions, RepoRef, Store};

/// The paths commits touch: files and directories of each other, so that collisions occur.
const PATHS: &[&str] = &[
    "/a", "/a/b", "/a/b/c", "/a/d", "/b", "/b/x", "/c", "/c/y/z", "/d",
];

/// A deterministic pseudo-random sequence (no dependency; the same history on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % below
    }
}

/// The size and the first collision (a file at `d` with files under `d/`, the least `d/`)
/// of a tree given as path -> size.
fn expected(tree: &BTreeMap<String, u64>) -> (u64, Option<String>) {
    let size = tree.values().sum();
    let first = tree
        .keys()
        .filter(|d| {
            let below = format!("{d}/");
            tree.keys().any(|p| p.starts_with(&below))
        })
        .map(|d| format!("{d}/"))
        .min()
        .map(|d| d.trim_end_matches('/').to_string());
    (size, first)
}

#[test]
fn sizes_and_collisions_match_a_model_of_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let repo = RepoRef::new("r").unwrap();
    store.create_repo(&repo, "").unwrap();
    let branch = repo.branch("master").unwrap();
    let mut rng = Lcg(7);
    // The tree of the last error-free commit: what the next commit starts from.
    let mut good: BTreeMap<String, u64> = BTreeMap::new();
    let mut collisions = 0;
    for round in 0..150 {
        let c = store.start_commit(&branch, "").unwrap().commit;
        let mut tree = good.clone();
        for _ in 0..1 + rng.next(3) {
            let path = PATHS[rng.next(PATHS.len())];
            if rng.next(4) == 0 && tree.contains_key(path) {
                // A delete takes the file and, in a tree with a collision, the directory.
                store.delete_file(&c, path).unwrap();
                let below = format!("{path}/");
                tree.retain(|p, _| p != path && !p.starts_with(&below));
            } else {
                let bytes = "x".repeat(rng.next(20));
                if store.put_file_bytes(&c, path, bytes.as_bytes()).is_ok() {
                    tree.insert(path.to_string(), bytes.len() as u64);
                }
            }
        }
        let info = store.finish_commit(&c, FinishOptions::default()).unwrap();
        let (size, collision) = expected(&tree);
        let want_error = collision.map(|p| format!("file / directory path collision ({p})"));
        assert_eq!(info.error, want_error, "round {round}: {tree:?}");
        if info.error.is_none() {
            let actual: BTreeMap<String, u64> = store
                .walk(&c)
                .unwrap()
                .map(|f| f.unwrap())
                .filter(|f| f.kind == pipeline_core::pfs::FileKind::File)
                .map(|f| (f.path, f.size))
                .collect();
            assert_eq!(actual, tree, "round {round}: the tree");
            assert_eq!(info.size_bytes, Some(size), "round {round}: {tree:?}");
            good = tree;
        } else {
            collisions += 1;
        }
    }
    assert!(
        collisions > 5,
        "the history made only {collisions} collisions"
    );
}

/// A first commit larger than what is looked up entry by entry is walked: same size.
#[test]
fn a_large_commit_is_walked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let repo = RepoRef::new("r").unwrap();
    store.create_repo(&repo, "").unwrap();
    let branch = repo.branch("master").unwrap();
    let c = store.start_commit(&branch, "").unwrap().commit;
    for i in 0..5000 {
        store
            .put_file_bytes(&c, &format!("/f{i:05}"), b"abc")
            .unwrap();
    }
    store.put_file_bytes(&c, "/f00001/x", b"collides").ok();
    let info = store.finish_commit(&c, FinishOptions::default()).unwrap();
    let c2 = store.start_commit(&branch, "").unwrap().commit;
    for i in 0..4500 {
        store
            .put_file_bytes(&c2, &format!("/g{i:05}"), b"abcd")
            .unwrap();
    }
    let info2 = store.finish_commit(&c2, FinishOptions::default()).unwrap();
    if info.error.is_none() {
        assert_eq!(info.size_bytes, Some(15_000));
        assert_eq!(info2.size_bytes, Some(15_000 + 18_000));
    } else {
        assert_eq!(
            info.error.as_deref(),
            Some("file / directory path collision (/f00001)")
        );
    }
}
