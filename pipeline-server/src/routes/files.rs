//! `/api/v1/repos/{repo}/commits/{commit}/...` files: streaming download and upload (one
//! file, a tar archive, or a directory on the server's own file system), inspect, list, glob,
//! delete.
//!
//! Nothing is buffered whole: a download reads the store on the blocking pool in 64 KiB
//! chunks into a bounded channel that feeds the response body; an upload bridges the request
//! body into the store's blocking reader; listings are NDJSON written as the store's
//! iterator yields. Memory per request is a few chunks, whatever the size.
//!
//! Writes follow pachctl's auto-commit rule ([`Store::write_auto_commit`]): into the
//! branch's open head commit, or a commit started for the write alone and finished after
//! it. An upload whose body breaks off (the client went away, its stream failed) fails the
//! write, and the auto commit is discarded: nothing half-written becomes visible.
//!
//! Errors found after a response started (a damaged object noticed at the end of a
//! download, a store failure mid-listing) cannot change the status any more. A download then
//! ends with the trailer `x-pipeline-error` (an [`ErrorBody`], see [`decode_header_text`])
//! when the request sent `TE: trailers`, and otherwise breaks the body off, so no client
//! mistakes damaged content for the file; a listing ends with a line `{"error": ...}`.

use std::cell::RefCell;
use std::io::{self, Read};
use std::path::{Component, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures::TryStreamExt;
use http_body_util::StreamBody;
use hyper::body::Frame;
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pfs::{
    CommitRef, FileInfo, PfsError, RepoRef, Store, TransferStats, validate_file_path,
};
use pipeline_core::pps::Engine;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail, ErrorKind, pfs_kind};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// Response header of a download: the file's size in bytes.
pub const SIZE_HEADER: &str = "x-file-size";
/// Response header of a download: the file's content hash (hex BLAKE3).
pub const HASH_HEADER: &str = "x-file-hash";
/// Response header of a download: the file's normalised path (percent-encoded).
pub const PATH_HEADER: &str = "x-file-path";
/// Trailer of a download that failed after it started: an [`ErrorBody`] as JSON,
/// percent-encoded ([`decode_header_text`]).
pub const ERROR_TRAILER: &str = "x-pipeline-error";

/// Bytes per chunk of a download.
const CHUNK: usize = 64 << 10;
/// Bytes of NDJSON gathered before they are sent.
const NDJSON_CHUNK: usize = 32 << 10;
/// Chunks in flight between the store and the connection.
const IN_FLIGHT: usize = 8;

/// The file routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_file, put_file, delete_file))
        .routes(routes!(inspect_file))
        .routes(routes!(list_files))
        .routes(routes!(glob_files))
        .routes(routes!(put_tar))
        .routes(routes!(put_local_dir))
        .routes(routes!(export_local_dir))
}

/// `?path=`: one file path.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
pub struct PathQuery {
    /// The file's path in the commit (`/` separated, leading `/` optional).
    pub path: String,
}

/// `?path=&recursive=` of a listing.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
pub struct ListQuery {
    /// The directory (or file) to list; default `/`.
    #[serde(default = "root")]
    pub path: String,
    /// Every file below `path` instead of one level.
    #[serde(default)]
    pub recursive: bool,
}

/// `?pattern=` of a glob.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
pub struct GlobQuery {
    /// A glob in Pachyderm's dialect (`*` does not cross `/`, `**` does).
    pub pattern: String,
}

/// `?path=` of a tar upload.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
pub struct TarQuery {
    /// The directory the archive's files land in; default `/`.
    #[serde(default = "root")]
    pub path: String,
}

fn root() -> String {
    "/".into()
}

/// Body of `POST .../local_dir`: a directory on the server's own file system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PutLocalDir {
    /// The directory in the commit its files land in.
    pub path: String,
    /// An absolute path on the server's file system (symlinks below it are skipped).
    pub local_path: String,
}

/// Body of `POST .../export`: a commit's file or directory tree, written into a directory
/// on the server's own file system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportLocalDir {
    /// The file or directory in the commit.
    pub path: String,
    /// An absolute directory on the server's file system (created if absent; no symlink
    /// below it is followed).
    pub local_path: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExportResult {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// File contents, streamed.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileContent(pub Vec<u8>);

/// What a write (upload or delete) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WriteResult {
    /// The commit written into (its ID names the jobs it started).
    pub commit: CommitRef,
    /// Whether a commit was started for this write and finished after it (otherwise the
    /// write went into an open commit, which stays open).
    pub finished: bool,
    /// The error that commit was finished with (e.g. a file / directory path collision).
    #[serde(default)]
    pub error: Option<String>,
    /// Files written.
    #[serde(default)]
    pub files: u64,
    /// Bytes written.
    #[serde(default)]
    pub bytes: u64,
    /// Symlinks skipped (a server-side directory upload never follows them).
    #[serde(default)]
    pub skipped_symlinks: u64,
    /// Interrupted writes of dead clients the store recovered on the way (one line each).
    #[serde(default)]
    pub recovered: Vec<String>,
}

