//! Shared helpers of the engine's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use executor_process::ProcessExecutor;
use pipeline_core::pfs::{CommitRef, FinishOptions, RepoRef, Store};
use pipeline_core::pps::{CreateOptions, Engine, JobInfo, PipelineInfo};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub engine: Engine,
}

pub fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let engine = Engine::builder(store.clone())
        .executor(Arc::new(ProcessExecutor::new().unwrap()))
        .build()
        .unwrap();
    Env { dir, store, engine }
}

impl Env {
    pub fn repo(&self, name: &str) {
        self.store
            .create_repo(&RepoRef::new(name).unwrap(), "")
            .unwrap();
    }

    /// One commit to `repo@master`: deletes then puts.
    pub fn commit(&self, repo: &str, deletes: &[&str], puts: &[(&str, &str)]) -> CommitRef {
        let b = RepoRef::new(repo).unwrap().branch("master").unwrap();
        let c = self.store.start_commit(&b, "").unwrap().commit;
        for d in deletes {
            self.store.delete_file(&c, d).unwrap();
        }
        for (p, content) in puts {
            self.store
                .put_file_bytes(&c, p, content.as_bytes())
                .unwrap();
        }
        self.store
            .finish_commit(&c, FinishOptions::default())
            .unwrap();
        c
    }

    pub fn create(&self, yaml: &str) -> PipelineInfo {
        self.create_with(yaml, CreateOptions::default())
    }

    pub fn create_with(&self, yaml: &str, opts: CreateOptions) -> PipelineInfo {
        let parsed = pipeline_core::spec::parse_str(yaml, "test.yaml").unwrap();
        self.engine
            .create_pipelines(&parsed, &opts)
            .unwrap()
            .remove(0)
    }

    pub fn run(&self) -> Vec<JobInfo> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let jobs = self.engine.run_pending().await.unwrap();
                self.engine.shutdown().await;
                jobs
            })
    }

    /// `path → content` of a commit's tree.
    pub fn tree(&self, commit: &CommitRef) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in self.store.list_file_recursive(commit, "/").unwrap() {
            let f = f.unwrap();
            let mut buf = Vec::new();
            let (_, mut r) = self.store.get_file(commit, &f.path).unwrap();
            std::io::Read::read_to_end(&mut r, &mut buf).unwrap();
            out.push((f.path, String::from_utf8_lossy(&buf).into_owned()));
        }
        out
    }

    pub fn head_tree(&self, repo: &str) -> Vec<(String, String)> {
        let c = self
            .store
            .resolve_commit(&RepoRef::new(repo).unwrap(), "master")
            .unwrap();
        self.tree(&c)
    }
}

pub fn t(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
