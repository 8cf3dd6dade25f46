//! Several engine hosts sharing one store (PostgreSQL metadata, contents in one objects
//! directory): the work queue's claim/lease/complete rules, a job whose datum sets run on
//! three hosts, and a host that stops mid-job (its sets are claimed again once their lease
//! runs out; every datum is recorded once and the output equals a one-host run). Needs the
//! test PostgreSQL server (`eval "$(bash .ci/postgres)"`); skips saying why without it
//! (fails under `CI=true`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use executor_process::ProcessExecutor;
use pipeline_core::executor::CancellationToken;
use pipeline_core::pfs::work_queue::NewTask;
use pipeline_core::pfs::{Store, StoreLocation};
use pipeline_core::pps::{DatumState, Engine, JobState};
use pipeline_core::testkit::engine::EngineEnv;
use pipeline_core::testkit::store::{postgres_url, schema_for, with_schema};

/// The store of `dir` on the test server: its schema, objects in `dir/objects`, host state
/// of host `host` in `dir/host`.
fn location(url: &str, dir: &Path, host: &str) -> StoreLocation {
    StoreLocation {
        store: with_schema(url, &schema_for(dir)),
        objects: Some(dir.join("objects").display().to_string()),
        local: dir.join(host),
    }
}

/// An engine with the process executor, host `host` of the cluster, over `store`.
fn engine(store: Store, host: &str, lease: Duration) -> Engine {
    Engine::builder(store)
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .cluster_host(host, lease)
        .build()
        .unwrap()
}

/// A pipeline upper-casing each file of `in` after a short sleep (so sets take a while).
const UPPER: &str = "pipeline: {name: upper}\n\
transform: {cmd: [sh, -c, 'sleep 0.05; for f in /pfs/in/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done']}\n\
input: {pfs: {repo: in, glob: /*}}\n";

/// `n` input files `/fNNN`.
fn inputs(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("/f{i:03}"), format!("file {i}\n")))
        .collect()
}

/// What one host alone makes of `files` (a store directory, no cluster).
fn one_host_output(files: &[(String, String)]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let e = EngineEnv::new(
        Engine::builder(store)
            .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
            .build()
            .unwrap(),
    );
    e.repo("in");
    e.create(UPPER);
    let puts: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    e.commit("in", &[], &puts);
    runtime().block_on(async {
        let job = e.run().await.pop().expect("a job ran");
        assert_eq!(job.state, JobState::JobSuccess, "{job:?}");
        e.engine.shutdown().await;
    });
    e.head_tree("upper")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_lost_claim_can_neither_renew_nor_complete_and_each_result_is_taken_once() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(&location(&url, dir.path(), "a")).unwrap();
    let q = store
        .work_queue()
        .expect("a PostgreSQL store has a work queue");
    let task = NewTask {
        job: "p/j1".into(),
        pool: "p@1".into(),
        payload: b"set".to_vec(),
    };
    let id = q.publish(task).unwrap();
    assert_eq!(q.pools_waiting().unwrap(), vec!["p@1".to_string()]);
    let lease = Duration::from_millis(300);
    let a = q.claim("p@1", "host-a", lease).unwrap().expect("claimed");
    assert_eq!(
        (a.claim.task, a.claim.number, a.payload.as_slice()),
        (id, 1, &b"set"[..])
    );
    assert!(
        q.claim("p@1", "host-b", lease).unwrap().is_none(),
        "held by a"
    );
    assert!(q.pools_waiting().unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(400));
    let b = q
        .claim("p@1", "host-b", lease)
        .unwrap()
        .expect("a's lease ran out");
    assert_eq!(b.claim.number, 2);
    assert!(!q.renew(&a.claim, lease).unwrap(), "a lost its claim");
    assert!(
        !q.complete(&a.claim, b"from a").unwrap(),
        "a's result is discarded"
    );
    assert!(q.renew(&b.claim, lease).unwrap());
    assert!(q.complete(&b.claim, b"from b").unwrap());
    assert!(!q.complete(&b.claim, b"again").unwrap(), "completed once");
    assert_eq!(q.outstanding("p/j1").unwrap(), 1);
    assert_eq!(
        q.take_done("p/j1", 10).unwrap(),
        vec![(id, b"from b".to_vec())]
    );
    assert!(q.take_done("p/j1", 10).unwrap().is_empty(), "taken once");
    assert_eq!(q.outstanding("p/j1").unwrap(), 0);
}

