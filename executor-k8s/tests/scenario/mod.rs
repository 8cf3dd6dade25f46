//! Reference §2.15 driven through the engine API (`pipeline_core::pps::Engine`), with any
//! executor: the same steps and assertions as `pipeline-core/tests/pps_incremental.rs`, made
//! async so that one runtime (and so one Kubernetes client) serves the whole scenario.
//!
//! `tests/engine_2_15.rs` runs it with the process executor (always) and with
//! [`executor_k8s::K8sExecutor`] (when `KUBECONFIG` points at a cluster).
#![allow(dead_code, missing_docs)]

use std::sync::Arc;

use pipeline_core::executor::Executor;
use pipeline_core::pfs::{CommitRef, FinishOptions, RepoRef, Store};
use pipeline_core::pps::{
    CreateOptions, DatumFailure, DatumReason, DatumState, Engine, JobInfo, JobState, PipelineInfo,
};

/// The pipeline of reference §2.15: one datum per top-level file of `A`, each writing
/// `/pfs/out/<basename>.out` (content and `$VERSION`).
pub const P: &str = r#"
pipeline: {name: p}
transform:
  cmd: [sh]
  stdin:
    - 'for f in /pfs/A/*; do b=$(basename $f); { cat $f; echo " $VERSION"; } > /pfs/out/$b.out; done'
  env: {VERSION: v1}
