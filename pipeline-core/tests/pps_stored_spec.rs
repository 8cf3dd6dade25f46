//! A spec stored before validation bounded its numbers (#13 item 9): `parallelism_spec.constant`
//! and `datum_tries` of `u64::MAX` / `i64::MAX` written straight into the store's records,
//! bypassing validation. Every later command must work (the engine clamps with a warning),
//! never panic with "capacity overflow".

mod pps_common;

use pipeline_core::pfs::Store;
use serde_json::Value;

/// Sets every `parallelism_spec` and `datum_tries` inside `v` to the largest number.
fn poison(v: &mut Value) -> bool {
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if k == "parallelism_spec" {
                    *child = serde_json::json!({"constant": u64::MAX});
                    changed = true;
                } else if k == "datum_tries" {
                    *child = serde_json::json!(i64::MAX);
                    changed = true;
                } else {
                    changed |= poison(child);
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                changed |= poison(child);
            }
        }
        _ => {}
    }
    changed
}

fn poison_store(store: &Store) -> usize {
    let records: Vec<(Vec<u8>, Vec<u8>)> = store
        .engine_scan(b"")
        .unwrap()
        .map(|kv| kv.unwrap())
        .collect();
    let mut n = 0;
    store
        .transact(|t| -> pipeline_core::pfs::Result<()> {
            for (k, v) in &records {
                let Ok(mut json) = serde_json::from_slice::<Value>(v) else {
                    continue;
                };
                if poison(&mut json) {
                    t.engine_put(k, &serde_json::to_vec(&json).unwrap())?;
                    n += 1;
                }
            }
            Ok(())
        })
        .unwrap();
    n
}

#[test]
fn a_stored_spec_with_huge_numbers_never_panics_the_engine() {
    let e = pps_common::env();
    e.repo("data");
    e.commit("data", &[], &[("/a", "1")]);
    e.create(
        "pipeline: {name: copy}\nparallelism_spec: {constant: 2}\ntransform: {cmd: [sh, -c, 'cp /pfs/data/* /pfs/out/']}\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    e.run();
    assert!(
        poison_store(&e.store) > 0,
        "no pipeline record found to rewrite"
    );
    let p = e.engine.inspect_pipeline("copy").unwrap();
    assert_eq!(
        p.effective.workers_clamped(),
        Some(u64::MAX),
        "the rewrite did not land"
    );
    assert_eq!(
        p.effective.workers(),
        pipeline_core::spec::MAX_WORKERS as usize
    );
    e.commit("data", &[], &[("/b", "2")]);
    let jobs = e.run();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state.as_str(), "JOB_SUCCESS", "{jobs:?}");
    assert_eq!(
        e.head_tree("copy"),
        pipeline_core::testkit::engine::files(&[("/a", "1"), ("/b", "2")])
    );
    e.engine.list_pipelines().unwrap();
    pipeline_core::pps::pool_spec(&p, &Default::default());
}
