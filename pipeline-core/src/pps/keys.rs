//! The keys of the engine's records in the store's engine table: the one place that knows
//! their layout.
//!
//! | key | record |
//! |---|---|
//! | `P/{pipeline}` | the current [`PipelineInfo`](super::PipelineInfo) |
//! | `V/{pipeline}/{version:012}` | every version of it |
//! | `J/{pipeline}/{job}` | a [`JobInfo`](super::JobInfo) |
//! | `D/{pipeline}/{job}/{datum}` | a [`DatumInfo`](super::DatumInfo) |
//! | `O/{pipeline}/{job}/{rank}/{u64::MAX - time_us:020}/{datum}` | empty: the job's datums in reading order (see below) |
//! | `I/{pipeline}/{job}` | the job's `O/` entries are complete (absent for jobs recorded before the index existed) |
//! | `R/{pipeline}` | a [`RerunMode::FailedOnly`](super::RerunMode) rerun waiting for its job: `{"version", "job"}` |
//! | `L/{pipeline}/{job}/{datum}/{seq:010}` | a [`LogLine`](super::LogLine) |
//! | `K/{pipeline}/{job}` | why a running job was stopped (plain text) |
//! | `X/{pipeline}` | the pipeline was deleted (time, ms; removed when it is created again) |
//! | `S/{secret}` | a stored secret (`secrets`; names are DNS subdomains, no `/`) |
//! | `T/{transaction}` | a [`TransactionInfo`](super::TransactionInfo): a transaction's queued requests (removed when it is finished or deleted) |
//! | `E/cluster` | the cluster's pipeline defaults (`defaults`) |
//! | `E/project/{project}` | a project's pipeline defaults (project names have no `/`) |
//!
//! The `O/` entries are a secondary index of the `D/` records, written in the same
//! transaction as each record (and the entry of a record's previous value removed): `rank` is
//! 0 failed, 1 recovered, 2 success, 3 skipped; `time_us` is the datum's download + process +
//! upload time, so within a state the slowest comes first. A page of datums is a range scan.
//!
//! **Pipelines in keys.** `{pipeline}` is the pipeline's ID as the key spells it
//! ([`segment`]): a pipeline of the `default` project is its bare name (the layout stores had
//! before projects, so they open unchanged), a pipeline of another project is
//! `{project}:{name}`. Every constructor takes the pipeline ID in either of its accepted forms
//! (`NAME` or `PROJECT/NAME`, see [`super::pipeline_id`]) and spells it this way, so
//! `default/edges` and `edges` are one pipeline.
//!
//! Project and pipeline names are `[a-zA-Z0-9_-]+` (no `/`, no `:`), job IDs are hex and
//! datum IDs are hex, so a `/` ends each part and a prefix never matches a longer name or a
//! pipeline of another project. Numbers are zero-padded so that key order is numeric order.

use std::borrow::Cow;

use super::datum_pages::{datum_time_us, state_rank};
use super::records::{DatumInfo, DatumState};

/// How a key spells pipeline ID `id` (see the module docs): `NAME` for the default
/// project, `PROJECT:NAME` otherwise. Idempotent, so a segment read back from a key spells
/// the same key again.
pub(crate) fn segment(id: &str) -> Cow<'_, str> {
    let id = id
        .strip_prefix(crate::pfs::DEFAULT_PROJECT)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(id);
    match id.contains('/') {
        true => Cow::Owned(id.replacen('/', ":", 1)),
        false => Cow::Borrowed(id),
    }
}

/// A key of an engine record.
pub(crate) trait RecordKey {
    /// The key's bytes in the engine table.
    fn encode(&self) -> Vec<u8>;
}

/// The start of a group of keys, for prefix scans and deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPrefix(String);

impl KeyPrefix {
    /// The prefix's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// What follows the prefix in `key` (`None` when `key` does not start with it).
    pub(crate) fn rest<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        key.strip_prefix(self.as_bytes())
    }
}

/// `P/{pipeline}`: the current version of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PipelineKey<'a> {
    /// Pipeline name.
    pub name: &'a str,
}

impl<'a> PipelineKey<'a> {
    /// The key of pipeline `name`.
    pub(crate) fn new(name: &'a str) -> Self {
        PipelineKey { name }
    }

    /// Every pipeline.
    pub(crate) fn all() -> KeyPrefix {
        KeyPrefix("P/".into())
    }

