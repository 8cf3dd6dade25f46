//! Which paths differ between two commits of one repo, in time proportional to the change.
//!
//! A commit's tree is its layer stack merged (see [`super::tree`]): its own layer over the
//! layers of its error-free ancestors, down to a snapshot or the root. Two commits of one
//! branch usually share the bottom of their stacks: the layers of their common ancestors.
//! A path no layer *above* that shared part mentions resolves, on both sides, to the same
//! entry of the same shared layers, so it cannot differ. [`Store::changed_paths`] therefore
//! reads only the layers that are not shared (each holds only what its commit changed) and
//! compares both trees at the paths they mention, by point lookups.
//!
//! What it costs is the size of those unshared layers, not of the trees: a few entries
//! between two neighbouring commits. A commit whose layer was compacted (into a merged delta
//! or a snapshot, every [`super::tree::MAX_LAYERS`] commits) keeps its own changes aside and
//! records which commit's tree is below it, and is compared through those, so compaction
//! never costs a whole-tree comparison. It grows to the whole tree when the commits share no ancestor (or
//! one side is a snapshot compacted before its changes were kept); the `limit` lets a caller
//! give up early then and take another route.

use std::collections::BTreeSet;

use super::commits::layers;
use super::error::{PfsError, Result};
use super::meta::{MetaRead, Table, prefix_end};
use super::model::{CommitRef, RepoRef};
use super::records::get_commit;
use super::store::Store;
use super::tree::{self, layer_prefix};

/// Replaces the top-most compacted layer among the first `unshared` layers of `stack` (and
/// every layer below it) with that commit's kept changes over the stack of the commit whose
/// tree is below it: the same tree, in layers that share more with neighbouring stacks than
/// a merged delta or a snapshot does. `false` when no such layer is there.
fn expand(
    read: &dyn MetaRead,
    repo: &RepoRef,
    stack: &mut Vec<String>,
    unshared: usize,
) -> Result<bool> {
    for i in 0..unshared.min(stack.len()) {
        let Some(id) = stack
            .get(i)
            .filter(|id| tree::commit_of_layer(id.as_bytes()) == id.as_bytes())
        else {
            continue;
        };
        let rec = get_commit(read, repo, id)?;
        let compacted = rec.snapshot || rec.merged_over.is_some();
        let Some(below) = rec.same_tree_as.filter(|_| compacted) else {
            continue;
        };
        let kept = tree::kept_delta_id(id);
        stack.truncate(i);
        stack.push(kept);
        stack.extend(layers(read, repo, &below)?);
        return Ok(true);
    }
    Ok(false)
}

