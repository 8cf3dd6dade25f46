//! Restarting running datums (Pachyderm's `RestartDatum`, `pipectl restart datum`): the
//! attempt a datum is running is cancelled and the datum starts a new attempt at once. A
//! restarted attempt is recorded (failure `cancelled`) but does not use up one of the
//! datum's `datum_tries`, and `err_cmd` does not run after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::executor::CancellationToken;

use super::super::Engine;
use super::super::error::{PpsError, Result};

/// (pipeline, job, datum).
type Key = (String, String, String);

/// A running datum: its input paths (to match `restart datum` arguments) and the token of
/// the attempt it runs now.
struct Running {
    inputs: Vec<String>,
    attempt: CancellationToken,
}

/// The datums running now, by pipeline, job and datum ID.
#[derive(Clone, Default)]
pub(crate) struct RunningDatums(Arc<Mutex<HashMap<Key, Running>>>);

impl RunningDatums {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Running>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a datum that starts running; it is forgotten when the handle is dropped.
    pub(crate) fn register(
        &self,
        pipeline: &str,
        job: &str,
        datum: &str,
        inputs: Vec<String>,
    ) -> RunningDatum {
        let key = (pipeline.to_string(), job.to_string(), datum.to_string());
        let running = Running {
            inputs,
            attempt: CancellationToken::new(),
        };
        self.map().insert(key.clone(), running);
        RunningDatum {
            registry: self.clone(),
            key,
        }
    }

    /// Cancels the current attempt of every running datum of `pipeline@job` whose ID, or one
    /// of whose input paths, is in `wanted`; returns their IDs.
    pub(crate) fn restart(&self, pipeline: &str, job: &str, wanted: &[String]) -> Vec<String> {
        let mut restarted = Vec::new();
        for ((p, j, d), running) in self.map().iter() {
            if p != pipeline || j != job {
                continue;
            }
            let hit = wanted
                .iter()
                .any(|w| w == d || running.inputs.iter().any(|i| i == w));
            if hit {
                running.attempt.cancel();
                restarted.push(d.clone());
            }
        }
        restarted.sort();
        restarted
    }
}

/// One running datum's registration.
pub(crate) struct RunningDatum {
    registry: RunningDatums,
    key: Key,
}

impl RunningDatum {
    /// The cancellation token of a new attempt (a restart cancels this one).
    pub(crate) fn new_attempt(&self) -> CancellationToken {
        let token = CancellationToken::new();
        if let Some(r) = self.registry.map().get_mut(&self.key) {
            r.attempt = token.clone();
        }
        token
    }
}

impl Drop for RunningDatum {
    fn drop(&mut self) {
        self.registry.map().remove(&self.key);
    }
}

impl Engine {
    /// Restarts the running datums of job `pipeline@job` named in `datums` (each a datum ID
    /// or a path of one of its input files): their current attempt is cancelled and they
    /// start again at once (see the module docs). Returns the restarted datum IDs.
    ///
    /// A finished job is [`PpsError::JobFinished`]; when no running datum matches, a
    /// [`PpsError::Usage`] error says so (only datums running now can be restarted).
    ///
    /// Blocking: one store read.
    pub fn restart_datum(
        &self,
        pipeline: &str,
        job: &str,
        datums: &[String],
    ) -> Result<Vec<String>> {
        let info = self.inspect_job(pipeline, job)?;
        if info.state.is_terminal() {
            return Err(PpsError::JobFinished {
                pipeline: pipeline.to_string(),
                job: info.id,
            });
        }
        let restarted = self
            .inner
            .running_datums
            .restart(&info.pipeline, &info.id, datums);
        if restarted.is_empty() {
            return Err(PpsError::Usage(format!(
                "no datum of job {pipeline}@{} running now matches {} (restart datum restarts running datums, by ID or input path)",
                info.id,
                datums.join(",")
            )));
        }
        Ok(restarted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_match_ids_and_input_paths_of_one_job() {
        let r = RunningDatums::default();
        let a = r.register("p", "j", "aaa", vec!["/in/a.txt".into()]);
        let b = r.register("p", "j", "bbb", vec!["/in/b.txt".into()]);
        let other = r.register("p", "k", "ccc", vec!["/in/a.txt".into()]);
        let (ta, tb, tc) = (a.new_attempt(), b.new_attempt(), other.new_attempt());
        assert_eq!(
            r.restart("p", "j", &["/in/a.txt".into(), "bbb".into()]),
            ["aaa", "bbb"]
        );
        assert!(ta.is_cancelled() && tb.is_cancelled() && !tc.is_cancelled());
        // A new attempt has a fresh token; a finished datum is forgotten.
        assert!(!a.new_attempt().is_cancelled());
        drop(b);
        assert_eq!(r.restart("p", "j", &["bbb".into()]), Vec::<String>::new());
    }
}
