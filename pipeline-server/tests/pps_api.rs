//! The pipeline API through the client: pipelines, jobs (prefix IDs, wait, stop from a second
//! client), datums, logs (read and follow), secrets, previews; over a real store and the
//! process executor, in process (as `pipectl`'s embedded mode).

use std::sync::Arc;
use std::time::{Duration, Instant};

use executor_process::ProcessExecutor;
use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
use pipeline_core::pps::{Engine, JobInfo, JobState};
use pipeline_server::routes::datums::{LocalInput, PreviewDatums, PreviewLine};
use pipeline_server::routes::pipelines::CreatePipelines;
use pipeline_server::{AppState, Client, ClientError, ErrorKind, JobRunner};

struct Env {
    _dir: tempfile::TempDir,
    engine: Engine,
    client: Client,
}

/// A store with repo `data` holding `/a.txt` and `/b.txt`, and an in-process client.
fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap();
    let data = RepoRef::new("data").unwrap();
    store.create_repo(&data, "").unwrap();
    let c = store
        .start_commit(&data.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    store.put_file_bytes(&c, "/a.txt", b"hello").unwrap();
    store.put_file_bytes(&c, "/b.txt", b"world").unwrap();
    store.finish_commit(&c, FinishOptions::default()).unwrap();
    let client = Client::in_process(AppState::new(engine.clone(), JobRunner::OnWait, true));
    Env {
        _dir: dir,
        engine,
        client,
    }
}

fn spec(name: &str, cmd: &str) -> CreatePipelines {
    CreatePipelines {
        spec: format!(
            "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh, -c, '{cmd}']}}\ninput: {{pfs: {{repo: data, glob: /*}}}}\n"
        ),
        source_name: format!("{name}.yaml"),
        ..Default::default()
    }
}

fn api_kind(e: &ClientError) -> ErrorKind {
    match e {
        ClientError::Api { kind, .. } => *kind,
        other => panic!("not an API error: {other}"),
    }
}

