//! Pachyderm's shuffle pattern (reference §2.10, `examples/shuffle`): user code links files
//! of an `empty_files` or `lazy` input into `/pfs/out` instead of copying them, and the
//! output gets the input files' real content, by content hash, without the worker reading
//! them. A link to a directory of the datum's input stores every file below it; links to
//! anything outside `/pfs/out` and the datum's own inputs fail the datum, naming the link.

mod pps_common;

use pipeline_core::pps::{DatumState, JobState};
use pipeline_core::testkit::engine::files;
use pps_common::env;

fn spec(name: &str, glob: &str, flag: &str, script: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, '{script}']}}\n\
         input: {{pfs: {{repo: fruits, glob: \"{glob}\", {flag}: true}}}}\ndatum_tries: 1\n"
    )
}

fn seed(e: &pps_common::Env) {
    e.repo("fruits");
    e.commit(
        "fruits",
        &[],
        &[
            ("/apple/1.jpg", "red"),
            ("/apple/2.jpg", "green"),
            ("/banana/3.jpg", "yellow"),
        ],
    );
}

#[test]
fn links_into_empty_files_and_lazy_inputs_store_the_real_content() {
    for flag in ["empty_files", "lazy"] {
        let e = env();
        seed(&e);
        // Files reshuffled by name, absolute and relative links.
        e.create(&spec(
            "shuffle",
            "/*/*",
            flag,
            "f=$(cd /pfs/fruits && find . -type f -o -type p | head -1); f=${f#./}; \
             mkdir -p /pfs/out/by-name; n=$(basename $f); \
             ln -s /pfs/fruits/$f /pfs/out/by-name/$n; ln -s ../fruits/$f /pfs/out/rel-$n",
        ));
        let jobs = e.run();
        assert_eq!(jobs[0].state, JobState::JobSuccess, "{flag}: {jobs:?}");
        assert_eq!(
            e.head_tree("shuffle"),
            files(&[
                ("/by-name/1.jpg", "red"),
                ("/by-name/2.jpg", "green"),
                ("/by-name/3.jpg", "yellow"),
                ("/rel-1.jpg", "red"),
                ("/rel-2.jpg", "green"),
                ("/rel-3.jpg", "yellow"),
            ]),
            "{flag}"
        );
    }
}

#[test]
fn a_link_to_an_input_directory_stores_every_file_below_it() {
    let e = env();
    seed(&e);
    e.create(&spec(
        "dirs",
        "/*",
        "empty_files",
        "for d in /pfs/fruits/*; do ln -s $d /pfs/out/copy-$(basename $d); done",
    ));
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{jobs:?}");
    assert_eq!(
        e.head_tree("dirs"),
        files(&[
            ("/copy-apple/1.jpg", "red"),
            ("/copy-apple/2.jpg", "green"),
            ("/copy-banana/3.jpg", "yellow"),
        ])
    );
}

#[test]
fn links_outside_the_datums_inputs_fail_the_datum_naming_the_link() {
    let e = env();
    seed(&e);
    // Each datum is one fruit directory; a link to the other one is not its input, and a
    // link to a host file never is.
    e.create(&spec(
        "stray",
        "/*",
        "empty_files",
        "ln -s /pfs/fruits/banana/3.jpg /pfs/out/other",
    ));
    e.create(&spec(
        "leak",
        "/*",
        "empty_files",
        "ln -s /etc/passwd /pfs/out/passwd",
    ));
    let jobs = e.run();
    let job = |p: &str| jobs.iter().find(|j| j.pipeline.ends_with(p)).unwrap();
    let stray = job("stray");
    assert_eq!(stray.state, JobState::JobFailure, "{stray:?}");
    let datums = e.datums("stray", &stray.id);
    let failed: Vec<_> = datums
        .iter()
        .filter(|d| d.state == DatumState::Failed)
        .collect();
    // The banana datum links its own file; the apple datum's link is refused.
    assert_eq!(failed.len(), 1, "{datums:?}");
    let reason = format!("{failed:?}");
    assert!(
        reason.contains("output symlink \\\"other\\\"")
            && reason.contains("not within this datum's inputs"),
        "{reason}"
    );
    let leak = job("leak");
    assert_eq!(leak.state, JobState::JobFailure, "{leak:?}");
    let reason = format!("{:?}", e.datums("leak", &leak.id));
    assert!(reason.contains("points outside /pfs/out"), "{reason}");
}
