//! The datums of a plan that hold given paths, found by point lookups instead of a walk:
//! what a job that records only what changed visits (`pps/job/delta.rs`).
//!
//! Exact for a plan of one pfs input with no join or group keys and a glob other than `/`
//! (not a cron input): its datums are the tree's entries the glob matches, a datum holds its
//! entry and everything below it, and its ID depends on its path alone. So the datums a
//! changed file belongs to are its path and those of its ancestors the glob matches; no
//! other datum's files (hence hash) can have changed.
//!
//! A union of such inputs is as exact: its datums are its children's, each a datum of one
//! input whose ID names that input, so each child is a point plan of its own and the
//! union's datums holding a path are those its children find (where two children share a
//! name, repo and branch, one datum ID can be found twice; the union keeps the first
//! child's, and so must its caller).
//!
//! A cross product of such inputs ([`DatumPlan::cross_points`]) makes each datum of one
//! entry per input, and its ID depends on those entries' paths alone: the datums holding a
//! changed path of one input are that input's datums holding it crossed with every datum
//! of the others. Joins and groups pair entries by keys read from their paths and are
//! walked.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::plan::{Node, matched, source_err};
use super::{Datum, DatumId, DatumInput, DatumPlan, PfsLeaf, PlanError};
use crate::glob::Glob;
use crate::hash::ContentHash;

/// A plan of one input whose datums can be found from the paths they hold (see the module
/// docs).
pub struct PointPlan<'a> {
    plan: &'a DatumPlan,
    leaf: &'a Arc<PfsLeaf>,
    glob: &'a Glob,
    index: usize,
}

/// The datums of a plan that hold changed paths, and the IDs of datums that may be gone:
/// what [`DatumPlan::changed_datums`] finds.
#[derive(Debug, Default)]
pub struct ChangedDatums {
    /// The datums in the new trees that hold a changed path, in plan order.
    pub datums: Vec<Datum>,
    /// IDs of datums the plan may have had at the changed paths, each once: a superset of
    /// those gone, and none of them the ID of a datum in `datums` (or of any other datum
    /// the plan has now).
    pub maybe_gone: Vec<DatumId>,
}

impl DatumPlan {
    /// The datums that hold a path of `changed` (per repo, the file paths that differ from
    /// a base's trees) and the IDs of datums that may be gone, found without a walk: for a
    /// plan of [`DatumPlan::point_plans`] or a cross ([`DatumPlan::cross_change`]). `None`
    /// for any other plan, a repo of `changed` that no input of the plan reads, or a lookup
    /// that fails (a walk reports it).
    pub fn changed_datums(&self, changed: &[(String, Vec<String>)]) -> Option<ChangedDatums> {
        match self.point_plans() {
            Some(points) => union_change(&points, changed),
            None => self.cross_change(changed),
        }
    }
}

