//! The log block of the job and datum pages: the last lines (stored and running), which the
//! script extends with `log` events as user code prints them.

use maud::{Markup, html};
use pipeline_core::pps::LogLine;

use super::view::{enc, short, time, url};

/// Lines shown on a job or datum page; older ones are behind the "all lines" link.
pub const SHOWN_LINES: usize = 200;

/// Where a page's log lines come from: a job, or one datum of it.
pub struct LogSource<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The job (full ID).
    pub job: &'a str,
    /// Only this datum's lines.
    pub datum: Option<&'a str>,
}

impl LogSource<'_> {
    /// The API's log stream of this source, following it when `follow`.
    pub fn api_url(&self, follow: bool) -> String {
        let mut u = format!(
            "/api/v1/pipelines/{}/logs?job={}",
            enc(self.pipeline),
            enc(self.job)
        );
        if let Some(d) = self.datum {
            u.push_str(&format!("&datum={}", enc(d)));
        }
        if follow {
            u.push_str("&follow=true");
        }
        u
    }
}

/// The log block: `<div id="logs">` with one `div.line.stdout|stderr` per line. Its data
/// attributes tell the script what to follow (`data-pipeline`, `data-job`, `data-datum`, and
/// `data-reload`, the API URL to re-read after a `lagged` event).
pub fn block(src: &LogSource<'_>, lines: &[LogLine], earlier: bool) -> Markup {
    html! {
        p.log-links {
            @if earlier {
                span.muted { "The last " (SHOWN_LINES) " lines. " }
            }
            a href=(src.api_url(false)) { "All lines" } " · "
            a href=(src.api_url(true)) { "Follow (NDJSON)" }
        }
        div #logs .logs data-pipeline=(src.pipeline) data-job=(src.job)
            data-datum=[src.datum] data-reload=(src.api_url(false)) {
            @if lines.is_empty() {
                div.none.muted { "No log lines yet." }
            }
            @for l in lines {
                (line(l, src.datum.is_none()))
            }
        }
    }
}

/// One line; on a job page it names its datum.
fn line(l: &LogLine, with_datum: bool) -> Markup {
    let stream = if l.stream == "stderr" {
        "stderr"
    } else {
        "stdout"
    };
    html! {
        div class={ "line " (stream) } {
            span.ts { (time(l.ts_ms)) }
            @if with_datum {
                a.datum href=(url::datum(&l.pipeline, &l.job, &l.datum)) { (short(&l.datum)) }
                " "
            }
            span.msg { (l.message) }
        }
    }
}
