//! A conformance check for [`TreeSource`] implementations (run it in each backend's tests).

use super::source::{Entry, TreeSource, check_name};
use crate::hash::{ContentHash, DirectoryHasher};

/// Checks that `tree` keeps the [`TreeSource`] contract; returns every violation found (empty
/// when it conforms). Streams the tree, holding one open directory per depth level:
///
/// - paths are absolute, strictly increasing byte-wise, PFS-valid, never the root;
/// - every entry's parent directory was listed before it; no directory is empty;
/// - a directory's hash is [`DirectoryHasher`] over its immediate children's names (with `/`
///   for directories) and hashes, its size the sum of theirs; the same for [`TreeSource::root`],
///   which is `None` exactly when the listing is empty;
/// - [`TreeSource::walk_prefix`] agrees with [`TreeSource::walk`] for the first
///   `prefix_checks` directories and for a prefix that matches nothing.
///
/// ```
/// use pipeline_core::datum::{conformance, MemTree};
/// let tree = MemTree::from_paths(["/a", "/d/b", "/d/e/c"]).unwrap();
/// assert_eq!(conformance::check(&tree, 10), Vec::<String>::new());
/// ```
pub fn check(tree: &dyn TreeSource, prefix_checks: usize) -> Vec<String> {
    let mut problems = Vec::new();
    // Open directories, outermost first; the root is always open.
    let mut open = vec![OpenDir::new("/".into(), None)];
    let mut previous: Option<String> = None;
    let mut count = 0usize;
    let mut dirs_for_prefix = Vec::new();

    for item in tree.walk() {
        let e = match item {
            Ok(e) => e,
            Err(err) => {
                problems.push(format!("walk failed: {err}"));
                return problems;
            }
        };
        count += 1;
        if e.path == "/" || !e.path.starts_with('/') {
            problems.push(format!(
                "{:?}: listed paths must be absolute and not the root",
                e.path
            ));
            continue;
        }
        if let Some(prev) = previous.as_deref().filter(|p| *p >= e.path.as_str()) {
            problems.push(format!(
                "{:?} listed after {prev:?}: not in byte-wise order",
                e.path
            ));
        }
        previous = Some(e.path.clone());
        let body = e.path.trim_start_matches('/').trim_end_matches('/');
        if let Some((c, reason)) = body
            .split('/')
            .find_map(|c| check_name(c).err().map(|r| (c, r)))
        {
            problems.push(format!("{:?}: component {c:?}: {reason}", e.path));
        }
        // Close the directories this entry is not inside of.
        while open.len() > 1 && !open.last().is_some_and(|o| e.path.starts_with(&o.path)) {
            close(&mut open, &mut problems);
        }
        let parent_len = open.last().map_or(1, |o| o.path.len());
        let name = e.path.get(parent_len..).unwrap_or_default().to_string();
        if name.trim_end_matches('/').contains('/') {
            problems.push(format!("{:?}: listed before its parent directory", e.path));
        }
        if e.is_dir() {
            if dirs_for_prefix.len() < prefix_checks {
                dirs_for_prefix.push(e.path.clone());
            }
            open.push(OpenDir::new(e.path.clone(), Some(e)));
        } else if let Some(dir) = open.last_mut() {
            dir.add(&name, &e.hash, e.size);
        }
    }
    while open.len() > 1 {
        close(&mut open, &mut problems);
    }
    let (hash, size) = open
        .pop()
        .map_or((DirectoryHasher::new().finish(), 0), |o| {
            (o.hasher.finish(), o.size)
        });
    check_root(tree, count, &hash, size, &mut problems);
    check_prefixes(tree, dirs_for_prefix, &mut problems);
    problems
}

/// The root entry agrees with the listing: present exactly when something is listed, with the
/// hash and size of the top-level entries.
fn check_root(
    tree: &dyn TreeSource,
    count: usize,
    hash: &ContentHash,
    size: u64,
    problems: &mut Vec<String>,
) {
    match tree.root() {
        Err(err) => problems.push(format!("root failed: {err}")),
        Ok(None) if count > 0 => problems.push("root() is None but the tree lists entries".into()),
        Ok(Some(_)) if count == 0 => {
            problems.push("root() is Some but the tree lists nothing".into())
        }
        Ok(Some(root)) => {
            if root.path != "/" {
                problems.push(format!("root path is {:?}, expected \"/\"", root.path));
            }
            if root.hash != *hash {
                problems.push("root hash does not match the top-level entries".into());
            }
            if root.size != size {
                problems.push(format!(
                    "root size {} but the top-level entries total {size}",
                    root.size
                ));
            }
        }
        Ok(None) => {}
    }
}

