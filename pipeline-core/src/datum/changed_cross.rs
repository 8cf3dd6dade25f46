//! The datums of a cross product that hold given paths, found without walking the product:
//! what a job that records only what changed visits when its input is a cross
//! (`pps/job/delta.rs`).
//!
//! A cross of plain pfs inputs ([`DatumPlan::cross_points`]) makes every datum of one entry
//! per input, and its ID depends on those entries' paths alone. So when some of an input's
//! paths changed, the datums that changed are that input's datums holding them (found by
//! point lookups, [`PointPlan`]) crossed with **every** datum of the other inputs, and the
//! datums that may be gone are the IDs that input's entries at those paths had (as a file
//! or as a directory) crossed with every datum the other inputs had. That is O(change ×
//! the other inputs): a model crossed with a million images absorbs one new image by
//! visiting one datum. Past [`MAX_PRODUCT`] datums either way the caller walks instead.

use std::collections::{BTreeSet, HashSet};

use super::{ChangedDatums, Datum, DatumId, DatumInput, DatumPlan, PointPlan};

/// Datums visited, and IDs of datums that may be gone, at most per change; past that the
/// job walks (and the product is not held in memory).
pub const MAX_PRODUCT: usize = 65_536;

impl DatumPlan {
    /// The datums of this cross product ([`DatumPlan::cross_points`]) that hold a path of
    /// `changed` (per repo, the file paths that differ), and the IDs of datums that may be
    /// gone; `None` when the plan is not such a cross, a repo of `changed` is not one of its
    /// inputs', a lookup fails (the walk reports it) or more than [`MAX_PRODUCT`] datums
    /// would be visited or looked up.
    pub fn cross_change(&self, changed: &[(String, Vec<String>)]) -> Option<ChangedDatums> {
        let points = self.cross_points()?;
        let at = changed_at(&points, changed)?;
        let now = others(&points, &at)?;
        let mut out = ChangedDatums::default();
        let mut ids: HashSet<DatumId> = HashSet::new();
        let mut budget = MAX_PRODUCT;
        for (i, paths) in at.iter().enumerate().filter(|(_, a)| !a.is_empty()) {
            let mut here = Vec::new();
            for a in paths {
                here.extend(
                    points[i]
                        .datum_at(a)
                        .ok()?
                        .into_iter()
                        .flat_map(|d| d.inputs),
                );
            }
            for inputs in product(&with(&now, i, here), &mut budget)? {
                let d = Datum { inputs };
                if ids.insert(d.id()) {
                    out.datums.push(d);
                }
            }
        }
        // What the other inputs had: their datums now, and both forms of their changed ones.
        let mut before = now;
        for (j, paths) in at.iter().enumerate() {
            before[j].extend(paths.iter().flat_map(|a| points[j].inputs_at(a)));
        }
        let mut seen: HashSet<DatumId> = HashSet::new();
        for (i, paths) in at.iter().enumerate().filter(|(_, a)| !a.is_empty()) {
            let here = paths.iter().flat_map(|a| points[i].inputs_at(a)).collect();
            for inputs in product(&with(&before, i, here), &mut budget)? {
                let id = Datum { inputs }.id();
                if !ids.contains(&id) && seen.insert(id) {
                    out.maybe_gone.push(id);
                }
            }
        }
        // The cross's order: by the inputs' paths, first input first (each input's datums
        // come in the byte order of their paths, a directory's with its `/`).
        out.datums.sort_by(|a, b| {
            a.inputs
                .iter()
                .map(|i| &i.path)
                .cmp(b.inputs.iter().map(|i| &i.path))
        });
        Some(out)
    }
}