/// [`DatumPlan::changed_datums`] for the point plans of one input or a union.
fn union_change(
    points: &[PointPlan<'_>],
    changed: &[(String, Vec<String>)],
) -> Option<ChangedDatums> {
    // (the input's position in plan order, a matched path): the datums to look up.
    let mut at: BTreeSet<(usize, String)> = BTreeSet::new();
    for (repo, paths) in changed {
        let mut read_by = points.iter().enumerate().filter(|(_, p)| p.repo() == repo);
        let first = read_by.next()?;
        for (i, point) in std::iter::once(first).chain(read_by) {
            for p in paths {
                at.extend(point.datum_paths(p).ok()?.into_iter().map(|a| (i, a)));
            }
        }
    }
    let mut found: Vec<(usize, Datum)> = Vec::new();
    let mut ids: HashSet<DatumId> = HashSet::new();
    let mut maybe_gone: Vec<DatumId> = Vec::new();
    for (i, a) in &at {
        let point = points.get(*i)?;
        maybe_gone.extend(point.ids_at(a));
        // A union that removes duplicates keeps the first input's (the lowest `i`).
        if let Some(d) = point.datum_at(a).ok()?.filter(|d| ids.insert(d.id())) {
            found.push((*i, d));
        }
    }
    // The datum at a matched path may be gone unless it is one found (a file that became a
    // directory, or the reverse, is another datum).
    let mut seen: HashSet<DatumId> = HashSet::new();
    maybe_gone.retain(|id| !ids.contains(id) && seen.insert(*id));
    found.sort_by(|(i, a), (j, b)| (i, &a.inputs[0].path).cmp(&(j, &b.inputs[0].path)));
    Some(ChangedDatums {
        datums: found.into_iter().map(|(_, d)| d).collect(),
        maybe_gone,
    })
}

impl DatumPlan {
    /// The plan as [`PointPlan`]s, one per input in plan order (its datums come in that
    /// order), when its datums can be found from the paths they hold: a plan of one pfs
    /// input, or a union of such inputs (see the module docs).
    pub fn point_plans(&self) -> Option<Vec<PointPlan<'_>>> {
        let mut out = Vec::new();
        self.collect_points(&self.root, &mut out).then_some(out)
    }

    /// Pushes the point plans of `node` to `out`; whether it has them.
    fn collect_points<'a>(&'a self, node: &'a Node, out: &mut Vec<PointPlan<'a>>) -> bool {
        match node {
            Node::Pfs {
                leaf,
                glob,
                keys: None,
            } => {
                let Some(l) = self.leaves().get(*leaf) else {
                    return false;
                };
                if glob.as_str() == "/" || l.cron {
                    return false;
                }
                out.push(PointPlan {
                    plan: self,
                    leaf: l,
                    glob,
                    index: *leaf,
                });
                true
            }
            Node::Union { children, .. } => children.iter().all(|c| self.collect_points(c, out)),
            _ => false,
        }
    }

    /// The inputs of a plan that is a cross product of plain pfs inputs (each as
    /// [`DatumPlan::point_plans`] takes one), as [`PointPlan`]s in plan order; `None` for
    /// any other plan. Its datums are one datum of each input, the last input turning
    /// fastest (see the module docs).
    pub fn cross_points(&self) -> Option<Vec<PointPlan<'_>>> {
        let Node::Cross(children) = &self.root else {
            return None;
        };
        let mut out = Vec::new();
        let all = children
            .iter()
            .all(|c| matches!(c, Node::Pfs { .. }) && self.collect_points(c, &mut out));
        (all && !out.is_empty()).then_some(out)
    }
}

