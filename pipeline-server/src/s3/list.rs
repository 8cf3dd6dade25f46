//! One page of an object listing (ListObjects and ListObjectsV2): keys are file paths without
//! the leading `/`, read in order from the store's streaming listing, seeking past what the
//! page does not show (keys before the marker, everything under a common prefix), so a page
//! costs what it shows, never the whole repo.
use pipeline_core::pfs::{FileInfo, FileIter, PfsError};

/// The most keys one page holds (S3's own limit).
pub const MAX_KEYS: usize = 1000;

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first delimiter after the prefix into common prefixes.
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) after this one (marker, start-after, continuation).
    pub after: Option<String>,
    /// At most this many keys and common prefixes together.
    pub max_keys: usize,
}

/// One page.
#[derive(Debug, Default)]
pub struct ListPage {
    /// Files, in key order.
    pub objects: Vec<FileInfo>,
    /// Common prefixes, in order.
    pub prefixes: Vec<String>,
    /// Whether more follow.
    pub truncated: bool,
    /// The last key or common prefix of this page (the next page starts after it).
    pub last: Option<String>,
}

/// The directory to list for `prefix` (what comes up to its last `/`), as a store path.
fn dir_of(prefix: &str) -> String {
    match prefix.rfind('/') {
        Some(i) => format!("/{}", &prefix[..i]),
        None => "/".to_string(),
    }
}

/// The least string greater than every string starting with `s` (its last character bumped).
fn past(s: &str) -> String {
    let mut out = s.to_string();
    while let Some(c) = out.pop() {
        if let Some(next) = char::from_u32(c as u32 + 1) {
            out.push(next);
            return out;
        }
    }
    // Every character was char::MAX: nothing sorts after it that starts differently.
    format!("{s}\u{10FFFF}")
}

/// The common prefix `key` rolls up into, if any.
fn rolled_up<'a>(key: &'a str, p: &ListParams) -> Option<&'a str> {
    let d = p.delimiter.as_deref().filter(|d| !d.is_empty())?;
    let rest = &key[p.prefix.len()..];
    rest.find(d).map(|i| &key[..p.prefix.len() + i + d.len()])
}

/// One page of the listing of `p`, reading through `open(dir, from)`: the recursive listing of
/// the store directory `dir` from the store path `from` on.
pub fn page(
    mut open: impl FnMut(&str, &str) -> Result<FileIter, PfsError>,
    p: &ListParams,
) -> Result<ListPage, PfsError> {
    let dir = dir_of(&p.prefix);
    let mut from = format!("/{}", p.prefix);
    if let Some(a) = &p.after {
        from = from.max(format!("/{a}"));
    }
    let mut out = ListPage::default();
    let mut shown = 0usize;
    'reopen: loop {
        let files = match open(&dir, &from) {
            Ok(f) => f,
            Err(PfsError::FileNotFound { .. }) => return Ok(out),
            Err(e) => return Err(e),
        };
        for f in files {
            let f = f?;
            let Some(key) = f.path.strip_prefix('/') else {
                continue;
            };
            if !key.starts_with(&p.prefix) {
                if key > p.prefix.as_str() {
                    return Ok(out);
                }
                continue;
            }
            let (entry, is_prefix) = match rolled_up(key, p) {
                Some(cp) => (cp.to_string(), true),
                None => (key.to_string(), false),
            };
            if p.after.as_deref().is_some_and(|a| entry.as_str() <= a) {
                if is_prefix {
                    from = format!("/{}", past(&entry));
                    continue 'reopen;
                }
                continue;
            }
            if shown == p.max_keys {
                out.truncated = true;
                return Ok(out);
            }
            shown += 1;
            out.last = Some(entry.clone());
            if is_prefix {
                out.prefixes.push(entry.clone());
                from = format!("/{}", past(&entry));
                continue 'reopen;
            }
            out.objects.push(f);
        }
        return Ok(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::hash::ContentHash;
    use pipeline_core::pfs::FileKind;
    use std::cell::Cell;

    const KEYS: &[&str] = &["a.txt", "d/x", "d/y/1", "d/y/2", "d/z", "e", "f/g"];

    fn run(p: &ListParams, opens: &Cell<usize>) -> ListPage {
        page(
            |dir, from| {
                opens.set(opens.get() + 1);
                let dir = if dir == "/" {
                    "/".to_string()
                } else {
                    format!("{dir}/")
                };
                let files: Vec<_> = KEYS
                    .iter()
                    .map(|k| format!("/{k}"))
                    .filter(|k| k.starts_with(&dir) && k.as_str() >= from)
                    .map(|path| {
                        Ok(FileInfo {
                            path,
                            kind: FileKind::File,
                            size: 1,
                            hash: ContentHash::of_bytes(b"x"),
                        })
                    })
                    .collect();
                Ok(Box::new(files.into_iter()) as FileIter)
            },
            p,
        )
        .unwrap()
    }

    fn keys(pg: &ListPage) -> Vec<String> {
        pg.objects.iter().map(|f| f.path[1..].to_string()).collect()
    }

    #[test]
    fn delimiter_rolls_up_and_pages_resume_after_the_last_entry() {
        let opens = Cell::new(0);
        let mut p = ListParams {
            delimiter: Some("/".into()),
            max_keys: 2,
            ..ListParams::default()
        };
        let one = run(&p, &opens);
        assert_eq!(keys(&one), ["a.txt"]);
        assert_eq!(one.prefixes, ["d/"]);
        assert!(one.truncated);
        p.after = one.last.clone();
        let two = run(&p, &opens);
        assert_eq!(keys(&two), ["e"]);
        assert_eq!(two.prefixes, ["f/"]);
        assert!(!two.truncated);
    }

    #[test]
    fn prefix_and_nested_delimiter() {
        let opens = Cell::new(0);
        let p = ListParams {
            prefix: "d/".into(),
            delimiter: Some("/".into()),
            max_keys: MAX_KEYS,
            ..ListParams::default()
        };
        let pg = run(&p, &opens);
        assert_eq!(keys(&pg), ["d/x", "d/z"]);
        assert_eq!(pg.prefixes, ["d/y/"]);
        let p = ListParams {
            prefix: "d/y".into(),
            max_keys: MAX_KEYS,
            ..ListParams::default()
        };
        assert_eq!(keys(&run(&p, &opens)), ["d/y/1", "d/y/2"]);
    }

    #[test]
    fn flat_listing_pages_by_key() {
        let opens = Cell::new(0);
        let mut p = ListParams {
            max_keys: 3,
            ..ListParams::default()
        };
        let mut all = Vec::new();
        loop {
            let pg = run(&p, &opens);
            all.extend(keys(&pg));
            if !pg.truncated {
                break;
            }
            p.after = pg.last;
        }
        assert_eq!(all, KEYS);
    }

    #[test]
    fn past_bumps_the_last_character() {
        assert_eq!(past("d/"), "d0");
        assert!(past("d/").as_str() > "d/zzz");
    }
}
