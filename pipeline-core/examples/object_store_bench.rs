//! Times a put and a verified get of one file through `RemoteObjectStore` on an S3 server,
//! against `cp` of the same file into the server's data directory, in the same run.
//!
//! ```text
//! source .ci/s3
//! cargo run --release -p pipeline-core --features store-object --example object_store_bench -- FILE
//! ```
//! `PIPELINE_TEST_S3_DATA` (exported by `.ci/s3`) is where `cp` copies to.

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use pipeline_core::pfs::RemoteObjectStore;
use pipeline_core::pfs::object::{Durability, ObjectStore};
use pipeline_core::testkit::objects as kit;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: object_store_bench FILE")?,
    );
    let data = PathBuf::from(std::env::var("PIPELINE_TEST_S3_DATA")?);
    let endpoint = kit::s3_endpoint("object_store_bench").ok_or("no S3 server")?;
    let store =
        RemoteObjectStore::from_url_with(&kit::fresh_s3_url("bench"), &kit::s3_options(&endpoint))?;
    let size = std::fs::metadata(&file)?.len();
    let mib = size as f64 / f64::from(1 << 20);

    let t = Instant::now();
    let o = store.put(&mut std::fs::File::open(&file)?, Durability::Immediate)?;
    let put = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let copied = io::copy(&mut store.open(&o.hash)?, &mut io::sink())?;
    let get = t.elapsed().as_secs_f64();
    assert_eq!(copied, size);

    let target = data.join(kit::TEST_BUCKET).join("cp-copy");
    let t = Instant::now();
    let status = std::process::Command::new("cp")
        .arg(&file)
        .arg(&target)
        .status()?;
    let cp = t.elapsed().as_secs_f64();
    std::fs::remove_file(&target)?;
    if !status.success() {
        return Err("cp failed".into());
    }
    println!(
        "{mib:.0} MiB: put {put:.2} s ({:.0} MiB/s), verified get {get:.2} s ({:.0} MiB/s), cp {cp:.2} s ({:.0} MiB/s)",
        mib / put,
        mib / get,
        mib / cp
    );
    println!("put/cp {:.2}x, get/cp {:.2}x", put / cp, get / cp);
    Ok(())
}
