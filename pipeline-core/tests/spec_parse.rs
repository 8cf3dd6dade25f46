//! Parsing: formats, locations, every structural error at once, hostile input.

use pipeline_core::spec::{ParseError, parse_bytes, parse_str};

fn errors(text: &str) -> Vec<(String, usize, usize, String)> {
    match parse_str(text, "t") {
        Ok(specs) => panic!("expected errors, parsed {} specs", specs.len()),
        Err(e) => e
            .diagnostics()
            .iter()
            .map(|d| {
                (
                    d.path.to_string(),
                    d.location.line,
                    d.location.column,
                    d.message.clone(),
                )
            })
            .collect(),
    }
}

const EDGES_JSON: &str = r#"{
  "pipeline": {"name": "edges"},
  "transform": {"cmd": ["python3", "/edges.py"], "image": "pachyderm/opencv:1.0"},
  "input": {"pfs": {"repo": "images", "glob": "/*"}}
}"#;

#[test]
fn json_and_yaml_give_the_same_spec() {
    let json = parse_str(EDGES_JSON, "edges.json").unwrap();
    let yaml = parse_str(
        "pipeline:\n  name: edges\ntransform:\n  cmd: [python3, /edges.py]\n  image: pachyderm/opencv:1.0\ninput:\n  pfs:\n    repo: images\n    glob: /*\n",
        "edges.yaml",
    )
    .unwrap();
    assert_eq!(json.len(), 1);
    assert_eq!(json[0].spec, yaml[0].spec);
}

#[test]
fn minified_json_parses() {
    let text = r#"{"pipeline":{"name":"a"},"transform":{"cmd":["sh"]},"input":{"pfs":{"repo":"r","glob":"/*"}}}"#;
    let specs = parse_str(text, "a.json").unwrap();
    assert_eq!(specs[0].pipeline_name(), Some("a"));
}

#[test]
fn camel_case_is_accepted() {
    let text = r#"{"pipeline":{"name":"a"},"transform":{"cmd":["sh"],"acceptReturnCode":[1]},
      "parallelismSpec":{"constant":2},"datumTries":"5",
      "input":{"join":[{"pfs":{"repo":"r","glob":"/(*)","joinOn":"$1","outerJoin":true}},
                       {"pfs":{"repo":"s","glob":"/(*)","join_on":"$1"}}]}}"#;
    let specs = parse_str(text, "a.json").unwrap();
    let spec = &specs[0].spec;
    assert_eq!(spec.datum_tries, Some(5));
    assert_eq!(spec.parallelism_spec.as_ref().unwrap().constant, 2);
    let join = spec.input.as_ref().unwrap().join.as_ref().unwrap();
    assert_eq!(join[0].pfs.as_ref().unwrap().join_on.as_deref(), Some("$1"));
    assert!(join[0].pfs.as_ref().unwrap().outer_join);
}

#[test]
fn multi_document_yaml_and_top_level_array() {
    let yaml = "pipeline: {name: a}\ntransform: {cmd: [sh]}\n---\npipeline: {name: b}\ntransform: {cmd: [sh]}\n";
    let specs = parse_str(yaml, "two.yaml").unwrap();
    let names: Vec<_> = specs.iter().map(|s| s.pipeline_name().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(specs[1].index, 1);
    let arr = r#"[{"pipeline":{"name":"a"}},{"pipeline":{"name":"b"}}]"#;
    assert_eq!(parse_str(arr, "arr.json").unwrap().len(), 2);
}

#[test]
fn every_unknown_field_is_reported_with_location_and_suggestion() {
    let text = "pipeline:\n  name: a\n  nmae: b\ninput:\n  pfs:\n    repo: r\n    glb: /*\nenable_stats: true\n";
    let errs = errors(text);
    assert_eq!(
        errs,
        vec![
            (
                "pipeline.nmae".into(),
                3,
                3,
                "unknown field `nmae` in pipeline; did you mean `name`?".into()
            ),
            (
                "input.pfs.glb".into(),
                7,
                5,
                "unknown field `glb` in input.pfs; did you mean `glob`?".into()
            ),
            (
                "enable_stats".into(),
                8,
                1,
                "field `enable_stats` was removed in Pachyderm 2.x (stats are always collected)"
                    .into()
            ),
        ]
    );
}

#[test]
fn wrong_types_and_bad_durations() {
    let text = r#"{
  "pipeline": {"name": "a"},
  "transform": {"cmd": "python3 x.py"},
  "datum_timeout": "five minutes",
  "datum_tries": "3x",
  "input": {"pfs": {"repo": "r", "glob": "/*", "lazy": "yes"}}
}"#;
    let errs = errors(text);
    let paths: Vec<_> = errs.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "transform.cmd",
            "datum_timeout",
            "datum_tries",
            "input.pfs.lazy"
        ]
    );
    assert_eq!(errs[0].1, 3);
    assert_eq!(errs[0].3, r#"expected a list, found "python3 x.py""#);
    assert!(
        errs[1].3.starts_with("invalid duration \"five minutes\""),
        "{}",
        errs[1].3
    );
    assert!(
        errs[2].3.contains("invalid integer \"3x\""),
        "{}",
        errs[2].3
    );
    assert_eq!(
        errs[3].3,
        r#"expected a boolean (true or false), found "yes""#
    );
}

