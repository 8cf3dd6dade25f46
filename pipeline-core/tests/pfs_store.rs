//! Functional tests of the versioned data store.

use std::io::Read;

use pipeline_core::hash::{ContentHash, DirectoryHasher};
use pipeline_core::pfs::{
    BranchRef, Change, CommitRef, CommitState, FileKind, FinishOptions, Origin, PfsError, RepoRef,
    Store,
};
use pipeline_core::testkit::store::open_test_store;

/// A store in a temp dir: a store directory, or with `PIPELINE_TEST_STORE=postgres` a store
/// on the test PostgreSQL server with its objects in the same place.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = open_test_store(&dir.path().join("store"));
    (dir, s)
}

/// A local store, for the tests that look at its files or its lock.
fn local_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("store")).unwrap();
    (dir, s)
}

fn repo(s: &Store, name: &str) -> RepoRef {
    let r = RepoRef::new(name).unwrap();
    s.create_repo(&r, "").unwrap();
    r
}

fn master(r: &RepoRef) -> BranchRef {
    r.branch("master").unwrap()
}

fn commit_with(s: &Store, b: &BranchRef, files: &[(&str, &str)]) -> CommitRef {
    let c = s.start_commit(b, "").unwrap().commit;
    for (p, data) in files {
        s.put_file_bytes(&c, p, data.as_bytes()).unwrap();
    }
    s.finish_commit(&c, FinishOptions::default()).unwrap();
    c
}

fn read_file(s: &Store, c: &CommitRef, p: &str) -> String {
    let (_, mut r) = s.get_file(c, p).unwrap();
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    out
}

fn paths(it: pipeline_core::pfs::FileIter) -> Vec<String> {
    it.map(|e| e.unwrap().path).collect()
}

#[test]
fn repos_create_list_inspect_delete() {
    let (_d, s) = store();
    repo(&s, "b");
    repo(&s, "a");
    let names: Vec<_> = s
        .list_repos()
        .unwrap()
        .into_iter()
        .map(|r| r.repo.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let a = RepoRef::new("a").unwrap();
    assert!(matches!(
        s.create_repo(&a, ""),
        Err(PfsError::RepoExists { .. })
    ));
    commit_with(&s, &master(&a), &[("/x", "1")]);
    s.delete_repo(&a, false).unwrap();
    assert!(matches!(
        s.inspect_repo(&a),
        Err(PfsError::RepoNotFound { .. })
    ));
    // Recreated repo starts empty.
    s.create_repo(&a, "").unwrap();
    assert!(s.list_commits(&a, None, 0).unwrap().is_empty());
    assert!(RepoRef::new("bad name").is_err());
}

#[test]
fn commit_history_contents_and_ancestry() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c1 = commit_with(&s, &b, &[("/a.txt", "one"), ("/dir/b.txt", "two")]);
    let c2 = commit_with(&s, &b, &[("/a.txt", "ONE")]);
    let c3 = s.start_commit(&b, "third").unwrap().commit;
    s.delete_file(&c3, "/dir").unwrap();
    s.finish_commit(&c3, FinishOptions::default()).unwrap();

    assert_eq!(read_file(&s, &c1, "/a.txt"), "one");
    assert_eq!(read_file(&s, &c2, "/a.txt"), "ONE");
    assert_eq!(read_file(&s, &c2, "dir/b.txt"), "two");
    assert!(matches!(
        s.get_file(&c3, "/dir/b.txt"),
        Err(PfsError::FileNotFound { .. })
    ));
    let history: Vec<_> = s
        .list_commits(&r, Some("master"), 0)
        .unwrap()
        .into_iter()
        .map(|c| c.commit.id)
        .collect();
    assert_eq!(history, [c3.id.clone(), c2.id.clone(), c1.id.clone()]);
    assert_eq!(s.resolve_commit(&r, "master").unwrap(), c3);
    assert_eq!(s.resolve_commit(&r, "master^").unwrap(), c2);
    assert_eq!(s.resolve_commit(&r, "master^2").unwrap(), c1);
    assert_eq!(s.resolve_commit(&r, "master^^").unwrap(), c1);
    assert_eq!(s.resolve_commit(&r, &format!("{}~1", c2.id)).unwrap(), c1);
    assert!(s.resolve_commit(&r, "master^3").is_err());
    let info = s.inspect_commit(&c2).unwrap();
    assert_eq!(info.parent, Some(c1.id.clone()));
    assert_eq!(info.origin, Origin::User);
    assert_eq!(info.size_bytes, Some(6));
    assert!(info.finished_ms.is_some());
    assert_eq!(s.inspect_commit(&c3).unwrap().description, "third");
}

