//! Transactions, as pachctl's `start|finish transaction`: requests are queued in a stored
//! record ([`TransactionInfo`], key `T/{id}`), then [`Engine::finish_transaction`] applies
//! all of them in **one** store transaction, in which every commit they start belongs to one
//! commit set. So starting commits on two input repos of a cross pipeline and finishing them
//! gives each downstream pipeline one job (reference §4.4); an error in any request applies
//! nothing and names the request.
//!
//! What can be queued is what can join one store transaction: creating and deleting repos
//! and branches, starting and finishing commits, creating pipelines. Updating a pipeline
//! cannot (it kills the pipeline's running jobs first, which could not be undone if a later
//! request failed), so it is refused inside a transaction; file writes cannot either (their
//! contents are written before the metadata that names them), so they are not requests.

use serde::{Deserialize, Serialize};

use crate::error_chain::ErrorChain;
use crate::pfs::refs::FileRef;
use crate::pfs::{BranchInfo, BranchRef, CommitId, CommitInfo, RepoInfo, RepoRef, StoreTxn};
use crate::spec::ParsedSpec;
use crate::spec::effective::DEFAULT_BRANCH;

use super::error::{PpsError, Result};
use super::keys::{RecordKey, TransactionKey};
use super::records::{JobInfo, PipelineInfo, enc};
use super::registry::decode;
use super::{Engine, now_ms};

/// One queued request of a transaction. References are written as on the command line:
/// `[PROJECT/]REPO`, `REPO@BRANCH` (a missing `@BRANCH` is `@master`), `REPO@COMMIT` (an ID,
/// a branch for its head, `BRANCH^N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TransactionRequest {
    /// `create repo`.
    CreateRepo {
        /// `[PROJECT/]NAME`.
        repo: String,
        /// Free text.
        #[serde(default)]
        description: String,
    },
    /// `delete repo`.
    DeleteRepo {
        /// `[PROJECT/]NAME`.
        repo: String,
        /// Also remove provenance edges pointing at it.
        #[serde(default)]
        force: bool,
    },
    /// `create branch`: create a branch or set its head and provenance.
    CreateBranch {
        /// `REPO@BRANCH`.
        branch: String,
        /// The head: a commit-ish of the same repo; none keeps the current head.
        #[serde(default)]
        head: Option<String>,
        /// Direct provenance, each `REPO@BRANCH`.
        #[serde(default)]
        provenance: Vec<String>,
    },
    /// `delete branch`.
    DeleteBranch {
        /// `REPO@BRANCH`.
        branch: String,
        /// Also remove provenance edges pointing at it.
        #[serde(default)]
        force: bool,
    },
    /// `start commit`: a commit in the transaction's commit set.
    StartCommit {
        /// `REPO@BRANCH`.
        branch: String,
        /// Free text.
        #[serde(default)]
        description: String,
    },
    /// `finish commit`.
    FinishCommit {
        /// `REPO@COMMIT` (ID, branch or `BRANCH^N`, resolved when the transaction finishes).
        commit: String,
        /// Finish it with this error (it is then never inherited from).
        #[serde(default)]
        error: Option<String>,
    },
    /// `create pipeline`: every pipeline of a spec file, created (never updated).
    CreatePipeline {
        /// The spec file's text (JSON or YAML; several specs allowed).
        spec: String,
        /// The file's name, for error positions.
        #[serde(default)]
        source_name: String,
        /// The executor the pipelines use (default: the engine's).
        #[serde(default)]
        executor: Option<String>,
    },
}

/// A transaction: its ID and the requests queued so far, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionInfo {
    /// Transaction ID (32 hex digits).
    pub id: String,
    /// When it was started (ms since the epoch).
    pub started_ms: u64,
    /// The queued requests, in the order they run.
    pub requests: Vec<TransactionRequest>,
}

/// What one request did when its transaction finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransactionResponse {
    /// A repo was created.
    Repo(RepoInfo),
    /// A branch was created or changed.
    Branch(BranchInfo),
    /// A commit was started or finished.
    Commit(CommitInfo),
    /// Pipelines were created (or were already there with exactly this spec).
    Pipelines(Vec<PipelineInfo>),
    /// A repo or branch was deleted (named).
    Deleted(String),
}

/// What [`Engine::finish_transaction`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionFinished {
    /// The transaction.
    pub id: String,
    /// The one commit set of every commit the requests started (`None` when they started
    /// none).
    pub commit_set: Option<String>,
    /// One response per request, in order.
    pub responses: Vec<TransactionResponse>,
    /// The jobs of that commit set (one per downstream pipeline).
    pub jobs: Vec<JobInfo>,
}

