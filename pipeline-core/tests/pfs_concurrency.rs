//! Invariants under concurrency: two writers on different repos, a second writer on the
//! same open commit, and readers walking finished commits while writes go on.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pipeline_core::pfs::{FinishOptions, RepoRef, Store};

const COMMITS: usize = 12;
const FILES: usize = 8;

fn body(repo: &str, c: usize, i: usize) -> Vec<u8> {
    format!("{repo}-{c}-{i}-").repeat(50 + i * 10).into_bytes()
}

#[test]
fn writers_and_readers_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let repos = ["left", "right"];
    for r in repos {
        store.create_repo(&RepoRef::new(r).unwrap(), "").unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = repos
        .iter()
        .map(|&name| {
            let s = store.clone();
            std::thread::spawn(move || {
                let repo = RepoRef::new(name).unwrap();
                let b = repo.branch("master").unwrap();
                for c in 0..COMMITS {
                    let commit = s.start_commit(&b, &format!("{c}")).unwrap().commit;
                    // Half the files from a helper thread writing into the same commit.
                    let helper = {
                        let s = s.clone();
                        let commit = commit.clone();
                        std::thread::spawn(move || {
                            for i in (1..FILES).step_by(2) {
                                s.put_file_bytes(
                                    &commit,
                                    &format!("/c{c:02}/f{i}"),
                                    &body(name, c, i),
                                )
                                .unwrap();
                            }
                        })
                    };
                    for i in (0..FILES).step_by(2) {
                        s.put_file_bytes(&commit, &format!("/c{c:02}/f{i}"), &body(name, c, i))
                            .unwrap();
                    }
                    helper.join().unwrap();
                    s.finish_commit(&commit, FinishOptions::default()).unwrap();
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let s = store.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut checks = 0usize;
                while !done.load(Ordering::Relaxed) || checks == 0 {
                    for name in repos {
                        let repo = RepoRef::new(name).unwrap();
                        for info in s.list_commits(&repo, None, 0).unwrap() {
                            if !info.is_finished() {
                                continue;
                            }
                            let c: usize = info.description.parse().unwrap();
                            let files: Vec<_> = s
                                .list_file_recursive(&info.commit, "/")
                                .unwrap()
                                .map(|f| f.unwrap())
                                .collect();
                            // A finished commit is complete: all of its files and its parents'.
                            assert_eq!(files.len(), (c + 1) * FILES, "{name} commit {c}");
                            let f = &files[files.len() - 1];
                            let (_, mut r) = s.get_file(&info.commit, &f.path).unwrap();
                            let mut got = Vec::new();
                            r.read_to_end(&mut got).unwrap();
                            assert_eq!(got, body(name, c, FILES - 1));
                            checks += 1;
                        }
                    }
                }
                checks
            })
        })
        .collect();

    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    for name in repos {
        let repo = RepoRef::new(name).unwrap();
        let commits = store.list_commits(&repo, Some("master"), 0).unwrap();
        assert_eq!(commits.len(), COMMITS);
        assert!(commits.iter().all(|c| c.is_finished() && c.error.is_none()));
    }
}