#[test]
fn writes_need_open_commit_and_finished_parent() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c = s.start_commit(&b, "").unwrap().commit;
    assert!(matches!(
        s.start_commit(&b, ""),
        Err(PfsError::ParentNotFinished { .. })
    ));
    s.finish_commit(&c, FinishOptions::default()).unwrap();
    assert!(matches!(
        s.put_file_bytes(&c, "/a", b"x"),
        Err(PfsError::CommitFinished { .. })
    ));
    assert!(matches!(
        s.finish_commit(&c, FinishOptions::default()),
        Err(PfsError::CommitFinished { .. })
    ));
}

#[test]
fn bad_paths_are_rejected_with_the_path() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let c = s.start_commit(&master(&r), "").unwrap().commit;
    for p in ["/a/../b", "/a//b", "/a*", "/x\0", "/\u{7f}", "/[x]"] {
        let e = s.put_file_bytes(&c, p, b"x").unwrap_err();
        assert!(matches!(e, PfsError::InvalidPath(_)), "{p:?}: {e}");
        assert!(e.to_string().contains("invalid file path"), "{e}");
    }
}

#[test]
fn errored_commits_are_not_inherited() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c1 = commit_with(&s, &b, &[("/keep", "1")]);
    let c2 = s.start_commit(&b, "").unwrap().commit;
    s.put_file_bytes(&c2, "/bad", b"2").unwrap();
    let info = s
        .finish_commit(
            &c2,
            FinishOptions {
                error: Some("job failed".into()),
                description: None,
            },
        )
        .unwrap();
    assert_eq!(info.error.as_deref(), Some("job failed"));
    // The errored commit itself still reads its own tree.
    assert_eq!(
        paths(s.list_file_recursive(&c2, "/").unwrap()),
        ["/bad", "/keep"]
    );
    let c3 = commit_with(&s, &b, &[("/new", "3")]);
    assert_eq!(
        paths(s.list_file_recursive(&c3, "/").unwrap()),
        ["/keep", "/new"]
    );
    let _ = c1;
}

#[test]
fn path_collision_sets_commit_error() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let c = s.start_commit(&master(&r), "").unwrap().commit;
    s.put_file_bytes(&c, "/p", b"file").unwrap();
    s.put_file_bytes(&c, "/p-x", b"between").unwrap();
    s.put_file_bytes(&c, "/p/q", b"under").unwrap();
    let info = s.finish_commit(&c, FinishOptions::default()).unwrap();
    assert_eq!(
        info.error.as_deref(),
        Some("file / directory path collision (/p)")
    );
}

