//! A job whose inputs changed at a few paths since its base visits only the datums that hold
//! them and shows the others through its root's records (`pps/job/delta.rs`); one whose
//! inputs did not change visits nothing. The same history runs on two engines, one with that
//! route and one that walks every job's datums; after every step both must show the same:
//! job states, reasons and counters, every datum record (list, inspect, pages, ID
//! prefixes), and the output commit (files, contents, root hash, size). Steps: first run,
//! empty commits (one after another, so a job inherits from a job that inherits), changes
//! and adds carried from job to job, a re-put of the same content, a delete (a datum gone)
//! and its return, a datum that fails and is fixed, a downstream pipeline, outputs that land
//! on an unchanged datum's (both conflicts the full walk reports), and squashed commit sets
//! whose jobs hold the records others show. Unions (two inputs over one repo, and one that
//! removes duplicates) and cross products (of two repos, and of three inputs with two over
//! one repo) run the same way.

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

/// Jobs of `p` after `first`: the one of pipeline `name`.
fn of<'a>(jobs: &'a [JobInfo], name: &str) -> &'a JobInfo {
    jobs.iter().find(|j| j.pipeline == name).unwrap()
}

#[test]
fn delta_jobs_show_what_the_full_walk_records() {
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
    let root = of(&first, "p").id.clone();
    // An empty commit, twice: the second inherits from a job that inherits.
    for _ in 0..2 {
        let jobs = step(&mut fast, &mut full, &empty);
        assert!(jobs.iter().all(|j| j.datums_from.is_some()), "{jobs:?}");
    }
    // A change and an add: `p` visits those two datums only; `q` (glob `/`) walks.
    let changed = step(&mut fast, &mut full, &put(&[("/b", "B"), ("/d", "d")]));
    assert_eq!(
        of(&changed, "p").datums_from.as_deref(),
        Some(root.as_str())
    );
    assert_eq!(of(&changed, "q").datums_from, None);
    // More changes: the last job's records are carried on, over the same root.
    let carried = step(&mut fast, &mut full, &put(&[("/a", "A"), ("/c/y", "cy")]));
    assert_eq!(
        of(&carried, "p").datums_from.as_deref(),
        Some(root.as_str())
    );
    // The same content put again changes no tree: nothing visited.
    step(&mut fast, &mut full, &put(&[("/a", "A")]));
    // A delete: the datum `/c` is gone (its outputs go), then back.
    step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.commit("A", &["/c/x", "/c/y"], &[]);
    });
    step(&mut fast, &mut full, &empty);
    step(&mut fast, &mut full, &put(&[("/c/z", "cz")]));
    // A failing datum fails the job; the next (changed since the last good base) runs it
    // again; then it is fixed.
    let failed = step(&mut fast, &mut full, &put(&[("/e", "fail")]));
    assert!(
        failed
            .iter()
            .any(|j| j.state == pipeline_core::pps::JobState::JobFailure)
    );
    step(&mut fast, &mut full, &empty);
    step(&mut fast, &mut full, &put(&[("/e", "fine")]));
    step(&mut fast, &mut full, &empty);

    // More changed paths than the route reads: walked (a new root), then changes over it.
    let many = step(&mut fast, &mut full, &|s: &Side| {
        let names: Vec<String> = (0..1100).map(|i| format!("/h/{i:04}")).collect();
        let puts: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "h")).collect();
        s.env.kit.commit("A", &[], &puts);
    });
    let new_root = of(&many, "p").id.clone();
    assert_eq!(of(&many, "p").datums_from, None);
    let at = fast.jobs.iter().position(|j| *j == new_root).unwrap();
    step(&mut fast, &mut full, &put(&[("/a", "a again")]));
    let last = step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.commit("A", &["/d"], &[("/e", "fine again")]);
    });
    assert_eq!(
        of(&last, "p").datums_from.as_deref(),
        Some(new_root.as_str())
    );

    // Squashing the commit set of a job whose records others show (the root): the jobs
    // that show them keep showing the same.
    let rt = tokio::runtime::Runtime::new().unwrap();
    for side in [&fast, &full] {
        let id = CommitId::parse(&side.jobs[at]).unwrap();
        rt.block_on(side.engine().squash_commit_set(&id)).unwrap();
    }
    let shown = |s: &Side| {
        let last = s.jobs.last().unwrap();
        (
            s.datums("p", last),
            s.pages("p", last, DatumQuery::default()),
        )
    };
    let heir = fast
        .engine()
        .inspect_job("p", fast.jobs.last().unwrap())
        .unwrap();
    assert_ne!(
        heir.datums_from.as_deref(),
        Some(new_root.as_str()),
        "handed on"
    );
    let (a, b) = (shown(&fast), shown(&full));
    assert_eq!(a.0, b.0);
    let sorted = |mut v: Vec<(DatumState, String)>| {
        v.sort_by(|x, y| x.1.cmp(&y.1));
        v
    };
    assert_eq!(sorted(a.1), sorted(b.1));
    step(&mut fast, &mut full, &empty);
    step(&mut fast, &mut full, &put(&[("/f", "f")]));
    step(&mut fast, &mut full, &put(&[("/g", "g")]));
    // A file that becomes a directory, and a directory that becomes a file: other datums.
    step(&mut fast, &mut full, &|s: &Side| {
        s.env
            .kit
            .commit("A", &["/f", "/c"], &[("/f/x", "fx"), ("/c", "c file")]);
    });
    step(&mut fast, &mut full, &empty);
}

