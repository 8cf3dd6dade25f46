//! Reference §2.11: children are sorted by explicit name (unnamed first, written order kept)
//! by `PipelineSpec::effective()`, and that order is the datum's input order and ID.

use std::collections::HashMap;
use std::sync::Arc;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use pipeline_core::datum::{Datum, DatumPlan, MemTree, TreeSource};
use pipeline_core::spec::PipelineSpec;

fn sources() -> HashMap<String, Arc<dyn TreeSource>> {
    ["a", "b", "z"]
        .into_iter()
        .map(|r| {
            (
                r.to_string(),
                Arc::new(MemTree::from_paths([format!("/{r}1")]).unwrap()) as Arc<dyn TreeSource>,
            )
        })
        .collect()
}

fn first_datum(input: &str) -> Datum {
    let spec: PipelineSpec = serde_json::from_str(&format!(
        r#"{{"pipeline": {{"name": "p"}}, "input": {input}}}"#
    ))
    .unwrap();
    let plan = DatumPlan::for_spec(&spec.effective(), &sources()).unwrap();
    plan.datums().next().unwrap().unwrap()
}

fn names(d: &Datum) -> Vec<&str> {
    d.inputs.iter().map(|i| i.leaf.name.as_str()).collect()
}

fn id(inputs: &[(&str, &str, &str)]) -> String {
    let mut h = Blake2b::<U32>::new();
    for (name, repo, path) in inputs {
        for s in [*name, *repo, "master", *path] {
            h.update(s.as_bytes());
            h.update((s.len() as i64).to_be_bytes());
        }
    }
    hex::encode(h.finalize())
}

#[test]
fn unnamed_keeps_written_order_before_named() {
    // cross[{pfs repo:b}, {pfs name:"a", repo:z}] keeps b first.
    let d = first_datum(
        r#"{"cross": [{"pfs": {"repo": "b", "glob": "/*"}}, {"pfs": {"name": "a", "repo": "z", "glob": "/*"}}]}"#,
    );
    assert_eq!(names(&d), ["b", "a"]);
    assert_eq!(d.id().to_hex(), id(&[("b", "b", "/b1"), ("a", "z", "/z1")]));
}

#[test]
fn named_sorts_after_unnamed() {
    // cross[{pfs name:"z"}, {pfs repo:a}] puts the unnamed a first.
    let d = first_datum(
        r#"{"cross": [{"pfs": {"name": "z", "repo": "z", "glob": "/*"}}, {"pfs": {"repo": "a", "glob": "/*"}}]}"#,
    );
    assert_eq!(names(&d), ["a", "z"]);
    assert_eq!(d.id().to_hex(), id(&[("a", "a", "/a1"), ("z", "z", "/z1")]));
}

#[test]
fn named_children_sort_by_name_and_compound_children_by_their_first_child() {
    let d = first_datum(
        r#"{"cross": [
            {"pfs": {"name": "zz", "repo": "z", "glob": "/*"}},
            {"cross": [{"pfs": {"name": "m", "repo": "b", "glob": "/*"}}, {"pfs": {"name": "c", "repo": "b", "glob": "/*"}}]},
            {"pfs": {"name": "aa", "repo": "a", "glob": "/*"}}
        ]}"#,
    );
    // Inner cross sorts to [c, m], so its key is "c": aa < c < zz.
    assert_eq!(names(&d), ["aa", "c", "m", "zz"]);
}

#[test]
fn unsorted_input_planned_directly_keeps_its_order() {
    // DatumPlan::new trusts the order it is given (it plans effective inputs).
    let input = serde_json::from_str(r#"{"cross": [{"pfs": {"name": "z", "repo": "z", "glob": "/*"}}, {"pfs": {"repo": "a", "glob": "/*"}}]}"#).unwrap();
    let plan = DatumPlan::new(&input, &sources(), &Default::default()).unwrap();
    let d = plan.datums().next().unwrap().unwrap();
    assert_eq!(names(&d), ["z", "a"]);
}
