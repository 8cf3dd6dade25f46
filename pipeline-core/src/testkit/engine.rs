//! Engine-level scenarios: reference §2.15 (incremental processing) and the `err_cmd`
//! scenario, driven through [`Engine`] with whatever executor it was built with.
//!
//! The engine's own tests run them with the process executor; every executor crate runs the
//! same functions with its backend, so one copy of the steps and assertions serves them all.
//! Build the engine as the backend needs it (a store in a temp dir, the executor, maybe a
//! scratch directory), wrap it in an [`EngineEnv`], then call the scenarios. Each step panics
//! with a message naming what went wrong, like `assert!`.
//!
//! ```no_run
//! # async fn demo(engine: pipeline_core::pps::Engine) {
//! use pipeline_core::testkit::engine::{self, EngineEnv};
//!
//! let e = EngineEnv::new(engine).image("busybox:1.36"); // the image, if the backend uses one
//! engine::run_all(&e).await; // or the scenarios one by one
//! // ... backend-specific checks of what the pipelines left running ...
//! engine::delete_all(&e).await;
//! # }
//! ```
//!
//! The scenarios create repos `A` and `in` and pipelines `p` and `errs` ([`PIPELINES`]), so
//! each may run once per engine. User code only needs busybox applets (`sh`, `cat`, `cp`,
//! `echo`, `basename`, `test`, `true`).

use crate::pfs::{CommitRef, FinishOptions, RepoRef, Store};
use crate::pps::{
    CreateOptions, DatumFailure, DatumInfo, DatumReason, DatumState, Engine, JobInfo, JobState,
    PipelineInfo,
};

/// The pipeline of reference §2.15: one datum per top-level file of `A`, each writing
/// `/pfs/out/<basename>.out` (its content and `$VERSION`).
const P: &str = r#"
pipeline: {name: p}
transform:
  cmd: [sh]
  stdin:
    - 'for f in /pfs/A/*; do b=$(basename $f); { cat $f; echo " $VERSION"; } > /pfs/out/$b.out; done'
  env: {VERSION: v1}
