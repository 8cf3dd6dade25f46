-- Schema version 1 of the PostgreSQL metadata store (pipeline-core `store-postgres`).
-- One table per metadata table: byte keys in `bytea` (PostgreSQL orders bytea bytewise,
-- shorter prefix first: the same order as the embedded store), values opaque bytes.
CREATE TABLE kv_repos (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_branches (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_commits (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_commit_sets (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_files (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_engine (k bytea PRIMARY KEY, v bytea NOT NULL);
