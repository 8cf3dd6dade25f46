//! `/api/v1/pipelines`: create and update from spec text, dry runs, list, inspect, stop,
//! start, delete, run cron.
//!
//! Writes that start jobs answer at once with the commit sets they made; a client follows
//! them with `POST /api/v1/commit_sets/{id}/wait`.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use pipeline_core::error_chain::ErrorChain;
use pipeline_core::pps::{CreateOptions, Engine, PipelineInfo, PpsError, RerunMode};
use pipeline_core::spec::{ParsedSpec, PipelineSpec};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The pipeline routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines, create_pipelines))
        .routes(routes!(dry_run_pipelines))
        .routes(routes!(inspect_pipeline, delete_pipeline))
        .routes(routes!(pipeline_version))
        .routes(routes!(stop_pipeline))
        .routes(routes!(start_pipeline))
        .routes(routes!(rerun_pipeline))
        .routes(routes!(run_cron))
}

/// Body of `POST /api/v1/pipelines` and `POST /api/v1/dry_run/pipelines`: a spec file's text
/// and how to apply it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreatePipelines {
    /// The spec file's text: JSON or YAML, one spec, a `---` stream or a top-level list.
    pub spec: String,
    /// The file's name, used in error positions (`p.yaml:3:5: input.pfs.glob: ...`).
    #[serde(default)]
    pub source_name: String,
    /// Update pipelines that exist (a new version) instead of refusing them.
    #[serde(default)]
    pub update: bool,
    /// With `update`: a new salt, so every datum is processed again.
    #[serde(default)]
    pub reprocess: bool,
    /// The executor that runs the pipelines' user code (`process`, `docker`, `kubernetes`);
    /// default: the pipeline's current one, or the server's default.
    #[serde(default)]
    pub executor: Option<String>,
    /// The project of the specs that name none in `pipeline.project` (`pipectl --project`;
    /// default: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// Puts the specs that name no project into `project` (when given), as pachctl's
/// `--project` does.
pub fn apply_project(parsed: &mut [ParsedSpec], project: Option<&str>) {
    let Some(project) = project.filter(|p| !p.is_empty()) else {
        return;
    };
    for p in parsed {
        if let Some(pipeline) = p.spec.pipeline.as_mut() {
            let named = pipeline
                .project
                .as_ref()
                .is_some_and(|r| !r.name.is_empty());
            if !named {
                pipeline.project = Some(pipeline_core::spec::ProjectRef {
                    name: project.to_string(),
                });
            }
        }
    }
}

/// What a pipeline write did: the pipelines as stored and the commit sets (job IDs) it
/// started, to wait for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PipelinesWritten {
    /// The pipelines, in spec order.
    pub pipelines: Vec<PipelineInfo>,
    /// The commit sets whose jobs the write started (empty when none).
    pub commit_sets: Vec<String>,
}

/// One pipeline of a dry run: what would be created and the workers it would get.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DryRunPipeline {
    /// `create` or `update`.
    pub action: String,
    /// Pipeline name.
    pub name: String,
    /// Its project.
    pub project: String,
    /// Workers its pool would start (`parallelism_spec`).
    pub workers: usize,
    /// The spec as given, merged over the server's cluster and project defaults when a
    /// server answers (the worker pool spec is `pipeline_core::pps::dry_run_pool_spec` of it).
    #[schema(value_type = Object)]
    pub spec: PipelineSpec,
}

/// The commit sets a cron run made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CronRun {
    /// One commit set per cron input ticked.
    pub commit_sets: Vec<String>,
}

/// `?keep_repo=true`: keep the output repo as a plain repo.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Keep the output repo.
    #[serde(default)]
    pub keep_repo: bool,
}

/// Parses spec text; every problem of an invalid file is in the message, with positions.
pub fn parse_spec_text(text: &str, source_name: &str) -> ApiResult<Vec<ParsedSpec>> {
    let name = if source_name.is_empty() {
        "spec"
    } else {
        source_name
    };
    pipeline_core::spec::parse_str(text, name)
        .map_err(|e| ApiError::invalid(ErrorChain(&e).to_string()))
}

/// Every store-free rule on every spec: the first invalid spec's errors, all of them.
fn validate_all(parsed: &[pipeline_core::spec::ParsedSpec]) -> ApiResult<()> {
    for p in parsed {
        let report = pipeline_core::validate::validate(p);
        if !report.is_valid() {
            return Err(PpsError::InvalidSpec {
                pipeline: p.pipeline_name().unwrap_or_default().to_string(),
                diagnostics: report.errors,
            }
            .into());
        }
    }
    Ok(())
}

