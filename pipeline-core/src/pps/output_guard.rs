//! Who may write a spout's output branch (reference §1.9): only the spout's own run.
//!
//! An ordinary pipeline's output branch has provenance, so the store already refuses user
//! commits on it ([`PfsError::OutputBranch`]). A spout's output branch has none (its user
//! code makes its commits), so the store alone cannot tell the spout from anyone else: the
//! engine can, from the pipeline record and the credential its [`SpoutHost`] granted the
//! current run. Every write path of a host (HTTP routes, transactions, the S3 gateway) asks
//! [`Engine::check_output_write`] (or [`Engine::check_commit_write`] for a commit-ish)
//! before writing; transactions check again inside their store transaction.
//!
//! [`SpoutHost`]: super::SpoutHost

use crate::pfs::{BranchRef, CommitId, PfsError, RepoRef, StoreTxn};

use super::Engine;
use super::keys::{PipelineKey, RecordKey};
use super::records::PipelineInfo;
use super::registry::decode;

/// The refusal of a write to `branch`, Pachyderm's message.
fn refused(branch: &BranchRef) -> PfsError {
    PfsError::OutputBranch {
        repo: branch.repo.to_string(),
        branch: branch.name.clone(),
    }
}

/// Whether `info` is a spout whose output branch is `branch`.
fn spout_writes(info: &PipelineInfo, branch: &BranchRef) -> bool {
    info.effective.spout.is_some() && info.output_branch == *branch
}

impl Engine {
    /// Whether `branch` is the output branch of a spout.
    ///
    /// Blocking: store reads only.
    pub fn is_spout_output(&self, branch: &BranchRef) -> bool {
        let id = super::pipeline_id_of_repo(&branch.repo);
        self.inspect_pipeline(&id)
            .is_ok_and(|p| spout_writes(&p, branch))
    }

    /// Refuses a write to `branch` (starting a commit on it, writing, finishing or deleting
    /// its commits, moving or deleting it) when it is a spout's output branch and
    /// `credential` is not the one the spout's current run was granted
    /// ([`Engine::spout_may_write`]); `None` is any other caller. The refusal is
    /// [`PfsError::OutputBranch`]: "cannot start a commit on an output branch".
    ///
    /// Blocking: store reads only.
    pub fn check_output_write(
        &self,
        branch: &BranchRef,
        credential: Option<&str>,
    ) -> Result<(), PfsError> {
        if !self.is_spout_output(branch) {
            return Ok(());
        }
        match credential {
            Some(c) if self.spout_may_write(c, branch) => Ok(()),
            _ => Err(refused(branch)),
        }
    }

    /// [`Engine::check_output_write`] for a write to commit-ish `at` of `repo` (a branch,
    /// a commit ID, `BRANCH^N`): the branch it names or the branch of the commit it
    /// resolves to. A commit-ish that names nothing is left to the write (which fails with
    /// not found).
    ///
    /// Blocking: store reads only.
    pub fn check_commit_write(
        &self,
        repo: &RepoRef,
        at: &str,
        credential: Option<&str>,
    ) -> Result<(), PfsError> {
        match self.branch_written(repo, at) {
            Some(b) => self.check_output_write(&b, credential),
            None => Ok(()),
        }
    }

    /// The branch a write to commit-ish `at` of `repo` changes: the branch it names (also
    /// one that does not exist yet), else the branch of the commit it resolves to.
    ///
    /// Blocking: store reads only.
    pub fn branch_written(&self, repo: &RepoRef, at: &str) -> Option<BranchRef> {
        let store = self.store();
        if let Ok(b) = repo.branch(at)
            && (store.inspect_branch(&b).is_ok() || CommitId::parse(at).is_err())
        {
            return Some(b);
        }
        let commit = store.resolve_commit(repo, at).ok()?;
        let info = store.inspect_commit(&commit).ok()?;
        repo.branch(info.branch.as_deref()?).ok()
    }

    /// [`Engine::check_output_write`] for a caller without a spout credential, as `txn`
    /// sees the store (a pipeline created earlier in the same transaction counts).
    pub(crate) fn check_output_write_in(
        &self,
        txn: &StoreTxn<'_>,
        branch: &BranchRef,
    ) -> super::Result<()> {
        let key = PipelineKey::new(&super::pipeline_id_of_repo(&branch.repo)).encode();
        let Some(v) = txn.engine_get(&key)? else {
            return Ok(());
        };
        let info: PipelineInfo = decode(&key, &v)?;
        if spout_writes(&info, branch) {
            return Err(refused(branch).into());
        }
        Ok(())
    }
}
