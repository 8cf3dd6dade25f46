//! A datum never sees damaged input: materialising it verifies every object first, and a
//! damaged one fails the datum naming the file and the object (issue #13 item 5).

mod pps_common;

use std::os::unix::fs::PermissionsExt;

use pipeline_core::hash::ContentHash;
use pipeline_core::pps::{DatumFailure, DatumState, JobState};
use pps_common::env;

#[test]
fn damaged_input_fails_the_datum_naming_the_file_and_object() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "hello world"), ("/b", "fine")]);
    let hex = ContentHash::of_bytes(b"hello world").to_hex();
    let obj = e
        .dir
        .path()
        .join("store/objects")
        .join(&hex[..2])
        .join(&hex[2..]);
    std::fs::set_permissions(&obj, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&obj, b"HELLO WORLD").unwrap();
    e.create(
        "pipeline: {name: copy}\ntransform: {cmd: [sh, -c, 'cp $in /pfs/out/']}\n\
         input: {pfs: {repo: in, glob: /*}}\ndatum_tries: 1\n",
    );
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobFailure, "{:?}", jobs[0]);
    let datums = e.engine.list_datums("copy", &jobs[0].id).unwrap();
    let failed: Vec<_> = datums
        .iter()
        .filter(|d| d.state == DatumState::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{datums:?}");
    match failed[0].failure.as_ref().unwrap() {
        DatumFailure::Executor { message } => {
            assert!(
                message.contains("/a") && message.contains(&hex),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}
