//! Property: parse → serialise → parse gives an equal spec, through JSON and through YAML.

use std::collections::BTreeMap;

use pipeline_core::spec::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

/// Strings, with the YAML scalars that are easy to get wrong when quoting.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[\\PC\n\t]{0,12}",
        Just("no".to_string()),
        Just("0755".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just(String::new()),
        Just("- item".to_string()),
        Just("a: b".to_string()),
        Just("#comment".to_string()),
        Just("1e3".to_string()),
        Just("$1".to_string()),
        Just("'quoted'".to_string()),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    (0u64..10_000_000, 0u32..1_000_000_000)
        .prop_map(|(s, n)| Duration::new(std::time::Duration::new(s, n)))
}

fn pfs() -> impl Strategy<Value = PfsInput> {
    (
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        any::<(bool, bool, bool, bool)>(),
        option::of((option::of(text()), any::<bool>(), option::of(any::<i64>()))),
    )
        .prop_map(
            |(name, repo, branch, glob, join_on, (outer, lazy, empty, s3), trig)| PfsInput {
                name,
                repo,
                branch,
                glob,
                join_on,
                outer_join: outer,
                lazy,
                empty_files: empty,
                s3,
                trigger: trig.map(|(branch, all, commits)| Trigger {
                    branch,
                    all,
                    commits,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
}

fn input() -> impl Strategy<Value = Input> {
    let leaf = prop_oneof![
        pfs().prop_map(|p| Input {
            pfs: Some(p),
            ..Default::default()
        }),
        (option::of(text()), option::of(text()), any::<bool>()).prop_map(
            |(name, spec, overwrite)| Input {
                cron: Some(CronInput {
                    name,
                    spec,
                    overwrite,
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        (0..4usize, vec(inner, 0..3)).prop_map(|(kind, children)| {
            let mut i = Input::default();
            match kind {
                0 => i.cross = Some(children),
                1 => i.union = Some(children),
                2 => i.join = Some(children),
                _ => i.group = Some(children),
            }
            i
        })
    })
}

fn spec() -> impl Strategy<Value = PipelineSpec> {
    (
        (option::of(text()), option::of(text()), option::of(text())),
        (
            option::of(text()),
            vec(text(), 0..3),
            btree_map("[A-Z]{1,4}", text(), 0..3),
            vec(any::<i64>(), 0..2),
        ),
        (
            option::of(any::<i64>()),
            option::of(any::<u64>()),
            option::of(-1e9f64..1e9),
        ),
        (
            option::of(duration()),
            option::of(duration()),
            any::<bool>(),
            any::<bool>(),
        ),
        option::of(input()),
    )
        .prop_map(
            |(
                (name, description, salt),
                (image, cmd, env, codes),
                (tries, constant, cpu),
                (datum_timeout, job_timeout, autoscaling, s3_out),
                input,
            )| PipelineSpec {
                pipeline: name.map(|name| PipelineRef {
                    name,
                    project: None,
                }),
                description,
                salt,
                transform: Some(Transform {
                    image,
                    cmd,
                    env: env.into_iter().collect::<BTreeMap<_, _>>(),
                    accept_return_code: codes,
                    ..Default::default()
                }),
                datum_tries: tries,
                parallelism_spec: constant.map(|constant| ParallelismSpec { constant }),
                resource_requests: cpu.map(|cpu| ResourceSpec {
                    cpu: Some(cpu),
                    ..Default::default()
                }),
                datum_timeout,
                job_timeout,
                autoscaling,
                s3_out,
                input,
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn json_round_trip(spec in spec()) {
        let json = serde_json::to_string(&spec).unwrap();
        let parsed = parse_str(&json, "rt.json").map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
        prop_assert_eq!(&parsed[0].spec, &spec);
        // And once more from the re-serialised text.
        let again = serde_json::to_string(&parsed[0].spec).unwrap();
        prop_assert_eq!(again, json);
    }

    #[test]
    fn yaml_round_trip(spec in spec()) {
        let yaml = serde_saphyr::to_string(&spec).unwrap();
        let parsed = parse_str(&yaml, "rt.yaml").map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(&parsed[0].spec, &spec, "yaml:\n{}", yaml);
    }
}