#[test]
fn walk_lists_dirs_and_files_with_hashes() {
    let (_d, s) = store();
    let r = repo(&s, "images");
    let c = commit_with(
        &s,
        &master(&r),
        &[
            ("/a.png", "A"),
            ("/b.png", "BB"),
            ("/dir/c.png", "C"),
            ("/dir/sub/d.png", "D"),
            ("/dir-x", "X"),
        ],
    );
    let entries: Vec<_> = s.walk(&c).unwrap().map(|e| e.unwrap()).collect();
    let ps: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        ps,
        [
            "/",
            "/a.png",
            "/b.png",
            "/dir-x",
            "/dir/",
            "/dir/c.png",
            "/dir/sub/",
            "/dir/sub/d.png"
        ]
    );
    let h = ContentHash::of_bytes;
    let mut sub = DirectoryHasher::new();
    sub.child("d.png", &h(b"D"));
    let sub = sub.finish();
    let mut dir = DirectoryHasher::new();
    dir.child("c.png", &h(b"C"));
    dir.child("sub/", &sub);
    let dir = dir.finish();
    let by = |p: &str| entries.iter().find(|e| e.path == p).unwrap().clone();
    assert_eq!(by("/dir/").hash, dir);
    assert_eq!(by("/dir/").size, 2);
    assert_eq!(by("/dir/").kind, FileKind::Dir);
    assert_eq!(by("/").size, 6);
    assert_eq!(by("/dir/sub/d.png").hash, h(b"D"));
    // Sorted byte-wise throughout.
    let mut sorted = ps.clone();
    sorted.sort();
    assert_eq!(sorted, ps);
    // Same hash for directories through inspect_file.
    assert_eq!(s.inspect_file(&c, "/dir").unwrap().hash, dir);

    // One-level listing.
    assert_eq!(
        paths(s.list_file(&c, "/").unwrap()),
        ["/a.png", "/b.png", "/dir-x", "/dir/"]
    );
    assert_eq!(
        paths(s.list_file(&c, "/dir").unwrap()),
        ["/dir/c.png", "/dir/sub/"]
    );
    assert!(matches!(
        s.list_file(&c, "/nope"),
        Err(PfsError::FileNotFound { .. })
    ));
    // Empty commit: no entries at all.
    let e = s
        .start_commit(&r.branch("empty").unwrap(), "")
        .unwrap()
        .commit;
    assert_eq!(s.walk(&e).unwrap().count(), 0);
}

#[test]
fn glob_file_matches_files_and_directories() {
    let (_d, s) = store();
    let r = repo(&s, "images");
    let c = commit_with(
        &s,
        &master(&r),
        &[
            ("/a.png", "A"),
            ("/b.png", "B"),
            ("/dir/c.png", "C"),
            ("/dir/sub/d.png", "D"),
        ],
    );
    let g = |p: &str| paths(s.glob_file(&c, p).unwrap());
    assert_eq!(g("/"), ["/"]);
    assert_eq!(g("/*"), ["/a.png", "/b.png", "/dir/"]);
    assert_eq!(g("/*/*"), ["/dir/c.png", "/dir/sub/"]);
    assert_eq!(g("*"), g("/*"));
    assert_eq!(g("/*/"), g("/*"));
    assert_eq!(
        g("/**"),
        [
            "/a.png",
            "/b.png",
            "/dir/",
            "/dir/c.png",
            "/dir/sub/",
            "/dir/sub/d.png"
        ]
    );
    assert_eq!(g("/a*"), ["/a.png"]);
    // The project's dialect: extglob groups.
    assert_eq!(g("/@(a|b).png"), ["/a.png", "/b.png"]);
    assert_eq!(
        g("/**.png"),
        ["/a.png", "/b.png", "/dir/c.png", "/dir/sub/d.png"]
    );
    assert!(matches!(
        s.glob_file(&c, "/[").map(|_| ()),
        Err(PfsError::InvalidGlob { .. })
    ));
}

#[test]
fn diff_copy_and_dedup() {
    let (d, s) = local_store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c1 = commit_with(&s, &b, &[("/same", "s"), ("/mod", "1"), ("/gone", "g")]);
    let c2 = s.start_commit(&b, "").unwrap().commit;
    s.put_file_bytes(&c2, "/mod", b"2").unwrap();
    s.put_file_bytes(&c2, "/new", b"n").unwrap();
    s.delete_file(&c2, "/gone").unwrap();
    s.finish_commit(&c2, FinishOptions::default()).unwrap();
    let diff: Vec<_> = s
        .diff_file(&c2, &c1)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path, e.change)
        })
        .collect();
    assert_eq!(
        diff,
        [
            ("/gone".to_string(), Change::Deleted),
            ("/mod".to_string(), Change::Modified),
            ("/new".to_string(), Change::Added)
        ]
    );

    // Copy into another repo shares the object.
    let other = repo(&s, "other");
    let o = s.start_commit(&master(&other), "").unwrap().commit;
    assert_eq!(s.copy_file(&c2, "/", &o, "/copied").unwrap(), 3);
    s.finish_commit(&o, FinishOptions::default()).unwrap();
    assert_eq!(read_file(&s, &o, "/copied/mod"), "2");
    // Put of identical bytes in another repo: same object, no new file.
    let count = || walkdir_count(&d.path().join("store/objects"));
    let before = count();
    let o2 = s.start_commit(&master(&other), "").unwrap().commit;
    s.put_file_bytes(&o2, "/again", b"s").unwrap();
    assert_eq!(count(), before);
}

