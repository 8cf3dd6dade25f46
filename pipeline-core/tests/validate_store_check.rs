//! Store-dependent checks plug into validation through `StoreCheck`.

use std::collections::BTreeSet;

use pipeline_core::spec::{Diagnostic, EffectiveSpec, FieldPath, Input, PipelineSpec, parse_str};
use pipeline_core::validate::{StoreCheck, validate, validate_with};

/// A fake catalogue of existing repos: reports every input repo that does not exist.
struct Repos(BTreeSet<&'static str>);

/// Every pfs input's repo, with the field path of its `repo`.
fn input_repos(input: &Input) -> Vec<(FieldPath, String)> {
    let mut out = Vec::new();
    input.for_each(&mut |at| {
        if let Some(pfs) = &at.input.pfs {
            out.push((
                at.path.field("pfs").field("repo"),
                pfs.repo.clone().unwrap_or_default(),
            ));
        }
    });
    out
}

impl StoreCheck for Repos {
    fn check(&self, spec: &PipelineSpec, effective: &EffectiveSpec) -> Vec<Diagnostic> {
        assert_eq!(effective.datum_tries, 3, "checks see the effective spec");
        spec.input
            .iter()
            .flat_map(input_repos)
            .filter(|(_, repo)| !self.0.contains(repo.as_str()))
            .map(|(path, repo)| {
                Diagnostic::error(
                    "input.repo.not_found",
                    path,
                    format!("repo default/{repo} not found"),
                )
            })
            .collect()
    }
}

#[test]
fn store_findings_are_located_like_built_in_ones() {
    let yaml = "pipeline: {name: montage}\ntransform: {image: 'i:1', cmd: [sh]}\ninput:\n  cross:\n    - pfs: {repo: images, glob: /}\n    - pfs: {repo: edges, glob: /}\n";
    let specs = parse_str(yaml, "montage.yaml").unwrap();
    assert!(validate(&specs[0]).is_valid());
    let store = Repos(BTreeSet::from(["images"]));
    let report = validate_with(&specs[0], &[&store]);
    assert_eq!(report.errors.len(), 1);
    let e = &report.errors[0];
    assert_eq!(e.path.to_string(), "input.cross[1].pfs.repo");
    assert_eq!((e.location.line, e.location.column), (6, 13));
    assert_eq!(e.message, "repo default/edges not found");
}
