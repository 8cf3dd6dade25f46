//! Finishing a transaction ([`Engine::finish_transaction`]): every queued request applied in
//! **one** store transaction that gives every commit they start one commit-set ID, and the
//! transaction's record removed in it; then the jobs of that commit set are created once.

use crate::pfs::{BranchRef, CommitId, CommitInfo, FinishOptions, StoreTxn};

use super::error::{PpsError, Result, task_failed};
use super::keys::{RecordKey, TransactionKey};
use super::registry::CreateOptions;
use super::transactions::{
    TransactionFinished, TransactionInfo, TransactionRequest, TransactionResponse, branch_arg,
    commit_arg, load, parse_specs, repo_arg,
};
use super::{Engine, ImagePins};

/// What the store transaction of a finish did.
struct Applied {
    /// One response per request.
    responses: Vec<TransactionResponse>,
    /// The commits it finished (announced after the commit).
    finished: Vec<CommitInfo>,
}

impl Engine {
    /// Finishes transaction `id`: pins the images of the pipelines it creates (as
    /// `create pipeline` does), then applies every queued request in order in **one** store
    /// transaction, in which every commit started (by `start commit`, a new branch
    /// provenance or a new pipeline) belongs to one new commit set, and removes the
    /// transaction. Either all of it is applied, or nothing is: an error in any request is
    /// [`PpsError::TransactionRequest`] naming it, and the transaction stays (to fix and
    /// finish again, or delete). Then the commit set's jobs are created, once (they run on
    /// the next [`Engine::run_pending`]).
    ///
    /// Async: waits for the executors to resolve images; the store work runs on the blocking
    /// pool.
    pub async fn finish_transaction(&self, id: &str) -> Result<TransactionFinished> {
        let queued = self.inspect_transaction(id)?;
        let pins = self.pin_transaction_images(&queued).await?;
        let engine = self.clone();
        let finished =
            tokio::task::spawn_blocking(move || engine.apply_transaction(&queued, &pins))
                .await
                .map_err(task_failed("finish transaction"))??;
        Ok(finished)
    }

    /// The images of every pipeline the transaction creates, pinned by its executor; an
    /// image that cannot be used fails the request that names it.
    async fn pin_transaction_images(&self, queued: &TransactionInfo) -> Result<ImagePins> {
        let mut pins = ImagePins::new();
        for (i, request) in queued.requests.iter().enumerate() {
            let TransactionRequest::CreatePipeline {
                spec,
                source_name,
                executor,
            } = request
            else {
                continue;
            };
            let opts = CreateOptions {
                executor: executor.clone(),
                ..CreateOptions::default()
            };
            let pinned = match parse_specs(spec, source_name) {
                Ok(parsed) => self.pin_images(&parsed, &opts).await,
                Err(e) => Err(e),
            };
            pins.extend(pinned.map_err(|e| request_failed(queued, i, request, e))?);
        }
        Ok(pins)
    }

    /// The blocking part of [`Engine::finish_transaction`].
    fn apply_transaction(
        &self,
        queued: &TransactionInfo,
        pins: &ImagePins,
    ) -> Result<TransactionFinished> {
        let store = self.store();
        let set = CommitId::generate();
        let applied = store.transact(|txn| -> Result<Applied> {
            txn.use_commit_set(set.clone());
            if load(txn, &queued.id)? != *queued {
                return Err(PpsError::Usage(format!(
                    "transaction {} changed while it was finishing (a request was added); finish it again",
                    queued.id
                )));
            }
            let mut applied = Applied {
                responses: Vec::new(),
                finished: Vec::new(),
            };
            for (i, request) in queued.requests.iter().enumerate() {
                let response = self
                    .apply_request(txn, request, pins, &mut applied.finished)
                    .map_err(|e| request_failed(queued, i, request, e))?;
                applied.responses.push(response);
            }
            txn.engine_delete(&TransactionKey::new(&queued.id).encode())?;
            Ok(applied)
        })?;
        store.announce_finished(&applied.finished)?;
        let in_set = !store.inspect_commit_set(&set)?.is_empty();
        self.discover_jobs()?;
        let jobs = if in_set {
            self.jobs_of_commit_set(set.as_str())?
        } else {
            Vec::new()
        };
        Ok(TransactionFinished {
            id: queued.id.clone(),
            commit_set: in_set.then(|| set.to_string()),
            responses: applied.responses,
            jobs,
        })
    }

