//! The repo and commit pages: branches and commits with provenance, the file browser (links,
//! downloads, previews, paging), the diff against the parent, and error pages.

mod console_common;

use axum::http::StatusCode;
use console_common::{Console, HOSTILE, assert_escaped, console};
use pipeline_core::pfs::{FinishOptions, RepoRef};

/// The head commit ID of `repo@master`.
fn head(c: &Console, repo: &str) -> String {
    let r = RepoRef::new(repo).unwrap();
    let b = c
        .engine
        .store()
        .inspect_branch(&r.branch("master").unwrap());
    b.unwrap().head.to_string()
}

/// A second commit on `raw@master`: adds `/new.txt` and `/dir/sub/inner.txt`, modifies
/// `/a.txt`, deletes `/b.txt`. Returns its ID.
fn second_raw_commit(c: &Console) -> String {
    let store = c.engine.store();
    let raw = RepoRef::new("raw").unwrap();
    let commit = store
        .start_commit(&raw.branch("master").unwrap(), "second")
        .unwrap()
        .commit;
    store.put_file_bytes(&commit, "/new.txt", b"new\n").unwrap();
    store
        .put_file_bytes(&commit, "/dir/sub/inner.txt", b"inner\n")
        .unwrap();
    store
        .put_file_bytes(&commit, "/a.txt", b"ALPHA!\n")
        .unwrap();
    store.delete_file(&commit, "/b.txt").unwrap();
    store
        .finish_commit(&commit, FinishOptions::default())
        .unwrap();
    commit.id.to_string()
}

/// Repo `big`: a first commit with `/seed.txt`, then a second with `n` files in `/many/`.
/// Returns the second commit's ID.
fn big_repo(c: &Console, n: usize) -> String {
    let store = c.engine.store();
    let big = RepoRef::new("big").unwrap();
    store.create_repo(&big, "").unwrap();
    let master = big.branch("master").unwrap();
    let first = store.start_commit(&master, "seed").unwrap().commit;
    store.put_file_bytes(&first, "/seed.txt", b"seed").unwrap();
    store
        .finish_commit(&first, FinishOptions::default())
        .unwrap();
    let second = store.start_commit(&master, "many").unwrap().commit;
    let files = (0..n).map(|i| (format!("/many/f{i:05}.txt"), &b"x"[..]));
    store.put_files(&second, files).unwrap();
    store
        .finish_commit(&second, FinishOptions::default())
        .unwrap();
    second.id.to_string()
}

/// The `href`s of the `<a>` elements whose class list starts with `class`, unescaped.
fn hrefs(body: &str, class: &str) -> Vec<String> {
    let needle = format!("class=\"{class}");
    body.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &body[i..];
            let tag_end = rest.find('>')?;
            let start = rest[..tag_end].find("href=\"")? + 6;
            let len = rest[start..].find('"')?;
            Some(rest[start..start + len].replace("&amp;", "&"))
        })
        .collect()
}

/// The part of `body` from the element with `id` to the end of its table.
fn table<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{body}"));
    let len = body[start..].find("</table>").unwrap();
    &body[start..start + len]
}

