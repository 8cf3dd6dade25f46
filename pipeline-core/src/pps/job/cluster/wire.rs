//! What travels through the store's work queue: a datum set to run ([`SetTask`]) and what a
//! host reports for it ([`SetResult`]), as JSON. A datum's inputs travel as their leaf's
//! position in the plan (the host rebuilds the plan from the stored pipeline version), so a
//! task holds paths and hashes, never file contents.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::datum::{Datum, DatumInput, DatumPlan};
use crate::executor::LogStream;
use crate::hash::ContentHash;

use super::super::super::records::{DatumInfo, DatumReason};
use super::super::messages::{Done, Todo};

/// One datum set of one job, for any host to run.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SetTask {
    /// The pipeline.
    pub pipeline: String,
    /// Its version the job runs.
    pub version: u64,
    /// The job.
    pub job: String,
    /// The set's datums, in order.
    pub datums: Vec<WireTodo>,
}

/// A datum to run.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireTodo {
    id: String,
    hash: String,
    reason: DatumReason,
    inputs: Vec<WireInput>,
}

/// One input of a datum to run.
#[derive(Debug, Serialize, Deserialize)]
struct WireInput {
    /// Position of its leaf in the plan.
    leaf: usize,
    path: String,
    hash: String,
    size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    join_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    group_key: String,
}

/// What a host reports for a set it ran to its end.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SetResult {
    /// Its datums' reports, in order.
    pub datums: Vec<WireDone>,
    /// Why the host could not run the set (the job then fails with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a host reports for one datum.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireDone {
    info: DatumInfo,
    /// Output files: path, size, content hash (hex).
    puts: Vec<(String, u64, String)>,
    /// Log lines: timestamp (ms), `true` for stderr, text.
    logs: Vec<(u64, bool, String)>,
}

impl WireTodo {
    /// `t` for the queue.
    pub(super) fn of(t: &Todo) -> WireTodo {
        WireTodo {
            id: t.id.clone(),
            hash: t.hash.clone(),
            reason: t.reason.clone(),
            inputs: t
                .datum
                .inputs
                .iter()
                .map(|i| WireInput {
                    leaf: i.leaf.index,
                    path: i.path.clone(),
                    hash: i.hash.to_hex(),
                    size: i.size,
                    join_key: i.join_key.clone(),
                    group_key: i.group_key.clone(),
                })
                .collect(),
        }
    }

    /// The datum to run, its inputs' leaves taken from `plan` (the same pipeline version's);
    /// an error names what does not fit.
    pub(super) fn into_todo(self, plan: &DatumPlan, set_end: bool) -> Result<Todo, String> {
        let leaves: &[Arc<crate::datum::PfsLeaf>] = plan.leaves();
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for i in self.inputs {
            let leaf = leaves.get(i.leaf).cloned().ok_or_else(|| {
                format!(
                    "datum {}: input leaf {} is not in the plan",
                    self.id, i.leaf
                )
            })?;
            let hash: ContentHash = i
                .hash
                .parse()
                .map_err(|_| format!("datum {}: bad content hash {:?}", self.id, i.hash))?;
            inputs.push(DatumInput {
                leaf,
                path: i.path,
                hash,
                size: i.size,
                join_key: i.join_key,
                group_key: i.group_key,
            });
        }
        Ok(Todo {
            datum: Datum { inputs },
            id: self.id,
            hash: self.hash,
            reason: self.reason,
            set_end,
        })
    }
}

impl WireDone {
    /// `d` (not cancelled) for the queue.
    pub(super) fn of(d: Done) -> WireDone {
        WireDone {
            info: d.info,
            puts: d
                .puts
                .into_iter()
                .map(|(p, n, h)| (p, n, h.to_hex()))
                .collect(),
            logs: d
                .logs
                .into_iter()
                .map(|(ts, s, line)| (ts, s == LogStream::Stderr, line))
                .collect(),
        }
    }

    /// The host that ran it, as its record shows.
    pub(super) fn ran_on(&mut self, host: &str) {
        self.info.host = Some(host.to_string());
    }

    /// The report to collect; an error names a malformed hash.
    pub(super) fn into_done(self) -> Result<Done, String> {
        let mut puts = Vec::with_capacity(self.puts.len());
        for (path, size, hash) in self.puts {
            let h: ContentHash = hash
                .parse()
                .map_err(|_| format!("output {path}: bad content hash {hash:?}"))?;
            puts.push((path, size, h));
        }
        let logs = self
            .logs
            .into_iter()
            .map(|(ts, err, line)| {
                let s = if err {
                    LogStream::Stderr
                } else {
                    LogStream::Stdout
                };
                (ts, s, line)
            })
            .collect();
        Ok(Done {
            info: self.info,
            puts,
            logs,
            cancelled: false,
        })
    }
}
