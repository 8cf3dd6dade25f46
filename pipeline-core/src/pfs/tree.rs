//! Commit trees: per-commit file layers, their streaming merge, directory aggregation.
//!
//! A commit stores only its own changes (a *layer*: file entries and tombstones, keyed by
//! path). Its tree is its layer over the tree of its nearest error-free ancestor (reference
//! §4.3), so reading means merging a short stack of sorted layers: newest entry per path wins,
//! a tombstone hides the path. When a finished commit would sit on more than
//! [`MAX_LAYERS`] layers, finishing it rewrites its layer as a *merged delta* over the
//! bottom of the stack, or as a *snapshot* of its whole tree (see `compaction`), which
//! bounds every read to that many range scans.
//!
//! Everything streams in path order; memory is O(layers + tree depth), except the full
//! [`walk`](super::Store::walk), which first computes directory sizes and hashes in one pass
//! and keeps those (O(number of directories), not files).

use std::collections::BTreeMap;

use super::error::{PfsError, Result};
use super::meta::{KvIter, MetaRead, Table, prefix_end};
use super::model::{FileInfo, FileKind};
use crate::hash::{ContentHash, DirectoryHasher};

/// Layers beyond which a finished commit's stack is compacted (see `compaction`).
pub const MAX_LAYERS: usize = 16;

/// A stored file entry: present (size, hash) or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    File { size: u64, hash: ContentHash },
    Tombstone,
}

impl Entry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Entry::Tombstone => vec![0],
            Entry::File { size, hash } => {
                let mut v = Vec::with_capacity(41);
                v.push(1);
                v.extend_from_slice(&size.to_be_bytes());
                v.extend_from_slice(hash.as_bytes());
                v
            }
        }
    }

    pub(crate) fn decode(v: &[u8]) -> Result<Self> {
        match v {
            [0] => Ok(Entry::Tombstone),
            [1, rest @ ..] if rest.len() == 40 => {
                let mut size = [0u8; 8];
                size.copy_from_slice(rest.get(..8).unwrap_or_default());
                let mut hash = [0u8; 32];
                hash.copy_from_slice(rest.get(8..).unwrap_or_default());
                Ok(Entry::File {
                    size: u64::from_be_bytes(size),
                    hash: ContentHash(hash),
                })
            }
            _ => Err(PfsError::Corrupt(format!(
                "file entry of {} bytes",
                v.len()
            ))),
        }
    }
}

/// Key prefix of one commit's layer: `project/repo \0 id \0`.
/// The id of the layer that keeps what commit `id` itself changed after its own layer was
/// compacted into a snapshot (see [`super::records::CommitRecord::same_tree_as`]): `id~`,
/// which no commit ID can be.
pub(crate) fn kept_delta_id(id: &str) -> String {
    format!("{id}~")
}

/// The commit whose layer the layer `id` is: itself, or the commit whose kept delta it is.
pub(crate) fn commit_of_layer(id: &[u8]) -> &[u8] {
    id.strip_suffix(b"~").unwrap_or(id)
}