fn walkdir_count(p: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walkdir_count(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[test]
fn long_history_compacts_and_reads_correctly() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let mut last = None;
    for i in 0..40 {
        let c = s.start_commit(&b, "").unwrap().commit;
        s.put_file_bytes(&c, &format!("/f{i:02}"), format!("{i}").as_bytes())
            .unwrap();
        if i % 3 == 0 && i > 0 {
            s.delete_file(&c, &format!("/f{:02}", i - 1)).unwrap();
        }
        s.finish_commit(&c, FinishOptions::default()).unwrap();
        last = Some(c);
    }
    let last = last.unwrap();
    let got = paths(s.list_file_recursive(&last, "/").unwrap());
    let want: Vec<String> = (0..40)
        .filter(|i| !(i % 3 == 2 && *i < 39))
        .map(|i| format!("/f{i:02}"))
        .collect();
    assert_eq!(got, want);
    assert_eq!(read_file(&s, &last, "/f04"), "4");
    assert!(s.get_file(&last, "/f05").is_err());
}

#[test]
fn provenance_rules_and_propagation() {
    let (_d, s) = store();
    let a = repo(&s, "a");
    let b = repo(&s, "b");
    let out = repo(&s, "out");
    let a_m = master(&a);
    let b_m = master(&b);
    commit_with(&s, &a_m, &[("/x", "1")]);
    commit_with(&s, &b_m, &[("/y", "2")]);
    let out_m = master(&out);
    let info = s
        .create_branch(&out_m, None, &[a_m.clone(), b_m.clone()])
        .unwrap();
    assert_eq!(info.provenance, [a_m.clone(), b_m.clone()]);
    let head = s.inspect_commit(&out.commit(&info.head)).unwrap();
    assert_eq!(head.origin, Origin::Auto);
    assert_eq!(head.state, CommitState::Open);
    assert_eq!(head.direct_provenance.len(), 2);
    assert_eq!(
        s.inspect_branch(&a_m).unwrap().subvenance,
        vec![out_m.clone()]
    );

    // Cannot start a USER commit on an output branch.
    assert!(matches!(
        s.start_commit(&out_m, ""),
        Err(PfsError::OutputBranch { .. })
    ));
    // Cycle.
    let e = s
        .create_branch(&a_m, None, std::slice::from_ref(&out_m))
        .unwrap_err();
    assert!(e.to_string().contains("cycle detected"), "{e}");
    // Same repo twice in one DAG.
    commit_with(&s, &a.branch("dev").unwrap(), &[]);
    let out2 = repo(&s, "out2");
    let e = s
        .create_branch(
            &master(&out2),
            None,
            &[a.branch("dev").unwrap(), out_m.clone()],
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("multiple branches from the same repo"),
        "{e}"
    );
    // Own repo.
    let e = s
        .create_branch(&a.branch("x").unwrap(), None, std::slice::from_ref(&a_m))
        .unwrap_err();
    assert!(
        e.to_string().contains("provenance of its own branch"),
        "{e}"
    );

    // A USER commit on a propagates an AUTO commit with the same ID to out.
    s.finish_commit(&out.commit(&info.head), FinishOptions::default())
        .unwrap();
    let c = s.start_commit(&a_m, "").unwrap().commit;
    let out_head = s.inspect_branch(&out_m).unwrap().head;
    assert_eq!(out_head, c.id);
    let out_commit = s.inspect_commit(&out.commit(&out_head)).unwrap();
    assert_eq!(out_commit.parent, Some(info.head.clone()));
    assert!(out_commit.direct_provenance.contains(&c));
    let set = s.inspect_commit_set(&c.id).unwrap();
    assert_eq!(set.len(), 2);
    // Deleting a repo in use is refused.
    assert!(matches!(
        s.delete_repo(&a, false),
        Err(PfsError::InUse { .. })
    ));

    // One commit set over two inputs.
    s.finish_commit(&c, FinishOptions::default()).unwrap();
    s.finish_commit(&out.commit(&out_head), FinishOptions::default())
        .unwrap();
    let both = s.start_commit_set(&[a_m.clone(), b_m.clone()], "").unwrap();
    assert_eq!(both[0].commit.id, both[1].commit.id);
    assert_eq!(s.inspect_commit_set(&both[0].commit.id).unwrap().len(), 3);
}

#[test]
fn materialize_links_read_only() {
    let (d, s) = store();
    let r = repo(&s, "data");
    let c = commit_with(
        &s,
        &master(&r),
        &[("/dir/a", "A"), ("/dir/sub/b", "B"), ("/top", "T")],
    );
    let dest = d.path().join("scratch");
    let st = s.materialize(&c, "/dir", &dest).unwrap();
    assert_eq!(st.files, 2);
    // Hard links only from a local object store; otherwise copies, verified as they stream.
    let linked = if pipeline_core::testkit::objects::objects_on_s3() {
        0
    } else {
        2
    };
    assert_eq!(st.linked, linked);
    assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "A");
    assert_eq!(std::fs::read_to_string(dest.join("sub/b")).unwrap(), "B");
    assert!(
        std::fs::metadata(dest.join("a"))
            .unwrap()
            .permissions()
            .readonly()
    );
    let dest2 = d.path().join("scratch2");
    s.materialize(&c, "/top", &dest2).unwrap();
    assert_eq!(std::fs::read_to_string(dest2.join("top")).unwrap(), "T");
}

