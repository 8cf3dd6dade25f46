//! A job whose inputs did not change since its base finishes without visiting its datums
//! (`pps/job/unchanged.rs`). The same history runs on two engines, one with that route and
//! one that walks every job's datums; after every step both must show the same: job states,
//! reasons and counters, every datum record (list, inspect, pages, ID prefixes), and the
//! output commit (files, contents, root hash, size). Steps: first run, empty commits (one
//! after another, so a job inherits from a job that inherits), a re-put of the same content,
//! a change and an add, a delete, a datum that fails and is fixed, a downstream pipeline,
//! and a squashed commit set whose job holds the records others show.

mod pps_common;

use std::collections::HashMap;

use pipeline_core::pfs::{CommitId, CommitRef};
use pipeline_core::pps::{DatumInfo, DatumQuery, DatumReason, DatumState, Engine, JobInfo};

const P: &str = r#"
pipeline: {name: p}
transform:
  cmd: [sh]
  stdin:
    - 'for f in /pfs/A/*; do grep -q fail $f && exit 1; b=$(basename $f); if [ -d $f ]; then ls $f; else cat $f; fi > /pfs/out/$b.out; done'
datum_tries: 1
input: {pfs: {repo: A, glob: /*}}
"#;

const Q: &str = r#"
pipeline: {name: q}
transform:
  cmd: [sh]
  stdin:
    - 'cat /pfs/p/* | wc -c > /pfs/out/total'
input: {pfs: {repo: p, glob: /}}
"#;

/// One engine of the comparison and the jobs it ran, in order (to name jobs by position).
struct Side {
    env: pps_common::Env,
    jobs: Vec<String>,
}

impl Side {
    fn new(skip_unchanged: bool) -> Side {
        let dir = tempfile::tempdir().unwrap();
        let store = pipeline_core::testkit::store::open_test_store(&dir.path().join("store"));
        let engine = Engine::builder(store)
            .executor(std::sync::Arc::new(
                executor_process::ProcessExecutor::builder()
                    .build()
                    .unwrap(),
            ))
            .skip_unchanged_jobs(skip_unchanged)
            .build()
            .unwrap();
        Side {
            env: pps_common::Env::with_engine(dir, engine),
            jobs: Vec::new(),
        }
    }

    fn engine(&self) -> &Engine {
        &self.env.kit.engine
    }

    /// Runs the pending jobs; returns them.
    fn run(&mut self) -> Vec<JobInfo> {
        let jobs = self.env.run();
        for j in &jobs {
            if !self.jobs.contains(&j.id) {
                self.jobs.push(j.id.clone());
            }
        }
        jobs
    }

    /// A job ID as its position in this side's history (`j3`), so both sides compare.
    fn name(&self, id: &str) -> String {
        match self.jobs.iter().position(|j| j == id) {
            Some(i) => format!("j{i}"),
            None => format!("unknown {id}"),
        }
    }

    /// A datum record with job IDs named by position and what differs engine to engine
    /// (timings, hosts, attempt times, the salted hash) left out.
    fn normal(&self, mut d: DatumInfo) -> DatumInfo {
        d.job = self.name(&d.job);
        if let DatumReason::Unchanged { from_job } = &d.reason {
            d.reason = DatumReason::Unchanged {
                from_job: self.name(from_job),
            };
        }
        // The hash covers the pipeline's salt, random per engine.
        d.hash.clear();
        d.stats = Default::default();
        d.attempt_history.clear();
        d.host = None;
        d
    }

    fn datums(&self, pipeline: &str, job: &str) -> Vec<DatumInfo> {
        let mut v: Vec<_> = self
            .engine()
            .list_datums(pipeline, job)
            .unwrap()
            .into_iter()
            .map(|d| self.normal(d))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Every page of a job's datums, `limit` at a time, as `(state, id)`.
    fn pages(&self, pipeline: &str, job: &str, q: DatumQuery) -> Vec<(DatumState, String)> {
        let mut out = Vec::new();
        let mut q = DatumQuery { limit: 2, ..q };
        loop {
            let page = self.engine().datum_page(pipeline, job, &q).unwrap();
            assert!(page.datums.len() <= 2);
            out.extend(page.datums.into_iter().map(|d| (d.state, d.id)));
            match page.next {
                Some(n) => q.after = Some(n),
                None => return out,
            }
        }
    }

    /// The output commit: files and contents, root hash, size.
    fn output(&self, c: &CommitRef) -> (Vec<(String, String)>, String, Option<u64>) {
        let store = self.engine().store();
        let hash = store
            .inspect_file(c, "/")
            .map(|f| f.hash.to_hex())
            .unwrap_or_default();
        let size = store.inspect_commit(c).unwrap().size_bytes;
        (self.env.kit.tree(c), hash, size)
    }
}

/// Both sides after a step: the same jobs, datums, pages and outputs.
fn same(fast: &Side, full: &Side, a: &[JobInfo], b: &[JobInfo]) {
    assert_eq!(a.len(), b.len(), "jobs run: {a:?} / {b:?}");
    let mut by_pipeline: HashMap<&str, &JobInfo> = HashMap::new();
    for j in b {
        by_pipeline.insert(&j.pipeline, j);
    }
    for ja in a {
        let jb = by_pipeline[ja.pipeline.as_str()];
        let p = ja.pipeline.as_str();
        let reason_a = ja.reason.replace(&ja.id, "JOB");
        let reason_b = jb.reason.replace(&jb.id, "JOB");
        assert_eq!((ja.state, reason_a), (jb.state, reason_b), "{p}");
        let counts = |j: &JobInfo| {
            let s = &j.stats;
            (
                s.datums_total,
                s.datums_processed,
                s.datums_skipped,
                s.datums_failed,
                s.datums_recovered,
            )
        };
        assert_eq!(counts(ja), counts(jb), "{p} counters");
        let base = |s: &Side, j: &JobInfo| j.base_job.as_deref().map(|b| s.name(b));
        assert_eq!(base(fast, ja), base(full, jb), "{p} base");
        let da = fast.datums(p, &ja.id);
        assert_eq!(da, full.datums(p, &jb.id), "{p} datums");
        for d in &da {
            let one = fast.engine().inspect_datum(p, &ja.id, &d.id).unwrap();
            assert_eq!(&fast.normal(one), d, "{p} inspect datum");
            let prefix = d.id.get(..12).unwrap();
            let resolved = fast.engine().resolve_datum_id(p, &ja.id, prefix).unwrap();
            assert_eq!(resolved, d.id);
        }
        for state in [None, Some(DatumState::Skipped), Some(DatumState::Success)] {
            let q = DatumQuery {
                state,
                ..Default::default()
            };
            let mut forward = fast.pages(p, &ja.id, q.clone());
            let mut backward = fast.pages(
                p,
                &ja.id,
                DatumQuery {
                    reverse: true,
                    ..q.clone()
                },
            );
            backward.reverse();
            assert_eq!(forward, backward, "{p} pages both ways ({state:?})");
            let mut other = full.pages(p, &jb.id, q);
            forward.sort_by(|x, y| x.1.cmp(&y.1));
            other.sort_by(|x, y| x.1.cmp(&y.1));
            assert_eq!(forward, other, "{p} pages ({state:?})");
        }
        assert_eq!(
            fast.output(&ja.output_commit),
            full.output(&jb.output_commit),
            "{p} output commit"
        );
    }
}

/// One step on both sides: `change` applied to each, then their pending jobs run and compared.
fn step(fast: &mut Side, full: &mut Side, change: &dyn Fn(&Side)) -> Vec<JobInfo> {
    change(fast);
    change(full);
    let a = fast.run();
    let b = full.run();
    same(fast, full, &a, &b);
    a
}

#[test]
fn unchanged_jobs_show_what_the_full_walk_records() {
    let mut fast = Side::new(true);
    let mut full = Side::new(false);
    let put = |puts: &'static [(&'static str, &'static str)]| {
        move |s: &Side| {
            s.env.kit.commit("A", &[], puts);
        }
    };
    let empty = put(&[]);
    let first = step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.repo("A");
        s.env
            .kit
            .commit("A", &[], &[("/a", "a"), ("/b", "b"), ("/c/x", "cx")]);
        s.env.kit.create(P);
        s.env.kit.create(Q);
    });
    assert_eq!(first.len(), 2, "{first:?}");
    // An empty commit, twice: the second inherits from a job that inherits.
    for _ in 0..2 {
        let jobs = step(&mut fast, &mut full, &empty);
        assert!(jobs.iter().all(|j| j.datums_from.is_some()), "{jobs:?}");
    }
    // A change and an add: walked, reading the base's records through its root.
    let walked = step(&mut fast, &mut full, &put(&[("/b", "B"), ("/d", "d")]));
    assert!(walked.iter().all(|j| j.datums_from.is_none()));
    // The same content put again changes no tree: not walked.
    let same_again = step(&mut fast, &mut full, &put(&[("/a", "a")]));
    let inheritor = same_again
        .iter()
        .find(|j| j.pipeline == "p")
        .unwrap()
        .clone();
    assert_eq!(
        inheritor.datums_from.as_deref(),
        Some(walked[0].id.as_str())
    );
    // A delete: its outputs go.
    step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.commit("A", &["/c/x"], &[]);
    });
    step(&mut fast, &mut full, &empty);
    // A failing datum fails the job; the next (unchanged since the last good base) walks
    // and runs it again; then it is fixed.
    let failed = step(&mut fast, &mut full, &put(&[("/e", "fail")]));
    assert!(
        failed
            .iter()
            .any(|j| j.state == pipeline_core::pps::JobState::JobFailure)
    );
    step(&mut fast, &mut full, &empty);
    step(&mut fast, &mut full, &put(&[("/e", "fine")]));
    step(&mut fast, &mut full, &empty);

    // Squashing the commit set whose jobs hold records others show: those jobs keep
    // showing them.
    for side in [&fast, &full] {
        // The set that fixed `/e` (the last but one): the last job shows its records.
        let fixed = side.jobs.get(side.jobs.len() - 2).unwrap();
        let id = CommitId::parse(fixed).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(side.engine().squash_commit_set(&id)).unwrap();
    }
    let heir = fast.jobs.last().unwrap();
    let heir = fast.engine().inspect_job("p", heir).unwrap();
    assert_eq!(heir.datums_from, None, "the records were handed on");
    let shown = |s: &Side| {
        let last = s.jobs.last().unwrap();
        (
            s.datums("p", last),
            s.pages("p", last, DatumQuery::default()),
        )
    };
    let (a, b) = (shown(&fast), shown(&full));
    assert_eq!(a.0, b.0);
    let sorted = |mut v: Vec<(DatumState, String)>| {
        v.sort_by(|x, y| x.1.cmp(&y.1));
        v
    };
    assert_eq!(sorted(a.1), sorted(b.1));
    step(&mut fast, &mut full, &empty);
    step(&mut fast, &mut full, &put(&[("/f", "f")]));
}