pub(crate) fn layer_prefix(repo_key: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(repo_key.len() + id.len() + 2);
    k.extend_from_slice(repo_key.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

/// A file of a merged tree: `(path, size, hash)`.
pub(crate) type TreeFile = (String, u64, ContentHash);

struct LayerCursor {
    iter: KvIter,
    prefix_len: usize,
    head: Option<(String, Entry)>,
}

impl LayerCursor {
    fn advance(&mut self) -> Result<()> {
        self.head = match self.iter.next() {
            None => None,
            Some(r) => {
                let (k, v) = r?;
                let path = k
                    .get(self.prefix_len..)
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .ok_or_else(|| PfsError::Corrupt("file key".into()))?
                    .to_string();
                Some((path, Entry::decode(&v)?))
            }
        };
        Ok(())
    }
}

/// The merged files of a stack of layers (newest first) whose path starts with
/// `path_prefix`, in path order.
pub(crate) struct MergedFiles {
    cursors: Vec<LayerCursor>,
    failed: bool,
}

impl MergedFiles {
    pub(crate) fn new(
        read: &dyn MetaRead,
        repo_key: &str,
        layers: &[String],
        path_prefix: &str,
    ) -> Result<Self> {
        Self::starting_at(read, repo_key, layers, path_prefix, path_prefix)
    }

    /// Like [`MergedFiles::new`], from the first path `>= from` (seeking straight to it).
    pub(crate) fn starting_at(
        read: &dyn MetaRead,
        repo_key: &str,
        layers: &[String],
        path_prefix: &str,
        from: &str,
    ) -> Result<Self> {
        let mut cursors = Vec::with_capacity(layers.len());
        for id in layers {
            let mut start = layer_prefix(repo_key, id);
            let prefix_len = start.len();
            start.extend_from_slice(path_prefix.as_bytes());
            let end = prefix_end(&start);
            if from > path_prefix {
                start.truncate(prefix_len);
                start.extend_from_slice(from.as_bytes());
            }
            let iter = read.scan(Table::Files, &start, &end)?;
            let mut c = LayerCursor {
                iter,
                prefix_len,
                head: None,
            };
            c.advance()?;
            cursors.push(c);
        }
        Ok(MergedFiles {
            cursors,
            failed: false,
        })
    }

    fn next_inner(&mut self) -> Result<Option<TreeFile>> {
        while let Some((path, entry)) = self.next_entry()? {
            if let Entry::File { size, hash } = entry {
                return Ok(Some((path, size, hash)));
            }
        }
        Ok(None)
    }

    /// The next path any layer mentions, with its newest entry: a file, or a tombstone
    /// (which [`MergedFiles`] as an iterator skips; a merged delta keeps them).
    pub(crate) fn next_entry(&mut self) -> Result<Option<(String, Entry)>> {
        let mut best: Option<(usize, &str)> = None;
        for (i, c) in self.cursors.iter().enumerate() {
            if let Some((p, _)) = &c.head
                && best.is_none_or(|(_, b)| p.as_str() < b)
            {
                best = Some((i, p.as_str()));
            }
        }
        let Some((winner, path)) = best else {
            return Ok(None);
        };
        let path = path.to_string();
        let entry = self
            .cursors
            .get(winner)
            .and_then(|c| c.head.as_ref())
            .map(|(_, e)| *e)
            .unwrap_or(Entry::Tombstone);
        for c in &mut self.cursors {
            if c.head.as_ref().is_some_and(|(p, _)| *p == path) {
                c.advance()?;
            }
        }
        Ok(Some((path, entry)))
    }
}

impl Iterator for MergedFiles {
    type Item = Result<TreeFile>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_inner() {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Looks one path up in a layer stack (newest first).
pub(crate) fn lookup(
    read: &dyn MetaRead,
    repo_key: &str,
    layers: &[String],
    path: &str,
) -> Result<Option<(u64, ContentHash)>> {
    for id in layers {
        let mut k = layer_prefix(repo_key, id);
        k.extend_from_slice(path.as_bytes());
        if let Some(v) = read.get(Table::Files, &k)? {
            return Ok(match Entry::decode(&v)? {
                Entry::File { size, hash } => Some((size, hash)),
                Entry::Tombstone => None,
            });
        }
    }
    Ok(None)
}

struct Frame {
    /// Directory path with trailing `/` (`/` for the root of the aggregation).
    dir: String,
    hasher: DirectoryHasher,
    size: u64,
}

/// Folds files in path order into directory sizes and hashes, post-order.
pub(crate) struct DirAggregator {
    stack: Vec<Frame>,
}

fn last_segment(path: &str) -> &str {
    let p = path.strip_suffix('/').unwrap_or(path);
    p.rsplit('/').next().unwrap_or(p)
}

impl DirAggregator {
    /// Aggregates everything below `root` (a directory path with trailing `/`).
    pub(crate) fn new(root: &str) -> Self {
        DirAggregator {
            stack: vec![Frame {
                dir: root.to_string(),
                hasher: DirectoryHasher::new(),
                size: 0,
            }],
        }
    }

    fn pop(&mut self, on_dir: &mut dyn FnMut(&str, u64, ContentHash) -> Result<()>) -> Result<()> {
        if let Some(f) = self.stack.pop() {
            let hash = f.hasher.finish();
            on_dir(&f.dir, f.size, hash)?;
            if let Some(parent) = self.stack.last_mut() {
                let name = format!("{}/", last_segment(&f.dir));
                parent.hasher.child(&name, &hash);
                parent.size += f.size;
            }
        }
        Ok(())
    }

    /// Adds a file. `on_open` is told of each directory as it is entered; `on_dir` of each
    /// directory (path with trailing `/`) as it is completed.
    pub(crate) fn push(
        &mut self,
        path: &str,
        size: u64,
        hash: &ContentHash,
        on_open: &mut dyn FnMut(&str) -> Result<()>,
        on_dir: &mut dyn FnMut(&str, u64, ContentHash) -> Result<()>,
    ) -> Result<()> {
        while self.stack.len() > 1
            && !self
                .stack
                .last()
                .is_some_and(|f| path.starts_with(f.dir.as_str()))
        {
            self.pop(on_dir)?;
        }
        loop {
            let top = self.stack.last().map(|f| f.dir.clone()).unwrap_or_default();
            let rest = path.get(top.len()..).unwrap_or_default();
            match rest.find('/') {
                Some(i) => {
                    let dir = format!("{}{}/", top, rest.get(..i).unwrap_or_default());
                    on_open(&dir)?;
                    self.stack.push(Frame {
                        dir,
                        hasher: DirectoryHasher::new(),
                        size: 0,
                    });
                }
                None => {
                    if let Some(f) = self.stack.last_mut() {
                        f.hasher.child(rest, hash);
                        f.size += size;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Completes every open directory, the root last; returns the root's size and hash.
    pub(crate) fn finish(
        mut self,
        on_dir: &mut dyn FnMut(&str, u64, ContentHash) -> Result<()>,
    ) -> Result<(u64, ContentHash)> {
        let mut root = (0, ContentHash::default());
        while self.stack.len() > 1 {
            self.pop(on_dir)?;
        }
        if let Some(f) = self.stack.pop() {
            root = (f.size, f.hasher.finish());
            on_dir(&f.dir, root.0, root.1)?;
        }
        Ok(root)
    }
}

/// The full walk: the root, then every directory and file in path order.
pub(crate) struct Walk {
    files: MergedFiles,
    dirs: BTreeMap<String, (u64, ContentHash)>,
    open: Vec<String>,
    pending: std::collections::VecDeque<FileInfo>,
    failed: bool,
}

impl Walk {
    pub(crate) fn new(
        files_pass1: MergedFiles,
        files_pass2: MergedFiles,
        root: &str,
    ) -> Result<Self> {
        let mut dirs = BTreeMap::new();
        let mut agg = DirAggregator::new(root);
        let mut any = false;
        let mut record = |d: &str, s: u64, h: ContentHash| {
            dirs.insert(d.to_string(), (s, h));
            Ok(())
        };
        for f in files_pass1 {
            let (p, s, h) = f?;
            any = true;
            agg.push(&p, s, &h, &mut |_| Ok(()), &mut record)?;
        }
        agg.finish(&mut record)?;
        if !any {
            dirs.clear();
        }
        Ok(Walk {
            files: files_pass2,
            dirs,
            open: Vec::new(),
            pending: Default::default(),
            failed: false,
        })
    }

    fn dir_entry(&self, d: &str) -> FileInfo {
        let (size, hash) = self.dirs.get(d).copied().unwrap_or_default();
        FileInfo {
            path: d.to_string(),
            kind: FileKind::Dir,
            size,
            hash,
        }
    }

    fn fill(&mut self) -> Result<bool> {
        let Some(f) = self.files.next() else {
            return Ok(false);
        };
        let (path, size, hash) = f?;
        while self
            .open
            .last()
            .is_some_and(|d| !path.starts_with(d.as_str()))
        {
            self.open.pop();
        }
        let mut idx = 0;
        while let Some(i) = path.get(idx..).and_then(|r| r.find('/')) {
            let dir = path.get(..idx + i + 1).unwrap_or_default().to_string();
            idx += i + 1;
            if self.dirs.contains_key(&dir) && !self.open.contains(&dir) {
                let e = self.dir_entry(&dir);
                self.pending.push_back(e);
                self.open.push(dir);
            }
        }
        self.pending.push_back(FileInfo {
            path,
            kind: FileKind::File,
            size,
            hash,
        });
        Ok(true)
    }
}

impl Iterator for Walk {
    type Item = Result<FileInfo>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            if self.failed {
                return None;
            }
            match self.fill() {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// One level of a directory: its files, and its sub-directories with size and hash.
pub(crate) struct ListLevel {
    files: MergedFiles,
    /// The listed directory with trailing `/`.
    dir: String,
    current: Option<(String, DirAggregator)>,
    pending: Option<FileInfo>,
    done: bool,
}

impl ListLevel {
    pub(crate) fn new(files: MergedFiles, dir: &str) -> Self {
        ListLevel {
            files,
            dir: dir.to_string(),
            current: None,
            pending: None,
            done: false,
        }
    }

    fn close_current(&mut self) -> Result<Option<FileInfo>> {
        match self.current.take() {
            None => Ok(None),
            Some((d, agg)) => {
                let (size, hash) = agg.finish(&mut |_, _, _| Ok(()))?;
                Ok(Some(FileInfo {
                    path: d,
                    kind: FileKind::Dir,
                    size,
                    hash,
                }))
            }
        }
    }

    fn next_inner(&mut self) -> Result<Option<FileInfo>> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        if self.done {
            return Ok(None);
        }
        loop {
            let Some(f) = self.files.next() else {
                self.done = true;
                return self.close_current();
            };
            let (path, size, hash) = f?;
            let rest = path.get(self.dir.len()..).unwrap_or_default();
            match rest.find('/') {
                None => {
                    let file = FileInfo {
                        path,
                        kind: FileKind::File,
                        size,
                        hash,
                    };
                    if let Some(d) = self.close_current()? {
                        self.pending = Some(file);
                        return Ok(Some(d));
                    }
                    return Ok(Some(file));
                }
                Some(i) => {
                    let d = format!("{}{}/", self.dir, rest.get(..i).unwrap_or_default());
                    let mut closed = None;
                    if self.current.as_ref().is_some_and(|(c, _)| *c != d) {
                        closed = self.close_current()?;
                    }
                    let (_, agg) = self
                        .current
                        .get_or_insert_with(|| (d.clone(), DirAggregator::new(&d)));
                    agg.push(&path, size, &hash, &mut |_| Ok(()), &mut |_, _, _| Ok(()))?;
                    if closed.is_some() {
                        return Ok(closed);
                    }
                }
            }
        }
    }
}

impl Iterator for ListLevel {
    type Item = Result<FileInfo>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_inner() {
            Ok(x) => x.map(Ok),
            Err(e) => {
                self.done = true;
                self.pending = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_roundtrip() {
        let e = Entry::File {
            size: 7,
            hash: ContentHash::of_bytes(b"x"),
        };
        assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        assert_eq!(
            Entry::decode(&Entry::Tombstone.encode()).unwrap(),
            Entry::Tombstone
        );
        assert!(Entry::decode(&[1, 2]).is_err());
    }

    #[test]
    fn aggregator_matches_directory_hasher() {
        let a = ContentHash::of_bytes(b"a");
        let b = ContentHash::of_bytes(b"bb");
        let mut dirs = BTreeMap::new();
        let mut agg = DirAggregator::new("/");
        let mut rec = |d: &str, s: u64, h: ContentHash| {
            dirs.insert(d.to_string(), (s, h));
            Ok(())
        };
        for (p, s, h) in [("/d/x", 1, a), ("/d/y/z", 2, b), ("/e", 1, a)] {
            agg.push(p, s, &h, &mut |_| Ok(()), &mut rec).unwrap();
        }
        let (size, root) = agg.finish(&mut rec).unwrap();
        assert_eq!(size, 4);
        let mut y = DirectoryHasher::new();
        y.child("z", &b);
        let y = y.finish();
        let mut d = DirectoryHasher::new();
        d.child("x", &a);
        d.child("y/", &y);
        let d = d.finish();
        let mut r = DirectoryHasher::new();
        r.child("d/", &d);
        r.child("e", &a);
        assert_eq!(root, r.finish());
        assert_eq!(dirs["/d/"], (3, d));
        assert_eq!(dirs["/d/y/"], (2, y));
    }
}