#[test]
fn put_dir_skips_symlinks_and_streams_large_files() {
    let (d, s) = store();
    let r = repo(&s, "data");
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), "A").unwrap();
    std::fs::write(src.join("sub/b"), "B").unwrap();
    std::fs::write(d.path().join("secret"), "S").unwrap();
    std::os::unix::fs::symlink(d.path().join("secret"), src.join("link")).unwrap();
    std::os::unix::fs::symlink(d.path(), src.join("dirlink")).unwrap();
    let c = s.start_commit(&master(&r), "").unwrap().commit;
    let st = s.put_dir_local(&c, "/in", &src, &mut |_| {}).unwrap();
    assert_eq!(st.files, 2);
    assert_eq!(st.skipped_symlinks, 2);
    // A 20 MiB stream, checked by hash.
    let big = vec![7u8; 20 << 20];
    let info = s.put_file(&c, "/big", &mut &big[..]).unwrap();
    assert_eq!(info.hash, ContentHash::of_bytes(&big));
    s.finish_commit(&c, FinishOptions::default()).unwrap();
    assert_eq!(
        paths(s.list_file_recursive(&c, "/").unwrap()),
        ["/big", "/in/a", "/in/sub/b"]
    );
    // Invalid local names are reported with the local path.
    let bad = d.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("x*"), "").unwrap();
    let c2 = s.start_commit(&master(&r), "").unwrap().commit;
    let e = s.put_dir_local(&c2, "/", &bad, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("x*"), "{e}");
}

#[test]
fn second_process_gets_a_clear_lock_error() {
    // A second open in this process is refused at once (no wait for a holder on its way
    // out), naming this process and how to share the store.
    let (d, s) = local_store();
    let e = Store::open(d.path().join("store")).unwrap_err();
    assert!(matches!(e, PfsError::Locked { .. }));
    let message = e.to_string();
    assert!(
        message.contains(&format!("pid {}", std::process::id()))
            && message.contains("this process has it open"),
        "{e}"
    );
    // Closed, it opens again.
    drop(s);
    Store::open(d.path().join("store")).unwrap();
}

#[test]
fn wait_commit_blocks_until_finished() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let c = s.start_commit(&master(&r), "").unwrap().commit;
    let s2 = s.clone();
    let c2 = c.clone();
    let t = std::thread::spawn(move || s2.wait_commit(&c2).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(50));
    s.finish_commit(&c, FinishOptions::default()).unwrap();
    assert!(t.join().unwrap().is_finished());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let done = rt.block_on(s.wait_commit_async(&c)).unwrap();
    assert!(done.is_finished());
}

