//! A local directory as a [`TreeSource`] (`pipectl list datum --input REPO=DIR`).

use std::collections::{HashMap, VecDeque};
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
/// - Two ways to open it:
///   - [`LocalTree::open`] hashes contents: opening hashes the whole tree once (directory
///     hashes must be known before their children are listed) and keeps only the directory
///     hashes; listing hashes each file again as it is streamed. Every problem in the tree
///     is found at opening.
///   - [`LocalTree::open_listing`] reads paths only, never a file's content (as
///     [`super::MemTree::from_listing`]: every hash is zero, every size 0). Datum IDs and
///     datum files are the same as with contents, which is all a preview shows. Opening reads
///     nothing; a problem in the tree is an error item of the listing that reaches it.
/// - Memory is O(directories + the widest directory's names) when hashing, O(depth × the
///   widest directory's names) for a listing; never O(files).
/// - The tree is read as it is at each call: don't change it while planning.
#[derive(Debug)]
pub struct LocalTree {
    root: PathBuf,
    canonical_root: PathBuf,
    /// With contents hashed: directory (repo path with trailing `/`, `/` for the root) →
    /// (hash, size), only for directories that hold at least one file. `None` for a listing.
    dirs: Option<HashMap<String, (ContentHash, u64)>>,
}

/// What a directory child is, after resolving permitted symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A regular file, or a permitted symlink: `Some` of the file it resolves to.
    File(Option<PathBuf>),
    Dir,
}

impl LocalTree {
    /// Opens `dir` and hashes its tree (every file is read).
    pub fn open(dir: impl AsRef<Path>) -> Result<LocalTree, SourceError> {
        let mut tree = Self::open_listing(dir)?;
        let mut dirs = HashMap::new();
        tree.hash_dir("/", &mut dirs)?;
        tree.dirs = Some(dirs);
        Ok(tree)
    }

    /// Opens `dir` for its paths only: no file is opened, now or when listing; hashes are
    /// zero and sizes 0 (see the type's docs).
    pub fn open_listing(dir: impl AsRef<Path>) -> Result<LocalTree, SourceError> {
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
        Ok(LocalTree {
            root,
            canonical_root,
            dirs: None,
        })
    }

    /// True when contents are hashed ([`LocalTree::open`]), false for a listing.
    pub fn hashes_contents(&self) -> bool {
        self.dirs.is_some()
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
            let os_name = item.file_name();
            let shown = || local.join(&os_name).to_string_lossy().into_owned();
            let Some(name) = os_name.to_str() else {
                return Err(SourceError::InvalidPath {
                    path: shown(),
                    reason: "names must be UTF-8",
                });
            };
            check_name(name).map_err(|reason| SourceError::InvalidPath {
                path: shown(),
                reason,
            })?;
            // The directory entry's own type: no stat where the file system reports it.
            let file_type = item.file_type().map_err(|e| io(&item.path(), e))?;
            let key = if file_type.is_symlink() {
                let target = self.resolve_symlink(&item.path())?;
                (name.to_string(), Kind::File(Some(target)))
            } else if file_type.is_dir() {
                (format!("{name}/"), Kind::Dir)
            } else if file_type.is_file() {
                (name.to_string(), Kind::File(None))
            } else {
                return Err(SourceError::NotAFile { path: shown() });
            };
            out.push(key);
        }
        // Names are unique, so an unstable sort gives the one order.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
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
    fn hash_dir(
        &self,
        dir: &str,
        dirs: &mut HashMap<String, (ContentHash, u64)>,
    ) -> Result<Option<(ContentHash, u64)>, SourceError> {
        let mut hasher = DirectoryHasher::new();
        let mut size = 0;
        let mut any = false;
        for (key, kind) in self.children(dir)? {
            let path = format!("{dir}{key}");
            let child = match kind {
                Kind::Dir => self.hash_dir(&path, dirs)?,
                Kind::File(target) => Some(self.hash_content(&path, target.as_deref())?),
            };
            if let Some((h, s)) = child {
                hasher.child(&key, &h);
                size += s;
                any = true;
            }
        }
        let info = any.then(|| (hasher.finish(), size));
        if let Some(info) = info {
            dirs.insert(dir.to_string(), info);
        }
        Ok(info)
    }

