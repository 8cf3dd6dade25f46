//! The engine's own cost per datum (#19 target 6): a job of [`DATUMS`] one-file datums run
//! through a null executor (`benches::null_engine`: no process, success at once), so all that
//! is timed is plan + materialise + ingest + record. The process is pinned to one CPU, so
//! wall time is the CPU time of every engine thread together.
//!
//! Variants, each on a fresh copy of the same input store (copying is not timed):
//! - `engine_null`: user code writes nothing;
//! - `engine_null_output`: user code writes one 2-byte output file per datum;
//! - `baseline_walk`: walking the input commit (`Store::walk`), the floor of planning;
//! - `baseline_fs`: per datum, hard-link an input file into a scratch directory, write one
//!   small file, remove both: the file-system floor of materialising and ingesting.
//!
//! First an **interleaved** pass (`ROUNDS` rounds, each variant once per round in rotating
//! order) prints medians in µs per datum and ratios to `baseline_fs`; then the criterion
//! groups. See `benches/README.md` ("Engine overhead per datum").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use benches::null_engine;
use criterion::Criterion;
use tokio::runtime::Runtime;

/// Datums per job.
const DATUMS: usize = 10_000;
/// Rounds of the interleaved pass.
const ROUNDS: usize = 5;

/// One measured variant: a closure that runs it once over a fresh copy and returns the time.
type Variant<'a> = (&'static str, Box<dyn FnMut() -> Duration + 'a>);

/// Pins this process (and the threads it starts later) to one CPU, if the host lets it.
fn pin_to_one_cpu() -> bool {
    let mut set = nix::sched::CpuSet::new();
    let Some(cpu) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .ok()
        .and_then(|s| (0..nix::sched::CpuSet::count()).find(|&c| s.is_set(c).unwrap_or(false)))
    else {
        return false;
    };
    set.set(cpu).is_ok()
        && nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok()
}

/// Copies directory `from` to `to` (recursively, plain copies).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// The template store and a scratch area for fresh copies.
struct Fixture {
    template: PathBuf,
    work: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let template = dir.path().join("store");
        null_engine::store_with_inputs(&template, DATUMS, true).expect("input store");
        Fixture {
            template,
            work: tempfile::tempdir().expect("tempdir"),
            _dir: dir,
        }
    }

    /// A fresh copy of the template store, written back to disk before it is used: the
    /// engine's first barrier (`syncfs`) would otherwise flush the copy in the timed part.
    fn fresh(&self) -> PathBuf {
        let to = self.work.path().join("store");
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(&self.template, &to);
        nix::unistd::sync();
        to
    }
}

/// Runs the null job on a fresh copy; the time of creating the pipeline and running its job.
fn engine_job(rt: &Runtime, fx: &Fixture, output: bool) -> Duration {
    let store = pipeline_core::pfs::Store::open(fx.fresh()).expect("store");
    let engine = null_engine::engine(store, output).expect("engine");
    let t = Instant::now();
    let job = rt
        .block_on(null_engine::run_null_job(&engine, 1))
        .expect("job");
    let took = t.elapsed();
    assert_eq!(job.stats.datums_processed, DATUMS as u64, "{job:?}");
    took
}

/// Walks the input commit of the template.
fn walk(fx: &Fixture) -> Duration {
    let store = pipeline_core::pfs::Store::open(&fx.template).expect("store");
    let commit = null_engine::input_commit(&store).expect("commit");
    let t = Instant::now();
    let n = store.walk(&commit).expect("walk").count();
    let took = t.elapsed();
    assert_eq!(n, DATUMS + 1);
    took
}

/// Per datum: a hard link in, one small file out, both removed.
fn fs_floor(fx: &Fixture) -> Duration {
    let src = fx.work.path().join("src");
    let scratch = fx.work.path().join("scratch");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::create_dir_all(&scratch).expect("mkdir");
    for i in 0..DATUMS {
        std::fs::write(src.join(format!("f{i}")), format!("{i}\n")).expect("write");
    }
    let (input, out) = (scratch.join("in"), scratch.join("out"));
    let t = Instant::now();
    for i in 0..DATUMS {
        std::fs::hard_link(src.join(format!("f{i}")), &input).expect("link");
        std::fs::write(&out, b"y\n").expect("write");
        std::fs::remove_file(&input).expect("rm");
        std::fs::remove_file(&out).expect("rm");
    }
    let took = t.elapsed();
    std::fs::remove_dir_all(&src).expect("rm src");
    took
}

fn variants<'a>(rt: &'a Runtime, fx: &'a Fixture) -> Vec<Variant<'a>> {
    vec![
        ("baseline_fs", Box::new(|| fs_floor(fx))),
        ("baseline_walk", Box::new(|| walk(fx))),
        ("engine_null", Box::new(|| engine_job(rt, fx, false))),
        ("engine_null_output", Box::new(|| engine_job(rt, fx, true))),
    ]
}

/// Microseconds per datum.
fn per_datum(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / DATUMS as f64
}

/// The interleaved pass: medians per datum and ratios to the first variant.
fn interleaved(variants: &mut [Variant<'_>]) {
    let n = variants.len();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); n];
    for round in 0..ROUNDS {
        for k in 0..n {
            let i = (round + k) % n;
            samples[i].push((variants[i].1)());
        }
    }
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|s| {
            s.sort();
            s[s.len() / 2]
        })
        .collect();
    println!("\ninterleaved pass: {ROUNDS} rounds, {DATUMS} datums per job, medians");
    println!("| variant | µs per datum | ratio to {} |", variants[0].0);
    println!("|---|---|---|");
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "| `{name}` | {:.1} | {:.2} |",
            per_datum(medians[i]),
            medians[i].as_secs_f64() / medians[0].as_secs_f64()
        );
    }
    println!();
}

fn main() {
    let pinned = pin_to_one_cpu();
    println!("pinned to one CPU: {pinned}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let fx = Fixture::new();
    let mut variants = variants(&rt, &fx);
    interleaved(&mut variants);

    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let mut g = c.benchmark_group("engine_overhead");
    for (name, run) in &mut variants {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run()).sum())
        });
    }
    g.finish();
    c.final_summary();
}
