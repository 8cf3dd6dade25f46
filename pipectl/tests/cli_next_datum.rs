//! `pipectl next datum`: reports the previous datum through the worker's datum-batching
//! control pipes and blocks until the worker answers (the next datum is mounted); without a
//! worker serving them it fails at once naming the directory it tried.

use std::process::Command;
use std::time::Duration;

use pipeline_core::executor::batch::{BatchControl, DIR_ENV, Report};

fn pipectl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pipectl"))
}

#[test]
fn next_datum_reports_and_blocks_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let control_dir = dir.path().join(".batch");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut control = rt
        .block_on(async { BatchControl::create(&control_dir) })
        .unwrap();
    let mut child = pipectl()
        .args(["next", "datum", "--error", "bad row 3"])
        .env(DIR_ENV, &control_dir)
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

    // The default report is success; --dir overrides the variable.
    let mut ok = pipectl()
        .args(["next", "datum", "--dir"])
        .arg(&control_dir)
        .spawn()
        .unwrap();
    assert_eq!(rt.block_on(control.next_call()).unwrap(), Report::Ok);
    rt.block_on(control.release()).unwrap();
    assert!(ok.wait().unwrap().success());

    let out = pipectl()
        .args(["next", "datum"])
        .env(DIR_ENV, dir.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing"), "{err}");
}
