//! [`Store::check`]: verifying every object and every reference of a store (`pipectl fsck`).
//!
//! One pass over the objects (each hashed and compared with its name; the memo of verified
//! objects is refreshed as a side effect), then one consistent read of the metadata: every
//! file entry of every commit must name an intact object of the recorded size; every
//! commit's parent and provenance, every branch's head and provenance and every commit-set
//! entry must resolve. File entries are streamed; memory holds one hash and size per object
//! and one key per commit, never a path per file.
//!
//! With `fix`, damaged objects are moved into the store's `lost+found` (mode 0700, never
//! deleted): the file entries naming them then report a missing object until the right
//! content is put again (any put of it, in any repo, repairs every file that names it).
//! Broken references are reported, not changed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{ObjectProblem, Result};
use super::meta::{MetaRead, Table};
use super::object::ObjectState;
use super::records::{CommitRecord, decode};
use super::store::{ScanAll, Store, all_branches};
use super::tree::Entry;
use crate::hash::ContentHash;

/// One problem [`Store::check`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckProblem {
    /// A stored object whose content does not hash to its name.
    Object {
        /// The object's name (hex hash).
        object: String,
        /// Its size in bytes.
        size: u64,
        /// BLAKE3 of what it holds (hex).
        found: String,
        /// Where `fix` moved it, if it did.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        moved_to: Option<PathBuf>,
    },
    /// A file entry whose object is missing, damaged or of another size.
    File {
        /// `project/name`.
        repo: String,
        /// Commit ID.
        commit: String,
        /// File path.
        path: String,
        /// The object the entry names (hex hash).
        object: String,
        /// What is wrong with it.
        detail: ObjectProblem,
    },
    /// A reference that does not resolve.
    Ref {
        /// Who refers (`repo@commit`, `branch repo@name`, `commit set ID`).
        from: String,
        /// What kind of reference (`parent`, `stack bottom`, `tree below`, `provenance`,
        /// `head`, `branch provenance`, `commit`).
        kind: String,
        /// What it names.
        to: String,
    },
    /// A metadata record that cannot be decoded.
    Record {
        /// The table.
        table: String,
        /// Its key (lossy text).
        key: String,
        /// Why it cannot be used.
        reason: String,
    },
}

impl std::fmt::Display for CheckProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckProblem::Object {
                object,
                size,
                found,
                moved_to,
            } => {
                write!(
                    f,
                    "object {object} ({size} bytes) holds content hashing to {found}"
                )?;
                match moved_to {
                    Some(p) => write!(f, "; moved to {}", p.display()),
                    None => Ok(()),
                }
            }
            CheckProblem::File {
                repo,
                commit,
                path,
                object,
                detail,
            } => write!(
                f,
                "file {path} in {repo}@{commit}: object {object} {detail}"
            ),
            CheckProblem::Ref { from, kind, to } => write!(f, "{from}: {kind} {to} does not exist"),
            CheckProblem::Record { table, key, reason } => {
                write!(f, "record {key:?} in table {table}: {reason}")
            }
        }
    }
}

/// What [`Store::check`] looked at and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckReport {
    /// Objects verified.
    pub objects: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// File entries checked.
    pub files: u64,
    /// Commits checked.
    pub commits: u64,
    /// Damaged objects moved aside (with `fix`).
    pub moved: u64,
    /// Every problem, objects first, then files, then references.
    pub problems: Vec<CheckProblem>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Objects by hash: the size of an intact one, or the problem of a bad one.
type ObjectTable = HashMap<ContentHash, std::result::Result<u64, ObjectProblem>>;

