//! JSON files are read by the YAML reader: the JSON that people actually write must work.

use pipeline_core::spec::parse_str;

fn name_of(text: &str) -> String {
    match parse_str(text, "t.json") {
        Ok(specs) => specs[0].pipeline_name().unwrap_or_default().to_string(),
        Err(e) => panic!("{text:?}: {e}"),
    }
}

#[test]
fn tab_indented_json() {
    assert_eq!(
        name_of("{\n\t\"pipeline\": {\n\t\t\"name\": \"tabs\"\n\t}\n}\n"),
        "tabs"
    );
}

#[test]
fn no_spaces_and_crlf() {
    assert_eq!(
        name_of("{\"pipeline\":{\"name\":\"a\"},\"transform\":{\"cmd\":[\"sh\"]}}"),
        "a"
    );
    assert_eq!(
        name_of("{\r\n  \"pipeline\": {\"name\": \"crlf\"}\r\n}\r\n"),
        "crlf"
    );
}

#[test]
fn json_escapes() {
    let specs = parse_str(
        r#"{"pipeline": {"name": "e"}, "description": "a\/b \u00e9 \ud83d\ude00 \"q\" \\ \t"}"#,
        "t.json",
    )
    .unwrap();
    assert_eq!(
        specs[0].spec.description.as_deref(),
        Some("a/b é 😀 \"q\" \\ \t")
    );
}

#[test]
fn numbers_like_json() {
    let specs = parse_str(
        r#"{"pipeline": {"name": "n"}, "resource_requests": {"cpu": 0.5}, "datum_tries": 10, "parallelism_spec": {"constant": 0}}"#,
        "t.json",
    )
    .unwrap();
    assert_eq!(
        specs[0].spec.resource_requests.as_ref().unwrap().cpu,
        Some(0.5)
    );
    assert_eq!(specs[0].spec.datum_tries, Some(10));
}