    /// Reads a key back (`None` when it is not a pipeline key).
    pub(crate) fn decode(key: &'a [u8]) -> Option<Self> {
        let name = std::str::from_utf8(key).ok()?.strip_prefix("P/")?;
        (!name.is_empty() && !name.contains('/')).then_some(PipelineKey { name })
    }
}

impl RecordKey for PipelineKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("P/{}", segment(self.name)).into_bytes()
    }
}

/// `S/{secret}`: a stored secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SecretKey<'a> {
    /// Secret name.
    pub name: &'a str,
}

impl<'a> SecretKey<'a> {
    /// The key of secret `name`.
    pub(crate) fn new(name: &'a str) -> Self {
        SecretKey { name }
    }

    /// Every secret.
    pub(crate) fn all() -> KeyPrefix {
        KeyPrefix("S/".into())
    }
}

impl RecordKey for SecretKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("S/{}", self.name).into_bytes()
    }
}

/// `T/{transaction}`: a transaction and its queued requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransactionKey<'a> {
    /// Transaction ID (hex, no `/`).
    pub id: &'a str,
}

impl<'a> TransactionKey<'a> {
    /// The key of transaction `id`.
    pub(crate) fn new(id: &'a str) -> Self {
        TransactionKey { id }
    }

    /// Every transaction.
    pub(crate) fn all() -> KeyPrefix {
        KeyPrefix("T/".into())
    }
}

impl RecordKey for TransactionKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("T/{}", self.id).into_bytes()
    }
}

/// `V/{pipeline}/{version:012}`: one version of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PipelineVersionKey<'a> {
    /// Pipeline name.
    pub name: &'a str,
    /// Version (1 on create).
    pub version: u64,
}

impl<'a> PipelineVersionKey<'a> {
    /// The key of `name` at `version`.
    pub(crate) fn new(name: &'a str, version: u64) -> Self {
        PipelineVersionKey { name, version }
    }

    /// Every version of pipeline `name`.
    pub(crate) fn of(name: &str) -> KeyPrefix {
        KeyPrefix(format!("V/{}/", segment(name)))
    }
}

impl RecordKey for PipelineVersionKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("V/{}/{:012}", segment(self.name), self.version).into_bytes()
    }
}

/// `J/{pipeline}/{job}`: a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Job ID (= commit-set ID).
    pub job: &'a str,
}

impl<'a> JobKey<'a> {
    /// The key of `pipeline@job`.
    pub(crate) fn new(pipeline: &'a str, job: &'a str) -> Self {
        JobKey { pipeline, job }
    }

    /// Every job of every pipeline.
    pub(crate) fn all() -> KeyPrefix {
        KeyPrefix("J/".into())
    }

    /// Every job of `pipeline`.
    pub(crate) fn of(pipeline: &str) -> KeyPrefix {
        KeyPrefix(format!("J/{}/", segment(pipeline)))
    }
}

impl RecordKey for JobKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("J/{}/{}", segment(self.pipeline), self.job).into_bytes()
    }
}

/// `D/{pipeline}/{job}/{datum}`: a datum's record in one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DatumKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Job ID.
    pub job: &'a str,
    /// Datum ID.
    pub datum: &'a str,
}

impl<'a> DatumKey<'a> {
    /// The key of `datum` in `pipeline@job`.
    pub(crate) fn new(pipeline: &'a str, job: &'a str, datum: &'a str) -> Self {
        DatumKey {
            pipeline,
            job,
            datum,
        }
    }

    /// Every datum of `pipeline@job`, in datum ID order ([`KeyPrefix::rest`] is the ID).
    pub(crate) fn of_job(pipeline: &str, job: &str) -> KeyPrefix {
        KeyPrefix(format!("D/{}/{job}/", segment(pipeline)))
    }

    /// Every datum of every job of `pipeline`.
    pub(crate) fn of_pipeline(pipeline: &str) -> KeyPrefix {
        KeyPrefix(format!("D/{}/", segment(pipeline)))
    }
}

impl RecordKey for DatumKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("D/{}/{}/{}", segment(self.pipeline), self.job, self.datum).into_bytes()
    }
}

impl<'a> DatumKey<'a> {
    /// Reads a key back (`None` when it is not a datum key).
    pub(crate) fn decode(key: &'a [u8]) -> Option<Self> {
        let rest = std::str::from_utf8(key).ok()?.strip_prefix("D/")?;
        let mut parts = rest.split('/');
        let (pipeline, job, datum) = (parts.next()?, parts.next()?, parts.next()?);
        let well_formed =
            parts.next().is_none() && [pipeline, job, datum].iter().all(|p| !p.is_empty());
        well_formed.then_some(DatumKey {
            pipeline,
            job,
            datum,
        })
    }
}

