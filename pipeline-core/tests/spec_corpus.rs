//! The corpus under `tests/specs/`: realistic valid specs (shaped after Pachyderm's examples)
//! and invalid specs, each with the field path and rule code of an expected error.

use std::path::{Path, PathBuf};

use pipeline_core::spec::{Diagnostic, ParsedSpec, parse_file, parse_str};
use pipeline_core::validate::validate;

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/specs")
        .join(kind)
}

fn spec_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml")
            )
        })
        .collect();
    files.sort();
    files
}

fn valid_specs() -> Vec<(PathBuf, ParsedSpec)> {
    spec_files("valid")
        .into_iter()
        .flat_map(|f| {
            let specs = parse_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            specs.into_iter().map(move |s| (f.clone(), s))
        })
        .collect()
}

#[test]
fn corpus_is_big_enough() {
    let valid = spec_files("valid");
    let json = valid
        .iter()
        .filter(|p| p.extension().unwrap() == "json")
        .count();
    assert!(valid.len() >= 30, "{} valid files", valid.len());
    assert!(
        json >= 10 && valid.len() - json >= 10,
        "json {json} of {}",
        valid.len()
    );
    assert!(spec_files("invalid").len() >= 40);
}

#[test]
fn every_valid_spec_parses_and_validates() {
    let specs = valid_specs();
    for (file, s) in &specs {
        let report = validate(s);
        assert!(
            report.is_valid(),
            "{}: spec {} has errors: {:#?}",
            file.display(),
            s.index,
            report.errors
        );
    }
    // Multi-document and array files give several specs.
    assert!(specs.len() > spec_files("valid").len());
}

#[test]
fn valid_specs_round_trip_through_json_and_yaml() {
    for (file, s) in valid_specs() {
        let json = serde_json::to_string_pretty(&s.spec).unwrap();
        let again = parse_str(&json, "roundtrip.json")
            .unwrap_or_else(|e| panic!("{}: {e}\n{json}", file.display()));
        assert_eq!(again[0].spec, s.spec, "{} via JSON", file.display());
        let yaml = serde_saphyr::to_string(&s.spec).unwrap();
        let again = parse_str(&yaml, "roundtrip.yaml")
            .unwrap_or_else(|e| panic!("{}: {e}\n{yaml}", file.display()));
        assert_eq!(again[0].spec, s.spec, "{} via YAML", file.display());
    }
}

#[test]
fn effective_of_valid_specs_is_still_valid() {
    for (file, s) in valid_specs() {
        let eff = s.spec.effective();
        let report = pipeline_core::validate::validate_spec(&eff.to_spec());
        assert!(
            report.is_valid(),
            "{}: {:#?}",
            file.display(),
            report.errors
        );
        // Every pfs input has its name, branch and a normalised glob.
        let json = serde_json::to_value(&eff).unwrap();
        let text = json.to_string();
        assert!(!text.contains("\"glob\":\"*"), "{}", file.display());
    }
}

fn errors_of(file: &Path) -> Vec<Diagnostic> {
    match parse_file(file) {
        Err(e) => e.diagnostics().to_vec(),
        Ok(specs) => specs.iter().flat_map(|s| validate(s).errors).collect(),
    }
}

#[test]
fn every_invalid_spec_reports_its_expected_path() {
    let manifest = std::fs::read_to_string(dir("invalid").join("EXPECTED.tsv")).unwrap();
    let mut listed = Vec::new();
    for line in manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, path, code] = cols.as_slice() else {
            panic!("bad manifest line {line:?}");
        };
        listed.push(dir("invalid").join(file));
        let errors = errors_of(&dir("invalid").join(file));
        assert!(
            errors
                .iter()
                .any(|d| d.path.to_string() == *path && d.code == *code),
            "{file}: expected {code} at {path:?}, got {errors:#?}"
        );
        for d in &errors {
            assert!(d.location.line > 0, "{file}: unlocated {d:?}");
        }
    }
    listed.sort();
    assert_eq!(
        listed,
        spec_files("invalid"),
        "EXPECTED.tsv must list every invalid spec"
    );
}
