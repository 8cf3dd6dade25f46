//! Bucket names ↔ repos, branches and commits, as Pachyderm's gateway spells them:
//! `[COMMIT.]BRANCH.REPO[.PROJECT]` (a bare `REPO` is `master.REPO`), the project `default`
//! when left out. A bucket naming a commit is read-only.
use pipeline_core::pfs::{BranchRef, CommitId, DEFAULT_PROJECT, RepoRef};

/// What a bucket name names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The branch (and through it the repo and project).
    pub branch: BranchRef,
    /// The commit, for `COMMIT.BRANCH.REPO[.PROJECT]` buckets (read-only).
    pub commit: Option<CommitId>,
}

/// Why a bucket name names nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bucket name {name:?}: {reason}; expected [COMMIT.]BRANCH.REPO[.PROJECT]")]
pub struct BucketNameError {
    /// The bucket name as given.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Bucket {
    /// Parses a bucket name the way Pachyderm 2.x does: a leading 32-hex part is a commit ID;
    /// then `REPO` (branch `master`), `BRANCH.REPO`, or `BRANCH.REPO.PROJECT`.
    pub fn parse(name: &str) -> Result<Bucket, BucketNameError> {
        let err = |reason: String| BucketNameError {
            name: name.to_string(),
            reason,
        };
        let mut parts: Vec<&str> = name.split('.').collect();
        let commit = match parts.first().and_then(|p| CommitId::parse(p).ok()) {
            Some(id) if parts.len() > 1 => {
                parts.remove(0);
                Some(id)
            }
            _ => None,
        };
        let (branch, repo, project) = match parts.as_slice() {
            [repo] => ("master", *repo, DEFAULT_PROJECT),
            [branch, repo] => (*branch, *repo, DEFAULT_PROJECT),
            [branch, repo, project] => (*branch, *repo, *project),
            _ => return Err(err(format!("{} dot-separated parts", parts.len()))),
        };
        let repo = RepoRef::in_project(project, repo).map_err(|e| err(e.to_string()))?;
        let branch = repo.branch(branch).map_err(|e| err(e.to_string()))?;
        Ok(Bucket { branch, commit })
    }

    /// The bucket name of a branch as the gateway lists it: `BRANCH.REPO` in the default
    /// project, `BRANCH.REPO.PROJECT` elsewhere (both parse back to the same branch).
    pub fn name_of(branch: &BranchRef) -> String {
        if branch.repo.project == DEFAULT_PROJECT {
            format!("{}.{}", branch.name, branch.repo.name)
        } else {
            format!(
                "{}.{}.{}",
                branch.name, branch.repo.name, branch.repo.project
            )
        }
    }

    /// The repo.
    pub fn repo(&self) -> &RepoRef {
        &self.branch.repo
    }

    /// Whether writes are refused (the bucket names a commit).
    pub fn read_only(&self) -> bool {
        self.commit.is_some()
    }

    /// The commit-ish reads resolve: the commit ID, or the branch (its head).
    pub fn commitish(&self) -> &str {
        match &self.commit {
            Some(id) => id.as_str(),
            None => &self.branch.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pachyderm_bucket_names() {
        let b = Bucket::parse("master.images").unwrap();
        assert_eq!(b.branch.name, "master");
        assert_eq!(b.repo().name, "images");
        assert_eq!(b.repo().project, DEFAULT_PROJECT);
        assert!(!b.read_only());
        let b = Bucket::parse("images").unwrap();
        assert_eq!(b.branch.name, "master");
        let b = Bucket::parse("dev.images.proj").unwrap();
        assert_eq!(
            (b.branch.name.as_str(), b.repo().project.as_str()),
            ("dev", "proj")
        );
        let id = "0123456789abcdef0123456789abcdef";
        let b = Bucket::parse(&format!("{id}.master.images")).unwrap();
        assert_eq!(b.commit.as_ref().map(CommitId::as_str), Some(id));
        assert!(b.read_only());
        assert_eq!(b.commitish(), id);
    }

    #[test]
    fn refuses_malformed_names_saying_what_is_expected() {
        for bad in ["a.b.c.d", "", "x..y", "bad name.repo"] {
            let e = Bucket::parse(bad).unwrap_err();
            assert!(e.to_string().contains("BRANCH.REPO"), "{e}");
        }
    }

    #[test]
    fn listed_names_parse_back() {
        for name in ["master.images", "dev.images.proj"] {
            let b = Bucket::parse(name).unwrap();
            assert_eq!(Bucket::name_of(&b.branch), name);
        }
    }
}
