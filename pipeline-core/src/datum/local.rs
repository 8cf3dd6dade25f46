//! A local directory as a [`TreeSource`] (`pipectl list datum --input REPO=DIR`).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::source::{Entry, EntryIter, SourceError, TreeSource, check_name};
use crate::hash::{ContentHash, DirectoryHasher, FileHasher};

/// A local directory read as the head commit of a repo.
///
/// - Regular files are files; directories holding no file (even nested) do not exist, as in
///   PFS.
/// - **Symlinks are never followed out of the directory.** A symlink whose target (fully
///   resolved) is a regular file inside the directory is read as a file with the target's
///   content. Any other symlink (to a directory, outside the directory, dangling) is an error
///   naming it, as is a socket, FIFO or device, or a name PFS cannot store (non-UTF-8,
///   non-printable, glob characters ``*?[]{}!()@+^``).
/// - Opening hashes the whole tree once (directory hashes must be known before their children
///   are listed) and keeps only the directory hashes; listing hashes each file again as it is
///   streamed. Memory is O(directories + the widest directory's names), not O(files).
/// - The tree is read as it is at each call: don't change it while planning.
#[derive(Debug)]
pub struct LocalTree {
    root: PathBuf,
    canonical_root: PathBuf,
    /// Directory (repo path with trailing `/`, `/` for the root) → (hash, size), only for
    /// directories that hold at least one file.
    dirs: HashMap<String, (ContentHash, u64)>,
}

/// What a directory child is, after resolving permitted symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File(PathBuf),
    Dir,
}

impl LocalTree {
    /// Opens `dir` and hashes its tree.
    pub fn open(dir: impl AsRef<Path>) -> Result<LocalTree, SourceError> {
        let root = dir.as_ref().to_path_buf();
        let canonical_root = fs::canonicalize(&root).map_err(|source| io(&root, source))?;
        if !canonical_root.is_dir() {
            return Err(io(
                &root,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "input must be a directory",
                ),
            ));
        }
        let mut tree = LocalTree {
            root,
            canonical_root,
            dirs: HashMap::new(),
        };
        tree.hash_dir("/")?;
        Ok(tree)
    }

    fn local(&self, repo_path: &str) -> PathBuf {
        self.root.join(repo_path.trim_start_matches('/'))
    }

    /// Sorted children of a directory: (name with `/` for directories, kind).
    fn children(&self, dir: &str) -> Result<Vec<(String, Kind)>, SourceError> {
        let local = self.local(dir);
        let mut out = Vec::new();
        for item in fs::read_dir(&local).map_err(|e| io(&local, e))? {
            let item = item.map_err(|e| io(&local, e))?;
            let path = item.path();
            let Some(name) = item.file_name().to_str().map(str::to_string) else {
                return Err(SourceError::InvalidPath {
                    path: path.to_string_lossy().into_owned(),
                    reason: "names must be UTF-8",
                });
            };
            check_name(&name).map_err(|reason| SourceError::InvalidPath {
                path: path.to_string_lossy().into_owned(),
                reason,
            })?;
            let meta = fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
            let kind = if meta.file_type().is_symlink() {
                Kind::File(self.resolve_symlink(&path)?)
            } else if meta.is_dir() {
                Kind::Dir
            } else if meta.is_file() {
                Kind::File(path.clone())
            } else {
                return Err(SourceError::NotAFile {
                    path: path.to_string_lossy().into_owned(),
                });
            };
            let key = if kind == Kind::Dir {
                format!("{name}/")
            } else {
                name
            };
            out.push((key, kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn resolve_symlink(&self, link: &Path) -> Result<PathBuf, SourceError> {
        let refuse = |reason| SourceError::Symlink {
            path: link.to_string_lossy().into_owned(),
            reason,
        };
        let target = fs::canonicalize(link).map_err(|_| refuse("its target does not exist"))?;
        if !target.starts_with(&self.canonical_root) {
            return Err(refuse("it points outside the input directory"));
        }
        let meta = fs::metadata(&target).map_err(|e| io(&target, e))?;
        if !meta.is_file() {
            return Err(refuse("it does not point to a regular file"));
        }
        Ok(target)
    }

    /// Post-order hash of `dir` (repo path ending in `/`); records non-empty directories.
    fn hash_dir(&mut self, dir: &str) -> Result<Option<(ContentHash, u64)>, SourceError> {
        let mut hasher = DirectoryHasher::new();
        let mut size = 0;
        let mut any = false;
        for (key, kind) in self.children(dir)? {
            let child = match kind {
                Kind::Dir => self.hash_dir(&format!("{dir}{key}"))?,
                Kind::File(local) => Some(hash_file(&local)?),
            };
            if let Some((h, s)) = child {
                hasher.child(&key, &h);
                size += s;
                any = true;
            }
        }
        let info = any.then(|| (hasher.finish(), size));
        if let Some(info) = info {
            self.dirs.insert(dir.to_string(), info);
        }
        Ok(info)
    }
}

fn io(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.to_string_lossy().into_owned(),
        source,
    }
}

fn hash_file(path: &Path) -> Result<(ContentHash, u64), SourceError> {
    let mut f = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut hasher = FileHasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finish(), size))
}

