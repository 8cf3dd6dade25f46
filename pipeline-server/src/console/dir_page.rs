//! One page of a directory level, read without reading its sub-directories: files come
//! from [`Store::list_file_recursive_from`] as they stream, and each sub-directory is named
//! by its first file and then skipped by seeking past it. A page of 1,000 entries costs at
//! most 1,000 seeks, however many files lie below or before it (directories come without a
//! size, which would cost reading everything below them).

use pipeline_core::pfs::{CommitRef, FileInfo, PfsError, Store};

/// An entry of a directory level.
pub enum Entry {
    /// A sub-directory: its path, ending with `/`.
    Dir(String),
    /// A file.
    File(FileInfo),
}

impl Entry {
    /// The entry's path (a directory's ends with `/`): the cursor of the next page.
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir(p) => p,
            Entry::File(f) => &f.path,
        }
    }
}

/// One page: at most `limit` entries, and whether more follow.
pub struct DirPage {
    /// The entries, in path order.
    pub entries: Vec<Entry>,
    /// Whether entries follow the last one.
    pub more: bool,
}

/// The entries of directory `dir` (normalised: `/` or `/a/b`) of `commit` whose path comes
/// after `after` (an entry path from an earlier page), at most `limit`.
pub fn dir_page(
    store: &Store,
    commit: &CommitRef,
    dir: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<DirPage, PfsError> {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let mut from = after.map_or_else(|| prefix.clone(), first_path_after);
    let mut entries = Vec::new();
    'seek: loop {
        for file in store.list_file_recursive_from(commit, dir, &from)? {
            let file = file?;
            let Some(rest) = file.path.strip_prefix(&prefix) else {
                break 'seek;
            };
            if entries.len() == limit {
                return Ok(DirPage {
                    entries,
                    more: true,
                });
            }
            match rest.find('/') {
                None => entries.push(Entry::File(file)),
                Some(i) => {
                    let sub = format!("{prefix}{}/", rest.get(..i).unwrap_or_default());
                    from = first_path_after(&sub);
                    entries.push(Entry::Dir(sub));
                    continue 'seek;
                }
            }
        }
        break;
    }
    Ok(DirPage {
        entries,
        more: false,
    })
}

/// The smallest key after entry `path`: past everything below a directory (`a/` → `a0`,
/// as `0` follows `/`), or just after a file (`a` → `a\0`; no path holds a NUL).
fn first_path_after(path: &str) -> String {
    match path.strip_suffix('/') {
        Some(dir) => format!("{dir}0"),
        None => format!("{path}\0"),
    }
}

#[cfg(test)]
mod tests {
    use super::first_path_after;

    #[test]
    fn the_key_after_an_entry_skips_what_is_below_it() {
        assert_eq!(first_path_after("/a/"), "/a0");
        assert!("/a/~~~" < first_path_after("/a/").as_str());
        assert!(first_path_after("/a/").as_str() <= "/a0");
        assert_eq!(first_path_after("/a.txt"), "/a.txt\0");
        assert!("/a.txt" < first_path_after("/a.txt").as_str());
        assert!(first_path_after("/a.txt").as_str() < "/a.txt ");
    }
}
