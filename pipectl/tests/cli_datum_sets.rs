//! `datum_set_spec` variants (`number`, `size_bytes`, `per_worker`, and the default of 4 sets
//! per worker) through `pipectl`, on the process executor and in Docker containers: each job
//! reports the sets its datums were cut into, and every variant writes what a pipeline
//! without `datum_set_spec` writes.

mod common;

use common::Env;

/// `(name, spec lines, sets expected)` over 16 datums (15 small files and one of 30 bytes).
const VARIANTS: [(&str, &str, u64); 5] = [
    ("plain", "", 4),
    ("num", "datum_set_spec: {number: 3}\n", 6),
    ("bytes", "datum_set_spec: {size_bytes: 10}\n", 3),
    (
        "pw1",
        "datum_set_spec: {per_worker: 1}\nparallelism_spec: {constant: 2}\n",
        2,
    ),
    ("pw", "parallelism_spec: {constant: 2}\n", 8),
];

fn run_variants(image: Option<&str>, executor: &[&str]) {
    let e = Env::new();
    e.ok(&["create", "repo", "in"]);
    let dir = e.dir.path().join("files");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..15 {
        std::fs::write(dir.join(format!("f{i:02}")), i.to_string()).unwrap();
    }
    std::fs::write(dir.join("big"), "x".repeat(30)).unwrap();
    e.ok(&[
        "put",
        "file",
        "-r",
        "in@master:/",
        "-f",
        dir.to_str().unwrap(),
    ]);
    let image = image.map_or(String::new(), |i| format!("image: {i}, "));
    for (name, extra, _) in VARIANTS {
        let spec = e.local(
            &format!("{name}.yaml"),
            &format!(
                "pipeline: {{name: {name}}}\ntransform: {{{image}cmd: [sh, -c, 'cp $in /pfs/out/']}}\n\
                 input: {{pfs: {{repo: in, glob: /*}}}}\n{extra}"
            ),
        );
        let mut args = vec!["create", "pipeline", "-f", &spec];
        args.extend_from_slice(executor);
        e.ok(&args);
    }
    let want = e.ok(&["list", "file", "plain@master:/"]);
    for (name, _, sets) in VARIANTS {
        e.ok(&["wait", "commit", &format!("{name}@master")]);
        let jobs = e.json(&["list", "job", "-p", name, "-o", "json"]);
        let job = &jobs[0];
        assert_eq!(job["state"], "JOB_SUCCESS", "{name}: {job}");
        assert_eq!(job["stats"]["datums_processed"], 16, "{name}: {job}");
        assert_eq!(job["stats"]["datum_sets"], sets, "{name}: {job}");
        assert_eq!(
            e.ok(&["list", "file", &format!("{name}@master:/")]),
            want,
            "{name}: the output differs from the plain pipeline's"
        );
    }
    for (name, _, _) in VARIANTS {
        e.ok(&["delete", "pipeline", name]);
    }
}

#[test]
fn datum_set_variants_on_the_process_executor() {
    run_variants(None, &[]);
}

#[test]
fn datum_set_variants_in_docker_containers() {
    let Some(image) =
        common::docker_image(
            |d| async move { executor_docker::testing::ensure_test_image(&d).await },
        )
    else {
        return;
    };
    run_variants(Some(&image), &["--executor", "docker"]);
}
