//! The commit page's diff against the parent commit: `<table id="diff">` of added, modified
//! and deleted files, streamed from the store and capped at [`DIFF_CAP`] lines.

use maud::{Markup, html};
use pipeline_core::pfs::{Change, CommitInfo, CommitRef, DiffEntry, Store};

use super::repo::{commit_link, repo_label};
use super::view::{bytes, url};
use crate::error::ApiResult;

/// Diff lines shown at most.
pub const DIFF_CAP: usize = 1_000;

/// The diff section of `info`'s page.
pub fn render(store: &Store, info: &CommitInfo) -> ApiResult<Markup> {
    let Some(parent_id) = &info.parent else {
        return Ok(html! {
            h2 { "Changes" }
            p.muted.no-parent { "This commit has no parent: every file in it is new." }
        });
    };
    let parent = info.commit.repo.commit(parent_id);
    let mut lines = Vec::new();
    let mut more = false;
    for line in store.diff_file(&info.commit, &parent)? {
        let line = line?;
        if lines.len() == DIFF_CAP {
            more = true;
            break;
        }
        lines.push(line);
    }
    Ok(html! {
        h2 { "Changes against the parent " (commit_link(&parent)) }
        @if lines.is_empty() {
            p.muted.no-changes { "No file changed." }
        } @else {
            table #diff {
                thead { tr { th { "Change" } th { "Path" } th.num { "Old size" } th.num { "New size" } } }
                tbody { @for l in &lines { (diff_row(&info.commit, &parent, l)) } }
            }
        }
        @if more {
            p.cap-note { "Only the first " (DIFF_CAP) " changed files are shown; more changed." }
        }
    })
}

/// One line: the change, the path (to the file in the commit that has it) and both sizes.
fn diff_row(new: &CommitRef, old: &CommitRef, l: &DiffEntry) -> Markup {
    let (class, word) = match l.change {
        Change::Added => ("added", "added"),
        Change::Modified => ("modified", "modified"),
        Change::Deleted => ("deleted", "deleted"),
    };
    let holder = if l.change == Change::Deleted {
        old
    } else {
        new
    };
    let href = url::commit_dir(&repo_label(&holder.repo), holder.id.as_str(), &l.path);
    html! {
        tr class=(class) {
            td { span class={ "change " (class) } { (word) } }
            td { a.mono href=(href) { (l.path) } }
            td.num { @if let Some(f) = &l.old { (bytes(f.size)) } }
            td.num { @if let Some(f) = &l.new { (bytes(f.size)) } }
        }
    }
}
