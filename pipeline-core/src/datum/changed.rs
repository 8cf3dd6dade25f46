//! The datums of a plan that hold given paths, found by point lookups instead of a walk:
//! what a job that records only what changed visits (`pps/job/delta.rs`).
//!
//! Exact for a plan of one pfs input with no join or group keys and a glob other than `/`
//! (not a cron input): its datums are the tree's entries the glob matches, a datum holds its
//! entry and everything below it, and its ID depends on its path alone. So the datums a
//! changed file belongs to are its path and those of its ancestors the glob matches; no
//! other datum's files (hence hash) can have changed.

use std::sync::Arc;

use super::plan::{Node, matched, source_err};
use super::{Datum, DatumId, DatumInput, DatumPlan, PfsLeaf, PlanError};
use crate::glob::Glob;
use crate::hash::ContentHash;

/// A plan whose datums can be found from the paths they hold (see the module docs).
pub struct PointPlan<'a> {
    plan: &'a DatumPlan,
    leaf: &'a Arc<PfsLeaf>,
    glob: &'a Glob,
    index: usize,
}

impl DatumPlan {
    /// The plan as a [`PointPlan`], when its datums can be found from the paths they hold.
    pub fn point_plan(&self) -> Option<PointPlan<'_>> {
        let Node::Pfs {
            leaf,
            glob,
            keys: None,
        } = &self.root
        else {
            return None;
        };
        let l = self.leaves().get(*leaf)?;
        (glob.as_str() != "/" && !l.cron).then_some(PointPlan {
            plan: self,
            leaf: l,
            glob,
            index: *leaf,
        })
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
        let spec = crate::spec::parse_str(
            &format!(
                r#"{{"pipeline": {{"name": "p"}}, "transform": {{"cmd": ["true"]}},
                "input": {{"pfs": {{"repo": "in", "glob": "{glob}"}}}}}}"#
            ),
            "p.json",
        )
        .expect("spec")
        .remove(0)
        .spec;
        let tree: Arc<dyn TreeSource> = Arc::new(MemTree::from_paths(paths).expect("tree"));
        let sources: HashMap<String, Arc<dyn TreeSource>> = [("in".to_string(), tree)].into();
        DatumPlan::for_spec(&spec.effective(), &sources).expect("plan")
    }

    /// The datums found from a path are the walk's datums that hold it, with the same IDs
    /// and hashes.
    #[test]
    fn finds_what_the_walk_finds() {
        let paths = ["/a/x", "/a/y/z", "/b", "/c/d/e"];
        for glob in ["/*", "/*/*", "/a/*", "/**", "/*/y"] {
            let p = plan(glob, &paths);
            let walked: Vec<Datum> = p.datums().map(|d| d.expect("datum")).collect();
            let point = p.point_plan().expect("a point plan");
            for file in paths {
                let mut found = Vec::new();
                for at in point.datum_paths(file).expect("paths") {
                    found.push(point.datum_at(&at).expect("lookup").expect("present"));
                }
                let holding: Vec<&Datum> = walked
                    .iter()
                    .filter(|d| {
                        let at = &d.inputs[0].path;
                        file == at.trim_end_matches('/') || file.starts_with(at.as_str())
                    })
                    .collect();
                assert_eq!(found.iter().collect::<Vec<_>>(), holding, "{glob} {file}");
                for d in &found {
                    let at = d.inputs[0].path.trim_end_matches('/');
                    assert!(point.ids_at(at).contains(&d.id()), "{glob} {at}");
                }
            }
            assert!(point.datum_at("/nope").expect("lookup").is_none());
        }
    }

    /// Plans whose datums depend on more than one path are walked.
    #[test]
    fn only_plain_pfs_plans_qualify() {
        assert!(plan("/", &["/a"]).point_plan().is_none());
        assert!(plan("/*", &["/a"]).point_plan().is_some());
    }
}
