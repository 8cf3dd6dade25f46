//! `lazy: true` inputs (reference §2.10) on the process executor: every file is a named pipe
//! streamed from the store when opened, again on every open; files never opened cost
//! nothing and never hold a datum up; a reader that stops early leaves the next open the
//! whole file (as a retried attempt needs).

mod pps_common;

use pipeline_core::pps::JobState;
use pipeline_core::testkit::engine::files;
use pps_common::env;

fn lazy(name: &str, glob: &str, script: &str, extra: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, '{script}']}}\n\
         input: {{pfs: {{repo: in, glob: \"{glob}\", lazy: true}}}}\n{extra}"
    )
}

#[test]
fn lazy_files_are_pipes_that_stream_their_content_on_every_open() {
    let e = env();
    e.repo("in");
    let big = "x".repeat(300 * 1024);
    e.commit(
        "in",
        &[],
        &[("/a", "alpha\n"), ("/d/b", "beta\n"), ("/big", &big)],
    );
    // Each file twice (two opens), and whether it was a pipe.
    e.create(&lazy(
        "twice",
        "/*",
        "for f in $(find /pfs/in -type p); do n=${f##*/}; cat $f $f > /pfs/out/$n; done; \
         [ -p /pfs/in/a ] || [ -d /pfs/in/d ] || [ -p /pfs/in/big ] || exit 9",
        "",
    ));
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{jobs:?}");
    let twice = |s: &str| format!("{s}{s}");
    assert_eq!(
        e.head_tree("twice"),
        files(&[
            ("/a", &twice("alpha\n")),
            ("/b", &twice("beta\n")),
            ("/big", &twice(&big)),
        ])
    );
}

#[test]
fn unread_lazy_files_cost_nothing_and_do_not_hold_the_datum() {
    let e = env();
    e.repo("in");
    let names: Vec<String> = (0..1000).map(|i| format!("/f{i}")).collect();
    let puts: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "data")).collect();
    e.commit("in", &[], &puts);
    // One datum of 1,000 pipes; the code reads one of them, and only its first byte.
    e.create(&lazy(
        "peek",
        "/",
        "head -c 1 /pfs/in/f7 > /pfs/out/first; ls /pfs/in | wc -l | tr -d \" \" > /pfs/out/n",
        "",
    ));
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{jobs:?}");
    assert_eq!(
        e.head_tree("peek"),
        files(&[("/first", "d"), ("/n", "1000\n")])
    );
    let d = &e.datums("peek", &jobs[0].id)[0];
    assert_eq!(d.stats.bytes_in, 0, "nothing is materialised up front");
}

#[test]
fn a_reader_that_stops_early_leaves_the_next_open_the_whole_file() {
    let e = env();
    e.repo("in");
    let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    e.commit("in", &[], &[("/a", &long)]);
    // `head` closes the pipe after one line (the feeder sees a broken pipe); the next
    // open, as a retried attempt's would, reads the file from its start to its end.
    e.create(&lazy(
        "partial",
        "/*",
        "head -n 1 /pfs/in/a > /pfs/out/first; cat /pfs/in/a > /pfs/out/all",
        "",
    ));
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{jobs:?}");
    assert_eq!(
        e.head_tree("partial"),
        files(&[("/all", &long), ("/first", "line 0\n")])
    );
}

/// Early closes in a row, each reopened at once (after one byte, after one line): every
/// open gets the whole file from its start, never what an earlier open's pipe still held.
#[test]
fn every_reopen_after_an_early_close_gets_the_whole_file() {
    let e = env();
    e.repo("in");
    let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    e.commit("in", &[], &[("/a", &long)]);
    e.create(&lazy(
        "reopen",
        "/*",
        "for i in $(seq 1 40); do head -c 1 /pfs/in/a > /dev/null; head -n 1 /pfs/in/a \
         >> /pfs/out/firsts; done; cat /pfs/in/a > /pfs/out/all",
        "",
    ));
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{jobs:?}");
    let tree = e.head_tree("reopen");
    let get = |p: &str| {
        tree.iter()
            .find(|(path, _)| path == p)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("/firsts"), "line 0\n".repeat(40));
    assert!(
        get("/all") == long,
        "the full read after early closes differs"
    );
}

#[test]
fn lazy_wins_over_empty_files() {
    let e = env();
    e.repo("in");
    e.commit("in", &[], &[("/a", "content")]);
    e.create(
        &lazy("both", "/*", "cat /pfs/in/a > /pfs/out/a", "")
            .replace("lazy: true", "lazy: true, empty_files: true"),
    );
    let jobs = e.run();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{jobs:?}");
    assert_eq!(e.head_tree("both"), files(&[("/a", "content")]));
}