const REPO_DOC: &str = "`[PROJECT/]NAME` (`/` percent-encoded)";
const COMMIT_DOC: &str = "ID, branch or `BRANCH^N`";
const AT_DOC: &str = "Where the write goes: a branch (its open head, or a new commit for \
    this write alone) or the ID of an open commit";

/// Runs `write` with pachctl's auto-commit rule on `repo@at`.
pub(crate) fn auto_write(
    e: &Engine,
    repo: &str,
    at: &str,
    write: impl FnOnce(&Store, &CommitRef) -> ApiResult<TransferStats>,
) -> ApiResult<WriteResult> {
    let store = e.store();
    let repo = RepoRef::parse(repo)?;
    let written = store.write_auto_commit(&repo, Some(at), |c| write(store, c));
    let recovered = store
        .take_recovered_writes()
        .iter()
        .map(|r| r.to_string())
        .collect();
    let w = written?;
    Ok(WriteResult {
        error: w.error().map(str::to_string),
        finished: w.finished.is_some(),
        commit: w.commit,
        files: w.value.files,
        bytes: w.value.bytes,
        skipped_symlinks: w.value.skipped_symlinks,
        recovered,
    })
}

/// A request body as a blocking reader (for the blocking pool): a body that breaks off is a
/// read error, never an early end.
fn body_reader(body: Body) -> SyncIoBridge<impl tokio::io::AsyncRead + Unpin> {
    let stream = body.into_data_stream().map_err(io::Error::other);
    SyncIoBridge::new_with_handle(StreamReader::new(stream), tokio::runtime::Handle::current())
}

/// Downloads a file, streamed (`application/octet-stream`), with its size, hash and path in
/// the `x-file-size`, `x-file-hash` and `x-file-path` headers. Content is verified as it is
/// read: damage found at the end is reported by the `x-pipeline-error` trailer (with `TE:
/// trailers`) or by breaking the body off.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits/{commit}/file", tag = "files",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = COMMIT_DOC), PathQuery),
    responses((status = 200, content_type = "application/octet-stream", body = FileContent),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 500, body = ErrorBody)))]