/// Per input of the cross, the matched paths of its datums holding a changed path.
fn changed_at(
    points: &[PointPlan<'_>],
    changed: &[(String, Vec<String>)],
) -> Option<Vec<BTreeSet<String>>> {
    let mut at = vec![BTreeSet::new(); points.len()];
    for (repo, paths) in changed {
        let mut read = false;
        for (i, point) in points.iter().enumerate().filter(|(_, p)| p.repo() == repo) {
            read = true;
            for p in paths {
                at[i].extend(point.datum_paths(p).ok()?);
            }
        }
        if !read {
            return None;
        }
    }
    Some(at)
}

/// Every datum (its one input) of each input that another input's change is crossed with;
/// empty for an input nothing is crossed with. `None` past [`MAX_PRODUCT`] datums of one
/// input (the product would be as large) or when a walk fails.
fn others(points: &[PointPlan<'_>], at: &[BTreeSet<String>]) -> Option<Vec<Vec<DatumInput>>> {
    let mut lists = Vec::with_capacity(points.len());
    for (j, point) in points.iter().enumerate() {
        let crossed = at.iter().enumerate().any(|(i, a)| i != j && !a.is_empty());
        let mut list = Vec::new();
        if crossed {
            for d in point.datums() {
                list.extend(d.ok()?.inputs);
                if list.len() > MAX_PRODUCT {
                    return None;
                }
            }
        }
        lists.push(list);
    }
    Some(lists)
}

/// `lists` with the one of input `i` replaced by `here`.
fn with(lists: &[Vec<DatumInput>], i: usize, here: Vec<DatumInput>) -> Vec<Vec<DatumInput>> {
    let mut out = lists.to_vec();
    out[i] = here;
    out
}

/// Every combination of one input from each of `factors`, the last turning fastest (the
/// cross's own order); `None` when there are more than `budget` left, which they use up.
fn product(factors: &[Vec<DatumInput>], budget: &mut usize) -> Option<Vec<Vec<DatumInput>>> {
    let n = factors
        .iter()
        .try_fold(1usize, |n, f| n.checked_mul(f.len()))?;
    *budget = budget.checked_sub(n)?;
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; factors.len()];
    for _ in 0..n {
        out.push(
            index
                .iter()
                .zip(factors)
                .map(|(&k, f)| f[k].clone())
                .collect(),
        );
        for (k, f) in index.iter_mut().zip(factors).rev() {
            *k += 1;
            if *k < f.len() {
                break;
            }
            *k = 0;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::changed::tests::{input_holds, plan_of};
    use super::*;

    type Repos<'a> = [(&'a str, &'a [&'a str]); 2];

    /// Crosses of two inputs, and of three with two over one repo.
    const CROSSES: [&str; 2] = [
        r#"{"cross": [{"pfs": {"repo": "A", "glob": "/*"}}, {"pfs": {"repo": "B", "glob": "/*"}}]}"#,
        r#"{"cross": [{"pfs": {"repo": "A", "name": "top", "glob": "/*"}},
            {"pfs": {"repo": "B", "glob": "/*"}},
            {"pfs": {"repo": "A", "name": "deep", "glob": "/*/*"}}]}"#,
    ];

    fn walked(p: &DatumPlan) -> Vec<Datum> {
        p.datums().map(|d| d.expect("datum")).collect()
    }

    /// From `old` to `new` trees, with `changed` the paths that differ (a path in both
    /// stands for changed content): the datums found are the new walk's that hold a
    /// changed path, in its order; what may be gone covers every datum gone and no datum
    /// there is.
    fn check(input: &str, old: &Repos<'_>, new: &Repos<'_>, changed: &[(&str, &[&str])]) {
        let changed: Vec<(String, Vec<String>)> = changed
            .iter()
            .map(|(r, p)| (r.to_string(), p.iter().map(|p| p.to_string()).collect()))
            .collect();
        let now = walked(&plan_of(input, new));
        let was = walked(&plan_of(input, old));
        let found = plan_of(input, new).cross_change(&changed).expect("a cross");
        let holding: Vec<&Datum> = now
            .iter()
            .filter(|d| {
                d.inputs.iter().any(|i| {
                    changed
                        .iter()
                        .any(|(r, ps)| ps.iter().any(|p| input_holds(i, r, p)))
                })
            })
            .collect();
        assert_eq!(
            found.datums.iter().collect::<Vec<_>>(),
            holding,
            "{input} {changed:?}"
        );
        let now_ids: HashSet<DatumId> = now.iter().map(Datum::id).collect();
        for d in &was {
            if !now_ids.contains(&d.id()) {
                assert!(found.maybe_gone.contains(&d.id()), "{input}: {d:?} gone");
            }
        }
        assert!(
            found.maybe_gone.iter().all(|id| !now_ids.contains(id)),
            "{input}"
        );
    }

    #[test]
    fn finds_what_the_walk_finds() {
        let a: &[&str] = &["/a/x", "/a-b", "/b", "/c/d"];
        let b: &[&str] = &["/m1", "/m2"];
        let a2: &[&str] = &["/a/x", "/a-b/z", "/b", "/d"];
        let b2: &[&str] = &["/m2", "/m3/n"];
        for input in CROSSES {
            // Changed content, an add, a delete, a file that became a directory.
            let changed: &[&str] = &["/a-b", "/a-b/z", "/b", "/c/d", "/d"];
            check(
                input,
                &[("A", a), ("B", b)],
                &[("A", a2), ("B", b)],
                &[("A", changed)],
            );
            // The other input changes: every datum of the first crossed with it.
            let changed: &[&str] = &["/m1", "/m3/n"];
            check(
                input,
                &[("A", a), ("B", b)],
                &[("A", a), ("B", b2)],
                &[("B", changed)],
            );
            // Both at once, and one input emptied.
            let both: &[(&str, &[&str])] = &[("A", &["/b", "/c/d"]), ("B", &["/m1", "/m3/n"])];
            let a3: &[&str] = &["/a/x", "/a-b", "/b"];
            check(input, &[("A", a), ("B", b)], &[("A", a3), ("B", b2)], both);
            check(
                input,
                &[("A", a), ("B", b)],
                &[("A", a), ("B", &[])],
                &[("B", b)],
            );
        }
    }

    /// A change crossed with more than [`MAX_PRODUCT`] datums, or a repo the cross does not
    /// read, is left to the walk.
    #[test]
    fn too_large_or_unknown_is_walked() {
        let many: Vec<String> = (0..=MAX_PRODUCT).map(|i| format!("/f{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let p = plan_of(CROSSES[0], &[("A", &["/a"]), ("B", &many)]);
        assert!(p.cross_change(&[("A".into(), vec!["/a".into()])]).is_none());
        assert!(p.cross_change(&[("C".into(), vec!["/a".into()])]).is_none());
        let few = plan_of(CROSSES[0], &[("A", &["/a"]), ("B", &many[..10])]);
        let change = few.cross_change(&[("A".into(), vec!["/a".into()])]);
        assert_eq!(change.map(|c| c.datums.len()), Some(10));
    }
}
