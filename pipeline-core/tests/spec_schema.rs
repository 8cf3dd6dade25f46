//! The shipped JSON Schema and the Rust types agree.
#![cfg(feature = "schema")]

use std::path::PathBuf;

use pipeline_core::spec::schema;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/pipeline-spec.schema.json")
}

#[test]
fn shipped_schema_equals_generated() {
    let generated = schema::generate_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(schema_path(), &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(schema_path()).unwrap();
    assert!(
        shipped == generated,
        "schema/pipeline-spec.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p pipeline-core --test spec_schema"
    );
}