/// The pipeline's only job.
async fn only_job(c: &Client, pipeline: &str) -> JobInfo {
    let jobs = c.list_jobs(Some(pipeline)).await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_run_list_inspect_datums_logs() {
    let e = env();
    let c = &e.client;
    let written = c
        .create_pipelines(&spec(
            "up",
            "echo processing $data; tr a-z A-Z < $data > /pfs/out/${data##*/}",
        ))
        .await
        .unwrap();
    assert_eq!(written.pipelines[0].name, "up");
    assert_eq!(written.commit_sets.len(), 1);
    let jobs = c.wait_commit_set(&written.commit_sets[0]).await.unwrap();
    assert_eq!(jobs[0].state, JobState::JobSuccess, "{jobs:?}");
    assert_eq!(c.list_pipelines().await.unwrap().len(), 1);
    assert_eq!(c.inspect_pipeline("up").await.unwrap().version, 1);
    let job = only_job(c, "up").await;
    assert_eq!(job.id, written.commit_sets[0]);
    assert!(job.started_ms.is_some() && job.finished_ms.is_some());
    let j = c.inspect_job("up", &job.id).await.unwrap();
    assert_eq!(j.stats.datums_processed, 2);
    let datums = c.list_datums("up", &job.id).await.unwrap();
    assert_eq!(datums.len(), 2);
    let d = c
        .inspect_datum("up", &job.id, &datums[0].id[..10])
        .await
        .unwrap();
    assert_eq!(d.id, datums[0].id);
    let mut lines = c.logs("up", None, None, false).await.unwrap();
    let mut messages = Vec::new();
    while let Some(l) = lines.next().await.unwrap() {
        messages.push(l.message);
    }
    messages.sort();
    assert_eq!(
        messages,
        ["processing /pfs/data/a.txt", "processing /pfs/data/b.txt"]
    );
    // wait for the commit's jobs: data@master is the set's input commit.
    let set = c.wait_commit("up@master").await.unwrap();
    assert_eq!(set.commit_set, job.id);
    assert_eq!(set.jobs.len(), 1);
    // delete
    c.delete_pipeline("up", false).await.unwrap();
    let gone = c.inspect_pipeline("up").await.unwrap_err();
    assert_eq!(api_kind(&gone), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_400_listing_every_problem_and_unknown_executors_are_named() {
    let e = env();
    let c = &e.client;
    let mut bad = spec("p", "true");
    bad.spec = "pipeline: {name: p}\ntransform: {cmd: [sh]}\ninput:\n  cross:\n  - pfs: {repo: data, glob: '/['}\n  - pfs: {repo: data, name: d2, glob: '/[', bogus: 1}\n".into();
    let err = c.create_pipelines(&bad).await.unwrap_err();
    assert_eq!(api_kind(&err), ErrorKind::Invalid);
    let msg = err.to_string();
    assert!(msg.contains("p.yaml: 6:45:"), "{msg}");
    assert!(msg.contains("bogus"), "{msg}");
    let mut bad = spec("p", "true");
    bad.spec = "pipeline: {name: p}\ntransform: {cmd: [sh]}\ninput:\n  cross:\n  - pfs: {repo: data, glob: '/['}\n  - pfs: {repo: data, name: d2, glob: '/['}\n".into();
    let msg = c.create_pipelines(&bad).await.unwrap_err().to_string();
    assert!(msg.contains("input.cross[0].pfs.glob"), "{msg}");
    assert!(msg.contains("input.cross[1].pfs.glob"), "{msg}");
    let mut docker = spec("p", "true");
    docker.executor = Some("docker".into());
    let err = c.create_pipelines(&docker).await.unwrap_err();
    assert_eq!(api_kind(&err), ErrorKind::Invalid);
    assert!(err.to_string().contains("executor \"docker\""), "{err}");
    assert!(c.list_pipelines().await.unwrap().is_empty());
    // dry run: nothing is created
    let planned = c.dry_run_pipelines(&spec("p", "true")).await.unwrap();
    assert_eq!((planned[0].name.as_str(), planned[0].workers), ("p", 1));
    assert!(c.list_pipelines().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_client_stops_the_job_another_request_waits_on() {
    let e = env();
    let c = e.client.clone();
    let mut slow = spec("slow", "sleep 60");
    slow.spec = slow.spec.replace("glob: /*", "glob: /");
    c.create_pipelines(&slow).await.unwrap();
    let job = only_job(&c, "slow").await;
    let t0 = Instant::now();
    let waiting = tokio::spawn({
        let c = c.clone();
        let id = job.id.clone();
        async move { c.wait_job("slow", &id).await }
    });
    let second = e.client.clone();
    while second.inspect_job("slow", &job.id).await.unwrap().state != JobState::JobRunning {
        assert!(t0.elapsed() < Duration::from_secs(30), "the job never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.stop_job("slow", &job.id[..8]).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the wait did not end after the stop")
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, JobState::JobKilled, "{ended:?}");
    assert!(t0.elapsed() < Duration::from_secs(40));
    let again = second.stop_job("slow", &job.id).await.unwrap_err();
    assert_eq!(api_kind(&again), ErrorKind::Conflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn following_logs_streams_lines_stored_later_and_ends_with_the_job() {
    let e = env();
    let c = &e.client;
    let mut p = spec("talk", "echo first $data; sleep 1; echo second $data");
    p.spec = p.spec.replace("glob: /*", "glob: /");
    c.create_pipelines(&p).await.unwrap();
    let job = only_job(c, "talk").await;
    assert!(!job.state.is_terminal());
    // Nothing is stored yet: every line arrives after the request started.
    let mut lines = c.logs("talk", Some(&job.id), None, true).await.unwrap();
    let read = async {
        let mut got = Vec::new();
        while let Some(l) = lines.next().await.unwrap() {
            got.push(l.message);
        }
        got
    };
    let got = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("follow did not end with the job");
    assert_eq!(got, ["first /pfs/data", "second /pfs/data"], "{got:?}");
    let j = c.inspect_job("talk", &job.id).await.unwrap();
    assert_eq!(j.state, JobState::JobSuccess);
    let err = match c.logs("talk", None, Some("x"), false).await {
        Err(e) => e,
        Ok(_) => panic!("datum without job accepted"),
    };
    assert_eq!(api_kind(&err), ErrorKind::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_id_prefixes_unique_ambiguous_and_too_short() {
    let e = env();
    let c = &e.client;
    c.create_pipelines(&spec("p", "true")).await.unwrap();
    let job = only_job(c, "p").await;
    let got = c.inspect_job("p", &job.id[..8]).await.unwrap();
    assert_eq!(got.id, job.id);
    let short = c.inspect_job("p", &job.id[..7]).await.unwrap_err();
    assert_eq!(api_kind(&short), ErrorKind::Invalid);
    assert!(short.to_string().contains("too short"), "{short}");
    // Two jobs sharing a prefix (records written directly: IDs are random).
    let twins = [
        "deadbeef00000000000000000000000a",
        "deadbeef00000000000000000000000b",
    ];
    let writes = twins
        .iter()
        .map(|id| {
            let mut j = job.clone();
            j.id = id.to_string();
            (
                format!("J/p/{id}").into_bytes(),
                Some(serde_json::to_vec(&j).unwrap()),
            )
        })
        .collect();
    e.engine.store().engine_write(writes).unwrap();
    let amb = c.inspect_job("p", "deadbeef").await.unwrap_err();
    assert_eq!(api_kind(&amb), ErrorKind::Invalid);
    let msg = amb.to_string();
    assert!(msg.contains("ambiguous"), "{msg}");
    assert!(msg.contains(&format!("p@{}", twins[0])), "{msg}");
    assert!(msg.contains(&format!("p@{}", twins[1])), "{msg}");
    assert_eq!(
        c.inspect_job("p", "deadbeef0000000000000000000000")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    let none = c.inspect_job("p", "0123456789abcdef").await.unwrap_err();
    assert_eq!(api_kind(&none), ErrorKind::NotFound);
    let datums = c.list_datums("p", &job.id[..10]).await;
    assert!(datums.is_ok(), "{datums:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_previews() {
    let e = env();
    let c = &e.client;
    let manifest =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api}\nstringData: {token: s3cret-value}\n";
    let s = c.create_secret(manifest).await.unwrap();
    assert_eq!(s.keys, ["token"]);
    let again = c.create_secret(manifest).await.unwrap_err();
    assert_eq!(api_kind(&again), ErrorKind::Conflict);
    let listed = serde_json::to_string(&c.list_secrets().await.unwrap()).unwrap();
    assert!(!listed.contains("s3cret"), "{listed}");
    assert_eq!(c.inspect_secret("api").await.unwrap().name, "api");
    c.delete_secret("api").await.unwrap();
    assert_eq!(
        api_kind(&c.inspect_secret("api").await.unwrap_err()),
        ErrorKind::NotFound
    );
    // A preview over the store's `data` and a local directory for `more`.
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("x"), "1").unwrap();
    let req = PreviewDatums {
        spec: "pipeline: {name: p}\ntransform: {cmd: [sh]}\ninput:\n  cross:\n  - pfs: {repo: data, glob: /*}\n  - pfs: {repo: more, glob: /*}\n".into(),
        source_name: "p.yaml".into(),
        inputs: vec![LocalInput {
            repo: "more".into(),
            dir: local.path().display().to_string(),
        }],
        files: true,
    };
    let mut lines = c.preview_datums(&req).await.unwrap();
    let mut datums = Vec::new();
    while let Some(l) = lines.next().await.unwrap() {
        if let PreviewLine::Datum(d) = l {
            datums.push(d);
        }
    }
    assert_eq!(datums.len(), 2);
    assert_eq!(
        datums[0].files.as_deref().unwrap(),
        ["/pfs/data/a.txt", "/pfs/more/x"]
    );
    let mut missing = req.clone();
    missing.inputs.clear();
    let err = match c.preview_datums(&missing).await {
        Err(e) => e,
        Ok(_) => panic!("preview without data for `more` accepted"),
    };
    assert_eq!(api_kind(&err), ErrorKind::Invalid);
    assert!(
        err.to_string()
            .contains("input.cross[1].pfs.repo: no data for repo \"more\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datum_pages_and_failed_only_reruns() {
    use pipeline_core::pps::{DatumQuery, DatumReason, DatumState, RerunMode};
    let e = env();
    let c = &e.client;
    let written = c
        .create_pipelines(&spec(
            "half",
            "case $data in */b.txt) exit 3;; esac; cp $data /pfs/out/",
        ))
        .await
        .unwrap();
    let first = c.wait_commit_set(&written.commit_sets[0]).await.unwrap();
    assert_eq!(first[0].state, JobState::JobFailure, "{first:?}");
    let first = &first[0].id;

    // Pages: the failed datum first; a cursor; one state; a prefix of the job ID.
    let page = c
        .datum_page(
            "half",
            first,
            &DatumQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.datums.len(), 1);
    assert_eq!(page.datums[0].state, DatumState::Failed);
    assert_eq!(page.datums[0].inputs[0].path, "/b.txt");
    let rest = DatumQuery {
        after: page.next.clone(),
        ..Default::default()
    };
    let rest = c.datum_page("half", &first[..10], &rest).await.unwrap();
    assert_eq!(rest.datums.len(), 1);
    assert_eq!(rest.datums[0].state, DatumState::Success);
    assert_eq!(rest.next, None);
    let only = DatumQuery {
        state: Some(DatumState::Success),
        ..Default::default()
    };
    let only = c.datum_page("half", first, &only).await.unwrap();
    assert_eq!(only.datums, rest.datums);
    let bad = DatumQuery {
        after: Some("not a cursor".into()),
        ..Default::default()
    };
    let err = c.datum_page("half", first, &bad).await.unwrap_err();
    assert_eq!(api_kind(&err), ErrorKind::Invalid);
    let err = c
        .datum_page("nope", first, &DatumQuery::default())
        .await
        .unwrap_err();
    assert_eq!(api_kind(&err), ErrorKind::NotFound);

    // A failed-only rerun reuses /a from the failed job; /b runs (and fails) again.
    let info = c
        .rerun_pipeline("half", RerunMode::FailedOnly)
        .await
        .unwrap();
    assert_eq!(info.version, 2);
    let set = c.wait_commit("half@master").await.unwrap();
    let second = &set.jobs[0];
    assert_eq!(second.salvage_from.as_deref(), Some(first.as_str()));
    let skipped = DatumQuery {
        state: Some(DatumState::Skipped),
        ..Default::default()
    };
    let skipped = c.datum_page("half", &second.id, &skipped).await.unwrap();
    assert_eq!(skipped.datums.len(), 1, "{skipped:?}");
    assert_eq!(skipped.datums[0].inputs[0].path, "/a.txt");
    assert_eq!(
        skipped.datums[0].reason,
        DatumReason::Unchanged {
            from_job: first.clone()
        }
    );

    // `all` runs both again.
    assert_eq!(
        c.rerun_pipeline("half", RerunMode::All)
            .await
            .unwrap()
            .version,
        3
    );
    let set = c.wait_commit("half@master").await.unwrap();
    assert_eq!(set.jobs[0].stats.datums_skipped, 0, "{:?}", set.jobs);
    assert_eq!(set.jobs[0].stats.datums_processed, 1);
    let err = c.rerun_pipeline("nope", RerunMode::All).await.unwrap_err();
    assert_eq!(api_kind(&err), ErrorKind::NotFound);
}