/// `G/{pipeline}/{job}/{datum}`: a datum of the root job that a job showing the root's
/// records (see `pps/inherited.rs`) no longer has: its input is gone (the value is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoneKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Job ID.
    pub job: &'a str,
    /// Datum ID.
    pub datum: &'a str,
}

impl<'a> GoneKey<'a> {
    /// The marker of `datum` in `pipeline@job`.
    pub(crate) fn new(pipeline: &'a str, job: &'a str, datum: &'a str) -> Self {
        GoneKey {
            pipeline,
            job,
            datum,
        }
    }

    /// Every marker of `pipeline@job`, in datum ID order ([`KeyPrefix::rest`] is the ID).
    pub(crate) fn of_job(pipeline: &str, job: &str) -> KeyPrefix {
        KeyPrefix(format!("G/{}/{job}/", segment(pipeline)))
    }

    /// Every marker of every job of `pipeline`.
    pub(crate) fn of_pipeline(pipeline: &str) -> KeyPrefix {
        KeyPrefix(format!("G/{}/", segment(pipeline)))
    }
}

impl RecordKey for GoneKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("G/{}/{}/{}", segment(self.pipeline), self.job, self.datum).into_bytes()
    }
}

/// `O/{pipeline}/{job}/{position}`: a datum's place in its job's reading order, where the
/// position is `{rank}/{u64::MAX - time_us:020}/{datum}` (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DatumOrderKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Job ID.
    pub job: &'a str,
    /// The datum's position (see [`DatumOrderKey::position`]).
    pub position: String,
}

impl<'a> DatumOrderKey<'a> {
    /// The order entry of `datum`, recorded in `pipeline@job`.
    pub(crate) fn new(pipeline: &'a str, job: &'a str, datum: &DatumInfo) -> Self {
        DatumOrderKey {
            pipeline,
            job,
            position: Self::position(datum),
        }
    }

    /// Where a datum sorts in reading order, as text that sorts the same way.
    pub(crate) fn position(datum: &DatumInfo) -> String {
        format!(
            "{}/{:020}/{}",
            state_rank(datum.state),
            u64::MAX - datum_time_us(datum),
            datum.id
        )
    }

    /// Whether `position` has the form [`DatumOrderKey::position`] makes.
    pub(crate) fn is_position(position: &str) -> bool {
        let mut parts = position.split('/');
        let (Some(rank), Some(time), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        matches!(rank, "0" | "1" | "2" | "3")
            && time.len() == 20
            && time.bytes().all(|b| b.is_ascii_digit())
            && !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// The datum ID at the end of a position.
    pub(crate) fn datum_of(position: &str) -> &str {
        position.rsplit('/').next().unwrap_or_default()
    }

    /// Every entry of `pipeline@job` ([`KeyPrefix::rest`] is the position).
    pub(crate) fn of_job(pipeline: &str, job: &str) -> KeyPrefix {
        KeyPrefix(format!("O/{}/{job}/", segment(pipeline)))
    }

    /// The entries of the datums of `pipeline@job` in `state`.
    pub(crate) fn of_state(pipeline: &str, job: &str, state: DatumState) -> KeyPrefix {
        KeyPrefix(format!(
            "O/{}/{job}/{}/",
            segment(pipeline),
            state_rank(state)
        ))
    }

    /// Every entry of every job of `pipeline`.
    pub(crate) fn of_pipeline(pipeline: &str) -> KeyPrefix {
        KeyPrefix(format!("O/{}/", segment(pipeline)))
    }
}

impl RecordKey for DatumOrderKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!(
            "O/{}/{}/{}",
            segment(self.pipeline),
            self.job,
            self.position
        )
        .into_bytes()
    }
}

/// `I/{pipeline}/{job}`: the job's [`DatumOrderKey`] entries are complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderIndexedKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Job ID.
    pub job: &'a str,
}

impl<'a> OrderIndexedKey<'a> {
    /// The marker of `pipeline@job`.
    pub(crate) fn new(pipeline: &'a str, job: &'a str) -> Self {
        OrderIndexedKey { pipeline, job }
    }

    /// Every marker of `pipeline`.
    pub(crate) fn of(pipeline: &str) -> KeyPrefix {
        KeyPrefix(format!("I/{}/", segment(pipeline)))
    }
}

