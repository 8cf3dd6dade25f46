//! Running one recorded datum again outside the engine (`pipectl debug datum`): the recipe
//! of what the job ran (inputs, environment, program, the pipeline version's worker pool
//! with its pinned image) built from the job's records alone, and the comparison of a rerun's
//! `/pfs/out` with what the job committed.
//!
//! Not reproduced: secret values (`transform.secrets` environment variables and files: the
//! host supplied them to the job; a rerun gets none), `datum_tries`, `err_cmd` and timeouts
//! (one attempt of `transform.cmd`, as the job's first).

use std::collections::BTreeMap;
use std::path::Path;

use crate::datum::JobEnv;
use crate::executor::{Program, ProgramKind, Secrets, WorkerPoolSpec};
use crate::hash::{ContentHash, FileHasher};

use super::pool_spec::pool_spec;
use super::records::{DatumFailure, DatumInfo, DatumState, JobInfo, PipelineInfo, RunEnd};

/// One input of the datum to fetch: repo `repo` at `commit`, `path` (a directory when it
/// ends in `/`), placed at `scratch/<name><path>` where user code reads `/pfs/<name><path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeInput {
    /// Input name (`/pfs/<name>`).
    pub name: String,
    /// Repo.
    pub repo: String,
    /// The job's input commit of that repo.
    pub commit: String,
    /// Path in the repo.
    pub path: String,
}

/// What the job ran for one datum, from its records.
#[derive(Debug, Clone)]
pub struct DatumRecipe {
    /// Inputs to fetch into the scratch directory.
    pub inputs: Vec<RecipeInput>,
    /// The worker pool of the job's pipeline version, one worker (image pinned as the job ran).
    pub pool: WorkerPoolSpec,
    /// `transform.cmd` and `transform.stdin`.
    pub program: Program,
    /// `transform.env`, then the datum's own variables, exactly as the job set them (no
    /// secret values).
    pub env: Vec<(String, String)>,
    /// How the datum ended in the job: `None` when it succeeded (or was skipped, its
    /// outputs committed by an earlier job), else its last attempt's failure.
    pub recorded_failure: Option<DatumFailure>,
    /// Output paths the job committed for it.
    pub outputs: Vec<String>,
    /// Names of secrets whose values a rerun does not get.
    pub secrets_left_out: Vec<String>,
}

/// The recipe of datum `d` of `job`, whose pipeline version is `version`.
pub fn datum_recipe(version: &PipelineInfo, job: &JobInfo, d: &DatumInfo) -> DatumRecipe {
    let mut pool = pool_spec(version, &Secrets::default());
    pool.workers = 1;
    let transform = &pool.spec.transform;
    let commits: BTreeMap<&str, &str> = job
        .inputs
        .iter()
        .map(|c| (c.repo.name.as_str(), c.id.as_str()))
        .collect();
    let inputs: Vec<RecipeInput> = d
        .inputs
        .iter()
        .map(|i| RecipeInput {
            name: i.name.clone(),
            repo: i.repo.clone(),
            commit: commits
                .get(i.repo.as_str())
                .map_or_else(|| job.id.clone(), |c| c.to_string()),
            path: i.path.clone(),
        })
        .collect();
    let mut env: Vec<(String, String)> = transform
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(datum_env(job, d, &inputs));
    let recorded_failure = match d.state {
        DatumState::Success | DatumState::Skipped | DatumState::Recovered => None,
        DatumState::Failed => Some(last_failure(d)),
    };
    DatumRecipe {
        program: Program::new(ProgramKind::Cmd, transform.cmd.clone(), &transform.stdin),
        secrets_left_out: transform.secrets.iter().map(|s| s.name.clone()).collect(),
        inputs,
        env,
        recorded_failure,
        outputs: d.outputs.clone(),
        pool,
    }
}

/// The datum's own variables, as [`crate::datum::Datum::env`] made them for the job.
fn datum_env(job: &JobInfo, d: &DatumInfo, inputs: &[RecipeInput]) -> Vec<(String, String)> {
    let mut job_env = JobEnv::new(job.id.clone());
    job_env.pipeline_name = Some(job.pipeline.clone());
    for i in inputs {
        job_env
            .input_commits
            .insert(i.name.clone(), i.commit.clone());
    }
    let parts = d.inputs.iter().map(|i| crate::datum::EnvInput {
        name: &i.name,
        path: &i.path,
        join_key: &i.join_key,
        group_key: &i.group_key,
    });
    crate::datum::env_of(parts, &d.id, &job_env)
}

