//! Cron inputs: ticks as commits of an empty file named by the tick time (RFC 3339) on the
//! cron repo's `master`; `overwrite` deletes earlier ticks; `run cron` ticks now.

use crate::pfs::{FinishOptions, PfsError};
use crate::spec::FieldPath;

use super::Engine;
use super::error::{PpsError, Result};
use super::registry::input_branches;

/// Formats seconds since the epoch as RFC 3339 UTC (`2024-05-01T10:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (proleptic Gregorian), after Howard Hinnant's public-domain algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

impl Engine {
    /// Commits one tick (the current time) to every cron input of a pipeline, as
    /// `pachctl run cron` does. Returns the commit-set IDs made.
    pub fn run_cron(&self, pipeline: &str) -> Result<Vec<String>> {
        let info = self.inspect_pipeline(pipeline)?;
        let spec = info.effective();
        let mut crons = Vec::new();
        if let Some(input) = &spec.input {
            collect_crons(input, &mut crons);
        }
        if crons.is_empty() {
            return Err(PpsError::Usage(format!(
                "pipeline {pipeline:?} has no cron input"
            )));
        }
        let mut branches = Vec::new();
        if let Some(input) = &spec.input {
            input_branches(input, FieldPath::root().field("input"), &mut branches);
        }
        let now = super::now_ms() / 1000;
        let mut ids = Vec::new();
        for (b, (_, overwrite)) in branches.iter().filter(|b| b.cron).zip(crons) {
            let store = self.store();
            let c = store.start_commit(&b.branch, "cron tick")?.commit;
            if overwrite {
                match store.delete_file(&c, "/") {
                    Ok(_) | Err(PfsError::FileNotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            store.put_file_bytes(&c, &format!("/{}", rfc3339(now)), b"")?;
            store.finish_commit(&c, FinishOptions::default())?;
            ids.push(c.id.to_string());
        }
        Ok(ids)
    }
}

fn collect_crons(input: &crate::spec::Input, out: &mut Vec<(String, bool)>) {
    if let Some(c) = &input.cron {
        out.push((c.name.clone().unwrap_or_default(), c.overwrite));
    }
    for list in [&input.cross, &input.union, &input.join, &input.group]
        .into_iter()
        .flatten()
    {
        for child in list {
            collect_crons(child, out);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_714_557_600), "2024-05-01T10:00:00Z");
    }
}
