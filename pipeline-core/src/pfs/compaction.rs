//! Shortening a long layer stack when its commit finishes, so that every read stays bounded.
//!
//! A commit's tree is its layer over the layers of its error-free ancestors, down to the
//! bottom of its stack: a snapshot, or a commit without ancestors. Both hold a whole tree.
//! When a finishing commit's stack is longer than [`MAX_LAYERS`], its layer is rewritten in
//! one of two ways:
//!
//! - **Merged delta**: every layer above the bottom merged into one, newest entry per path,
//!   tombstones kept. The stack becomes `[this, bottom…]` (the record's `merged_over` names
//!   the bottom, and reading the stack jumps there). This costs what changed since the
//!   bottom was written, not the size of the tree.
//! - **Snapshot**: the whole tree. Chosen when the merged delta would hold more than a
//!   [`DELTA_SHARE`]th of the entries of the bottom (or the bottom's size is unknown: it
//!   was written before sizes were kept, finished inside a transaction, or squashed into). So a delta never grows
//!   past a fraction of the tree, and each whole-tree rewrite is paid for by at least that
//!   many changed paths since the last one: adding one file per commit to a tree of a
//!   million rewrites the tree once per 62,500 commits instead of once per 16.
//!
//! Either way the commit's own changes are kept aside in layer [`kept_delta_id`] and the
//! commit whose tree is below it is recorded, so [`Store::changed_paths`] compares those
//! instead of the rewritten layer. Compaction is part of the transaction that finishes the
//! commit: a crash leaves the old stack or the new one, never half of either.
//!
//! [`Store::changed_paths`]: super::store::Store::changed_paths

use super::error::Result;
use super::meta::{MetaRead, MetaWrite, Table, delete_range, prefix_end};
use super::records::{CommitRecord, get_commit};
use super::tree::{Entry, MAX_LAYERS, MergedFiles, kept_delta_id, layer_prefix};

/// A merged delta holds at most this fraction (one in `DELTA_SHARE`) of the entries of the
/// whole tree below it; past that, compaction writes a snapshot instead.
pub(crate) const DELTA_SHARE: u64 = 16;

/// Whether a finishing commit with stack `layers` (its own layer first) is compacted.
pub(crate) fn is_due(layers: &[String]) -> bool {
    layers.len() > MAX_LAYERS
}

/// Compacts commit `rec`'s stack `layers` (its own layer first; every layer below finished)
/// in `w`, reading the layers from `read`; updates `rec` (the caller stores it).
pub(crate) fn compact(
    read: &dyn MetaRead,
    w: &mut dyn MetaWrite,
    rec: &mut CommitRecord,
    layers: &[String],
) -> Result<()> {
    let repo_key = rec.info.commit.repo.key();
    let id = rec.info.commit.id.as_str().to_string();
    let start = layer_prefix(&repo_key, &id);
    let end = prefix_end(&start);
    let kept = layer_prefix(&repo_key, &kept_delta_id(&id));
    for kv in read.scan(Table::Files, &start, &end)? {
        let (k, v) = kv?;
        let mut to = kept.clone();
        to.extend_from_slice(k.get(start.len()..).unwrap_or_default());
        w.put(Table::Files, &to, &v)?;
    }
    rec.same_tree_as = layers.get(1).cloned();
    delete_range(w, Table::Files, &start, &end)?;
    match merged_delta_base(read, rec, layers)? {
        Some(bottom) => {
            let above = layers.get(..layers.len() - 1).unwrap_or_default();
            let written = write_merged(read, w, &repo_key, above, &start, true)?;
            rec.snapshot = false;
            rec.merged_over = Some(bottom);
            rec.layer_entries = Some(written);
        }
        None => {
            let written = write_merged(read, w, &repo_key, layers, &start, false)?;
            rec.snapshot = true;
            rec.merged_over = None;
            rec.layer_entries = Some(written);
        }
    }
    Ok(())
}

/// Counts the entries of a finishing commit whose stack is its own layer alone (a commit
/// without error-free ancestors: its layer is its whole tree), so that the first compaction
/// over it can be a merged delta too. One scan of a layer the commit wrote itself.
pub(crate) fn note_whole_tree(
    read: &dyn MetaRead,
    rec: &mut CommitRecord,
    layers: &[String],
) -> Result<()> {
    if let [own] = layers {
        let start = layer_prefix(&rec.info.commit.repo.key(), own);
        let mut count = 0u64;
        for kv in read.scan(Table::Files, &start, &prefix_end(&start))? {
            kv?;
            count += 1;
        }
        rec.layer_entries = Some(count);
    }
    Ok(())
}