async fn get_file(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> ApiResult<Response> {
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    let (first_tx, first_rx) = oneshot::channel::<ApiResult<FileInfo>>();
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(IN_FLIGHT);
    let engine = s.engine().clone();
    tokio::task::spawn_blocking(move || {
        let opened = (|| -> ApiResult<_> {
            let store = engine.store();
            let c = store.resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
            Ok(store.get_file(&c, &q.path)?)
        })();
        match opened {
            Ok((info, reader)) => {
                if first_tx.send(Ok(info)).is_ok() {
                    pump(reader, &tx, trailers);
                }
            }
            Err(e) => {
                let _ = first_tx.send(Err(e));
            }
        }
    });
    let info = first_rx
        .await
        .map_err(|_| ApiError::internal("the download task ended early"))??;
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Response::new(Body::new(StreamBody::new(stream)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::TRAILER, HeaderValue::from_static(ERROR_TRAILER));
    let text = [
        (SIZE_HEADER, info.size.to_string()),
        (HASH_HEADER, info.hash.to_hex()),
        (PATH_HEADER, encode_header_text(&info.path)),
    ];
    for (name, value) in text {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(resp)
}

/// Reads `reader` to its end into `tx`; a read error ends the stream with the error trailer
/// (`trailers`) or a body error. Stops quietly when the receiver went away.
fn pump(
    mut reader: Box<dyn Read + Send>,
    tx: &mpsc::Sender<Result<Frame<Bytes>, io::Error>>,
    trailers: bool,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let frame = Frame::data(Bytes::copy_from_slice(&buf[..n]));
                if tx.blocking_send(Ok(frame)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let err = match PfsError::from_io(&e) {
                    Some(p) => ApiError::new(pfs_kind(p), ErrorChain(p).to_string()),
                    None => ApiError::internal(format!("reading the file: {}", ErrorChain(&e))),
                };
                let item = if trailers {
                    let mut map = HeaderMap::new();
                    if let Ok(v) = HeaderValue::from_str(&encode_error(&err)) {
                        map.insert(ERROR_TRAILER, v);
                    }
                    Ok(Frame::trailers(map))
                } else {
                    Err(io::Error::other(err.message))
                };
                let _ = tx.blocking_send(item);
                return;
            }
        }
    }
}

/// Uploads one file from the request body (streamed, any size), with the auto-commit rule.
/// A body that breaks off changes nothing.
#[utoipa::path(put, path = "/api/v1/repos/{repo}/commits/{commit}/file", tag = "files",
    request_body(content = FileContent, content_type = "application/octet-stream"),
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = AT_DOC), PathQuery),
    responses((status = 200, body = WriteResult), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_file(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
    body: Body,
) -> ApiResult<Json<WriteResult>> {
    let path = validate_file_path(&q.path).map_err(PfsError::from)?;
    let mut reader = body_reader(body);
    let res = s
        .blocking(move |e| {
            auto_write(e, &repo, &commit, |store, c| {
                let f = store.put_file(c, &path, &mut reader)?;
                Ok(TransferStats {
                    files: 1,
                    bytes: f.size,
                    ..TransferStats::default()
                })
            })
        })
        .await?;
    s.notify_changed();
    Ok(Json(res))
}

/// Deletes a file or directory, with the auto-commit rule.
#[utoipa::path(delete, path = "/api/v1/repos/{repo}/commits/{commit}/file", tag = "files",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = AT_DOC), PathQuery),
    responses((status = 200, body = WriteResult), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_file(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> ApiResult<Json<WriteResult>> {
    let path = validate_file_path(&q.path).map_err(PfsError::from)?;
    let res = s
        .blocking(move |e| {
            auto_write(e, &repo, &commit, |store, c| {
                store.delete_file(c, &path)?;
                Ok(TransferStats::default())
            })
        })
        .await?;
    s.notify_changed();
    Ok(Json(res))
}

/// A file's or directory's size and hash.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits/{commit}/file/info", tag = "files",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = COMMIT_DOC), PathQuery),
    responses((status = 200, body = FileInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_file(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> ApiResult<Json<FileInfo>> {
    s.blocking(move |e| {
        let c = e.store().resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
        Ok(e.store().inspect_file(&c, &q.path)?)
    })
    .await
    .map(Json)
}

/// Lists a directory (one level, or every file below it with `recursive`), streamed as
/// NDJSON: one `FileInfo` per line in path order; a last line `{"error": ...}` when the
/// store failed mid-way.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits/{commit}/files", tag = "files",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = COMMIT_DOC), ListQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = FileInfo),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_files(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    ndjson(&s, move |e| {
        let c = e.store().resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
        Ok(if q.recursive {
            e.store().list_file_recursive(&c, &q.path)?
        } else {
            e.store().list_file(&c, &q.path)?
        })
    })
    .await
}

/// The files and directories matching a glob, streamed as NDJSON like a listing.
#[utoipa::path(get, path = "/api/v1/repos/{repo}/commits/{commit}/glob", tag = "files",
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = COMMIT_DOC), GlobQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = FileInfo),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn glob_files(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<GlobQuery>,
) -> ApiResult<Response> {
    ndjson(&s, move |e| {
        let c = e.store().resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
        Ok(e.store().glob_file(&c, &q.pattern)?)
    })
    .await
}

/// Uploads a tar archive (streamed): each regular file lands below `path`, directories are
/// implied. Absolute names, `..`, links and special files are refused (400 naming the
/// entry) and nothing of the archive is committed; so is an archive that breaks off.
#[utoipa::path(put, path = "/api/v1/repos/{repo}/commits/{commit}/tar", tag = "files",
    request_body(content = FileContent, content_type = "application/x-tar"),
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = AT_DOC), TarQuery),
    responses((status = 200, body = WriteResult), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_tar(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Query(q): Query<TarQuery>,
    body: Body,
) -> ApiResult<Json<WriteResult>> {
    let dest = validate_file_path(&q.path).map_err(PfsError::from)?;
    let reader = body_reader(body);
    let res = s
        .blocking(move |e| {
            auto_write(e, &repo, &commit, |store, c| {
                put_tar_entries(store, c, &dest, reader)
            })
        })
        .await?;
    s.notify_changed();
    Ok(Json(res))
}

/// Uploads a directory on the server's own file system ([`Store::put_dir_local`]): only
/// in-process and over the Unix socket (403 over TCP).
#[utoipa::path(post, path = "/api/v1/repos/{repo}/commits/{commit}/local_dir", tag = "files",
    request_body = PutLocalDir,
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = AT_DOC)),
    responses((status = 200, body = WriteResult), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn put_local_dir(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Json(req): Json<PutLocalDir>,
) -> ApiResult<Json<WriteResult>> {
    if !s.local_paths() {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "server-side paths are accepted only in-process and over the Unix socket; \
             upload a tar stream instead",
        ));
    }
    let local = PathBuf::from(&req.local_path);
    if !local.is_absolute() {
        return Err(ApiError::invalid(format!(
            "local_path {:?} must be absolute",
            req.local_path
        )));
    }
    let dest = validate_file_path(&req.path).map_err(PfsError::from)?;
    let res = s
        .blocking(move |e| {
            auto_write(e, &repo, &commit, |store, c| {
                Ok(store.put_dir_local(c, &dest, &local, &mut |_| {})?)
            })
        })
        .await?;
    s.notify_changed();
    Ok(Json(res))
}

