//! How a datum's fields read on the job and datum pages: its reason, its failure, its
//! attempts, its inputs and its timings. One place, so both pages say the same thing.

use maud::{Markup, html};
use pipeline_core::pfs::CommitRef;
use pipeline_core::pps::{DatumInfo, DatumInputInfo, DatumReason, JobInfo, RunEnd};

use super::view::{bytes, duration_us, short, url};

/// Input paths shown per row of the job page's datum table; the rest are counted.
pub const INPUTS_IN_ROW: usize = 3;

/// The machine-readable reason a datum ran or was skipped: `new`, `changed`,
/// `salt_changed`, `previous_failure`, `reprocess_every_job`, `unchanged from JOB`.
pub fn reason_text(r: &DatumReason) -> String {
    match r {
        DatumReason::New => "new".into(),
        DatumReason::Changed => "changed".into(),
        DatumReason::SaltChanged => "salt_changed".into(),
        DatumReason::PreviousFailure => "previous_failure".into(),
        DatumReason::ReprocessEveryJob => "reprocess_every_job".into(),
        DatumReason::Unchanged { from_job } => format!("unchanged from {from_job}"),
    }
}

/// The reason as markup; an unchanged datum links to the job whose output it kept.
pub fn reason(pipeline: &str, r: &DatumReason) -> Markup {
    match r {
        DatumReason::Unchanged { from_job } => html! {
            code.reason { "unchanged from " }
            a.mono href=(url::job(pipeline, from_job)) title=(from_job) { (short(from_job)) }
        },
        other => html! { code.reason { (reason_text(other)) } },
    }
}

/// How the datum's last attempt failed, or nothing.
pub fn failure(d: &DatumInfo) -> Markup {
    html! {
        @if let Some(f) = &d.failure {
            span.failure { (f.to_string()) }
        }
    }
}

/// How many attempts this job made (the job page's column).
pub fn attempts(d: &DatumInfo) -> Markup {
    html! {
        span.attempts { (d.attempts) }
        @if d.attempts > 1 {
            span.muted { " (retried)" }
        }
    }
}

/// Every attempt: how the user code ended, its time, and how `err_cmd` ended after it.
/// Records written before attempts were kept show only their count.
pub fn attempt_table(d: &DatumInfo) -> Markup {
    html! {
        @if d.attempt_history.is_empty() {
            p.muted { (d.attempts) " attempt(s); this record predates per-attempt history." }
        } @else {
            table #attempts {
                thead { tr { th.num { "#" } th { "Ended" } th.num { "User code" } th { "err_cmd" } } }
                tbody {
                    @for a in &d.attempt_history {
                        tr {
                            td.num { (a.number) }
                            td { (run_end(&a.ended)) }
                            td.num { (duration_us(a.process_us)) }
                            td {
                                @match &a.err_cmd {
                                    Some(e) => (run_end(e)),
                                    None => span.muted { "did not run" },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How one run ended, as a badge-like word and the failure.
fn run_end(e: &RunEnd) -> Markup {
    match e {
        RunEnd::Success => html! { span class="badge ok" { "success" } },
        RunEnd::Failed { failure } => html! {
            span class="badge bad" { "failed" } " " span.failure { (failure.to_string()) }
        },
    }
}

/// The first [`INPUTS_IN_ROW`] input paths, then "N more".
pub fn inputs_summary(d: &DatumInfo) -> Markup {
    let more = d.inputs.len().saturating_sub(INPUTS_IN_ROW);
    html! {
        ul.inputs {
            @for i in d.inputs.iter().take(INPUTS_IN_ROW) {
                li { span.muted { (i.name) ":" } code { (i.path) } }
            }
            @if more > 0 {
                li.muted { (more) " more" }
            }
        }
    }
}

/// Download / process / upload times.
pub fn timings(d: &DatumInfo) -> Markup {
    let s = &d.stats;
    html! {
        span.timings title="download / process / upload" {
            (duration_us(s.download_us)) " / " (duration_us(s.process_us)) " / "
            (duration_us(s.upload_us))
        }
    }
}

/// Bytes read and written.
pub fn sizes(d: &DatumInfo) -> Markup {
    html! { (bytes(d.stats.bytes_in)) " in / " (bytes(d.stats.bytes_out)) " out" }
}

/// The job's input commit of `repo`, if the job read it.
pub fn input_commit<'a>(job: &'a JobInfo, repo: &str) -> Option<&'a CommitRef> {
    job.inputs.iter().find(|c| c.repo.name == repo)
}

/// The directory of `path` in the file browser (`/a/b.txt` → `/a/`; directories stay).
pub fn dir_of(path: &str) -> &str {
    if path.ends_with('/') {
        return path;
    }
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    }
}

/// An input's branch, content hash (shortened; the full value as its title), size and
/// join/group keys; older records carry none of them and show nothing.
pub fn input_details(i: &DatumInputInfo) -> Markup {
    html! {
        dl.input-details {
            @if !i.branch.is_empty() { dt { "branch" } dd { (i.branch) } }
            @if !i.hash.is_empty() {
                dt { "hash" } dd.mono title=(i.hash) { (short(&i.hash)) }
                dt { "size" } dd { (bytes(i.size)) }
            }
            @if !i.join_key.is_empty() { dt { "join key" } dd.mono { (i.join_key) } }
            @if !i.group_key.is_empty() { dt { "group key" } dd.mono { (i.group_key) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_machine_readable() {
        assert_eq!(reason_text(&DatumReason::New), "new");
        assert_eq!(reason_text(&DatumReason::SaltChanged), "salt_changed");
        let from = DatumReason::Unchanged {
            from_job: "abc".into(),
        };
        assert_eq!(reason_text(&from), "unchanged from abc");
    }

    #[test]
    fn the_directory_of_a_path() {
        assert_eq!(dir_of("/a/b.txt"), "/a/");
        assert_eq!(dir_of("/b.txt"), "/");
        assert_eq!(dir_of("/d/"), "/d/");
        assert_eq!(dir_of("x"), "/");
    }
}
