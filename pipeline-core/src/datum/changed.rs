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
//! child's, and so must its caller). Cross products, joins and groups make datums of
//! several inputs' entries at once and are walked.

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
        let datum = |path: String| Datum {
            inputs: vec![DatumInput {
                leaf: self.leaf.clone(),
                path,
                hash: ContentHash::default(),
                size: 0,
                join_key: String::new(),
                group_key: String::new(),
            }],
        };
        [datum(at.to_string()).id(), datum(format!("{at}/")).id()]
    }
}

#[cfg(test)]
mod tests {
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
    fn plan_of(input: &str, repos: &[(&str, &[&str])]) -> DatumPlan {
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

    /// Whether `d` holds the file `path` of `repo`.
    fn holds(d: &Datum, repo: &str, path: &str) -> bool {
        let i = &d.inputs[0];
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

    /// Plans whose datums depend on more than one path are walked.
    #[test]
    fn only_plain_pfs_plans_and_their_unions_qualify() {
        let two: &[(&str, &[&str])] = &[("in", &["/a"]), ("other", &["/b"])];
        assert!(plan("/", &["/a"]).point_plans().is_none());
        assert!(plan("/*", &["/a"]).point_plans().is_some());
        for input in [
            r#"{"cross": [{"pfs": {"repo": "in", "glob": "/*"}}, {"pfs": {"repo": "other", "glob": "/*"}}]}"#,
            r#"{"union": [{"pfs": {"repo": "in", "glob": "/*"}}, {"pfs": {"repo": "other", "glob": "/"}}]}"#,
            r#"{"join": [{"pfs": {"repo": "in", "glob": "/(*)", "join_on": "$1"}}, {"pfs": {"repo": "other", "glob": "/(*)", "join_on": "$1"}}]}"#,
        ] {
            assert!(plan_of(input, two).point_plans().is_none(), "{input}");
        }
    }
}