/// Writes a commit's file or directory tree into a directory on the server's own file system
/// ([`Store::export_local`]): one request for the whole tree, only in-process and over the
/// Unix socket (403 over TCP: download file by file there). Every file is verified while
/// it is copied and reaches its name only complete; a symlink below `local_path` where the
/// tree needs a directory is refused (400 naming it); a damaged object fails the export
/// (500 naming the file).
#[utoipa::path(post, path = "/api/v1/repos/{repo}/commits/{commit}/export", tag = "files",
    request_body = ExportLocalDir,
    params(("repo" = String, Path, description = REPO_DOC),
        ("commit" = String, Path, description = COMMIT_DOC)),
    responses((status = 200, body = ExportResult), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 500, body = ErrorBody)))]
async fn export_local_dir(
    State(s): State<AppState>,
    Path((repo, commit)): Path<(String, String)>,
    Json(req): Json<ExportLocalDir>,
) -> ApiResult<Json<ExportResult>> {
    if !s.local_paths() {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "server-side paths are accepted only in-process and over the Unix socket; \
             download the files instead",
        ));
    }
    let local = PathBuf::from(&req.local_path);
    if !local.is_absolute() {
        return Err(ApiError::invalid(format!(
            "local_path {:?} must be absolute",
            req.local_path
        )));
    }
    let path = validate_file_path(&req.path).map_err(PfsError::from)?;
    s.blocking(move |e| {
        let store = e.store();
        let c = store.resolve_commit(&RepoRef::parse(&repo)?, &commit)?;
        let st = store.export_local(&c, &path, &local)?;
        Ok(ExportResult {
            files: st.files,
            bytes: st.bytes,
        })
    })
    .await
    .map(Json)
}

/// One entry of a tar upload as [`Store::put_files`] reads it: the entry, or a refusal that
/// fails the read (and with it the whole upload).
enum TarItem<'a, R: Read> {
    Entry(Box<tar::Entry<'a, R>>),
    Refused(String),
}

impl<R: Read> Read for TarItem<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TarItem::Entry(e) => e.read(buf),
            TarItem::Refused(m) => Err(io::Error::new(io::ErrorKind::InvalidInput, m.clone())),
        }
    }
}

/// Puts every regular file of the archive below `dest`; the first refused entry fails the
/// call with a 400 naming it.
fn put_tar_entries(
    store: &Store,
    commit: &CommitRef,
    dest: &str,
    reader: impl Read,
) -> ApiResult<TransferStats> {
    let mut archive = tar::Archive::new(reader);
    let refused: RefCell<Option<ApiError>> = RefCell::new(None);
    let refuse = |err: ApiError| {
        let item = TarItem::Refused(err.message.clone());
        *refused.borrow_mut() = Some(err);
        item
    };
    let entries = archive
        .entries()
        .map_err(|e| ApiError::invalid(format!("tar stream: {e}")))?;
    let files = entries.filter_map(|entry| {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return Some((String::new(), refuse(tar_error(&e)))),
        };
        match tar_target(&entry, dest) {
            Ok(Some(path)) => Some((path, TarItem::Entry(Box::new(entry)))),
            Ok(None) => None,
            Err(e) => Some((String::new(), refuse(e))),
        }
    });
    let put = store.put_files(commit, files);
    if let Some(e) = refused.borrow_mut().take() {
        return Err(e);
    }
    Ok(put?)
}

fn tar_error(e: &io::Error) -> ApiError {
    ApiError::invalid(format!("tar stream: {}", ErrorChain(e)))
}