    /// Applies one request inside the finishing transaction.
    fn apply_request(
        &self,
        txn: &mut StoreTxn<'_>,
        request: &TransactionRequest,
        pins: &ImagePins,
        finished: &mut Vec<CommitInfo>,
    ) -> Result<TransactionResponse> {
        if let Some(b) = written_branch_in(txn, request)? {
            self.check_output_write_in(txn, &b)?;
        }
        Ok(match request {
            TransactionRequest::CreateRepo { repo, description } => {
                let repo = repo_arg("create_repo.repo", repo)?;
                TransactionResponse::Repo(txn.create_repo(&repo, description)?)
            }
            TransactionRequest::DeleteRepo { repo, force } => {
                let repo = repo_arg("delete_repo.repo", repo)?;
                txn.delete_repo(&repo, *force)?;
                TransactionResponse::Deleted(repo.to_string())
            }
            TransactionRequest::CreateBranch {
                branch,
                head,
                provenance,
            } => {
                let b = branch_arg("create_branch.branch", branch)?;
                let head = match head {
                    Some(h) => Some(txn.resolve_commit(&b.repo, h)?.id),
                    None => None,
                };
                let mut prov = Vec::new();
                for (i, p) in provenance.iter().enumerate() {
                    prov.push(branch_arg(&format!("create_branch.provenance[{i}]"), p)?);
                }
                TransactionResponse::Branch(txn.create_branch(&b, head.as_ref(), &prov)?)
            }
            TransactionRequest::DeleteBranch { branch, force } => {
                let b = branch_arg("delete_branch.branch", branch)?;
                txn.delete_branch(&b, *force)?;
                TransactionResponse::Deleted(b.to_string())
            }
            TransactionRequest::StartCommit {
                branch,
                description,
            } => {
                let b = branch_arg("start_commit.branch", branch)?;
                TransactionResponse::Commit(txn.start_commit(&b, description)?)
            }
            TransactionRequest::FinishCommit { commit, error } => {
                let (repo, at) = commit_arg("finish_commit.commit", commit)?;
                let c = txn.resolve_commit(&repo, &at)?;
                let opts = FinishOptions {
                    error: error.clone(),
                    description: None,
                };
                let info = self.store().finish_commit_in(txn, &c, opts)?;
                finished.push(info.clone());
                TransactionResponse::Commit(info)
            }
            TransactionRequest::CreatePipeline {
                spec,
                source_name,
                executor,
            } => {
                let opts = CreateOptions {
                    executor: executor.clone(),
                    images: pins.clone(),
                    ..CreateOptions::default()
                };
                let mut created = Vec::new();
                for parsed in parse_specs(spec, source_name)? {
                    created.push(self.register_in(txn, &parsed.spec, &opts)?);
                }
                TransactionResponse::Pipelines(created)
            }
        })
    }
}

/// The branch `request` writes (starts or finishes a commit on, moves or deletes) as `txn`
/// sees the store: a transaction user may not write a spout's output branch
/// ([`Engine::check_output_write`]). A commit that does not resolve is left to the request.
pub(super) fn written_branch_in(
    txn: &StoreTxn<'_>,
    request: &TransactionRequest,
) -> Result<Option<BranchRef>> {
    Ok(match request {
        TransactionRequest::CreateBranch { branch, .. } => {
            Some(branch_arg("create_branch.branch", branch)?)
        }
        TransactionRequest::DeleteBranch { branch, .. } => {
            Some(branch_arg("delete_branch.branch", branch)?)
        }
        TransactionRequest::StartCommit { branch, .. } => {
            Some(branch_arg("start_commit.branch", branch)?)
        }
        TransactionRequest::FinishCommit { commit, .. } => {
            let (repo, at) = commit_arg("finish_commit.commit", commit)?;
            txn.resolve_commit(&repo, &at)
                .and_then(|c| txn.inspect_commit(&c))
                .ok()
                .and_then(|info| repo.branch(info.branch.as_deref()?).ok())
        }
        TransactionRequest::CreateRepo { .. }
        | TransactionRequest::DeleteRepo { .. }
        | TransactionRequest::CreatePipeline { .. } => None,
    })
}

/// Request `i` of `queued` failed with `source`.
fn request_failed(
    queued: &TransactionInfo,
    i: usize,
    request: &TransactionRequest,
    source: PpsError,
) -> PpsError {
    PpsError::TransactionRequest {
        transaction: queued.id.clone(),
        index: i + 1,
        request: request.describe(),
        source: Box::new(source),
    }
}
