//! What a worker pod's status means for the executor: still starting, ready, or failed for a
//! Kubernetes reason that must reach the user instead of a hang.

use k8s_openapi::api::core::v1::{Pod, PodStatus};

/// Why a worker pod cannot run datums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodFailure {
    /// The image cannot be pulled (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`).
    Image {
        /// The image reference from the container status or spec.
        image: String,
        /// Kubernetes reason.
        reason: String,
        /// Kubernetes message (may be empty).
        message: String,
    },
    /// The scheduler cannot place the pod (`Unschedulable`).
    Unschedulable {
        /// Kubernetes message, e.g. `0/3 nodes are available: 3 Insufficient nvidia.com/gpu.`
        message: String,
    },
    /// The pod or its container died or cannot start (`Evicted`, `OOMKilled`,
    /// `CreateContainerConfigError`, `StartError`, ...).
    Lost {
        /// Kubernetes reason.
        reason: String,
        /// Kubernetes message (may be empty).
        message: String,
    },
}

impl PodFailure {
    /// `reason: message` (or just the reason).
    pub fn describe(&self) -> String {
        let (reason, message) = match self {
            PodFailure::Image {
                reason, message, ..
            }
            | PodFailure::Lost { reason, message } => (reason.as_str(), message.as_str()),
            PodFailure::Unschedulable { message } => ("Unschedulable", message.as_str()),
        };
        if message.is_empty() {
            reason.to_string()
        } else {
            format!("{reason}: {message}")
        }
    }
}

/// The state of a worker pod as far as the executor is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// Not there (never created, or deleted).
    Missing,
    /// Scheduled or being scheduled, pulling, starting.
    Starting {
        /// Phase and the most specific waiting reason, for timeout messages.
        detail: String,
    },
    /// Phase `Running` and the user container is running and ready.
    Ready,
    /// Cannot (or can no longer) run datums.
    Failed(PodFailure),
}

const IMAGE_REASONS: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];
const FATAL_WAITING: [&str; 5] = [
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "StartError",
    "CrashLoopBackOff",
];

/// Classifies a pod (`None`: it does not exist).
pub fn classify(pod: Option<&Pod>) -> PodState {
    let Some(pod) = pod else {
        return PodState::Missing;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return PodState::Failed(PodFailure::Lost {
            reason: "Deleted".into(),
            message: "the worker pod is being deleted".into(),
        });
    }
    let Some(status) = pod.status.as_ref() else {
        return PodState::Starting {
            detail: "no status yet".into(),
        };
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let reason = status.reason.clone().unwrap_or_default();
    let message = status.message.clone().unwrap_or_default();

    // A pod-level reason on a finished pod (Evicted, Preempted, NodeLost, Shutdown) says more
    // than the container state it leaves behind (often `ContainerStatusUnknown`).
    if matches!(phase, "Failed" | "Succeeded") && !reason.is_empty() {
        return PodState::Failed(PodFailure::Lost { reason, message });
    }
    // Then container-level states: they carry the most specific reason.
    if let Some(failed) = container_failure(status) {
        return failed;
    }
    match phase {
        "Failed" | "Succeeded" => {
            return PodState::Failed(PodFailure::Lost {
                reason: if reason.is_empty() {
                    format!("pod phase {phase}")
                } else {
                    reason
                },
                message,
            });
        }
        "Running" => {
            let ready = status
                .container_statuses
                .iter()
                .flatten()
                .any(|cs| cs.ready && cs.state.as_ref().is_some_and(|s| s.running.is_some()));
            if ready {
                return PodState::Ready;
            }
        }
        _ => {}
    }
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
        {
            return PodState::Failed(PodFailure::Unschedulable {
                message: c.message.clone().unwrap_or_default(),
            });
        }
    }
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .next();
    PodState::Starting {
        detail: match waiting {
            Some(w) => format!("phase {phase}, container waiting: {w}"),
            None => format!("phase {phase}"),
        },
    }
}

/// The failure a container of the pod reports (an image problem, a fatal waiting reason, or a
/// terminated worker container), if any.
fn container_failure(status: &PodStatus) -> Option<PodState> {
    for cs in status.container_statuses.iter().flatten() {
        let Some(state) = cs.state.as_ref() else {
            continue;
        };
        if let Some(w) = &state.waiting {
            let reason = w.reason.clone().unwrap_or_default();
            let message = w.message.clone().unwrap_or_default();
            if IMAGE_REASONS.contains(&reason.as_str()) {
                let image = cs.image.clone();
                return Some(PodState::Failed(PodFailure::Image {
                    image,
                    reason,
                    message,
                }));
            }
            if FATAL_WAITING.contains(&reason.as_str()) {
                return Some(PodState::Failed(PodFailure::Lost { reason, message }));
            }
        }
        if let Some(t) = &state.terminated {
            let reason = t
                .reason
                .clone()
                .unwrap_or_else(|| format!("exit code {}", t.exit_code));
            let mut message = t.message.clone().unwrap_or_default();
            if message.is_empty() && t.exit_code != 0 {
                message = format!("worker container exited with code {}", t.exit_code);
            }
            return Some(PodState::Failed(PodFailure::Lost { reason, message }));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    use super::*;

    fn pod(status: PodStatus) -> Pod {
        Pod {
            status: Some(status),
            ..Default::default()
        }
    }

    #[test]
    fn eviction_reason_wins_over_the_container_state() {
        let p = pod(PodStatus {
            phase: Some("Failed".into()),
            reason: Some("Evicted".into()),
            message: Some("The node was low on resource: ephemeral-storage.".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "user".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        reason: Some("ContainerStatusUnknown".into()),
                        exit_code: 137,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(
            classify(Some(&p)),
            PodState::Failed(PodFailure::Lost {
                reason: "Evicted".into(),
                message: "The node was low on resource: ephemeral-storage.".into()
            })
        );
    }

    #[test]
    fn missing_pending_and_deleting() {
        assert_eq!(classify(None), PodState::Missing);
        assert!(matches!(
            classify(Some(&pod(PodStatus::default()))),
            PodState::Starting { .. }
        ));
        let mut p = pod(PodStatus::default());
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Default::default(),
        ));
        assert!(matches!(
            classify(Some(&p)),
            PodState::Failed(PodFailure::Lost { reason, .. }) if reason == "Deleted"
        ));
    }

    #[test]
    fn terminated_without_reason_reports_the_exit_code() {
        let p = pod(PodStatus {
            phase: Some("Failed".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "user".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 2,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let PodState::Failed(f) = classify(Some(&p)) else {
            panic!("not failed")
        };
        assert_eq!(
            f.describe(),
            "exit code 2: worker container exited with code 2"
        );
    }
}
