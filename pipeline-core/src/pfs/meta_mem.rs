//! [`MemMetaStore`]: an in-memory [`MetaStore`] for tests and throw-away stores.
//!
//! Readers get an immutable snapshot (an `Arc` of the tables); a writer works on a private
//! copy and swaps it in on commit, one writer at a time. Nothing is persisted. Each write
//! transaction copies the tables, so this is meant for small data; it also shows how little a
//! backend has to provide.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::error::Result;
use super::meta::{Kv, KvIter, MetaRead, MetaStore, MetaWrite, Table};

type Tables = HashMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// In-memory metadata store (not durable).
#[derive(Debug, Default)]
pub struct MemMetaStore {
    data: RwLock<Arc<Tables>>,
    writer: Mutex<()>,
}

impl MemMetaStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshot(&self) -> Arc<Tables> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn range(tables: &Tables, table: Table, start: &[u8], end: &[u8]) -> Vec<Kv> {
    if start >= end {
        // Empty (`BTreeMap::range` would panic on start > end).
        return Vec::new();
    }
    tables
        .get(&table)
        .map(|t| {
            t.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

struct MemRead(Arc<Tables>);

impl MetaRead for MemRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        Ok(Box::new(
            range(&self.0, table, start, end).into_iter().map(Ok),
        ))
    }

    fn scan_rev(&self, table: Table, start: &[u8], end: &[u8]) -> Result<KvIter> {
        Ok(Box::new(
            range(&self.0, table, start, end).into_iter().rev().map(Ok),
        ))
    }
}

struct MemWrite<'a> {
    store: &'a MemMetaStore,
    _guard: MutexGuard<'a, ()>,
    working: Tables,
}

impl MetaWrite for MemWrite<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.working.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan_collect(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Kv>> {
        let mut v = range(&self.working, table, start, end);
        v.truncate(limit);
        Ok(v)
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.working
            .entry(table)
            .or_default()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<()> {
        if let Some(t) = self.working.get_mut(&table) {
            t.remove(key);
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let MemWrite { store, working, .. } = *self;
        *store.data.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(working);
        Ok(())
    }
}

impl MetaStore for MemMetaStore {
    fn read(&self) -> Result<Box<dyn MetaRead>> {
        Ok(Box::new(MemRead(self.snapshot())))
    }

    fn write(&self) -> Result<Box<dyn MetaWrite + '_>> {
        let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let working = (*self.snapshot()).clone();
        Ok(Box::new(MemWrite {
            store: self,
            _guard: guard,
            working,
        }))
    }
}
