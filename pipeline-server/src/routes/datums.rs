//! `/api/v1/jobs/{pipeline}/{job}/datums` (list, inspect) and `/api/v1/datums/preview`: a
//! spec's datums before anything runs, streamed as NDJSON.

use std::io;
use std::path::{Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use pipeline_core::datum::{Datum, DatumPlan, PlanError};
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pfs::Store;
use pipeline_core::pps::{
    DatumInfo, DatumPage, DatumQuery, DatumState, MissingInput, PpsError, PreviewError,
    preview_datums,
};
use pipeline_core::spec::ParsedSpec;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::jobs::resolve;
use super::pipelines::parse_spec_text;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail, ErrorKind};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The datum routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_datums))
        .routes(routes!(inspect_datum))
        .routes(routes!(datum_page))
        .routes(routes!(preview))
}

/// The media type of streamed lists: one JSON value per line.
pub const NDJSON: &str = "application/x-ndjson";

/// Body of `POST /api/v1/datums/preview`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PreviewDatums {
    /// The spec file's text (exactly one pipeline spec).
    pub spec: String,
    /// The file's name, used in error positions.
    #[serde(default)]
    pub source_name: String,
    /// Local directories (on the server's file system, absolute) used as the heads of
    /// repos; other repos are read from the store. Refused over TCP.
    #[serde(default)]
    pub inputs: Vec<LocalInput>,
    /// Also list each datum's files as user code sees them.
    #[serde(default)]
    pub files: bool,
}

/// A local directory used as the head of a repo.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocalInput {
    /// The repo.
    pub repo: String,
    /// The directory.
    pub dir: String,
}

/// One line of a preview stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviewLine {
    /// A validation warning (`FILE:LINE:COL: field: message`), before any datum.
    Warning(String),
    /// A datum.
    Datum(PreviewDatum),
    /// Planning failed after the stream began; the last line.
    Error(ErrorDetail),
}

/// A previewed datum.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviewDatum {
    /// Datum ID (64 hex).
    pub id: String,
    /// Its inputs, in datum order.
    pub inputs: Vec<PreviewInput>,
    /// With `files`: every file it shows user code (`/pfs/<input><path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
}

/// One input of a previewed datum.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviewInput {
    /// Input name (`/pfs/<name>`).
    pub name: String,
    /// Repo.
    pub repo: String,
    /// Branch.
    pub branch: String,
    /// Matched path (directories end in `/`).
    pub path: String,
}