/// `REPO@BRANCH` (`@master` when missing) as a branch.
pub(super) fn branch_arg(field: &str, s: &str) -> Result<BranchRef> {
    let bad = |e: crate::pfs::PfsError| {
        PpsError::Usage(format!(
            "{field}: expected REPO@BRANCH, got {s:?}: {}",
            ErrorChain(&e)
        ))
    };
    let r = FileRef::parse(s).map_err(bad)?;
    if r.path.is_some() {
        return Err(PpsError::Usage(format!(
            "{field}: expected REPO@BRANCH without a path, got {s:?}"
        )));
    }
    r.repo
        .branch(r.commit.as_deref().unwrap_or(DEFAULT_BRANCH))
        .map_err(bad)
}

/// `[PROJECT/]REPO` as a repo.
pub(super) fn repo_arg(field: &str, s: &str) -> Result<RepoRef> {
    RepoRef::parse(s).map_err(|e| {
        PpsError::Usage(format!(
            "{field}: expected [PROJECT/]REPO, got {s:?}: {}",
            ErrorChain(&e)
        ))
    })
}

/// `REPO@COMMIT` as the repo and the commit-ish (`master` when missing).
pub(super) fn commit_arg(field: &str, s: &str) -> Result<(RepoRef, String)> {
    let r = FileRef::parse(s).map_err(|e| {
        PpsError::Usage(format!(
            "{field}: expected REPO@COMMIT, got {s:?}: {}",
            ErrorChain(&e)
        ))
    })?;
    if r.path.is_some() {
        return Err(PpsError::Usage(format!(
            "{field}: expected REPO@COMMIT without a path, got {s:?}"
        )));
    }
    let at = r.commit.unwrap_or_else(|| DEFAULT_BRANCH.to_string());
    Ok((r.repo, at))
}

/// A spec file's pipelines, parsed and checked with every store-free rule.
pub(super) fn parse_specs(spec: &str, source_name: &str) -> Result<Vec<ParsedSpec>> {
    let name = if source_name.is_empty() {
        "spec"
    } else {
        source_name
    };
    let parsed = crate::spec::parse_str(spec, name)
        .map_err(|e| PpsError::Usage(format!("create_pipeline.spec: {}", ErrorChain(&e))))?;
    if parsed.is_empty() {
        return Err(PpsError::Usage(
            "create_pipeline.spec: the file holds no pipeline spec".into(),
        ));
    }
    for p in &parsed {
        let report = crate::validate::validate(p);
        if !report.is_valid() {
            return Err(PpsError::InvalidSpec {
                pipeline: p.pipeline_name().unwrap_or_default().to_string(),
                diagnostics: report.errors,
            });
        }
    }
    Ok(parsed)
}

impl TransactionRequest {
    /// Checks what can be checked before the transaction finishes: every reference parses,
    /// a spec parses and passes the store-free rules. Errors name the field.
    pub fn check(&self) -> Result<()> {
        match self {
            TransactionRequest::CreateRepo { repo, .. } => {
                repo_arg("create_repo.repo", repo)?;
            }
            TransactionRequest::DeleteRepo { repo, .. } => {
                repo_arg("delete_repo.repo", repo)?;
            }
            TransactionRequest::CreateBranch {
                branch, provenance, ..
            } => {
                branch_arg("create_branch.branch", branch)?;
                for (i, p) in provenance.iter().enumerate() {
                    branch_arg(&format!("create_branch.provenance[{i}]"), p)?;
                }
            }
            TransactionRequest::DeleteBranch { branch, .. } => {
                branch_arg("delete_branch.branch", branch)?;
            }
            TransactionRequest::StartCommit { branch, .. } => {
                branch_arg("start_commit.branch", branch)?;
            }
            TransactionRequest::FinishCommit { commit, .. } => {
                commit_arg("finish_commit.commit", commit)?;
            }
            TransactionRequest::CreatePipeline {
                spec, source_name, ..
            } => {
                parse_specs(spec, source_name)?;
            }
        }
        Ok(())
    }