#[test]
fn commit_tree_source_agrees_with_mem_tree() {
    use pipeline_core::datum::{MemTree, TreeSource};
    use pipeline_core::pfs::CommitTree;
    let (_d, s) = store();
    let r = repo(&s, "images");
    let files = [
        ("/a.png", "A"),
        ("/a-b", "AB"),
        ("/a/x", "X"),
        ("/a/y/z", "Z"),
        ("/b.png", "B"),
    ];
    let c = commit_with(&s, &master(&r), &files);
    let mem = MemTree::from_files(files.iter().map(|(p, d)| (*p, d.as_bytes().to_vec()))).unwrap();
    let tree = CommitTree::new(s.clone(), c);
    let got: Vec<_> = tree.walk().map(|e| e.unwrap()).collect();
    let want: Vec<_> = mem.walk().map(|e| e.unwrap()).collect();
    assert_eq!(got, want);
    assert_eq!(tree.root().unwrap(), mem.root().unwrap());
    for prefix in ["/a/", "/a", "/a/y/", "/nope/"] {
        let got: Vec<_> = tree.walk_prefix(prefix).map(|e| e.unwrap()).collect();
        let want: Vec<_> = mem.walk_prefix(prefix).map(|e| e.unwrap()).collect();
        assert_eq!(got, want, "{prefix}");
    }
    let empty = s.start_commit(&r.branch("e").unwrap(), "").unwrap().commit;
    assert!(CommitTree::new(s.clone(), empty).root().unwrap().is_none());
}

#[test]
fn put_files_batches_and_validates() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let c = s.start_commit(&master(&r), "").unwrap().commit;
    let files = (0..12_000).map(|i| (format!("/d{}/f{i:05}", i % 7), &b"same"[..]));
    let st = s.put_files(&c, files).unwrap();
    assert_eq!(st.files, 12_000);
    let bad = vec![
        ("/ok".to_string(), &b"x"[..]),
        ("/no*".to_string(), &b"y"[..]),
    ];
    assert!(matches!(
        s.put_files(&c, bad),
        Err(PfsError::InvalidPath(_))
    ));
    let info = s.finish_commit(&c, FinishOptions::default()).unwrap();
    assert_eq!(info.size_bytes, Some(4 * 12_000));
    assert_eq!(
        s.list_file(&c, "/d3").unwrap().count(),
        (0..12_000).filter(|i| i % 7 == 3).count()
    );
}

#[test]
fn store_runs_over_other_backends() {
    use pipeline_core::pfs::MemMetaStore;
    use pipeline_core::pfs::object::LocalObjectStore;
    let d = tempfile::tempdir().unwrap();
    let s = Store::with_backends(
        Box::new(MemMetaStore::new()),
        Box::new(LocalObjectStore::open(d.path()).unwrap()),
    );
    let r = repo(&s, "mem");
    let c1 = commit_with(&s, &master(&r), &[("/a", "1"), ("/d/b", "2")]);
    let c2 = s.start_commit(&master(&r), "").unwrap().commit;
    s.delete_file(&c2, "/d").unwrap();
    s.finish_commit(&c2, FinishOptions::default()).unwrap();
    assert_eq!(paths(s.walk(&c1).unwrap()), ["/", "/a", "/d/", "/d/b"]);
    assert_eq!(paths(s.walk(&c2).unwrap()), ["/", "/a"]);
    assert_eq!(read_file(&s, &c1, "/d/b"), "2");
    assert_eq!(s.list_commits(&r, Some("master"), 0).unwrap().len(), 2);
}

