//! Squashing and dropping commit sets in the store (`Store::squash_commit_set`,
//! `Store::drop_commit_set`): trees of the commits that stay are unchanged, branch heads
//! move, Pachyderm's refusals, `fsck` stays clean and `gc` reclaims what only the removed
//! commits held.

use std::collections::BTreeMap;
use std::time::Duration;

use pipeline_core::pfs::{
    BranchRef, CommitId, CommitRef, FinishOptions, HistoryOp, PfsError, RepoRef, Store,
};

fn store() -> (tempfile::TempDir, Store) {
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

/// A commit on `b` that puts `puts` (path, content) and deletes `deletes`.
fn commit(s: &Store, b: &BranchRef, puts: &[(&str, &str)], deletes: &[&str]) -> CommitRef {
    let c = s.start_commit(b, "").unwrap().commit;
    for p in deletes {
        s.delete_file(&c, p).unwrap();
    }
    for (p, data) in puts {
        s.put_file_bytes(&c, p, data.as_bytes()).unwrap();
    }
    s.finish_commit(&c, FinishOptions::default()).unwrap();
    c
}

/// A commit's whole tree: path → (size, hash), directories included.
fn tree(s: &Store, c: &CommitRef) -> BTreeMap<String, (u64, String)> {
    s.walk(c)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path, (e.size, e.hash.to_hex()))
        })
        .collect()
}

fn history(s: &Store, b: &BranchRef) -> Vec<String> {
    s.list_commits(&b.repo, Some(&b.name), 0)
        .unwrap()
        .into_iter()
        .map(|c| c.commit.id.to_string())
        .collect()
}

fn assert_clean(s: &Store) {
    let report = s.check(false).unwrap();
    assert!(report.is_clean(), "fsck: {:?}", report.problems);
}

#[test]
fn squash_keeps_every_later_tree_and_reparents_the_child() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c1 = commit(&s, &b, &[("/a", "1"), ("/b", "1"), ("/d/x", "x")], &[]);
    let c2 = commit(&s, &b, &[("/a", "2"), ("/c", "2")], &["/b"]);
    let c3 = commit(&s, &b, &[("/e", "3")], &[]);
    let c4 = commit(&s, &b, &[("/c", "4")], &["/d/x"]);
    let before: Vec<_> = [&c1, &c3, &c4].iter().map(|c| tree(&s, c)).collect();

    let done = s.squash_commit_set(&c2.id).unwrap();
    assert_eq!(done.op, HistoryOp::Squash);
    assert_eq!(done.removed.len(), 1);
    assert_eq!(done.merged_into, vec![c3.clone()]);
    assert!(done.moved_heads.is_empty(), "master's head is c4");

    let after: Vec<_> = [&c1, &c3, &c4].iter().map(|c| tree(&s, c)).collect();
    assert_eq!(after, before, "trees of the remaining commits changed");
    assert_eq!(s.inspect_commit(&c3).unwrap().parent, Some(c1.id.clone()));
    assert!(matches!(
        s.inspect_commit(&c2),
        Err(PfsError::CommitNotFound { .. })
    ));
    assert!(matches!(
        s.squash_commit_set(&c2.id),
        Err(PfsError::CommitSetNotFound { .. })
    ));
    assert_eq!(
        history(&s, &b),
        [c4.id.to_string(), c3.id.to_string(), c1.id.to_string()]
    );
    assert!(s.inspect_commit_set(&c2.id).unwrap().is_empty());
    assert_clean(&s);
}

#[test]
fn squash_without_children_and_drop_with_children_are_refused_with_pachyderms_words() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c1 = commit(&s, &b, &[("/a", "1")], &[]);
    let c2 = commit(&s, &b, &[("/a", "2")], &[]);
    let e = s.squash_commit_set(&c2.id).unwrap_err();
    assert!(matches!(e, PfsError::SquashWithoutChildren { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot squash a commit that has no children as that would cause data loss, use \
             the drop operation instead: {c2}"
        )
    );
    let e = s.drop_commit_set(&c1.id).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot drop a commit that has children: {c1}")
    );
    // Nothing changed.
    assert_eq!(history(&s, &b), [c2.id.to_string(), c1.id.to_string()]);
    let missing = CommitId::parse("0123456789abcdef0123456789abcdef").unwrap();
    let e = s.drop_commit_set(&missing).unwrap_err();
    assert!(matches!(e, PfsError::CommitSetNotFound { .. }), "{e}");
    assert_clean(&s);
}