#[test]
fn yaml_1_1_booleans_and_octal_stay_strings() {
    // `no` is a string, so a string field accepts it and a bool field rejects it.
    let specs = parse_str(
        "pipeline: {name: a}\ndescription: no\ntransform: {cmd: [sh], env: {MODE: 0755}}\n",
        "t",
    )
    .unwrap();
    assert_eq!(specs[0].spec.description.as_deref(), Some("no"));
    assert_eq!(
        specs[0].spec.transform.as_ref().unwrap().env["MODE"],
        "0755"
    );
    let errs = errors("pipeline: {name: a}\ns3_out: on\n");
    assert_eq!(errs[0].0, "s3_out");
}

#[test]
fn anchors_and_aliases_are_rejected() {
    let errs = errors("pipeline: &p {name: a}\ntransform: {cmd: [sh]}\n");
    assert!(errs[0].3.contains("anchors and aliases"), "{errs:?}");
    assert_eq!(errs[0].1, 1);
}

#[test]
fn empty_and_comment_only_files() {
    for text in ["", "   \n", "# nothing\n", "---\n", "[]"] {
        let errs = errors(text);
        assert_eq!(errs[0].3, "no pipeline spec in the file", "{text:?}");
    }
}

#[test]
fn syntax_errors_have_locations() {
    let errs = errors("{\"pipeline\": {\"name\": \"a\"},\n \"transform\": [}\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].1, 2, "{errs:?}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 10_000;
    let mut json = String::new();
    for _ in 0..depth {
        json.push_str(r#"{"cross":["#);
    }
    json.push_str(r#"{"pfs":{"repo":"r","glob":"/"}}"#);
    for _ in 0..depth {
        json.push_str("]}");
    }
    let text = format!(r#"{{"pipeline":{{"name":"a"}},"input":{json}}}"#);
    let errs = errors(&text);
    assert!(errs[0].3.contains("nested more than"), "{errs:?}");

    // Block style: 10,000 nested compact sequences on one line.
    let yaml = format!(
        "pipeline: {{name: a}}\ninput:\n  cross:\n  {}x\n",
        "- ".repeat(depth)
    );
    let errs = errors(&yaml);
    assert!(errs[0].3.contains("nested more than"), "{errs:?}");
    // And 200 nested block mappings.
    let mut yaml = String::from("pipeline: {name: a}\ninput:\n");
    for level in 0..200 {
        yaml.push_str(&" ".repeat(level + 1));
        yaml.push_str("cross:\n");
    }
    let errs = errors(&yaml);
    assert!(errs[0].3.contains("nested more than"), "{errs:?}");
}

#[test]
fn binary_garbage_and_huge_strings_are_errors() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    match parse_bytes(&garbage, "g") {
        Err(ParseError::Invalid { diagnostics, .. }) => assert!(!diagnostics.is_empty()),
        other => panic!("{other:?}"),
    }
    let huge = format!(
        r#"{{"pipeline":{{"name":"a"}},"description":"{}"}}"#,
        "x".repeat(9 * 1024 * 1024)
    );
    assert!(parse_str(&huge, "h").is_err());
    let big_ok = format!(
        r#"{{"pipeline":{{"name":"a"}},"description":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    assert!(parse_str(&big_ok, "h").is_ok());
}

#[test]
fn scalar_document_is_not_a_spec() {
    let errs = errors("just a string\n");
    assert!(errs[0].3.contains("expected a pipeline spec"), "{errs:?}");
}

#[test]
fn errors_in_later_documents_carry_their_spec_index_and_file_line() {
    let yaml = "pipeline: {name: a}\n---\npipeline: {name: b}\ntransform:\n  cmdd: [sh]\n";
    let err = parse_str(yaml, "two.yaml").unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.spec_index, 1);
    assert_eq!(d.path.to_string(), "transform.cmdd");
    assert_eq!((d.location.line, d.location.column), (5, 3));
    assert_eq!(
        d.message,
        "unknown field `cmdd` in transform; did you mean `cmd`?"
    );
}

#[test]
fn duplicate_keys_and_tags_are_refused_where_written() {
    let errs = errors("pipeline: {name: a}\ndescription: x\ndescription: y\n");
    assert_eq!((errs[0].1, errs[0].2), (3, 1));
    assert_eq!(errs[0].3, "duplicate key `description`");
    let errs = errors("pipeline: !custom {name: a}\n");
    assert!(errs[0].3.contains("YAML tag"), "{errs:?}");
    // `!!str` is fine and forces a string.
    let specs = parse_str("pipeline: {name: !!str 123}\n", "t").unwrap();
    assert_eq!(specs[0].pipeline_name(), Some("123"));
}
