//! A 64 MiB object (a multipart upload on S3) goes in and out of every object store with
//! the process's resident memory growing by less than 32 MiB: puts spool and stream, reads
//! stream. One test in its own binary, so no other test's allocations are counted.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pipeline_core::hash::FileHasher;
use pipeline_core::pfs::RemoteObjectStore;
use pipeline_core::pfs::object::{Durability, LocalObjectStore, ObjectStore};
use pipeline_core::testkit::objects as kit;

const SIZE: u64 = 64 << 20;
const LIMIT: u64 = 32 << 20;

/// A deterministic stream of `left` pseudo-random bytes (never in memory as a whole).
struct Pattern {
    left: u64,
    state: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Runs `f` while a thread samples the resident set; returns the peak growth over the
/// resident set before `f`.
fn peak_growth(f: impl FnOnce()) -> u64 {
    let base = rss();
    let peak = Arc::new(AtomicU64::new(base));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    f();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    peak.load(Ordering::Relaxed).max(rss()).saturating_sub(base)
}

fn round_trip(name: &str, s: &dyn ObjectStore) {
    // Warm up (thread-local buffers, the runtime's threads, connection pools).
    let warm = s
        .put(
            &mut Pattern {
                left: 1024,
                state: 5,
            },
            Durability::Immediate,
        )
        .unwrap();
    io::copy(&mut s.open(&warm.hash).unwrap(), &mut io::sink()).unwrap();
    let mut stored = None;
    let grew = peak_growth(|| {
        stored = Some(
            s.put(
                &mut Pattern {
                    left: SIZE,
                    state: 9,
                },
                Durability::Immediate,
            )
            .unwrap(),
        );
    });
    let o = stored.unwrap();
    assert_eq!(o.size, SIZE);
    eprintln!("{name}: put of 64 MiB grew RSS by {} KiB", grew >> 10);
    assert!(grew < LIMIT, "{name}: put grew RSS by {grew} bytes");
    let mut hasher = FileHasher::new();
    let grew = peak_growth(|| {
        let mut r = s.open(&o.hash).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    });
    assert_eq!(hasher.finish(), o.hash, "{name}: read back other bytes");
    eprintln!("{name}: read of 64 MiB grew RSS by {} KiB", grew >> 10);
    assert!(grew < LIMIT, "{name}: read grew RSS by {grew} bytes");
}

#[test]
fn a_64_mib_object_goes_in_and_out_with_flat_memory() {
    // The remote stores first: memory the allocator kept from an earlier run would hide
    // their growth.
    let dir = tempfile::tempdir().unwrap();
    if let Some(s3) = kit::s3_store("flat_memory") {
        round_trip("s3", &s3.with_spool_dir(dir.path()));
    }
    let file = RemoteObjectStore::from_url(&format!("file://{}/bucket", dir.path().display()))
        .unwrap()
        .with_spool_dir(dir.path());
    round_trip("file://", &file);
    let local = LocalObjectStore::open(&dir.path().join("objects")).unwrap();
    round_trip("local", &local);
}