impl PointPlan<'_> {
    /// The repo of the plan's input.
    pub fn repo(&self) -> &str {
        &self.leaf.repo
    }

    /// The matched paths (no trailing `/`) of the datums that hold the file `path`: `path`
    /// and its ancestors that the glob matches, shortest first.
    pub fn datum_paths(&self, path: &str) -> Result<Vec<String>, PlanError> {
        let mut out = Vec::new();
        let mut end = 0;
        while let Some(i) = path[end + 1..].find('/').map(|i| i + end + 1) {
            self.push_if_matched(&path[..i], &mut out)?;
            end = i;
        }
        self.push_if_matched(path, &mut out)?;
        Ok(out)
    }

    fn push_if_matched(&self, at: &str, out: &mut Vec<String>) -> Result<(), PlanError> {
        if at.is_empty() || at == "/" {
            return Ok(());
        }
        let is_match = self
            .glob
            .try_is_match(at)
            .map_err(|source| PlanError::Match {
                field: format!("{}.glob", self.leaf.field),
                source,
            })?;
        if is_match {
            out.push(at.to_string());
        }
        Ok(())
    }

    /// The datum at the matched path `at` in the plan's tree, `None` when the tree has no
    /// entry there.
    pub fn datum_at(&self, at: &str) -> Result<Option<Datum>, PlanError> {
        let tree = &self.plan.trees[self.index];
        let Some(e) = tree.entry(at).map_err(|e| source_err(self.leaf, e))? else {
            return Ok(None);
        };
        Ok(matched(self.leaf, self.glob, e, None)?.map(|i| Datum { inputs: vec![i] }))
    }

    /// The IDs a datum at `at` has as a file and as a directory: whichever it was, one of
    /// them is its ID.
    pub fn ids_at(&self, at: &str) -> [DatumId; 2] {
        self.inputs_at(at).map(|i| Datum { inputs: vec![i] }.id())
    }

    /// The inputs a datum at `at` has as a file and as a directory, good for its ID only
    /// (no content hash or size): what [`PointPlan::ids_at`] hashes, and the parts of the
    /// IDs of a cross product's datums.
    pub fn inputs_at(&self, at: &str) -> [DatumInput; 2] {
        let input = |path: String| DatumInput {
            leaf: self.leaf.clone(),
            path,
            hash: ContentHash::default(),
            size: 0,
            join_key: String::new(),
            group_key: String::new(),
        };
        [input(at.to_string()), input(format!("{at}/"))]
    }

    /// Every datum of the plan's input, in plan order (a walk of its tree).
    pub fn datums(&self) -> impl Iterator<Item = Result<Datum, PlanError>> + '_ {
        self.plan
            .pfs(self.index, self.glob, None)
            .map(|t| t.map(|inputs| Datum { inputs }))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::datum::{MemTree, TreeSource};
    use std::collections::HashMap;

    fn plan(glob: &str, paths: &[&str]) -> DatumPlan {
        plan_of(
            &format!(r#"{{"pfs": {{"repo": "in", "glob": "{glob}"}}}}"#),
            &[("in", paths)],
        )
    }

    /// The plan of a pipeline with `input` (JSON) over trees of `repos`' paths.
    pub(in crate::datum) fn plan_of(input: &str, repos: &[(&str, &[&str])]) -> DatumPlan {
        let spec = crate::spec::parse_str(
            &format!(
                r#"{{"pipeline": {{"name": "p"}}, "transform": {{"cmd": ["true"]}},
                "input": {input}}}"#
            ),
            "p.json",
        )
        .expect("spec")
        .remove(0)
        .spec;
        let sources: HashMap<String, Arc<dyn TreeSource>> = repos
            .iter()
            .map(|(repo, paths)| {
                let tree: Arc<dyn TreeSource> =
                    Arc::new(MemTree::from_paths(*paths).expect("tree"));
                (repo.to_string(), tree)
            })
            .collect();
        DatumPlan::for_spec(&spec.effective(), &sources).expect("plan")
    }

    /// Whether `d`'s first input holds the file `path` of `repo`.
    fn holds(d: &Datum, repo: &str, path: &str) -> bool {
        input_holds(&d.inputs[0], repo, path)
    }

    /// Whether `i` holds the file `path` of `repo`.
    pub(in crate::datum) fn input_holds(i: &DatumInput, repo: &str, path: &str) -> bool {
        i.leaf.repo == repo
            && (path == i.path.trim_end_matches('/') || path.starts_with(i.path.as_str()))
    }

    /// The datums found from a path are the walk's datums that hold it, with the same IDs
    /// and hashes.
    #[test]
    fn finds_what_the_walk_finds() {
        let paths = ["/a/x", "/a/y/z", "/b", "/c/d/e"];
        for glob in ["/*", "/*/*", "/a/*", "/**", "/*/y"] {
            let p = plan(glob, &paths);
            let walked: Vec<Datum> = p.datums().map(|d| d.expect("datum")).collect();
            let points = p.point_plans().expect("point plans");
            let [point] = points.as_slice() else {
                panic!("one input, one point plan")
            };
            for file in paths {
                let mut found = Vec::new();
                for at in point.datum_paths(file).expect("paths") {
                    found.push(point.datum_at(&at).expect("lookup").expect("present"));
                }
                let holding: Vec<&Datum> = walked.iter().filter(|d| holds(d, "in", file)).collect();
                assert_eq!(found.iter().collect::<Vec<_>>(), holding, "{glob} {file}");
                for d in &found {
                    let at = d.inputs[0].path.trim_end_matches('/');
                    assert!(point.ids_at(at).contains(&d.id()), "{glob} {at}");
                }
            }
            assert!(point.datum_at("/nope").expect("lookup").is_none());
        }
    }

    /// A union's datums holding a file are those its inputs over that file's repo find, the
    /// first input's where two find the same datum, in the walk's order, whether two of them
    /// read the same repo or not.
    #[test]
    fn a_union_finds_through_each_input() {
        let a: &[&str] = &["/a/x", "/a/y/z", "/b"];
        let other: &[&str] = &["/o/1", "/p"];
        let repos: &[(&str, &[&str])] = &[("in", a), ("other", other)];
        for input in [
            r#"{"union": [
                {"pfs": {"repo": "in", "name": "top", "glob": "/*"}},
                {"union": [{"pfs": {"repo": "other", "glob": "/*"}}]},
                {"pfs": {"repo": "in", "name": "deep", "glob": "/*/*"}}]}"#,
            r#"{"union": [
                {"pfs": {"repo": "in", "glob": "/b"}},
                {"pfs": {"repo": "other", "glob": "/*"}},
                {"pfs": {"repo": "in", "glob": "/*", "lazy": true}}]}"#,
        ] {
            let p = plan_of(input, repos);
            let walked: Vec<Datum> = p.datums().map(|d| d.expect("datum")).collect();
            let points = p.point_plans().expect("point plans");
            assert_eq!(points.len(), 3);
            for (repo, files) in repos {
                for file in *files {
                    let mut found: Vec<Datum> = Vec::new();
                    for point in points.iter().filter(|p| p.repo() == *repo) {
                        for at in point.datum_paths(file).expect("paths") {
                            let d = point.datum_at(&at).expect("lookup").expect("present");
                            if found.iter().all(|f| f.id() != d.id()) {
                                found.push(d);
                            }
                        }
                    }
                    let holding: Vec<&Datum> =
                        walked.iter().filter(|d| holds(d, repo, file)).collect();
                    assert_eq!(found.iter().collect::<Vec<_>>(), holding, "{repo} {file}");
                }
            }
        }
    }

    /// Plans whose datums depend on more than one path are walked, but for a cross of plain
    /// pfs inputs, which is found through each.
    #[test]
    fn only_plain_pfs_plans_their_unions_and_crosses_qualify() {
        let two: &[(&str, &[&str])] = &[("in", &["/a"]), ("other", &["/b"])];
        assert!(plan("/", &["/a"]).point_plans().is_none());
        assert!(plan("/*", &["/a"]).point_plans().is_some());
        assert!(plan("/*", &["/a"]).cross_points().is_none());
        let cross = r#"{"cross": [{"pfs": {"repo": "in", "glob": "/*"}}, {"pfs": {"repo": "other", "glob": "/*"}}]}"#;
        assert!(plan_of(cross, two).point_plans().is_none());
        assert_eq!(plan_of(cross, two).cross_points().map(|c| c.len()), Some(2));
        for input in [
            r#"{"union": [{"pfs": {"repo": "in", "glob": "/*"}}, {"pfs": {"repo": "other", "glob": "/"}}]}"#,
            r#"{"join": [{"pfs": {"repo": "in", "glob": "/(*)", "join_on": "$1"}}, {"pfs": {"repo": "other", "glob": "/(*)", "join_on": "$1"}}]}"#,
            r#"{"cross": [{"pfs": {"repo": "in", "glob": "/*"}}, {"pfs": {"repo": "other", "glob": "/"}}]}"#,
            r#"{"cross": [{"pfs": {"repo": "in", "glob": "/*"}}, {"union": [{"pfs": {"repo": "other", "glob": "/*"}}]}]}"#,
            r#"{"union": [{"cross": [{"pfs": {"repo": "in", "glob": "/*"}}, {"pfs": {"repo": "other", "glob": "/*"}}]}]}"#,
        ] {
            let p = plan_of(input, two);
            assert!(p.point_plans().is_none(), "{input}");
            assert!(p.cross_points().is_none(), "{input}");
        }
    }
}
