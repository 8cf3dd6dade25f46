//! A job's S3 gateway (reference §1.7, §2.10): pipelines with `s3: true` inputs or
//! `s3_out: true` read and write their data over S3 instead of `/pfs`.
//!
//! For each job of such a pipeline the engine asks its host application's [`JobGateways`]
//! (the S3 implementation lives with the server, `pipeline_server::s3`) for a gateway
//! serving exactly that job's data: each S3 input as a read-only bucket named after the
//! input, holding the input commit's files, and, with `s3_out`, the job's open output commit
//! as the bucket [`OUTPUT_BUCKET`], written directly. The gateway listens where the
//! pipeline's executor says its user code reaches the host
//! ([`crate::executor::Executor::host_address`]) with a credential made for the job; user
//! code gets `S3_ENDPOINT`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. The gateway
//! stops when the job's datums are done.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;

use crate::datum::DatumPlan;
use crate::error_chain::ErrorChain;
use crate::executor::Secrets;
use crate::pfs::{CommitRef, PfsError};
use crate::spec::EffectiveSpec;

use super::Engine;
use super::pool_spec::pool_spec;
use super::records::{JobInfo, PipelineInfo};

/// The bucket a job with `s3_out` writes its output to.
pub const OUTPUT_BUCKET: &str = "out";

/// What one job's gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobBuckets {
    /// The job (its ID), for names and logs.
    pub job: String,
    /// The `s3: true` inputs: the input's name (the bucket) and the commit it reads.
    pub inputs: Vec<(String, CommitRef)>,
    /// With `s3_out`, the job's output commit, served as [`OUTPUT_BUCKET`].
    pub output: Option<CommitRef>,
}

impl JobBuckets {
    /// The commit bucket `name` reads, if the gateway serves it.
    pub fn commit(&self, name: &str) -> Option<&CommitRef> {
        if name == OUTPUT_BUCKET {
            return self.output.as_ref();
        }
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Every bucket name served, inputs first.
    pub fn names(&self) -> Vec<&str> {
        let inputs = self.inputs.iter().map(|(n, _)| n.as_str());
        inputs
            .chain(self.output.as_ref().map(|_| OUTPUT_BUCKET))
            .collect()
    }
}

/// A running job gateway: where it listens and the credential it accepts. Dropping it
/// stops the gateway.
pub struct RunningJobGateway {
    /// The URL user code reaches it at (`http://HOST:PORT`), given as `S3_ENDPOINT`.
    pub endpoint: String,
    /// The access key ID it accepts (`AWS_ACCESS_KEY_ID`).
    pub access_key: String,
    /// The secret of that key (`AWS_SECRET_ACCESS_KEY`); redacted from logs.
    pub secret_key: String,
    /// Whatever keeps the gateway running; dropped to stop it.
    pub guard: Box<dyn Send + Sync>,
}

impl fmt::Debug for RunningJobGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningJobGateway")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl RunningJobGateway {
    /// The variables user code gets: `S3_ENDPOINT`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("S3_ENDPOINT".into(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
        ]
    }
}

/// Starts job gateways: installed by the host application with
/// [`super::EngineBuilder::job_gateways`] (`pipectl` installs the S3 gateway of
/// `pipeline_server`).
#[async_trait]
pub trait JobGateways: Send + Sync + fmt::Debug {
    /// Starts a gateway serving `buckets` from `engine`'s store on `listen` (any free port).
    async fn start(
        &self,
        engine: Engine,
        buckets: JobBuckets,
        listen: IpAddr,
    ) -> std::io::Result<RunningJobGateway>;
}

/// Whether a spec's jobs need a gateway: an `s3: true` input or `s3_out`.
pub fn needs_gateway(spec: &EffectiveSpec) -> bool {
    let mut s3_input = false;
    if let Some(input) = &spec.input {
        input.for_each(&mut |at| s3_input |= at.input.pfs.as_ref().is_some_and(|p| p.s3));
    }
    s3_input || spec.s3_out
}

/// Why a pipeline with S3 inputs or `s3_out` cannot run on an engine without a gateway.
pub(crate) const NO_GATEWAY: &str = "S3 inputs and s3_out are served by an S3 gateway per \
     job, and this engine has none: run it through pipectl (or, in a host application, \
     install one with EngineBuilder::job_gateways)";

impl Engine {
    /// Whether this engine can start job gateways.
    pub(crate) fn has_job_gateways(&self) -> bool {
        self.inner.job_gateways.is_some()
    }

    /// Starts the gateway of `job` when its pipeline needs one (`Ok(None)` otherwise) and,
    /// with `s3_out`, empties the output commit of a job that is not `resumed`: what the job
    /// writes over S3 is its whole output (reference §1.7). `Err` is the reason the job
    /// fails with.
    pub(crate) async fn start_job_gateway(
        &self,
        pinfo: &PipelineInfo,
        secrets: &Secrets,
        plan: &DatumPlan,
        job: &JobInfo,
        resumed: bool,
    ) -> Result<Option<RunningJobGateway>, String> {
        let spec = &pinfo.effective;
        if !needs_gateway(spec) {
            return Ok(None);
        }
        if spec.s3_out && !resumed {
            match self.store().delete_file(&job.output_commit, "/") {
                Ok(_) | Err(PfsError::FileNotFound { .. }) => {}
                Err(e) => {
                    return Err(format!(
                        "emptying the output for s3_out: {}",
                        ErrorChain(&e)
                    ));
                }
            }
        }
        let gateways = self.inner.job_gateways.clone().ok_or(NO_GATEWAY)?;
        let executor = self
            .inner
            .executors
            .get(&pinfo.executor)
            .ok_or_else(|| format!("executor {:?} is not registered", pinfo.executor))?;
        let listen = executor
            .host_address(&pool_spec(pinfo, secrets))
            .await
            .map_err(|e| format!("starting the job's S3 gateway: {}", ErrorChain(&e)))?;
        let inputs = plan
            .leaves()
            .iter()
            .filter(|l| l.s3)
            .filter_map(|l| {
                let commit = job.inputs.iter().find(|c| c.repo.name == l.repo)?;
                Some((l.name.clone(), commit.clone()))
            })
            .collect();
        let buckets = JobBuckets {
            job: job.id.clone(),
            inputs,
            output: spec.s3_out.then(|| job.output_commit.clone()),
        };
        gateways
            .start(self.clone(), buckets, listen)
            .await
            .map_err(|e| format!("starting the job's S3 gateway on {listen}: {e}"))
            .map(Some)
    }
}
