//! How spouts reach the server, and who may write their output branches.
//!
//! [`SpoutGate`] is the server's [`SpoutHost`]: for each run of a spout it mints a token
//! (32 random bytes) that may write only that pipeline's output branch, and serves the API
//! to user code on a **worker listener**: a TCP port on the address the spout's executor
//! names ([`Executor::host_address`](pipeline_core::executor::Executor::host_address):
//! loopback for local processes, the gateway of the `pipeline-workers` network for Docker),
//! bound on first use, which accepts spout tokens only. The spout's environment gets
//! `PIPECTL_SERVER` (`http://ADDR:PORT`), `PIPECTL_TOKEN` and `PIPECTL_NO_WAIT=1` (a spout
//! does not wait for the jobs its commits start), and, on the process executor, `PATH` with
//! the directory of the `pipectl` binary first when the server was given one.
//!
//! With a spout token, a request may read its own output repo (`GET /api/v1/repos/{repo}/…`)
//! and write its own output branch: start a commit on it, put, delete or upload files into
//! it (or a commit on it), copy into it, finish it. Anything else is 403 `forbidden`.
//!
//! [`guard_output_writes`] runs in front of every route on every listener: a write to a
//! spout's output branch (a commit started, written, copied into or finished; the branch
//! moved or deleted) by anyone but that spout's current token is refused with "cannot
//! start a commit on an output branch", as Pachyderm refuses everyone but the spout's worker.
//! The rule is the engine's ([`Engine::check_output_write`]), which the other write paths
//! ask too: transactions (checked by the engine when a request is queued and when the
//! transaction finishes) and the S3 gateway (`AccessDenied`). The console's forms only
//! act on pipelines and jobs (rerun, stop, start), never on branch data.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use pipeline_core::pfs::{BranchRef, RepoRef};
use pipeline_core::pps::{Engine, SpoutAccess, SpoutAccessRequest, SpoutHost};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{ApiError, ErrorKind};
use crate::listen::{Limits, Listener, accept, bind_tcp};
use crate::state::AppState;

/// The server's [`SpoutHost`]: worker listeners and the tokens of running spouts.
#[derive(Clone)]
pub struct SpoutGate {
    inner: Arc<GateInner>,
}

struct GateInner {
    state: AppState,
    limits: Limits,
    accepting: CancellationToken,
    tasks: TaskTracker,
    /// Worker listeners by the address user code reaches.
    listeners: tokio::sync::Mutex<HashMap<IpAddr, SocketAddr>>,
    /// Token → the spout and the one branch it may write.
    grants: Mutex<HashMap<String, Grant>>,
    /// Put first on the `PATH` of spouts on the process executor (holds `pipectl`).
    bin_dir: Option<PathBuf>,
}

/// What one token may do.
#[derive(Debug, Clone)]
struct Grant {
    pipeline: String,
    branch: BranchRef,
}

/// Marks a request made with a spout's token (its value).
#[derive(Debug, Clone)]
struct SpoutCaller(String);

impl std::fmt::Debug for SpoutGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoutGate").finish_non_exhaustive()
    }
}

impl SpoutGate {
    /// A gate serving `state` on worker listeners that stop with `accepting`, their
    /// connections tracked by `tasks`; `bin_dir` (holding `pipectl`) goes first on the `PATH`
    /// of spouts on the process executor.
    pub fn new(
        state: AppState,
        limits: Limits,
        accepting: CancellationToken,
        tasks: TaskTracker,
        bin_dir: Option<PathBuf>,
    ) -> Self {
        SpoutGate {
            inner: Arc::new(GateInner {
                state,
                limits,
                accepting,
                tasks,
                listeners: tokio::sync::Mutex::new(HashMap::new()),
                grants: Mutex::new(HashMap::new()),
                bin_dir,
            }),
        }
    }

    fn grants(&self) -> std::sync::MutexGuard<'_, HashMap<String, Grant>> {
        self.inner.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker listener at `host`, bound (any free port) and served on first use.
    async fn listener(&self, host: IpAddr) -> Result<SocketAddr, String> {
        let mut listeners = self.inner.listeners.lock().await;
        if let Some(addr) = listeners.get(&host) {
            return Ok(*addr);
        }
        let l = bind_tcp(SocketAddr::new(host, 0), true)
            .await
            .map_err(|e| e.to_string())?;
        let addr = l
            .local_addr()
            .map_err(|e| format!("worker listener on {host}: {e}"))?;
        let app = crate::server::app(&self.inner.state.with_local_paths(false))
            .layer(from_fn_with_state(self.clone(), require_spout_token));
        self.inner.tasks.spawn(accept(
            Listener::Tcp(l),
            app,
            self.inner.limits,
            self.inner.accepting.clone(),
            self.inner.tasks.clone(),
        ));
        tracing::info!("spouts reach the server at http://{addr}");
        listeners.insert(host, addr);
        Ok(addr)
    }
}

#[async_trait::async_trait]
impl SpoutHost for SpoutGate {
    async fn grant(&self, request: &SpoutAccessRequest) -> Result<SpoutAccess, String> {
        let addr = self.listener(request.host).await?;
        let token = crate::auth::random_hex(crate::auth::TOKEN_BYTES)
            .map_err(|e| format!("making a token: {e}"))?;
        self.grants().insert(
            token.clone(),
            Grant {
                pipeline: request.pipeline.clone(),
                branch: request.output_branch.clone(),
            },
        );
        let mut env = vec![
            ("PIPECTL_SERVER".to_string(), format!("http://{addr}")),
            ("PIPECTL_TOKEN".to_string(), token.clone()),
            ("PIPECTL_NO_WAIT".to_string(), "1".to_string()),
        ];
        if let (Some(dir), "process") = (&self.inner.bin_dir, request.executor.as_str()) {
            let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
            env.push(("PATH".into(), format!("{}:{path}", dir.display())));
        }
        Ok(SpoutAccess {
            env,
            credential: token,
        })
    }

