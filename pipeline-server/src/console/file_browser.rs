//! The commit page's file browser: one directory level at a time (`<table id="files">`),
//! [`FILES_PER_PAGE`] entries per page with an `?after=` cursor, or one file's facts, its
//! download link and, for small UTF-8 text, a preview.

use std::io::Read;

use maud::{Markup, html};
use pipeline_core::pfs::{CommitRef, FileInfo, FileKind, Store};

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
    let mut entries = store.list_file(commit, path)?.peekable();
    let is_file =
        matches!(entries.peek(), Some(Ok(f)) if f.kind == FileKind::File && f.path == path);
    if is_file && let Some(Ok(file)) = entries.next() {
        return file_view(store, commit, &file);
    }
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    let mut rows = Vec::new();
    let mut more = false;
    for entry in entries {
        let f = entry?;
        if after.is_some_and(|a| f.path.as_str() <= a) {
            continue;
        }
        if rows.len() == FILES_PER_PAGE {
            more = true;
            break;
        }
        rows.push(f);
    }
    let next = if more {
        rows.last().map(|f| f.path.clone())
    } else {
        None
    };
    Ok(dir_view(
        commit,
        path,
        &prefix,
        &rows,
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
    prefix: &str,
    rows: &[FileInfo],
    later_page: bool,
    next: Option<&str>,
) -> Markup {
    let repo = repo_label(&commit.repo);
    let id = commit.id.as_str();
    html! {
        h2 { "Files" }
        (path_crumbs(commit, path))
        @if rows.is_empty() {
            p.muted.empty-dir { @if later_page { "No more entries." } @else { "This directory is empty." } }
        } @else {
            table #files {
                thead { tr { th { "Name" } th.num { "Size" } th { "Hash" } } }
                tbody {
                    @for f in rows {
                        @let name = f.path.strip_prefix(prefix).unwrap_or(&f.path);
                        tr {
                            td {
                                @if f.kind == FileKind::Dir {
                                    a.dir-link href=(browse_url(commit, f.path.trim_end_matches('/'), None)) { (name) }
                                } @else {
                                    a.file-link href=(url::download(&repo, id, &f.path)) { (name) }
                                    " "
                                    a.file-facts href=(browse_url(commit, &f.path, None)) { "view" }
                                }
                            }
                            td.num { (bytes(f.size)) }
                            td.mono title=(f.hash.to_hex()) { (short(&f.hash.to_hex())) }
                        }
                    }
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
