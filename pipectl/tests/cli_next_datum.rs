//! `pipectl next datum`: reports the previous datum to the worker's datum-batching socket
//! and blocks until the worker answers (the next datum is mounted); without a socket it
//! fails naming the path it tried.

use std::process::Command;
use std::time::Duration;

use pipeline_core::executor::batch::{BatchControl, Report, SOCKET_ENV};

fn pipectl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pipectl"))
}

#[test]
fn next_datum_reports_and_blocks_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join(".batch/next.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut control = rt.block_on(async { BatchControl::bind(&socket) }).unwrap();
    let mut child = pipectl()
        .args(["next", "datum", "--error", "bad row 3"])
        .env(SOCKET_ENV, &socket)
        .spawn()
        .unwrap();
    let report = rt.block_on(control.next_call()).unwrap();
    assert_eq!(report, Report::Error("bad row 3".into()));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "next datum returned before the next datum was mounted"
    );
    rt.block_on(control.release()).unwrap();
    assert!(child.wait().unwrap().success());

    // The default report is success; --socket overrides the variable.
    let mut ok = pipectl()
        .args(["next", "datum", "--socket"])
        .arg(&socket)
        .spawn()
        .unwrap();
    assert_eq!(rt.block_on(control.next_call()).unwrap(), Report::Ok);
    rt.block_on(control.release()).unwrap();
    assert!(ok.wait().unwrap().success());

    let out = pipectl()
        .args(["next", "datum"])
        .env(SOCKET_ENV, dir.path().join("missing.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.sock"), "{err}");
}
