//! The metadata store conformance suite: what every [`MetaStore`] must do, run on the
//! in-memory store, redb and PostgreSQL (`tests/meta_conformance.rs`). Each check takes a
//! fresh store from a [`MetaCase`] factory and panics with a message naming what failed.

use std::sync::Arc;
use std::time::Duration;

use crate::pfs::meta::{Kv, MetaStore, Table};

/// A fresh, empty store under test, and a second handle to the same data: another
/// connection pool for a server database, or the same handle for an in-process store.
pub struct MetaCase {
    /// The store.
    pub store: Arc<dyn MetaStore>,
    /// Another handle to the same data (writes through either must serialise).
    pub other: Arc<dyn MetaStore>,
}

/// Builds a fresh [`MetaCase`] per check.
pub type Fresh<'a> = &'a dyn Fn() -> MetaCase;

/// Runs every check.
pub fn run_all(fresh: Fresh<'_>) {
    get_put_delete(fresh);
    tables_are_separate(fresh);
    scans_at_page_boundaries(fresh);
    byte_order_is_memcmp(fresh);
    snapshots_do_not_see_later_commits(fresh);
    a_dropped_write_leaves_nothing(fresh);
    a_write_sees_its_own_changes(fresh);
    writers_are_serialised_across_handles(fresh);
}

fn put_all(store: &dyn MetaStore, table: Table, pairs: &[Kv]) {
    let mut w = store.write().expect("write");
    for (k, v) in pairs {
        w.put(table, k, v).expect("put");
    }
    w.commit().expect("commit");
}

fn scan(store: &dyn MetaStore, table: Table, start: &[u8], end: &[u8], rev: bool) -> Vec<Kv> {
    let r = store.read().expect("read");
    let it = if rev {
        r.scan_rev(table, start, end)
    } else {
        r.scan(table, start, end)
    };
    it.expect("scan")
        .collect::<Result<_, _>>()
        .expect("scan items")
}

