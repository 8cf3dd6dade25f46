//! A worker's scratch directory is readied from datum to datum by removing what the engine
//! laid out there, without reading it back, when the executor keeps inputs read-only (the
//! sandboxed process executor): every datum must still see exactly its own inputs under
//! `/pfs`, whatever the datum before it on the same worker had (other inputs, nested paths,
//! directories, several inputs at once).

mod pps_common;

use std::collections::BTreeSet;

/// Each datum lists everything it sees under `/pfs` but `out` into a file named by its ID.
const LIST: &str =
    "cd /pfs && find . -path ./out -prune -o -print | sort > /pfs/out/$PACH_DATUM_ID";

const A: &[&str] = &["/f1", "/f2", "/f3", "/d/x", "/d/e/y", "/g/w", "/g/z"];
const B: &[&str] = &["/k", "/l"];

fn spec(name: &str, input: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh], stdin: ['{LIST}']}}\n\
         parallelism_spec: {{constant: 1}}\ninput: {input}\n"
    )
}

/// What a datum with `inputs` (name, repo, matched path) sees: its inputs' directories,
/// each matched path with its parents and, for a directory, every file below it.
fn expected(inputs: &[(String, String, String)]) -> String {
    let mut seen = BTreeSet::from([".".to_string()]);
    for (name, repo, path) in inputs {
        let files = if repo == "A" { A } else { B };
        let mut add = |p: &str| {
            let mut at = format!("./{name}");
            seen.insert(at.clone());
            for part in p.trim_matches('/').split('/').filter(|s| !s.is_empty()) {
                at = format!("{at}/{part}");
                seen.insert(at.clone());
            }
        };
        add(path);
        if path.ends_with('/') {
            files
                .iter()
                .filter(|f| f.starts_with(path.as_str()))
                .for_each(|f| add(f));
        }
    }
    let mut lines: Vec<String> = seen.into_iter().collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn every_datum_sees_exactly_its_inputs_after_any_other() {
    let sandboxed = executor_process::ProcessExecutor::builder()
        .build()
        .unwrap()
        .isolation()
        .sandbox;
    if !sandboxed {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the sandbox"
        );
        eprintln!("no sandbox here: the scratch directory is read back after every datum");
    }
    let env = pps_common::env();
    env.repo("A");
    env.repo("B");
    let puts = |files: &[&'static str]| -> Vec<(&'static str, &'static str)> {
        files.iter().map(|f| (*f, "x")).collect()
    };
    env.commit("A", &[], &puts(A));
    env.commit("B", &[], &puts(B));
    env.create(&spec(
        "u",
        "{union: [{pfs: {repo: A, name: top, glob: /*}}, {pfs: {repo: A, name: deep, glob: /*/*}}, {pfs: {repo: B, glob: /*}}]}",
    ));
    env.create(&spec(
        "c",
        "{cross: [{pfs: {repo: A, glob: '/*/*'}}, {pfs: {repo: B, glob: /*}}]}",
    ));
    let jobs = env.run();
    for p in ["u", "c"] {
        let job = jobs.iter().rev().find(|j| j.pipeline == p).unwrap();
        assert_eq!(
            job.state,
            pipeline_core::pps::JobState::JobSuccess,
            "{p}: {}",
            job.reason
        );
        let out: std::collections::HashMap<String, String> =
            env.tree(&job.output_commit).into_iter().collect();
        let datums = env.datums(p, &job.id);
        assert!(datums.len() >= 8, "{p}: {} datums", datums.len());
        for d in datums {
            let inputs: Vec<(String, String, String)> = d
                .inputs
                .iter()
                .map(|i| (i.name.clone(), i.repo.clone(), i.path.clone()))
                .collect();
            let seen = out.get(&format!("/{}", d.id)).map(String::as_str);
            assert_eq!(seen, Some(expected(&inputs).as_str()), "{p}: {inputs:?}");
        }
    }
}
