//! The SQL of the key-value tables: one table `kv_<name>` per [`Table`], key `k`, value `v`.

use crate::pfs::meta::Table;

/// The SQL table of `table`.
pub(super) fn table(table: Table) -> String {
    format!("kv_{}", table.name())
}

/// The value at key `$1`.
pub(super) fn get(t: Table) -> String {
    format!("SELECT v FROM {} WHERE k = $1", table(t))
}

/// Up to `$3` pairs with `$1 <= k < $2`, in key order (or last key first).
pub(super) fn range(t: Table, reverse: bool) -> String {
    let order = if reverse { "DESC" } else { "ASC" };
    format!(
        "SELECT k, v FROM {} WHERE k >= $1 AND k < $2 ORDER BY k {order} LIMIT $3",
        table(t)
    )
}

/// Sets each key of `$1` to the value at the same place in `$2` (no key twice).
pub(super) fn upsert(t: Table) -> String {
    format!(
        "INSERT INTO {} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
         ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
        table(t)
    )
}

/// Removes every key of `$1`.
pub(super) fn delete(t: Table) -> String {
    format!("DELETE FROM {} WHERE k = ANY($1::bytea[])", table(t))
}

/// Splits a 64-bit advisory lock key as `pg_locks` shows it: `(classid, objid)`.
pub(super) fn lock_parts(key: i64) -> (u32, u32) {
    let bits = key as u64;
    ((bits >> 32) as u32, bits as u32)
}
