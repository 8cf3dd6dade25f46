//! Parse + validate of typical pipeline specs, against baselines measured in the same run:
//! plain `serde_json` into an untyped `Value`, and `serde_json` straight into the typed spec
//! (no locations, no schema, no validation).
//!
//! Run: `cargo bench -p benches --bench spec_parse` (add `-- --measurement-time 2` for a quick run).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pipeline_core::spec::{PipelineSpec, parse_str};
use pipeline_core::validate::validate;

/// A typical spec: a join crossed with a cron tick, resources, env, secrets.
const TYPICAL_JSON: &str = r#"{
  "pipeline": {"name": "inner_join"},
  "description": "A pipeline that lists all purchases by location",
  "transform": {
    "image": "pachyderm/example-joins-inner-outer:2.1.0",
    "cmd": ["python3", "inner/main.py"],
    "env": {"LOG_LEVEL": "info", "REGION": "eu-west-1"},
    "secrets": [{"name": "db", "key": "password", "env_var": "DB_PASSWORD"}]
  },
  "parallelism_spec": {"constant": 4},
  "resource_requests": {"cpu": 1, "memory": "2Gi"},
  "datum_timeout": "300s",
  "datum_tries": 3,
  "input": {
    "cross": [
      {"join": [
        {"pfs": {"repo": "stores", "branch": "master", "glob": "/STOREID(*).txt", "join_on": "$1"}},
        {"pfs": {"repo": "purchases", "branch": "master", "glob": "/*_STOREID(*).txt", "join_on": "$1"}}
      ]},
      {"cron": {"name": "tick", "spec": "@every 1h"}}
    ]
  }
}"#;

const TYPICAL_YAML: &str = r#"
pipeline: {name: inner_join}
description: A pipeline that lists all purchases by location
transform:
  image: pachyderm/example-joins-inner-outer:2.1.0
  cmd: [python3, inner/main.py]
  env: {LOG_LEVEL: info, REGION: eu-west-1}
  secrets:
    - {name: db, key: password, env_var: DB_PASSWORD}
parallelism_spec: {constant: 4}
resource_requests: {cpu: 1, memory: 2Gi}
datum_timeout: 300s
datum_tries: 3
input:
  cross:
    - join:
        - pfs: {repo: stores, branch: master, glob: "/STOREID(*).txt", join_on: "$1"}
        - pfs: {repo: purchases, branch: master, glob: "/*_STOREID(*).txt", join_on: "$1"}
    - cron: {name: tick, spec: "@every 1h"}
"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("spec");
    g.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(TYPICAL_JSON)).unwrap())
    });
    g.bench_function("baseline_serde_json_typed", |b| {
        b.iter(|| serde_json::from_str::<PipelineSpec>(black_box(TYPICAL_JSON)).unwrap())
    });
    g.bench_function("parse_json", |b| {
        b.iter(|| parse_str(black_box(TYPICAL_JSON), "bench.json").unwrap())
    });
    g.bench_function("parse_validate_json", |b| {
        b.iter(|| {
            let specs = parse_str(black_box(TYPICAL_JSON), "bench.json").unwrap();
            assert!(validate(&specs[0]).is_valid());
        })
    });
    g.bench_function("parse_validate_yaml", |b| {
        b.iter(|| {
            let specs = parse_str(black_box(TYPICAL_YAML), "bench.yaml").unwrap();
            assert!(validate(&specs[0]).is_valid());
        })
    });
    let parsed = parse_str(TYPICAL_JSON, "bench.json").unwrap();
    g.bench_function("validate_only", |b| {
        b.iter(|| validate(black_box(&parsed[0])))
    });
    g.bench_function("effective_only", |b| {
        b.iter(|| black_box(&parsed[0].spec).effective())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
