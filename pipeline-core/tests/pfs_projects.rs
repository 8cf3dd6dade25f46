//! Projects: records, the implicit `default` project and projects older stores' repos name,
//! refusals; and the engine keeping pipelines of one name in two projects apart.

mod pps_common;

use pipeline_core::pfs::meta::{MetaStore, Table};
use pipeline_core::pfs::object::LocalObjectStore;
use pipeline_core::pfs::{MemMetaStore, PfsError, RepoRef, Store};
use pipeline_core::pps::{JobState, PpsError};
use pipeline_core::testkit::engine::files;
use pps_common::env;

fn names(store: &Store) -> Vec<String> {
    store
        .list_projects()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

#[test]
fn projects_are_created_listed_inspected_updated_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(names(&store), ["default"]);
    assert_eq!(store.inspect_project("default").unwrap().name, "default");

    let p = store.create_project("staging", "pre-production").unwrap();
    assert_eq!(
        (p.name.as_str(), p.description.as_str()),
        ("staging", "pre-production")
    );
    assert!(p.created_ms > 0);
    assert_eq!(names(&store), ["default", "staging"]);
    let e = store.create_project("staging", "").unwrap_err();
    assert!(matches!(e, PfsError::ProjectExists { .. }), "{e}");
    assert_eq!(e.to_string(), "project staging already exists");
    let e = store.create_project("bad name", "").unwrap_err();
    assert!(matches!(e, PfsError::InvalidName(_)), "{e}");
    assert!(store.create_project("a/b", "").is_err());
    assert!(store.create_project("default", "").is_err());

    let u = store.update_project("staging", "renamed").unwrap();
    assert_eq!(u.description, "renamed");
    assert_eq!(u.created_ms, p.created_ms);
    assert_eq!(
        store.inspect_project("staging").unwrap().description,
        "renamed"
    );
    // The default project's description can be set too.
    store.update_project("default", "the usual").unwrap();
    assert_eq!(
        store.inspect_project("default").unwrap().description,
        "the usual"
    );
    let e = store.update_project("nope", "x").unwrap_err();
    assert_eq!(e.to_string(), "project nope not found");

    // Repos live in existing projects only.
    let e = store
        .create_repo(&RepoRef::in_project("nope", "images").unwrap(), "")
        .unwrap_err();
    assert!(
        matches!(&e, PfsError::ProjectNotFound { project } if project == "nope"),
        "{e}"
    );
    let images = RepoRef::in_project("staging", "images").unwrap();
    store.create_repo(&images, "").unwrap();
    let e = store.delete_project("staging").unwrap_err();
    assert!(matches!(e, PfsError::InUse { .. }), "{e}");
    assert!(e.to_string().contains("staging/images"), "{e}");
    let e = store.delete_project("default").unwrap_err();
    assert!(e.to_string().contains("always exists"), "{e}");
    assert!(matches!(
        store.delete_project("nope").unwrap_err(),
        PfsError::ProjectNotFound { .. }
    ));

    store.delete_repo(&images, false).unwrap();
    store.delete_project("staging").unwrap();
    assert_eq!(names(&store), ["default"]);
    assert!(matches!(
        store.inspect_project("staging").unwrap_err(),
        PfsError::ProjectNotFound { .. }
    ));
    // Survives a reopen.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.inspect_project("default").unwrap().description,
        "the usual"
    );
}