/// The bottom of the stack, when the layers above it merge into a delta small enough next
/// to it (see the module docs); `None` when a snapshot is due instead.
fn merged_delta_base(
    read: &dyn MetaRead,
    rec: &CommitRecord,
    layers: &[String],
) -> Result<Option<String>> {
    let Some((bottom, above)) = layers.split_last() else {
        return Ok(None);
    };
    // A bottom holds its whole tree: a snapshot, or a commit without error-free ancestors
    // (counted when it finished, `note_whole_tree`).
    let base = get_commit(read, &rec.info.commit.repo, bottom)?;
    let Some(tree_entries) = base.layer_entries else {
        return Ok(None);
    };
    let budget = tree_entries / DELTA_SHARE;
    let repo_key = rec.info.commit.repo.key();
    let mut merged = MergedFiles::new(read, &repo_key, above, "/")?;
    let mut count = 0u64;
    while merged.next_entry()?.is_some() {
        count += 1;
        if count > budget {
            return Ok(None);
        }
    }
    Ok(Some(bottom.clone()))
}

/// Writes the merge of `layers` under key prefix `to`: every entry (`with_tombstones`, for a
/// delta) or only the files (a snapshot). Returns how many entries it wrote.
fn write_merged(
    read: &dyn MetaRead,
    w: &mut dyn MetaWrite,
    repo_key: &str,
    layers: &[String],
    to: &[u8],
    with_tombstones: bool,
) -> Result<u64> {
    let mut merged = MergedFiles::new(read, repo_key, layers, "/")?;
    let mut written = 0u64;
    while let Some((path, entry)) = merged.next_entry()? {
        if entry == Entry::Tombstone && !with_tombstones {
            continue;
        }
        let mut k = to.to_vec();
        k.extend_from_slice(path.as_bytes());
        w.put(Table::Files, &k, &entry.encode())?;
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::hash::ContentHash;
    use crate::pfs::records::get_commit;
    use crate::pfs::tree::MAX_LAYERS;
    use crate::pfs::{BranchRef, CommitRef, FinishOptions, RepoRef, Store};

    /// A tree as the test expects it: path → content.
    type Model = BTreeMap<String, String>;

    /// A store with repo `r` and its `master` branch.
    fn store() -> (tempfile::TempDir, Store, BranchRef) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let repo = RepoRef::new("r").expect("repo");
        store.create_repo(&repo, "").expect("create repo");
        (dir, store, repo.branch("master").expect("branch"))
    }

    /// A finished commit on `branch` that makes `model` into `next`.
    fn commit_to(store: &Store, branch: &BranchRef, model: &Model, next: &Model) -> CommitRef {
        let c = store.start_commit(branch, "").expect("start").commit;
        for (path, content) in next {
            if model.get(path) != Some(content) {
                store
                    .put_file_bytes(&c, path, content.as_bytes())
                    .expect("put");
            }
        }
        for path in model.keys().filter(|p| !next.contains_key(*p)) {
            store.delete_file(&c, path).expect("delete");
        }
        store
            .finish_commit(&c, FinishOptions::default())
            .expect("finish");
        c
    }

    /// The tree of `c` as read through its layer stack: path → content hash.
    fn tree_of(store: &Store, c: &CommitRef) -> BTreeMap<String, String> {
        store
            .walk(c)
            .expect("walk")
            .map(|f| f.expect("entry"))
            .filter(|f| !f.path.ends_with('/'))
            .map(|f| (f.path, f.hash.to_hex()))
            .collect()
    }

    /// What [`tree_of`] reads for a commit that holds `model`.
    fn hashes(model: &Model) -> BTreeMap<String, String> {
        model
            .iter()
            .map(|(p, c)| (p.clone(), ContentHash::of_bytes(c.as_bytes()).to_hex()))
            .collect()
    }

    /// Fails naming the paths where `c`'s tree differs from `model`.
    fn assert_same_tree(store: &Store, c: &CommitRef, model: &Model, what: &str) {
        let (read, want) = (tree_of(store, c), hashes(model));
        let mut paths: Vec<&String> = read.keys().chain(want.keys()).collect();
        paths.sort();
        paths.dedup();
        paths.retain(|p| read.get(*p) != want.get(*p));
        assert!(paths.is_empty(), "{what}: tree differs at {paths:?}");
    }

    /// The paths whose content differs between two trees.
    fn diff(a: &Model, b: &Model) -> Vec<String> {
        let mut paths: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
        paths.sort();
        paths.dedup();
        paths.retain(|p| a.get(p) != b.get(p));
        paths
    }

    /// A history of 1,000 files changed a few paths per commit (puts, overwrites, deletes,
    /// re-adds): finishing compacts into merged deltas while they stay small, and into a
    /// snapshot once one would pass a sixteenth of the tree; every commit's tree is what was
    /// written, stacks stay bounded, and neighbours compare through their own changes only.
    fn history() -> (tempfile::TempDir, Store, Vec<(CommitRef, Model)>) {
        let (dir, store, b) = store();
        let mut model: Model = (0..1000)
            .map(|i| (format!("/d{}/f{i:04}", i % 7), "v".into()))
            .collect();
        let first = commit_to(&store, &b, &Model::new(), &model);
        let mut history = vec![(first, model.clone())];
        let mut seed = 7u64;
        for i in 0..(12 * MAX_LAYERS) {
            let mut next = model.clone();
            for _ in 0..(1 + i % 3) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let path = format!("/d{}/f{:04}", (seed >> 40) % 7, (seed >> 20) % 1050);
                match seed % 3 {
                    0 => next.remove(&path),
                    _ => next.insert(path, format!("c{i}")),
                };
            }
            let c = commit_to(&store, &b, &model, &next);
            model = next;
            history.push((c, model.clone()));
        }
        (dir, store, history)
    }

    #[test]
    fn merged_deltas_and_snapshots_keep_every_tree_and_bound_every_stack() {
        let (_dir, store, history) = history();
        let read = store.inner.meta.read().expect("read");
        let (mut merged, mut snapshots) = (0, 0);
        for (i, (c, model)) in history.iter().enumerate() {
            assert_same_tree(&store, c, model, &format!("commit {i}"));
            let stack =
                crate::pfs::commits::layers(&*read, &c.repo, c.id.as_str()).expect("layers");
            assert!(
                stack.len() <= MAX_LAYERS,
                "commit {i}: {} layers",
                stack.len()
            );
            let rec = get_commit(&*read, &c.repo, c.id.as_str()).expect("record");
            merged += usize::from(rec.merged_over.is_some());
            snapshots += usize::from(rec.snapshot && i > 0);
            if merged + snapshots == 1 && rec.merged_over.is_none() && i > 0 {
                // The first commit was counted when it finished: no whole-tree rewrite yet.
                assert!(
                    !rec.snapshot,
                    "commit {i}: the first compaction wrote a snapshot"
                );
            }
            if let Some((prev, before)) = i.checked_sub(1).and_then(|p| history.get(p)) {
                let expected = diff(before, model);
                let changed = store
                    .changed_paths(prev, c, expected.len())
                    .expect("changed");
                assert_eq!(changed, Some(expected), "commit {i} against its parent");
            }
        }
        assert!(merged >= 3, "{merged} merged deltas");
        assert!(snapshots >= 2, "{snapshots} snapshots");
        let (far, far_model) = &history[5];
        let (last, last_model) = history.last().expect("a commit");
        let changed = store.changed_paths(far, last, usize::MAX).expect("changed");
        assert_eq!(changed, Some(diff(far_model, last_model)));
        assert!(store.check(false).expect("check").problems.is_empty());
    }

    /// Squashing commits of every kind (a snapshot merged deltas sit on, a merged delta, the
    /// parent of a compacted commit, others) leaves every other commit's tree as it was, its comparisons
    /// right and the store's references whole.
    #[test]
    fn squashing_any_commit_keeps_every_other_tree() {
        let (_dir, store, mut history) = history();
        let kind = |c: &CommitRef| {
            let read = store.inner.meta.read().expect("read");
            let rec = get_commit(&*read, &c.repo, c.id.as_str()).expect("record");
            (rec.snapshot, rec.merged_over.is_some())
        };
        // Squashed: snapshots, merged deltas, parents of compacted commits, others.
        let mut squashed = [0usize; 4];
        let mut i = 1;
        while i + 1 < history.len() {
            let (snapshot, merged) = kind(&history[i].0);
            let (next_snapshot, next_merged) = kind(&history[i + 1].0);
            let which = if snapshot {
                0
            } else if merged {
                1
            } else if next_snapshot || next_merged {
                2
            } else {
                3
            };
            let wanted = if which == 3 { i % 5 == 0 } else { true };
            if wanted && squashed[which] < 3 {
                store.squash_commit_set(&history[i].0.id).expect("squash");
                squashed[which] += 1;
                history.remove(i);
            } else {
                i += 1;
            }
        }
        assert!(squashed.iter().all(|n| *n >= 2), "{squashed:?}");
        for (i, (c, model)) in history.iter().enumerate() {
            assert_same_tree(&store, c, model, &format!("commit {i}"));
            if let Some((prev, before)) = i.checked_sub(1).and_then(|p| history.get(p)) {
                let changed = store.changed_paths(prev, c, usize::MAX).expect("changed");
                assert_eq!(changed, Some(diff(before, model)), "commit {i}");
            }
        }
        // A few more commits on top still compact and read right.
        let b = history[0].0.repo.branch("master").expect("branch");
        let mut model = history.last().expect("a commit").1.clone();
        for i in 0..(2 * MAX_LAYERS) {
            let mut next = model.clone();
            next.insert(format!("/top/{i}"), "t".into());
            let c = commit_to(&store, &b, &model, &next);
            assert_same_tree(&store, &c, &next, &format!("commit {i} on top"));
            model = next;
        }
        assert!(store.check(false).expect("check").problems.is_empty());
    }
}
