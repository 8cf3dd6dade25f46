//! `pps::executors_in_use`: the executors a store's pipelines run on, read without an engine
//! (what a host asks before deciding which backends to connect).

mod pps_common;

use pipeline_core::pps::executors_in_use;
use pps_common::env;

#[test]
fn names_each_executor_of_the_registered_pipelines_once() {
    let e = env();
    assert!(executors_in_use(&e.store).unwrap().is_empty());
    e.repo("A");
    for name in ["p1", "p2"] {
        e.create(&format!(
            "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, 'true']}}\ninput: {{pfs: {{repo: A, glob: /*}}}}\n"
        ));
    }
    let names: Vec<String> = executors_in_use(&e.store).unwrap().into_iter().collect();
    assert_eq!(names, ["process"]);
}