/// The datums of a job (skipped ones included), by datum ID.
#[utoipa::path(get, path = "/api/v1/jobs/{pipeline}/{job}/datums", tag = "datums",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("job" = String, Path, description = "Job ID, or a prefix of at least 8 characters")),
    responses((status = 200, body = Vec<DatumInfo>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_datums(
    State(s): State<AppState>,
    Path((pipeline, job)): Path<(String, String)>,
) -> ApiResult<Json<Vec<DatumInfo>>> {
    s.blocking(move |e| {
        let id = resolve(e, &pipeline, &job)?;
        Ok(e.list_datums(&pipeline, &id)?)
    })
    .await
    .map(Json)
}

/// `?state=&after=&limit=` of a datum page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
pub struct DatumPageQuery {
    /// Only datums in this state (`FAILED`, `RECOVERED`, `SUCCESS`, `SKIPPED`).
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub state: Option<DatumState>,
    /// The previous page's `next` (opaque); absent for the first page.
    #[serde(default)]
    pub after: Option<String>,
    /// Datums per page: 1 to 1000, default 100.
    #[serde(default)]
    pub limit: Option<usize>,
    /// The reading order backwards (skipped first, failed last).
    #[serde(default)]
    pub reverse: bool,
}

/// One page of a job's datums in reading order: failed, recovered, succeeded (slowest
/// first), skipped. A page costs its own length, however many datums the job has; follow
/// `next` with `after` for the next page.
#[utoipa::path(get, path = "/api/v1/jobs/{pipeline}/{job}/datum_page", tag = "datums",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("job" = String, Path, description = "Job ID, or a prefix of at least 8 characters"),
        DatumPageQuery),
    responses((status = 200, body = DatumPage), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn datum_page(
    State(s): State<AppState>,
    Path((pipeline, job)): Path<(String, String)>,
    Query(q): Query<DatumPageQuery>,
) -> ApiResult<Json<DatumPage>> {
    s.blocking(move |e| {
        let id = resolve(e, &pipeline, &job)?;
        let query = DatumQuery {
            state: q.state,
            after: q.after,
            limit: q.limit.unwrap_or(0),
            reverse: q.reverse,
        };
        Ok(e.datum_page(&pipeline, &id, &query)?)
    })
    .await
    .map(Json)
}

/// One datum of a job; a unique prefix of its ID is enough.
#[utoipa::path(get, path = "/api/v1/jobs/{pipeline}/{job}/datums/{datum}", tag = "datums",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("job" = String, Path, description = "Job ID, or a prefix of at least 8 characters"),
        ("datum" = String, Path, description = "Datum ID, or a unique prefix")),
    responses((status = 200, body = DatumInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn inspect_datum(
    State(s): State<AppState>,
    Path((pipeline, job, datum)): Path<(String, String, String)>,
) -> ApiResult<Json<DatumInfo>> {
    s.blocking(move |e| {
        let id = resolve(e, &pipeline, &job)?;
        let mut matches: Vec<DatumInfo> = e
            .list_datums(&pipeline, &id)?
            .into_iter()
            .filter(|d| d.id.starts_with(&datum))
            .collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(PpsError::DatumNotFound {
                pipeline,
                job: id,
                datum,
            }
            .into()),
            n => Err(ApiError::invalid(format!(
                "datum prefix {datum:?} is ambiguous: it matches {n} datums of job {pipeline}@{id}"
            ))),
        }
    })
    .await
    .map(Json)
}

/// Previews the datums of one spec over local directories and the store, without running
/// anything: NDJSON lines of [`PreviewLine`] (warnings, then datums). A spec with errors, or
/// inputs without data, is a 400 listing every problem.
#[utoipa::path(post, path = "/api/v1/datums/preview", tag = "datums", request_body = PreviewDatums,
    responses((status = 200, description = "NDJSON, one `PreviewLine` per line",
            body = PreviewLine, content_type = "application/x-ndjson"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn preview(State(s): State<AppState>, Json(req): Json<PreviewDatums>) -> ApiResult<Response> {
    if !req.inputs.is_empty() && !s.local_paths() {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "local input directories are read from the server's file system: allowed over its Unix socket only, not over TCP",
        ));
    }
    let prepared = s
        .blocking(move |e| Preview::prepare(&req, Some(e.store().clone())))
        .await?;
    let (tx, response) = ndjson_channel();
    tokio::task::spawn_blocking(move || {
        prepared.stream(&mut |line| tx.blocking_send(Ok(ndjson_line(&line))).is_ok())
    });
    Ok(response)
}

/// A checked preview: its warnings and plan, ready to stream.
pub struct Preview {
    warnings: Vec<String>,
    plan: DatumPlan,
    files: bool,
}

impl Preview {
    /// Parses and validates the one spec of `req` and plans its datums over `req.inputs` and
    /// `store` (a store-less client passes `None`). Every problem is in the error.
    pub fn prepare(req: &PreviewDatums, store: Option<Store>) -> ApiResult<Preview> {
        let parsed = load(req)?;
        let report = pipeline_core::validate::validate(&parsed);
        let src = &parsed.source_name;
        if !report.is_valid() {
            let all: Vec<String> = report.errors.iter().map(|e| format!("{src}:{e}")).collect();
            return Err(ApiError::invalid(format!(
                "{}: the spec has {} error(s): {}",
                name_of(req),
                all.len(),
                all.join("; ")
            )));
        }
        let warnings = report
            .warnings
            .iter()
            .map(|w| format!("{src}:{w}"))
            .collect();
        let local: Vec<(String, PathBuf)> = req
            .inputs
            .iter()
            .map(|i| (i.repo.clone(), PathBuf::from(&i.dir)))
            .collect();
        let root = store
            .as_ref()
            .and_then(|s| s.root().map(FsPath::to_path_buf));
        match preview_datums(&parsed.spec, &local, || Ok(store)) {
            Ok(plan) => Ok(Preview {
                warnings,
                plan,
                files: req.files,
            }),
            Err(e) => Err(explain_preview(e, &parsed, req, root.as_deref())),
        }
    }

    /// Sends the warnings, then each datum, to `send` (which returns false to stop); a
    /// planning failure is the last line.
    pub fn stream(&self, send: &mut dyn FnMut(PreviewLine) -> bool) {
        for w in &self.warnings {
            if !send(PreviewLine::Warning(w.clone())) {
                return;
            }
        }
        for datum in self.plan.datums() {
            let line = match datum.map_err(|e| explain(&e)).and_then(|d| self.datum(&d)) {
                Ok(d) => PreviewLine::Datum(d),
                Err(message) => {
                    send(PreviewLine::Error(ErrorDetail {
                        kind: ErrorKind::Invalid,
                        message,
                    }));
                    return;
                }
            };
            if !send(line) {
                return;
            }
        }
    }

    fn datum(&self, d: &Datum) -> Result<PreviewDatum, String> {
        let files = if self.files {
            let files = self
                .plan
                .files(d)
                .map(|f| f.map(|f| format!("/pfs/{}{}", f.name, f.path)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| explain(&e))?;
            Some(files)
        } else {
            None
        };
        let inputs = d
            .inputs
            .iter()
            .map(|i| PreviewInput {
                name: i.leaf.name.clone(),
                repo: i.leaf.repo.clone(),
                branch: i.leaf.branch.clone(),
                path: i.path.clone(),
            })
            .collect();
        Ok(PreviewDatum {
            id: d.id().to_hex(),
            inputs,
            files,
        })
    }
}

fn name_of(req: &PreviewDatums) -> &str {
    if req.source_name.is_empty() {
        "spec"
    } else {
        &req.source_name
    }
}

/// The one spec of the request's text.
fn load(req: &PreviewDatums) -> ApiResult<ParsedSpec> {
    let name = name_of(req);
    let specs = parse_spec_text(&req.spec, name)?;
    match <[ParsedSpec; 1]>::try_from(specs) {
        Ok([one]) => Ok(one),
        Err(v) if v.is_empty() => Err(ApiError::invalid(format!("{name}: holds no pipeline spec"))),
        Err(many) => Err(ApiError::invalid(format!(
            "{name}: holds {} pipeline specs; a preview takes one, split the file",
            many.len()
        ))),
    }
}

/// A preview failure as one error, every missing input named with its field path.
fn explain_preview(
    e: PreviewError,
    parsed: &ParsedSpec,
    req: &PreviewDatums,
    root: Option<&FsPath>,
) -> ApiError {
    let message = match e {
        PreviewError::DuplicateInput { repo } => {
            format!("--input {repo}=...: repo {repo:?} given twice")
        }
        PreviewError::LocalInput { repo, dir, source } => {
            format!("--input {repo}={}: {}", dir.display(), ErrorChain(&source))
        }
        PreviewError::MissingInputs { inputs } => {
            let store = root.map_or_else(
                || "in no store".to_string(),
                |r| format!("neither in the store at {}", r.display()),
            );
            format!(
                "{}: {} input repo(s) without data ({store} nor given with --input): {}",
                name_of(req),
                inputs.len(),
                missing(&inputs, parsed).join("; ")
            )
        }
        PreviewError::Store(e) => {
            return ApiError::from(e);
        }
        PreviewError::Plan(e) => explain(&e),
        other => ErrorChain(&other).to_string(),
    };
    ApiError::invalid(message)
}

fn missing(inputs: &[MissingInput], parsed: &ParsedSpec) -> Vec<String> {
    inputs
        .iter()
        .map(|MissingInput { field, repo, cron, .. }| {
            let msg = if *cron {
                format!(
                    "{field}: can't list datums with a cron input, there will be no datums until the pipeline is created (or pass --input {repo}=DIR holding tick files)"
                )
            } else {
                format!("{field}: no data for repo {repo:?}: pass --input {repo}=DIR")
            };
            format!("{}: {msg}", parsed.source_name)
        })
        .collect()
}

/// Adds the remedy to planning errors.
fn explain(e: &PlanError) -> String {
    match e {
        PlanError::MissingSource { repo, .. } => {
            format!("{e}: put it in the store or pass --input {repo}=DIR")
        }
        PlanError::CronWithoutTicks { repo, .. } => {
            format!("{e} (or pass --input {repo}=DIR holding tick files)")
        }
        _ => ErrorChain(e).to_string(),
    }
}

/// One NDJSON line.
pub(crate) fn ndjson_line<T: Serialize>(v: &T) -> Bytes {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// A streaming NDJSON response and the sender that feeds it; the stream ends when the
/// sender is dropped, and sending fails once the client went away.
pub(crate) fn ndjson_channel() -> (mpsc::Sender<Result<Bytes, io::Error>>, Response) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(64);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    (tx, response)
}