#[test]
fn drop_moves_heads_to_the_parent_and_gc_reclaims_what_only_it_held() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c1 = commit(&s, &b, &[("/a", "kept")], &[]);
    let c2 = commit(&s, &b, &[("/only-here", "dropped bytes")], &[]);
    // A second branch at the same commit moves too.
    let other = r.branch("other").unwrap();
    s.create_branch(&other, Some(&c2.id), &[]).unwrap();
    let before = tree(&s, &c1);

    let done = s.drop_commit_set(&c2.id).unwrap();
    assert_eq!(done.op, HistoryOp::Drop);
    let mut moved: Vec<_> = done
        .moved_heads
        .iter()
        .map(|m| (m.branch.name.clone(), m.from.clone(), m.to.clone()))
        .collect();
    moved.sort();
    assert_eq!(
        moved,
        [
            ("master".to_string(), c2.id.clone(), c1.id.clone()),
            ("other".to_string(), c2.id.clone(), c1.id.clone())
        ]
    );
    assert_eq!(s.inspect_branch(&b).unwrap().head, c1.id);
    assert_eq!(s.inspect_branch(&other).unwrap().head, c1.id);
    assert_eq!(tree(&s, &c1), before);
    assert_clean(&s);
    let gc = s.gc(Duration::ZERO).unwrap();
    assert_eq!(
        gc.removed, 1,
        "the dropped commit's only object is reclaimed: {gc:?}"
    );
    assert_clean(&s);
    // The next commit's parent is the new head.
    let c3 = commit(&s, &b, &[("/b", "3")], &[]);
    assert_eq!(s.inspect_commit(&c3).unwrap().parent, Some(c1.id));
}

#[test]
fn dropping_a_branchs_only_commit_gives_it_a_new_empty_head() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let first = s.inspect_branch(&b).err();
    assert!(first.is_some(), "no branch before the first commit");
    let c1 = commit(&s, &b, &[("/a", "1")], &[]);
    assert_eq!(s.inspect_commit(&c1).unwrap().parent, None);
    let done = s.drop_commit_set(&c1.id).unwrap();
    let head = s.inspect_branch(&b).unwrap().head;
    assert_ne!(head, c1.id);
    assert_eq!(done.moved_heads.len(), 1);
    assert_eq!(done.moved_heads[0].to, head);
    let info = s.inspect_commit(&r.commit(&head)).unwrap();
    assert!(
        info.is_finished(),
        "a branch without provenance gets a finished head"
    );
    assert!(tree(&s, &info.commit).is_empty());
    assert_clean(&s);
}

#[test]
fn squash_merges_into_commits_read_through_errored_children() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let c1 = commit(&s, &b, &[("/a", "1")], &[]);
    let c2 = commit(&s, &b, &[("/a", "2"), ("/x", "2")], &[]);
    // c3 finishes with an error: it is never inherited from, so c4 reads c2 directly.
    let c3 = s.start_commit(&b, "").unwrap().commit;
    s.put_file_bytes(&c3, "/y", b"3").unwrap();
    s.finish_commit(
        &c3,
        FinishOptions {
            error: Some("failed".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let c4 = commit(&s, &b, &[("/z", "4")], &[]);
    let before: Vec<_> = [&c1, &c3, &c4].iter().map(|c| tree(&s, c)).collect();
    assert!(before[2].contains_key("/x") && !before[2].contains_key("/y"));

    let done = s.squash_commit_set(&c2.id).unwrap();
    let mut merged = done.merged_into.clone();
    merged.sort();
    let mut expected = vec![c3.clone(), c4.clone()];
    expected.sort();
    assert_eq!(merged, expected);
    let after: Vec<_> = [&c1, &c3, &c4].iter().map(|c| tree(&s, c)).collect();
    assert_eq!(after, before);
    assert_clean(&s);
}

#[test]
fn squash_waits_for_open_children() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    commit(&s, &b, &[("/a", "1")], &[]);
    let c2 = commit(&s, &b, &[("/a", "2")], &[]);
    let open = s.start_commit(&b, "").unwrap().commit;
    let e = s.squash_commit_set(&c2.id).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot squash until child commit {open} is finished")
    );
    // An open commit without children can be dropped (abandoned).
    s.drop_commit_set(&open.id).unwrap();
    assert_eq!(s.inspect_branch(&b).unwrap().head, c2.id);
    assert_clean(&s);
}

