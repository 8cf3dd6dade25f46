//! `datum-plan MODE [N]`: one datum-plan run over synthetic trees, for `datum_plan.sh`
//! (which wraps it in `/usr/bin/time -v` for peak memory).
//!
//! Modes: `walk` (the floor: list N paths), `star` (`/*` over N paths, datum ID per datum),
//! `cross` (cross of √N × √N), `join` (join of 2 × N/2 files, 1:1 keys).
//!
//! Store-backed modes, `datum-plan MODE N DIR` over a store at `DIR`: `store-build` (commit N
//! files to repo `big`, 1,000 per directory `/d0000/f0000000`), then `store-walk` (the floor:
//! [`Store::walk`] of that commit, every file and directory with its hash), `store-files`
//! (plan `/*/*`, a datum per file) and `store-dirs` (plan `/*`, a datum per directory), both
//! through [`CommitTree`] as a job plans.
//!
//! Prints `mode=… n=… datums=… first_datum_ms=… total_s=…`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use pipeline_core::datum::{DatumPlan, PlanOptions, SyntheticTree, TreeSource};
use pipeline_core::pfs::{CommitRef, CommitTree, FinishOptions, RepoRef, Store};
use pipeline_core::spec::{Input, PfsInput};

fn pfs(repo: &str, glob: &str, join_on: Option<&str>) -> Input {
    Input {
        pfs: Some(PfsInput {
            repo: Some(repo.into()),
            glob: Some(glob.into()),
            join_on: join_on.map(Into::into),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("star", String::as_str);
    let n: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    if let Some(store_mode) = mode.strip_prefix("store-") {
        let Some(dir) = args.get(3) else {
            fail("store modes need a directory: datum-plan store-MODE N DIR")
        };
        return store_run(store_mode, n, dir);
    }
    let started = Instant::now();
    let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    let input = match mode {
        "walk" => {
            let count = SyntheticTree::flat(n).walk().fold(0usize, |c, e| {
                black_box(e.map(|e| e.path.len()).ok());
                c + 1
            });
            println!(
                "mode=walk n={n} datums={count} first_datum_ms=0 total_s={:.3}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        "star" => {
            sources.insert("big".into(), Arc::new(SyntheticTree::flat(n)));
            pfs("big", "/*", None)
        }
        "cross" => {
            let side = (n as f64).sqrt() as usize;
            sources.insert("a".into(), Arc::new(SyntheticTree::flat(side)));
            sources.insert("b".into(), Arc::new(SyntheticTree::flat(side)));
            let mut b = pfs("b", "/*", None);
            if let Some(p) = b.pfs.as_mut() {
                p.name = Some("b".into());
            }
            Input {
                cross: Some(vec![pfs("a", "/*", None), b]),
                ..Default::default()
            }
        }
        "join" => {
            sources.insert("a".into(), Arc::new(SyntheticTree::flat(n / 2)));
            sources.insert("b".into(), Arc::new(SyntheticTree::flat(n / 2)));
            Input {
                join: Some(vec![
                    pfs("a", "/(*)", Some("$1")),
                    pfs("b", "/(*)", Some("$1")),
                ]),
                ..Default::default()
            }
        }
        other => {
            eprintln!("datum-plan: unknown mode {other:?} (expected walk, star, cross or join)");
            std::process::exit(2);
        }
    };
    let plan = match DatumPlan::new(&input, &sources, &PlanOptions::default()) {
        Ok(p) => p,
        Err(e) => fail(e),
    };
    print_plan(mode, n, &plan, started);
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("datum-plan: {e}");
    std::process::exit(1);
}

/// Streams `plan`'s datums (an ID each) and prints the result line.
fn print_plan(mode: &str, n: usize, plan: &DatumPlan, started: Instant) {
    let mut datums = plan.datums();
    let mut count = 0usize;
    let mut first_ms = 0.0;
    if let Some(first) = datums.next() {
        match first {
            Ok(d) => black_box(d.id()),
            Err(e) => fail(e),
        };
        first_ms = started.elapsed().as_secs_f64() * 1e3;
        count = 1;
    }
    for d in datums {
        match d {
            Ok(d) => {
                black_box(d.id());
                count += 1;
            }
            Err(e) => fail(e),
        }
    }
    println!(
        "mode={mode} n={n} datums={count} first_datum_ms={first_ms:.2} total_s={:.3}",
        started.elapsed().as_secs_f64()
    );
}

/// The store-backed modes (see the module docs).
fn store_run(mode: &str, n: usize, dir: &str) {
    let started = Instant::now();
    let store = Store::open(dir).unwrap_or_else(|e| fail(e));
    let repo = RepoRef::new("big").unwrap_or_else(|e| fail(e));
    if mode == "build" {
        let commit = store_build(&store, &repo, n).unwrap_or_else(|e| fail(e));
        println!(
            "mode=store-build n={n} datums=0 first_datum_ms=0 total_s={:.3} commit={}",
            started.elapsed().as_secs_f64(),
            commit.id
        );
        return;
    }
    let commit = store
        .resolve_commit(&repo, "master")
        .unwrap_or_else(|e| fail(e));
    let glob = match mode {
        "walk" => {
            let mut count = 0usize;
            for e in store.walk(&commit).unwrap_or_else(|e| fail(e)) {
                black_box(e.unwrap_or_else(|e| fail(e)).hash);
                count += 1;
            }
            println!(
                "mode=store-walk n={n} datums={count} first_datum_ms=0 total_s={:.3}",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        "files" => "/*/*",
        "dirs" => "/*",
        other => fail(format!(
            "unknown store mode store-{other} (expected store-build, store-walk, store-files or store-dirs)"
        )),
    };
    let mut sources: HashMap<String, Arc<dyn TreeSource>> = HashMap::new();
    sources.insert(
        "big".into(),
        Arc::new(CommitTree::new(store.clone(), commit)),
    );
    let plan = DatumPlan::new(&pfs("big", glob, None), &sources, &PlanOptions::default())
        .unwrap_or_else(|e| fail(e));
    print_plan(&format!("store-{mode}"), n, &plan, started);
}

/// Commits `n` files of ~40 bytes (distinct contents) to `repo`'s master, 1,000 per directory.
fn store_build(
    store: &Store,
    repo: &RepoRef,
    n: usize,
) -> Result<CommitRef, pipeline_core::pfs::PfsError> {
    if store.inspect_repo(repo).is_err() {
        store.create_repo(repo, "")?;
    }
    let commit = store.start_commit(&repo.branch("master")?, "")?.commit;
    let files = (0..n).map(|i| {
        let path = format!("/d{:04}/f{i:07}", i / 1000);
        let content = format!("content of {path}\n").into_bytes();
        (path, std::io::Cursor::new(content))
    });
    store.put_files(&commit, files)?;
    store.finish_commit(&commit, FinishOptions::default())?;
    Ok(commit)
}