/// Where a tar entry lands: `Some(path)` for a regular file, `None` for what is skipped
/// (directories, global headers), an error naming the entry for what is refused.
fn tar_target<R: Read>(entry: &tar::Entry<'_, R>, dest: &str) -> ApiResult<Option<String>> {
    let raw = entry.path_bytes();
    let name = String::from_utf8_lossy(&raw).into_owned();
    let kind = entry.header().entry_type();
    if kind.is_dir() || kind.is_pax_global_extensions() {
        return Ok(None);
    }
    if !(kind.is_file() || kind.is_contiguous()) {
        let what = if kind.is_symlink() || kind.is_hard_link() {
            "links are not accepted"
        } else {
            "only regular files and directories are accepted"
        };
        return Err(ApiError::invalid(format!("tar entry {name:?}: {what}")));
    }
    let path = entry.path().map_err(|e| tar_error(&e))?;
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => match p.to_str() {
                Some(s) => parts.push(s),
                None => {
                    return Err(ApiError::invalid(format!(
                        "tar entry {name:?}: the name is not valid UTF-8"
                    )));
                }
            },
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ApiError::invalid(format!(
                    "tar entry {name:?}: `..` is not accepted"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ApiError::invalid(format!(
                    "tar entry {name:?}: absolute names are not accepted"
                )));
            }
        }
    }
    if parts.is_empty() {
        return Err(ApiError::invalid(format!(
            "tar entry {name:?}: no file name"
        )));
    }
    Ok(Some(format!(
        "{}/{}",
        dest.trim_end_matches('/'),
        parts.join("/")
    )))
}

/// Streams what `open` returns as NDJSON, one item per line, from the blocking pool; an
/// error from `open` is the response, an error mid-way is the last line (`{"error": ...}`).
pub(crate) async fn ndjson<T, F>(s: &AppState, open: F) -> ApiResult<Response>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&Engine) -> ApiResult<Box<dyn Iterator<Item = Result<T, PfsError>> + Send>>
        + Send
        + 'static,
{
    let (first_tx, first_rx) = oneshot::channel::<ApiResult<()>>();
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(IN_FLIGHT);
    let engine = s.engine().clone();
    tokio::task::spawn_blocking(move || {
        let it = match open(&engine) {
            Ok(it) => it,
            Err(e) => {
                let _ = first_tx.send(Err(e));
                return;
            }
        };
        if first_tx.send(Ok(())).is_ok() {
            write_lines(it, &tx);
        }
    });
    first_rx
        .await
        .map_err(|_| ApiError::internal("the listing task ended early"))??;
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

/// Writes each item as a JSON line into `tx` in chunks; stops when the receiver went away.
fn write_lines<T: Serialize>(
    it: impl Iterator<Item = Result<T, PfsError>>,
    tx: &mpsc::Sender<Result<Bytes, io::Error>>,
) {
    let mut buf = Vec::with_capacity(NDJSON_CHUNK + 1024);
    for item in it {
        let written = match item {
            Ok(v) => serde_json::to_writer(&mut buf, &v),
            Err(e) => {
                let body = ErrorBody {
                    error: ErrorDetail {
                        kind: pfs_kind(&e),
                        message: ErrorChain(&e).to_string(),
                    },
                };
                let _ = serde_json::to_writer(&mut buf, &body);
                buf.push(b'\n');
                break;
            }
        };
        if written.is_err() {
            break;
        }
        buf.push(b'\n');
        if buf.len() >= NDJSON_CHUNK {
            let chunk = Bytes::from(std::mem::take(&mut buf));
            if tx.blocking_send(Ok(chunk)).is_err() {
                return;
            }
            buf.reserve(NDJSON_CHUNK + 1024);
        }
    }
    if !buf.is_empty() {
        let _ = tx.blocking_send(Ok(Bytes::from(buf)));
    }
}

/// An API error as a header value: its [`ErrorBody`] JSON, percent-encoded.
pub fn encode_error(e: &ApiError) -> String {
    let body = ErrorBody {
        error: ErrorDetail {
            kind: e.kind,
            message: e.message.clone(),
        },
    };
    encode_header_text(&serde_json::to_string(&body).unwrap_or_default())
}

/// Text as a header value: bytes outside printable ASCII, and `%`, percent-encoded.
pub fn encode_header_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text [`encode_header_text`] encoded (invalid escapes are kept as they are).
pub fn decode_header_text(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_round_trips() {
        for s in ["plain", "100% é\n\"q\"", "%zz", ""] {
            assert_eq!(decode_header_text(&encode_header_text(s)), s);
        }
        assert!(
            encode_header_text("é\n")
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b))
        );
    }
}
