//! Job gateways: the S3 gateway serving one job's buckets (its `s3: true` inputs and, with
//! `s3_out`, its output commit as `out`), started by the engine for each job of such a
//! pipeline through [`JobGateways`] and stopped when the job's datums are done. Each listens
//! on a free port of the address the executor gives (where user code reaches the host) and
//! accepts only a key made for the job.

use std::net::IpAddr;
use std::path::PathBuf;

use async_trait::async_trait;
use pipeline_core::pps::Engine;
use pipeline_core::pps::job_gateway::{JobBuckets, JobGateways, RunningJobGateway};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Gateway, S3Auth, service_router};
use crate::listen::{Limits, Listener, accept};

/// Random bytes in a job gateway's key (shown as twice as many hex digits).
const KEY_BYTES: usize = 20;

/// Starts job gateways for an engine (install with
/// [`EngineBuilder::job_gateways`](pipeline_core::pps::EngineBuilder::job_gateways)).
#[derive(Debug, Clone, Default)]
pub struct S3JobGateways {
    spool: Option<PathBuf>,
}

impl S3JobGateways {
    /// Job gateways spooling multipart parts below `spool` (the system's temporary
    /// directory when `None`).
    pub fn new(spool: Option<PathBuf>) -> Self {
        S3JobGateways { spool }
    }
}

#[async_trait]
impl JobGateways for S3JobGateways {
    async fn start(
        &self,
        engine: Engine,
        buckets: JobBuckets,
        listen: IpAddr,
    ) -> std::io::Result<RunningJobGateway> {
        let listener = tokio::net::TcpListener::bind((listen, 0)).await?;
        let addr = listener.local_addr()?;
        let key = crate::auth::random_hex(KEY_BYTES)?;
        let job = buckets.job.clone();
        let gateway = Gateway::for_job(engine, buckets, self.spool.clone());
        let app = service_router(gateway, S3Auth::Token(key.as_str().into()));
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(accept(
            Listener::Tcp(listener),
            app,
            Limits::default(),
            stop.clone(),
            tasks.clone(),
        ));
        tracing::debug!(%job, %addr, "job S3 gateway listening");
        Ok(RunningJobGateway {
            endpoint: format!("http://{addr}"),
            access_key: key.clone(),
            secret_key: key,
            guard: Box::new(stop.drop_guard()),
        })
    }
}
