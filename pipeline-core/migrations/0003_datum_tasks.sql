-- Schema version 3: datum tasks, the datum sets the engine hosts sharing this store claim
-- with a lease and report back (see pfs/meta_postgres/tasks.rs). Rows live only while their
-- job runs: the leader deletes each one when it records its result.
CREATE TABLE datum_tasks (
    id bigserial PRIMARY KEY,
    -- The job the set belongs to (`PIPELINE/JOB`).
    job text NOT NULL,
    -- Which warm workers run it (`PIPELINE@VERSION`).
    pool text NOT NULL,
    payload bytea NOT NULL,
    -- The host holding the lease, how often the task was claimed, and until when.
    holder text,
    claims integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    -- Set once, by the holder of the current claim.
    result bytea
);
CREATE INDEX datum_tasks_open ON datum_tasks (pool, id) WHERE result IS NULL;
CREATE INDEX datum_tasks_job ON datum_tasks (job, id);

-- The engine hosts working for this store, and when each last said so (the leader sizes
-- datum sets by the hosts seen lately).
CREATE TABLE engine_hosts (
    name text PRIMARY KEY,
    seen timestamptz NOT NULL
);
