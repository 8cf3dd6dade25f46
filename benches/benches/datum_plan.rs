//! Datum planning at scale, each against walking the same synthetic tree (the floor).
//!
//! - `/*` over 1,000,000 paths (plan + datum ID per datum)
//! - cross of 1,000 × 1,000
//! - join of 2 × 500,000 files (1:1 keys)

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use pipeline_core::datum::{DatumPlan, PlanOptions, SyntheticTree, TreeSource};
use pipeline_core::spec::Input;

fn plan(json: &str, repos: &[(&str, SyntheticTree)]) -> DatumPlan {
    let input: Input = serde_json::from_str(json).unwrap();
    let sources: HashMap<String, Arc<dyn TreeSource>> = repos
        .iter()
        .map(|(n, t)| (n.to_string(), Arc::new(*t) as Arc<dyn TreeSource>))
        .collect();
    DatumPlan::new(&input, &sources, &PlanOptions::default()).unwrap()
}

fn run(plan: &DatumPlan) -> usize {
    plan.datums().fold(0, |n, d| {
        black_box(d.unwrap().id());
        n + 1
    })
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("datum_plan");
    g.sample_size(10);

    let big = SyntheticTree::flat(1_000_000);
    g.bench_function("baseline_walk_1m", |b| {
        b.iter(|| {
            big.walk().fold(0, |n, e| {
                black_box(e.unwrap());
                n + 1
            })
        })
    });
    let p = plan(r#"{"pfs": {"repo": "big", "glob": "/*"}}"#, &[("big", big)]);
    g.bench_function("pfs_star_1m", |b| b.iter(|| assert_eq!(run(&p), 1_000_000)));

    let k = SyntheticTree::flat(1_000);
    let p = plan(
        r#"{"cross": [{"pfs": {"repo": "a", "glob": "/*"}}, {"pfs": {"repo": "b", "glob": "/*"}}]}"#,
        &[("a", k), ("b", k)],
    );
    g.bench_function("cross_1k_x_1k", |b| {
        b.iter(|| assert_eq!(run(&p), 1_000_000))
    });

    let half = SyntheticTree::flat(500_000);
    let p = plan(
        r#"{"join": [
            {"pfs": {"repo": "a", "glob": "/(*)", "join_on": "$1"}},
            {"pfs": {"repo": "b", "glob": "/(*)", "join_on": "$1"}}
        ]}"#,
        &[("a", half), ("b", half)],
    );
    g.bench_function("join_2_x_500k", |b| b.iter(|| assert_eq!(run(&p), 500_000)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
