-- Schema version 2: project records (`Table::Projects`), one row per project other than the
-- implicit `default` (see pfs/projects.rs).
CREATE TABLE kv_projects (k bytea PRIMARY KEY, v bytea NOT NULL);
