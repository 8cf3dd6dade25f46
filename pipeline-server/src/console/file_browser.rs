//! The commit page's file browser: one directory level at a time (`<table id="files">`,
//! from [`super::dir_page`]), [`FILES_PER_PAGE`] entries per page with an `?after=` cursor,
//! or one file's facts, its download link and, for small UTF-8 text, a preview.

use std::io::Read;

use maud::{Markup, html};
use pipeline_core::pfs::{CommitRef, FileInfo, PfsError, Store};

use super::dir_page::{Entry, dir_page};

use super::repo::repo_label;
use super::view::{bytes, enc, short, url};
use crate::error::{ApiError, ApiResult};

/// Entries per page of a directory listing.
pub const FILES_PER_PAGE: usize = 1_000;

/// Files smaller than this (and valid UTF-8) are previewed.
pub const PREVIEW_MAX_BYTES: u64 = 64 * 1024;

/// Renders the browser at `path` (normalised: `/` or `/a/b`) of `commit`: the directory's
/// entries after `after`, or the file's facts when `path` names a file.
pub fn render(
    store: &Store,
    commit: &CommitRef,
    path: &str,
    after: Option<&str>,
) -> ApiResult<Markup> {
    if path != "/" {
        // The file itself, or the first file below the directory; nothing: no such path.
        let first = store.list_file_recursive_from(commit, path, path)?.next();
        match first.transpose()? {
            Some(f) if f.path == path => return file_view(store, commit, &f),
            Some(_) => {}
            None => {
                return Err(PfsError::FileNotFound {
                    repo: commit.repo.to_string(),
                    commit: commit.id.to_string(),
                    path: path.to_string(),
                }
                .into());
            }
        }
    }
    let page = dir_page(store, commit, path, after, FILES_PER_PAGE)?;
    let next = match page.more {
        true => page.entries.last().map(|e| e.path().to_string()),
        false => None,
    };
    Ok(dir_view(
        commit,
        path,
        &page.entries,
        after.is_some(),
        next.as_deref(),
    ))
}

/// The browser's URL of `path` in `commit`, continuing after `after` when given.
fn browse_url(commit: &CommitRef, path: &str, after: Option<&str>) -> String {
    let mut u = url::commit_dir(&repo_label(&commit.repo), commit.id.as_str(), path);
    if let Some(a) = after {
        u.push_str("&after=");
        u.push_str(&enc(a));
    }
    u
}

/// The breadcrumb of `path`: the root and each directory above it as links, the last
/// segment as text.
fn path_crumbs(commit: &CommitRef, path: &str) -> Markup {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    html! {
        nav.path-crumbs aria-label="directory" {
            @if segments.is_empty() {
                span.here.mono { "/" }
            } @else {
                a.mono href=(browse_url(commit, "/", None)) { "/" }
            }
            @for (i, seg) in segments.iter().enumerate() {
                @if i + 1 == segments.len() {
                    span.here.mono { (seg) }
                } @else {
                    a.mono href=(browse_url(commit, &format!("/{}", segments[..=i].join("/")), None)) { (seg) }
                    span.sep { "/" }
                }
            }
        }
    }
}

/// One page of a directory listing.
fn dir_view(
    commit: &CommitRef,
    path: &str,
    rows: &[Entry],
    later_page: bool,
    next: Option<&str>,
) -> Markup {
    html! {
        h2 { "Files" }
        (path_crumbs(commit, path))
        @if rows.is_empty() {
            p.muted.empty-dir { @if later_page { "No more entries." } @else { "This directory is empty." } }
        } @else {
            table #files {
                thead { tr { th { "Name" } th.num { "Size" } th { "Hash" } } }
                tbody {
                    @for entry in rows { (entry_row(commit, path, entry)) }
                }
            }
        }
        nav.pager {
            @if later_page { a.first href=(browse_url(commit, path, None)) { "First entries" } }
            @if let Some(n) = next {
                a.next href=(browse_url(commit, path, Some(n))) {
                    "Next " (FILES_PER_PAGE) " entries"
                }
            }
        }
    }
}

/// One row of the listing of `dir`: a directory links to its listing, a file to its
/// download (and to its own view).
fn entry_row(commit: &CommitRef, dir: &str, entry: &Entry) -> Markup {
    let prefix_len = if dir == "/" { 1 } else { dir.len() + 1 };
    let name = entry.path().get(prefix_len..).unwrap_or(entry.path());
    html! {
        tr {
            @match entry {
                Entry::Dir(d) => {
                    td { a.dir-link href=(browse_url(commit, d.trim_end_matches('/'), None)) { (name) } }
                    td.num.muted { "dir" }
                    td {}
                }
                Entry::File(f) => {
                    td {
                        a.file-link href=(url::download(&repo_label(&commit.repo), commit.id.as_str(), &f.path)) { (name) }
                        a.file-facts href=(browse_url(commit, &f.path, None)) { "view" }
                    }
                    td.num { (bytes(f.size)) }
                    td.mono title=(f.hash.to_hex()) { (short(&f.hash.to_hex())) }
                }
            }
        }
    }
}

/// One file: its facts, the download link and, when small UTF-8 text, a preview.
fn file_view(store: &Store, commit: &CommitRef, file: &FileInfo) -> ApiResult<Markup> {
    let preview = preview_text(store, commit, file)?;
    let download = url::download(&repo_label(&commit.repo), commit.id.as_str(), &file.path);
    Ok(html! {
        h2 { "File" }
        (path_crumbs(commit, &file.path))
        div.card {
            dl.facts.file-facts {
                dt { "Path" } dd.mono { (file.path) }
                dt { "Size" } dd { (bytes(file.size)) " (" (file.size) " bytes)" }
                dt { "Hash" } dd.mono { (file.hash.to_hex()) }
                dt { "Download" } dd { a.download-link href=(download) download { "Download" } }
            }
        }
        @match preview {
            Preview::Text(text) => pre.file-preview { (text) },
            Preview::TooLarge => p.muted { "No preview: the file is " (bytes(file.size)) ", over " (bytes(PREVIEW_MAX_BYTES)) "." },
            Preview::Binary => p.muted { "No preview: the file is not UTF-8 text." },
        }
    })
}

/// What the file view shows of the content.
enum Preview {
    /// The whole file, as text.
    Text(String),
    /// Too large to preview.
    TooLarge,
    /// Not valid UTF-8.
    Binary,
}

/// Reads `file` when it is smaller than [`PREVIEW_MAX_BYTES`] (never more than that).
fn preview_text(store: &Store, commit: &CommitRef, file: &FileInfo) -> ApiResult<Preview> {
    if file.size >= PREVIEW_MAX_BYTES {
        return Ok(Preview::TooLarge);
    }
    let (_, reader) = store.get_file(commit, &file.path)?;
    let mut buf = Vec::new();
    reader
        .take(PREVIEW_MAX_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| ApiError::internal(format!("reading {} for its preview: {e}", file.path)))?;
    Ok(match String::from_utf8(buf) {
        Ok(text) => Preview::Text(text),
        Err(_) => Preview::Binary,
    })
}
