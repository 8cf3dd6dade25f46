//! Shared helpers of the engine's integration tests: the engine-driving helpers of
//! `pipeline_core::testkit::engine`, with the process executor, a store in a temp dir, and a
//! blocking `run`.
#![allow(dead_code)]

use std::ops::Deref;
use std::sync::Arc;

use executor_process::ProcessExecutor;
use pipeline_core::pps::{Engine, JobInfo};
use pipeline_core::testkit::engine::EngineEnv;

/// An [`EngineEnv`] that stops its workers after every run, and the temp dir of its store.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub kit: EngineEnv,
}

/// A store in a temp dir (its contents on the test S3 server with
/// `PIPELINE_TEST_OBJECTS=s3`, see `pipeline_core::testkit::objects`) and an engine over it
/// with the process executor.
pub fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline_core::testkit::objects::store_at(&dir.path().join("store"));
    let engine = Engine::builder(store)
        .executor(Arc::new(ProcessExecutor::builder().build().unwrap()))
        .build()
        .unwrap();
    Env::with_engine(dir, engine)
}

impl Env {
    /// Drives `engine`, whose store lives in `dir`.
    pub fn with_engine(dir: tempfile::TempDir, engine: Engine) -> Env {
        Env {
            dir,
            kit: EngineEnv::new(engine).shutdown_after_run(true),
        }
    }

    /// Runs every pending job on a runtime of its own, then stops the workers.
    pub fn run(&self) -> Vec<JobInfo> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(self.kit.run())
    }
}

impl Deref for Env {
    type Target = EngineEnv;

    fn deref(&self) -> &EngineEnv {
        &self.kit
    }
}