/// A dry run of `req` without a store: parses and validates (store-free rules, every error
/// with its field path) and says what would be created. `POST /api/v1/dry_run/pipelines`
/// answers this; a client without a store can call it directly.
pub fn dry_run(req: &CreatePipelines) -> ApiResult<Vec<DryRunPipeline>> {
    let mut parsed = parse_spec_text(&req.spec, &req.source_name)?;
    apply_project(&mut parsed, req.project.as_deref());
    dry_run_parsed(req, &parsed)
}

/// Every spec of `parsed`, merged over the engine's cluster and project defaults.
fn with_defaults(engine: &Engine, parsed: &[ParsedSpec]) -> ApiResult<Vec<ParsedSpec>> {
    let mut merged = Vec::with_capacity(parsed.len());
    for p in parsed {
        merged.push(engine.apply_defaults(p)?);
    }
    Ok(merged)
}

/// [`dry_run`] of specs already parsed (and, on a server, merged over its defaults).
fn dry_run_parsed(req: &CreatePipelines, parsed: &[ParsedSpec]) -> ApiResult<Vec<DryRunPipeline>> {
    validate_all(parsed)?;
    let mut out = Vec::new();
    for p in parsed {
        let pool = pipeline_core::pps::dry_run_pool_spec(&p.spec);
        out.push(DryRunPipeline {
            action: if req.update { "update" } else { "create" }.into(),
            name: p.pipeline_name().unwrap_or_default().to_string(),
            project: pool.project.clone(),
            workers: pool.workers,
            spec: p.spec.clone(),
        });
    }
    Ok(out)
}

impl PipelinesWritten {
    /// `pipelines` with the commit sets of the jobs they started: their open output commits
    /// (first jobs), as commit-set IDs.
    fn of(engine: &Engine, pipelines: Vec<PipelineInfo>) -> ApiResult<Self> {
        let store = engine.store();
        let mut sets = BTreeSet::new();
        let mut commit_sets = Vec::new();
        for p in pipelines.iter().filter(|p| !p.stopped) {
            let head = store.inspect_branch(&p.output_branch)?.head;
            let commit = store.inspect_commit(&p.output_branch.repo.commit(&head))?;
            if !commit.is_finished() && sets.insert(head.to_string()) {
                commit_sets.push(head.to_string());
            }
        }
        Ok(PipelinesWritten {
            pipelines,
            commit_sets,
        })
    }
}

fn check_executor(engine: &Engine, executor: Option<&str>) -> ApiResult<()> {
    let Some(wanted) = executor else {
        return Ok(());
    };
    let have = engine.executor_names();
    if have.iter().any(|h| h == wanted) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "executor {wanted:?} is not available on this server (it has: {}); start the server with it, or choose one of those",
        have.join(", ")
    )))
}

/// Every pipeline.
#[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines",
    responses((status = 200, body = Vec<PipelineInfo>), (status = 500, body = ErrorBody)))]
async fn list_pipelines(State(s): State<AppState>) -> ApiResult<Json<Vec<PipelineInfo>>> {
    s.blocking(|e| {
        let list = e.list_pipelines()?;
        Ok(list.into_iter().map(|p| e.with_spout_status(p)).collect())
    })
    .await
    .map(Json)
}

/// Creates (or with `update`, updates) every pipeline of a spec file, in order; nothing is
/// created when a spec is invalid (400 listing every problem with its field path and
/// position). Answers at once with the commit sets the first jobs belong to.
#[utoipa::path(post, path = "/api/v1/pipelines", tag = "pipelines", request_body = CreatePipelines,
    responses((status = 201, body = PipelinesWritten), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_pipelines(
    State(s): State<AppState>,
    Json(req): Json<CreatePipelines>,
) -> ApiResult<(StatusCode, Json<PipelinesWritten>)> {
    let (parsed, mut opts) = s
        .blocking(move |e| {
            check_executor(e, req.executor.as_deref())?;
            let mut parsed = parse_spec_text(&req.spec, &req.source_name)?;
            apply_project(&mut parsed, req.project.as_deref());
            // Spec errors (of the specs merged over the defaults) are reported before any
            // image is pulled.
            validate_all(&with_defaults(e, &parsed)?)?;
            let opts = CreateOptions {
                update: req.update,
                reprocess: req.reprocess,
                executor: req.executor.clone(),
                ..CreateOptions::default()
            };
            Ok((parsed, opts))
        })
        .await?;
    opts.images = s.engine().pin_images(&parsed, &opts).await?;
    let written = s
        .blocking(move |e| PipelinesWritten::of(e, e.create_pipelines(&parsed, &opts)?))
        .await?;
    s.notify_changed();
    Ok((StatusCode::CREATED, Json(written)))
}

/// What `POST /api/v1/pipelines` would do with this body, without doing it: every
/// validation error (store-free rules), or each pipeline with the workers it would get.
#[utoipa::path(post, path = "/api/v1/dry_run/pipelines", tag = "pipelines",
    request_body = CreatePipelines,
    responses((status = 200, body = Vec<DryRunPipeline>), (status = 400, body = ErrorBody)))]