/// How the datum's last attempt failed (executor failure when none is recorded).
fn last_failure(d: &DatumInfo) -> DatumFailure {
    match d.attempt_history.last().map(|a| &a.ended) {
        Some(RunEnd::Failed { failure }) => failure.clone(),
        _ => d.failure.clone().unwrap_or(DatumFailure::Executor {
            message: "no attempt recorded".into(),
        }),
    }
}

/// How a rerun's `/pfs/out` compares with what the job committed for the datum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputComparison {
    /// Files with the committed content.
    pub same: Vec<String>,
    /// Files whose content differs.
    pub differ: Vec<String>,
    /// Committed files the rerun did not write.
    pub missing: Vec<String>,
    /// Files the rerun wrote that the job did not commit.
    pub extra: Vec<String>,
}

impl OutputComparison {
    /// Whether the rerun wrote exactly what was committed.
    pub fn identical(&self) -> bool {
        self.differ.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Compares the files under `out` (paths as `/x/y`, symlinks and directories not followed
/// or counted) with `committed` (path → content hash).
pub fn compare_outputs(
    out: &Path,
    committed: &BTreeMap<String, ContentHash>,
) -> std::io::Result<OutputComparison> {
    let mut written = BTreeMap::new();
    collect_files(out, "", &mut written)?;
    let mut c = OutputComparison::default();
    for (path, hash) in committed {
        match written.remove(path) {
            Some(h) if h == *hash => c.same.push(path.clone()),
            Some(_) => c.differ.push(path.clone()),
            None => c.missing.push(path.clone()),
        }
    }
    c.extra = written.into_keys().collect();
    Ok(c)
}

/// Every regular file under `dir` (relative path prefix `rel`) with its content hash.
fn collect_files(
    dir: &Path,
    rel: &str,
    out: &mut BTreeMap<String, ContentHash>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{rel}/{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), &path, out)?;
        } else if kind.is_file() {
            out.insert(path, hash_file(&entry.path())?);
        }
    }
    Ok(())
}

/// The content hash of a local file, streamed.
fn hash_file(path: &Path) -> std::io::Result<ContentHash> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = FileHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// A rerun's verdict as the failure a job would record (`None` for a success), to compare
/// with [`DatumRecipe::recorded_failure`].
pub fn verdict_failure(v: &crate::executor::policy::Verdict) -> Option<DatumFailure> {
    use crate::executor::policy::Verdict;
    match *v {
        Verdict::Success { .. } => None,
        Verdict::Failed { exit_code } => Some(DatumFailure::ExitCode { code: exit_code }),
        Verdict::Signaled { signal } => Some(DatumFailure::Signal { signal }),
        Verdict::TimedOut => Some(DatumFailure::Timeout),
        Verdict::Cancelled => Some(DatumFailure::Cancelled),
        Verdict::OutOfMemory => Some(DatumFailure::OutOfMemory),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_compare_by_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("same"), "a").unwrap();
        std::fs::write(dir.path().join("d/changed"), "new").unwrap();
        std::fs::write(dir.path().join("extra"), "x").unwrap();
        let committed: BTreeMap<String, ContentHash> =
            [("/same", "a"), ("/d/changed", "old"), ("/gone", "g")]
                .into_iter()
                .map(|(p, c)| (p.to_string(), ContentHash::of_bytes(c.as_bytes())))
                .collect();
        let c = compare_outputs(dir.path(), &committed).unwrap();
        assert_eq!(c.same, ["/same"]);
        assert_eq!(c.differ, ["/d/changed"]);
        assert_eq!(c.missing, ["/gone"]);
        assert_eq!(c.extra, ["/extra"]);
        assert!(!c.identical());
        std::fs::remove_file(dir.path().join("extra")).unwrap();
        std::fs::write(dir.path().join("d/changed"), "old").unwrap();
        std::fs::write(dir.path().join("gone"), "g").unwrap();
        assert!(compare_outputs(dir.path(), &committed).unwrap().identical());
    }
}