/// Garbage collection removes exactly the objects no commit refers to: those of a deleted
/// repo that no other repo shares, and leaves every remaining file readable.
#[test]
fn gc_removes_only_unreferenced_objects() {
    let (dir, s) = local_store();
    let a = repo(&s, "a");
    let b = repo(&s, "b");
    let ca = commit_with(
        &s,
        &master(&a),
        &[("/shared", "same bytes"), ("/a-only", "aaa")],
    );
    commit_with(
        &s,
        &master(&b),
        &[("/shared", "same bytes"), ("/b-only", "bbbb")],
    );
    // An open commit's files count too.
    let open = s.start_commit(&master(&a), "").unwrap().commit;
    s.put_file_bytes(&open, "/pending", b"not finished")
        .unwrap();
    let objects = || walkdir_count(&dir.path().join("store/objects"));
    assert_eq!(objects(), 4);

    let nothing = s.gc(std::time::Duration::ZERO).unwrap();
    assert_eq!((nothing.live, nothing.objects, nothing.removed), (4, 4, 0));

    s.delete_repo(&b, false).unwrap();
    let st = s.gc(std::time::Duration::ZERO).unwrap();
    assert_eq!(
        (st.live, st.objects, st.removed, st.bytes_removed),
        (3, 4, 1, 4)
    );
    assert_eq!(objects(), 3);
    assert_eq!(read_file(&s, &ca, "/shared"), "same bytes");
    assert_eq!(read_file(&s, &ca, "/a-only"), "aaa");
    assert_eq!(read_file(&s, &open, "/pending"), "not finished");
    assert_eq!(s.gc(std::time::Duration::ZERO).unwrap().removed, 0);
}

/// Unreferenced objects younger than the grace period stay, and a deduplicated put makes an
/// old object young again (an object being put for a commit not yet recorded survives).
#[test]
fn gc_keeps_objects_within_the_grace_period() {
    let (dir, s) = local_store();
    let r = repo(&s, "r");
    commit_with(&s, &master(&r), &[("/f", "reused later")]);
    s.delete_repo(&r, false).unwrap();
    let hour = std::time::Duration::from_secs(3600);
    let st = s.gc(hour).unwrap();
    assert_eq!((st.removed, st.kept_young), (0, 1));

    let backdate = |dir: &std::path::Path| {
        for f in object_files(&dir.join("store/objects")) {
            let old = std::time::SystemTime::now() - 2 * hour;
            std::fs::File::open(&f).unwrap().set_modified(old).unwrap();
        }
    };
    backdate(dir.path());
    let local = dir.path().join("again");
    std::fs::write(&local, "reused later").unwrap();
    s.put_object_deferred(&local).unwrap(); // deduplicated: touches the object
    let st = s.gc(hour).unwrap();
    assert_eq!((st.removed, st.kept_young), (0, 1));

    backdate(dir.path());
    let st = s.gc(hour).unwrap();
    assert_eq!((st.removed, st.kept_young), (1, 0));
    assert_eq!(walkdir_count(&dir.path().join("store/objects")), 0);
}

/// Object files under the object store's fan-out directories (not `tmp/`).
fn object_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(root).unwrap().flatten() {
        if d.file_name() == "tmp" || !d.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out
}

