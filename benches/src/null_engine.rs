//! An engine whose user code costs nothing: [`NullExecutor`] answers every datum at once (no
//! process), optionally after writing one small output file, so a job measures only what the
//! engine does per datum (plan, materialise, ingest, record). Used by the `engine_overhead`
//! criterion bench and the `engine-job` measurement (metadata growth, peak memory).

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, Worker, WorkerPoolSpec,
};
use pipeline_core::pfs::{CommitRef, FinishOptions, RepoRef, Store, StoreLocation};
use pipeline_core::pps::{CreateOptions, Engine, JobInfo};

/// Any error of a measurement.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The pipeline a null job runs.
pub const PIPELINE: &str = "null-job";
/// Its input repo.
pub const REPO: &str = "input";
/// Files per `put_files` call when loading inputs.
const PUT_CHUNK: usize = 20_000;

/// User code that returns success at once; with `output`, it first writes one 2-byte file
/// to `/pfs/out`, named after the datum (so no two datums write one path).
#[derive(Debug, Clone, Copy)]
pub struct NullExecutor {
    /// Write one output file per datum.
    pub output: bool,
}

/// One worker of [`NullExecutor`].
#[derive(Debug)]
struct NullWorker {
    index: usize,
    output: bool,
}

#[async_trait]
impl Executor for NullExecutor {
    fn name(&self) -> &'static str {
        "null"
    }

    /// Nothing runs: nothing but the engine writes in the scratch directory.
    fn keeps_inputs_read_only(&self) -> bool {
        true
    }

    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        Ok((0..spec.workers)
            .map(|index| {
                Box::new(NullWorker {
                    index,
                    output: self.output,
                }) as Box<dyn Worker>
            })
            .collect())
    }

    async fn remove_pipeline(&self, _: &str, _: &str) -> Result<usize, ExecutorError> {
        Ok(0)
    }
}

#[async_trait]
impl Worker for NullWorker {
    fn index(&self) -> usize {
        self.index
    }

    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        if self.output {
            let file = task.scratch.join("out").join(&task.datum_id[..16]);
            std::fs::write(&file, b"y\n").map_err(|e| ExecutorError::Io {
                context: format!("writing {}", file.display()),
                source: e,
            })?;
        }
        Ok(DatumOutcome::Exited { exit_code: 0 })
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        Ok(())
    }
}

/// Names the PostgreSQL database a measurement's store is made in instead of a store
/// directory (`postgres://USER:PASSWORD@HOST:PORT/DB?schema=NAME`, a fresh schema; the
/// contents then go to `DIR/objects`).
pub const STORE_VAR: &str = "BENCH_STORE";

/// The store a measurement runs on: the embedded store in `dir`, or with [`STORE_VAR`] set,
/// a new PostgreSQL store whose contents and host state are in `dir`.
pub fn bench_store(dir: &Path) -> Result<Store, BoxError> {
    let Ok(url) = std::env::var(STORE_VAR) else {
        return Ok(Store::open(dir)?);
    };
    let location = StoreLocation {
        store: url,
        objects: Some(dir.join("objects").to_string_lossy().into_owned()),
        local: dir.join("local"),
    };
    Ok(Store::init(&location)?)
}

/// A store in `dir` (see [`bench_store`]) whose repo [`REPO`] holds one finished commit of
/// `n` one-line files (`/f0000000` ...; contents all different when `distinct`, else 997
/// different ones).
pub fn store_with_inputs(dir: &Path, n: usize, distinct: bool) -> Result<Store, BoxError> {
    let store = bench_store(dir)?;
    let repo = RepoRef::new(REPO)?;
    store.create_repo(&repo, "null-engine input")?;
    let commit = store.start_commit(&repo.branch("master")?, "")?.commit;
    let mut start = 0;
    while start < n {
        let end = (start + PUT_CHUNK).min(n);
        let files = (start..end).map(|i| {
            let body = if distinct { i } else { i % 997 };
            (format!("/f{i:07}"), Cursor::new(format!("{body}\n")))
        });
        store.put_files(&commit, files)?;
        start = end;
    }
    store.finish_commit(&commit, FinishOptions::default())?;
    Ok(store)
}

/// The input commit of a store made by [`store_with_inputs`].
pub fn input_commit(store: &Store) -> Result<CommitRef, BoxError> {
    let repo = RepoRef::new(REPO)?;
    let head = store.inspect_branch(&repo.branch("master")?)?.head;
    Ok(repo.commit(&head))
}

/// An engine over `store` whose only executor is a [`NullExecutor`].
pub fn engine(store: Store, output: bool) -> Result<Engine, BoxError> {
    Ok(Engine::builder(store)
        .executor(Arc::new(NullExecutor { output }))
        .build()?)
}

/// Creates pipeline [`PIPELINE`] (`/*` over [`REPO`], `workers` workers) and runs its job to
/// the end; the job.
pub async fn run_null_job(engine: &Engine, workers: usize) -> Result<JobInfo, BoxError> {
    let input = format!("{{pfs: {{repo: {REPO}, glob: /*}}}}");
    run_null_job_over(engine, workers, &input).await
}

/// [`run_null_job`] with `input` (YAML, over [`REPO`]) as the pipeline's input.
pub async fn run_null_job_over(
    engine: &Engine,
    workers: usize,
    input: &str,
) -> Result<JobInfo, BoxError> {
    let spec = format!(
        "pipeline: {{name: {PIPELINE}}}\ntransform: {{cmd: [none]}}\n\
         parallelism_spec: {{constant: {workers}}}\ninput: {input}\n"
    );
    let parsed = pipeline_core::spec::parse_str(&spec, "null.yaml")?;
    engine.create_pipelines(&parsed, &CreateOptions::default())?;
    let jobs = engine.run_pending().await?;
    jobs.into_iter().last().ok_or_else(|| "no job ran".into())
}