/// Each datum writes the file its input names: `/out` paths chosen by the inputs.
const R: &str = r#"
pipeline: {name: r}
transform:
  cmd: [sh]
  stdin:
    - 'for f in /pfs/R/*; do t=/pfs/out/$(cat $f); mkdir -p $(dirname $t); echo $f > $t; done'
datum_tries: 1
input: {pfs: {repo: R, glob: /*}}
"#;

/// A new datum whose output lands on an unchanged datum's: a duplicate path, and a file
/// where the other has a directory (and the reverse). The job fails as the full walk's
/// does, naming both datums, and writes nothing of the new datum; fixing it works.
#[test]
fn delta_jobs_find_outputs_landing_on_unvisited_datums() {
    let mut fast = Side::new(true);
    let mut full = Side::new(false);
    let put = |puts: &'static [(&'static str, &'static str)]| {
        move |s: &Side| {
            s.env.kit.commit("R", &[], puts);
        }
    };
    step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.repo("R");
        s.env
            .kit
            .commit("R", &[], &[("/k1", "one"), ("/k2", "two"), ("/k3", "d/e")]);
        s.env.kit.create(R);
    });
    for (puts, reason) in [
        (
            &[("/k4", "one")][..],
            "duplicate path output by different datums (/one from ",
        ),
        (
            &[("/k4", "two/x")][..],
            "file / directory path collision (/two)",
        ),
        (&[("/k4", "d")][..], "file / directory path collision (/d)"),
    ] {
        let jobs = step(&mut fast, &mut full, &|s: &Side| {
            s.env.kit.commit("R", &[], puts);
        });
        let j = of(&jobs, "r");
        assert!(j.datums_from.is_some(), "visited only the change");
        assert_eq!(j.state, pipeline_core::pps::JobState::JobFailure);
        assert!(j.reason.starts_with(reason), "{}", j.reason);
    }
    // Freed by a delete in the same commit: no conflict.
    step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.commit("R", &["/k1"], &[("/k4", "one")]);
    });
    step(&mut fast, &mut full, &put(&[("/k5", "five")]));
}

/// Every input file a datum has, stored as `<input>_<path with _ for />`.
const COPY_ALL: &str = r#"find /pfs -path /pfs/out -prune -o -type f -print | while read f; do r=${f#/pfs/}; cat $f > /pfs/out/$(echo $r | tr / _); done"#;

/// Every input file a datum has, named and copied into one file named after the datum.
const CONCAT_ALL: &str = r#"find /pfs -path /pfs/out -prune -o -type f -print | sort | while read f; do echo $f; cat $f; done > /pfs/out/$PACH_DATUM_ID"#;

/// A pipeline `name` copying its inputs, over a union of `inputs` (flow-style pfs inputs).
fn union_pipeline(name: &str, inputs: &[&str]) -> String {
    combining_pipeline(name, "union", COPY_ALL, inputs)
}

/// A pipeline `name` running `script`, over a `kind` (union, cross) of `inputs`.
fn combining_pipeline(name: &str, kind: &str, script: &str, inputs: &[&str]) -> String {
    let inputs: String = inputs.iter().map(|i| format!("    - pfs: {i}\n")).collect();
    format!(
        "pipeline: {{name: {name}}}\ntransform: {{cmd: [sh], stdin: ['{script}']}}\n\
         input:\n  {kind}:\n{inputs}"
    )
}

/// A union of three inputs, two of them over the same repo, whose datums are found through
/// each input: `u`. And a union that removes duplicates (two inputs named `A` match `/b`):
/// `v`.
fn union_pipelines() -> [String; 2] {
    [
        union_pipeline(
            "u",
            &[
                "{repo: A, name: top, glob: /*}",
                "{repo: B, glob: /*}",
                "{repo: A, name: deep, glob: /*/*}",
            ],
        ),
        union_pipeline("v", &["{repo: A, glob: /b}", "{repo: A, glob: /*}"]),
    ]
}