/// `walk_prefix` agrees with a filtered `walk` for each of `prefixes` and for one prefix that
/// matches nothing.
fn check_prefixes(tree: &dyn TreeSource, mut prefixes: Vec<String>, problems: &mut Vec<String>) {
    prefixes.push("/no-such-prefix/".into());
    for prefix in &prefixes {
        let direct: Vec<Option<ContentHash>> = tree
            .walk_prefix(prefix)
            .map(|e| e.ok().map(|e| e.hash))
            .collect();
        let filtered: Vec<Option<ContentHash>> = tree
            .walk()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path.starts_with(prefix.as_str()))
            })
            .map(|e| e.ok().map(|e| e.hash))
            .collect();
        if direct != filtered {
            problems.push(format!("walk_prefix({prefix:?}) disagrees with walk()"));
        }
    }
}

/// A directory whose children are still being listed.
struct OpenDir {
    path: String,
    listed: Option<Entry>,
    hasher: DirectoryHasher,
    size: u64,
    children: usize,
}

impl OpenDir {
    fn new(path: String, listed: Option<Entry>) -> Self {
        OpenDir {
            path,
            listed,
            hasher: DirectoryHasher::new(),
            size: 0,
            children: 0,
        }
    }

    fn add(&mut self, name: &str, hash: &ContentHash, size: u64) {
        self.hasher.child(name, hash);
        self.size += size;
        self.children += 1;
    }
}

/// Pops the innermost open directory, checks it, and adds it to its parent.
fn close(open: &mut Vec<OpenDir>, problems: &mut Vec<String>) {
    let Some(dir) = open.pop() else { return };
    let Some(listed) = dir.listed else { return };
    if dir.children == 0 {
        problems.push(format!("{}: empty directory listed", dir.path));
    }
    if listed.hash != dir.hasher.finish() {
        problems.push(format!(
            "{}: directory hash does not match its children",
            dir.path
        ));
    }
    if listed.size != dir.size {
        problems.push(format!(
            "{}: size {} but its children total {}",
            dir.path, listed.size, dir.size
        ));
    }
    if let Some(parent) = open.last_mut() {
        let name = dir.path.get(parent.path.len()..).unwrap_or_default();
        parent.add(name, &listed.hash, listed.size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::{EntryIter, MemTree, SourceError, SyntheticTree};

    #[test]
    fn built_in_sources_conform() {
        let mem = MemTree::from_paths(["/a-b", "/a/x", "/a/sub/y", "/a0", "/z/z/z/z"]).unwrap();
        assert_eq!(check(&mem, 100), Vec::<String>::new());
        assert_eq!(check(&MemTree::empty(), 100), Vec::<String>::new());
        assert_eq!(
            check(&SyntheticTree::nested(3, 4), 100),
            Vec::<String>::new()
        );
        assert_eq!(check(&SyntheticTree::flat(12), 100), Vec::<String>::new());
    }

    /// A source that lists whatever it is given.
    struct Raw(Vec<Entry>, Option<Entry>);
    impl TreeSource for Raw {
        fn walk(&self) -> EntryIter<'_> {
            Box::new(self.0.clone().into_iter().map(Ok))
        }
        fn root(&self) -> Result<Option<Entry>, SourceError> {
            Ok(self.1.clone())
        }
    }

    #[test]
    fn violations_are_reported() {
        let good = MemTree::from_paths(["/d/a", "/d/b"]).unwrap();
        let entries: Vec<Entry> = good.walk().map(Result::unwrap).collect();
        let root = good.root().unwrap();

        let mut unordered = entries.clone();
        unordered.swap(1, 2);
        assert!(
            check(&Raw(unordered, root.clone()), 10)
                .iter()
                .any(|p| p.contains("order"))
        );

        let mut bad_hash = entries.clone();
        bad_hash[0].hash = ContentHash::default();
        assert!(
            check(&Raw(bad_hash, root.clone()), 10)
                .iter()
                .any(|p| p.contains("directory hash"))
        );

        let orphan = entries[1..].to_vec();
        assert!(
            check(&Raw(orphan, root.clone()), 10)
                .iter()
                .any(|p| p.contains("parent"))
        );

        assert!(
            check(&Raw(entries.clone(), None), 10)
                .iter()
                .any(|p| p.contains("root() is None"))
        );
    }
}
