//! Several engine hosts sharing one store (a PostgreSQL store with its contents in an
//! object store): the host owning the store (the leader) plans each job as usual but hands
//! its datum sets to the store's work queue ([`crate::pfs::work_queue`]) instead of its own
//! workers ([`publish`]); every host, the leader included, claims sets with a lease, runs
//! them on its own executor and reports their datums' records, outputs (already in the
//! object store) and logs back ([`host`]); the leader's collector records them exactly as
//! it records its own workers' reports. [`wire`] is what travels through the queue.
//!
//! Why this is exactly-once: only the leader writes metadata, and every write it makes is
//! fenced by its owner lock (a deposed leader can write nothing). A set whose host dies or
//! is cut off is claimed again once its lease runs out; the first claim can then neither
//! renew nor complete it, so each set's result is recorded once. A new leader resumes the
//! running jobs (what was recorded stays), drops every queued set and publishes the rest
//! again.
//!
//! Which pipelines share their sets: all but those whose user code talks to the leader's
//! host (services, spouts, S3 inputs and `s3_out`), which run on the leader's workers.

mod host;
mod publish;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use crate::pfs::work_queue::WorkQueue as TaskQueue;
use crate::spec::EffectiveSpec;

use super::super::Engine;

/// How long a claim lasts without being renewed (renewed every third of it).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// This engine as one host of several sharing a store.
#[derive(Clone)]
pub(crate) struct Cluster {
    /// This host's name, unique among the hosts (what datum records show).
    pub host: String,
    /// The store's work queue.
    pub queue: Arc<dyn TaskQueue>,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
}

/// The queue key of the warm workers of pipeline `pipeline` at `version`.
fn pool_key(pipeline: &str, version: u64) -> String {
    format!("{pipeline}@{version}")
}

/// The pipeline and version of a pool key.
fn parse_pool_key(key: &str) -> Option<(&str, u64)> {
    let (p, v) = key.rsplit_once('@')?;
    Some((p, v.parse().ok()?))
}

/// The queue key of a job.
fn job_key(pipeline: &str, job: &str) -> String {
    format!("{pipeline}/{job}")
}

impl Engine {
    /// Whether this engine is one host of several sharing its store
    /// ([`EngineBuilder::cluster_host`](crate::pps::EngineBuilder::cluster_host)).
    pub fn is_cluster_host(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// Whether this engine hands `spec`'s datum sets to the hosts sharing its store.
    pub(in crate::pps) fn shares_sets(&self, spec: &EffectiveSpec) -> bool {
        self.inner.cluster.is_some() && !spec.talks_to_host()
    }

    /// The engine hosts working for the store lately (1 without a cluster): datum sets are
    /// sized for the workers of them all.
    pub(in crate::pps) fn hosts_sharing(&self) -> u64 {
        let Some(c) = &self.inner.cluster else {
            return 1;
        };
        c.queue.live_hosts(c.lease).unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_keys_round_trip_with_an_at_sign_in_the_project() {
        let key = pool_key("proj@x/edges", 12);
        assert_eq!(parse_pool_key(&key), Some(("proj@x/edges", 12)));
        assert_eq!(parse_pool_key("no-version"), None);
        assert_eq!(parse_pool_key("p@v"), None);
    }
}
