//! What every console page shares: the page shell, the error page, links, badges and number
//! formats. Everything interpolated into markup goes through `maud`, which escapes it; no
//! page builds HTML from strings, and no markup carries inline scripts or event handlers (the
//! [`CSP`] forbids them).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use pipeline_core::pfs::PfsError;
use pipeline_core::pps::{DatumState, JobState, PpsError};

use crate::error::ApiError;

/// The console's Content-Security-Policy: scripts, styles and connections only from the
/// server itself, nothing inline, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// A rendered page, or the error page.
pub type PageResult = Result<Html, PageError>;

/// A rendered page, sent with the console's security headers.
pub struct Html(pub Markup);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        with_headers((StatusCode::OK, self.0.into_string()).into_response())
    }
}

/// Adds the content type and security headers of every console response.
pub fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error shown as a page, with the status of its API error kind.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<PfsError> for PageError {
    fn from(e: PfsError) -> Self {
        PageError(e.into())
    }
}

impl From<PpsError> for PageError {
    fn from(e: PpsError) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.kind.status();
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        let body = shell(
            &title,
            &[],
            html! {
                div.error-page {
                    h1 { (status.as_u16()) " " (title) }
                    p.error-message { (self.0.message) }
                    p { a href="/" { "Back to the overview" } }
                }
            },
        );
        with_headers((status, body.into_string()).into_response())
    }
}

/// One step of the breadcrumb trail: a label and, except for the current page, a link.
pub struct Crumb {
    /// What is shown.
    pub label: String,
    /// Where it links (`None`: the current page).
    pub href: Option<String>,
}

impl Crumb {
    /// A crumb that links to `href`.
    pub fn link(label: impl Into<String>, href: impl Into<String>) -> Self {
        Crumb {
            label: label.into(),
            href: Some(href.into()),
        }
    }

    /// The current page's crumb.
    pub fn here(label: impl Into<String>) -> Self {
        Crumb {
            label: label.into(),
            href: None,
        }
    }
}

/// The page shell: head, header with the breadcrumb trail, `body`, and the script.
pub fn shell(title: &str, crumbs: &[Crumb], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · pipectl console" }
                // No favicon to fetch (a browser would ask for /favicon.ico otherwise).
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "pipectl" }
                    nav.crumbs aria-label="breadcrumb" {
                        @for c in crumbs {
                            span.sep { "/" }
                            @match &c.href {
                                Some(h) => a href=(h) { (c.label) },
                                None => span.here { (c.label) },
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A form that POSTs to `action` with the CSRF token: one button, an optional confirmation
/// question (asked by the script) and extra hidden fields.
pub fn action_form(
    action: &str,
    label: &str,
    csrf: &str,
    confirm: Option<&str>,
    fields: &[(&str, &str)],
) -> Markup {
    html! {
        form.action method="post" action=(action) data-confirm=[confirm] {
            input type="hidden" name="csrf" value=(csrf);
            @for (k, v) in fields {
                input type="hidden" name=(k) value=(v);
            }
            button type="submit" { (label) }
        }
    }
}

/// A block of text with a copy button (the script copies the block's text).
pub fn copyable(id: &str, text: &str) -> Markup {
    html! {
        div.copyable {
            button.copy type="button" data-copy=(id) { "Copy" }
            pre id=(id) { code { (text) } }
        }
    }
}

/// Characters escaped in a path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `s` percent-encoded for a URL path segment or query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The console's URLs, built in one place.
pub mod url {
    use super::enc;

    /// The overview.
    pub fn overview() -> String {
        "/".into()
    }

    /// A pipeline's page.
    pub fn pipeline(p: &str) -> String {
        format!("/pipelines/{}", enc(p))
    }

    /// A job's page.
    pub fn job(p: &str, j: &str) -> String {
        format!("/pipelines/{}/jobs/{}", enc(p), enc(j))
    }

    /// A datum's page.
    pub fn datum(p: &str, j: &str, d: &str) -> String {
        format!("/pipelines/{}/jobs/{}/datums/{}", enc(p), enc(j), enc(d))
    }

    /// A repo's page.
    pub fn repo(r: &str) -> String {
        format!("/repos/{}", enc(r))
    }

    /// A commit's page (its root directory).
    pub fn commit(r: &str, c: &str) -> String {
        format!("/repos/{}/commits/{}", enc(r), enc(c))
    }

    /// A directory of a commit in the file browser.
    pub fn commit_dir(r: &str, c: &str, dir: &str) -> String {
        format!("{}?path={}", commit(r, c), enc(dir))
    }

    /// A file's download (the API's file route).
    pub fn download(r: &str, c: &str, path: &str) -> String {
        format!(
            "/api/v1/repos/{}/commits/{}/file?path={}",
            enc(r),
            enc(c),
            enc(path)
        )
    }
}

/// A job state as a badge.
pub fn job_state(s: JobState) -> Markup {
    html! { span class={ "badge " (job_state_class(s)) } { (s.as_str()) } }
}

/// A job state as a badge that the script keeps current: it carries
/// `data-live-job-state="{pipeline}/{job}"`, and every `job` event of that job rewrites the
/// badge's text and class.
pub fn live_job_state(pipeline: &str, job: &str, s: JobState) -> Markup {
    html! {
        span class={ "badge " (job_state_class(s)) }
            data-live-job-state={ (pipeline) "/" (job) } { (s.as_str()) }
    }
}

/// The badge class of a job state (`ok`, `bad`, `killed`, `running`); console.js maps states
/// to the same classes.
pub fn job_state_class(s: JobState) -> &'static str {
    match s {
        JobState::JobSuccess => "ok",
        JobState::JobFailure | JobState::JobUnrunnable => "bad",
        JobState::JobKilled => "killed",
        _ => "running",
    }
}

/// A datum state as a badge.
pub fn datum_state(s: DatumState) -> Markup {
    let class = match s {
        DatumState::Success => "ok",
        DatumState::Failed => "bad",
        DatumState::Recovered => "warn",
        DatumState::Skipped => "skipped",
    };
    html! { span class={ "badge " (class) } { (s.as_str()) } }
}

/// A duration in ms, as people read it (`850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`).
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// A duration in µs, as people read it (`420 µs` below a millisecond).
pub fn duration_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else {
        duration_ms(us / 1000)
    }
}

/// A size in bytes, in binary units (`512 B`, `1.5 KiB`, `3.2 GiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A time (ms since the epoch) as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn time(ms: u64) -> String {
    let t = pipeline_core::civil_time::rfc3339(ms / 1000);
    t.trim_end_matches('Z').replacen('T', " ", 1)
}

/// The first 12 characters of an ID (what the CLI shows too).
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Markup from a constant string known to be safe (never from data).
pub fn trusted(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_345), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(duration_ms(7_380_000), "2 h 03 min");
        assert_eq!(duration_us(420), "420 µs");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    #[test]
    fn urls_escape_what_they_carry() {
        assert_eq!(
            url::commit_dir("r", "c", "/a b/<x>"),
            "/repos/r/commits/c?path=%2Fa%20b%2F%3Cx%3E"
        );
        assert_eq!(url::pipeline("a/b"), "/pipelines/a%2Fb");
    }

    #[test]
    fn markup_escapes_data() {
        let crumbs = [Crumb::here("<script>alert(1)</script>")];
        let page = shell("<b>", &crumbs, html! {}).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
