//! Server time of the web console's pages on a store holding one N-datum job (N = 1,000,000
//! by default): every page through `pipeline_server::router` in process (tower `oneshot`),
//! 200 requests each, p50/p95/max and p50 as a ratio to a baseline measured in the same run
//! (`GET /api/v1/repos/raw`). Run by `benches/scripts/console_pages.sh`.
//!
//! The store: repo `raw` gets N/10 files in a first commit (job 1 succeeds on them), then the
//! rest in a second commit (N files in all), so job 2 of pipeline `work` skips N/10 datums,
//! runs the others and fails 1 % of them (files named `bad*`). User code is an in-process
//! executor that does almost nothing (no process, no output), so building takes minutes.
//! A store built once is reused (`STORE_DIR/built-N` marks it).
//!
//! Usage: `console-pages STORE_DIR [N] [REQUESTS]`.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, ExecutorError, Worker, WorkerPoolSpec,
};
use pipeline_core::pfs::{CommitRef, FinishOptions, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, DatumQuery, DatumState, Engine, JobInfo};
use pipeline_server::{AppState, JobRunner};
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The pipeline under test.
const PIPELINE: &str = "work";
/// Its input repo.
const REPO: &str = "raw";
/// Files per `put_files` call.
const PUT_CHUNK: usize = 50_000;

/// User code that does almost nothing: exit 1 for inputs named `bad*`, else exit 0.
#[derive(Debug)]
struct Noop;

/// One worker of [`Noop`].
#[derive(Debug)]
struct NoopWorker(usize);

#[async_trait]
impl Executor for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }

    async fn start_workers(
        &self,
        spec: &WorkerPoolSpec,
    ) -> Result<Vec<Box<dyn Worker>>, ExecutorError> {
        Ok((0..spec.workers)
            .map(|i| Box::new(NoopWorker(i)) as Box<dyn Worker>)
            .collect())
    }

    async fn remove_pipeline(&self, _: &str, _: &str) -> Result<usize, ExecutorError> {
        Ok(0)
    }
}

#[async_trait]
impl Worker for NoopWorker {
    fn index(&self) -> usize {
        self.0
    }

    async fn run(&mut self, task: DatumTask) -> Result<DatumOutcome, ExecutorError> {
        let bad = task
            .env
            .iter()
            .any(|(k, v)| k == REPO && v.rsplit('/').next().is_some_and(|n| n.starts_with("bad")));
        Ok(DatumOutcome::Exited {
            exit_code: i32::from(bad),
        })
    }

    async fn stop(&mut self) -> Result<(), ExecutorError> {
        Ok(())
    }
}