    /// True when hashing found no file below `dir` (a listing never knows it in advance).
    fn known_empty(&self, dir: &str) -> bool {
        self.dirs.as_ref().is_some_and(|d| !d.contains_key(dir))
    }

    /// The entry of a directory that holds a file.
    fn dir_entry(&self, path: &str) -> Entry {
        let (hash, size) = self
            .dirs
            .as_ref()
            .and_then(|d| d.get(path).copied())
            .unwrap_or_default();
        Entry {
            path: path.to_string(),
            hash,
            size,
        }
    }

    /// The `(hash, size)` of the file at repo path `path`, read from `target` for a symlink.
    fn hash_content(
        &self,
        path: &str,
        target: Option<&Path>,
    ) -> Result<(ContentHash, u64), SourceError> {
        match target {
            Some(target) => hash_file(target),
            None => hash_file(&self.local(path)),
        }
    }

    /// The entry of a file; its content is read only when hashing.
    fn file_entry(&self, path: String, target: Option<&Path>) -> Result<Entry, SourceError> {
        let (hash, size) = if self.hashes_contents() {
            self.hash_content(&path, target)?
        } else {
            (ContentHash::default(), 0)
        };
        Ok(Entry { path, hash, size })
    }

    /// True when every component of `dir` (a repo path ending in `/`) is a directory, not a
    /// symlink, with a PFS-valid name: a directory a walk would enter.
    fn is_walked_dir(&self, dir: &str) -> bool {
        let mut local = self.root.clone();
        dir.trim_matches('/').split('/').all(|name| {
            local.push(name);
            check_name(name).is_ok()
                && fs::symlink_metadata(&local).is_ok_and(|m| m.file_type().is_dir())
        })
    }

    /// Streams the entries below `dir` (`/` or a directory path), `dir` itself first unless
    /// it is the root; directories appear once a file below them is found.
    fn walk_from(&self, dir: &str) -> EntryIter<'_> {
        match self.children(dir) {
            Ok(mut children) => {
                children.reverse();
                Box::new(Walk {
                    tree: self,
                    stack: vec![Frame {
                        path: dir.to_string(),
                        rest: children,
                        listed: dir == "/",
                    }],
                    ready: VecDeque::new(),
                    failed: false,
                })
            }
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
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

/// One open directory of a [`Walk`].
struct Frame {
    /// Its repo path (`/` or ending in `/`).
    path: String,
    /// Its children not yet visited, in reverse order.
    rest: Vec<(String, Kind)>,
    /// True once its own entry was emitted (or, for the root, never to be).
    listed: bool,
}

/// Depth-first walk with sorted siblings; one frame per open directory. A directory is
/// emitted just before the first file found below it, so directories without files never
/// appear, whether or not hashing found them empty in advance.
struct Walk<'a> {
    tree: &'a LocalTree,
    stack: Vec<Frame>,
    /// Entries found and not yet returned: unlisted directories, then the file below them.
    ready: VecDeque<Entry>,
    failed: bool,
}

impl Walk<'_> {
    /// Queues the entries of the open directories not yet listed, outermost first.
    fn list_open_dirs(&mut self) {
        let first = self
            .stack
            .iter()
            .rposition(|f| f.listed)
            .map_or(0, |i| i + 1);
        for frame in &mut self.stack[first..] {
            self.ready.push_back(self.tree.dir_entry(&frame.path));
            frame.listed = true;
        }
    }

