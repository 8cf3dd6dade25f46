//! The object store going away mid-job: the engine's contents are on the test S3 server,
//! reached through a relay the test cuts for 20 s while datums run. No datum may be
//! recorded as failed for it: a datum that met the outage says so in its log, waits and runs
//! again (with datum batching: in a new process), and the job succeeds with every datum's
//! output once the server is back. Needs the test S3 server (`source .ci/s3`); skips saying why without it (fails under `CI=true`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use executor_process::ProcessExecutor;
use pipeline_core::pfs::{RedbMetaStore, RemoteObjectStore, Store};
use pipeline_core::pps::{DatumState, Engine, JobState};
use pipeline_core::testkit::engine::EngineEnv;
use pipeline_core::testkit::objects::{fresh_s3_url, s3_endpoint, s3_options};
use tokio::sync::watch;

/// Forwards connections on a loopback port to `target` while `up` says `true`; `false`
/// cuts every open connection and refuses new ones, as if the server went away.
async fn relay(target: SocketAddr, up: watch::Receiver<bool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !*up.borrow() {
                continue;
            }
            let mut up = up.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = up.wait_for(|on| !*on) => {}
                    }
                }
            });
        }
    });
    addr
}

/// Upper-cases each input file after a short sleep, so the job spans the outage.
const UPPER: &str = "pipeline: {name: upper}\n\
transform: {cmd: [sh, -c, 'sleep 0.1; for f in /pfs/in/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done']}\n\
input: {pfs: {repo: in, glob: /*}}\n";

/// The same with datum batching: one process per set of 10 datums, asking for each in turn
/// (the `next datum` protocol spoken with `echo` and `read`).
const UPPER_BATCHED: &str = concat!(
    "pipeline: {name: upper}\n",
    "transform:\n",
    "  cmd: [sh]\n",
    "  datum_batching: true\n",
    "  stdin:\n",
    "    - 'next() { echo \"next $1\" > \"$PIPECTL_NEXT_DATUM_DIR/request\" && read -r _ < \"$PIPECTL_NEXT_DATUM_DIR/reply\"; }'\n",
    "    - 'next ok'\n",
    "    - 'while true; do . /pfs/.env; sleep 0.1; tr a-z A-Z < $in > /pfs/out/${in##*/}; next ok; done'\n",
    "input: {pfs: {repo: in, glob: /*}}\n",
    "datum_set_spec: {number: 10}\n",
);

const DATUMS: usize = 120;

#[test]
fn datums_wait_out_an_object_store_outage_instead_of_failing() {
    run_through_an_outage("outage", UPPER);
}

#[test]
fn batched_datums_wait_out_an_object_store_outage_too() {
    run_through_an_outage("outage-batched", UPPER_BATCHED);
}

/// Runs pipeline `upper` (`spec`) over [`DATUMS`] files while the S3 server is away for 20 s
/// from 2 s into the job, then checks that the job succeeded with every datum and output,
/// and that datums met the outage.
fn run_through_an_outage(test: &str, spec: &str) {
    let Some(endpoint) = s3_endpoint(test) else {
        return;
    };
    // The engine's warnings (each wait) show with the test's output when it fails.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_test_writer()
        .try_init();
    let relays = tokio::runtime::Runtime::new().unwrap();
    let target: SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("the test endpoint is http://IP:PORT");
    let (up, up_watch) = watch::channel(true);
    let via = relays.block_on(relay(target, up_watch));
    let objects = RemoteObjectStore::from_url_with(
        &fresh_s3_url(test),
        &s3_options(&format!("http://{via}")),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = RedbMetaStore::open(&dir.path().join("meta.redb")).unwrap();
    let store = Store::with_backends(Box::new(meta), Box::new(objects));
    let e = EngineEnv::new(
        Engine::builder(store)
            .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
            .build()
            .unwrap(),
    );
    e.repo("in");
    e.create(spec);
    let files: Vec<(String, String)> = (0..DATUMS)
        .map(|i| (format!("/f{i:03}"), format!("file {i}\n")))
        .collect();
    let puts: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    e.commit("in", &[], &puts);

    let cut = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        up.send_replace(false);
        std::thread::sleep(Duration::from_secs(20));
        up.send_replace(true);
        up // kept: with the sender gone, the relay's connections would end at once
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let job = rt.block_on(async {
        let run = tokio::time::timeout(Duration::from_secs(240), e.run());
        let job = run.await.expect("the job ends").pop().expect("a job ran");
        e.engine.shutdown().await;
        job
    });
    let _up = cut.join().unwrap();
    assert_eq!(job.state, JobState::JobSuccess, "{job:?}");
    let datums = e.datums("upper", &job.id);
    assert_eq!(datums.len(), DATUMS);
    assert!(
        datums.iter().all(|d| d.state == DatumState::Success),
        "no datum failed: {:?}",
        datums
            .iter()
            .filter(|d| d.state != DatumState::Success)
            .collect::<Vec<_>>()
    );
    let waited = e
        .engine
        .logs("upper", Some(&job.id), None)
        .unwrap()
        .into_iter()
        .filter(|l| l.message.contains("the store could not be reached"))
        .count();
    assert!(waited > 0, "no datum met the outage: it came too late");
    let out = e.head_tree("upper");
    assert_eq!(out.len(), DATUMS);
    for (path, content) in &files {
        let want = content.to_uppercase();
        assert!(
            out.iter().any(|(p, c)| p == path && *c == want),
            "{path} holds {want:?}"
        );
    }
}
