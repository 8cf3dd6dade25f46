//! `list datum PIPELINE@JOB` with pachctl's `--state` (repeatable), `--page-size`, `--page`
//! and `--reverse`, over the server's datum pages (`GET .../datum_page`): datums are
//! printed as the pages arrive, at most one page (1000 datums) held at a time, in reading
//! order (failed, recovered, success slowest first, skipped) or backwards.

use pipeline_core::pps::{DatumInfo, DatumQuery, DatumState, MAX_DATUM_PAGE};

use crate::conn::{Access, Conn, Global, connect};
use crate::error::{CliError, Res};
use crate::output::{Format, outln, print_json};

/// A datum state as `--state` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    /// Failed after all tries.
    Failed,
    /// Failed, but `err_cmd` succeeded.
    Recovered,
    /// Processed by this job.
    Success,
    /// Unchanged since an earlier job; its output kept.
    Skipped,
}

impl StateArg {
    fn state(self) -> DatumState {
        match self {
            StateArg::Failed => DatumState::Failed,
            StateArg::Recovered => DatumState::Recovered,
            StateArg::Success => DatumState::Success,
            StateArg::Skipped => DatumState::Skipped,
        }
    }
}

/// Which datums `list datum PIPELINE@JOB` prints.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Only these states (all when empty).
    pub states: Vec<StateArg>,
    /// Datums per page.
    pub page_size: Option<usize>,
    /// With `page_size`: only this page (0 is the first).
    pub page: Option<usize>,
    /// The reading order backwards.
    pub reverse: bool,
}

/// The state filters in the order they are read: `[None]` for all, else the states in
/// reading order (backwards with `reverse`), each once.
fn state_order(l: &Listing) -> Vec<Option<DatumState>> {
    if l.states.is_empty() {
        return vec![None];
    }
    let mut order: Vec<Option<DatumState>> = [
        StateArg::Failed,
        StateArg::Recovered,
        StateArg::Success,
        StateArg::Skipped,
    ]
    .into_iter()
    .filter(|s| l.states.contains(s))
    .map(|s| Some(s.state()))
    .collect();
    if l.reverse {
        order.reverse();
    }
    order
}

/// Runs `list datum PIPELINE@JOB`.
pub fn list(g: &Global, pipeline: &str, job: &str, l: &Listing, format: Format) -> Res {
    let (skip, take) = match (l.page_size, l.page) {
        (Some(0), _) => return Err(CliError::BadArgs("--page-size must be at least 1".into())),
        (None, Some(_)) => return Err(CliError::BadArgs("--page needs --page-size".into())),
        (Some(n), Some(k)) => (k.checked_mul(n).ok_or_else(too_far)?, n),
        (Some(_), None) | (None, None) => (0, usize::MAX),
    };
    let conn = connect(g, Access::Read, None)?;
    // Resolves a job ID prefix once, and fails before the header on an unknown job.
    let job = conn.call(conn.client.inspect_job(pipeline, job))?.id;
    if format != Format::Json {
        outln!("{:<64} {:<9} {:<30} REASON", "ID", "STATE", "INPUTS");
    }
    let mut walk = Walk { skip, take };
    for state in state_order(l) {
        let q = DatumQuery {
            state,
            after: None,
            limit: MAX_DATUM_PAGE,
            reverse: l.reverse,
        };
        if !walk.pages(&conn, pipeline, &job, q, format)? {
            break;
        }
    }
    Ok(())
}

fn too_far() -> CliError {
    CliError::BadArgs("--page times --page-size is too large".into())
}

/// Where a listing is: datums still to skip (earlier pages) and to print.
struct Walk {
    skip: usize,
    take: usize,
}

impl Walk {
    /// Prints the datums of one query's pages that fall in the page asked for; `false` once
    /// it is complete.
    fn pages(
        &mut self,
        conn: &Conn,
        pipeline: &str,
        job: &str,
        mut q: DatumQuery,
        format: Format,
    ) -> Res<bool> {
        loop {
            if self.take == 0 {
                return Ok(false);
            }
            q.limit = self.skip.saturating_add(self.take).min(MAX_DATUM_PAGE);
            let page = conn.call(conn.client.datum_page(pipeline, job, &q))?;
            for d in &page.datums {
                if self.skip > 0 {
                    self.skip -= 1;
                    continue;
                }
                if self.take == 0 {
                    return Ok(false);
                }
                self.take -= 1;
                print_datum(d, format);
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return Ok(true),
            }
        }
    }
}

fn print_datum(d: &DatumInfo, format: Format) {
    if format == Format::Json {
        print_json(d);
        return;
    }
    let inputs: Vec<String> = d
        .inputs
        .iter()
        .map(|i| format!("{}:{}", i.repo, i.path))
        .collect();
    outln!(
        "{:<64} {:<9} {:<30} {}",
        d.id,
        d.state.as_str(),
        inputs.join(","),
        crate::pipeline::datum_reason(d)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_read_in_reading_order_each_once() {
        let l = Listing {
            states: vec![StateArg::Skipped, StateArg::Failed, StateArg::Skipped],
            ..Listing::default()
        };
        assert_eq!(
            state_order(&l),
            [Some(DatumState::Failed), Some(DatumState::Skipped)]
        );
        let rev = Listing { reverse: true, ..l };
        assert_eq!(
            state_order(&rev),
            [Some(DatumState::Skipped), Some(DatumState::Failed)]
        );
        assert_eq!(state_order(&Listing::default()), [None]);
    }
}
