//! Running a command inside a worker pod: the [`ExecTransport`] seam and its real
//! implementation over the Kubernetes exec API ([`KubeExec`]).
//!
//! The datum flow (upload inputs, run the program, kill on timeout, download outputs) only
//! needs "run this argv in that pod with these byte streams and tell me the exit code". That
//! is a small trait so the flow can be tested without a cluster: the exec endpoint upgrades
//! the HTTP connection to a WebSocket, which kube's tower-test mock service cannot emulate (a
//! mocked response carries no upgradable connection, so `Api::exec` fails at the upgrade).
//! The crate's tests therefore check the request against the mock, drive the datum flow
//! through a transport that runs the same commands as local processes, and test this real
//! transport against a small WebSocket server on the loopback address that speaks the exec
//! protocol (`tests/websocket_exec.rs`, which also runs the conformance suite through it).
//!
//! **API server version.** Closing a command's stdin (the end of a tar stream, the end of a
//! `stdin` script) needs the `v5.channel.k8s.io` exec protocol, which kube negotiates with
//! Kubernetes 1.30 and later. On older servers kube can only close the whole WebSocket, so
//! the exit status of a command that was given stdin is lost and the datum fails with
//! [`ExecError::Broken`]. (k8s-openapi 0.29 targets Kubernetes 1.33+ anyway.)

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use pipeline_core::executor::lines::LineSplitter;
use pipeline_core::executor::{LogSink, LogStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Buffer (and WebSocket frame) size for exec streams.
const STREAM_BUF: usize = 64 * 1024;

/// How long output already received is drained after a session ended without a status.
const OUTPUT_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// A boxed byte source.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
/// A boxed byte sink.
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// The byte streams of one exec session.
#[derive(Default)]
pub struct ExecIo {
    /// Copied to the command's stdin, then closed. `None`: no stdin.
    pub stdin: Option<BoxRead>,
    /// Receives the command's stdout. `None`: discarded.
    pub stdout: Option<BoxWrite>,
    /// Receives the command's stderr. `None`: discarded.
    pub stderr: Option<BoxWrite>,
}

impl fmt::Debug for ExecIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecIo")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .finish()
    }
}

/// An exec session that could not run to a known exit code.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The session could not be opened (API error, upgrade refused, pod not found).
    #[error("cannot exec in pod {pod:?}: {message}")]
    Connect {
        /// The pod.
        pod: String,
        /// What went wrong.
        message: String,
        /// Underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The API server refused the exec (HTTP 401/403): the credentials lack `create` on
    /// `pods/exec`. Not retryable.
    #[error(
        "not allowed to exec in pod {pod:?} (HTTP {status}): the credentials need `create` on `pods/exec`"
    )]
    Forbidden {
        /// The pod.
        pod: String,
        /// The HTTP status.
        status: u16,
    },
    /// The session broke off before an exit status arrived.
    #[error("exec session in pod {pod:?} broke off: {message}")]
    Broken {
        /// The pod.
        pod: String,
        /// What went wrong.
        message: String,
    },
    /// The API server reported a failure that is not an exit code (for example the
    /// executable was not found in the container).
    #[error("exec in pod {pod:?} failed: {message}")]
    Remote {
        /// The pod.
        pod: String,
        /// The status message.
        message: String,
    },
}

/// Runs commands in pods.
#[async_trait]
pub trait ExecTransport: Send + Sync + fmt::Debug {
    /// Runs `argv` (no shell is added) in `container` of `pod`, pumping `io`, and returns the
    /// command's exit code once it has exited and its output streams are drained.
    async fn exec(
        &self,
        pod: &str,
        container: &str,
        argv: &[String],
        io: ExecIo,
    ) -> Result<i32, ExecError>;
}

/// [`ExecTransport`] over the Kubernetes exec API (`pods/exec`, WebSocket; kube feature `ws`).
#[derive(Clone)]
pub struct KubeExec {
    api: Api<Pod>,
}

impl fmt::Debug for KubeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeExec").finish_non_exhaustive()
    }
}

impl KubeExec {
    /// Execs in pods of `api`'s namespace.
    pub fn new(api: Api<Pod>) -> Self {
        KubeExec { api }
    }
}

/// Copies `src` to `dst` (or discards it); a failing `dst` switches to discarding so the
/// remote side is never blocked by a consumer that gave up.
async fn pump(mut src: impl AsyncRead + Unpin, mut dst: Option<BoxWrite>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(d) = dst.as_mut()
            && d.write_all(&buf[..n]).await.is_err()
        {
            dst = None;
        }
    }
    if let Some(mut d) = dst {
        let _ = d.shutdown().await;
    }
}

/// Exit code from the status the API server sends at the end of an exec session
/// (`Success`, or `Failure` with reason `NonZeroExitCode` and an `ExitCode` cause).
pub fn exit_code_from_status(pod: &str, status: &Status) -> Result<i32, ExecError> {
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode")
        && let Some(code) = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.trim().parse::<i32>().ok())
    {
        return Ok(code);
    }
    Err(ExecError::Remote {
        pod: pod.to_string(),
        message: status
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("{status:?}")),
    })
}