impl RecordKey for OrderIndexedKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("I/{}/{}", segment(self.pipeline), self.job).into_bytes()
    }
}

/// `R/{pipeline}`: a failed-only rerun whose job has not been created yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RerunKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
}

impl<'a> RerunKey<'a> {
    /// The pending rerun of `pipeline`.
    pub(crate) fn new(pipeline: &'a str) -> Self {
        RerunKey { pipeline }
    }
}

impl RecordKey for RerunKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("R/{}", segment(self.pipeline)).into_bytes()
    }
}

/// `L/{pipeline}/{job}/{datum}/{seq:010}`: one log line of a datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Job ID.
    pub job: &'a str,
    /// Datum ID.
    pub datum: &'a str,
    /// Line number within the datum's log.
    pub seq: u64,
}

impl<'a> LogKey<'a> {
    /// The key of line `seq` of `datum` in `pipeline@job`.
    pub(crate) fn new(pipeline: &'a str, job: &'a str, datum: &'a str, seq: u64) -> Self {
        LogKey {
            pipeline,
            job,
            datum,
            seq,
        }
    }

    /// The log lines of `pipeline`, of one of its jobs, or of one datum of that job (a
    /// datum without a job is ignored).
    pub(crate) fn of(pipeline: &str, job: Option<&str>, datum: Option<&str>) -> KeyPrefix {
        let pipeline = segment(pipeline);
        KeyPrefix(match (job, datum) {
            (Some(j), Some(d)) => format!("L/{pipeline}/{j}/{d}/"),
            (Some(j), None) => format!("L/{pipeline}/{j}/"),
            _ => format!("L/{pipeline}/"),
        })
    }
}

impl RecordKey for LogKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!(
            "L/{}/{}/{}/{:010}",
            segment(self.pipeline),
            self.job,
            self.datum,
            self.seq
        )
        .into_bytes()
    }
}

/// `K/{pipeline}/{job}`: the reason a running job was asked to stop, read by its runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KillReasonKey<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Job ID.
    pub job: &'a str,
}

impl<'a> KillReasonKey<'a> {
    /// The key for `pipeline@job`.
    pub(crate) fn new(pipeline: &'a str, job: &'a str) -> Self {
        KillReasonKey { pipeline, job }
    }

    /// Every kill reason of `pipeline`.
    pub(crate) fn of(pipeline: &str) -> KeyPrefix {
        KeyPrefix(format!("K/{}/", segment(pipeline)))
    }
}

impl RecordKey for KillReasonKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("K/{}/{}", segment(self.pipeline), self.job).into_bytes()
    }
}

/// `X/{pipeline}`: a deleted pipeline's tombstone, so that deleting it again succeeds (an
/// interrupted `delete pipeline` run again) while an unknown name is still an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeletedPipelineKey<'a> {
    /// Pipeline name.
    pub name: &'a str,
}

impl<'a> DeletedPipelineKey<'a> {
    /// The tombstone of pipeline `name`.
    pub(crate) fn new(name: &'a str) -> Self {
        DeletedPipelineKey { name }
    }
}

impl RecordKey for DeletedPipelineKey<'_> {
    fn encode(&self) -> Vec<u8> {
        format!("X/{}", segment(self.name)).into_bytes()
    }
}

/// `E/cluster` or `E/project/{project}`: pipeline defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultsKey<'a> {
    /// The cluster defaults.
    Cluster,
    /// The defaults of one project.
    Project(&'a str),
}

impl RecordKey for DefaultsKey<'_> {
    fn encode(&self) -> Vec<u8> {
        match self {
            DefaultsKey::Cluster => b"E/cluster".to_vec(),
            DefaultsKey::Project(p) => format!("E/project/{p}").into_bytes(),
        }
    }
}

