//! Embedding the engine in a program with the Rust API (no CLI): open a store, create a repo,
//! define a pipeline in code, commit data, run the jobs, read the output, commit again and
//! see only the changed datum run.
//!
//! `cargo run --example embed -p examples`

use std::io::Read;
use std::sync::Arc;

use executor_process::ProcessExecutor;
use pipeline_core::pfs::{FinishOptions, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, Engine};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(ProcessExecutor::builder().build()?))
        .build()?;

    let words = RepoRef::new("words")?;
    store.create_repo(&words, "input of the upper pipeline")?;
    let master = words.branch("master")?;
    let c = store.start_commit(&master, "two files")?.commit;
    store.put_file_bytes(&c, "/a.txt", b"hello")?;
    store.put_file_bytes(&c, "/b.txt", b"world")?;
    store.finish_commit(&c, FinishOptions::default())?;

    // A spec can be parsed from JSON/YAML or built as a value.
    let spec = pipeline_core::spec::parse_str(
        r#"{"pipeline": {"name": "upper"},
            "transform": {"cmd": ["sh", "-c", "tr a-z A-Z < $words > /pfs/out/${words##*/}"]},
            "parallelism_spec": {"constant": 2},
            "input": {"pfs": {"repo": "words", "glob": "/*"}}}"#,
        "upper.json",
    )?;
    engine.create_pipeline(&spec[0].spec, &CreateOptions::default())?;
    for job in engine.run_pending().await? {
        println!(
            "{}@{}: {:?}, {:?}",
            job.pipeline, job.id, job.state, job.stats
        );
    }

    let c = store.start_commit(&master, "change b")?.commit;
    store.put_file_bytes(&c, "/b.txt", b"pipelines")?;
    store.finish_commit(&c, FinishOptions::default())?;
    let job = engine.run_pending().await?.remove(0);
    println!(
        "second job: {} processed, {} skipped",
        job.stats.datums_processed, job.stats.datums_skipped
    );
    for d in engine.list_datums("upper", &job.id)? {
        println!("  datum {} {:?} ({:?})", &d.id[..12], d.state, d.reason);
    }
    for f in store.list_file_recursive(&job.output_commit, "/")? {
        let f = f?;
        let (_, mut r) = store.get_file(&job.output_commit, &f.path)?;
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        println!("  upper:{} = {s}", f.path);
    }
    engine.shutdown().await;
    Ok(())
}