async fn dry_run_pipelines(
    State(s): State<AppState>,
    Json(req): Json<CreatePipelines>,
) -> ApiResult<Json<Vec<DryRunPipeline>>> {
    s.blocking(move |e| {
        check_executor(e, req.executor.as_deref())?;
        let parsed = parse_spec_text(&req.spec, &req.source_name)?;
        dry_run_parsed(&req, &with_defaults(e, &parsed)?)
    })
    .await
    .map(Json)
}

/// One pipeline (its current version).
#[utoipa::path(get, path = "/api/v1/pipelines/{pipeline}", tag = "pipelines",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)")),
    responses((status = 200, body = PipelineInfo), (status = 404, body = ErrorBody)))]
async fn inspect_pipeline(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineInfo>> {
    s.blocking(move |e| Ok(e.with_spout_status(e.inspect_pipeline(&name)?)))
        .await
        .map(Json)
}

/// One version of a pipeline (what its jobs of that version ran: spec, salt, pinned image).
#[utoipa::path(get, path = "/api/v1/pipelines/{pipeline}/versions/{version}", tag = "pipelines",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"),
        ("version" = u64, Path, description = "Version (1 on create, +1 per update)")),
    responses((status = 200, body = PipelineInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn pipeline_version(
    State(s): State<AppState>,
    Path((name, version)): Path<(String, u64)>,
) -> ApiResult<Json<PipelineInfo>> {
    s.blocking(move |e| Ok(e.pipeline_version(&name, version)?))
        .await
        .map(Json)
}

/// Deletes a pipeline, its jobs, datums and logs, and its output repo unless `keep_repo`.
/// Refused (409) while another pipeline reads it.
#[utoipa::path(delete, path = "/api/v1/pipelines/{pipeline}", tag = "pipelines",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)"), DeleteQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_pipeline(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let engine = s.engine().clone();
    let deleting = tokio::spawn(async move { engine.delete_pipeline(&name, q.keep_repo).await });
    let done = deleting
        .await
        .map_err(|e| ApiError::internal(format!("delete task failed: {e}")));
    s.notify_changed();
    done??;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops a pipeline: its unfinished jobs are killed and it gets no new jobs until started.
#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline}/stop", tag = "pipelines",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)")),
    responses((status = 200, body = PipelineInfo), (status = 404, body = ErrorBody)))]
async fn stop_pipeline(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineInfo>> {
    let info = s.blocking(move |e| Ok(e.stop_pipeline(&name)?)).await?;
    s.notify_changed();
    Ok(Json(info))
}

/// Starts a stopped pipeline: a job over the current input heads (its commit set is in the
/// answer).
#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline}/start", tag = "pipelines",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)")),
    responses((status = 200, body = PipelinesWritten), (status = 404, body = ErrorBody)))]
async fn start_pipeline(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelinesWritten>> {
    let written = s
        .blocking(move |e| PipelinesWritten::of(e, vec![e.start_pipeline(&name)?]))
        .await?;
    s.notify_changed();
    Ok(Json(written))
}

/// Body of `POST /api/v1/pipelines/{pipeline}/rerun`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RerunPipeline {
    /// `failed_only`: reuse what succeeded in the last job; `all`: run every datum again.
    pub mode: RerunMode,
}

/// Reruns a pipeline over its current input heads: a new version with the same spec, whose
/// job runs either only what did not succeed in the last job (`failed_only`) or every datum
/// (`all`). Answers with the new version; its job runs in the background.
#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline}/rerun", tag = "pipelines",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)")),
    request_body = RerunPipeline,
    responses((status = 200, body = PipelineInfo), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn rerun_pipeline(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<RerunPipeline>,
) -> ApiResult<Json<PipelineInfo>> {
    let info = s
        .blocking(move |e| Ok(e.rerun_pipeline(&name, req.mode)?))
        .await?;
    s.notify_changed();
    Ok(Json(info))
}

/// Commits a tick (now) to every cron input of a pipeline, as `pachctl run cron` does.
#[utoipa::path(post, path = "/api/v1/pipelines/{pipeline}/run_cron", tag = "pipelines",
    params(("pipeline" = String, Path, description = "Pipeline: `[PROJECT/]NAME` (`/` percent-encoded)")),
    responses((status = 200, body = CronRun), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn run_cron(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<CronRun>> {
    let commit_sets = s.blocking(move |e| Ok(e.run_cron(&name)?)).await?;
    s.notify_changed();
    Ok(Json(CronRun { commit_sets }))
}
