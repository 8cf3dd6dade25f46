//! Three engine hosts as Docker containers (an image made here from busybox and this
//! `pipectl`), on a private network with the test PostgreSQL server and the test S3 server
//! (reached through relays on the network's gateway, since both listen on loopback), share
//! one store: metadata in PostgreSQL, contents in the bucket. A 2,000-datum job whose datums
//! sleep 50 ms runs with parallelism 1 per host; mid-job the owning host is SIGKILLed (another
//! takes the store over and resumes the job) and a following host is cut off the network for
//! longer than the lease, then let back; then the database goes away for 20 s (its relay
//! cuts every connection), and then the S3 server for 20 s. The job must succeed with every
//! datum recorded once and none failed, datums run by all three hosts, and the output
//! identical to a one-host run.
//!
//! Needs Docker, `PIPELINE_TEST_POSTGRES` (`.ci/postgres`) and `PIPELINE_TEST_S3` with the
//! `AWS_*` variables (`.ci/s3`); skips saying why without them, fails under `CI=true`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pipeline_core::testkit::store::{postgres_url, with_schema};
use serde_json::Value;

/// Datums of the job.
const DATUMS: usize = 2_000;

/// Seconds a host's claim lasts unreconfirmed (the cut lasts longer).
const LEASE_SECS: u64 = 4;

/// The pipeline: each datum sleeps 50 ms and upper-cases its file.
const PIPELINE: &str = "pipeline: {name: up}\n\
parallelism_spec: {constant: 1}\n\
transform: {cmd: [sh, -c, 'sleep 0.05; for f in /pfs/data/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done']}\n\
input: {pfs: {repo: data, glob: /*}}\n";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips (or, in CI, fails) saying why.
fn unavailable(why: &str) {
    if in_ci() {
        panic!("multi-host test cannot run under CI=true: {why}");
    }
    eprintln!("skipped: multi-host test: {why}");
}

/// Runs `docker ARGS`; its output (status not checked).
fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("running docker")
}

/// Runs `docker ARGS` and returns its stdout; panics with its stderr when it fails.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image of an engine host: busybox, this `pipectl`, the libraries it links and the
/// host's CA certificates (the HTTP client of the object store loads them at start).
fn build_image(tag: &str) {
    let rootfs = tempfile::tempdir().unwrap();
    let script = r#"set -eu
r="$1"; pipectl="$2"
mkdir -p "$r/bin" "$r/tmp" "$r/etc" "$r/proc" "$r/sys" "$r/dev"
chmod 1777 "$r/tmp"
bb="$(command -v busybox)"
cp "$bb" "$r/bin/busybox"
for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
cp "$pipectl" "$r/bin/pipectl"
for l in $(ldd "$pipectl" | grep -o '/[^ ]*'); do mkdir -p "$r$(dirname "$l")"; cp -L "$l" "$r$l"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
mkdir -p "$r/etc/ssl/certs"
cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
"#;
    let made = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(rootfs.path())
        .arg(env!("CARGO_BIN_EXE_pipectl"))
        .status()
        .expect("sh");
    assert!(made.success(), "building the host rootfs");
    let import = format!(
        "tar -C '{}' -c . | docker import -c 'ENV PATH=/bin' - {tag} >/dev/null",
        rootfs.path().display()
    );
    let imported = Command::new("sh").args(["-c", &import]).status().unwrap();
    assert!(imported.success(), "importing the host image");
}

/// Forwards every connection to `listen` (on the network's gateway) to `target` (loopback)
/// while `up` says `true`; setting it `false` cuts every connection and refuses new ones,
/// as if the server went away.
async fn relay(
    listen: IpAddr,
    target: SocketAddr,
    up: tokio::sync::watch::Receiver<bool>,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((listen, 0)).await.unwrap();
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

/// The address a URL like `scheme://user:pw@HOST:PORT/...` or `http://HOST:PORT` names.
fn url_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap();
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    hostport
        .replace("localhost", "127.0.0.1")
        .parse()
        .unwrap_or_else(|e| panic!("address of {url}: {e}"))
}

/// `url` with its host and port replaced by `addr`.
fn url_at(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, tail) = match rest.split_once('/') {
        Some((a, t)) => (a, format!("/{t}")),
        None => (rest, String::new()),
    };
    let user = auth
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{addr}{tail}")
}

