//! Criterion micro-benchmarks of the data store, each next to a baseline from the same run:
//! put of a 4 MiB file vs `std::fs::write` + fsync of the same bytes, and a recursive list
//! of a 10,000-file commit vs a `read_dir` walk of the same tree on disk.

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline_core::pfs::{FinishOptions, RepoRef, Store};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("store")).expect("open");
    let repo = RepoRef::new("bench").expect("repo");
    store.create_repo(&repo, "").expect("create");
    let branch = repo.branch("master").expect("branch");

    let mut data = vec![0u8; 4 << 20];
    let mut n = 0u64;
    let mut g = c.benchmark_group("put_4MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    let commit = store.start_commit(&branch, "").expect("start").commit;
    g.bench_function("store.put_file", |b| {
        b.iter(|| {
            n += 1;
            data[..8].copy_from_slice(&n.to_le_bytes());
            store
                .put_file_bytes(&commit, "/f", black_box(&data))
                .expect("put")
        })
    });
    g.bench_function("baseline fs::write+fsync", |b| {
        let p = dir.path().join("plain");
        b.iter(|| {
            n += 1;
            data[..8].copy_from_slice(&n.to_le_bytes());
            let mut f = std::fs::File::create(&p).expect("create");
            f.write_all(black_box(&data)).expect("write");
            f.sync_all().expect("sync");
        })
    });
    g.finish();
    store
        .finish_commit(&commit, FinishOptions::default())
        .expect("finish");

    // A 10,000-file commit and the same tree on disk.
    let commit = store.start_commit(&branch, "").expect("start").commit;
    let local = dir.path().join("tree");
    let files: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| {
            (
                format!("/d{:02}/f{i:05}", i / 100),
                format!("{i}").into_bytes(),
            )
        })
        .collect();
    for (p, d) in &files {
        let lp = local.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(lp.parent().expect("parent")).expect("mkdir");
        std::fs::write(lp, d).expect("write");
    }
    store
        .put_files(&commit, files.iter().map(|(p, d)| (p.clone(), &d[..])))
        .expect("put_files");
    store
        .finish_commit(&commit, FinishOptions::default())
        .expect("finish");
    let mut g = c.benchmark_group("list_10k");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("store.list_file_recursive", |b| {
        b.iter(|| {
            store
                .list_file_recursive(&commit, "/")
                .expect("list")
                .count()
        })
    });
    g.bench_function("store.walk", |b| {
        b.iter(|| store.walk(&commit).expect("walk").count())
    });
    g.bench_function("baseline read_dir walk", |b| {
        b.iter(|| {
            let mut n = 0;
            for d in std::fs::read_dir(&local).expect("rd") {
                let d = d.expect("entry").path();
                n += std::fs::read_dir(d).expect("rd").count();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