#[async_trait]
impl ExecTransport for KubeExec {
    async fn exec(
        &self,
        pod: &str,
        container: &str,
        argv: &[String],
        io: ExecIo,
    ) -> Result<i32, ExecError> {
        let params = AttachParams::default()
            .container(container)
            .stdin(io.stdin.is_some())
            .stdout(true)
            .stderr(true)
            .tty(false)
            // kube's default is 1 KiB per WebSocket frame: too small for tar streams.
            .max_stdin_buf_size(STREAM_BUF)
            .max_stdout_buf_size(STREAM_BUF)
            .max_stderr_buf_size(STREAM_BUF);
        let mut proc = self
            .api
            .exec(pod, argv.to_vec(), &params)
            .await
            .map_err(|e| session_error(pod, e))?;
        let status = proc.take_status();
        let remote_stdin = proc.stdin();
        let stdin_task = async {
            if let (Some(mut src), Some(mut dst)) = (io.stdin, remote_stdin) {
                // A broken pipe (the command did not read all of its stdin) is not an error.
                let _ = tokio::io::copy(&mut src, &mut dst).await;
                let _ = dst.shutdown().await;
            }
        };
        let stdout = proc.stdout();
        let stderr = proc.stderr();
        let out_task = async {
            if let Some(s) = stdout {
                pump(s, io.stdout).await;
            }
        };
        let err_task = async {
            if let Some(s) = stderr {
                pump(s, io.stderr).await;
            }
        };
        let status = async {
            match status {
                Some(s) => s.await,
                None => None,
            }
        };
        // Once the command has exited (status and both output streams are in), stdin is
        // abandoned: a command that did not read it all may leave the copy waiting on a peer
        // that no longer reads.
        let finished = outputs_then_status(
            async {
                tokio::join!(out_task, err_task);
            },
            status,
        );
        let status = {
            let mut stdin_task = std::pin::pin!(stdin_task);
            let mut finished = std::pin::pin!(finished);
            tokio::select! {
                biased;
                status = &mut finished => status,
                () = &mut stdin_task => finished.await,
            }
        };
        let joined = proc.join().await;
        match status {
            Some(status) => exit_code_from_status(pod, &status),
            None => Err(ExecError::Broken {
                pod: pod.to_string(),
                message: match joined {
                    Err(e) => e.to_string(),
                    Ok(()) => "the connection closed without an exit status".to_string(),
                },
            }),
        }
    }
}

/// Why a session could not be opened: refused (401/403) or not reached.
fn session_error(pod: &str, e: kube::Error) -> ExecError {
    match e {
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
            ExecError::Forbidden {
                pod: pod.to_string(),
                status: status.code,
            }
        }
        kube::Error::UpgradeConnection(kube::client::UpgradeConnectionError::ProtocolSwitch(
            code,
        )) if code == http::StatusCode::FORBIDDEN || code == http::StatusCode::UNAUTHORIZED => {
            ExecError::Forbidden {
                pod: pod.to_string(),
                status: code.as_u16(),
            }
        }
        e => ExecError::Connect {
            pod: pod.to_string(),
            message: "opening the session".to_string(),
            source: Some(Box::new(e)),
        },
    }
}

/// Waits for the exit status and the end of both output streams. kube's message loop closes
/// the streams when it ends normally (with a status, or the connection closed); when it
/// stops on an error (no status) it leaves them open, no end-of-file ever comes, and what
/// they hold after [`OUTPUT_DRAIN`] is all there will be.
async fn outputs_then_status(
    outputs: impl std::future::Future<Output = ()>,
    status: impl std::future::Future<Output = Option<Status>>,
) -> Option<Status> {
    let mut outputs = std::pin::pin!(outputs);
    let mut status = std::pin::pin!(status);
    let mut outputs_done = false;
    let status = tokio::select! {
        status = &mut status => status,
        () = &mut outputs => {
            outputs_done = true;
            (&mut status).await
        }
    };
    if !outputs_done {
        if status.is_some() {
            outputs.await;
        } else {
            let _ = tokio::time::timeout(OUTPUT_DRAIN, outputs).await;
        }
    }
    status
}

/// An [`AsyncWrite`] that splits bytes into lines for a [`LogSink`] with the core's
/// [`LineSplitter`] (the last partial line is emitted on shutdown or drop).
pub struct LogWriter {
    sink: Arc<dyn LogSink>,
    lines: LineSplitter,
}

impl LogWriter {
    /// Lines go to `sink` tagged with `stream`.
    pub fn new(sink: Arc<dyn LogSink>, stream: LogStream) -> Self {
        LogWriter {
            sink,
            lines: LineSplitter::new(stream),
        }
    }

    fn emit_rest(&mut self) {
        self.lines.finish(&*self.sink);
    }
}

impl AsyncWrite for LogWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        this.lines.push(data, &*this.sink);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.emit_rest();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.emit_rest();
    }
}

/// An [`AsyncWrite`] that keeps the last `limit` bytes written (for error messages).
#[derive(Clone, Debug)]
pub struct TailBuffer {
    buf: Arc<Mutex<Vec<u8>>>,
    limit: usize,
}

impl TailBuffer {
    /// Keeps at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        TailBuffer {
            buf: Arc::default(),
            limit,
        }
    }

    /// What was kept, lossy UTF-8, trimmed.
    pub fn text(&self) -> String {
        let buf = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buf).trim().to_string()
    }
}

impl AsyncWrite for TailBuffer {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut b) = self.buf.lock() {
            b.extend_from_slice(data);
            if b.len() > self.limit {
                let cut = b.len() - self.limit;
                b.drain(..cut);
            }
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