/// The containers and network of one run, removed when dropped.
struct Cluster {
    net: String,
    hosts: Vec<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for h in &self.hosts {
            if std::thread::panicking() {
                let logs = docker(&["logs", "--tail", "60", h]);
                eprintln!(
                    "--- {h} ---\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            docker(&["rm", "-f", h]);
        }
        docker(&["network", "rm", &self.net]);
    }
}

impl Cluster {
    /// `pipectl --root /r ARGS` in host `h`.
    fn pipectl(&self, h: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", h, "timeout", "20", "pipectl", "--root", "/r"];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// The host serving the store's API now (its socket answers), if any.
    fn owner(&self) -> Option<String> {
        self.hosts
            .iter()
            .find(|h| self.pipectl(h, &["list", "repo"]).status.success())
            .cloned()
    }

    /// The newest job of pipeline `up`, through host `h`.
    fn job(&self, h: &str) -> Option<Value> {
        let out = self.pipectl(h, &["list", "job", "-p", "up", "-o", "json"]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|j| j["stats"]["datums_total"].as_u64() == Some(DATUMS as u64))
    }

    /// The hosts that ran the recorded datums of job `job` of `up`, through host `h`.
    fn datum_hosts(&self, h: &str, job: &str) -> HashSet<String> {
        let out = self.pipectl(h, &["list", "datum", &format!("up@{job}"), "-o", "json"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|d| d["host"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits (up to `limit`) until the owner's newest job satisfies `ok`; returns the owner
    /// and the job.
    fn wait_job(
        &self,
        limit: Duration,
        what: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> (String, Value) {
        let start = Instant::now();
        loop {
            if let Some(h) = self.owner()
                && let Some(j) = self.job(&h)
                && ok(&j)
            {
                return (h, j);
            }
            assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Writes `content` to `path` in container `h`.
fn write_file(h: &str, path: &str, content: &str) {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(["exec", "-i", h, "sh", "-c", &format!("cat > {path}")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "writing {path} in {h}");
}

/// Waits until `docker logs h` contains `text`.
fn wait_log(h: &str, text: &str) {
    let start = Instant::now();
    loop {
        let out = docker(&["logs", h]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if all.contains(text) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{h} never said {text:?}: {all}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The hash of the root of `up@master` in a store directory where one host ran the same
/// pipeline over the same files (no sleep needed: the output is the same).
fn one_host_root_hash(inputs: &Path) -> String {
    let root = tempfile::tempdir().unwrap();
    let pipectl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pipectl"))
            .env("PIPECTL_ROOT", root.path())
            .env_remove("PIPECTL_STORE")
            .env_remove("PIPECTL_OBJECTS")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let spec = root.path().join("p.yaml");
    std::fs::write(&spec, PIPELINE.replace("sleep 0.05; ", "")).unwrap();
    pipectl(&["create", "repo", "data"]);
    pipectl(&["create", "pipeline", "-f", spec.to_str().unwrap()]);
    pipectl(&[
        "put",
        "file",
        "-r",
        "data@master:/",
        "-f",
        inputs.to_str().unwrap(),
    ]);
    let info: Value =
        serde_json::from_str(&pipectl(&["inspect", "file", "up@master:/", "-o", "json"])).unwrap();
    info["hash"].as_str().unwrap().to_string()
}

/// What the test needs from the machine: `(postgres URL, S3 endpoint, bucket)`.
fn servers() -> Option<(String, String, String)> {
    if !docker(&["version"]).status.success() {
        unavailable("Docker is not reachable (`docker version` failed)");
        return None;
    }
    let pg = postgres_url()?;
    let Ok(s3) = std::env::var("PIPELINE_TEST_S3") else {
        unavailable("PIPELINE_TEST_S3 is not set (source .ci/s3)");
        return None;
    };
    let bucket =
        std::env::var("PIPELINE_TEST_S3_BUCKET").unwrap_or_else(|_| "pipeline-test".into());
    Some((pg, s3, bucket))
}

/// A running cluster of engine hosts and what the test controls it with.
struct Run {
    /// Declared first: its containers go before the relays.
    cluster: Cluster,
    /// `false` takes the database away (its relay cuts every connection).
    pg_up: tokio::sync::watch::Sender<bool>,
    /// `false` takes the S3 server away.
    s3_up: tokio::sync::watch::Sender<bool>,
    /// Runs the relays.
    _rt: tokio::runtime::Runtime,
}

/// The engine-host image of this test binary, built once.
fn image() -> &'static str {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let tag = format!("pipeline-multihost:{}", std::process::id());
        build_image(&tag);
        tag
    })
}

/// A fresh store (schema and bucket prefix of its own) and `hosts` engine hosts `c1`, …
/// serving it in containers, `c1` the owner; `None` when the machine lacks what it needs.
fn start(hosts: usize, tag: &str) -> Option<Run> {
    let (pg, s3, bucket) = servers()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let id = format!("pmh{}{tag}", std::process::id());
    let store_url = with_schema(&pg, &format!("{id}_{nanos}"));
    let objects = format!("s3://{bucket}/{id}-{nanos}");
    let init = Command::new(env!("CARGO_BIN_EXE_pipectl"))
        .args(["init", "--store", &store_url, "--objects", &objects])
        .env("AWS_ENDPOINT_URL", &s3)
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let image = image();
    let mut cluster = Cluster {
        net: id.clone(),
        hosts: Vec::new(),
    };
    docker_ok(&["network", "create", "--internal", &id]);
    let gateway: IpAddr = docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        &id,
    ])
    .trim()
    .parse()
    .expect("gateway address");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (pg_up, pg_watch) = tokio::sync::watch::channel(true);
    let (s3_up, s3_watch) = tokio::sync::watch::channel(true);
    let pg_relay = rt.block_on(relay(gateway, url_addr(&pg), pg_watch));
    let s3_relay = rt.block_on(relay(gateway, url_addr(&s3), s3_watch));
    let env = [
        format!("PIPECTL_STORE={}", url_at(&store_url, pg_relay)),
        format!("PIPECTL_OBJECTS={objects}"),
        format!("AWS_ENDPOINT_URL=http://{s3_relay}"),
        "AWS_ALLOW_HTTP=true".to_string(),
        "PIPECTL_LOG=info".to_string(),
        format!(
            "AWS_ACCESS_KEY_ID={}",
            std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default()
        ),
        format!(
            "AWS_SECRET_ACCESS_KEY={}",
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default()
        ),
        format!(
            "AWS_REGION={}",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
        ),
    ];
    for i in 0..hosts {
        let name = format!("c{}", i + 1);
        let container = format!("{id}-{name}");
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            container.clone(),
        ];
        args.extend([
            "--network".into(),
            id.clone(),
            "--hostname".into(),
            name.clone(),
        ]);
        for e in &env {
            args.extend(["-e".into(), e.clone()]);
        }
        args.extend([
            image.to_string(),
            "pipectl".into(),
            "--root".into(),
            "/r".into(),
        ]);
        args.extend(["serve".into(), "--host-name".into(), name.clone()]);
        args.extend(["--lease-secs".into(), LEASE_SECS.to_string()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_ok(&refs);
        cluster.hosts.push(container.clone());
        wait_log(
            &container,
            if i == 0 {
                "listening on unix"
            } else {
                "following:"
            },
        );
    }
    Some(Run {
        cluster,
        pg_up,
        s3_up,
        _rt: rt,
    })
}

impl Run {
    /// Makes the inputs and the pipeline in the owner `c1` and commits the inputs (in the
    /// background: the job starts).
    fn start_job(&self) {
        let c1 = &self.cluster.hosts[0];
        let make_inputs = format!(
            "mkdir /in; i=0; while [ $i -lt {DATUMS} ]; do echo \"datum $i\" > /in/f$i; i=$((i+1)); done"
        );
        docker_ok(&["exec", c1, "sh", "-c", &make_inputs]);
        assert!(
            self.cluster
                .pipectl(c1, &["create", "repo", "data"])
                .status
                .success()
        );
        write_file(c1, "/p.yaml", PIPELINE);
        let created = self
            .cluster
            .pipectl(c1, &["create", "pipeline", "-f", "/p.yaml"]);
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let put = [
            "exec", "-d", c1, "pipectl", "--root", "/r", "put", "file", "-r",
        ];
        docker_ok(&[&put[..], &["data@master:/", "-f", "/in"]].concat());
    }
}

#[test]
fn three_hosts_survive_a_killed_owner_and_a_cut_off_host() {
    if common::server_mode() || common::server_store() {
        // The hosts serve a store of their own; nothing here uses the test's store or server.
        eprintln!(
            "skipped: multi-host test: it runs once, not again with PIPECTL_TEST_MODE or PIPECTL_TEST_STORE"
        );
        return;
    }
    let Some(run) = start(3, "") else {
        return;
    };
    run.start_job();
    let cluster = &run.cluster;
    let c1 = cluster.hosts[0].clone();

    // SIGKILL the owner mid-job, once it recorded datums it ran itself; another host takes
    // the store over and resumes the job.
    let (_, job) = cluster.wait_job(Duration::from_secs(120), "a running job", |j| {
        j["state"] == "JOB_RUNNING"
    });
    let job_id = job["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while !cluster.datum_hosts(&c1, &job_id).contains("c1") {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "c1 recorded no datum of its own"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    docker_ok(&["kill", "-s", "KILL", &c1]);
    let (owner, _) = cluster.wait_job(Duration::from_secs(120), "a new owner's progress", |j| {
        j["stats"]["datums_processed"].as_u64() >= Some(800)
    });
    assert_ne!(owner, c1);

    // Cut the following host off for longer than the lease, then let it back.
    let follower = cluster.hosts[1..]
        .iter()
        .find(|h| **h != owner)
        .unwrap()
        .clone();
    docker_ok(&["network", "disconnect", &cluster.net, &follower]);
    std::thread::sleep(Duration::from_secs(LEASE_SECS * 2 + 2));
    docker_ok(&["network", "connect", &cluster.net, &follower]);

    // The database goes away for 20 s: the owner loses its session and with it the store,
    // every host retries with backoff, and one of them owns the store again afterwards.
    cluster.wait_job(Duration::from_secs(120), "more progress", |j| {
        j["stats"]["datums_processed"].as_u64() >= Some(1_300)
    });
    run.pg_up.send(false).unwrap();
    std::thread::sleep(Duration::from_secs(20));
    run.pg_up.send(true).unwrap();

    // Then the S3 server goes away for 20 s: datums that meet it wait and run again, none
    // is recorded as failed.
    cluster.wait_job(Duration::from_secs(120), "progress after the outage", |j| {
        j["stats"]["datums_processed"].as_u64() >= Some(1_400)
    });
    run.s3_up.send(false).unwrap();
    std::thread::sleep(Duration::from_secs(20));
    run.s3_up.send(true).unwrap();

    let (owner, job) = cluster.wait_job(Duration::from_secs(300), "the job's end", |j| {
        j["state"] != "JOB_RUNNING" && j["state"] != "JOB_CREATED" && j["state"] != "JOB_STARTING"
    });
    assert_eq!(job["state"], "JOB_SUCCESS", "{job}");
    let job_id = job["id"].as_str().unwrap();
    let listed = cluster.pipectl(
        &owner,
        &["list", "datum", &format!("up@{job_id}"), "-o", "json"],
    );
    let datums: Vec<Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(datums.len(), DATUMS, "every datum recorded once");
    let ids: HashSet<&str> = datums.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), DATUMS, "no datum recorded twice");
    let mut by_host: BTreeMap<String, usize> = BTreeMap::new();
    for d in &datums {
        assert_eq!(d["state"], "SUCCESS", "{d}");
        *by_host
            .entry(d["host"].as_str().unwrap_or("-").to_string())
            .or_default() += 1;
    }
    eprintln!("datums by host: {by_host:?}");
    assert_eq!(
        by_host.keys().map(String::as_str).collect::<Vec<_>>(),
        ["c1", "c2", "c3"],
        "all three hosts ran datums: {by_host:?}"
    );

    // The output equals a one-host run's.
    let root = cluster.pipectl(&owner, &["inspect", "file", "up@master:/", "-o", "json"]);
    let root: Value = serde_json::from_slice(&root.stdout).unwrap();
    let inputs = tempfile::tempdir().unwrap();
    for i in 0..DATUMS {
        std::fs::write(inputs.path().join(format!("f{i}")), format!("datum {i}\n")).unwrap();
    }
    assert_eq!(
        root["hash"].as_str().unwrap(),
        one_host_root_hash(inputs.path())
    );
    drop(run);
    docker(&["rmi", image()]);
}

/// Throughput of the same job with 1, 2 and 3 hosts (no faults), as ratios to one host;
/// `benches/scripts/multi_host.sh` runs it (ignored in the test suite: about 5 minutes).
#[test]
#[ignore = "a benchmark: benches/scripts/multi_host.sh"]
fn throughput_with_one_two_and_three_hosts() {
    let mut seconds = Vec::new();
    for hosts in 1..=3 {
        let Some(run) = start(hosts, &format!("t{hosts}")) else {
            return;
        };
        run.start_job();
        let (_, job) = run
            .cluster
            .wait_job(Duration::from_secs(600), "the job's end", |j| {
                j["state"] == "JOB_SUCCESS" || j["state"] == "JOB_FAILURE"
            });
        assert_eq!(job["state"], "JOB_SUCCESS", "{job}");
        let ms = job["finished_ms"].as_u64().unwrap() - job["started_ms"].as_u64().unwrap();
        seconds.push(ms as f64 / 1000.0);
    }
    println!("hosts | job seconds | speed-up over one host");
    for (i, s) in seconds.iter().enumerate() {
        println!("{} | {s:.1} | {:.2}x", i + 1, seconds[0] / s);
    }
    docker(&["rmi", image()]);
}