#[test]
fn a_set_with_subvenant_commit_sets_is_refused() {
    let (_d, s) = store();
    let a = repo(&s, "a");
    let b = repo(&s, "b");
    let out = repo(&s, "out");
    commit(&s, &master(&a), &[("/a", "0")], &[]);
    commit(&s, &master(&b), &[("/b", "0")], &[]);
    s.create_branch(&master(&out), None, &[master(&a), master(&b)])
        .unwrap();
    let x = commit(&s, &master(&a), &[("/a", "1")], &[]);
    // A commit on b alone: out@Y's provenance still holds a@X.
    let y = commit(&s, &master(&b), &[("/b", "1")], &[]);
    let e = s.squash_commit_set(&x.id).unwrap_err();
    match &e {
        PfsError::SubvenantCommitSets { subvenant, .. } => {
            assert_eq!(subvenant, &vec![y.id.to_string()]);
        }
        other => panic!("expected subvenant commit sets, got {other}"),
    }
    assert!(
        e.to_string()
            .contains("cannot be squashed because it has subvenant commit sets")
    );
    let e = s.drop_commit_set(&x.id).unwrap_err();
    assert!(e.to_string().contains("cannot be dropped"), "{e}");
    assert_clean(&s);
}

#[test]
fn squash_acts_on_every_commit_of_the_set_downstream_too() {
    let (_d, s) = store();
    let input = repo(&s, "input");
    let out = repo(&s, "out");
    commit(&s, &master(&input), &[("/a", "0")], &[]);
    s.create_branch(&master(&out), None, &[master(&input)])
        .unwrap();
    let finish_out = |id: &CommitId, files: &[(&str, &str)]| {
        let c = out.commit(id);
        for (p, d) in files {
            s.put_file_bytes(&c, p, d.as_bytes()).unwrap();
        }
        s.finish_commit(&c, FinishOptions::default()).unwrap();
        c
    };
    let first_out = s.inspect_branch(&master(&out)).unwrap().head;
    finish_out(&first_out, &[("/a.out", "0")]);
    let x = commit(&s, &master(&input), &[("/b", "1")], &[]);
    let out_x = finish_out(&x.id, &[("/b.out", "1")]);
    let y = commit(&s, &master(&input), &[("/c", "2")], &[]);
    let out_y = finish_out(&y.id, &[("/c.out", "2")]);
    let before = (tree(&s, &y), tree(&s, &out_y));

    let done = s.squash_commit_set(&x.id).unwrap();
    let removed: Vec<_> = done.removed.iter().map(|c| c.commit.clone()).collect();
    assert_eq!(removed, vec![x.clone(), out_x.clone()]);
    assert_eq!((tree(&s, &y), tree(&s, &out_y)), before);
    assert_eq!(
        s.inspect_commit(&out_y).unwrap().parent,
        Some(first_out.clone())
    );
    assert_clean(&s);
}

#[test]
fn squashing_across_compacted_snapshots_keeps_every_tree() {
    let (_d, s) = store();
    let r = repo(&s, "data");
    let b = master(&r);
    let mut commits = Vec::new();
    for i in 0..40 {
        let name = format!("/f{}", i % 7);
        let content = format!("{i}");
        let deletes: Vec<String> = if i % 5 == 4 {
            vec![format!("/f{}", (i + 3) % 7)]
        } else {
            Vec::new()
        };
        let deletes: Vec<&str> = deletes
            .iter()
            .map(String::as_str)
            .filter(|d| *d != name)
            .collect();
        let c = s.start_commit(&b, "").unwrap().commit;
        for d in deletes {
            if s.inspect_file(&c, d).is_ok() {
                s.delete_file(&c, d).unwrap();
            }
        }
        s.put_file_bytes(&c, &name, content.as_bytes()).unwrap();
        s.finish_commit(&c, FinishOptions::default()).unwrap();
        commits.push(c);
    }
    let mut trees: BTreeMap<String, _> = commits
        .iter()
        .map(|c| (c.id.to_string(), tree(&s, c)))
        .collect();
    // Squash every third commit but the last: every tree that stays is unchanged.
    for (i, c) in commits.iter().enumerate() {
        if i % 3 == 1 && i + 1 < commits.len() {
            s.squash_commit_set(&c.id).unwrap();
            trees.remove(c.id.as_str());
        }
    }
    for c in &commits {
        if let Some(t) = trees.get(c.id.as_str()) {
            assert_eq!(&tree(&s, c), t, "tree of {c} changed");
        }
    }
    assert_eq!(history(&s, &b).len(), trees.len());
    assert_clean(&s);
}