#[test]
fn a_store_whose_repos_name_unrecorded_projects_lists_them() {
    // Before projects were records, a repo could name any project: such a store keeps
    // working, its projects listed as they are.
    let meta = MemMetaStore::new();
    {
        let mut w = meta.write().unwrap();
        let record =
            br#"{"repo":{"project":"legacy","name":"images"},"description":"","created_ms":42}"#;
        w.put(Table::Repos, b"legacy/images", record).unwrap();
        w.commit().unwrap();
    }
    let objects = tempfile::tempdir().unwrap();
    let store = Store::with_backends(
        Box::new(meta),
        Box::new(LocalObjectStore::open(objects.path()).unwrap()),
    );
    assert_eq!(names(&store), ["default", "legacy"]);
    let legacy = store.inspect_project("legacy").unwrap();
    assert_eq!((legacy.description.as_str(), legacy.created_ms), ("", 42));
    // Another repo can be created in it; it is refused as a new project name.
    store
        .create_repo(&RepoRef::in_project("legacy", "more").unwrap(), "")
        .unwrap();
    assert!(store.create_project("legacy", "").is_err());
}

fn stage(name: &str, input: &str, script: &str) -> String {
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, '{script}']}}\ninput: {{pfs: {{repo: {input}, glob: /*}}}}\n"
    )
}

fn in_project(project: &str, name: &str, input: &str, script: &str) -> String {
    format!(
        "pipeline: {{name: {name}, project: {{name: {project}}}}}\ntransform: {{cmd: [sh, -c, '{script}']}}\ninput: {{pfs: {{repo: {input}, glob: /*}}}}\n"
    )
}

#[test]
fn one_pipeline_name_in_two_projects_runs_twice_apart() {
    let e = env();
    e.store.create_project("lab", "").unwrap();
    e.repo("images");
    e.repo("lab/images");
    let a = e.create(&stage("edges", "images", "cp $images /pfs/out/"));
    let b = e.create(&in_project(
        "lab",
        "edges",
        "images",
        "tr a-z A-Z < $images > /pfs/out/$(basename $images)",
    ));
    assert_eq!(
        (a.id(), b.id()),
        ("edges".to_string(), "lab/edges".to_string())
    );
    assert_eq!(b.output_branch.repo.to_string(), "lab/edges");
    // The input named without a project is in the pipeline's project.
    assert_eq!(b.inputs[0].to_string(), "lab/images@master");
    e.run();
    e.commit("images", &[], &[("/x", "hello")]);
    e.commit("lab/images", &[], &[("/y", "world")]);
    let jobs = e.run();
    let mut ran: Vec<(String, JobState)> =
        jobs.iter().map(|j| (j.pipeline.clone(), j.state)).collect();
    ran.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        ran,
        [
            ("edges".to_string(), JobState::JobSuccess),
            ("lab/edges".to_string(), JobState::JobSuccess)
        ]
    );
    assert_eq!(e.head_tree("edges"), files(&[("/x", "hello")]));
    assert_eq!(e.head_tree("lab/edges"), files(&[("/y", "WORLD")]));
    // Each has its own jobs, found by either spelling of its ID.
    let own = e.engine.list_jobs(Some("lab/edges")).unwrap();
    assert!(own.iter().all(|j| j.pipeline == "lab/edges"), "{own:?}");
    assert_eq!(
        own.len(),
        e.engine.list_jobs(Some("lab/edges")).unwrap().len()
    );
    let default_jobs = e.engine.list_jobs(Some("default/edges")).unwrap();
    assert!(default_jobs.iter().all(|j| j.pipeline == "edges"));
    assert_eq!(
        default_jobs.len(),
        e.engine.list_jobs(Some("edges")).unwrap().len()
    );
    let last = own.last().unwrap();
    let datums = e.engine.list_datums("lab/edges", &last.id).unwrap();
    assert_eq!(datums.len(), 1);
    assert!(
        !e.engine
            .logs("lab/edges", Some(&last.id), None)
            .unwrap()
            .is_empty()
            || datums[0].state == pipeline_core::pps::DatumState::Success
    );
    assert_eq!(e.engine.list_pipelines().unwrap().len(), 2);

    // Deleting one leaves the other.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(e.engine.delete_pipeline("lab/edges", false))
        .unwrap();
    assert!(matches!(
        e.engine.inspect_pipeline("lab/edges").unwrap_err(),
        PpsError::PipelineNotFound(_)
    ));
    assert_eq!(
        e.engine.inspect_pipeline("edges").unwrap().project,
        "default"
    );
    assert_eq!(e.head_tree("edges"), files(&[("/x", "hello")]));
}

#[test]
fn a_pipeline_in_a_missing_project_is_refused_naming_it() {
    let e = env();
    e.repo("images");
    let spec = "pipeline: {name: edges, project: {name: ghost}}\ntransform: {cmd: [sh, -c, 'true']}\ninput: {pfs: {repo: images, project: default, glob: /*}}\n";
    let parsed = pipeline_core::spec::parse_str(spec, "t.yaml").unwrap();
    let err = e
        .engine
        .create_pipelines(&parsed, &Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("project ghost not found"), "{err}");
    assert!(e.engine.list_pipelines().unwrap().is_empty());
}

#[test]
fn deleting_a_project_refuses_while_it_has_pipelines_and_force_removes_them() {
    let e = env();
    e.store.create_project("lab", "").unwrap();
    e.repo("lab/images");
    e.create(&in_project("lab", "p1", "images", "cp $images /pfs/out/"));
    e.create(&in_project("lab", "p2", "p1", "cp $p1 /pfs/out/"));
    e.commit("lab/images", &[], &[("/a", "1")]);
    e.run();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // `default` is refused before anything is deleted, even with force.
    e.repo("keep");
    let err = rt
        .block_on(e.engine.delete_project("default", true))
        .unwrap_err();
    assert!(err.to_string().contains("always exists"), "{err}");
    assert_eq!(e.store.list_repos().unwrap().len(), 4);
    let err = rt
        .block_on(e.engine.delete_project("lab", false))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("lab/p1") && text.contains("lab/p2") && text.contains("--force"),
        "{text}"
    );
    rt.block_on(e.engine.delete_project("lab", true)).unwrap();
    assert!(e.engine.list_pipelines().unwrap().is_empty());
    let left: Vec<String> = e
        .store
        .list_repos()
        .unwrap()
        .iter()
        .map(|r| r.repo.to_string())
        .collect();
    assert_eq!(left, ["default/keep"]);
    assert_eq!(names(&e.store), ["default"]);
}

#[test]
fn a_store_written_before_projects_keeps_its_pipelines() {
    // The default project's pipelines keep the keys they had before projects were records:
    // a store written then opens and runs as before.
    let e = env();
    e.repo("images");
    e.create(&stage("edges", "images", "cp $images /pfs/out/"));
    e.run();
    e.commit("images", &[], &[("/x", "1")]);
    let first = e.run();
    assert_eq!(first.len(), 1);
    let keys: Vec<String> = e
        .store
        .engine_scan(b"")
        .unwrap()
        .map(|kv| String::from_utf8(kv.unwrap().0).unwrap())
        .filter(|k| k.starts_with("P/") || k.starts_with("J/"))
        .collect();
    assert!(
        keys.contains(&format!("J/edges/{}", first[0].id)),
        "{keys:?}"
    );
    assert!(keys.contains(&"P/edges".to_string()), "{keys:?}");
    let root = e.dir.path().join("store");
    let dir = e.dir;
    drop(e.kit);
    let store = Store::open(&root).unwrap();
    let engine = pipeline_core::pps::Engine::builder(store)
        .executor(std::sync::Arc::new(
            executor_process::ProcessExecutor::builder()
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    let again = pps_common::Env::with_engine(dir, engine);
    assert_eq!(again.engine.list_pipelines().unwrap()[0].id(), "edges");
    assert_eq!(again.engine.list_jobs(Some("edges")).unwrap().len(), 2);
    again.commit("images", &[], &[("/y", "2")]);
    let jobs = again.run();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::JobSuccess);
    assert_eq!(again.head_tree("edges"), files(&[("/x", "1"), ("/y", "2")]));
}