/// GETs `path`, expecting 200, and checks the page escapes everything.
async fn page(c: &Console, path: &str) -> String {
    let (status, body) = c.get(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}:\n{body}");
    assert_escaped(&body);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_page_lists_branches_and_commits_with_links() {
    let c = console().await;
    let first = head(&c, "raw");
    let second = second_raw_commit(&c);
    let body = page(&c, "/repos/raw").await;
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    let branches = table(&body, "branches");
    assert!(branches.contains(&format!("href=\"/repos/raw/commits/{second}\"")));
    assert!(branches.contains("href=\"/repos/raw?branch=master\""));
    let commits = table(&body, "commits");
    let links = hrefs(commits, "mono commit-link");
    let want = [second.clone(), first.clone()].map(|id| format!("/repos/raw/commits/{id}"));
    assert_eq!(links, want, "newest first");
    assert!(commits.contains("USER") && commits.contains("second"));
    assert!(body.contains("no pipeline"), "raw is an input repo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_repo_links_its_pipeline_provenance_and_job() {
    let c = console().await;
    let job = c.jobs("upper")[0].id.clone();
    let raw_head = head(&c, "raw");
    let body = page(&c, "/repos/upper").await;
    assert!(body.contains("href=\"/pipelines/upper\""), "{body}");
    assert!(table(&body, "branches").contains("href=\"/repos/raw?branch=master\""));
    let commits = table(&body, "commits");
    assert!(commits.contains(&format!("href=\"/repos/raw/commits/{raw_head}\"")));
    let commit = page(&c, &format!("/repos/upper/commits/{job}")).await;
    assert!(commit.contains(&format!("href=\"/pipelines/upper/jobs/{job}\"")));
    assert!(commit.contains(&format!("href=\"/repos/raw/commits/{raw_head}\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_history_pages_by_hundred() {
    let c = console().await;
    let store = c.engine.store();
    let repo = RepoRef::new("hist").unwrap();
    store.create_repo(&repo, "").unwrap();
    for i in 0..230 {
        let commit = store
            .start_commit(&repo.branch("master").unwrap(), &format!("c{i}"))
            .unwrap()
            .commit;
        store
            .finish_commit(&commit, FinishOptions::default())
            .unwrap();
    }
    let mut url = "/repos/hist".to_string();
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..4 {
        let body = page(&c, &url).await;
        let links = hrefs(table(&body, "commits"), "mono commit-link");
        sizes.push(links.len());
        seen.extend(links);
        match hrefs(&body, "next").first() {
            Some(next) => url = next.clone(),
            None => break,
        }
    }
    assert_eq!(sizes, [100, 100, 30]);
    seen.dedup();
    assert_eq!(seen.len(), 230, "every commit once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_page_browses_files_and_downloads_them() {
    let c = console().await;
    let id = second_raw_commit(&c);
    let body = page(&c, &format!("/repos/raw/commits/{id}")).await;
    let files = table(&body, "files");
    assert!(files.contains("x&lt;script&gt;alert.txt"), "{files}");
    let dirs = hrefs(files, "dir-link");
    assert_eq!(dirs, [format!("/repos/raw/commits/{id}?path=%2Fdir")]);
    let dir = page(&c, &dirs[0]).await;
    let sub = hrefs(table(&dir, "files"), "dir-link");
    assert_eq!(sub, [format!("/repos/raw/commits/{id}?path=%2Fdir%2Fsub")]);
    let inner = page(&c, &sub[0]).await;
    let downloads = hrefs(table(&inner, "files"), "file-link");
    assert_eq!(downloads.len(), 1, "{inner}");
    let (status, content) = c.get(&downloads[0]).await;
    assert_eq!(status, StatusCode::OK, "{content}");
    assert_eq!(content, "inner\n");
    // The hostile file downloads too, and its own view previews it escaped.
    let hostile = hrefs(files, "file-link")
        .into_iter()
        .find(|h| h.contains("script"))
        .unwrap();
    assert_eq!(c.get(&hostile).await.1, HOSTILE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_path_shows_its_facts_and_a_preview() {
    let c = console().await;
    let id = head(&c, "raw");
    let body = page(&c, &format!("/repos/raw/commits/{id}?path=/a.txt")).await;
    assert!(
        body.contains("<pre class=\"file-preview\">alpha\n</pre>"),
        "{body}"
    );
    assert_eq!(hrefs(&body, "download-link").len(), 1);
    let path = "/repos/raw/commits/master?path=%2Fx%3Cscript%3Ealert.txt";
    let hostile = page(&c, path).await;
    assert!(hostile.contains("&lt;script&gt;alert(1)&lt;/script&gt;</pre>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_name_resolves_to_its_head() {
    let c = console().await;
    let id = head(&c, "raw");
    let body = page(&c, "/repos/raw/commits/master").await;
    assert!(body.contains(&format!("Commit <span class=\"mono\">{id}</span>")));
    assert!(body.contains("resolves to this commit"));
    assert!(table(&body, "files").contains("a.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diff_shows_added_modified_and_deleted_files() {
    let c = console().await;
    let first = head(&c, "raw");
    let root = page(&c, &format!("/repos/raw/commits/{first}")).await;
    assert!(root.contains("no-parent"), "the first commit has no parent");
    assert!(!root.contains("id=\"diff\""));
    let id = second_raw_commit(&c);
    let body = page(&c, &format!("/repos/raw/commits/{id}")).await;
    let diff = table(&body, "diff");
    let row = |class: &str| {
        format!(
            "<tr class=\"{class}\"><td><span class=\"change {class}\">{class}</span></td>\
             <td><a class=\"mono\" href=\"/repos/raw/commits/"
        )
    };
    for (class, path) in [
        ("added", "/new.txt"),
        ("added", "/dir/sub/inner.txt"),
        ("modified", "/a.txt"),
        ("deleted", "/b.txt"),
    ] {
        let start = diff
            .find(&format!(">{path}</a>"))
            .unwrap_or_else(|| panic!("{path} not in the diff:\n{diff}"));
        let row_start = diff[..start].rfind("<tr").unwrap();
        assert!(
            diff[row_start..].starts_with(&row(class)),
            "{path} is {class}:\n{diff}"
        );
    }
    // A deleted file links to the parent, which has it.
    assert!(diff.contains(&format!("/repos/raw/commits/{first}?path=%2Fb.txt")));
    assert_eq!(diff.matches("<tr class=").count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_of_2500_files_pages_and_caps_its_diff() {
    let c = console().await;
    let id = big_repo(&c, 2_500);
    let mut url = format!("/repos/big/commits/{id}?path=/many");
    let mut names = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..5 {
        let body = page(&c, &url).await;
        let links = hrefs(table(&body, "files"), "file-link");
        sizes.push(links.len());
        names.extend(links);
        match hrefs(&body, "next").first() {
            Some(next) => url = next.clone(),
            None => break,
        }
    }
    assert_eq!(sizes, [1_000, 1_000, 500]);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 2_500, "every file once");
    let root = page(&c, &format!("/repos/big/commits/{id}")).await;
    assert_eq!(
        table(&root, "diff").matches("<tr class=\"added\"").count(),
        1_000
    );
    assert!(root.contains("Only the first 1000 changed files are shown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_404_pages_and_bad_input_400_pages() {
    let c = console().await;
    let id = head(&c, "raw");
    let with_id = |suffix: &str| format!("/repos/raw/commits/{id}{suffix}");
    let cases = [
        ("/repos/nope".to_string(), StatusCode::NOT_FOUND),
        (
            format!("/repos/raw/commits/{}", "0123456789abcdef".repeat(2)),
            StatusCode::NOT_FOUND,
        ),
        (
            "/repos/raw/commits/nobranch".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/repos/nope/commits/master".to_string(),
            StatusCode::NOT_FOUND,
        ),
        ("/repos/raw?branch=nope".to_string(), StatusCode::NOT_FOUND),
        (with_id("?path=/nope"), StatusCode::NOT_FOUND),
        (with_id("?path=/../etc"), StatusCode::BAD_REQUEST),
        (with_id("?path=/a*b"), StatusCode::BAD_REQUEST),
        (with_id("?path=%00"), StatusCode::BAD_REQUEST),
        ("/repos/raw?after=zzz".to_string(), StatusCode::BAD_REQUEST),
        ("/repos/bad%20name".to_string(), StatusCode::BAD_REQUEST),
        (
            "/repos/raw/commits/master%5E%5Ex".to_string(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, want) in cases {
        let (status, body) = c.get(&path).await;
        assert_eq!(status, want, "GET {path}:\n{body}");
        assert!(
            body.contains("class=\"error-page\""),
            "GET {path} is a page:\n{body}"
        );
        assert_escaped(&body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_sub_directories_pages_past_each_one() {
    let c = console().await;
    let store = c.engine.store();
    let repo = RepoRef::new("tree").unwrap();
    store.create_repo(&repo, "").unwrap();
    let commit = store
        .start_commit(&repo.branch("master").unwrap(), "")
        .unwrap()
        .commit;
    let mut files: Vec<(String, &[u8])> = (0..1_200)
        .flat_map(|i| [format!("/t/d{i:04}/x"), format!("/t/d{i:04}/y/z")])
        .map(|p| (p, &b"x"[..]))
        .collect();
    files.push(("/t/zz.txt".to_string(), b"last"));
    store.put_files(&commit, files).unwrap();
    store
        .finish_commit(&commit, FinishOptions::default())
        .unwrap();
    let id = commit.id.to_string();
    let first = page(&c, &format!("/repos/tree/commits/{id}?path=/t")).await;
    let dirs = hrefs(table(&first, "files"), "dir-link");
    assert_eq!(dirs.len(), 1_000);
    assert!(dirs[999].ends_with("%2Ft%2Fd0999"), "{}", dirs[999]);
    let next = hrefs(&first, "next");
    assert_eq!(
        next,
        [format!(
            "/repos/tree/commits/{id}?path=%2Ft&after=%2Ft%2Fd0999%2F"
        )]
    );
    let second = page(&c, &next[0]).await;
    let rest = table(&second, "files");
    let dirs = hrefs(rest, "dir-link");
    assert_eq!(dirs.len(), 200);
    assert!(dirs[0].ends_with("%2Ft%2Fd1000"), "{}", dirs[0]);
    assert_eq!(hrefs(rest, "file-link").len(), 1, "and /t/zz.txt");
    assert!(hrefs(&second, "next").is_empty());
}
