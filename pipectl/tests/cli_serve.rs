//! `pipectl serve` end to end: the real binary owns the store while other `pipectl`s go
//! through its socket; SIGTERM stops it cleanly (exit 0) leaving a running job resumable, and
//! so does SIGKILL; the next start resumes the job.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use futures::StreamExt;
use pipeline_core::pps::{Event, JobState};
use pipeline_server::Client;

/// Starts `pipectl serve` on the store and waits until its socket answers.
fn start_serve(e: &Env) -> Child {
    let child = e
        .process()
        .args(["serve", "--poll-ms", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = e.root().join("api.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "pipectl serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Sends SIGTERM and waits for the exit code (at most 10 s).
fn terminate(mut child: Child) -> i32 {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pipectl serve did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (at most 60 s) for the first event of pipeline `slow` that `stop` accepts.
fn wait_event(e: &Env, stop: impl Fn(&Event) -> bool) -> Event {
    rt().block_on(async {
        let client = Client::unix(e.root().join("api.sock"));
        let mut events = client.events(Some("slow"), None).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let ev = events.next().await.expect("stream ended").unwrap();
                if stop(&ev) {
                    return ev;
                }
            }
        })
        .await
        .expect("event in time")
    })
}

#[test]
fn commands_go_through_the_socket_while_serve_holds_the_store_and_sigterm_stops_it() {
    let e = Env::embedded();
    e.ok(&["init"]);
    let serve = start_serve(&e);
    // The store lock is held by serve: these only work through its socket.
    e.ok(&["--no-wait-lock", "create", "repo", "data"]);
    assert!(e.ok(&["--no-wait-lock", "list", "repo"]).contains("data"));
    // `--expose` belongs to the server (user code runs there): a client's is refused.
    let err = String::from_utf8_lossy(
        &e.cmd(&["--expose", "/usr/share", "list", "repo"])
            .code(2)
            .get_output()
            .stderr,
    )
    .into_owned();
    assert!(err.contains("pipectl serve"), "{err}");
    // A second server is refused, clearly.
    let err = e.fails(&["serve"]);
    assert!(err.contains("already serves"), "{err}");
    let started = Instant::now();
    assert_eq!(terminate(serve), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!e.root().join("api.sock").exists());
    // Embedded again: the repo is there.
    assert!(e.ok(&["list", "repo"]).contains("data"));
}

#[test]
fn a_job_interrupted_by_sigterm_or_sigkill_resumes_at_the_next_start() {
    for signal in ["TERM", "KILL"] {
        let e = Env::embedded();
        e.ok(&["create", "repo", "data"]);
        for name in ["a", "b", "c"] {
            let f = e.local(name, name);
            e.ok(&["put", "file", &format!("data@master:/{name}"), "-f", &f]);
        }
        let spec = e.local(
            "slow.yaml",
            "pipeline: {name: slow}\ntransform:\n  cmd: [sh, -c, 'sleep 2; cp $data /pfs/out/']\ninput: {pfs: {repo: data, glob: /*}}\n",
        );
        e.ok(&["--no-wait", "create", "pipeline", "-f", &spec]);
        let mut serve = start_serve(&e);
        // One datum recorded, the next one running: stop now.
        wait_event(&e, |ev| matches!(ev, Event::Datum(_)));
        if signal == "TERM" {
            assert_eq!(terminate(serve), 0, "SIGTERM exits 0");
        } else {
            serve.kill().unwrap();
            serve.wait().unwrap();
        }
        // Parked, not killed: still RUNNING, its output commit not finished.
        let jobs = e.json(&["list", "job", "-p", "slow", "-o", "json"]);
        assert_eq!(
            jobs[0]["state"], "JOB_RUNNING",
            "after SIG{signal}: {jobs:?}"
        );
        let serve = start_serve(&e);
        let done = wait_event(
            &e,
            |ev| matches!(ev, Event::Job(j) if j.state.is_terminal()),
        );
        let Event::Job(job) = done else {
            unreachable!()
        };
        assert_eq!(
            job.state,
            JobState::JobSuccess,
            "after SIG{signal}: {job:?}"
        );
        assert_eq!(job.restarts, 1, "after SIG{signal}");
        assert_eq!(terminate(serve), 0);
        for name in ["a", "b", "c"] {
            assert_eq!(
                e.ok(&["get", "file", &format!("slow@master:/{name}")]),
                name
            );
        }
    }
}

/// The issue's "done when": while a long job runs under `pipectl serve`, one terminal follows
/// its logs (`logs -f` shows a running datum's lines as it prints them), another lists jobs
/// (start time, duration) and stops the job with an 8-character ID prefix; `logs -f` then
/// ends, and `wait job` exits 1 naming the state.
#[test]
fn two_terminals_follow_list_and_stop_a_running_job() {
    use std::io::BufRead;
    let e = Env::embedded();
    e.ok(&["create", "repo", "data"]);
    let f = e.local("a", "a");
    e.ok(&["put", "file", "data@master:/a", "-f", &f]);
    let spec = e.local(
        "slow.yaml",
        "pipeline: {name: slow}\ntransform:\n  cmd: [sh, -c, 'echo started $data; sleep 600']\ninput: {pfs: {repo: data, glob: /*}}\n",
    );
    let serve = start_serve(&e);
    e.ok(&["--no-wait", "create", "pipeline", "-f", &spec]);
    // Terminal 1: follows the logs; the running datum's line arrives while it runs.
    let mut follow = e
        .process()
        .args(["logs", "-f", "-p", "slow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let Ok(first) = rx.recv_timeout(Duration::from_secs(60)) else {
        // Leave nothing running behind a failed test.
        let _ = follow.kill();
        let _ = terminate(serve);
        panic!("logs -f showed nothing of the running datum within 60 s");
    };
    assert!(first.contains("started /pfs/data/a"), "{first}");
    // Terminal 2: the job is still running; list it, then stop it by prefix.
    let listed = e.ok(&["list", "job", "-p", "slow"]);
    assert!(
        listed.contains("STARTED") && listed.contains("DURATION"),
        "{listed}"
    );
    assert!(listed.contains("JOB_RUNNING"), "{listed}");
    let jobs = e.json(&["list", "job", "-p", "slow", "-o", "json"]);
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let prefix = format!("slow@{}", &id[..8]);
    e.ok(&["stop", "job", &prefix]);
    assert!(follow.wait().unwrap().success());
    // Ended, and the line was shown once (not again when the datum's record was stored).
    let all = reader.join().unwrap();
    assert_eq!(all.matches("started /pfs/data/a").count(), 1, "{all}");
    let a = e.cmd(&["wait", "job", &prefix]).code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("JOB_KILLED"), "{err}");
    // A prefix under 8 characters is a usage error.
    e.cmd(&["inspect", "job", &format!("slow@{}", &id[..7])])
        .code(2);
    assert_eq!(terminate(serve), 0);
}

/// `--listen` over TCP: a client with `--server` and the token from `serve --print-token`
/// works; without the token nothing is answered but 401 (exit 1, nothing changed).
#[test]
fn a_tcp_server_needs_its_token() {
    let e = Env::embedded();
    e.ok(&["init"]);
    let token = e.ok(&["serve", "--print-token"]).trim().to_string();
    assert_eq!(token.len(), 64, "{token}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = e
        .process()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "no TCP listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    let elsewhere = Env::embedded();
    let run = |args: &[&str], token: Option<&str>| {
        let mut c = assert_cmd::Command::cargo_bin("pipectl").unwrap();
        c.env("PIPECTL_ROOT", elsewhere.root())
            .env("PIPECTL_SERVER", &url)
            .env_remove("PIPECTL_TOKEN");
        if let Some(t) = token {
            c.env("PIPECTL_TOKEN", t);
        }
        c.args(args).assert()
    };
    let denied = run(&["create", "repo", "nope"], None).code(1);
    let err = String::from_utf8_lossy(&denied.get_output().stderr).into_owned();
    assert!(err.to_lowercase().contains("token"), "{err}");
    run(&["create", "repo", "data"], Some("wrong")).code(1);
    run(&["create", "repo", "data"], Some(&token)).success();
    let listed = run(&["list", "repo"], Some(&token)).success();
    let out = String::from_utf8_lossy(&listed.get_output().stdout).into_owned();
    assert!(out.contains("data") && !out.contains("nope"), "{out}");
    // Over TCP the server may not write local paths: `get file -r` downloads file by file.
    let local = tempfile::tempdir().unwrap();
    let x = local.path().join("x.txt");
    std::fs::write(&x, "over tcp").unwrap();
    run(
        &[
            "put",
            "file",
            "data@master:/d/x.txt",
            "-f",
            x.to_str().unwrap(),
        ],
        Some(&token),
    )
    .success();
    let got = local.path().join("got");
    run(
        &[
            "get",
            "file",
            "-r",
            "data@master:/d",
            "-o",
            got.to_str().unwrap(),
        ],
        Some(&token),
    )
    .success();
    assert_eq!(
        std::fs::read_to_string(got.join("x.txt")).unwrap(),
        "over tcp"
    );
    assert!(
        !elsewhere.root().exists(),
        "the client made a store of its own"
    );
    assert_eq!(terminate(serve), 0);
}

/// `--s3 --no-auth`: the S3 gateway answers beside the socket, on the same store: a file put
/// with `pipectl` is an object of bucket `master.data`, a bucket that does not exist is S3's
/// `NoSuchBucket` XML. `--no-auth` on a non-loopback `--s3` address is refused.
#[test]
fn serve_s3_serves_branches_as_buckets() {
    let e = Env::embedded();
    e.ok(&["init"]);
    let err = e.fails(&["serve", "--s3", "0.0.0.0:0", "--no-auth"]);
    assert!(err.contains("non-loopback"), "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = e
        .process()
        .args(["serve", "--no-auth", "--s3", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "no S3 listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    e.ok(&["create", "repo", "data"]);
    let local = tempfile::tempdir().unwrap();
    let x = local.path().join("x.txt");
    std::fs::write(&x, "through s3").unwrap();
    e.ok(&[
        "put",
        "file",
        "data@master:/d/x.txt",
        "-f",
        x.to_str().unwrap(),
    ]);
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let obj = get("/master.data/d/x.txt");
    assert!(obj.starts_with("HTTP/1.1 200"), "{obj}");
    assert!(obj.ends_with("through s3"), "{obj}");
    let missing = get("/master.nosuch/");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("<Code>NoSuchBucket</Code>"), "{missing}");
    assert_eq!(terminate(serve), 0);
}
