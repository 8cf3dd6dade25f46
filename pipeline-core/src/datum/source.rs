//! The tree-source trait datum planning reads inputs through, and two in-memory sources.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;

use crate::hash::ContentHash;
#[cfg(feature = "hashing")]
use crate::hash::DirectoryHasher;

/// One entry of a tree listing: a file, or a directory (path ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// Absolute path inside the repo: `/a.png`, `/dir/` (directories keep the trailing `/`).
    pub path: String,
    /// Content hash: [`ContentHash::of_bytes`] for files, a [`DirectoryHasher`] over the
    /// immediate children (names included) for directories.
    pub hash: ContentHash,
    /// Bytes: a file's length, or the total of the files below a directory.
    pub size: u64,
}

impl Entry {
    /// True for a directory entry (path ends in `/`).
    pub fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }
}

/// A streaming listing; errors are items so that a source can fail part-way.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<Entry, SourceError>> + Send + 'a>;

/// Reading a tree failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// An I/O error on a path of the tree.
    #[error("reading {path}")]
    Io {
        /// The local path (or repo path) being read.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A symlink that is not followed (it leaves the input directory, points to a directory,
    /// or dangles).
    #[error("symlink {path} is not followed: {reason}")]
    Symlink {
        /// The symlink's local path.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A name that cannot be a PFS path (non-UTF-8, glob characters, non-printable ASCII,
    /// `.`/`..`, a file and a directory with the same path).
    #[error("path {path:?} cannot be represented in PFS: {reason}")]
    InvalidPath {
        /// The offending path (lossy UTF-8).
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry that is neither a regular file nor a directory (socket, FIFO, device).
    #[error("{path} is not a regular file or directory")]
    NotAFile {
        /// The local path.
        path: String,
    },
    /// Any other backend failure (for sources outside this crate, e.g. a store commit).
    #[error("{context}")]
    Backend {
        /// What was being read (repo, commit, path).
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// A read-only tree of files (one repo at one commit), as datum planning sees it.
///
/// The contract, which every implementation must keep:
/// - [`TreeSource::walk`] streams **every file and every directory except the root**, in
///   byte-wise lexicographic order of the path, directories with a trailing `/`. Directories
///   exist only as parents of files (no empty directories), so an empty tree lists nothing.
///   Because a directory's path is its name plus `/`, this is depth-first pre-order with
///   siblings sorted by that key: `/a-b` < `/a/` < `/a/x` < `/a0`.
/// - Each entry carries its content hash ([`crate::hash`]: BLAKE3 of a file's bytes; a
///   directory hash over its children's names and hashes) and its size.
/// - [`TreeSource::root`] describes `/` itself (the datum of glob `/`), or `None` when the
///   tree has no files.
/// - [`TreeSource::walk_prefix`] is the same listing restricted to paths starting with a
///   prefix; the default filters [`TreeSource::walk`], sources with an index should seek.
///
/// Listings must be repeatable (cross re-walks its inner children instead of holding them)
/// and cheap to start. Implementations here: [`MemTree`], [`SyntheticTree`] and
/// [`super::LocalTree`] (a local directory). A versioned store implements it over a commit.
pub trait TreeSource: Send + Sync {
    /// Every entry except the root, lexicographic by path.
    fn walk(&self) -> EntryIter<'_>;

    /// The root directory `/` (hash and size of the whole tree), `None` for an empty tree.
    fn root(&self) -> Result<Option<Entry>, SourceError>;

    /// The entry at `path` (`/a` finds the file `/a` or the directory `/a/`), `None` when
    /// there is none. The default walks; a store answers by a lookup.
    fn entry(&self, path: &str) -> Result<Option<Entry>, SourceError> {
        let dir = format!("{}/", path.trim_end_matches('/'));
        let file = dir.trim_end_matches('/');
        for e in self.walk() {
            let e = e?;
            if e.path == file || e.path == dir {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Entries whose path starts with `prefix` (e.g. `/dir/`), lexicographic by path.
    fn walk_prefix<'a>(&'a self, prefix: &'a str) -> EntryIter<'a> {
        Box::new(
            self.walk()
                .skip_while(move |e| matches!(e, Ok(e) if e.path.as_str() < prefix))
                .take_while(move |e| {
                    e.is_err() || matches!(e, Ok(e) if e.path.starts_with(prefix))
                }),
        )
    }
}

impl<T: TreeSource + ?Sized> TreeSource for std::sync::Arc<T> {
    fn walk(&self) -> EntryIter<'_> {
        (**self).walk()
    }
    fn entry(&self, path: &str) -> Result<Option<Entry>, SourceError> {
        (**self).entry(path)
    }
    fn root(&self) -> Result<Option<Entry>, SourceError> {
        (**self).root()
    }
    fn walk_prefix<'a>(&'a self, prefix: &'a str) -> EntryIter<'a> {
        (**self).walk_prefix(prefix)
    }
}

impl<T: TreeSource + ?Sized> TreeSource for Box<T> {
    fn walk(&self) -> EntryIter<'_> {
        (**self).walk()
    }
    fn entry(&self, path: &str) -> Result<Option<Entry>, SourceError> {
        (**self).entry(path)
    }
    fn root(&self) -> Result<Option<Entry>, SourceError> {
        (**self).root()
    }
    fn walk_prefix<'a>(&'a self, prefix: &'a str) -> EntryIter<'a> {
        (**self).walk_prefix(prefix)
    }
}

/// Checks one path component against PFS's file-name rules (reference §2.1): printable ASCII,
/// none of ``*?[]{}!()@+^``, not `.` or `..`, not empty.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty path component");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not allowed as path components");
    }
    // One pass over the bytes (every listed name goes through here); the first rule broken,
    // in the order written above, is the one reported.
    let (mut unprintable, mut glob, mut slash) = (false, false, false);
    for b in name.bytes() {
        match b {
            b'*' | b'?' | b'[' | b']' | b'{' | b'}' | b'!' | b'(' | b')' | b'@' | b'+' | b'^' => {
                glob = true
            }
            b'/' => slash = true,
            b' '..=b'~' => {}
            _ => unprintable = true,
        }
    }
    if unprintable {
        return Err("names must be printable ASCII");
    }
    if glob {
        return Err("names must not contain any of *?[]{}!()@+^ (glob characters)");
    }
    if slash {
        return Err("'/' inside a name");
    }
    Ok(())
}

/// A tree held in memory, built from `(path, content)` pairs. For tests and small inputs.
///
/// ```
/// use pipeline_core::datum::{MemTree, TreeSource};
/// let tree = MemTree::from_files([("/a.png", "A"), ("/dir/c.png", "C")]).unwrap();
/// let paths: Vec<String> = tree.walk().map(|e| e.unwrap().path).collect();
/// assert_eq!(paths, ["/a.png", "/dir/", "/dir/c.png"]);
/// ```
#[derive(Clone, Default)]
pub struct MemTree {
    entries: Vec<Entry>,
    root: Option<Entry>,
}

impl fmt::Debug for MemTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemTree")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl MemTree {
    /// An empty tree (an empty commit).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a tree from a listing of file paths alone, without contents: every hash is
    /// [`ContentHash::default`] (zero) and every size 0, as with
    /// `SyntheticTree::without_hashes`. Datum IDs and datum files come out as with real
    /// contents; datum hashes cannot tell contents apart. Needs no hashing, so it is how a
    /// sans-I/O caller (`default-features = false`) plans datums over a list of paths.
    ///
    /// ```
    /// use pipeline_core::datum::{MemTree, TreeSource};
    /// let tree = MemTree::from_listing(["/a.png", "/dir/c.png"]).unwrap();
    /// let paths: Vec<String> = tree.walk().map(|e| e.unwrap().path).collect();
    /// assert_eq!(paths, ["/a.png", "/dir/", "/dir/c.png"]);
    /// ```
    pub fn from_listing<P: AsRef<str>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<MemTree, SourceError> {
        let mut files = BTreeMap::new();
        for p in paths {
            let path = p.as_ref();
            check_path(path)?;
            files.insert(path.to_string(), (ContentHash::default(), 0));
        }
        Self::from_hashed_files(files, |_| ContentHash::default())
    }

    /// Builds a tree from files. Paths are absolute (`/a/b.txt`), with PFS-valid names.
    #[cfg(feature = "hashing")]
    pub fn from_files<P, C, I>(files: I) -> Result<MemTree, SourceError>
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        let mut files_map = BTreeMap::new();
        for (p, c) in files {
            let path = p.as_ref();
            check_path(path)?;
            let c = c.as_ref();
            files_map.insert(path.to_string(), (ContentHash::of_bytes(c), c.len() as u64));
        }
        Self::from_hashed_files(files_map, |children| {
            let mut hasher = crate::hash::DirectoryHasher::new();
            for (name, hash) in children {
                hasher.child(name, hash);
            }
            hasher.finish()
        })
    }

    /// Builds a tree from files' `(hash, size)` by path, deriving the directories; `dir_hash`
    /// hashes one directory from its children's names (directories with a trailing `/`) and
    /// hashes, in name order.
    fn from_hashed_files(
        files: BTreeMap<String, (ContentHash, u64)>,
        dir_hash: impl Fn(&[(&str, ContentHash)]) -> ContentHash,
    ) -> Result<MemTree, SourceError> {
        let children = children_by_dir(&files)?;
        // Directory hashes bottom-up: longer paths first.
        let mut dir_info: BTreeMap<String, (ContentHash, u64)> = BTreeMap::new();
        let mut dirs: Vec<&String> = children.keys().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
        for dir in dirs {
            let mut hashes = Vec::with_capacity(children[dir].len());
            let mut size = 0;
            for (name, file) in &children[dir] {
                let (h, s) = match file {
                    Some(hs) => *hs,
                    None => dir_info
                        .get(&format!("{dir}{name}"))
                        .copied()
                        .unwrap_or_default(),
                };
                hashes.push((name.as_str(), h));
                size += s;
            }
            dir_info.insert(dir.clone(), (dir_hash(&hashes), size));
        }
        let root = dir_info.remove("/").map(|(hash, size)| Entry {
            path: "/".into(),
            hash,
            size,
        });
        let mut entries: Vec<Entry> = files
            .into_iter()
            .chain(dir_info)
            .map(|(path, (hash, size))| Entry { path, hash, size })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(MemTree { entries, root })
    }

    /// Builds a tree whose files' contents are their own paths (handy in tests).
    #[cfg(feature = "hashing")]
    pub fn from_paths<P: AsRef<str>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<MemTree, SourceError> {
        let files: Vec<(String, String)> = paths
            .into_iter()
            .map(|p| (p.as_ref().to_string(), p.as_ref().to_string()))
            .collect();
        Self::from_files(files)
    }

    /// Number of entries (files and directories, root excluded).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty tree.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Children per directory (`/` for the root) of a set of file paths: names (directories with
/// a trailing `/`) to the file's `(hash, size)`, or `None` for a directory.
type ChildrenByDir = BTreeMap<String, BTreeMap<String, Option<(ContentHash, u64)>>>;

/// Checks that `path` is absolute with PFS-valid names.
fn check_path(path: &str) -> Result<(), SourceError> {
    let invalid = |reason| SourceError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| invalid("paths must start with '/'"))?;
    for comp in rest.split('/') {
        check_name(comp).map_err(invalid)?;
    }
    Ok(())
}

/// Groups files under their parent directories, refusing a file that is also a directory.
fn children_by_dir(
    files: &BTreeMap<String, (ContentHash, u64)>,
) -> Result<ChildrenByDir, SourceError> {
    let mut children = ChildrenByDir::new();
    for (path, &(h, s)) in files {
        let mut dir = String::from("/");
        let comps: Vec<&str> = path[1..].split('/').collect();
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let key = if last {
                (*comp).to_string()
            } else {
                format!("{comp}/")
            };
            children
                .entry(dir.clone())
                .or_default()
                .insert(key.clone(), last.then_some((h, s)));
            if !last {
                dir.push_str(&key);
            }
        }
    }
    for path in files.keys() {
        if children.contains_key(&format!("{path}/")) {
            return Err(SourceError::InvalidPath {
                path: path.clone(),
                reason: "a file and a directory have the same path",
            });
        }
    }
    Ok(children)
}