    fn revoke(&self, access: &SpoutAccess) {
        self.grants().remove(&access.credential);
    }

    fn is_granted(&self, credential: &str, branch: &BranchRef) -> bool {
        self.grants()
            .get(credential)
            .is_some_and(|g| g.branch == *branch)
    }
}

/// Middleware of worker listeners: a spout token is required, and it reaches only its own
/// output repo's routes (writes are checked by [`guard_output_writes`]).
async fn require_spout_token(
    State(gate): State<SpoutGate>,
    mut req: Request,
    next: Next,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some((token, grant)) = bearer.and_then(|t| gate.grants().get(&t).cloned().map(|g| (t, g)))
    else {
        return ApiError::new(
            ErrorKind::Unauthorized,
            "this listener serves spouts: it requires the spout's `Authorization: Bearer \
             $PIPECTL_TOKEN`",
        )
        .into_response();
    };
    let own = grant.branch.repo.to_string();
    let in_own_repo = repo_route(req.uri().path())
        .and_then(|(repo, _)| RepoRef::parse(&repo).ok())
        .is_some_and(|repo| repo == grant.branch.repo);
    if !in_own_repo {
        return ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "spout {}'s token reaches only its output repo {own} (it writes {})",
                grant.pipeline, grant.branch
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(SpoutCaller(token));
    next.run(req).await
}

/// `(repo, rest)` of a path `/api/v1/repos/{repo}[/rest]`, the repo percent-decoded.
fn repo_route(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v1/repos/")?;
    let (repo, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let repo = percent_encoding::percent_decode_str(repo)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some((repo, rest.to_string()))
}

/// What a write request targets: a branch name (start commit) or a commit-ish.
enum Target {
    Branch(String),
    CommitIsh(String),
}

/// Which write routes name a commit to write into (`commits/{c}/<verb>`).
const WRITE_VERBS: [&str; 5] = ["file", "tar", "finish", "copy", "local_dir"];

/// Middleware on every route: a write to a spout's output branch is refused unless it
/// carries that spout's current token; a spout's token writes nothing else.
pub async fn guard_output_writes(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let caller = req.extensions().get::<SpoutCaller>().cloned();
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let Some((repo, rest)) = repo_route(req.uri().path()) else {
        return refuse_other(caller, req, next).await;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (req, target) = match parts.as_slice() {
        ["commits"] if req.method() == Method::POST => match start_commit_branch(req).await {
            Ok((req, branch)) => (req, Target::Branch(branch)),
            Err(resp) => return resp,
        },
        ["commits", c, verb] if WRITE_VERBS.contains(verb) => {
            let c = percent_encoding::percent_decode_str(c)
                .decode_utf8_lossy()
                .into_owned();
            (req, Target::CommitIsh(c))
        }
        // Moving or deleting a branch: never a spout's (its token only writes commits).
        ["branches", b] if caller.is_none() => {
            let b = percent_encoding::percent_decode_str(b)
                .decode_utf8_lossy()
                .into_owned();
            (req, Target::Branch(b))
        }
        _ => return refuse_other(caller, req, next).await,
    };
    let checked = s
        .blocking(move |e| Ok(write_allowed(e, &repo, &target, caller.as_ref())))
        .await;
    match checked {
        Ok(Ok(())) => next.run(req).await,
        Ok(Err(refusal)) => refusal.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Other writes: fine for everyone but spouts.
async fn refuse_other(caller: Option<SpoutCaller>, req: Request, next: Next) -> Response {
    if caller.is_some() {
        return ApiError::new(
            ErrorKind::Forbidden,
            "a spout's token may only start, write and finish commits on its output branch",
        )
        .into_response();
    }
    next.run(req).await
}

/// The `branch` of a start-commit body, and the request rebuilt with the same body.
async fn start_commit_branch(req: Request) -> Result<(Request, String), Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, crate::router::MAX_JSON_BODY)
        .await
        .map_err(|e| ApiError::new(ErrorKind::Invalid, format!("reading the body: {e}")))
        .map_err(IntoResponse::into_response)?;
    let branch = serde_json::from_slice::<crate::routes::commits::StartCommit>(&bytes)
        .map(|s| s.branch)
        .unwrap_or_default();
    Ok((Request::from_parts(parts, Body::from(bytes)), branch))
}

/// Whether `caller` may write `target` of `repo`; `Err` is the refusal. Targets that do not
/// resolve are left to the route (which answers not found).
fn write_allowed(
    e: &Engine,
    repo: &str,
    target: &Target,
    caller: Option<&SpoutCaller>,
) -> Result<(), ApiError> {
    let Ok(repo) = RepoRef::parse(repo) else {
        return Ok(());
    };
    let branch = match target {
        Target::Branch(b) => repo.branch(b).ok(),
        Target::CommitIsh(c) => e.branch_written(&repo, c),
    };
    match (caller, branch) {
        (Some(SpoutCaller(token)), Some(b)) if e.spout_may_write(token, &b) => Ok(()),
        (Some(_), _) => Err(ApiError::new(
            ErrorKind::Forbidden,
            "a spout's token writes only its own output branch",
        )),
        (None, Some(b)) => Ok(e.check_output_write(&b, None)?),
        (None, None) => Ok(()),
    }
}
