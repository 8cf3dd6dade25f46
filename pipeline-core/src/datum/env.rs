//! The environment variables Pachyderm sets for one datum (reference §3.4).

use std::collections::BTreeMap;

use super::Datum;

/// Job-level values that go into a datum's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobEnv {
    /// `PACH_JOB_ID` (the commit-set ID).
    pub job_id: String,
    /// `PACH_OUTPUT_COMMIT_ID`; the job ID when `None` (as in Pachyderm 2.x).
    pub output_commit_id: Option<String>,
    /// `<input>_COMMIT` per input name; inputs missing here get the job ID.
    pub input_commits: BTreeMap<String, String>,
    /// `PPS_PIPELINE_NAME`, when known.
    pub pipeline_name: Option<String>,
}

impl JobEnv {
    /// Job-level values for a job ID (also used as output and input commit IDs).
    pub fn new(job_id: impl Into<String>) -> Self {
        JobEnv {
            job_id: job_id.into(),
            ..Default::default()
        }
    }
}

impl Datum {
    /// The variables user code sees for this datum, in Pachyderm's order:
    /// per input `<name>` (`/pfs/<name><path>` without a trailing `/`, `/pfs/<name>` for the
    /// root), `<name>_COMMIT`, `PACH_DATUM_<name>_JOIN_ON` / `_GROUP_BY` when non-empty; then
    /// `PACH_DATUM_ID`, `PACH_JOB_ID`, `PACH_OUTPUT_COMMIT_ID` and `PPS_PIPELINE_NAME` (when
    /// known). A name set twice (several files of one input in a group datum) keeps its
    /// **last** value, at its first position, as Go's `exec` does.
    ///
    /// ```
    /// # use std::collections::HashMap; use std::sync::Arc;
    /// # use pipeline_core::datum::*; use pipeline_core::spec::Input;
    /// let input: Input = serde_json::from_str(r#"{"pfs": {"repo": "images", "glob": "/*"}}"#).unwrap();
    /// let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    /// sources.insert("images".into(), Arc::new(MemTree::from_paths(["/dir/c.png"]).unwrap()));
    /// let plan = DatumPlan::new(&input, &sources, &PlanOptions::default()).unwrap();
    /// let datum = plan.datums().next().unwrap().unwrap();
    /// let env = datum.env(&JobEnv::new("job1"));
    /// assert_eq!(env[0], ("images".to_string(), "/pfs/images/dir".to_string()));
    /// assert_eq!(env[1], ("images_COMMIT".to_string(), "job1".to_string()));
    /// ```
    pub fn env(&self, job: &JobEnv) -> Vec<(String, String)> {
        let inputs = self.inputs.iter().map(|i| EnvInput {
            name: &i.leaf.name,
            path: &i.path,
            join_key: &i.join_key,
            group_key: &i.group_key,
        });
        env_of(inputs, &self.id().to_hex(), job)
    }
}

/// One input file of a datum as its environment needs it: what [`Datum::env`] reads of each
/// input, and what a datum's stored record keeps (so a recorded datum's environment can be
/// made again without planning).
#[derive(Debug, Clone, Copy)]
pub struct EnvInput<'a> {
    /// Input name.
    pub name: &'a str,
    /// Path in the repo (directories end in `/`).
    pub path: &'a str,
    /// Join key (empty when none).
    pub join_key: &'a str,
    /// Group key (empty when none).
    pub group_key: &'a str,
}

/// The environment of the datum with ID `datum_id` (hex) and `inputs`; see [`Datum::env`].
pub fn env_of<'a>(
    inputs: impl IntoIterator<Item = EnvInput<'a>>,
    datum_id: &str,
    job: &JobEnv,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |k: String, v: String| match out.iter_mut().find(|(key, _)| *key == k) {
        Some(slot) => slot.1 = v,
        None => out.push((k, v)),
    };
    for input in inputs {
        let name = input.name;
        let rel = input.path.trim_end_matches('/');
        set(name.to_string(), format!("/pfs/{name}{rel}"));
        let commit = job.input_commits.get(name).unwrap_or(&job.job_id);
        set(format!("{name}_COMMIT"), commit.clone());
        if !input.join_key.is_empty() {
            set(
                format!("PACH_DATUM_{name}_JOIN_ON"),
                input.join_key.to_string(),
            );
        }
        if !input.group_key.is_empty() {
            set(
                format!("PACH_DATUM_{name}_GROUP_BY"),
                input.group_key.to_string(),
            );
        }
    }
    set("PACH_DATUM_ID".into(), datum_id.to_string());
    set("PACH_JOB_ID".into(), job.job_id.clone());
    set(
        "PACH_OUTPUT_COMMIT_ID".into(),
        job.output_commit_id
            .clone()
            .unwrap_or_else(|| job.job_id.clone()),
    );
    if let Some(p) = &job.pipeline_name {
        set("PPS_PIPELINE_NAME".into(), p.clone());
    }
    out
}
