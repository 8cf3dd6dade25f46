//! Reference §2.15 and the err_cmd scenario through the engine with warm worker containers:
//! the shared driver of `pipeline_core::testkit::engine`, which the engine's own tests and the
//! other executors run too. Skipped outside CI when the daemon is absent.

mod support;

use std::sync::Arc;

use executor_docker::DataMode;
use executor_docker::testing::TEST_IMAGE;
use pipeline_core::pfs::Store;
use pipeline_core::pps::Engine;
use pipeline_core::testkit::engine::{self, EngineEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_scenarios_with_containers() {
    let test = "engine-scenarios";
    let _cleanup = support::Cleanup(support::owner(test));
    let Some(exec) = support::executor(test, DataMode::Bind).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store)
        .executor(Arc::new(exec))
        .build()
        .unwrap();
    let e = EngineEnv::new(engine).image(TEST_IMAGE);
    engine::run_all(&e).await;
    engine::delete_all(&e).await;
}
