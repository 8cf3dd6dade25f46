//! Transactions: queued requests applied in one store transaction with one commit set
//! (reference §4.4: changing several input repos in one transaction gives each downstream
//! pipeline one job), all or nothing.

mod pps_common;

use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pfs::{CommitId, FinishOptions, RepoRef};
use pipeline_core::pps::{
    Engine, JobState, PpsError, TransactionFinished, TransactionRequest, TransactionResponse,
};
use pps_common::{Env, env};

const CROSS: &str = r#"pipeline: {name: pairs}
transform: {cmd: [sh, -c, 'echo "$(cat $A) $(cat $B)" > /pfs/out/$(basename $A)-$(basename $B)']}
input: {cross: [{pfs: {repo: A, glob: /*}}, {pfs: {repo: B, glob: /*}}]}
"#;

fn start(repo: &str) -> TransactionRequest {
    TransactionRequest::StartCommit {
        branch: format!("{repo}@master"),
        description: String::new(),
    }
}

fn finish(repo: &str) -> TransactionRequest {
    TransactionRequest::FinishCommit {
        commit: format!("{repo}@master"),
        error: None,
    }
}

fn create_pipeline(spec: &str) -> TransactionRequest {
    TransactionRequest::CreatePipeline {
        spec: spec.to_string(),
        source_name: "pairs.yaml".into(),
        executor: None,
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A transaction with `requests` queued, finished.
fn transact(
    engine: &Engine,
    requests: Vec<TransactionRequest>,
) -> (String, Result<TransactionFinished, PpsError>) {
    let id = engine.start_transaction().unwrap().id;
    for r in requests {
        engine.append_transaction_request(&id, r).unwrap();
    }
    let done = block_on(engine.finish_transaction(&id));
    (id, done)
}

/// Repos A and B with two files each, and the cross pipeline over them, its first job run.
fn cross_env() -> Env {
    let e = env();
    e.repo("A");
    e.repo("B");
    e.commit("A", &[], &[("/a1", "a1")]);
    e.commit("B", &[], &[("/b1", "b1")]);
    e.create(CROSS);
    let first = e.run();
    assert_eq!(first.len(), 1);
    e
}

#[test]
fn two_input_commits_in_one_transaction_make_one_job_of_a_cross_pipeline() {
    let e = cross_env();
    let (_, done) = transact(&e.engine, vec![start("A"), start("B")]);
    let done = done.unwrap();
    let set = done.commit_set.clone().expect("the commits' commit set");
    assert_eq!(done.jobs.len(), 1, "{:?}", done.jobs);
    assert_eq!(done.jobs[0].id, set);
    // Both commits are open in the one set; files go in, then each is finished.
    let set_id = CommitId::parse(&set).unwrap();
    for (repo, file) in [("A", "/a2"), ("B", "/b2")] {
        let c = RepoRef::new(repo).unwrap().commit(&set_id);
        e.store.put_file_bytes(&c, file, file.as_bytes()).unwrap();
        e.store.finish_commit(&c, FinishOptions::default()).unwrap();
    }
    let jobs = e.run();
    assert_eq!(jobs.len(), 1, "one job for both changes: {jobs:?}");
    assert_eq!(jobs[0].id, set);
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{}", jobs[0].reason);
    let inputs: Vec<String> = jobs[0].inputs.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        inputs,
        [format!("default/A@{set}"), format!("default/B@{set}")],
        "the job reads both new commits"
    );
    // 2 x 2 datums, one of them (a1 x b1) the first job's.
    assert_eq!(jobs[0].stats.datums_total, 4);
    assert_eq!(jobs[0].stats.datums_skipped, 1);
    assert_eq!(e.jobs("pairs").len(), 2);
    assert!(e.engine.list_transactions().unwrap().is_empty(), "finished");
}

#[test]
fn a_pipeline_created_before_the_commits_in_one_transaction_gets_one_job_over_them() {
    let e = env();
    e.repo("A");
    e.repo("B");
    e.commit("A", &[], &[("/a1", "a1")]);
    e.commit("B", &[], &[("/b1", "b1")]);
    let requests = vec![
        create_pipeline(CROSS),
        start("A"),
        start("B"),
        finish("A"),
        finish("B"),
    ];
    let (_, done) = transact(&e.engine, requests);
    let done = done.unwrap();
    let set = done.commit_set.clone().unwrap();
    assert!(
        matches!(&done.responses[0], TransactionResponse::Pipelines(p) if p[0].name == "pairs")
    );
    assert_eq!(done.jobs.len(), 1);
    let jobs = e.run();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].id, set);
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{}", jobs[0].reason);
    let inputs: Vec<String> = jobs[0].inputs.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        inputs,
        [format!("default/A@{set}"), format!("default/B@{set}")]
    );
    assert_eq!(e.jobs("pairs").len(), 1, "the pipeline's only job");
    assert_eq!(e.head_tree("pairs").len(), 1);
}

#[test]
fn without_a_transaction_the_same_changes_make_two_jobs() {
    let e = cross_env();
    e.commit("A", &[], &[("/a2", "a2")]);
    e.commit("B", &[], &[("/b2", "b2")]);
    assert_eq!(e.run().len(), 2, "the contrast the transaction removes");
}

#[test]
fn a_failing_request_applies_nothing_and_the_error_names_it() {
    let e = env();
    e.repo("A");
    let requests = vec![
        TransactionRequest::CreateRepo {
            repo: "C".into(),
            description: String::new(),
        },
        start("A"),
        start("missing"),
    ];
    let (id, done) = transact(&e.engine, requests);
    let err = done.unwrap_err();
    let PpsError::TransactionRequest { index, request, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        (*index, request.as_str()),
        (3, "start commit missing@master")
    );
    let message = ErrorChain(&err).to_string();
    assert!(
        message.contains("nothing of the transaction was applied"),
        "{message}"
    );
    assert!(message.contains("missing"), "{message}");
    // Nothing applied: no repo C, no commit on A beyond its first.
    assert!(e.store.inspect_repo(&RepoRef::new("C").unwrap()).is_err());
    let a = RepoRef::new("A").unwrap();
    assert!(e.store.list_commits(&a, None, 0).unwrap().is_empty());
    // The transaction stays, to fix or delete.
    assert_eq!(e.engine.inspect_transaction(&id).unwrap().requests.len(), 3);
    e.engine.delete_transaction(&id).unwrap();
    assert!(matches!(
        e.engine.inspect_transaction(&id),
        Err(PpsError::TransactionNotFound(_))
    ));
}

#[test]
fn a_repo_gets_one_commit_per_transaction() {
    let e = env();
    e.repo("A");
    let (_, done) = transact(&e.engine, vec![start("A"), finish("A"), start("A")]);
    let err = done.unwrap_err();
    let message = ErrorChain(&err).to_string();
    assert!(
        message.contains("request 3 (start commit A@master)"),
        "{message}"
    );
    assert!(
        message.contains("already has a commit in this transaction"),
        "{message}"
    );
}

#[test]
fn an_update_inside_a_transaction_is_refused() {
    let e = cross_env();
    let update = CROSS.replace(
        "pipeline: {name: pairs}",
        "pipeline: {name: pairs}\nupdate: true\nreprocess_spec: every_job",
    );
    let (_, done) = transact(&e.engine, vec![create_pipeline(&update)]);
    let message = ErrorChain(&done.unwrap_err()).to_string();
    assert!(message.contains("inside a transaction"), "{message}");
    assert_eq!(e.engine.inspect_pipeline("pairs").unwrap().version, 1);
    // A create of a pipeline that exists with another spec is refused as outside one.
    let other = CROSS.replace("glob: /*}}, {pfs", "glob: /}}, {pfs");
    let (_, done) = transact(&e.engine, vec![create_pipeline(&other)]);
    assert!(matches!(
        done.unwrap_err(),
        PpsError::TransactionRequest { source, .. } if matches!(*source, PpsError::PipelineExists(_))
    ));
}

#[test]
fn requests_are_checked_when_queued() {
    let e = env();
    let id = e.engine.start_transaction().unwrap().id;
    let bad_branch = TransactionRequest::StartCommit {
        branch: "no spaces@master".into(),
        description: String::new(),
    };
    let err = e
        .engine
        .append_transaction_request(&id, bad_branch)
        .unwrap_err();
    assert!(
        ErrorChain(&err).to_string().contains("start_commit.branch"),
        "{err}"
    );
    let bad_spec = create_pipeline(
        "pipeline: {name: p}\ntransform: {cmd: [sh]}\ninput: {pfs: {repo: A, glob: '['}}\n",
    );
    let err = e
        .engine
        .append_transaction_request(&id, bad_spec)
        .unwrap_err();
    assert!(matches!(err, PpsError::InvalidSpec { .. }), "{err:?}");
    let err = e
        .engine
        .append_transaction_request(&"0".repeat(32), start("A"))
        .unwrap_err();
    assert!(matches!(err, PpsError::TransactionNotFound(_)), "{err:?}");
    let err = e.engine.inspect_transaction("not-an-id").unwrap_err();
    assert!(matches!(err, PpsError::Usage(_)), "{err:?}");
    assert!(
        e.engine
            .inspect_transaction(&id)
            .unwrap()
            .requests
            .is_empty()
    );
}

#[test]
fn transactions_survive_a_reopen_and_finish_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let id = {
        let e = Env::with_engine(
            tempfile::tempdir().unwrap(),
            pipeline_core::pps::Engine::builder(pipeline_core::pfs::Store::open(&root).unwrap())
                .build()
                .unwrap(),
        );
        e.repo("A");
        let id = e.engine.start_transaction().unwrap().id;
        e.engine
            .append_transaction_request(&id, start("A"))
            .unwrap();
        id
    };
    let store = pipeline_core::pfs::Store::open(&root).unwrap();
    let engine = pipeline_core::pps::Engine::builder(store.clone())
        .build()
        .unwrap();
    assert_eq!(engine.list_transactions().unwrap()[0].id, id);
    let done = block_on(engine.finish_transaction(&id)).unwrap();
    let set = CommitId::parse(done.commit_set.as_deref().unwrap()).unwrap();
    let c = store
        .inspect_commit(&RepoRef::new("A").unwrap().commit(&set))
        .unwrap();
    assert!(!c.is_finished());
}
