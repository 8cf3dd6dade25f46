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

use std::collections::BTreeMap;

use pipeline_core::spec::*;
use serde_json::Value;

/// A spec with **every** field of every type set. Struct literals without `..Default` make
/// this fail to compile when a field is added to the types, so the test below cannot miss it.
fn full_spec() -> PipelineSpec {
    let map = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    let resources = ResourceSpec {
        cpu: Some(0.5),
        memory: Some("1Gi".into()),
        gpu: Some(GpuSpec {
            gpu_type: "nvidia.com/gpu".into(),
            number: 1,
        }),
        disk: Some("10Gi".into()),
        pids: Some(256),
    };
    let service = Service {
        internal_port: 80,
        external_port: 30080,
        ip: Some("10.0.0.1".into()),
        service_type: Some("NodePort".into()),
    };
    let pfs = PfsInput {
        name: Some("in".into()),
        project: Some("default".into()),
        repo: Some("images".into()),
        repo_type: Some("user".into()),
        branch: Some("master".into()),
        commit: Some("c".into()),
        glob: Some("/(*)".into()),
        join_on: Some("$1".into()),
        outer_join: true,
        group_by: Some("$1".into()),
        lazy: true,
        empty_files: true,
        s3: true,
        trigger: Some(Trigger {
            branch: Some("staging".into()),
            all: true,
            rate_limit_spec: Some("@hourly".into()),
            size: Some("1M".into()),
            commits: Some(3),
            cron_spec: Some("@daily".into()),
        }),
        reference: true,
        propagation_spec: Some(PropagationSpec { never: true }),
    };
    let cron = CronInput {
        name: Some("tick".into()),
        project: Some("default".into()),
        repo: Some("p_tick".into()),
        commit: Some("c".into()),
        spec: Some("@every 1m".into()),
        overwrite: true,
        start: Some("2024-05-01T00:00:00Z".into()),
    };
    let leaf = Input {
        pfs: Some(pfs),
        join: None,
        group: None,
        cross: None,
        union: None,
        cron: Some(cron),
    };
    let input = Input {
        pfs: None,
        join: Some(vec![leaf.clone()]),
        group: Some(vec![leaf.clone()]),
        cross: Some(vec![leaf.clone()]),
        union: Some(vec![leaf]),
        cron: None,
    };
    PipelineSpec {
        pipeline: Some(PipelineRef {
            name: "p".into(),
            project: Some(ProjectRef {
                name: "proj".into(),
            }),
        }),
        description: Some("d".into()),
        metadata: Some(Metadata {
            annotations: map("team", "data"),
            labels: map("tier", "batch"),
        }),
        transform: Some(Transform {
            image: Some("i:1".into()),
            cmd: vec!["sh".into()],
            err_cmd: vec!["true".into()],
            env: map("MODE", "x"),
            secrets: vec![SecretMount {
                name: "s".into(),
                key: Some("k".into()),
                mount_path: Some("/s".into()),
                env_var: Some("S".into()),
            }],
            image_pull_secrets: vec!["reg".into()],
            stdin: vec!["echo".into()],
            err_stdin: vec!["echo".into()],
            accept_return_code: vec![1, 2],
            debug: true,
            user: Some("1000".into()),
            working_dir: Some("/w".into()),
            dockerfile: Some("Dockerfile".into()),
            memory_volume: true,
            datum_batching: true,
        }),
        tf_job: Some(serde_json::json!({"x": 1})),
        parallelism_spec: Some(ParallelismSpec { constant: 2 }),
        egress: Some(Egress {
            url: Some("s3://a".into()),
            object_storage: Some(ObjectStorageEgress {
                url: "s3://b".into(),
            }),
            sql_database: Some(SqlDatabaseEgress {
                url: "pg://x".into(),
                file_format: Some(FileFormat {
                    format_type: Some("CSV".into()),
                    columns: vec!["a".into()],
                }),
                secret: Some(SecretRef {
                    name: "s".into(),
                    key: "k".into(),
                }),
            }),
        }),
        update: true,
        output_branch: Some("master".into()),
        s3_out: true,
        resource_requests: Some(resources.clone()),
        resource_limits: Some(resources.clone()),
        sidecar_resource_limits: Some(resources.clone()),
        sidecar_resource_requests: Some(resources),
        input: Some(input),
        reprocess: true,
        dry_run: true,
        spec_commit: Some(serde_json::json!({"id": "c"})),
        reprocess_spec: Some("every_job".into()),
        service: Some(service.clone()),
        spout: Some(Spout {
            service: Some(service),
        }),
        datum_set_spec: Some(DatumSetSpec {
            number: Some(1),
            size_bytes: Some(2),
            per_worker: Some(3),
        }),
        datum_timeout: Some("30s".parse().unwrap()),
        job_timeout: Some("1h".parse().unwrap()),
        salt: Some("salt".into()),
        datum_tries: Some(3),
        scheduling_spec: Some(SchedulingSpec {
            node_selector: map("disk", "ssd"),
            priority_class_name: Some("high".into()),
        }),
        pod_spec: Some("{}".into()),
        pod_patch: Some("[]".into()),
        autoscaling: true,
        tolerations: vec![Toleration {
            key: Some("k".into()),
            operator: Some("EQUAL".into()),
            value: Some("v".into()),
            effect: Some("NO_SCHEDULE".into()),
            toleration_seconds: Some(5),
        }],
        determined: Some(Determined {
            workspaces: vec!["w".into()],
        }),
        maximum_expected_uptime: Some("2h".parse().unwrap()),
    }
}

fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        s = &root["$defs"][r.trim_start_matches("#/$defs/")];
    }
    s
}

/// Every key of `value` is a property of `schema` (recursively); returns the paths checked.
fn walk(root: &Value, schema: &Value, value: &Value, path: &str, seen: &mut Vec<String>) {
    let schema = resolve(root, schema);
    match value {
        Value::Object(map) => {
            let props = schema.get("properties");
            for (k, v) in map {
                let p = format!("{path}.{k}");
                match props.and_then(|props| props.get(k)) {
                    Some(sub) => {
                        seen.push(p.clone());
                        walk(root, sub, v, &p, seen);
                    }
                    None => {
                        // Free-form maps (env, labels) and opaque values (tf_job) are fine.
                        let free = schema
                            .get("additionalProperties")
                            .is_some_and(Value::is_object)
                            || props.is_none();
                        assert!(free, "{p} is not in the schema");
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(root, item_schema, v, &format!("{path}[{i}]"), seen);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn every_field_of_the_types_is_in_the_schema() {
    let root = schema::shipped();
    let full = serde_json::to_value(full_spec()).unwrap();
    let mut seen = Vec::new();
    walk(root, root, &full, "", &mut seen);
    assert!(seen.len() > 100, "only {} fields walked", seen.len());
    for p in [
        ".input.cross[0].pfs.propagation_spec.never",
        ".egress.URL",
        ".spout.service.type",
    ] {
        assert!(seen.iter().any(|s| s == p), "{p} not walked");
    }
    let validator = jsonschema::validator_for(root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&full)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

fn camel_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let mut out = String::new();
                    let mut up = false;
                    for c in k.chars() {
                        if c == '_' {
                            up = true;
                        } else if up {
                            out.push(c.to_ascii_uppercase());
                            up = false;
                        } else {
                            out.push(c);
                        }
                    }
                    (out, camel_keys(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(camel_keys).collect()),
        other => other.clone(),
    }
}

#[test]
fn camel_case_spelling_passes_schema_and_types_alike() {
    let root = schema::shipped();
    let validator = jsonschema::validator_for(root).unwrap();
    let camel = camel_keys(&serde_json::to_value(full_spec()).unwrap());
    assert!(camel.to_string().contains("\"datumTries\""));
    let errors: Vec<String> = validator
        .iter_errors(&camel)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let typed: PipelineSpec = serde_json::from_value(camel).unwrap();
    assert_eq!(typed, full_spec());
}

#[test]
fn every_valid_corpus_spec_passes_schema_and_types() {
    let root = schema::shipped();
    let validator = jsonschema::validator_for(root).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/specs/valid");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        for parsed in parse_file(&path).unwrap() {
            let json = parsed.node.to_json();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            let typed: PipelineSpec = serde_json::from_value(json).unwrap();
            assert_eq!(typed, parsed.spec);
            checked += 1;
        }
    }
    assert!(checked >= 30);
}

#[test]
fn schema_and_types_reject_the_same_structural_mistakes() {
    let validator = jsonschema::validator_for(schema::shipped()).unwrap();
    for bad in [
        r#"{"pipeline": {"name": "p", "nmae": "x"}}"#,
        r#"{"enable_stats": true}"#,
        r#"{"transform": {"cmd": "sh"}}"#,
        r#"{"datum_tries": 1.5}"#,
        r#"{"datum_tries": "1x"}"#,
        r#"{"datum_timeout": "5 minutes"}"#,
        r#"{"input": {"pfs": {"lazy": "yes"}}}"#,
        r#"{"parallelism_spec": {"coefficient": 1}}"#,
    ] {
        let v: Value = serde_json::from_str(bad).unwrap();
        assert!(!validator.is_valid(&v), "schema accepted {bad}");
        assert!(
            serde_json::from_value::<PipelineSpec>(v).is_err(),
            "types accepted {bad}"
        );
    }
}
