//! Bucket operations: list every branch of every repo, create (repo and branch), delete (the
//! branch, and the repo with its last branch), as Pachyderm's gateway does.
use std::time::{Duration, UNIX_EPOCH};

use pipeline_core::pfs::PfsError;
use s3s::dto::{self, Timestamp};
use s3s::{S3Error, S3ErrorCode, S3Result};

use super::bucket::Bucket;
use super::errors::{bad_name, from_pfs};
use super::gateway::{Ctx, Scope};

/// Every bucket served: for the server's gateway every branch of every repo of every
/// project, named as [`Bucket::name_of`] spells it; for a job's, its buckets.
pub fn list(e: &Ctx) -> S3Result<Vec<dto::Bucket>> {
    if let Scope::Job(j) = e.scope() {
        return Ok(j
            .names()
            .into_iter()
            .map(|n| dto::Bucket {
                name: Some(n.to_string()),
                ..Default::default()
            })
            .collect());
    }
    let store = e.store();
    let repos = store.list_repos().map_err(|e| from_pfs(&e, ""))?;
    let mut out = Vec::new();
    for r in repos {
        let branches = match store.list_branches(&r.repo) {
            Ok(b) => b,
            // Deleted since it was listed.
            Err(PfsError::RepoNotFound { .. }) => continue,
            Err(e) => return Err(from_pfs(&e, &r.repo.to_string())),
        };
        let created = Timestamp::from(UNIX_EPOCH + Duration::from_millis(r.created_ms));
        for b in branches {
            out.push(dto::Bucket {
                name: Some(Bucket::name_of(&b.branch)),
                creation_date: Some(created.clone()),
                ..Default::default()
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Creates the bucket's repo (when absent) and branch.
pub fn create(e: &Ctx, name: &str) -> S3Result<()> {
    server_only(e, name)?;
    let store = e.store();
    let b = Bucket::parse(name).map_err(|e| bad_name(&e))?;
    if b.read_only() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidBucketName,
            format!(
                "bucket {name:?} names a commit; only BRANCH.REPO[.PROJECT] buckets can be created"
            ),
        ));
    }
    match store.inspect_repo(b.repo()) {
        Ok(_) => {}
        Err(PfsError::RepoNotFound { .. }) => match store.create_repo(b.repo(), "") {
            Ok(_) | Err(PfsError::RepoExists { .. }) => {}
            Err(e) => return Err(from_pfs(&e, name)),
        },
        Err(e) => return Err(from_pfs(&e, name)),
    }
    match store.inspect_branch(&b.branch) {
        Ok(_) => Err(S3Error::with_message(
            S3ErrorCode::BucketAlreadyOwnedByYou,
            format!("bucket {name:?}: branch {} exists already", b.branch),
        )),
        Err(PfsError::BranchNotFound { .. }) => store
            .create_branch(&b.branch, None, &[])
            .map(|_| ())
            .map_err(|e| from_pfs(&e, name)),
        Err(e) => Err(from_pfs(&e, name)),
    }
}

/// Deletes the bucket's branch, and its repo when that was the repo's last branch. Unlike
/// S3 (and like Pachyderm) a bucket with objects can be deleted.
pub fn delete(e: &Ctx, name: &str) -> S3Result<()> {
    server_only(e, name)?;
    let store = e.store();
    let b = Bucket::parse(name).map_err(|e| bad_name(&e))?;
    if b.read_only() {
        return Err(super::errors::read_only(name));
    }
    e.engine()
        .check_output_write(&b.branch, None)
        .map_err(|e| from_pfs(&e, name))?;
    store
        .delete_branch(&b.branch, false)
        .map_err(|e| from_pfs(&e, name))?;
    let rest = store
        .list_branches(b.repo())
        .map_err(|e| from_pfs(&e, name))?;
    if rest.is_empty() {
        store
            .delete_repo(b.repo(), false)
            .map_err(|e| from_pfs(&e, name))?;
    }
    Ok(())
}

/// Refuses bucket creation and deletion on a job's gateway, whose buckets are fixed.
fn server_only(e: &Ctx, name: &str) -> S3Result<()> {
    match e.scope() {
        Scope::Server => Ok(()),
        Scope::Job(j) => Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            format!(
                "bucket {name:?}: the gateway of job {} serves its own buckets ({}); none can be \
                 created or deleted",
                j.job,
                j.names().join(", ")
            ),
        )),
    }
}
