//! Large-scale storage benchmarks, each against a baseline measured in the same run.
//!
//! `cargo bench -p benches --bench pfs_scale` (or `benches/scripts/pfs_bench.sh`). Sizes can
//! be lowered with `PFS_BENCH_BIG_MIB` (default 1024), `PFS_BENCH_SMALL` (100000) and
//! `PFS_BENCH_LIST` (1000000); scratch space goes to `PFS_BENCH_DIR` (default: system temp).
//!
//! 1. put of one big file vs `cp` (and `cp` + `sync`, since the store fsyncs);
//! 2. put of many small files (`put_dir_local`) vs `cp -r` (and `cp -r` + `sync`);
//! 3. dedup: the same tree committed twice (bytes stored / logical bytes);
//! 4. `list file` (recursive and one level) and `walk` of a commit with 1,000,000 files,
//!    each in a fresh process whose peak RSS is reported next to a 100,000-file commit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pipeline_core::pfs::{FinishOptions, RepoRef, Store};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn fill(seed: u64, buf: &mut [u8]) {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.finalize_xof().fill(buf);
}

fn du(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                n += du(&e.path());
            } else if let Ok(m) = e.metadata() {
                n += m.len();
            }
        }
    }
    n
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed().as_secs_f64(), v)
}

fn sh(cmd: &str) -> f64 {
    let (t, status) = time(|| Command::new("sh").arg("-c").arg(cmd).status());
    match status {
        Ok(s) if s.success() => t,
        other => panic!("baseline command failed: {cmd}: {other:?}"),
    }
}

fn repo(store: &Store, name: &str) -> RepoRef {
    let r = RepoRef::new(name).expect("repo name");
    if store.inspect_repo(&r).is_err() {
        store.create_repo(&r, "").expect("create repo");
    }
    r
}

/// Child phase: build a commit of `n` files (1,000 per directory, 256 distinct contents).
fn phase_build(root: &Path, name: &str, n: usize) {
    let store = Store::open(root).expect("open");
    let r = repo(&store, name);
    let c = store
        .start_commit(&r.branch("master").expect("branch"), "")
        .expect("start")
        .commit;
    let contents: Vec<Vec<u8>> = (0..256u64)
        .map(|i| {
            let mut b = vec![0u8; 64];
            fill(i, &mut b);
            b
        })
        .collect();
    let files = (0..n).map(|i| {
        (
            format!("/d{:04}/f{:07}", i / 1000, i),
            std::io::Cursor::new(&contents[i % 256]),
        )
    });
    let (t_put, _) = time(|| store.put_files(&c, files).expect("put_files"));
    let (t_fin, _) = time(|| {
        store
            .finish_commit(&c, FinishOptions::default())
            .expect("finish")
    });
    println!("{t_put:.3} {t_fin:.3}");
}

/// Child phase: list/walk a commit, print `count seconds peak_rss_kib`.
fn phase_list(root: &Path, name: &str, mode: &str) {
    let store = Store::open(root).expect("open");
    let r = RepoRef::new(name).expect("repo");
    let c = store.resolve_commit(&r, "master").expect("resolve");
    let (t, n) = time(|| match mode {
        "recursive" => store
            .list_file_recursive(&c, "/")
            .expect("list")
            .try_fold(0usize, |n, e| e.map(|_| n + 1))
            .expect("entry"),
        "level" => store
            .list_file(&c, "/")
            .expect("list")
            .try_fold(0usize, |n, e| e.map(|_| n + 1))
            .expect("entry"),
        _ => store
            .walk(&c)
            .expect("walk")
            .try_fold(0usize, |n, e| e.map(|_| n + 1))
            .expect("entry"),
    });
    println!("{n} {t:.3} {}", peak_rss_kib());
}

/// Child phase: put one local file, print `seconds peak_rss_kib`.
fn phase_put_big(root: &Path, local: &Path) {
    let store = Store::open(root).expect("open");
    let r = repo(&store, "big");
    let (t, _) = time(|| {
        let c = store
            .start_commit(&r.branch("master").expect("branch"), "")
            .expect("start")
            .commit;
        store.put_file_local(&c, "/big", local).expect("put");
        store
            .finish_commit(&c, FinishOptions::default())
            .expect("finish");
    });
    println!("{t:.3} {}", peak_rss_kib());
}