/// A change: one commit to `repo` putting `puts`.
fn put(repo: &'static str, puts: &'static [(&'static str, &'static str)]) -> impl Fn(&Side) {
    move |s: &Side| {
        s.env.kit.commit(repo, &[], puts);
    }
}

/// Both sides after their first step: repos `A` and `B` with `a` and `b`, and `pipelines`.
fn two_repos(
    a: &'static [(&'static str, &'static str)],
    b: &'static [(&'static str, &'static str)],
    pipelines: &[String],
) -> (Side, Side) {
    let mut fast = Side::new(true);
    let mut full = Side::new(false);
    step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.repo("A");
        s.env.kit.repo("B");
        s.env.kit.commit("A", &[], a);
        s.env.kit.commit("B", &[], b);
        for p in pipelines {
            s.env.kit.create(p);
        }
    });
    (fast, full)
}

/// Jobs of unions visit only the datums holding what changed, in every input that reads
/// the changed repo, and show what the full walk records.
#[test]
fn delta_jobs_of_unions_show_what_the_full_walk_records() {
    let (mut fast, mut full) = two_repos(
        &[("/a", "a"), ("/b", "b"), ("/c/x", "cx")],
        &[("/k", "k")],
        &union_pipelines(),
    );
    let unions_visit_the_change = |jobs: &[JobInfo]| {
        assert!(!jobs.is_empty());
        for j in jobs {
            assert!(j.datums_from.is_some(), "{j:?}");
        }
    };
    for change in [
        put("A", &[]),
        put("A", &[("/b", "B"), ("/c/y", "cy")]),
        put("B", &[("/l", "l"), ("/k", "K")]),
        put("A", &[("/d/e/f", "def")]),
    ] {
        unions_visit_the_change(&step(&mut fast, &mut full, &change));
    }
    // Gone from every input at once, and a file that becomes a directory.
    let gone = step(&mut fast, &mut full, &|s: &Side| {
        s.env
            .kit
            .commit("A", &["/c/x", "/c/y", "/b"], &[("/b/z", "bz")]);
    });
    unions_visit_the_change(&gone);
    unions_visit_the_change(&step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.commit("B", &["/k"], &[]);
    }));
    unions_visit_the_change(&step(&mut fast, &mut full, &put("A", &[("/c/x", "back")])));
}

/// Jobs of cross products visit only the datums holding what changed (crossed with every
/// datum of the other inputs) and show what the full walk records: changes to either side,
/// to both at once, a side emptied and filled again.
#[test]
fn delta_jobs_of_crosses_show_what_the_full_walk_records() {
    let crosses = [
        combining_pipeline(
            "x",
            "cross",
            CONCAT_ALL,
            &["{repo: A, glob: /*}", "{repo: B, glob: /*}"],
        ),
        combining_pipeline(
            "y",
            "cross",
            CONCAT_ALL,
            &[
                "{repo: A, name: top, glob: /*}",
                "{repo: B, glob: /*}",
                "{repo: A, name: deep, glob: /*/*}",
            ],
        ),
    ];
    let (mut fast, mut full) = two_repos(
        &[("/a", "a"), ("/a-b", "ab"), ("/c/x", "cx")],
        &[("/k", "k"), ("/m", "m")],
        &crosses,
    );
    let crosses_visit_the_change = |jobs: &[JobInfo]| {
        assert_eq!(jobs.len(), 2, "{jobs:?}");
        for j in jobs {
            assert!(j.datums_from.is_some(), "{j:?}");
            assert!(
                j.stats.datums_processed < j.stats.datums_total.max(1),
                "visited only the change: {j:?}"
            );
        }
    };
    for change in [
        put("A", &[("/a", "A"), ("/c/y", "cy")]),
        put("B", &[("/l", "l"), ("/k", "K")]),
        put("A", &[("/d/e/f", "def")]),
    ] {
        crosses_visit_the_change(&step(&mut fast, &mut full, &change));
    }
    // Gone, and a file that becomes a directory.
    crosses_visit_the_change(&step(&mut fast, &mut full, &|s: &Side| {
        s.env
            .kit
            .commit("A", &["/c/x", "/c/y", "/a-b"], &[("/a-b/z", "abz")]);
    }));
    // Both sides in one commit set is two jobs' worth of change here: one commit each.
    step(&mut fast, &mut full, &|s: &Side| {
        s.env.kit.commit("B", &["/k", "/l", "/m"], &[]);
    });
    step(&mut fast, &mut full, &put("B", &[("/k", "k again")]));
    step(&mut fast, &mut full, &put("A", &[]));
}
