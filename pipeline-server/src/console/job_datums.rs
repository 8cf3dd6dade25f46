//! The datum list of the job page: state tabs with counts, one page of datums in reading
//! order (failed, recovered, slowest successes, skipped) and the pager.

use maud::{Markup, html};
use pipeline_core::pps::{DatumInfo, DatumPage, DatumState, JobInfo};

use super::datum_fields as fields;
use super::view::{PageError, datum_state, enc, short, url};
use crate::error::ApiError;

/// Datums per page.
pub const PAGE_SIZE: usize = 100;

/// The states a tab filters on, in the order the tabs are shown.
const STATES: [DatumState; 4] = [
    DatumState::Failed,
    DatumState::Recovered,
    DatumState::Success,
    DatumState::Skipped,
];

/// The `?state=` filter: `None` for all (missing, empty or `all`); upper or lower case.
pub fn parse_state(s: Option<&str>) -> Result<Option<DatumState>, PageError> {
    let s = match s.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(s) if s.eq_ignore_ascii_case("all") => return Ok(None),
        Some(s) => s,
    };
    STATES
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "state: expected one of all, FAILED, RECOVERED, SUCCESS, SKIPPED; got {s:?}"
            ))
            .into()
        })
}

/// How many datums of `job` are in `state` (from its counters; `None`: all of them).
fn count(job: &JobInfo, state: Option<DatumState>) -> u64 {
    let s = &job.stats;
    match state {
        None => s.datums_total,
        Some(DatumState::Failed) => s.datums_failed,
        Some(DatumState::Recovered) => s.datums_recovered,
        Some(DatumState::Success) => s.datums_processed,
        Some(DatumState::Skipped) => s.datums_skipped,
    }
}

/// The job page's URL with a filter and a position.
fn page_url(job: &JobInfo, state: Option<DatumState>, after: Option<&str>) -> String {
    let mut u = url::job(&job.pipeline, &job.id);
    let mut sep = '?';
    if let Some(s) = state {
        u.push_str(&format!("{sep}state={}", s.as_str()));
        sep = '&';
    }
    if let Some(a) = after {
        u.push_str(&format!("{sep}after={}", enc(a)));
    }
    u
}

/// The state tabs: "all" and one per state, each with its count.
fn tabs(job: &JobInfo, current: Option<DatumState>) -> Markup {
    html! {
        nav.tabs aria-label="datum states" {
            a href=(page_url(job, None, None)) data-state="all"
                class=[current.is_none().then_some("current")] {
                "all (" (count(job, None)) ")"
            }
            @for s in STATES {
                a href=(page_url(job, Some(s), None)) data-state=(s.as_str())
                    class=[(current == Some(s)).then_some("current")] {
                    (s.as_str()) " (" (count(job, Some(s))) ")"
                }
            }
        }
    }
}

/// One row of the table.
fn row(job: &JobInfo, d: &DatumInfo) -> Markup {
    html! {
        tr data-datum=(d.id) {
            td { a.datum-link.mono href=(url::datum(&job.pipeline, &job.id, &d.id)) title=(d.id) { (short(&d.id)) } }
            td { (datum_state(d.state)) }
            td { (fields::reason(&job.pipeline, &d.reason)) }
            td { (fields::failure(d)) }
            td.num { (fields::attempts(d)) }
            td { (fields::inputs_summary(d)) }
            td.num { (fields::timings(d)) }
            td.num { (fields::sizes(d)) }
        }
    }
}

/// The tabs, the table of one page and the pager.
pub fn section(
    job: &JobInfo,
    state: Option<DatumState>,
    after: Option<&str>,
    page: &DatumPage,
) -> Markup {
    html! {
        (tabs(job, state))
        p #datums-note .live-note hidden { "New datums were recorded. " a href=(page_url(job, state, after)) { "Reload" } }
        @if page.datums.is_empty() {
            p.muted { "No datums here." }
        } @else {
            table #datums {
                thead { tr {
                    th { "Datum" } th { "State" } th { "Reason" } th { "Failure" }
                    th.num { "Attempts" } th { "Inputs" }
                    th.num title="download / process / upload" { "Timings" } th.num { "Bytes" }
                } }
                tbody { @for d in &page.datums { (row(job, d)) } }
            }
        }
        nav.pager {
            @if after.is_some() {
                a.first href=(page_url(job, state, None)) { "First page" }
            }
            @if let Some(next) = &page.next {
                a.next href=(page_url(job, state, Some(next))) { "Next page" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_filters_parse_and_bad_ones_are_named() {
        assert_eq!(parse_state(None).ok(), Some(None));
        assert_eq!(parse_state(Some("all")).ok(), Some(None));
        assert_eq!(
            parse_state(Some("failed")).ok(),
            Some(Some(DatumState::Failed))
        );
        let e = parse_state(Some("BROKEN")).err().map(|e| e.0.message);
        assert!(e.is_some_and(|m| m.contains("\"BROKEN\"")));
    }
}
