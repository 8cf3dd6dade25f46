//! The server under load (#14 item 7): `CLIENTS` concurrent clients doing `put file`, `list
//! file` and `get file` over the store's Unix socket for `SECONDS`, while the server runs a
//! job (started by `benches/scripts/server_load.sh`). Prints requests/s, p50/p99 latency per
//! operation, and checks at the end that every put that succeeded is in the store exactly
//! once with its content, and that no failed put left anything.
//!
//! Usage: `server-load SOCKET [CLIENTS] [SECONDS]`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use pipeline_server::{Client, ClientResult};

/// What one client measured.
#[derive(Default)]
struct Tally {
    /// Latencies in microseconds per operation.
    latencies: BTreeMap<&'static str, Vec<u64>>,
    /// Failed requests per operation.
    errors: BTreeMap<&'static str, u64>,
    /// Paths whose put succeeded, with their content.
    stored: Vec<(String, String)>,
    /// Paths whose put failed.
    failed_puts: Vec<String>,
}

impl Tally {
    fn record<T>(&mut self, op: &'static str, t0: Instant, r: &ClientResult<T>) {
        match r {
            Ok(_) => self
                .latencies
                .entry(op)
                .or_default()
                .push(t0.elapsed().as_micros() as u64),
            Err(e) => {
                *self.errors.entry(op).or_default() += 1;
                eprintln!("{op}: {e}");
            }
        }
    }
}

/// One client: put a new file, list its directory, read back one of its files, until `end`.
async fn client_loop(client: Client, id: usize, end: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut n = 0usize;
    while Instant::now() < end {
        let path = format!("/c{id}/f{n:06}");
        let content = format!("client {id} file {n}\n");
        let t0 = Instant::now();
        let r = client
            .put_file("load", "master", &path, Body::from(content.clone()))
            .await;
        tally.record("put", t0, &r);
        match r {
            Ok(_) => tally.stored.push((path, content)),
            Err(_) => tally.failed_puts.push(path),
        }
        let t0 = Instant::now();
        let r = list_count(&client, &format!("/c{id}/")).await;
        tally.record("list", t0, &r);
        if let Some((p, want)) = tally.stored.get(n / 2).cloned() {
            let t0 = Instant::now();
            let r = read(&client, &p).await;
            tally.record("get", t0, &r);
            if let Ok(got) = r {
                assert_eq!(got, want, "get {p} returned other content");
            }
        }
        n += 1;
    }
    tally
}

async fn list_count(client: &Client, dir: &str) -> ClientResult<usize> {
    let mut s = client.list_files("load", "master", dir, false).await?;
    let mut n = 0;
    while s.next().await?.is_some() {
        n += 1;
    }
    Ok(n)
}

async fn read(client: &Client, path: &str) -> ClientResult<String> {
    let mut d = client.get_file("load", "master", path).await?;
    let mut out = Vec::new();
    while let Some(c) = d.chunk().await? {
        out.extend_from_slice(&c);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Every successful put is stored exactly once with its content; no failed put is.
async fn verify(client: &Client, tallies: &[Tally]) -> Result<usize, String> {
    let mut found: BTreeMap<String, u32> = BTreeMap::new();
    let mut s = client
        .list_files("load", "master", "/", true)
        .await
        .map_err(|e| e.to_string())?;
    while let Some(f) = s.next().await.map_err(|e| e.to_string())? {
        if !f.path.ends_with('/') {
            *found.entry(f.path).or_default() += 1;
        }
    }
    let mut checked = 0;
    for t in tallies {
        for (p, want) in &t.stored {
            match found.get(p) {
                Some(1) => {}
                other => return Err(format!("{p}: stored {other:?} times, expected once")),
            }
            let got = read(client, p).await.map_err(|e| e.to_string())?;
            if &got != want {
                return Err(format!("{p}: content differs"));
            }
            checked += 1;
        }
        for p in &t.failed_puts {
            if found.contains_key(p) {
                return Err(format!("{p}: a failed put is in the store"));
            }
        }
    }
    let expected: usize = tallies.iter().map(|t| t.stored.len()).sum();
    if found.len() != expected {
        return Err(format!(
            "{} files stored, {expected} successful puts",
            found.len()
        ));
    }
    Ok(checked)
}

fn report(tallies: &[Tally], secs: f64) {
    let mut all: Vec<u64> = Vec::new();
    for op in ["put", "list", "get"] {
        let mut l: Vec<u64> = tallies
            .iter()
            .flat_map(|t| t.latencies.get(op).cloned().unwrap_or_default())
            .collect();
        l.sort_unstable();
        let errors: u64 = tallies
            .iter()
            .map(|t| t.errors.get(op).copied().unwrap_or(0))
            .sum();
        println!(
            "{op:<5} {:>8} ok {:>4} errors {:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            l.len(),
            errors,
            l.len() as f64 / secs,
            percentile(&l, 0.5),
            percentile(&l, 0.99)
        );
        all.extend(l);
    }
    all.sort_unstable();
    println!(
        "all   {:>8} ok {:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        all.len(),
        all.len() as f64 / secs,
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(socket) = args.get(1) else {
        eprintln!("usage: server-load SOCKET [CLIENTS] [SECONDS]");
        std::process::exit(2);
    };
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = Client::unix(socket);
    let code = rt.block_on(async {
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let tasks: Vec<_> = (0..clients)
            .map(|i| tokio::spawn(client_loop(client.clone(), i, end)))
            .collect();
        let mut tallies = Vec::new();
        for t in tasks {
            tallies.push(t.await.expect("client task"));
        }
        report(&tallies, start.elapsed().as_secs_f64());
        match verify(&client, &tallies).await {
            Ok(n) => {
                println!("verified: each of the {n} successful puts is stored exactly once with its content; no failed put left a file");
                0
            }
            Err(e) => {
                println!("VERIFY FAILED: {e}");
                1
            }
        }
    });
    std::process::exit(code);
}