impl TreeSource for MemTree {
    fn walk(&self) -> EntryIter<'_> {
        Box::new(self.entries.iter().cloned().map(Ok))
    }

    fn root(&self) -> Result<Option<Entry>, SourceError> {
        Ok(self.root.clone())
    }

    fn walk_prefix<'a>(&'a self, prefix: &'a str) -> EntryIter<'a> {
        let start = self.entries.partition_point(|e| e.path.as_str() < prefix);
        Box::new(
            self.entries[start..]
                .iter()
                .take_while(move |e| e.path.starts_with(prefix))
                .cloned()
                .map(Ok),
        )
    }
}

/// A generated tree that holds nothing in memory: `files` files named `/f0000000`… or, with
/// `dirs > 0`, `dirs` directories `/d0000/` of `files` files each. Contents are the file's
/// path, so hashes are real. For benchmarks and scale tests.
///
/// ```
/// use pipeline_core::datum::{SyntheticTree, TreeSource};
/// let t = SyntheticTree::nested(2, 2);
/// let paths: Vec<String> = t.walk().map(|e| e.unwrap().path).collect();
/// assert_eq!(paths, ["/d0/", "/d0/f0", "/d0/f1", "/d1/", "/d1/f0", "/d1/f1"]);
/// ```
#[cfg(feature = "hashing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticTree {
    dirs: usize,
    files: usize,
    hashes: bool,
}

