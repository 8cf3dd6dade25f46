//! Glob matching: our engine (glob → fancy-regex) against globset as the baseline.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pipeline_core::glob::Glob;

fn paths() -> Vec<String> {
    (0..10_000)
        .map(|i| match i % 3 {
            0 => format!("/img{i:05}.png"),
            1 => format!("/dir{}/2024-{:02}-{i}.txt", i % 17, i % 12),
            _ => format!("/deep/a{}/b{}/c{i}.csv", i % 5, i % 7),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let paths = paths();
    let mut g = c.benchmark_group("glob_match_10k_paths");
    let baseline = globset::GlobBuilder::new("/*")
        .literal_separator(true)
        .build()
        .unwrap()
        .compile_matcher();
    g.bench_function("baseline_globset_star", |b| {
        b.iter(|| {
            paths
                .iter()
                .filter(|p| baseline.is_match(black_box(p.as_str())))
                .count()
        })
    });
    for pattern in ["/*", "/**.png", "/*/(*)-(*).txt", "/!(*.png)"] {
        let glob = Glob::new(pattern).unwrap();
        g.bench_function(format!("is_match {pattern}"), |b| {
            b.iter(|| paths.iter().filter(|p| glob.is_match(black_box(p))).count())
        });
    }
    let glob = Glob::new("/*/(*)-(*).txt").unwrap();
    g.bench_function("captures /*/(*)-(*).txt", |b| {
        b.iter(|| {
            paths
                .iter()
                .filter_map(|p| glob.captures(black_box(p)))
                .count()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