/// Puts, overwrites, deletes (also of an absent key), and reads them back.
pub fn get_put_delete(fresh: Fresh<'_>) {
    let s = fresh().store;
    put_all(&*s, Table::Repos, &[(b"a".to_vec(), b"1".to_vec())]);
    let r = s.read().expect("read");
    assert_eq!(r.get(Table::Repos, b"a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(r.get(Table::Repos, b"b").expect("get"), None, "absent key");
    drop(r);
    let mut w = s.write().expect("write");
    w.put(Table::Repos, b"a", b"2").expect("overwrite");
    w.put(Table::Repos, b"big", &vec![7u8; 300_000])
        .expect("large value");
    w.delete(Table::Repos, b"never-there")
        .expect("deleting an absent key is no error");
    w.commit().expect("commit");
    let r = s.read().expect("read");
    assert_eq!(r.get(Table::Repos, b"a").expect("get"), Some(b"2".to_vec()));
    assert_eq!(
        r.get(Table::Repos, b"big").expect("get").map(|v| v.len()),
        Some(300_000)
    );
    drop(r);
    let mut w = s.write().expect("write");
    w.delete(Table::Repos, b"a").expect("delete");
    w.commit().expect("commit");
    assert_eq!(
        s.read()
            .expect("read")
            .get(Table::Repos, b"a")
            .expect("get"),
        None,
        "deleted"
    );
}

/// The same key in two tables holds two values.
pub fn tables_are_separate(fresh: Fresh<'_>) {
    let s = fresh().store;
    let mut w = s.write().expect("write");
    for (i, t) in Table::ALL.into_iter().enumerate() {
        w.put(t, b"k", &[i as u8]).expect("put");
    }
    w.commit().expect("commit");
    let r = s.read().expect("read");
    for (i, t) in Table::ALL.into_iter().enumerate() {
        assert_eq!(r.get(t, b"k").expect("get"), Some(vec![i as u8]), "{t:?}");
        assert_eq!(scan(&*s, t, b"", b"\xff", false).len(), 1, "{t:?}");
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// Forward and reverse scans of ranges whose sizes sit at and around page boundaries
/// (a backend reading in pages must neither lose nor repeat a pair), and empty ranges.
pub fn scans_at_page_boundaries(fresh: Fresh<'_>) {
    let s = fresh().store;
    let all: Vec<Kv> = (0..1300)
        .map(|i| (key(i), format!("v{i}").into_bytes()))
        .collect();
    put_all(&*s, Table::Files, &all);
    put_all(&*s, Table::Files, &[(b"j".to_vec(), b"x".to_vec())]);
    put_all(&*s, Table::Files, &[(b"l".to_vec(), b"x".to_vec())]);
    for n in [
        0, 1, 2, 63, 64, 65, 127, 128, 511, 512, 513, 575, 576, 577, 1024, 1089, 1300,
    ] {
        let want: Vec<Kv> = all[..n].to_vec();
        let end = key(n);
        assert_eq!(
            scan(&*s, Table::Files, b"k", &end, false),
            want,
            "first {n}"
        );
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(
            scan(&*s, Table::Files, b"k", &end, true),
            rev,
            "first {n}, reversed"
        );
        let from = key(1300 - n);
        let tail: Vec<Kv> = all[1300 - n..].to_vec();
        assert_eq!(
            scan(&*s, Table::Files, &from, b"l", false),
            tail,
            "last {n}"
        );
    }
    assert_eq!(
        scan(&*s, Table::Files, b"k00010", b"k00010", false),
        vec![],
        "start == end"
    );
    assert_eq!(
        scan(&*s, Table::Files, b"k00020", b"k00010", false),
        vec![],
        "start > end"
    );
    assert_eq!(
        scan(&*s, Table::Files, b"k00020", b"k00010", true),
        vec![],
        "start > end, reversed"
    );
    // A scan stopped early and one read in small steps agree with the whole.
    let r = s.read().expect("read");
    let first: Vec<Kv> = r
        .scan(Table::Files, b"k", b"l")
        .expect("scan")
        .take(700)
        .collect::<Result<_, _>>()
        .expect("items");
    assert_eq!(first, all[..700].to_vec());
}

/// Keys with 0x00 and 0xFF bytes, the empty key and prefixes sort as bytes compare
/// (memcmp, then the shorter first), in both directions.
pub fn byte_order_is_memcmp(fresh: Fresh<'_>) {
    let s = fresh().store;
    let keys: Vec<Vec<u8>> = vec![
        vec![0xff, 0xff],
        vec![0x00],
        vec![],
        vec![0x80],
        vec![0x00, 0x00],
        vec![0xff],
        vec![0x7f, 0xff],
        vec![0x00, 0xff],
        vec![0x01],
        vec![0xff, 0x00],
        vec![b'a', 0x00, b'b'],
        vec![b'a'],
        vec![b'a', 0xff],
        vec![b'A'],
    ];
    let pairs: Vec<Kv> = keys.iter().map(|k| (k.clone(), k.clone())).collect();
    put_all(&*s, Table::Engine, &pairs);
    let mut want = pairs.clone();
    want.sort();
    let end = [0xff, 0xff, 0xff];
    assert_eq!(scan(&*s, Table::Engine, &[], &end, false), want, "forward");
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(scan(&*s, Table::Engine, &[], &end, true), rev, "reverse");
    let inner: Vec<Kv> = want
        .iter()
        .filter(|(k, _)| {
            k.as_slice() >= [0x00, 0x00].as_slice() && k.as_slice() < [0xff].as_slice()
        })
        .cloned()
        .collect();
    assert_eq!(
        scan(&*s, Table::Engine, &[0x00, 0x00], &[0xff], false),
        inner,
        "inner"
    );
    let r = s.read().expect("read");
    assert_eq!(
        r.get(Table::Engine, &[]).expect("get"),
        Some(vec![]),
        "empty key"
    );
    assert_eq!(
        r.get(Table::Engine, &[0x00, 0x00]).expect("get"),
        Some(vec![0, 0])
    );
}

/// A snapshot (and a scan begun on it, read on after the commit) does not see a later
/// commit; a snapshot opened after it does.
pub fn snapshots_do_not_see_later_commits(fresh: Fresh<'_>) {
    let case = fresh();
    let s = case.store;
    let all: Vec<Kv> = (0..700).map(|i| (key(i), b"old".to_vec())).collect();
    put_all(&*s, Table::Commits, &all);
    let before = s.read().expect("read");
    let mut scan_before = before.scan(Table::Commits, b"k", b"l").expect("scan");
    let first = scan_before.next().expect("a pair").expect("pair");
    assert_eq!(first, all[0]);
    let mut w = case.other.write().expect("write");
    for (k, _) in &all {
        w.put(Table::Commits, k, b"new").expect("put");
    }
    w.put(Table::Commits, b"k99999", b"added").expect("put");
    w.delete(Table::Commits, &key(1)).expect("delete");
    w.commit().expect("commit");
    let rest: Vec<Kv> = scan_before.collect::<Result<_, _>>().expect("items");
    assert_eq!(
        rest,
        all[1..].to_vec(),
        "a scan of the old snapshot, read after the commit"
    );
    assert_eq!(before.get(Table::Commits, b"k99999").expect("get"), None);
    assert_eq!(
        before.get(Table::Commits, &key(1)).expect("get"),
        Some(b"old".to_vec())
    );
    let after = s.read().expect("read");
    assert_eq!(
        after.get(Table::Commits, b"k99999").expect("get"),
        Some(b"added".to_vec())
    );
    assert_eq!(
        after.get(Table::Commits, &key(0)).expect("get"),
        Some(b"new".to_vec())
    );
    assert_eq!(after.get(Table::Commits, &key(1)).expect("get"), None);
}

/// A write dropped without commit leaves nothing behind, and the next write proceeds.
pub fn a_dropped_write_leaves_nothing(fresh: Fresh<'_>) {
    let s = fresh().store;
    put_all(&*s, Table::Branches, &[(b"keep".to_vec(), b"1".to_vec())]);
    {
        let mut w = s.write().expect("write");
        for i in 0..3000 {
            w.put(Table::Branches, &key(i), b"x").expect("put");
        }
        // Sent to the database before the drop, for backends that buffer.
        let seen = w
            .scan_collect(Table::Branches, b"k", b"l", 10)
            .expect("scan");
        assert_eq!(seen.len(), 10);
        w.delete(Table::Branches, b"keep").expect("delete");
    }
    assert_eq!(
        scan(&*s, Table::Branches, b"", b"\xff", false),
        vec![(b"keep".to_vec(), b"1".to_vec())]
    );
    put_all(&*s, Table::Branches, &[(b"next".to_vec(), b"2".to_vec())]);
    assert_eq!(scan(&*s, Table::Branches, b"", b"\xff", false).len(), 2);
}

/// Inside a write: gets and scans see its own puts and deletes; the limit holds.
pub fn a_write_sees_its_own_changes(fresh: Fresh<'_>) {
    let s = fresh().store;
    put_all(
        &*s,
        Table::Files,
        &[
            (b"a".to_vec(), b"0".to_vec()),
            (b"c".to_vec(), b"0".to_vec()),
        ],
    );
    let mut w = s.write().expect("write");
    w.put(Table::Files, b"b", b"1").expect("put");
    w.delete(Table::Files, b"a").expect("delete");
    w.put(Table::Files, b"c", b"2").expect("put");
    assert_eq!(w.get(Table::Files, b"a").expect("get"), None);
    assert_eq!(w.get(Table::Files, b"b").expect("get"), Some(b"1".to_vec()));
    let all = w
        .scan_collect(Table::Files, b"", b"\xff", usize::MAX)
        .expect("scan");
    assert_eq!(
        all,
        vec![
            (b"b".to_vec(), b"1".to_vec()),
            (b"c".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(
        w.scan_collect(Table::Files, b"", b"\xff", 1)
            .expect("scan")
            .len(),
        1
    );
    w.put(Table::Files, b"a", b"3").expect("put again");
    assert_eq!(w.get(Table::Files, b"a").expect("get"), Some(b"3".to_vec()));
    w.commit().expect("commit");
    assert_eq!(scan(&*s, Table::Files, b"", b"\xff", false).len(), 3);
}

/// Read-modify-write increments from two threads through two handles: with writers one at
/// a time no increment is lost, and a writer that waits sees the commit it waited for.
pub fn writers_are_serialised_across_handles(fresh: Fresh<'_>) {
    let case = fresh();
    put_all(
        &*case.store,
        Table::Engine,
        &[(b"n".to_vec(), 0u64.to_be_bytes().to_vec())],
    );
    let rounds = 8;
    let bump = |store: Arc<dyn MetaStore>| {
        std::thread::spawn(move || {
            for _ in 0..rounds {
                let mut w = store.write().expect("write");
                let v = w.get(Table::Engine, b"n").expect("get").expect("counter");
                let n = u64::from_be_bytes(v.try_into().expect("8 bytes"));
                std::thread::sleep(Duration::from_millis(15));
                w.put(Table::Engine, b"n", &(n + 1).to_be_bytes())
                    .expect("put");
                w.commit().expect("commit");
            }
        })
    };
    let a = bump(case.store.clone());
    let b = bump(case.other.clone());
    a.join().expect("writer a");
    b.join().expect("writer b");
    let v = case
        .store
        .read()
        .expect("read")
        .get(Table::Engine, b"n")
        .expect("get");
    let n = u64::from_be_bytes(v.expect("counter").try_into().expect("8 bytes"));
    assert_eq!(n, 2 * rounds, "increments lost: writers overlapped");
}