/// Depth-first walk with sorted siblings; one frame per open directory.
struct Walk<'a> {
    tree: &'a LocalTree,
    /// (directory repo path, its remaining children in reverse order).
    stack: Vec<(String, Vec<(String, Kind)>)>,
    failed: bool,
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let (dir, rest) = self.stack.last_mut()?;
            let Some((key, kind)) = rest.pop() else {
                self.stack.pop();
                continue;
            };
            let path = format!("{dir}{key}");
            match kind {
                Kind::Dir => {
                    let Some(&(hash, size)) = self.tree.dirs.get(&path) else {
                        continue; // holds no file: does not exist in PFS
                    };
                    match self.tree.children(&path) {
                        Ok(mut children) => {
                            children.reverse();
                            self.stack.push((path.clone(), children));
                        }
                        Err(e) => {
                            self.failed = true;
                            return Some(Err(e));
                        }
                    }
                    return Some(Ok(Entry { path, hash, size }));
                }
                Kind::File(local) => {
                    return Some(match hash_file(&local) {
                        Ok((hash, size)) => Ok(Entry { path, hash, size }),
                        Err(e) => {
                            self.failed = true;
                            Err(e)
                        }
                    });
                }
            }
        }
    }
}

impl TreeSource for LocalTree {
    fn walk(&self) -> EntryIter<'_> {
        if !self.dirs.contains_key("/") {
            return Box::new(std::iter::empty());
        }
        match self.children("/") {
            Ok(mut children) => {
                children.reverse();
                Box::new(Walk {
                    tree: self,
                    stack: vec![("/".to_string(), children)],
                    failed: false,
                })
            }
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn root(&self) -> Result<Option<Entry>, SourceError> {
        Ok(self.dirs.get("/").map(|&(hash, size)| Entry {
            path: "/".into(),
            hash,
            size,
        }))
    }

    fn walk_prefix<'a>(&'a self, prefix: &'a str) -> EntryIter<'a> {
        let keep = move |e: &Result<Entry, SourceError>| match e {
            Ok(e) => e.path.starts_with(prefix),
            Err(_) => true,
        };
        // Start at the deepest directory that contains every path with this prefix.
        let dir = prefix.rfind('/').map_or("/", |i| &prefix[..=i]);
        if dir == "/" {
            return Box::new(self.walk().filter(keep));
        }
        let Some(&(hash, size)) = self.dirs.get(dir) else {
            return Box::new(std::iter::empty());
        };
        match self.children(dir) {
            Ok(mut children) => {
                children.reverse();
                let head = std::iter::once(Ok(Entry {
                    path: dir.to_string(),
                    hash,
                    size,
                }));
                let walk = Walk {
                    tree: self,
                    stack: vec![(dir.to_string(), children)],
                    failed: false,
                };
                Box::new(head.chain(walk).filter(keep))
            }
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::MemTree;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    #[test]
    fn local_tree_equals_mem_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let files = [
            ("a.png", "A"),
            ("b.png", "B"),
            ("dir/c.png", "C"),
            ("dir/sub/d.png", "D"),
            ("a-b", "x"),
        ];
        for (p, c) in files {
            write(tmp.path(), p, c);
        }
        fs::create_dir_all(tmp.path().join("empty/nested")).unwrap();
        let local = LocalTree::open(tmp.path()).unwrap();
        assert_eq!(
            crate::datum::conformance::check(&local, 100),
            Vec::<String>::new()
        );
        let mem = MemTree::from_files(files.iter().map(|(p, c)| (format!("/{p}"), *c))).unwrap();
        let l: Vec<Entry> = local.walk().map(Result::unwrap).collect();
        let m: Vec<Entry> = mem.walk().map(Result::unwrap).collect();
        assert_eq!(l, m);
        assert_eq!(local.root().unwrap(), mem.root().unwrap());
        let l: Vec<Entry> = local.walk_prefix("/dir/").map(Result::unwrap).collect();
        let m: Vec<Entry> = mem.walk_prefix("/dir/").map(Result::unwrap).collect();
        assert_eq!(l, m);
        let l: Vec<Entry> = local.walk_prefix("/dir/s").map(Result::unwrap).collect();
        assert_eq!(l.len(), 2);
        assert_eq!(local.walk_prefix("/a").count(), 2);
        assert_eq!(local.walk_prefix("/nope/").count(), 0);
    }

    #[test]
    fn empty_directory_is_an_empty_tree() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("x/y")).unwrap();
        let local = LocalTree::open(tmp.path()).unwrap();
        assert_eq!(local.walk().count(), 0);
        assert!(local.root().unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_inside_are_files_outside_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(tmp.path(), "real", "R");
        write(outside.path(), "secret", "S");
        std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let local = LocalTree::open(tmp.path()).unwrap();
        let e: Vec<Entry> = local.walk().map(Result::unwrap).collect();
        assert_eq!(e[0].path, "/link");
        assert_eq!(e[0].hash, e[1].hash);

        std::os::unix::fs::symlink(outside.path().join("secret"), tmp.path().join("escape"))
            .unwrap();
        let err = LocalTree::open(tmp.path()).unwrap_err();
        assert!(matches!(err, SourceError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("escape"), "{err}");
        fs::remove_file(tmp.path().join("escape")).unwrap();

        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("loop")).unwrap();
        assert!(matches!(
            LocalTree::open(tmp.path()),
            Err(SourceError::Symlink { .. })
        ));
    }

    #[test]
    fn invalid_names_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "bad*name", "x");
        let err = LocalTree::open(tmp.path()).unwrap_err();
        assert!(matches!(err, SourceError::InvalidPath { .. }), "{err}");
        assert!(LocalTree::open(tmp.path().join("missing")).is_err());
    }
}
