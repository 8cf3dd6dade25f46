//! Long listings of finished commits (a job's plan walks its input commit for the whole job)
//! read in chunks, each from a fresh database snapshot, so that they do not keep the metadata file
//! growing by every page later writes copy (#19). What must hold meanwhile: the listing is
//! exactly the commit's, whatever is written elsewhere, and a commit deleted under it ends
//! the listing with an error instead of a silently shorter one.

use std::io::Cursor;

use pipeline_core::pfs::{CommitRef, FinishOptions, RepoRef, Store};

const FILES: usize = 3000;

/// A finished commit of `FILES` files in repo `name`.
fn commit_of_files(store: &Store, name: &str) -> CommitRef {
    let repo = RepoRef::new(name).expect("repo");
    store.create_repo(&repo, "").expect("create");
    let commit = store
        .start_commit(&repo.branch("master").expect("branch"), "")
        .expect("start")
        .commit;
    let files = (0..FILES).map(|i| {
        (
            format!("/d{}/f{i:05}", i % 7),
            Cursor::new(vec![b'x'; i % 5]),
        )
    });
    store.put_files(&commit, files).expect("put");
    store
        .finish_commit(&commit, FinishOptions::default())
        .expect("finish");
    commit
}

/// Writes one file to an open commit of another repo (one metadata transaction).
fn write_elsewhere(store: &Store, commit: &CommitRef, i: usize) {
    store
        .put_file_bytes(commit, &format!("/other/{i}"), b"y")
        .expect("put elsewhere");
}

#[test]
fn a_walk_of_a_finished_commit_is_the_same_while_other_writes_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let commit = commit_of_files(&store, "input");
    let expected: Vec<_> = store
        .walk(&commit)
        .expect("walk")
        .map(|e| e.expect("entry"))
        .collect();
    assert_eq!(expected.len(), FILES + 8, "root, 7 directories, the files");

    let other = RepoRef::new("other").expect("repo");
    store.create_repo(&other, "").expect("create");
    let open = store
        .start_commit(&other.branch("master").expect("branch"), "")
        .expect("start")
        .commit;
    let mut seen = Vec::new();
    for (i, e) in store.walk(&commit).expect("walk").enumerate() {
        seen.push(e.expect("entry"));
        if i % 300 == 0 {
            write_elsewhere(&store, &open, i);
        }
    }
    assert_eq!(seen, expected);
}

#[test]
fn a_walk_of_a_commit_deleted_under_it_ends_with_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let commit = commit_of_files(&store, "input");
    let mut walk = store.walk(&commit).expect("walk");
    for _ in 0..10 {
        walk.next().expect("entry").expect("entry");
    }
    store.delete_repo(&commit.repo, true).expect("delete");
    let rest: Vec<_> = walk.collect();
    let failed = rest.iter().filter(|e| e.is_err()).count();
    assert_eq!(failed, 1, "one error ends the walk");
    assert!(
        rest.len() < FILES,
        "the walk stopped at the error ({} more entries)",
        rest.len()
    );
}