/// How many bottom layers two stacks share.
fn shared_suffix(a: &[String], b: &[String]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// Compacted layers [`expand`]ed per comparison at most.
const MAX_EXPANSIONS: usize = 64;

impl Store {
    /// The file paths whose entry (present or not, size, content hash) differs between the
    /// trees of `old` and `new`, two commits of one repo, in path order; `None` when more
    /// than `limit` candidate paths would have to be compared (see the module docs).
    ///
    /// Reads one snapshot of the metadata, so both trees are seen at one instant.
    pub fn changed_paths(
        &self,
        old: &CommitRef,
        new: &CommitRef,
        limit: usize,
    ) -> Result<Option<Vec<String>>> {
        if old.repo != new.repo {
            return Err(PfsError::Corrupt(format!(
                "changed paths between commits of two repos ({} and {})",
                old.repo, new.repo
            )));
        }
        let read = self.inner.meta.read()?;
        let full_a = layers(&*read, &old.repo, old.id.as_str())?;
        let full_b = layers(&*read, &new.repo, new.id.as_str())?;
        let (mut a, mut b) = (full_a.clone(), full_b.clone());
        for _ in 0..MAX_EXPANSIONS {
            let shared = shared_suffix(&a, &b);
            let (ua, ub) = (a.len() - shared, b.len() - shared);
            let grew_a = expand(&*read, &old.repo, &mut a, ua)?;
            let grew_b = expand(&*read, &new.repo, &mut b, ub)?;
            if !grew_a && !grew_b {
                break;
            }
        }
        let shared = shared_suffix(&a, &b);
        let unshared = a
            .get(..a.len() - shared)
            .unwrap_or_default()
            .iter()
            .chain(b.get(..b.len() - shared).unwrap_or_default());
        let repo_key = old.repo.key();
        let mut candidates = BTreeSet::new();
        for id in unshared {
            let start = layer_prefix(&repo_key, id);
            let end = prefix_end(&start);
            for kv in read.scan(Table::Files, &start, &end)? {
                let (k, _) = kv?;
                let path = k
                    .get(start.len()..)
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .ok_or_else(|| PfsError::Corrupt("file key".into()))?;
                if !candidates.contains(path) {
                    if candidates.len() == limit {
                        return Ok(None);
                    }
                    candidates.insert(path.to_string());
                }
            }
        }
        let mut changed = Vec::new();
        for p in candidates {
            let before = tree::lookup(&*read, &repo_key, &full_a, &p)?;
            let after = tree::lookup(&*read, &repo_key, &full_b, &p)?;
            if before != after {
                changed.push(p);
            }
        }
        Ok(Some(changed))
    }
}

#[cfg(test)]
mod tests {
    use crate::pfs::{BranchRef, CommitRef, FinishOptions, RepoRef, Store};

    /// A store with repo `r`, and its `master` branch.
    fn store() -> (tempfile::TempDir, Store, BranchRef) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let repo = RepoRef::new("r").expect("repo");
        store.create_repo(&repo, "").expect("create repo");
        let branch = repo.branch("master").expect("branch");
        (dir, store, branch)
    }

    /// One change to a commit: a put (`Some` content) or a delete.
    type Change<'a> = (&'a str, Option<&'a str>);

    /// A finished commit on `branch` applying `changes`, with `error` when given.
    fn commit(store: &Store, branch: &BranchRef, changes: &[Change], error: bool) -> CommitRef {
        let c = store.start_commit(branch, "").expect("start").commit;
        for (path, content) in changes {
            match content {
                Some(bytes) => {
                    store
                        .put_file_bytes(&c, path, bytes.as_bytes())
                        .expect("put");
                }
                None => {
                    store.delete_file(&c, path).expect("delete");
                }
            }
        }
        let opts = FinishOptions {
            error: error.then(|| "failed".to_string()),
            ..Default::default()
        };
        store.finish_commit(&c, opts).expect("finish");
        c
    }

    /// The changed paths by a full comparison of both trees (the diff every caller could
    /// make in O(tree size)).
    fn full_diff(store: &Store, old: &CommitRef, new: &CommitRef) -> Vec<String> {
        let files = |c: &CommitRef| -> std::collections::BTreeMap<String, (u64, String)> {
            store
                .walk(c)
                .expect("walk")
                .map(|f| f.expect("entry"))
                .filter(|f| !f.path.ends_with('/'))
                .map(|f| (f.path, (f.size, f.hash.to_hex())))
                .collect()
        };
        let (a, b) = (files(old), files(new));
        let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
        keys.sort();
        keys.dedup();
        keys.into_iter().filter(|k| a.get(k) != b.get(k)).collect()
    }

    /// Every pair of commits of a history with puts, overwrites (same and new content),
    /// deletes, a re-add, an errored commit and enough commits to compact into snapshots:
    /// the layer route finds exactly what a full comparison finds.
    #[test]
    fn changed_paths_agree_with_a_full_comparison_on_every_pair_of_a_history() {
        let (_dir, store, b) = store();
        let mut history = vec![commit(
            &store,
            &b,
            &[("/a/1", Some("x")), ("/b", Some("y"))],
            false,
        )];
        let steps: Vec<(Vec<Change>, bool)> = vec![
            (vec![("/c/d/e", Some("z"))], false),
            (vec![("/b", Some("y"))], false),
            (vec![("/b", Some("y2")), ("/a/2", Some("w"))], false),
            (vec![("/a/1", None)], false),
            (vec![("/zz", Some("bad"))], true),
            (vec![("/a/1", Some("x"))], false),
            (vec![], false),
            (vec![("/c/d/e", None), ("/c/f", Some("q"))], false),
        ];
        for round in 0..5 {
            for (changes, error) in &steps {
                let mut changes = changes.clone();
                let fresh = format!("/n/{round}");
                changes.push((fresh.as_str(), Some("n")));
                history.push(commit(&store, &b, &changes, *error));
            }
        }
        assert!(history.len() > 2 * crate::pfs::tree::MAX_LAYERS);
        for old in &history {
            for new in &history {
                let fast = store
                    .changed_paths(old, new, usize::MAX)
                    .expect("changed paths")
                    .expect("no limit");
                assert_eq!(fast, full_diff(&store, old, new), "{old} -> {new}");
            }
        }
    }

    /// Between neighbours only their own layers are read: a limit of the change's size is
    /// enough, and a smaller one gives up.
    #[test]
    fn changed_paths_read_only_what_changed() {
        let (_dir, store, b) = store();
        let many: Vec<String> = (0..500).map(|i| format!("/f{i:04}")).collect();
        let puts: Vec<Change> = many.iter().map(|p| (p.as_str(), Some("v"))).collect();
        let first = commit(&store, &b, &puts, false);
        let second = commit(
            &store,
            &b,
            &[("/f0001", Some("w")), ("/new", Some("n"))],
            false,
        );
        let changed = store.changed_paths(&first, &second, 2).expect("changed");
        assert_eq!(
            changed,
            Some(vec!["/f0001".to_string(), "/new".to_string()])
        );
        assert_eq!(
            store.changed_paths(&first, &second, 1).expect("changed"),
            None
        );
        let same = store.changed_paths(&second, &second, 0).expect("changed");
        assert_eq!(same, Some(Vec::new()));
        // An empty commit on top changes nothing.
        let third = commit(&store, &b, &[], false);
        assert_eq!(
            store.changed_paths(&second, &third, 0).expect("changed"),
            Some(vec![])
        );
    }

    /// A run of empty commits long enough to be compacted into snapshots compares with
    /// nothing read (each snapshot says whose tree it repeats), and one put after it is
    /// found with a limit of one path.
    #[test]
    fn empty_commits_compacted_into_snapshots_still_compare_in_o_change() {
        let (_dir, store, b) = store();
        let many: Vec<String> = (0..300).map(|i| format!("/f{i:04}")).collect();
        let puts: Vec<Change> = many.iter().map(|p| (p.as_str(), Some("v"))).collect();
        let mut prev = commit(&store, &b, &puts, false);
        let first = prev.clone();
        for _ in 0..(3 * crate::pfs::tree::MAX_LAYERS) {
            let next = commit(&store, &b, &[], false);
            assert_eq!(
                store.changed_paths(&prev, &next, 0).expect("changed"),
                Some(vec![])
            );
            assert_eq!(
                store.changed_paths(&first, &next, 0).expect("changed"),
                Some(vec![])
            );
            prev = next;
        }
        let last = commit(&store, &b, &[("/f0007", Some("w"))], false);
        let changed = store.changed_paths(&prev, &last, 1).expect("changed");
        assert_eq!(changed, Some(vec!["/f0007".to_string()]));
        assert_eq!(full_diff(&store, &prev, &last), ["/f0007"]);
    }

    /// Commits that each change one path, long enough to be compacted into snapshots (which
    /// keep their own changes aside): neighbours compare by reading their changes only, and
    /// commits far apart agree with a full comparison.
    #[test]
    fn changing_commits_compacted_into_snapshots_still_compare_in_o_change() {
        let (_dir, store, b) = store();
        let many: Vec<String> = (0..300).map(|i| format!("/f{i:04}")).collect();
        let puts: Vec<Change> = many.iter().map(|p| (p.as_str(), Some("v"))).collect();
        let mut history = vec![commit(&store, &b, &puts, false)];
        for i in 0..(3 * crate::pfs::tree::MAX_LAYERS) {
            let path = format!("/f{:04}", i * 7 % 300);
            let content = format!("w{i}");
            let next = commit(&store, &b, &[(&path, Some(&content))], false);
            let prev = history.last().expect("a commit");
            let changed = store.changed_paths(prev, &next, 1).expect("changed");
            assert_eq!(changed, Some(vec![path]), "commit {i}");
            history.push(next);
        }
        let (first, last) = (&history[1], &history[history.len() - 1]);
        let within = 3 * crate::pfs::tree::MAX_LAYERS;
        let fast = store.changed_paths(first, last, within).expect("changed");
        assert_eq!(fast, Some(full_diff(&store, first, last)));
        // The check stays clean with kept changes in the store.
        assert!(store.check(false).expect("check").problems.is_empty());
    }
}