impl Store {
    /// Verifies every object (size and hash) and every reference (file entries to objects,
    /// commits to parents and provenance, branches to heads and provenance, commit sets to
    /// commits); with `fix`, moves damaged objects aside so that a put of the right content
    /// repairs them (see the module docs). Errors only when the store cannot be read; what
    /// is wrong with it is in the report.
    pub fn check(&self, fix: bool) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let objects = self.check_objects(fix, &mut report)?;
        let read = self.inner.meta.read()?;
        let commits = check_commits(&*read, &mut report)?;
        check_files(&*read, &objects, &commits, &mut report)?;
        check_branches(&*read, &commits, &mut report)?;
        check_commit_sets(&*read, &commits, &mut report)?;
        Ok(report)
    }

    fn check_objects(&self, fix: bool, report: &mut CheckReport) -> Result<ObjectTable> {
        let mut table = ObjectTable::new();
        for listed in self.inner.objects.list() {
            let hash = listed?.hash;
            self.inner.objects.forget(&hash);
            match self.inner.objects.verify(&hash)? {
                ObjectState::Missing => {}
                ObjectState::Intact { size } => {
                    report.objects += 1;
                    report.bytes += size;
                    table.insert(hash, Ok(size));
                }
                ObjectState::Corrupt { size, found } => {
                    report.objects += 1;
                    report.bytes += size;
                    let moved_to = if fix {
                        self.inner.objects.quarantine(&hash)?
                    } else {
                        None
                    };
                    report.moved += u64::from(moved_to.is_some());
                    table.insert(hash, Err(ObjectProblem::Hash { found }));
                    report.problems.push(CheckProblem::Object {
                        object: hash.to_hex(),
                        size,
                        found: found.to_hex(),
                        moved_to,
                    });
                }
            }
        }
        Ok(table)
    }
}

fn lossy(k: &[u8]) -> String {
    String::from_utf8_lossy(k).replace('\0', "@")
}

/// Decodes every commit; checks parents and provenance. Returns every commit key.
fn check_commits(read: &dyn MetaRead, report: &mut CheckReport) -> Result<HashSet<Vec<u8>>> {
    let mut keys = HashSet::new();
    let mut records = Vec::new();
    for kv in read.scan(Table::Commits, &[], &[0xff])? {
        let (k, v) = kv?;
        match decode::<CommitRecord>("commit record", &v) {
            Ok(rec) => records.push(rec),
            Err(e) => report.problems.push(CheckProblem::Record {
                table: Table::Commits.name().to_string(),
                key: lossy(&k),
                reason: e.to_string(),
            }),
        }
        keys.insert(k);
    }
    let repos: HashSet<Vec<u8>> = read
        .scan_all(Table::Repos)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let key = |repo: &super::model::RepoRef, id: &str| super::records::sub_key(repo, id);
    for rec in records {
        report.commits += 1;
        let info = &rec.info;
        let from = info.commit.to_string();
        let layer_refs = [
            ("parent", info.parent.as_ref().map(|p| p.as_str())),
            ("stack bottom", rec.merged_over.as_deref()),
            ("tree below", rec.same_tree_as.as_deref()),
        ];
        for (kind, to) in layer_refs {
            if let Some(to) = to
                && !keys.contains(&key(&info.commit.repo, to))
            {
                report.problems.push(CheckProblem::Ref {
                    from: from.clone(),
                    kind: kind.to_string(),
                    to: format!("{}@{to}", info.commit.repo),
                });
            }
        }
        for p in &info.direct_provenance {
            // Provenance into a repo deleted with --force is expected to dangle.
            let repo_exists = repos.contains(&super::records::repo_key(&p.repo));
            if repo_exists && !keys.contains(&key(&p.repo, p.id.as_str())) {
                report.problems.push(CheckProblem::Ref {
                    from: from.clone(),
                    kind: "provenance".to_string(),
                    to: p.to_string(),
                });
            }
        }
    }
    Ok(keys)
}

