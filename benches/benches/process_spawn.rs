//! Per-datum overhead of the process executor: spawn-to-exit of `true` through
//! `Worker::run`, in each `/pfs` mode, against a bare `std::process::Command` spawn of the
//! same program measured in the same run. See `benches/README.md` ("Process executor").
//!
//! Two passes over the same variants:
//! 1. an **interleaved** pass (`ROUNDS` rounds, each timing every variant once, in rotating
//!    order) that prints medians and ratios to the baseline; on a shared, loaded machine this
//!    is the number to trust, since load drift hits every variant alike;
//! 2. the usual criterion groups (sequential, with confidence intervals).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use executor_process::{PfsMode, PfsRequest, ProcessExecutor};
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, NullLogSink, Program, ProgramKind, Secrets, Worker,
    WorkerPoolSpec,
};
use pipeline_core::spec::EffectiveSpec;
use tokio::runtime::Runtime;

const PROGRAM: &str = "true";
const ROUNDS: usize = 400;

type Variant<'a> = (String, Box<dyn FnMut() + 'a>);

fn modes() -> Vec<PfsMode> {
    let mut modes = vec![PfsMode::Substitution];
    for m in [PfsMode::MountNamespace, PfsMode::UserNamespace] {
        if ProcessExecutor::builder()
            .pfs_mode(PfsRequest::Force(m))
            .build()
            .is_ok()
        {
            modes.push(m);
        }
    }
    modes
}

fn worker(rt: &Runtime, mode: PfsMode) -> Box<dyn Worker> {
    let executor = ProcessExecutor::builder()
        .pfs_mode(PfsRequest::Force(mode))
        .build()
        .expect("executor");
    let pool = WorkerPoolSpec {
        project: "default".into(),
        pipeline: "bench".into(),
        version: 1,
        workers: 1,
        spec: Arc::new(EffectiveSpec::default()),
        secrets: Secrets::default(),
    };
    rt.block_on(executor.start_workers(&pool))
        .expect("workers")
        .pop()
        .expect("one worker")
}

fn task(scratch: &std::path::Path) -> DatumTask {
    DatumTask {
        job_id: "j".repeat(32),
        datum_id: "d".repeat(64),
        scratch: scratch.to_path_buf(),
        inputs: vec!["in".into()],
        program: Program::new(ProgramKind::Cmd, vec![PROGRAM.into()], &[]),
        env: vec![("PACH_DATUM_ID".into(), "d".repeat(64))],
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs: Arc::new(NullLogSink),
    }
}

fn variants<'a>(rt: &'a Runtime, scratch: &'a std::path::Path) -> Vec<Variant<'a>> {
    let mut v: Vec<Variant<'a>> = Vec::new();
    v.push((
        "baseline_std_command".into(),
        Box::new(|| {
            let status = std::process::Command::new(PROGRAM)
                .status()
                .expect("spawn true");
            assert!(status.success());
        }),
    ));
    // Forced through `fork` instead of `posix_spawn`: setting the uid (to our own) is enough
    // for std to take the fork path, as any `pre_exec` hook does.
    let euid = nix::unistd::Uid::effective().as_raw();
    v.push((
        "baseline_std_command_fork".into(),
        Box::new(move || {
            let mut cmd = std::process::Command::new(PROGRAM);
            std::os::unix::process::CommandExt::uid(&mut cmd, euid);
            assert!(cmd.status().expect("spawn true").success());
        }),
    ));
    // What any async executor pays: tokio spawn with piped stdout/stderr, drained to EOF.
    v.push((
        "baseline_tokio_piped".into(),
        Box::new(move || {
            let out = rt
                .block_on(async {
                    tokio::process::Command::new(PROGRAM)
                        .stdin(std::process::Stdio::null())
                        .output()
                        .await
                })
                .expect("spawn true");
            assert!(out.status.success());
        }),
    ));
    for mode in modes() {
        let name = match mode {
            PfsMode::MountNamespace => "executor_mount_namespace",
            PfsMode::UserNamespace => "executor_user_namespace",
            PfsMode::Substitution => "executor_substitution",
        };
        let mut w = worker(rt, mode);
        let t = task(scratch);
        v.push((
            name.into(),
            Box::new(move || {
                let outcome = rt.block_on(w.run(t.clone())).expect("run");
                assert_eq!(outcome, DatumOutcome::Exited { exit_code: 0 });
            }),
        ));
    }
    v
}

fn interleaved(variants: &mut [Variant<'_>]) {
    let n = variants.len();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); n];
    for round in 0..ROUNDS {
        for k in 0..n {
            let i = (round + k) % n;
            let start = Instant::now();
            (variants[i].1)();
            samples[i].push(start.elapsed());
        }
    }
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|s| {
            s.sort_unstable();
            s[s.len() / 2]
        })
        .collect();
    let base = medians[0].as_secs_f64();
    println!("\ninterleaved pass: {ROUNDS} rounds, median per variant, ratio to the baseline");
    println!("| bench | median | ratio to `baseline_std_command` |");
    println!("|---|---|---|");
    for ((name, _), m) in variants.iter().zip(&medians) {
        println!(
            "| `{name}` | {:.3} ms | {:.2} |",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base
        );
    }
    println!();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let scratch = tempfile::tempdir().expect("scratch");
    std::fs::create_dir_all(scratch.path().join("out")).expect("out");
    std::fs::create_dir_all(scratch.path().join("in")).expect("in");
    let mut variants = variants(&rt, scratch.path());

    interleaved(&mut variants);

    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("process_spawn_true");
    for (name, f) in variants.iter_mut() {
        group.bench_function(name.as_str(), |b| b.iter(&mut *f));
    }
    group.finish();
    c.final_summary();
}
