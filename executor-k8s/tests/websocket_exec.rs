//! The real [`KubeExec`] transport over a real WebSocket: a local server speaks the
//! Kubernetes exec protocol (`v5.channel.k8s.io`: channel 0 stdin, 1 stdout, 2 stderr,
//! 3 status, 255 close) on 127.0.0.1 and runs each command through a local transport. This
//! covers what tower-test cannot: the upgrade, stream pumping, stdin close, exit statuses,
//! and the whole datum flow and conformance suite through kube's exec client.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{FakeApi, LocalExec, NamespacedExec, mock_client};
use executor_k8s::{ExecIo, ExecTransport, K8sConfig, K8sExecutor, KubeExec, WorkerPaths};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use pipeline_core::executor::{Secrets, WorkerPoolSpec};
use pipeline_core::testkit::{self, Harness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_json(code: Result<i32, String>) -> serde_json::Value {
    match code {
        Ok(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Ok(c) => serde_json::json!({
            "metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {c}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": c.to_string()}]}
        }),
        Err(m) => serde_json::json!({"metadata": {}, "status": "Failure", "message": m}),
    }
}

/// Serves exec sessions on a loopback port until the test ends; returns the base URL.
async fn exec_server(backend: Arc<dyn ExecTransport>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let backend = backend.clone();
            tokio::spawn(async move { session(tcp, backend).await });
        }
    });
    format!("http://{addr}")
}

#[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
async fn session(tcp: tokio::net::TcpStream, backend: Arc<dyn ExecTransport>) {
    let mut uri = None;
    let ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, mut resp: Response| {
        uri = Some(req.uri().clone());
        resp.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "v5.channel.k8s.io".parse().unwrap(),
        );
        Ok(resp)
    })
    .await
    .unwrap();
    let uri = uri.unwrap();
    let pod = uri.path().split('/').nth(6).unwrap_or_default().to_string();
    let mut argv = Vec::new();
    let mut params = HashMap::new();
    for kv in uri.query().unwrap_or("").split('&') {
        if let Some((k, v)) = kv.split_once('=') {
            if k == "command" {
                argv.push(decode(v));
            } else {
                params.insert(k.to_string(), decode(v));
            }
        }
    }
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let want_stdin = params.get("stdin").map(String::as_str) == Some("true");
    let (mut stdin_w, stdin_r) = tokio::io::duplex(64 * 1024);
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Binary(data) = msg {
                match data.first() {
                    Some(0) => {
                        // An error means the command stopped reading: drop the rest.
                        let _ = stdin_w.write_all(&data[1..]).await;
                    }
                    Some(255) if data.get(1) == Some(&0) => {
                        let _ = stdin_w.shutdown().await;
                        break;
                    }
                    _ => {}
                }
            }
        }
    });
    let forward =
        |mut r: tokio::io::DuplexStream, channel: u8, tx: tokio::sync::mpsc::Sender<Message>| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut frame = Vec::with_capacity(n + 1);
                            frame.push(channel);
                            frame.extend_from_slice(&buf[..n]);
                            if tx.send(Message::binary(frame)).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            })
        };
    let (out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (err_w, err_r) = tokio::io::duplex(64 * 1024);
    let fo = forward(out_r, 1, tx.clone());
    let fe = forward(err_r, 2, tx.clone());
    let io = ExecIo {
        stdin: want_stdin.then(|| Box::pin(stdin_r) as executor_k8s::BoxRead),
        stdout: Some(Box::pin(out_w)),
        stderr: Some(Box::pin(err_w)),
    };
    let container = params.get("container").cloned().unwrap_or_default();
    let code = backend
        .exec(&pod, &container, &argv, io)
        .await
        .map_err(|e| e.to_string());
    let _ = fo.await;
    let _ = fe.await;
    let mut frame = vec![3u8];
    frame.extend(serde_json::to_vec(&status_json(code)).unwrap());
    let _ = tx.send(Message::binary(frame)).await;
    drop(tx);
    let _ = writer.await;
    reader.abort();
}