/// Streams every file entry: its commit exists, its object is intact and of its size.
fn check_files(
    read: &dyn MetaRead,
    objects: &ObjectTable,
    commits: &HashSet<Vec<u8>>,
    report: &mut CheckReport,
) -> Result<()> {
    let mut last_commit: Option<Vec<u8>> = None;
    for kv in read.scan(Table::Files, &[], &[0xff])? {
        let (k, v) = kv?;
        let mut parts = k.splitn(3, |b| *b == 0);
        let (Some(repo), Some(id), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            report.problems.push(CheckProblem::Record {
                table: Table::Files.name().to_string(),
                key: lossy(&k),
                reason: "not repo\\0commit\\0path".into(),
            });
            continue;
        };
        // A commit's kept delta (`id~`) belongs to the commit.
        let id = super::tree::commit_of_layer(id);
        let commit_key = k.get(..repo.len() + 1 + id.len()).unwrap_or_default();
        if last_commit.as_deref() != Some(commit_key) {
            if !commits.contains(commit_key) {
                report.problems.push(CheckProblem::Ref {
                    from: format!("files of {}", lossy(commit_key)),
                    kind: "commit".to_string(),
                    to: lossy(commit_key),
                });
            }
            last_commit = Some(commit_key.to_vec());
        }
        let (size, hash) = match Entry::decode(&v) {
            Ok(Entry::Tombstone) => continue,
            Ok(Entry::File { size, hash }) => (size, hash),
            Err(e) => {
                report.problems.push(CheckProblem::Record {
                    table: Table::Files.name().to_string(),
                    key: lossy(&k),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        report.files += 1;
        let detail = match objects.get(&hash) {
            None => ObjectProblem::Missing,
            Some(Err(p)) => *p,
            Some(Ok(found)) if *found != size => ObjectProblem::Size {
                expected: size,
                found: *found,
            },
            Some(Ok(_)) => continue,
        };
        report.problems.push(CheckProblem::File {
            repo: String::from_utf8_lossy(repo).into_owned(),
            commit: String::from_utf8_lossy(id).into_owned(),
            path: String::from_utf8_lossy(path).into_owned(),
            object: hash.to_hex(),
            detail,
        });
    }
    Ok(())
}

/// Every branch's head and provenance resolve.
fn check_branches(
    read: &dyn MetaRead,
    commits: &HashSet<Vec<u8>>,
    report: &mut CheckReport,
) -> Result<()> {
    let all = match all_branches(read) {
        Ok(all) => all,
        Err(e) => {
            report.problems.push(CheckProblem::Record {
                table: Table::Branches.name().to_string(),
                key: String::new(),
                reason: e.to_string(),
            });
            return Ok(());
        }
    };
    for (b, rec) in &all {
        let from = format!("branch {b}");
        if !rec.head.is_empty() && !commits.contains(&super::records::sub_key(&b.repo, &rec.head)) {
            report.problems.push(CheckProblem::Ref {
                from: from.clone(),
                kind: "head".to_string(),
                to: format!("{}@{}", b.repo, rec.head),
            });
        }
        for p in &rec.direct_provenance {
            if !all.contains_key(p) {
                report.problems.push(CheckProblem::Ref {
                    from: from.clone(),
                    kind: "branch provenance".to_string(),
                    to: p.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Every commit-set index entry names an existing commit.
fn check_commit_sets(
    read: &dyn MetaRead,
    commits: &HashSet<Vec<u8>>,
    report: &mut CheckReport,
) -> Result<()> {
    for kv in read.scan(Table::CommitSets, &[], &[0xff])? {
        let (k, _) = kv?;
        let Some(split) = k.iter().position(|b| *b == 0) else {
            continue;
        };
        let (id, repo) = (
            k.get(..split).unwrap_or_default(),
            k.get(split + 1..).unwrap_or_default(),
        );
        let mut commit_key = repo.to_vec();
        commit_key.push(0);
        commit_key.extend_from_slice(id);
        if !commits.contains(&commit_key) {
            report.problems.push(CheckProblem::Ref {
                from: format!("commit set {}", String::from_utf8_lossy(id)),
                kind: "commit".to_string(),
                to: lossy(&commit_key),
            });
        }
    }
    Ok(())
}
