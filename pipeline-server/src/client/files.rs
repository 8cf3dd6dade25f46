//! File calls: streamed downloads and uploads, NDJSON listings read as they arrive.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Request, header};
use http_body_util::BodyExt;
use pipeline_core::pfs::{FileInfo, FileKind};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::{Client, ClientError, ClientResult, NO_BODY, NdjsonStream, query, seg};
use crate::error::ErrorBody;
use crate::routes::files::{
    ERROR_TRAILER, ExportLocalDir, ExportResult, HASH_HEADER, PATH_HEADER, PutLocalDir,
    SIZE_HEADER, WriteResult, decode_header_text,
};

/// Bytes per chunk of an upload body.
const CHUNK: usize = 64 << 10;

/// A file being downloaded: its description and its content, chunk by chunk.
pub struct Download {
    /// Path, size and hash, from the response headers.
    pub info: FileInfo,
    client: Client,
    body: Body,
}

impl Download {
    /// The next chunk; `None` at the end. Damage the server found after the download
    /// started (the content does not match its hash) is an error here, never an end.
    pub async fn chunk(&mut self) -> ClientResult<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) if d.is_empty() => {}
                    Ok(d) => return Ok(Some(d)),
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers()
                            && let Some(v) = t.get(ERROR_TRAILER)
                        {
                            return Err(trailer_error(&self.client, v));
                        }
                    }
                },
                Some(Err(e)) => return Err(self.client.protocol(e)),
            }
        }
    }
}

fn trailer_error(client: &Client, v: &HeaderValue) -> ClientError {
    let text = decode_header_text(v.to_str().unwrap_or_default());
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => ClientError::Api {
            kind: b.error.kind,
            message: b.error.message,
        },
        Err(_) => client.protocol(format!("the download failed: {text}")),
    }
}

/// How a body made by [`body_from_reader`] or [`tar_body_of_dir`] went on the client's
/// side: the local read error that broke it off, and what a directory walk skipped.
#[derive(Clone, Default)]
pub struct BodyOutcome {
    inner: Arc<Mutex<OutcomeInner>>,
}

#[derive(Default)]
struct OutcomeInner {
    error: Option<io::Error>,
    skipped_symlinks: u64,
}

impl BodyOutcome {
    /// The local error that ended the body early, if any (taken once).
    pub fn take_error(&self) -> Option<io::Error> {
        self.lock().error.take()
    }

    /// Symlinks a directory walk skipped (never followed).
    pub fn skipped_symlinks(&self) -> u64 {
        self.lock().skipped_symlinks
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutcomeInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, e: io::Error) -> io::Error {
        let copy = io::Error::new(e.kind(), e.to_string());
        self.lock().error = Some(e);
        copy
    }
}

