//! Docker executor: warm workers vs one `docker exec` per datum (the floor) vs one `docker run`
//! per datum, on the real Docker Engine, all measured in one run and reported as ratios.
//!
//! Every datum is one small input file copied to `/pfs/out` by `cp` (busybox test image).
//! - **floor**: one running container with a host directory bind-mounted; per datum the host
//!   writes the input, one API exec runs `cp`, the host reads the output. No `/pfs` switching,
//!   no wrapper: the least any exec-based executor can do.
//! - **warm**: `executor-docker` with one warm worker (bind mode): per datum the engine-style
//!   scratch directory is created, `Worker::run` stages it, execs, kills leftovers, collects
//!   `/pfs/out`, and the host reads the output.
//! - **run**: per datum one container is created with the datum's directories bind-mounted,
//!   started, waited for and removed (`docker run --rm` through the API).
//! - **cli exec**: `docker exec <container> cp ...` through the CLI (process spawn included), for
//!   reference, when the `docker` binary is present.
//!
//! Floor and warm are interleaved in blocks of 50 datums so drift of the machine affects both.
//!
//! `cargo bench -p benches --bench docker_exec` (env `DOCKER_BENCH_DATUMS`, default 500). Without
//! a reachable daemon it prints why and exits 0.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use executor_docker::testing::{TEST_IMAGE, ensure_test_image};
use executor_docker::{DataMode, DockerConfig, DockerExecutor};
use futures::StreamExt;
use pipeline_core::executor::CancellationToken;
use pipeline_core::executor::{
    DatumOutcome, DatumTask, Executor, NullLogSink, Program, ProgramKind, Secrets, WorkerPoolSpec,
};
use pipeline_core::spec::{EffectiveSpec, PipelineSpec, Transform};

const BLOCK: usize = 50;