input: {pfs: {repo: A, glob: /*}}
"#;

/// Every datum writes the same fixed path.
pub const DUP: &str = r#"
pipeline: {name: p}
transform: {cmd: [sh, -c, 'echo x > /pfs/out/result']}
input: {pfs: {repo: A, glob: /*}}
"#;

/// A store in a temp dir and an engine over it with one executor.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub engine: Engine,
    /// Set as `transform.image` of every pipeline created (the process executor ignores it).
    pub image: Option<String>,
}

impl Env {
    pub fn new(executor: Arc<dyn Executor>, image: Option<String>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let engine = Engine::builder(store.clone())
            .executor(executor)
            .build()
            .unwrap();
        Env {
            dir,
            store,
            engine,
            image,
        }
    }

    pub fn repo(&self, name: &str) {
        self.store
            .create_repo(&RepoRef::new(name).unwrap(), "")
            .unwrap();
    }

    /// One commit to `repo@master`: deletes then puts.
    pub fn commit(&self, repo: &str, deletes: &[&str], puts: &[(&str, &str)]) -> CommitRef {
        let b = RepoRef::new(repo).unwrap().branch("master").unwrap();
        let c = self.store.start_commit(&b, "").unwrap().commit;
        for d in deletes {
            self.store.delete_file(&c, d).unwrap();
        }
        for (p, content) in puts {
            self.store
                .put_file_bytes(&c, p, content.as_bytes())
                .unwrap();
        }
        self.store
            .finish_commit(&c, FinishOptions::default())
            .unwrap();
        c
    }

    pub fn create(&self, yaml: &str) -> PipelineInfo {
        self.create_with(yaml, CreateOptions::default())
    }

    pub fn create_with(&self, yaml: &str, opts: CreateOptions) -> PipelineInfo {
        let mut parsed = pipeline_core::spec::parse_str(yaml, "test.yaml").unwrap();
        if let Some(image) = &self.image {
            for p in &mut parsed {
                if let Some(t) = p.spec.transform.as_mut() {
                    t.image = Some(image.clone());
                }
            }
        }
        self.engine
            .create_pipelines(&parsed, &opts)
            .unwrap()
            .remove(0)
    }

    /// Runs every pending job. Warm workers stay up between calls, as in a long-lived host
    /// (so a Kubernetes pod serves several jobs of one pipeline version).
    pub async fn run(&self) -> Vec<JobInfo> {
        self.engine.run_pending().await.unwrap()
    }

    /// `path → content` of a commit's tree.
    pub fn tree(&self, commit: &CommitRef) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in self.store.list_file_recursive(commit, "/").unwrap() {
            let f = f.unwrap();
            let mut buf = Vec::new();
            let (_, mut r) = self.store.get_file(commit, &f.path).unwrap();
            std::io::Read::read_to_end(&mut r, &mut buf).unwrap();
            out.push((f.path, String::from_utf8_lossy(&buf).into_owned()));
        }
        out
    }

    pub fn head_tree(&self, repo: &str) -> Vec<(String, String)> {
        let c = self
            .store
            .resolve_commit(&RepoRef::new(repo).unwrap(), "master")
            .unwrap();
        self.tree(&c)
    }
}

pub fn t(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Reference §2.15 step by step (the engine's `pps_incremental` test, with `.await`). Leaves
/// pipeline `p` at version 5 with its workers warm; [`delete_p`] removes it.
pub async fn scenario_2_15(e: &Env) {
    e.repo("A");
    e.commit("A", &[], &[("/a", "a"), ("/b", "b")]);
    // create P: job 1, 2 processed
    e.create(P);
    let jobs = e.run().await;
    assert_eq!(jobs.len(), 1);
    let j1 = &jobs[0];
    assert_eq!(j1.state, JobState::JobSuccess, "{}", j1.reason);
    assert_eq!((j1.stats.datums_total, j1.stats.datums_processed), (2, 2));
    assert_eq!(
        e.head_tree("p"),
        t(&[("/a.out", "a v1\n"), ("/b.out", "b v1\n")])
    );

    // change /b, add /c, delete /a: processed 2, skipped 0, total 2
    e.commit("A", &["/a"], &[("/b", "B"), ("/c", "c")]);
    let jobs = e.run().await;
    assert_eq!(jobs.len(), 1);
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
        t(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );
    let mut reasons: Vec<_> = e
        .engine
        .list_datums("p", &j2.id)
        .unwrap()
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

    // empty commit: total 2, skipped 2
    e.commit("A", &[], &[]);
    let j3 = e.run().await.remove(0);
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
        t(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
    );
    let skipped = e.engine.list_datums("p", &j3.id).unwrap();
    assert!(skipped.iter().all(|d| d.state == DatumState::Skipped
        && d.reason
            == DatumReason::Unchanged {
                from_job: j2.id.clone()
            }));

    // update without reprocess (new code): all skipped, output unchanged
    let v2 = P.replace("VERSION: v1", "VERSION: v2");
    e.create_with(
        &v2,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j4 = e.run().await.remove(0);
    assert_eq!(j4.state, JobState::JobSuccess, "{}", j4.reason);
    assert_eq!(j4.version, 2);
    assert_eq!((j4.stats.datums_total, j4.stats.datums_skipped), (2, 2));
    assert_eq!(
        e.head_tree("p"),
        t(&[("/b.out", "B v1\n"), ("/c.out", "c v1\n")])
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
    let j5 = e.run().await.remove(0);
    assert_eq!(j5.state, JobState::JobSuccess, "{}", j5.reason);
    assert_eq!((j5.stats.datums_processed, j5.stats.datums_skipped), (2, 0));
    assert!(
        e.engine
            .list_datums("p", &j5.id)
            .unwrap()
            .iter()
            .all(|d| d.reason == DatumReason::SaltChanged)
    );
    assert_eq!(
        e.head_tree("p"),
        t(&[("/b.out", "B v2\n"), ("/c.out", "c v2\n")])
    );

    // a failing datum: job FAILURE, next job builds on job 5's output
    let failing = v2.replace("{ cat $f;", "[ $b != d ] || exit 3; { cat $f;");
    e.create_with(
        &failing,
        CreateOptions {
            update: true,
            ..Default::default()
        },
    );
    let j6 = e.run().await.remove(0);
    assert_eq!(j6.state, JobState::JobSuccess, "{}", j6.reason);
    assert_eq!(j6.stats.datums_skipped, 2);
    e.commit("A", &[], &[("/d", "d"), ("/e", "e")]);
    let j7 = e.run().await.remove(0);
    assert_eq!(j7.state, JobState::JobFailure);
    assert!(
        j7.reason.starts_with("datum ") && j7.reason.ends_with(" failed"),
        "{}",
        j7.reason
    );
    assert_eq!(j7.stats.datums_failed, 1);
    let failed = e
        .engine
        .list_datums("p", &j7.id)
        .unwrap()
        .into_iter()
        .find(|d| d.state == DatumState::Failed)
        .unwrap();
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
    let head = e.store.inspect_commit(&j7.output_commit).unwrap();
    assert_eq!(head.error.as_deref(), Some(j7.reason.as_str()));
    // the next job builds on the last error-free output (job 6 = job 5's content)
    e.commit("A", &["/d"], &[]);
    let j8 = e.run().await.remove(0);
    assert_eq!(j8.state, JobState::JobSuccess, "{}", j8.reason);
    assert_eq!(j8.base_job.as_deref(), Some(j6.id.as_str()));
    assert_eq!((j8.stats.datums_skipped, j8.stats.datums_processed), (2, 1));
    assert_eq!(
        e.head_tree("p"),
        t(&[
            ("/b.out", "B v2\n"),
            ("/c.out", "c v2\n"),
            ("/e.out", "e v2\n")
        ])
    );

    // fixed /pfs/out/result from every datum: FAILURE naming the path and both datums
    e.create_with(
        DUP,
        CreateOptions {
            update: true,
            reprocess: true,
            ..Default::default()
        },
    );
    let j9 = e.run().await.remove(0);
    assert_eq!(j9.state, JobState::JobFailure);
    assert!(
        j9.reason
            .starts_with("duplicate path output by different datums (/result from "),
        "{}",
        j9.reason
    );
    assert_eq!(j9.version, 5);
    assert_eq!(e.engine.list_jobs(Some("p")).unwrap().len(), 9);
}

/// Deletes pipeline `p` through the engine (which stops its workers and asks the executor to
/// remove whatever it left) and checks that its records and output repo are gone.
pub async fn delete_p(e: &Env) {
    e.engine.delete_pipeline("p", false).await.unwrap();
    assert!(e.engine.inspect_pipeline("p").is_err());
    assert!(e.engine.list_jobs(Some("p")).unwrap_or_default().is_empty());
    assert!(e.store.inspect_repo(&RepoRef::new("p").unwrap()).is_err());
    e.engine.shutdown().await;
}
