//! `pipectl debug datum`: a recorded datum run again on this machine (its job's inputs, its
//! environment, its pipeline version's transform) and compared with the job's record; with
//! the process executor, and with Docker in the pipeline's image (skipped outside CI without a
//! daemon). Runs in both test modes: through a server, inputs are fetched through the API.

mod common;

use common::Env;

/// Pipeline `upper` over repo `raw` (`/*`): upper-cases each file, fails with exit 3 on
/// `/bad.txt` after printing a line; `stamp` writes the time (never the same twice).
fn setup(e: &Env, executor: &str, image: Option<&str>) -> (String, String, String, String) {
    e.ok(&["create", "repo", "raw"]);
    for (name, body) in [("a.txt", "alpha\n"), ("bad.txt", "oops\n")] {
        let f = e.local(name, body);
        e.ok(&["put", "file", &format!("raw@master:/{name}"), "-f", &f]);
    }
    let image = image.map(|i| format!("image: '{i}', ")).unwrap_or_default();
    let upper = e.local(
        "upper.yaml",
        &format!("pipeline: {{name: upper}}\ntransform: {{{image}cmd: [sh, -c, 'case $raw in *bad.txt) echo \"cannot parse $raw\"; exit 3;; esac; tr a-z A-Z < $raw > /pfs/out/${{raw##*/}}; echo \"$PACH_DATUM_ID\" > /pfs/out/${{raw##*/}}.id']}}\ndatum_tries: 1\ninput: {{pfs: {{repo: raw, glob: /*}}}}\n"),
    );
    e.cmd(&["create", "pipeline", "--executor", executor, "-f", &upper]);
    let stamp = e.local(
        "stamp.yaml",
        &format!("pipeline: {{name: stamp}}\ntransform: {{{image}cmd: [sh, -c, 'date +%s%N > /pfs/out/t; cat /proc/sys/kernel/random/uuid >> /pfs/out/t']}}\ninput: {{pfs: {{repo: raw, glob: /a.txt}}}}\n"),
    );
    e.ok(&["create", "pipeline", "--executor", executor, "-f", &stamp]);
    let job = |p: &str| {
        e.json(&["list", "job", "-p", p, "-o", "json"])[0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (uj, sj) = (job("upper"), job("stamp"));
    let datum = |p: &str, j: &str, state: &str| {
        e.json(&["list", "datum", &format!("{p}@{j}"), "-o", "json"])
            .into_iter()
            .find(|d| d["state"] == state)
            .unwrap_or_else(|| panic!("no {state} datum in {p}@{j}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ok = datum("upper", &uj, "SUCCESS");
    let bad = datum("upper", &uj, "FAILED");
    let stamped = datum("stamp", &sj, "SUCCESS");
    (
        format!("upper@{uj}"),
        ok,
        bad,
        format!("stamp@{sj}:{stamped}"),
    )
}

fn debug_cases(e: &Env, executor: &str, image: Option<&str>) {
    let (job, ok, bad, stamp) = setup(e, executor, image);
    // A successful datum: same ending, the same bytes in every output (including the
    // datum's own ID from its environment).
    let out = e.ok(&["debug", "datum", &job, &ok]);
    assert!(
        out.contains("recorded: success") && out.contains("this run: success"),
        "{out}"
    );
    assert!(
        out.contains("same     /pfs/out/a.txt") && out.contains("same     /pfs/out/a.txt.id"),
        "{out}"
    );
    assert!(out.contains("reproduced: identical"), "{out}");

    // A failed datum fails the same way; its log line is shown.
    let a = e.cmd(&["debug", "datum", &job, &bad]).success();
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stdout.contains("recorded: exit code 3") && stdout.contains("this run: exit code 3"),
        "{stdout}"
    );
    assert!(stderr.contains("cannot parse /pfs/raw/bad.txt"), "{stderr}");

    // A datum whose output changes every run is reported as not reproduced (exit 1).
    let (sjob, sdatum) = stamp.split_once(':').unwrap();
    let err = e.fails(&["debug", "datum", sjob, sdatum]);
    assert!(err.contains("not reproduced"), "{err}");

    // --keep leaves the datum's directory: inputs where user code read them, and outputs.
    let keep = e.dir.path().join(format!("keep-{executor}"));
    e.ok(&[
        "debug",
        "datum",
        &job,
        &ok,
        "--keep",
        keep.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(keep.join("raw/a.txt")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(keep.join("out/a.txt")).unwrap(),
        "ALPHA\n"
    );
    let err = e.fails(&[
        "debug",
        "datum",
        &job,
        &ok,
        "--keep",
        keep.to_str().unwrap(),
    ]);
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn debug_datum_reproduces_process_datums() {
    let e = Env::new();
    debug_cases(&e, "process", None);
    // Bad arguments name what is wrong.
    let err = e.fails(&["debug", "datum", "upper", "x"]);
    assert!(err.contains("PIPELINE@JOB"), "{err}");
    let err = e.fails(&["debug", "datum", "nope@0123456789", "x"]);
    assert!(err.contains("nope"), "{err}");
    let job = e.json(&["list", "job", "-p", "upper", "-o", "json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let err = e.fails(&["debug", "datum", &format!("upper@{job}"), "ffff"]);
    assert!(err.contains("ffff"), "{err}");
}

#[test]
fn debug_datum_reproduces_docker_datums_in_the_pipeline_image() {
    let docker_up = std::process::Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !docker_up {
        assert!(
            std::env::var("CI").is_err(),
            "the Docker daemon is required in CI"
        );
        eprintln!("skipping: no Docker daemon");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let image = rt
        .block_on(executor_docker::testing::ensure_test_image(&docker))
        .unwrap();
    let e = Env::new();
    debug_cases(&e, "docker", Some(&image));
}
