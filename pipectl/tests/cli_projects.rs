//! `pipectl create|list|inspect|update|delete project` and the global `--project` flag on
//! repos, files, pipelines and jobs (both modes: `PIPECTL_TEST_MODE=server` runs them through
//! a server).

mod common;

use common::Env;

#[test]
fn projects_are_created_listed_inspected_updated_and_deleted() {
    let e = Env::new();
    e.ok(&["create", "project", "lab", "--description", "experiments"]);
    let again = e.fails(&["create", "project", "lab"]);
    assert!(again.contains("project lab already exists"), "{again}");
    let bad = e.fails(&["create", "project", "no way"]);
    assert!(bad.contains("no way"), "{bad}");
    let list = e.json(&["list", "project", "-o", "json"]);
    let names: Vec<&str> = list.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "lab"]);
    let text = e.ok(&["list", "project", "--project", "lab"]);
    let lab_line = text.lines().find(|l| l.contains("lab")).unwrap();
    assert!(lab_line.trim_start().starts_with('*'), "{text}");
    let one = e.json(&["inspect", "project", "lab", "-o", "json"]);
    assert_eq!(one[0]["description"], "experiments");
    e.ok(&["update", "project", "lab", "--description", "renamed"]);
    assert!(
        e.ok(&["inspect", "project", "lab"])
            .contains("Description: renamed")
    );
    let missing = e.fails(&["inspect", "project", "nope"]);
    assert!(missing.contains("project nope not found"), "{missing}");
    let default = e.fails(&["delete", "project", "default"]);
    assert!(default.contains("always exists"), "{default}");
    e.ok(&["delete", "project", "lab"]);
    let gone = e.fails(&["inspect", "project", "lab"]);
    assert!(gone.contains("project lab not found"), "{gone}");
    let flag = e.fails(&["list", "repo", "--project", "a b"]);
    assert!(flag.contains("--project"), "{flag}");
}

#[test]
fn the_project_flag_scopes_repos_files_pipelines_and_jobs() {
    let e = Env::new();
    let missing = e.fails(&["create", "repo", "images", "--project", "lab"]);
    assert!(missing.contains("project lab not found"), "{missing}");
    e.ok(&["create", "project", "lab"]);
    e.ok(&["create", "repo", "images"]);
    e.ok(&["create", "repo", "images", "--project", "lab"]);
    let a = e.local("a.txt", "default side");
    let b = e.local("b.txt", "lab side");
    e.ok(&["put", "file", "images@master:/a.txt", "-f", &a]);
    e.ok(&[
        "put",
        "file",
        "images@master:/b.txt",
        "-f",
        &b,
        "--project",
        "lab",
    ]);
    // `lab/images` names the project explicitly, whatever --project says.
    assert_eq!(
        e.ok(&["get", "file", "lab/images@master:/b.txt"]),
        "lab side"
    );
    assert_eq!(
        e.ok(&["get", "file", "images@master:/b.txt", "--project", "lab"]),
        "lab side"
    );
    e.fails(&["get", "file", "images@master:/b.txt"]);
    let spec = e.local(
        "edges.yaml",
        "pipeline: {name: edges}\ntransform: {cmd: [sh, -c, 'cp $images /pfs/out/']}\ninput: {pfs: {repo: images, glob: /*}}\n",
    );
    e.ok(&["create", "pipeline", "-f", &spec]);
    e.ok(&["create", "pipeline", "-f", &spec, "--project", "lab"]);
    assert_eq!(
        e.ok(&["get", "file", "edges@master:/b.txt", "--project", "lab"]),
        "lab side"
    );
    assert_eq!(
        e.ok(&["get", "file", "edges@master:/a.txt"]),
        "default side"
    );
    let lab = e.json(&[
        "inspect",
        "pipeline",
        "edges",
        "--project",
        "lab",
        "-o",
        "json",
    ]);
    assert_eq!(lab[0]["project"], "lab");
    assert_eq!(lab[0]["output_branch"]["repo"]["project"], "lab");
    let jobs = e.json(&[
        "list",
        "job",
        "--pipeline",
        "edges",
        "--project",
        "lab",
        "-o",
        "json",
    ]);
    assert!(!jobs.is_empty());
    assert!(
        jobs.iter().all(|j| j["pipeline"] == "lab/edges"),
        "{jobs:?}"
    );
    let default_jobs = e.json(&["list", "job", "--pipeline", "edges", "-o", "json"]);
    assert!(
        default_jobs.iter().all(|j| j["pipeline"] == "edges"),
        "{default_jobs:?}"
    );
    let id = jobs[0]["id"].as_str().unwrap();
    let job = e.json(&["inspect", "job", &format!("lab/edges@{id}"), "-o", "json"]);
    assert_eq!(job[0]["state"], "JOB_SUCCESS");
    let same = e.json(&[
        "inspect",
        "job",
        &format!("edges@{id}"),
        "--project",
        "lab",
        "-o",
        "json",
    ]);
    assert_eq!(same[0]["id"], job[0]["id"]);

    // Listings show the current project; -A shows all of them.
    let repo_ids = |args: &[&str]| -> Vec<String> {
        e.json(args)
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["repo"]["project"].as_str().unwrap(),
                    r["repo"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        repo_ids(&["list", "repo", "--project", "lab", "-o", "json"]),
        ["lab/edges", "lab/images"]
    );
    assert_eq!(
        repo_ids(&["list", "repo", "-A", "-o", "json"]),
        ["default/edges", "default/images", "lab/edges", "lab/images"]
    );
    let pipelines = e.json(&["list", "pipeline", "--project", "lab", "-o", "json"]);
    assert_eq!(pipelines.len(), 1, "{pipelines:?}");
    assert_eq!(pipelines[0]["project"], "lab");
    assert_eq!(
        e.json(&["list", "pipeline", "--all-projects", "-o", "json"])
            .len(),
        2
    );

    // A project with pipelines and repos is refused, naming them, unless --force.
    let refused = e.fails(&["delete", "project", "lab"]);
    assert!(
        refused.contains("lab/edges") && refused.contains("--force"),
        "{refused}"
    );
    e.ok(&["delete", "project", "lab", "--force"]);
    let names: Vec<String> = e
        .json(&["list", "repo", "-o", "json"])
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["repo"]["project"].as_str().unwrap(),
                r["repo"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["default/edges", "default/images"]);
    assert_eq!(
        e.ok(&["get", "file", "edges@master:/a.txt"]),
        "default side"
    );
}