input: {pfs: {repo: A, glob: /*}}
"#;

/// Every datum of `A` writes the same fixed path.
const DUP: &str = r#"
pipeline: {name: p}
transform: {cmd: [sh, -c, 'echo x > /pfs/out/result']}
input: {pfs: {repo: A, glob: /*}}
"#;

/// Datum `/file1` succeeds, `/file2` fails, `/file3` fails and is recovered by `err_cmd`.
const ERRS: &str = r#"
pipeline: {name: errs}
transform:
  cmd: [sh, -c, 'test "$in" = /pfs/in/file1 && cp $in /pfs/out/']
  err_cmd: [sh, -c, 'test "$in" = /pfs/in/file3']
datum_tries: 2
input: {pfs: {repo: in, glob: /*}}
"#;

/// The `errs` pipeline with code that succeeds on every datum.
const ERRS_FIXED: &str = r#"
pipeline: {name: errs}
transform: {cmd: [sh, -c, 'cp $in /pfs/out/']}
input: {pfs: {repo: in, glob: /*}}
"#;

/// The pipelines [`run_all`] creates, each with the version it is left at.
pub const PIPELINES: [(&str, u64); 2] = [("p", 5), ("errs", 3)];

/// An engine under test and helpers to drive it: commits to input repos, pipeline specs in
/// YAML, runs of pending jobs, and output trees to compare. Every helper panics on an error.
#[derive(Debug, Clone)]
pub struct EngineEnv {
    /// The engine under test.
    pub engine: Engine,
    /// The engine's store.
    pub store: Store,
    image: Option<String>,
    shutdown_after_run: bool,
}

impl EngineEnv {
    /// Drives `engine`. Defaults: specs are used as written (no image), and warm workers stay
    /// up between runs, as in a long-lived host.
    pub fn new(engine: Engine) -> Self {
        let store = engine.store().clone();
        EngineEnv {
            engine,
            store,
            image: None,
            shutdown_after_run: false,
        }
    }

    /// Sets `transform.image` of every pipeline [`EngineEnv::create_with`] creates (for
    /// backends that run containers; the image must provide the busybox applets listed in the
    /// module docs).
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Whether [`EngineEnv::run`] stops every warm worker after the jobs (default false), so
    /// that each run starts its workers afresh.
    pub fn shutdown_after_run(mut self, on: bool) -> Self {
        self.shutdown_after_run = on;
        self
    }

    /// Creates input repo `name`.
    pub fn repo(&self, name: &str) {
        let repo = repo_ref(name);
        if let Err(err) = self.store.create_repo(&repo, "") {
            panic!("create_repo({name}): {err}");
        }
    }

    /// One finished commit to `repo@master`: `deletes` first, then `puts` (path, content).
    pub fn commit(&self, repo: &str, deletes: &[&str], puts: &[(&str, &str)]) -> CommitRef {
        let branch = repo_ref(repo)
            .branch("master")
            .unwrap_or_else(|err| panic!("branch {repo}@master: {err}"));
        let c = self
            .store
            .start_commit(&branch, "")
            .unwrap_or_else(|err| panic!("start_commit({repo}@master): {err}"))
            .commit;
        for d in deletes {
            if let Err(err) = self.store.delete_file(&c, d) {
                panic!("delete_file({repo}, {d}): {err}");
            }
        }
        for (p, content) in puts {
            if let Err(err) = self.store.put_file_bytes(&c, p, content.as_bytes()) {
                panic!("put_file({repo}, {p}): {err}");
            }
        }
        if let Err(err) = self.store.finish_commit(&c, FinishOptions::default()) {
            panic!("finish_commit({repo}): {err}");
        }
        c
    }

    /// Creates the pipeline of a one-document YAML spec.
    pub fn create(&self, yaml: &str) -> PipelineInfo {
        self.create_with(yaml, CreateOptions::default())
    }

    /// Creates (or, with `opts.update`, updates) the pipeline of a one-document YAML spec,
    /// with [`EngineEnv::image`] set as its `transform.image`.
    pub fn create_with(&self, yaml: &str, opts: CreateOptions) -> PipelineInfo {
        let mut parsed = crate::spec::parse_str(yaml, "test.yaml")
            .unwrap_or_else(|err| panic!("parsing spec {yaml}: {err}"));
        if let Some(image) = &self.image {
            for p in &mut parsed {
                if let Some(t) = p.spec.transform.as_mut() {
                    t.image = Some(image.clone());
                }
            }
        }
        let mut created = self
            .engine
            .create_pipelines(&parsed, &opts)
            .unwrap_or_else(|err| panic!("create_pipelines {yaml}: {err}"));
        if created.is_empty() {
            panic!("create_pipelines {yaml}: no pipeline created");
        }
        created.remove(0)
    }

    /// Runs every pending job ([`Engine::run_pending`]) and returns them in order, then stops
    /// the warm workers if [`EngineEnv::shutdown_after_run`] is on.
    pub async fn run(&self) -> Vec<JobInfo> {
        let jobs = self
            .engine
            .run_pending()
            .await
            .unwrap_or_else(|err| panic!("run_pending: {err}"));
        if self.shutdown_after_run {
            self.engine.shutdown().await;
        }
        jobs
    }

    /// Like [`EngineEnv::run`], for exactly one job.
    pub async fn run_one(&self) -> JobInfo {
        let mut jobs = self.run().await;
        if jobs.len() != 1 {
            panic!("expected one job, ran {}: {jobs:?}", jobs.len());
        }
        jobs.remove(0)
    }

    /// `(path, content)` of every file of a commit, in path order.
    pub fn tree(&self, commit: &CommitRef) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let files = self
            .store
            .list_file_recursive(commit, "/")
            .unwrap_or_else(|err| panic!("list_file_recursive({commit:?}): {err}"));
        for f in files {
            let f = f.unwrap_or_else(|err| panic!("listing {commit:?}: {err}"));
            let mut buf = Vec::new();
            let (_, mut r) = self
                .store
                .get_file(commit, &f.path)
                .unwrap_or_else(|err| panic!("get_file({commit:?}, {}): {err}", f.path));
            if let Err(err) = std::io::Read::read_to_end(&mut r, &mut buf) {
                panic!("reading {}: {err}", f.path);
            }
            out.push((f.path, String::from_utf8_lossy(&buf).into_owned()));
        }
        out
    }

    /// [`EngineEnv::tree`] of the head of `repo@master`.
    pub fn head_tree(&self, repo: &str) -> Vec<(String, String)> {
        let c = self
            .store
            .resolve_commit(&repo_ref(repo), "master")
            .unwrap_or_else(|err| panic!("resolve_commit({repo}@master): {err}"));
        self.tree(&c)
    }

    /// The datums of a job.
    pub fn datums(&self, pipeline: &str, job: &str) -> Vec<DatumInfo> {
        self.engine
            .list_datums(pipeline, job)
            .unwrap_or_else(|err| panic!("list_datums({pipeline}, {job}): {err}"))
    }

    /// The jobs of a pipeline.
    pub fn jobs(&self, pipeline: &str) -> Vec<JobInfo> {
        self.engine
            .list_jobs(Some(pipeline))
            .unwrap_or_else(|err| panic!("list_jobs({pipeline}): {err}"))
    }
}

fn repo_ref(name: &str) -> RepoRef {
    RepoRef::parse(name).unwrap_or_else(|err| panic!("repo name {name}: {err}"))
}

/// A tree as [`EngineEnv::tree`] returns it, from `(path, content)` pairs.
pub fn files(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Reference §2.15 step by step, checking job states, datum counts, datum states and reasons,
/// and output trees at every step:
///
/// 1. repo `A` with `/a`, `/b`; pipeline `p` (glob `/*`, each datum writes
///    `/pfs/out/<basename>.out`): job 1 processes 2;
/// 2. change `/b`, add `/c`, delete `/a`: 2 processed (reasons changed, new), 0 skipped;
/// 3. an empty commit: 2 skipped, unchanged from job 2;
/// 4. update with new code, no reprocess: version 2, all skipped, output unchanged;
/// 5. update with reprocess: 2 processed (salt changed), output rewritten;
/// 6. a datum failing with exit code 3: job FAILURE after 3 attempts, its successful datums
///    in the errored output commit, the branch head errored; the next job builds on the last
///    error-free output;
/// 7. two datums writing `/result`: FAILURE naming the path; 9 jobs in all.
///
/// Leaves pipeline `p` at version 5 (with its workers warm unless
/// [`EngineEnv::shutdown_after_run`]); [`delete_pipeline`] removes it.
pub async fn scenario_2_15(e: &EngineEnv) {
    let j2 = create_and_change(e).await;
    empty_commit_skips_all(e, &j2).await;
    let v2 = update_with_and_without_reprocess(e).await;
    failing_datum_keeps_last_good_base(e, &v2).await;
    duplicate_output_fails_the_job(e).await;
}

/// §2.15 steps 1–2: create `p` over `/a`, `/b`; then change, add and delete. Returns job 2.
async fn create_and_change(e: &EngineEnv) -> JobInfo {
    e.repo("A");
    e.commit("A", &[], &[("/a", "a"), ("/b", "b")]);
    // create P: job 1, 2 processed
    e.create(P);
    let jobs = e.run().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let j1 = &jobs[0];
    assert_eq!(j1.state, JobState::JobSuccess, "{}", j1.reason);
    assert_eq!((j1.stats.datums_total, j1.stats.datums_processed), (2, 2));
    assert_eq!(
        e.head_tree("p"),
        files(&[("/a.out", "a v1\n"), ("/b.out", "b v1\n")])
    );

    // change /b, add /c, delete /a: processed 2, skipped 0, total 2
    e.commit("A", &["/a"], &[("/b", "B"), ("/c", "c")]);
    let jobs = e.run().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let j2 = &jobs[0];
    assert_eq!(j2.state, JobState::JobSuccess, "{}", j2.reason);
    assert_eq!(j2.base_job.as_deref(), Some(j1.id.as_str()));
    let s = &j2.stats;
    assert_eq!(
        (s.datums_total, s.datums_processed, s.datums_skipped),
        (2, 2, 0)
    );
    assert_eq!(
        e.head_tree("p"),
        files(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );
    let mut reasons: Vec<_> = e
        .datums("p", &j2.id)
        .into_iter()
        .map(|d| (d.inputs[0].path.clone(), d.reason))
        .collect();
    reasons.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        reasons,
        [
            ("/b".to_string(), DatumReason::Changed),
            ("/c".to_string(), DatumReason::New)
        ]
    );

    j2.clone()
}

/// §2.15 step 3: an empty commit skips every datum, unchanged from job 2.
async fn empty_commit_skips_all(e: &EngineEnv, j2: &JobInfo) {
    // empty commit: total 2, skipped 2
    e.commit("A", &[], &[]);
    let j3 = e.run_one().await;
    assert_eq!(j3.state, JobState::JobSuccess, "{}", j3.reason);
    assert_eq!(
        (
            j3.stats.datums_total,
            j3.stats.datums_skipped,
            j3.stats.datums_processed
        ),
        (2, 2, 0)
    );
    assert_eq!(
        e.head_tree("p"),
        files(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );
    let skipped = e.datums("p", &j3.id);
    assert!(
        skipped.iter().all(|d| d.state == DatumState::Skipped
            && d.reason
                == DatumReason::Unchanged {
                    from_job: j2.id.clone()
                }),
        "{skipped:?}"
    );
}

/// §2.15 steps 4–5: update without, then with, reprocess. Returns the v2 spec.
async fn update_with_and_without_reprocess(e: &EngineEnv) -> String {
    // update without reprocess (new code): all skipped, output unchanged
    let v2 = P.replace("VERSION: v1", "VERSION: v2");
    e.create_with(
        &v2,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j4 = e.run_one().await;
    assert_eq!(j4.state, JobState::JobSuccess, "{}", j4.reason);
    assert_eq!(j4.version, 2);
    assert_eq!((j4.stats.datums_total, j4.stats.datums_skipped), (2, 2));
    assert_eq!(
        e.head_tree("p"),
        files(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );

    // update --reprocess: new salt, 2 processed, rewritten
    e.create_with(
        &v2,
        CreateOptions {
            update: true,
            reprocess: true,
            ..Default::default()
        },
    );
    let j5 = e.run_one().await;
    assert_eq!(j5.state, JobState::JobSuccess, "{}", j5.reason);
    assert_eq!((j5.stats.datums_processed, j5.stats.datums_skipped), (2, 0));
    let datums = e.datums("p", &j5.id);
    assert!(
        datums.iter().all(|d| d.reason == DatumReason::SaltChanged),
        "{datums:?}"
    );
    assert_eq!(
        e.head_tree("p"),
        files(&[("/b.out", "B v2\n"), ("/c.out", "c v2\n")])
    );

    v2
}

/// §2.15 step 6: a datum failing with exit code 3 fails the job; the next job builds on the
/// last error-free output.
async fn failing_datum_keeps_last_good_base(e: &EngineEnv, v2: &str) {
    // a failing datum: job FAILURE, next job builds on job 5's output
    let failing = v2.replace("{ cat $f;", "[ $b != d ] || exit 3; { cat $f;");
    e.create_with(
        &failing,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j6 = e.run_one().await;
    assert_eq!(j6.state, JobState::JobSuccess, "{}", j6.reason);
    assert_eq!(j6.stats.datums_skipped, 2);
    e.commit("A", &[], &[("/d", "d"), ("/e", "e")]);
    let j7 = e.run_one().await;
    assert_eq!(j7.state, JobState::JobFailure);
    assert!(
        j7.reason.starts_with("datum ")
            && j7.reason.contains(" failed (exit code ")
            && j7
                .reason
                .contains(&format!("pipectl logs -p p --job {}", j7.id)),
        "{}",
        j7.reason
    );
    assert_eq!(j7.stats.datums_failed, 1);
    let datums = e.datums("p", &j7.id);
    let Some(failed) = datums.iter().find(|d| d.state == DatumState::Failed) else {
        panic!("no failed datum in job 7: {datums:?}");
    };
    assert_eq!(failed.inputs[0].path, "/d");
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.failure, Some(DatumFailure::ExitCode { code: 3 }));
    // the failed job keeps a browsable record of its successful datums
    let out7 = e.tree(&j7.output_commit);
    assert!(
        out7.contains(&("/e.out".to_string(), "e v2\n".to_string())),
        "{out7:?}"
    );
    // the branch head is the errored commit (reference §2.15)
    let head = e
        .store
        .inspect_commit(&j7.output_commit)
        .unwrap_or_else(|err| panic!("inspect_commit(job 7 output): {err}"));
    assert_eq!(head.error.as_deref(), Some(j7.reason.as_str()));
    // the next job builds on the last error-free output (job 6 = job 5's content)
    e.commit("A", &["/d"], &[]);
    let j8 = e.run_one().await;
    assert_eq!(j8.state, JobState::JobSuccess, "{}", j8.reason);
    assert_eq!(j8.base_job.as_deref(), Some(j6.id.as_str()));
    assert_eq!((j8.stats.datums_skipped, j8.stats.datums_processed), (2, 1));
    assert_eq!(
        e.head_tree("p"),
        files(&[
            ("/b.out", "B v2\n"),
            ("/c.out", "c v2\n"),
            ("/e.out", "e v2\n")
        ])
    );
}

/// §2.15 step 7: two datums writing `/result` fail the job naming the path; 9 jobs in all.
async fn duplicate_output_fails_the_job(e: &EngineEnv) {
    // fixed /pfs/out/result from every datum: FAILURE naming the path and both datums
    e.create_with(
        DUP,
        CreateOptions {
            update: true,
            reprocess: true,
            ..Default::default()
        },
    );
    let j9 = e.run_one().await;
    assert_eq!(j9.state, JobState::JobFailure);
    assert!(
        j9.reason
            .starts_with("duplicate path output by different datums (/result from "),
        "{}",
        j9.reason
    );
    assert_eq!(j9.version, 5);
    assert_eq!(e.jobs("p").len(), 9);
}

/// `err_cmd`: datums that fail but whose `err_cmd` succeeds are *recovered*, not failed; a
/// failed job is never the base of the next one; recovered datums are retried by the next job
/// and become processed once the code is fixed.
///
/// Repo `in` with `/file1`..`/file3`; pipeline `errs` where `/file1` succeeds, `/file2` fails
/// and `/file3` fails and is recovered (job FAILURE: 1 processed, 1 recovered, 1 failed); an
/// update making `err_cmd` always succeed (SUCCESS: 1 processed, 2 recovered, output
/// `/file1` only); an update with fixed code (2 processed with reason previous failure, 1
/// skipped, output all three files). Leaves pipeline `errs` at version 3.
pub async fn scenario_err_cmd(e: &EngineEnv) {
    e.repo("in");
    e.commit(
        "in",
        &[],
        &[("/file1", "1"), ("/file2", "2"), ("/file3", "3")],
    );
    e.create(ERRS);
    let j1 = e.run_one().await;
    assert_eq!(j1.state, JobState::JobFailure);
    let s = &j1.stats;
    assert_eq!(
        (s.datums_processed, s.datums_recovered, s.datums_failed),
        (1, 1, 1)
    );
    let recovering = ERRS.replace("'test \"$in\" = /pfs/in/file3'", "'true'");
    e.create_with(
        &recovering,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j2 = e.run_one().await;
    assert_eq!(j2.state, JobState::JobSuccess, "{}", j2.reason);
    let s = &j2.stats;
    assert_eq!(
        (s.datums_processed, s.datums_skipped, s.datums_recovered),
        (1, 0, 2)
    );
    assert_eq!(e.head_tree("errs"), files(&[("/file1", "1")]));
    // recovered datums are retried by the next job and become processed once fixed
    e.create_with(
        ERRS_FIXED,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j3 = e.run_one().await;
    assert_eq!(j3.version, 3);
    let s = &j3.stats;
    assert_eq!((s.datums_processed, s.datums_skipped), (2, 1));
    let reasons: Vec<_> = e
        .datums("errs", &j3.id)
        .into_iter()
        .filter(|d| d.state == DatumState::Success)
        .map(|d| d.reason)
        .collect();
    assert_eq!(
        reasons,
        [DatumReason::PreviousFailure, DatumReason::PreviousFailure]
    );
    assert_eq!(
        e.head_tree("errs"),
        files(&[("/file1", "1"), ("/file2", "2"), ("/file3", "3")])
    );
}

/// Deletes `pipeline` through the engine (which stops its workers and asks the executor to
/// remove whatever it left) and checks that its record, its jobs and its output repo are gone.
pub async fn delete_pipeline(e: &EngineEnv, pipeline: &str) {
    if let Err(err) = e.engine.delete_pipeline(pipeline, false).await {
        panic!("delete_pipeline({pipeline}): {err}");
    }
    assert!(
        e.engine.inspect_pipeline(pipeline).is_err(),
        "pipeline {pipeline} still there after delete_pipeline"
    );
    let jobs = e.engine.list_jobs(Some(pipeline)).unwrap_or_default();
    assert!(
        jobs.is_empty(),
        "jobs of {pipeline} still there after delete_pipeline: {jobs:?}"
    );
    assert!(
        e.store.inspect_repo(&repo_ref(pipeline)).is_err(),
        "output repo {pipeline} still there after delete_pipeline"
    );
}

/// Runs [`scenario_2_15`] then [`scenario_err_cmd`] on one engine. Leaves the
/// [`PIPELINES`] at their last versions (with their workers warm unless
/// [`EngineEnv::shutdown_after_run`]).
pub async fn run_all(e: &EngineEnv) {
    scenario_2_15(e).await;
    scenario_err_cmd(e).await;
}

/// Deletes every pipeline of [`PIPELINES`] with [`delete_pipeline`], then stops the engine's
/// remaining workers ([`Engine::shutdown`]).
pub async fn delete_all(e: &EngineEnv) {
    for (pipeline, _) in PIPELINES {
        delete_pipeline(e, pipeline).await;
    }
    e.engine.shutdown().await;
}
