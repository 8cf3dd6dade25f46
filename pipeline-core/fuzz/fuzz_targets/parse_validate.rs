//! Fuzz target: arbitrary bytes through parse → validate → effective → serialise.
//! Run: `cd pipeline-core/fuzz && cargo +nightly fuzz run parse_validate`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(specs) = pipeline_core::spec::parse_bytes(data, "fuzz") {
        for s in &specs {
            let report = pipeline_core::validate::validate(s);
            for d in report.errors.iter().chain(&report.warnings) {
                let _ = d.to_string();
            }
            let effective = s.spec.effective();
            let _ = serde_json::to_string(&effective);
        }
    }
});