/// Trigger branches move to the watched head only when their condition holds, chain, and
/// refuse loops and provenance.
#[test]
fn triggers_move_branches_when_their_conditions_hold() {
    use pipeline_core::pfs::BranchTrigger;
    let (_d, s) = store();
    let r = repo(&s, "r");
    commit_with(&s, &master(&r), &[("/seed", "")]);
    let head = |b: &str| s.inspect_branch(&r.branch(b).unwrap()).unwrap().head;
    let by_size = r.branch("by-size").unwrap();
    s.set_branch_trigger(
        &by_size,
        BranchTrigger {
            branch: "master".into(),
            size_bytes: Some(8),
            ..Default::default()
        },
    )
    .unwrap();
    let every_two = r.branch("every-two").unwrap();
    s.set_branch_trigger(
        &every_two,
        BranchTrigger {
            branch: "by-size".into(),
            commits: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    let start = head("master");
    assert_eq!(head("by-size"), start);

    let c1 = commit_with(&s, &master(&r), &[("/a", "12345")]);
    assert_eq!(head("by-size"), start, "5 new bytes < 8");
    let c2 = commit_with(&s, &master(&r), &[("/b", "12345")]);
    assert_eq!(head("by-size"), c2.id, "10 new bytes >= 8");
    let _ = c1;
    // Chained: by-size's move spans two commits of master, enough for every-two.
    assert_eq!(head("every-two"), c2.id);
    let c3 = commit_with(&s, &master(&r), &[("/c", "123456789")]);
    assert_eq!(head("by-size"), c3.id);
    assert_eq!(head("every-two"), c2.id, "one commit since its head");
    let c4 = commit_with(&s, &master(&r), &[("/d", "123456789")]);
    assert_eq!(head("every-two"), c4.id, "two commits since its head");
    // A commit finished with an error moves nothing.
    let bad = s.start_commit(&master(&r), "").unwrap().commit;
    s.put_file_bytes(&bad, "/e", b"123456789").unwrap();
    s.finish_commit(
        &bad,
        FinishOptions {
            error: Some("broken".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(head("by-size"), c4.id);

    // A loop and provenance are refused.
    let err = s
        .set_branch_trigger(
            &by_size,
            BranchTrigger {
                branch: "every-two".into(),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("loop"), "{err}");
    let other = repo(&s, "other");
    commit_with(&s, &master(&other), &[]);
    let derived = other.branch("derived").unwrap();
    s.create_branch(&derived, None, &[master(&r)]).unwrap();
    let err = s
        .set_branch_trigger(
            &derived,
            BranchTrigger {
                branch: "master".into(),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("provenance"), "{err}");
}

/// A trigger with a `cron_spec` ignores commits and moves when its schedule ticks.
#[test]
fn cron_triggers_move_on_their_schedule() {
    use pipeline_core::pfs::BranchTrigger;
    let (_d, s) = store();
    let r = repo(&s, "r");
    let first = commit_with(&s, &master(&r), &[("/a", "a")]);
    let t = r.branch("hourly").unwrap();
    let info = s
        .set_branch_trigger(
            &t,
            BranchTrigger {
                branch: "master".into(),
                cron_spec: Some("@every 1h".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let set_at = info
        .trigger
        .and_then(|t| t.last_tick_s)
        .expect("tick time recorded");
    assert_eq!(s.next_trigger_cron().unwrap(), Some(set_at + 3600));
    let second = commit_with(&s, &master(&r), &[("/b", "b")]);
    let head = || s.inspect_branch(&t).unwrap().head;
    assert_eq!(head(), first.id, "commits do not move a cron trigger");
    assert_eq!(s.tick_trigger_crons(set_at + 60).unwrap(), 0, "not due yet");
    assert_eq!(s.tick_trigger_crons(set_at + 3600).unwrap(), 1);
    assert_eq!(head(), second.id);
    assert_eq!(s.next_trigger_cron().unwrap(), Some(set_at + 7200));
    assert_eq!(
        s.tick_trigger_crons(set_at + 7200).unwrap(),
        0,
        "nothing new to move"
    );
}

#[test]
fn list_file_recursive_from_seeks_across_layers() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    commit_with(
        &s,
        &b,
        &[("/d/a", "1"), ("/d/c", "1"), ("/d/e/f", "1"), ("/z", "1")],
    );
    let c = s.start_commit(&b, "").unwrap().commit;
    s.put_file_bytes(&c, "/d/b", b"2").unwrap();
    s.delete_file(&c, "/d/c").unwrap();
    s.finish_commit(&c, FinishOptions::default()).unwrap();
    let from = |dir: &str, from: &str| paths(s.list_file_recursive_from(&c, dir, from).unwrap());
    assert_eq!(from("/d", "/d/b"), ["/d/b", "/d/e/f"]);
    assert_eq!(from("/d", "/d/b\0"), ["/d/e/f"], "strictly after /d/b");
    assert_eq!(
        from("/d", "/a"),
        ["/d/a", "/d/b", "/d/e/f"],
        "before the prefix: all"
    );
    assert_eq!(
        from("/d", "/d/e0"),
        Vec::<String>::new(),
        "past the directory"
    );
    assert_eq!(from("/", "/d/e0"), ["/z"]);
    assert_eq!(from("/z", "/z"), ["/z"], "a file at or after from");
    assert_eq!(from("/z", "/z\0"), Vec::<String>::new());
}