    /// The request as the command that queued it (`start commit data@master`), for
    /// listings and errors.
    pub fn describe(&self) -> String {
        match self {
            TransactionRequest::CreateRepo { repo, .. } => format!("create repo {repo}"),
            TransactionRequest::DeleteRepo { repo, .. } => format!("delete repo {repo}"),
            TransactionRequest::CreateBranch { branch, .. } => format!("create branch {branch}"),
            TransactionRequest::DeleteBranch { branch, .. } => format!("delete branch {branch}"),
            TransactionRequest::StartCommit { branch, .. } => format!("start commit {branch}"),
            TransactionRequest::FinishCommit { commit, .. } => format!("finish commit {commit}"),
            TransactionRequest::CreatePipeline {
                spec, source_name, ..
            } => {
                let names: Vec<String> = crate::spec::parse_str(spec, "spec")
                    .map(|v| {
                        v.iter()
                            .filter_map(|p| p.pipeline_name().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                match (names.is_empty(), source_name.is_empty()) {
                    (false, _) => format!("create pipeline {}", names.join(", ")),
                    (true, false) => format!("create pipeline -f {source_name}"),
                    (true, true) => "create pipeline".to_string(),
                }
            }
        }
    }
}

/// A transaction's record as `txn` sees it.
pub(super) fn load(txn: &StoreTxn<'_>, id: &str) -> Result<TransactionInfo> {
    let key = TransactionKey::new(id).encode();
    match txn.engine_get(&key)? {
        Some(v) => decode(&key, &v),
        None => Err(PpsError::TransactionNotFound(id.to_string())),
    }
}

/// A transaction ID as given by a user: 32 hex digits.
fn check_id(id: &str) -> Result<()> {
    CommitId::parse(id).map(|_| ()).map_err(|_| {
        PpsError::Usage(format!(
            "transaction ID {id:?}: expected 32 hexadecimal digits"
        ))
    })
}

impl Engine {
    /// Starts an empty transaction and returns it.
    ///
    /// Blocking: one store transaction.
    pub fn start_transaction(&self) -> Result<TransactionInfo> {
        let info = TransactionInfo {
            id: CommitId::generate().to_string(),
            started_ms: now_ms(),
            requests: Vec::new(),
        };
        self.store()
            .transact(|txn| txn.engine_put(&TransactionKey::new(&info.id).encode(), &enc(&info)))?;
        Ok(info)
    }

    /// Every transaction not finished or deleted yet, oldest first.
    ///
    /// Blocking: store reads only.
    pub fn list_transactions(&self) -> Result<Vec<TransactionInfo>> {
        let mut out: Vec<TransactionInfo> = Vec::new();
        for kv in self.store().engine_scan(TransactionKey::all().as_bytes())? {
            let (k, v) = kv?;
            out.push(decode(&k, &v)?);
        }
        out.sort_by(|a, b| a.started_ms.cmp(&b.started_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One transaction ([`PpsError::TransactionNotFound`] when it was finished, deleted or
    /// never started).
    ///
    /// Blocking: store reads only.
    pub fn inspect_transaction(&self, id: &str) -> Result<TransactionInfo> {
        check_id(id)?;
        let key = TransactionKey::new(id).encode();
        match self.store().engine_get(&key)? {
            Some(v) => decode(&key, &v),
            None => Err(PpsError::TransactionNotFound(id.to_string())),
        }
    }

    /// Queues `request` at the end of transaction `id` after [`TransactionRequest::check`]
    /// (and refuses a write to a spout's output branch: [`Engine::check_output_write`]);
    /// nothing runs until [`Engine::finish_transaction`]. Returns the transaction.
    ///
    /// Blocking: one store transaction.
    pub fn append_transaction_request(
        &self,
        id: &str,
        request: TransactionRequest,
    ) -> Result<TransactionInfo> {
        check_id(id)?;
        request.check()?;
        self.store().transact(|txn| -> Result<TransactionInfo> {
            let mut info = load(txn, id)?;
            // Refused now rather than when the transaction finishes (where it is checked
            // again, as the store may have changed).
            if let Some(b) = super::transaction_finish::written_branch_in(txn, &request)? {
                self.check_output_write_in(txn, &b)?;
            }
            info.requests.push(request);
            txn.engine_put(&TransactionKey::new(id).encode(), &enc(&info))?;
            Ok(info)
        })
    }

    /// Deletes a transaction and its queued requests (nothing of them runs).
    ///
    /// Blocking: one store transaction.
    pub fn delete_transaction(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.store().transact(|txn| -> Result<()> {
            load(txn, id)?;
            txn.engine_delete(&TransactionKey::new(id).encode())?;
            Ok(())
        })
    }
}
