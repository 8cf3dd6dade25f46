//! Property test (#13 item 9): arbitrary numbers in every numeric spec field never reach a
//! panic. Each case validates a spec carrying them, creates it (accepted or refused with an
//! error), runs what was created, and then writes the same numbers straight into a stored
//! pipeline record (bypassing validation, as a spec stored before a bound existed) and runs
//! a job over it: every step returns, every job ends in a terminal state.

mod pps_common;

use pipeline_core::pps::CreateOptions;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The numbers of one case, one per numeric field.
#[derive(Debug, Clone)]
struct Numbers {
    parallelism: u64,
    datum_tries: i64,
    set: [i64; 3],
    cpu: f64,
    gpus: i64,
    trigger_commits: i64,
    accept: Vec<i64>,
    ports: [i32; 2],
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1i64),
        -5i64..2000,
        any::<i64>(),
    ]
}

fn numbers() -> impl Strategy<Value = Numbers> {
    let parallelism = prop_oneof![
        Just(u64::MAX),
        Just(0u64),
        Just(1025u64),
        1u64..4,
        any::<u64>()
    ];
    let cpu = prop_oneof![
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(0.0),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()),
    ];
    (
        parallelism,
        int(),
        [int(), int(), int()],
        cpu,
        int(),
        int(),
        prop::collection::vec(int(), 0..3),
        [any::<i32>(), any::<i32>()],
    )
        .prop_map(
            |(parallelism, datum_tries, set, cpu, gpus, trigger_commits, accept, ports)| Numbers {
                parallelism,
                datum_tries,
                set,
                cpu,
                gpus,
                trigger_commits,
                accept,
                ports,
            },
        )
}

/// The top-level numeric fields of a spec (inputs and services aside).
fn top_fields(n: &Numbers) -> Vec<(&'static str, Value)> {
    let resources = json!({"cpu": n.cpu, "gpu": {"type": "nvidia.com/gpu", "number": n.gpus}});
    vec![
        ("parallelism_spec", json!({"constant": n.parallelism})),
        ("datum_tries", json!(n.datum_tries)),
        (
            "datum_set_spec",
            json!({"number": n.set[0], "size_bytes": n.set[1], "per_worker": n.set[2]}),
        ),
        ("resource_requests", resources.clone()),
        ("resource_limits", resources),
    ]
}

fn spec(name: &str, n: &Numbers) -> Value {
    let mut s = json!({
        "pipeline": {"name": name},
        "transform": {"cmd": ["sh", "-c", "cp /pfs/data/* /pfs/out/"], "accept_return_code": n.accept},
        "input": {"pfs": {"repo": "data", "glob": "/*", "trigger": {"commits": n.trigger_commits}}},
    });
    for (k, v) in top_fields(n) {
        s[k] = v;
    }
    s
}

/// Writes the numbers into every stored pipeline record (its spec and effective spec).
fn poison(store: &pipeline_core::pfs::Store, n: &Numbers) {
    let records: Vec<(Vec<u8>, Vec<u8>)> = store
        .engine_scan(b"")
        .unwrap()
        .map(|kv| kv.unwrap())
        .collect();
    store
        .transact(|t| -> pipeline_core::pfs::Result<()> {
            for (k, v) in &records {
                let Ok(mut rec) = serde_json::from_slice::<Value>(v) else {
                    continue;
                };
                let mut changed = false;
                for part in ["spec", "effective"] {
                    if let Some(obj) = rec.get_mut(part).and_then(Value::as_object_mut) {
                        for (f, v) in top_fields(n) {
                            obj.insert(f.into(), v);
                        }
                        obj["transform"]["accept_return_code"] = json!(n.accept);
                        changed = true;
                    }
                }
                if changed {
                    t.engine_put(k, &serde_json::to_vec(&rec).unwrap())?;
                }
            }
            Ok(())
        })
        .unwrap();
}

fn terminal(jobs: &[pipeline_core::pps::JobInfo]) {
    for j in jobs {
        assert!(j.state.is_terminal(), "{j:?}");
    }
}

fn case(n: &Numbers) {
    // Validation, including the service ports.
    let mut with_service = spec("svc", n);
    with_service["service"] = json!({"internal_port": n.ports[0], "external_port": n.ports[1]});
    for s in [spec("p", n), with_service] {
        if let Ok(parsed) = pipeline_core::spec::parse_str(&s.to_string(), "p.json") {
            let _ = pipeline_core::validate::validate(&parsed[0]);
        }
    }
    // Create (accepted or refused) and run.
    let e = pps_common::env();
    e.repo("data");
    e.commit("data", &[], &[("/a", "1")]);
    if let Ok(parsed) = pipeline_core::spec::parse_str(&spec("p", n).to_string(), "p.json") {
        let _ = e
            .engine
            .create_pipelines(&parsed, &CreateOptions::default());
        terminal(&e.run());
    }
    // A stored spec carrying the numbers, bypassing validation.
    let e = pps_common::env();
    e.repo("data");
    e.commit("data", &[], &[("/a", "1")]);
    e.create(
        "pipeline: {name: q}\ntransform: {cmd: [sh, -c, 'cp /pfs/data/* /pfs/out/']}\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    terminal(&e.run());
    poison(&e.store, n);
    e.commit("data", &[], &[("/b", "2")]);
    let jobs = e.run();
    terminal(&jobs);
    assert!(!jobs.is_empty(), "no job ran over the stored spec");
    e.engine.list_pipelines().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_numbers_never_panic(n in numbers()) {
        case(&n);
    }
}

#[test]
fn the_extremes_never_panic() {
    case(&Numbers {
        parallelism: u64::MAX,
        datum_tries: i64::MAX,
        set: [i64::MAX, i64::MIN, -1],
        cpu: f64::MAX,
        gpus: i64::MIN,
        trigger_commits: i64::MAX,
        accept: vec![i64::MIN, i64::MAX],
        ports: [i32::MIN, i32::MAX],
    });
}