#[test]
fn a_store_directory_cannot_be_shared_by_several_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation {
        store: dir.path().join("s").display().to_string(),
        objects: None,
        local: dir.path().join("h"),
    };
    let e = Store::connect_shared(&loc)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("only a server store"), "{e}");
    let store = Store::open(dir.path().join("s2")).unwrap();
    let Err(e) = Engine::builder(store)
        .cluster_host("h1", Duration::from_secs(5))
        .build()
    else {
        panic!("a store directory was shared")
    };
    let e = e.to_string();
    assert!(
        e.contains("several engine hosts share a server store"),
        "{e}"
    );
}

/// Waits until `host` holds the claim of a set it has not completed, in the store of
/// PostgreSQL schema `schema` on the server `url` names.
async fn wait_for_claim_of(host: &str, url: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let q = format!(
        "SELECT count(*) FROM {schema}.datum_tasks WHERE holder = $1 AND result IS NULL \
         AND lease_until > now()"
    );
    loop {
        let n: i64 = client.query_one(q.as_str(), &[&host]).await.unwrap().get(0);
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the upper pipeline over `n` files on a leader and two more hosts; with `stop_one`,
/// host `h2` stops while it runs a set (the set is abandoned mid-run, its claim left to run
/// out). Returns the output and how many datums each host ran.
fn cluster_run(n: usize, stop_one: bool) -> (Vec<(String, String)>, BTreeMap<String, usize>) {
    let url = postgres_url().expect("checked by the caller");
    let dir = tempfile::tempdir().unwrap();
    let lease = Duration::from_secs(2);
    let leader_store = Store::init(&location(&url, dir.path(), "leader")).unwrap();
    let leader = EngineEnv::new(engine(leader_store, "leader", lease));
    let others: Vec<Engine> = ["h1", "h2"]
        .iter()
        .map(|h| {
            engine(
                Store::connect_shared(&location(&url, dir.path(), h)).unwrap(),
                h,
                lease,
            )
        })
        .collect();
    leader.repo("in");
    leader.create(UPPER);
    let files = inputs(n);
    let puts: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    leader.commit("in", &[], &puts);
    let job = runtime().block_on(async {
        let stops: Vec<CancellationToken> = (0..3).map(|_| CancellationToken::new()).collect();
        let mut hosts = vec![tokio::spawn({
            let (e, s) = (leader.engine.clone(), stops[0].clone());
            async move { e.run_host(s).await }
        })];
        for (e, s) in others.iter().zip(&stops[1..]) {
            let (e, s) = (e.clone(), s.clone());
            hosts.push(tokio::spawn(async move { e.run_host(s).await }));
        }
        if stop_one {
            let (s, url, schema) = (stops[2].clone(), url.clone(), schema_for(dir.path()));
            tokio::spawn(async move {
                wait_for_claim_of("h2", &url, &schema).await;
                s.cancel();
            });
        }
        let job = leader.run().await.pop().expect("a job ran");
        for s in &stops {
            s.cancel();
        }
        for h in hosts {
            h.await.unwrap().unwrap();
        }
        leader.engine.shutdown().await;
        for e in &others {
            e.shutdown().await;
        }
        job
    });
    assert_eq!(job.state, JobState::JobSuccess, "{job:?}");
    let datums = leader.datums("upper", &job.id);
    assert_eq!(datums.len(), n, "every datum recorded once");
    let mut by_host = BTreeMap::new();
    for d in &datums {
        assert_eq!(d.state, DatumState::Success, "{d:?}");
        *by_host
            .entry(d.host.clone().expect("ran on a named host"))
            .or_insert(0) += 1;
    }
    (leader.head_tree("upper"), by_host)
}

#[test]
fn three_hosts_share_a_job_and_make_what_one_host_makes() {
    if postgres_url().is_none() {
        return;
    }
    let n = 90;
    let (output, by_host) = cluster_run(n, false);
    assert_eq!(output, one_host_output(&inputs(n)));
    assert_eq!(
        by_host.keys().cloned().collect::<Vec<_>>(),
        vec!["h1", "h2", "leader"],
        "every host ran datums: {by_host:?}"
    );
}

#[test]
fn a_host_that_stops_mid_job_loses_only_its_sets() {
    if postgres_url().is_none() {
        return;
    }
    let n = 90;
    let (output, by_host) = cluster_run(n, true);
    assert_eq!(output, one_host_output(&inputs(n)));
    assert_eq!(by_host.values().sum::<usize>(), n, "{by_host:?}");
}