/// Chunks written into a channel that feeds a request body.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the request ended"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body fed by `produce` writing on its own thread; an error it returns breaks the body
/// off (the server then discards the write) and is kept in the outcome.
fn body_from_producer(
    produce: impl FnOnce(&mut dyn Write, &BodyOutcome) -> io::Result<()> + Send + 'static,
) -> (Body, BodyOutcome) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(8);
    let outcome = BodyOutcome::default();
    let theirs = outcome.clone();
    std::thread::spawn(move || {
        let err_tx = tx.clone();
        let mut w = io::BufWriter::with_capacity(CHUNK, ChannelWriter { tx });
        let r = produce(&mut w, &theirs).and_then(|()| w.flush());
        // Once the body is dropped (the server answered early, e.g. a full disk), what
        // failed here is only that: the server's answer is the outcome.
        if let Err(e) = r
            && !err_tx.is_closed()
        {
            let _ = err_tx.blocking_send(Err(theirs.fail(e)));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (Body::from_stream(stream), outcome)
}

/// A request body streamed from `reader` on its own thread, in bounded memory.
pub fn body_from_reader(mut reader: impl Read + Send + 'static) -> (Body, BodyOutcome) {
    body_from_producer(move |w, _| io::copy(&mut reader, w).map(|_| ()))
}

/// A tar stream of every regular file below local directory `dir` (names relative to it,
/// sorted), built on its own thread; symlinks are skipped, never followed, and counted.
pub fn tar_body_of_dir(dir: PathBuf) -> (Body, BodyOutcome) {
    body_from_producer(move |w, outcome| {
        let mut builder = tar::Builder::new(w);
        let mut stack = vec![(dir, PathBuf::new())];
        while let Some((local, rel)) = stack.pop() {
            let mut entries = fs::read_dir(&local)
                .and_then(|d| d.collect::<io::Result<Vec<_>>>())
                .map_err(|e| with_path(&local, e))?;
            entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
            for e in entries {
                let path = e.path();
                let ft = e.file_type().map_err(|err| with_path(&path, err))?;
                let name = rel.join(e.file_name());
                if ft.is_symlink() {
                    outcome.lock().skipped_symlinks += 1;
                } else if ft.is_dir() {
                    stack.push((path, name));
                } else if ft.is_file() {
                    let mut f = fs::File::open(&path).map_err(|err| with_path(&path, err))?;
                    builder
                        .append_file(&name, &mut f)
                        .map_err(|err| with_path(&path, err))?;
                }
            }
        }
        builder.finish()
    })
}

fn with_path(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

impl Client {
    fn file_path(repo: &str, commit: &str, what: &str, q: &[(&str, String)]) -> String {
        format!(
            "/api/v1/repos/{}/commits/{}/{what}{}",
            seg(repo),
            seg(commit),
            query(q)
        )
    }

    /// Sends `body` as is (`content_type`) and reads a JSON answer.
    async fn send_body<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: Body,
    ) -> ClientResult<T> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .map_err(|e| self.protocol(e))?;
        let resp = self.checked(self.send(req).await?).await?;
        let bytes = self.bytes(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| self.protocol(format!("bad answer: {e}")))
    }

    /// `GET .../commits/{commit}/file?path=`: starts a download.
    pub async fn get_file(&self, repo: &str, commit: &str, path: &str) -> ClientResult<Download> {
        let uri = Self::file_path(repo, commit, "file", &[("path", path.into())]);
        let req = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(header::TE, "trailers")
            .body(Body::empty())
            .map_err(|e| self.protocol(e))?;
        let resp = self.checked(self.send(req).await?).await?;
        let h = resp.headers();
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        let size = text(SIZE_HEADER).and_then(|s| s.parse().ok());
        let hash = text(HASH_HEADER).and_then(|s| s.parse().ok());
        let (Some(size), Some(hash)) = (size, hash) else {
            return Err(self.protocol("a download without its size and hash headers"));
        };
        let info = FileInfo {
            path: text(PATH_HEADER)
                .map(decode_header_text)
                .unwrap_or_else(|| path.to_string()),
            kind: FileKind::File,
            size,
            hash,
        };
        Ok(Download {
            info,
            client: self.clone(),
            body: resp.into_body(),
        })
    }

    /// `PUT .../commits/{at}/file?path=`: uploads `body` as one file (auto-commit rule).
    pub async fn put_file(
        &self,
        repo: &str,
        at: &str,
        path: &str,
        body: Body,
    ) -> ClientResult<WriteResult> {
        let uri = Self::file_path(repo, at, "file", &[("path", path.into())]);
        self.send_body(Method::PUT, &uri, "application/octet-stream", body)
            .await
    }

    /// `PUT .../commits/{at}/tar?path=`: uploads a tar stream below `path`.
    pub async fn put_tar(
        &self,
        repo: &str,
        at: &str,
        path: &str,
        body: Body,
    ) -> ClientResult<WriteResult> {
        let uri = Self::file_path(repo, at, "tar", &[("path", path.into())]);
        self.send_body(Method::PUT, &uri, "application/x-tar", body)
            .await
    }

    /// `POST .../commits/{at}/local_dir`: uploads a directory on the server's file system
    /// (only in-process or over the Unix socket; `Forbidden` elsewhere).
    pub async fn put_local_dir(
        &self,
        repo: &str,
        at: &str,
        path: &str,
        local_path: &str,
    ) -> ClientResult<WriteResult> {
        let uri = Self::file_path(repo, at, "local_dir", &[]);
        let body = PutLocalDir {
            path: path.into(),
            local_path: local_path.into(),
        };
        self.json(Method::POST, &uri, Some(&body)).await
    }

    /// `POST .../commits/{commit}/export`: writes the tree at `path` into a directory on the
    /// server's file system (only in-process or over the Unix socket; `Forbidden` elsewhere).
    pub async fn export_local_dir(
        &self,
        repo: &str,
        commit: &str,
        path: &str,
        local_path: &str,
    ) -> ClientResult<ExportResult> {
        let uri = Self::file_path(repo, commit, "export", &[]);
        let body = ExportLocalDir {
            path: path.into(),
            local_path: local_path.into(),
        };
        self.json(Method::POST, &uri, Some(&body)).await
    }

    /// `DELETE .../commits/{at}/file?path=` (auto-commit rule).
    pub async fn delete_file(&self, repo: &str, at: &str, path: &str) -> ClientResult<WriteResult> {
        let uri = Self::file_path(repo, at, "file", &[("path", path.into())]);
        self.json(Method::DELETE, &uri, NO_BODY).await
    }

    /// `GET .../commits/{commit}/file/info?path=`.
    pub async fn inspect_file(
        &self,
        repo: &str,
        commit: &str,
        path: &str,
    ) -> ClientResult<FileInfo> {
        let uri = Self::file_path(repo, commit, "file/info", &[("path", path.into())]);
        self.json(Method::GET, &uri, NO_BODY).await
    }

    /// `GET .../commits/{commit}/files?path=&recursive=`, streamed.
    pub async fn list_files(
        &self,
        repo: &str,
        commit: &str,
        path: &str,
        recursive: bool,
    ) -> ClientResult<NdjsonStream<FileInfo>> {
        let q = [
            ("path", path.to_string()),
            ("recursive", recursive.to_string()),
        ];
        let uri = Self::file_path(repo, commit, "files", &q);
        let resp = self.request(Method::GET, &uri, NO_BODY).await?;
        Ok(NdjsonStream::new(self, resp))
    }

    /// `GET .../commits/{commit}/glob?pattern=`, streamed.
    pub async fn glob_files(
        &self,
        repo: &str,
        commit: &str,
        pattern: &str,
    ) -> ClientResult<NdjsonStream<FileInfo>> {
        let uri = Self::file_path(repo, commit, "glob", &[("pattern", pattern.into())]);
        let resp = self.request(Method::GET, &uri, NO_BODY).await?;
        Ok(NdjsonStream::new(self, resp))
    }
}