/// One finished commit to `raw@master` holding the files `names` yields (small contents,
/// mostly shared: content-addressed, so the object store stays small).
fn commit_files(store: &Store, names: impl Iterator<Item = String>) -> Result<CommitRef, BoxError> {
    let branch = RepoRef::new(REPO)?.branch("master")?;
    let commit = store.start_commit(&branch, "")?.commit;
    let mut chunk = Vec::with_capacity(PUT_CHUNK);
    let flush = |chunk: &mut Vec<(String, Cursor<Vec<u8>>)>| -> Result<(), BoxError> {
        store.put_files(&commit, chunk.drain(..))?;
        Ok(())
    };
    for (i, name) in names.enumerate() {
        chunk.push((
            format!("/{name}"),
            Cursor::new(format!("{}\n", i % 997).into_bytes()),
        ));
        if chunk.len() == PUT_CHUNK {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    store.finish_commit(&commit, FinishOptions::default())?;
    Ok(commit)
}

/// Runs every pending job; the last one.
async fn run_jobs(engine: &Engine) -> Result<JobInfo, BoxError> {
    let jobs = engine.run_pending().await?;
    jobs.into_iter().last().ok_or_else(|| "no job ran".into())
}

/// Builds the store: two commits, two jobs (see the module docs). Prints what each step took.
async fn build(engine: &Engine, n: usize) -> Result<(), BoxError> {
    let store = engine.store();
    store.create_repo(&RepoRef::new(REPO)?, "console benchmark input")?;
    let first = n / 10;
    let t = Instant::now();
    commit_files(store, (0..first).map(|i| format!("s{i:07}")))?;
    println!(
        "build: {first} files in commit 1: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let spec = format!(
        "pipeline: {{name: {PIPELINE}}}\ntransform: {{cmd: [noop]}}\ndatum_tries: 1\nparallelism_spec: {{constant: 2}}\ninput: {{pfs: {{repo: {REPO}, glob: /*}}}}\n"
    );
    let parsed = pipeline_core::spec::parse_str(&spec, "work.yaml")?;
    engine.create_pipelines(&parsed, &CreateOptions::default())?;
    let t = Instant::now();
    let job = run_jobs(engine).await?;
    println!(
        "build: job 1 ({:?}, {} datums): {:.1} s",
        job.state,
        job.stats.datums_total,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let rest = (first..n).map(|i| {
        if i % 100 == 7 {
            format!("bad{i:07}")
        } else {
            format!("n{i:07}")
        }
    });
    commit_files(store, rest)?;
    println!(
        "build: {} more files in commit 2: {:.1} s",
        n - first,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let job = run_jobs(engine).await?;
    let s = &job.stats;
    println!(
        "build: job 2 ({:?}, {} datums: {} processed, {} skipped, {} failed): {:.1} s",
        job.state,
        s.datums_total,
        s.datums_processed,
        s.datums_skipped,
        s.datums_failed,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One GET through the router (built once, cloned per request as a server does): status,
/// body, server time.
async fn get(router: &Router, path: &str) -> Result<(StatusCode, String, Duration), BoxError> {
    let req = Request::get(path).body(Body::empty())?;
    let t = Instant::now();
    let resp = router.clone().oneshot(req).await?;
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
    let took = t.elapsed();
    Ok((status, String::from_utf8_lossy(&body).into_owned(), took))
}

/// The `after=` value of the first link with one in an HTML page (percent-encoded as is).
fn next_link(html: &str) -> Option<String> {
    let at = html.find("after=")? + "after=".len();
    let rest = &html[at..];
    let end = rest.find(['"', '&', '\'']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The query value of a cursor.
fn encoded(cursor: &str) -> String {
    cursor
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The cursor 50 pages into the job: following the job page's own `next` links when it has
/// them, else the API's (same cursors).
async fn deep_cursor(state: &Router, engine: &Engine, job: &str) -> Result<String, BoxError> {
    let page = format!("/pipelines/{PIPELINE}/jobs/{job}");
    let mut after: Option<String> = None;
    for _ in 0..50 {
        let path = match &after {
            Some(a) => format!("{page}?after={a}"),
            None => page.clone(),
        };
        let (_, html, _) = get(state, &path).await?;
        match next_link(&html) {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    if let Some(a) = after {
        return Ok(a);
    }
    let mut q = DatumQuery::default();
    for _ in 0..50 {
        let next = engine.datum_page(PIPELINE, job, &q)?.next;
        match next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    Ok(encoded(q.after.as_deref().unwrap_or_default()))
}

/// p50, p95 and max of `times`.
fn percentiles(times: &mut [Duration]) -> (Duration, Duration, Duration) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95), at(1.0))
}

/// Measures `requests` GETs of every page; prints a table.
async fn measure(state: &Router, engine: &Engine, requests: usize) -> Result<(), BoxError> {
    let job = engine
        .list_jobs(Some(PIPELINE))?
        .pop()
        .ok_or("the store has no job")?;
    let failed = DatumQuery {
        state: Some(DatumState::Failed),
        limit: 1,
        ..Default::default()
    };
    let datum = engine
        .datum_page(PIPELINE, &job.id, &failed)?
        .datums
        .pop()
        .ok_or("no failed datum")?;
    let commit = RepoRef::new(REPO)?.branch("master")?;
    let commit = engine.store().inspect_branch(&commit)?.head;
    let deep = deep_cursor(state, engine, &job.id).await?;
    let j = &job.id;
    let pages = [
        (
            "baseline: GET /api/v1/repos/R",
            format!("/api/v1/repos/{REPO}"),
        ),
        ("/", "/".to_string()),
        ("/pipelines/P", format!("/pipelines/{PIPELINE}")),
        (
            "/pipelines/P/jobs/J",
            format!("/pipelines/{PIPELINE}/jobs/{j}"),
        ),
        (
            "  ?state=FAILED",
            format!("/pipelines/{PIPELINE}/jobs/{j}?state=FAILED"),
        ),
        (
            "  ?after= (50 pages in)",
            format!("/pipelines/{PIPELINE}/jobs/{j}?after={deep}"),
        ),
        (
            "/pipelines/P/jobs/J/datums/D",
            format!("/pipelines/{PIPELINE}/jobs/{j}/datums/{}", datum.id),
        ),
        ("/repos/R", format!("/repos/{REPO}")),
        (
            "/repos/R/commits/C (root)",
            format!("/repos/{REPO}/commits/{commit}"),
        ),
        (
            "/api/v1/jobs/P/J/datum_page",
            format!("/api/v1/jobs/{PIPELINE}/{j}/datum_page"),
        ),
    ];
    println!(
        "\n{requests} requests each; job {PIPELINE}@{j}: {} datums",
        job.stats.datums_total
    );
    println!("| page | status | p50 | p95 | max | p50 / baseline |");
    println!("|---|---|---|---|---|---|");
    let mut baseline = None;
    for (name, path) in &pages {
        let mut times = Vec::with_capacity(requests);
        let mut status = StatusCode::OK;
        for _ in 0..requests {
            let (s, _, took) = get(state, path).await?;
            if s != StatusCode::OK {
                status = s;
            }
            times.push(took);
        }
        let (p50, p95, max) = percentiles(&mut times);
        let base = *baseline.get_or_insert(p50);
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| `{name}` | {} | {} | {} | {} | {:.1} |",
            status.as_u16(),
            ms(p50),
            ms(p95),
            ms(max),
            p50.as_secs_f64() / base.as_secs_f64()
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: console-pages STORE_DIR [N] [REQUESTS]")?;
    let n: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let requests: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let built = Path::new(&dir).join(format!("built-{n}"));
    let store = Store::open(Path::new(&dir).join("store"))?;
    let engine = Engine::builder(store).executor(Arc::new(Noop)).build()?;
    if built.exists() {
        println!("reusing the store in {dir} ({n} datums)");
    } else {
        let t = Instant::now();
        build(&engine, n).await?;
        println!("build: total {:.1} s", t.elapsed().as_secs_f64());
        std::fs::write(&built, b"")?;
    }
    let router = pipeline_server::router(AppState::new(engine.clone(), JobRunner::OnWait, true));
    measure(&router, &engine, requests).await
}