#[cfg(feature = "hashing")]
impl SyntheticTree {
    /// `files` files at the top level.
    pub fn flat(files: usize) -> Self {
        SyntheticTree {
            dirs: 0,
            files,
            hashes: true,
        }
    }

    /// `dirs` top-level directories of `files` files each.
    pub fn nested(dirs: usize, files: usize) -> Self {
        SyntheticTree {
            dirs,
            files,
            hashes: true,
        }
    }

    /// Skip content hashing (all-zero hashes), to measure planning alone.
    pub fn without_hashes(mut self) -> Self {
        self.hashes = false;
        self
    }

    fn width(n: usize) -> usize {
        n.saturating_sub(1).max(1).to_string().len()
    }

    fn file(&self, dir: Option<usize>, i: usize) -> Entry {
        let fw = Self::width(self.files);
        let path = match dir {
            Some(d) => format!("/d{d:0dw$}/f{i:0fw$}", dw = Self::width(self.dirs)),
            None => format!("/f{i:0fw$}"),
        };
        let hash = if self.hashes {
            ContentHash::of_bytes(path.as_bytes())
        } else {
            ContentHash::default()
        };
        let size = path.len() as u64;
        Entry { path, hash, size }
    }

    fn dir(&self, d: usize) -> Entry {
        let path = format!("/d{d:0dw$}/", dw = Self::width(self.dirs));
        let mut hasher = DirectoryHasher::new();
        let mut size = 0;
        for i in 0..self.files {
            let f = self.file(Some(d), i);
            if self.hashes {
                hasher.child(&f.path[path.len()..], &f.hash);
            }
            size += f.size;
        }
        let hash = if self.hashes {
            hasher.finish()
        } else {
            ContentHash::default()
        };
        Entry { path, hash, size }
    }
}