/// Every record group a pipeline owns besides its current version ([`PipelineKey`]) and its
/// pending rerun ([`RerunKey`]): versions, jobs, datums and their order index, logs and kill
/// reasons. Deleting a pipeline deletes these.
pub(crate) fn owned_by(pipeline: &str) -> [KeyPrefix; 8] {
    [
        GoneKey::of_pipeline(pipeline),
        PipelineVersionKey::of(pipeline),
        JobKey::of(pipeline),
        DatumKey::of_pipeline(pipeline),
        DatumOrderKey::of_pipeline(pipeline),
        OrderIndexedKey::of(pipeline),
        LogKey::of(pipeline, None, None),
        KillReasonKey::of(pipeline),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_stored_layout() {
        assert_eq!(PipelineKey::new("edges").encode(), b"P/edges");
        assert_eq!(
            PipelineVersionKey::new("e", 7).encode(),
            b"V/e/000000000007"
        );
        assert_eq!(JobKey::new("e", "ab").encode(), b"J/e/ab");
        assert_eq!(DatumKey::new("e", "ab", "cd").encode(), b"D/e/ab/cd");
        assert_eq!(
            LogKey::new("e", "ab", "cd", 3).encode(),
            b"L/e/ab/cd/0000000003"
        );
        assert_eq!(KillReasonKey::new("e", "ab").encode(), b"K/e/ab");
        assert_eq!(DeletedPipelineKey::new("e").encode(), b"X/e");
        assert_eq!(OrderIndexedKey::new("e", "ab").encode(), b"I/e/ab");
        assert_eq!(RerunKey::new("e").encode(), b"R/e");
        assert_eq!(DefaultsKey::Cluster.encode(), b"E/cluster");
        assert_eq!(DefaultsKey::Project("ml").encode(), b"E/project/ml");
    }

    #[test]
    fn datum_keys_decode_and_order_positions_check_their_form() {
        let key = DatumKey::new("e", "ab", "cd").encode();
        assert_eq!(DatumKey::decode(&key), Some(DatumKey::new("e", "ab", "cd")));
        assert_eq!(DatumKey::decode(b"D/e/ab"), None);
        assert_eq!(DatumKey::decode(b"D/e/ab/cd/x"), None);
        assert!(DatumOrderKey::is_position("2/18446744073709551614/0a9f"));
        for bad in [
            "",
            "4/18446744073709551614/0a",
            "2/1844/0a",
            "2/18446744073709551614/zz",
            "2/18446744073709551614/0a/x",
            "2/1844674407370955161x/0a",
        ] {
            assert!(!DatumOrderKey::is_position(bad), "{bad}");
        }
        assert_eq!(
            DatumOrderKey::datum_of("2/18446744073709551614/0a9f"),
            "0a9f"
        );
    }

    #[test]
    fn prefixes_cover_exactly_their_keys() {
        let key = DatumKey::new("e", "ab", "cd").encode();
        assert_eq!(DatumKey::of_job("e", "ab").rest(&key), Some(&b"cd"[..]));
        assert_eq!(DatumKey::of_pipeline("e2").rest(&key), None);
        assert!(key.starts_with(DatumKey::of_pipeline("e").as_bytes()));
        assert!(
            !JobKey::new("edges", "x")
                .encode()
                .starts_with(JobKey::of("e").as_bytes())
        );
        let log = LogKey::new("e", "ab", "cd", 1).encode();
        for p in [
            LogKey::of("e", None, None),
            LogKey::of("e", Some("ab"), None),
            LogKey::of("e", Some("ab"), Some("cd")),
        ] {
            assert!(log.starts_with(p.as_bytes()));
        }
        assert!(owned_by("e").iter().all(|p| p.rest(b"P/e").is_none()));
    }

    #[test]
    fn pipeline_keys_decode() {
        let key = PipelineKey::new("edges").encode();
        assert_eq!(PipelineKey::decode(&key), Some(PipelineKey::new("edges")));
        assert_eq!(PipelineKey::decode(b"J/edges/ab"), None);
    }

    #[test]
    fn project_pipelines_have_keys_of_their_own() {
        assert_eq!(PipelineKey::new("default/edges").encode(), b"P/edges");
        assert_eq!(PipelineKey::new("proj/edges").encode(), b"P/proj:edges");
        assert_eq!(JobKey::new("proj/e", "ab").encode(), b"J/proj:e/ab");
        assert_eq!(
            LogKey::new("proj/e", "ab", "cd", 1).encode(),
            b"L/proj:e/ab/cd/0000000001"
        );
        // A default-project pipeline named like a project covers none of its pipelines.
        let job = JobKey::new("proj/e", "ab").encode();
        assert!(!job.starts_with(JobKey::of("proj").as_bytes()));
        assert!(job.starts_with(JobKey::of("proj/e").as_bytes()));
        assert!(owned_by("proj").iter().all(|p| p.rest(&job).is_none()));
        // Read back, a key spells itself again.
        let key = DatumKey::new("proj/e", "ab", "cd").encode();
        let d = DatumKey::decode(&key).expect("datum key");
        assert_eq!(DatumKey::new(d.pipeline, d.job, d.datum).encode(), key);
        assert!(PipelineKey::decode(b"P/proj:edges").is_some());
    }
}