fn child(args: &[&str]) -> String {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env("PFS_BENCH_PHASE", "1")
        .args(args)
        .output()
        .expect("child");
    assert!(
        out.status.success(),
        "phase {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn nums(s: &str) -> Vec<f64> {
    s.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var("PFS_BENCH_PHASE").is_ok() {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        match a.as_slice() {
            ["build", root, name, n] => phase_build(Path::new(root), name, n.parse().expect("n")),
            ["list", root, name, mode] => phase_list(Path::new(root), name, mode),
            ["putbig", root, local] => phase_put_big(Path::new(root), Path::new(local)),
            other => panic!("unknown phase {other:?}"),
        }
        return;
    }
    // `cargo test --benches` runs bench targets with `--test`-less args; skip unless benching.
    if !args.iter().any(|a| a == "--bench") && std::env::var("PFS_BENCH_FORCE").is_err() {
        println!("pfs_scale: run with `cargo bench --bench pfs_scale`");
        return;
    }
    let big_mib = env_usize("PFS_BENCH_BIG_MIB", 1024);
    let small = env_usize("PFS_BENCH_SMALL", 100_000);
    let list_n = env_usize("PFS_BENCH_LIST", 1_000_000);
    let base: PathBuf = std::env::var("PFS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir())
        .join(format!("pfs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("scratch dir");
    let root = base.join("store");
    let mut report = Vec::new();

    // 1. One big file.
    let big = base.join("big.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).expect("big"));
        let mut buf = vec![0u8; 1 << 20];
        for i in 0..big_mib as u64 {
            fill(i, &mut buf);
            f.write_all(&buf).expect("write");
        }
        f.flush().expect("flush");
    }
    let _ = sh("sync");
    let b = base.display();
    let t_cp = sh(&format!("cp {b}/big.bin {b}/big.cp"));
    let t_cp_sync = sh(&format!("cp {b}/big.bin {b}/big.cp2 && sync {b}/big.cp2"));
    let r = nums(&child(&[
        "putbig",
        root.to_str().expect("utf8"),
        big.to_str().expect("utf8"),
    ]));
    let (t_put, rss_put) = (r[0], r[1]);
    report.push(format!(
        "| put 1 file of {big_mib} MiB | {t_put:.2} s | cp {t_cp:.2} s / cp+sync {t_cp_sync:.2} s | {:.2}x / {:.2}x | peak RSS {:.0} MiB |",
        t_put / t_cp,
        t_put / t_cp_sync,
        rss_put / 1024.0
    ));
    let _ = std::fs::remove_file(base.join("big.cp"));
    let _ = std::fs::remove_file(base.join("big.cp2"));

    // 2. Many small files.
    let tree = base.join("tree");
    let mut logical = 0u64;
    for i in 0..small {
        let dir = tree.join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).expect("dir");
        }
        let mut buf = vec![0u8; 512 + (i * 37) % 3584];
        fill(1_000_000 + i as u64, &mut buf);
        logical += buf.len() as u64;
        std::fs::write(dir.join(format!("f{i:06}")), &buf).expect("file");
    }
    let _ = sh("sync");
    let t_cpr = sh(&format!("cp -r {b}/tree {b}/tree.cp"));
    let t_cpr_sync = sh(&format!(
        "cp -r {b}/tree {b}/tree.cp2 && sync -f {b}/tree.cp2"
    ));
    let _ = std::fs::remove_dir_all(base.join("tree.cp"));
    let _ = std::fs::remove_dir_all(base.join("tree.cp2"));
    let store = Store::open(&root).expect("open");
    let small_repo = repo(&store, "small");
    let objects_before = du(&root.join("objects"));
    let t_small = {
        let (t, _) = time(|| {
            let c = store
                .start_commit(&small_repo.branch("master").expect("b"), "")
                .expect("start")
                .commit;
            store
                .put_dir_local(&c, "/", &tree, &mut |_| {})
                .expect("put dir");
            store
                .finish_commit(&c, FinishOptions::default())
                .expect("finish");
        });
        t
    };
    report.push(format!(
        "| put {small} small files (0.5-4 KiB, 100 dirs) | {t_small:.2} s | cp -r {t_cpr:.2} s / cp -r+sync {t_cpr_sync:.2} s | {:.2}x / {:.2}x | |",
        t_small / t_cpr,
        t_small / t_cpr_sync
    ));

    // 3. Dedup: the same tree again, in another repo.
    let again = repo(&store, "again");
    let t_again = {
        let (t, _) = time(|| {
            let c = store
                .start_commit(&again.branch("master").expect("b"), "")
                .expect("start")
                .commit;
            store
                .put_dir_local(&c, "/", &tree, &mut |_| {})
                .expect("put dir");
            store
                .finish_commit(&c, FinishOptions::default())
                .expect("finish");
        });
        t
    };
    let stored = du(&root.join("objects")) - objects_before;
    report.push(format!(
        "| dedup: same {small}-file tree committed twice | second put {t_again:.2} s | logical {:.1} MiB x2 | stored {:.1} MiB = {:.3} of logical | |",
        logical as f64 / 1048576.0,
        stored as f64 / 1048576.0,
        stored as f64 / (2 * logical) as f64
    ));
    drop(store);
    let _ = std::fs::remove_dir_all(&tree);

    // 4. Listing at scale, each in a fresh process.
    let rs = root.to_str().expect("utf8");
    let small_list = list_n / 10;
    let bs = nums(&child(&[
        "build",
        rs,
        "list_small",
        &small_list.to_string(),
    ]));
    let bl = nums(&child(&["build", rs, "list_big", &list_n.to_string()]));
    report.push(format!(
        "| build {list_n}-file commit (put_files + finish) | {:.2} s + {:.2} s | {small_list} files: {:.2} s + {:.2} s | | |",
        bl[0], bl[1], bs[0], bs[1]
    ));
    for mode in ["recursive", "walk", "level"] {
        let s = nums(&child(&["list", rs, "list_small", mode]));
        let l = nums(&child(&["list", rs, "list_big", mode]));
        report.push(format!(
            "| list file ({mode}) of {list_n} files | {:.2} s ({:.0} entries) | {small_list} files: {:.2} s | time {:.1}x for 10x files | peak RSS {:.1} MiB vs {:.1} MiB |",
            l[1],
            l[0],
            s[1],
            l[1] / s[1].max(1e-9),
            l[2] / 1024.0,
            s[2] / 1024.0
        ));
    }
    let t_find = sh(&format!(
        "find {b}/store/objects -type f | wc -l > /dev/null"
    ));
    report.push(format!(
        "| (reference) find over the object store | {t_find:.2} s | | | |"
    ));

    println!("| benchmark | store | baseline | ratio | notes |");
    println!("|---|---|---|---|---|");
    for l in &report {
        println!("{l}");
    }
    let _ = std::fs::remove_dir_all(&base);
}