fn main() {
    let n: usize = std::env::var("DOCKER_BENCH_DATUMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(bench(n));
}

async fn bench(n: usize) {
    let exec = match DockerExecutor::builder()
        .config(DockerConfig {
            owner: format!("bench-{}", std::process::id()),
            data_mode: DataMode::Bind,
            ..DockerConfig::default()
        })
        .build()
        .await
    {
        Ok(e) => e,
        Err(e) => {
            println!("docker_exec: skipped, Docker daemon not reachable: {e}");
            return;
        }
    };
    let docker = exec.client().clone();
    ensure_test_image(&docker).await.expect("test image");
    let tmp = tempfile::tempdir().expect("tempdir");

    // Floor container.
    let floor_dir = tmp.path().join("floor");
    std::fs::create_dir_all(floor_dir.join("in")).unwrap();
    std::fs::create_dir_all(floor_dir.join("out")).unwrap();
    let floor_name = format!("bench-floor-{}", std::process::id());
    let floor_id = create(
        &docker,
        &floor_name,
        vec![format!("{}:/data", floor_dir.display())],
        vec!["sh", "-c", "while :; do sleep 3600; done"],
    )
    .await;
    docker
        .start_container(
            &floor_id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();

    // Warm worker.
    let pool = WorkerPoolSpec {
        project: "default".into(),
        pipeline: "bench".into(),
        version: 1,
        workers: 1,
        spec: Arc::new(EffectiveSpec::from_defaulted(PipelineSpec {
            transform: Some(Transform {
                image: Some(TEST_IMAGE.into()),
                cmd: vec!["cp".into()],
                ..Default::default()
            }),
            ..Default::default()
        })),
        secrets: Secrets::default(),
    };
    let mut workers = exec.start_workers(&pool).await.expect("workers");
    let worker = &mut workers[0];

    let mut floor = Duration::ZERO;
    let mut warm = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let block = BLOCK.min(n - done);
        let t = Instant::now();
        for i in done..done + block {
            let name = format!("f{i}");
            std::fs::write(floor_dir.join("in").join(&name), format!("datum {i}\n")).unwrap();
            let code = exec_cp(
                &docker,
                &floor_id,
                &format!("/data/in/{name}"),
                &format!("/data/out/{name}"),
            )
            .await;
            assert_eq!(code, Some(0));
            let got = std::fs::read_to_string(floor_dir.join("out").join(&name)).unwrap();
            assert_eq!(got, format!("datum {i}\n"));
        }
        floor += t.elapsed();

        let t = Instant::now();
        for i in done..done + block {
            let scratch = tmp.path().join(format!("scratch-{i}"));
            std::fs::create_dir_all(scratch.join("in")).unwrap();
            std::fs::create_dir_all(scratch.join("out")).unwrap();
            std::fs::write(scratch.join("in/f"), format!("datum {i}\n")).unwrap();
            let out = worker
                .run(task(&scratch, vec!["cp", "/pfs/in/f", "/pfs/out/f"]))
                .await
                .expect("warm run");
            assert_eq!(out, DatumOutcome::Exited { exit_code: 0 });
            let got = std::fs::read_to_string(scratch.join("out/f")).unwrap();
            assert_eq!(got, format!("datum {i}\n"));
            std::fs::remove_dir_all(&scratch).unwrap();
        }
        warm += t.elapsed();
        done += block;
    }
    worker.stop().await.unwrap();

    // docker exec through the CLI, for reference.
    let cli = if std::process::Command::new("docker")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let t = Instant::now();
        for i in 0..n {
            let name = format!("c{i}");
            std::fs::write(floor_dir.join("in").join(&name), format!("datum {i}\n")).unwrap();
            let st = std::process::Command::new("docker")
                .args(["exec", &floor_name, "cp"])
                .arg(format!("/data/in/{name}"))
                .arg(format!("/data/out/{name}"))
                .status()
                .unwrap();
            assert!(st.success());
            std::fs::read_to_string(floor_dir.join("out").join(&name)).unwrap();
        }
        Some(t.elapsed())
    } else {
        None
    };
    remove(&docker, &floor_id).await;

    // One container per datum.
    let t = Instant::now();
    for i in 0..n {
        let d = tmp.path().join(format!("run-{i}"));
        std::fs::create_dir_all(d.join("in")).unwrap();
        std::fs::create_dir_all(d.join("out")).unwrap();
        std::fs::write(d.join("in/f"), format!("datum {i}\n")).unwrap();
        let id = create(
            &docker,
            &format!("bench-run-{}-{i}", std::process::id()),
            vec![
                format!("{}:/pfs/in:ro", d.join("in").display()),
                format!("{}:/pfs/out", d.join("out").display()),
            ],
            vec!["cp", "/pfs/in/f", "/pfs/out/f"],
        )
        .await;
        docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .unwrap();
        let mut wait = docker.wait_container(&id, None::<WaitContainerOptions>);
        while let Some(r) = wait.next().await {
            r.expect("container exit 0");
        }
        remove(&docker, &id).await;
        let got = std::fs::read_to_string(d.join("out/f")).unwrap();
        assert_eq!(got, format!("datum {i}\n"));
    }
    let run = t.elapsed();
    // Removes this run's owner directory (and any container a failure left).
    exec.remove_leftovers().await.expect("cleanup");

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    println!("docker_exec: {n} one-file datums, sequential, one worker");
    println!(
        "  floor (API exec per datum)   {:>8.1} ms/datum  1.00x",
        per(floor)
    );
    println!(
        "  warm worker (executor)       {:>8.1} ms/datum  {:.2}x floor",
        per(warm),
        warm.as_secs_f64() / floor.as_secs_f64()
    );
    if let Some(cli) = cli {
        println!(
            "  docker exec CLI per datum    {:>8.1} ms/datum  {:.2}x floor",
            per(cli),
            cli.as_secs_f64() / floor.as_secs_f64()
        );
    }
    println!(
        "  container per datum (run)    {:>8.1} ms/datum  {:.2}x floor",
        per(run),
        run.as_secs_f64() / floor.as_secs_f64()
    );
}

fn task(scratch: &Path, argv: Vec<&str>) -> DatumTask {
    DatumTask {
        job_id: "bench".into(),
        datum_id: "0".repeat(64),
        scratch: scratch.to_path_buf(),
        inputs: vec!["in".into()],
        program: Program::new(
            ProgramKind::Cmd,
            argv.into_iter().map(String::from).collect(),
            &[],
        ),
        env: vec![("in".into(), "/pfs/in/f".into())],
        user: None,
        working_dir: None,
        cancel: CancellationToken::new(),
        logs: Arc::new(NullLogSink),
    }
}

async fn create(docker: &Docker, name: &str, binds: Vec<String>, cmd: Vec<&str>) -> String {
    let body = ContainerCreateBody {
        image: Some(TEST_IMAGE.into()),
        cmd: Some(cmd.into_iter().map(String::from).collect()),
        host_config: Some(HostConfig {
            binds: Some(binds),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .expect("create container")
        .id
}

async fn remove(docker: &Docker, id: &str) {
    let opts = RemoveContainerOptionsBuilder::default().force(true).build();
    docker
        .remove_container(id, Some(opts))
        .await
        .expect("remove container");
}

async fn exec_cp(docker: &Docker, container: &str, from: &str, to: &str) -> Option<i64> {
    let cfg = CreateExecOptions::<String> {
        cmd: Some(vec!["cp".into(), from.into(), to.into()]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(container, cfg).await.ok()?;
    if let Ok(StartExecResults::Attached { mut output, .. }) =
        docker.start_exec(&created.id, None).await
    {
        while output.next().await.is_some() {}
    }
    loop {
        let i = docker.inspect_exec(&created.id).await.ok()?;
        if i.running == Some(false) {
            return i.exit_code;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