    /// The next file (with its directories queued before it), or the error that ends the walk.
    fn next_file(&mut self) -> Option<Result<Entry, SourceError>> {
        loop {
            let frame = self.stack.last_mut()?;
            let Some((key, kind)) = frame.rest.pop() else {
                self.stack.pop();
                continue;
            };
            let path = format!("{}{key}", frame.path);
            match kind {
                Kind::Dir if self.tree.known_empty(&path) => {}
                Kind::Dir => match self.tree.children(&path) {
                    Ok(mut children) => {
                        children.reverse();
                        self.stack.push(Frame {
                            path,
                            rest: children,
                            listed: false,
                        });
                    }
                    Err(e) => return Some(Err(e)),
                },
                Kind::File(target) => return Some(self.tree.file_entry(path, target.as_deref())),
            }
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.ready.pop_front() {
            return Some(Ok(entry));
        }
        if self.failed {
            return None;
        }
        match self.next_file()? {
            Ok(file) => {
                self.list_open_dirs();
                self.ready.push_back(file);
                self.ready.pop_front().map(Ok)
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl TreeSource for LocalTree {
    fn walk(&self) -> EntryIter<'_> {
        if self.known_empty("/") {
            return Box::new(std::iter::empty());
        }
        self.walk_from("/")
    }

    fn root(&self) -> Result<Option<Entry>, SourceError> {
        if self.hashes_contents() {
            return Ok((!self.known_empty("/")).then(|| self.dir_entry("/")));
        }
        // A listing: the root exists when the tree holds a file, i.e. lists anything.
        match self.walk().next() {
            None => Ok(None),
            Some(Ok(_)) => Ok(Some(self.dir_entry("/"))),
            Some(Err(e)) => Err(e),
        }
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
        let walked = if self.hashes_contents() {
            !self.known_empty(dir)
        } else {
            self.is_walked_dir(dir)
        };
        if !walked {
            return Box::new(std::iter::empty());
        }
        Box::new(self.walk_from(dir).filter(keep))
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
    fn listing_equals_mem_listing_and_skips_empty_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let files = [
            "a.png",
            "b.png",
            "dir/c.png",
            "dir/sub/d.png",
            "a-b",
            "e/only/f",
        ];
        for p in files {
            write(tmp.path(), p, p);
        }
        fs::create_dir_all(tmp.path().join("empty/nested")).unwrap();
        fs::create_dir_all(tmp.path().join("dir/sub/hollow")).unwrap();
        let local = LocalTree::open_listing(tmp.path()).unwrap();
        assert!(!local.hashes_contents());
        let mem = MemTree::from_listing(files.iter().map(|p| format!("/{p}"))).unwrap();
        let entries = |it: EntryIter<'_>| it.map(Result::unwrap).collect::<Vec<Entry>>();
        assert_eq!(entries(local.walk()), entries(mem.walk()));
        assert_eq!(local.root().unwrap(), mem.root().unwrap());
        for prefix in [
            "/dir/",
            "/dir/s",
            "/dir/sub/",
            "/e/",
            "/e/only/",
            "/a",
            "/empty/",
            "/nope/",
        ] {
            assert_eq!(
                entries(local.walk_prefix(prefix)),
                entries(mem.walk_prefix(prefix)),
                "{prefix}"
            );
        }
        // Hashing lists the same paths, with real hashes.
        let hashed = LocalTree::open(tmp.path()).unwrap();
        let paths = |t: &LocalTree| t.walk().map(|e| e.unwrap().path).collect::<Vec<_>>();
        assert_eq!(paths(&local), paths(&hashed));
    }

    #[test]
    fn listing_of_a_tree_without_files_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("x/y")).unwrap();
        let local = LocalTree::open_listing(tmp.path()).unwrap();
        assert_eq!(local.walk().count(), 0);
        assert!(local.root().unwrap().is_none());
        assert_eq!(local.walk_prefix("/x/").count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn listing_refuses_what_hashing_refuses_when_it_reaches_it() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(tmp.path(), "real", "R");
        write(outside.path(), "secret", "S");
        std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let local = LocalTree::open_listing(tmp.path()).unwrap();
        let paths: Vec<String> = local.walk().map(|e| e.unwrap().path).collect();
        assert_eq!(paths, ["/link", "/real"]);

        fs::create_dir(tmp.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), tmp.path().join("sub/escape"))
            .unwrap();
        let items: Vec<Result<Entry, SourceError>> = local.walk().collect();
        let err = items.last().unwrap().as_ref().unwrap_err();
        assert!(matches!(err, SourceError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("escape"), "{err}");
        assert!(local.walk_prefix("/sub/").any(|e| e.is_err()));
        fs::remove_file(tmp.path().join("sub/escape")).unwrap();

        write(tmp.path(), "sub/bad*name", "x");
        let err = local.walk().find_map(Result::err).unwrap();
        assert!(matches!(err, SourceError::InvalidPath { .. }), "{err}");
        // A directory reached through a symlink is not walked into.
        fs::remove_file(tmp.path().join("sub/bad*name")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("sub"), tmp.path().join("dlink")).unwrap();
        write(tmp.path(), "sub/ok", "x");
        assert_eq!(local.walk_prefix("/dlink/").count(), 0);
        assert!(local.walk().any(|e| e.is_err()));
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
