//! `datum-plan MODE [N]`: one datum-plan run over synthetic trees, for `datum_plan.sh`
//! (which wraps it in `/usr/bin/time -v` for peak memory).
//!
//! Modes: `walk` (the floor: list N paths), `star` (`/*` over N paths, datum ID per datum),
//! `cross` (cross of √N × √N), `join` (join of 2 × N/2 files, 1:1 keys).
//! Prints `mode=… n=… datums=… first_datum_ms=… total_s=…`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use pipeline_core::datum::{DatumPlan, PlanOptions, SyntheticTree, TreeSource};
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
        Err(e) => {
            eprintln!("datum-plan: {e}");
            std::process::exit(1);
        }
    };
    let mut datums = plan.datums();
    let mut count = 0usize;
    let mut first_ms = 0.0;
    if let Some(first) = datums.next() {
        match first {
            Ok(d) => black_box(d.id()),
            Err(e) => {
                eprintln!("datum-plan: {e}");
                std::process::exit(1);
            }
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
            Err(e) => {
                eprintln!("datum-plan: {e}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "mode={mode} n={n} datums={count} first_datum_ms={first_ms:.2} total_s={:.3}",
        started.elapsed().as_secs_f64()
    );
}