async fn kube_exec(url: &str) -> KubeExec {
    let config = kube::Config::new(url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    KubeExec::new(Api::<Pod>::namespaced(client, "test-ns"))
}

#[tokio::test]
async fn kube_exec_streams_stdin_stdout_stderr_and_exit_codes() {
    let url = exec_server(Arc::new(LocalExec::default())).await;
    let exec = kube_exec(&url).await;

    // 8 MiB through stdin and back through stdout, byte for byte.
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (w, mut r) = tokio::io::duplex(1 << 20);
    let collect = tokio::spawn(async move {
        let mut v = Vec::new();
        r.read_to_end(&mut v).await.unwrap();
        v
    });
    let code = exec
        .exec(
            "p",
            "user",
            &[
                "sh".into(),
                "-c".into(),
                "cat; echo done >&2; exit 3".into(),
            ],
            ExecIo {
                stdin: Some(Box::pin(std::io::Cursor::new(data.clone()))),
                stdout: Some(Box::pin(w)),
                stderr: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(code, 3);
    let echoed = collect.await.unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "stdout differs from stdin");

    // A command that exits without reading its stdin: the server closes the session while
    // the client may still be sending. kube's exec client then stops without closing the
    // output streams; the call must still end (with the status, or a Broken error).
    for _ in 0..5 {
        let big = vec![b'x'; 8 << 20];
        let ended = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            exec.exec(
                "p",
                "user",
                &["sh".into(), "-c".into(), "exit 0".into()],
                ExecIo {
                    stdin: Some(Box::pin(std::io::Cursor::new(big))),
                    ..Default::default()
                },
            ),
        )
        .await;
        match ended {
            Ok(Ok(0) | Err(executor_k8s::ExecError::Broken { .. })) => {}
            other => panic!("unread stdin: {other:?}"),
        }
    }

    // No stdin attached: the command reads EOF; exit 0 is Success.
    let code = exec
        .exec(
            "p",
            "user",
            &["sh".into(), "-c".into(), "cat".into()],
            ExecIo::default(),
        )
        .await
        .unwrap();
    assert_eq!(code, 0);

    // A status that is not an exit code becomes an error naming the pod.
    let err = exec
        .exec("p", "user", &["/no/such/binary".into()], ExecIo::default())
        .await;
    // LocalExec cannot spawn it: the server reports a failure status without an exit code.
    assert!(
        matches!(&err, Err(executor_k8s::ExecError::Remote { pod, .. }) if pod == "p"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_websocket_exec() {
    if let Some(reason) = NamespacedExec::unsupported() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED conformance_through_websocket_exec: {reason}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NamespacedExec::new(dir.path()));
    let control = backend.control.display().to_string();
    let url = exec_server(backend).await;
    let (client, handle) = mock_client();
    FakeApi::new().serve(handle);
    let config = K8sConfig {
        namespace: Some("test-ns".into()),
        owner: "ws".into(),
        paths: WorkerPaths {
            pfs: "/pfs".into(),
            control,
            ..WorkerPaths::default()
        },
        ..K8sConfig::default()
    };
    let executor = K8sExecutor::builder()
        .config(config)
        .exec_transport(Arc::new(kube_exec(&url).await))
        .build_on(client);
    let pool = WorkerPoolSpec {
        project: "default".into(),
        pipeline: "ws".into(),
        version: 1,
        workers: 1,
        spec: Arc::new(Default::default()),
        secrets: Secrets::default(),
    };
    let harness = Harness::new(Arc::new(executor), pool)
        .scratch_root(dir.path())
        .host_process_checks(true)
        .inputs_read_only(false)
        .large_output_bytes(32 << 20)
        .reuse_datums(20);
    testkit::run_all(&harness).await;
}

/// Throughput of the exec transport: 64 MiB through `cat` over kube's WebSocket client,
/// as a ratio to the same through local pipes (baseline, same run). Not a pass/fail test:
/// `cargo test -p executor-k8s --test websocket_exec -- --ignored --nocapture measure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints numbers"]
async fn measure_exec_throughput() {
    const BYTES: usize = 64 << 20;
    async fn pipe_through(exec: &dyn ExecTransport) -> std::time::Duration {
        let data = vec![7u8; BYTES];
        let (w, mut r) = tokio::io::duplex(1 << 20);
        let drain = tokio::spawn(async move {
            let mut n = 0usize;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break n,
                    Ok(k) => n += k,
                }
            }
        });
        let started = std::time::Instant::now();
        let code = exec
            .exec(
                "p",
                "user",
                &["cat".into()],
                ExecIo {
                    stdin: Some(Box::pin(std::io::Cursor::new(data))),
                    stdout: Some(Box::pin(w)),
                    stderr: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(code, 0);
        assert_eq!(drain.await.unwrap(), BYTES);
        started.elapsed()
    }
    let local = LocalExec::default();
    let baseline = pipe_through(&local).await;
    let url = exec_server(Arc::new(LocalExec::default())).await;
    let ws = pipe_through(&kube_exec(&url).await).await;
    let mib = (BYTES >> 20) as f64;
    println!(
        "64 MiB through cat: local pipes {:.0} MiB/s, WebSocket exec {:.0} MiB/s, time ratio {:.1}x",
        mib / baseline.as_secs_f64(),
        mib / ws.as_secs_f64(),
        ws.as_secs_f64() / baseline.as_secs_f64()
    );
}