#[cfg(feature = "hashing")]
impl TreeSource for SyntheticTree {
    fn walk(&self) -> EntryIter<'_> {
        let t = *self;
        if t.dirs == 0 {
            Box::new((0..t.files).map(move |i| Ok(t.file(None, i))))
        } else if t.files == 0 {
            Box::new(std::iter::empty())
        } else {
            Box::new((0..t.dirs).flat_map(move |d| {
                std::iter::once(Ok(t.dir(d)))
                    .chain((0..t.files).map(move |i| Ok(t.file(Some(d), i))))
            }))
        }
    }

    fn root(&self) -> Result<Option<Entry>, SourceError> {
        if self.files == 0 {
            return Ok(None);
        }
        let mut hasher = DirectoryHasher::new();
        let mut size = 0;
        if self.dirs == 0 {
            for i in 0..self.files {
                let f = self.file(None, i);
                hasher.child(&f.path[1..], &f.hash);
                size += f.size;
            }
        } else {
            for d in 0..self.dirs {
                let e = self.dir(d);
                hasher.child(&e.path[1..], &e.hash);
                size += e.size;
            }
        }
        let hash = if self.hashes {
            hasher.finish()
        } else {
            ContentHash::default()
        };
        Ok(Some(Entry {
            path: "/".into(),
            hash,
            size,
        }))
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn check_name_reports_the_first_rule_broken() {
        for ok in ["a", "a b.png", "~x.-_=,;%#$&'", "..."] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for glob in "*?[]{}!()@+^".chars() {
            let err = check_name(&format!("a{glob}b")).unwrap_err();
            assert!(err.contains("glob characters"), "{glob}: {err}");
        }
        assert_eq!(check_name("a*\u{1}"), Err("names must be printable ASCII"));
        assert_eq!(
            check_name("caf\u{e9}"),
            Err("names must be printable ASCII")
        );
        assert_eq!(
            check_name("a/*"),
            Err("names must not contain any of *?[]{}!()@+^ (glob characters)")
        );
        assert_eq!(check_name("a/b"), Err("'/' inside a name"));
        assert!(check_name("").is_err() && check_name("..").is_err());
    }

    #[test]
    fn a_listing_derives_directories_with_zero_hashes() {
        let t = MemTree::from_listing(["/a0", "/a/x", "/a-b", "/a/sub/y"]).unwrap();
        let paths: Vec<String> = t.walk().map(|e| e.unwrap().path).collect();
        assert_eq!(paths, ["/a-b", "/a/", "/a/sub/", "/a/sub/y", "/a/x", "/a0"]);
        assert!(t.walk().all(|e| e.unwrap().hash == ContentHash::default()));
        assert_eq!(t.root().unwrap().unwrap().path, "/");
        assert!(MemTree::from_listing(["relative"]).is_err());
        assert!(MemTree::from_listing(["/a", "/a/b"]).is_err());
        assert!(
            MemTree::from_listing(Vec::<&str>::new())
                .unwrap()
                .root()
                .unwrap()
                .is_none()
        );
    }
}

#[cfg(all(test, feature = "hashing"))]
mod tests {
    use super::*;

    #[test]
    fn mem_tree_lists_files_and_dirs_in_path_order() {
        let t = MemTree::from_paths(["/a0", "/a/x", "/a-b", "/a/sub/y"]).unwrap();
        let paths: Vec<String> = t.walk().map(|e| e.unwrap().path).collect();
        assert_eq!(paths, ["/a-b", "/a/", "/a/sub/", "/a/sub/y", "/a/x", "/a0"]);
        let under: Vec<String> = t.walk_prefix("/a/").map(|e| e.unwrap().path).collect();
        assert_eq!(under, ["/a/", "/a/sub/", "/a/sub/y", "/a/x"]);
        let root = t.root().unwrap().unwrap();
        assert_eq!(root.path, "/");
        assert_eq!(root.size, 3 + 4 + 4 + 8);
    }

    #[test]
    fn directory_hash_includes_child_names() {
        let a = MemTree::from_files([("/d/a", "x")]).unwrap();
        let b = MemTree::from_files([("/d/b", "x")]).unwrap();
        let dir = |t: &MemTree| t.walk().next().unwrap().unwrap();
        assert_eq!(dir(&a).path, "/d/");
        assert_ne!(dir(&a).hash, dir(&b).hash);
        let mut h = DirectoryHasher::new();
        h.child("a", &ContentHash::of_bytes(b"x"));
        assert_eq!(dir(&a).hash, h.finish());
    }

    #[test]
    fn mem_tree_rejects_invalid_paths() {
        for bad in ["a", "/a/../b", "/a*", "/x//y", "/a\u{e9}"] {
            assert!(
                matches!(
                    MemTree::from_paths([bad]),
                    Err(SourceError::InvalidPath { .. })
                ),
                "{bad}"
            );
        }
        assert!(MemTree::from_paths(["/a", "/a/b"]).is_err());
        assert!(MemTree::empty().root().unwrap().is_none());
    }

    #[test]
    fn synthetic_matches_mem_tree() {
        let s = SyntheticTree::nested(3, 12);
        let listed: Vec<Entry> = s.walk().map(Result::unwrap).collect();
        let files: Vec<String> = listed
            .iter()
            .filter(|e| !e.is_dir())
            .map(|e| e.path.clone())
            .collect();
        let m = MemTree::from_paths(&files).unwrap();
        let mem: Vec<Entry> = m.walk().map(Result::unwrap).collect();
        assert_eq!(listed, mem);
        assert_eq!(s.root().unwrap(), m.root().unwrap());
        let f = SyntheticTree::flat(12);
        let files: Vec<String> = f.walk().map(|e| e.unwrap().path).collect();
        let m = MemTree::from_paths(&files).unwrap();
        assert_eq!(f.root().unwrap(), m.root().unwrap());
        assert_eq!(f.walk_prefix("/f1").count(), 2);
    }
}
