//! Pushing a local image to a registry under a content-derived tag, as `pachctl create|update
//! pipeline --push-images` does before it sends the spec.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures::StreamExt;

use crate::config::RegistryAuth;
use crate::container::is_status;
use crate::executor::DockerExecutor;
use crate::images::repository;

/// Characters of the image ID used as the pushed tag: the same content always gets the same
/// tag, and a rebuilt image a new one.
const TAG_LEN: usize = 12;

/// An image pushed by [`DockerExecutor::push_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// The pushed reference, `REGISTRY/NAME:TAG` (what the spec names afterwards).
    pub reference: String,
    /// The manifest digest the registry stored (`sha256:…`).
    pub digest: String,
}

/// Why an image could not be pushed. Messages name the image and the registry, never a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The local image does not exist.
    #[error("image {image:?} not found on the Docker daemon (build or pull it first)")]
    ImageNotFound {
        /// The image as named.
        image: String,
    },
    /// The registry did not answer.
    #[error("registry {registry} is unreachable: {message}")]
    Unreachable {
        /// `HOST[:PORT]`.
        registry: String,
        /// What the daemon reported.
        message: String,
    },
    /// The registry refused the credentials (or asked for some and none were given).
    #[error("registry {registry} refused the credentials{}: {message}", user_part(.username))]
    Refused {
        /// `HOST[:PORT]`.
        registry: String,
        /// The user name given, if any.
        username: Option<String>,
        /// What the registry said.
        message: String,
    },
    /// Any other failure of the daemon or the registry.
    #[error("pushing {image:?} to {registry}: {message}")]
    Failed {
        /// The image as named.
        image: String,
        /// `HOST[:PORT]`.
        registry: String,
        /// What went wrong.
        message: String,
    },
}

fn user_part(username: &Option<String>) -> String {
    username
        .as_ref()
        .map(|u| format!(" of user {u:?}"))
        .unwrap_or_default()
}

impl DockerExecutor {
    /// Tags local image `image` as `REGISTRY/NAME:TAG` and pushes it: `NAME` is the image's
    /// repository without a registry host, `TAG` the first 12 hex digits of its image ID
    /// (content-derived, so pushing unchanged content again changes nothing). Returns the
    /// reference and the digest the registry stored.
    pub async fn push_image(
        &self,
        image: &str,
        registry: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<PushedImage, PushError> {
        let docker = self.client();
        let failed = |message: String| PushError::Failed {
            image: image.to_string(),
            registry: registry.to_string(),
            message,
        };
        let inspected = match docker.inspect_image(image).await {
            Ok(i) => i,
            Err(e) if is_status(&e, 404) => {
                return Err(PushError::ImageNotFound {
                    image: image.to_string(),
                });
            }
            Err(e) => return Err(failed(e.to_string())),
        };
        let id = inspected.id.unwrap_or_default();
        let tag: String = id
            .strip_prefix("sha256:")
            .unwrap_or(&id)
            .chars()
            .take(TAG_LEN)
            .collect();
        if tag.len() < TAG_LEN {
            return Err(failed(format!("the daemon reported image ID {id:?}")));
        }
        let repo = format!("{registry}/{}", without_registry(repository(image)));
        let opts = TagImageOptionsBuilder::default()
            .repo(&repo)
            .tag(&tag)
            .build();
        docker
            .tag_image(image, Some(opts))
            .await
            .map_err(|e| failed(format!("tagging as {repo}:{tag}: {e}")))?;
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(String::from_utf8_lossy(&a.password.0).into_owned()),
            serveraddress: Some(a.server_address.clone().unwrap_or_else(|| registry.into())),
            ..Default::default()
        });
        let opts = PushImageOptionsBuilder::default().tag(&tag).build();
        let mut stream = docker.push_image(&repo, Some(opts), credentials);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                return Err(classify(e.to_string(), registry, auth, image));
            }
        }
        let pushed = docker
            .inspect_image(&format!("{repo}:{tag}"))
            .await
            .map_err(|e| failed(format!("inspecting the pushed image: {e}")))?;
        let digest = pushed
            .repo_digests
            .unwrap_or_default()
            .iter()
            .find_map(|rd| {
                rd.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, d)| d.to_string())
            })
            .ok_or_else(|| failed("the daemon recorded no digest for the push".to_string()))?;
        Ok(PushedImage {
            reference: format!("{repo}:{tag}"),
            digest,
        })
    }
}

/// The push error a daemon message stands for.
fn classify(
    message: String,
    registry: &str,
    auth: Option<&RegistryAuth>,
    image: &str,
) -> PushError {
    let m = message.to_ascii_lowercase();
    if m.contains("unauthorized")
        || m.contains("authentication required")
        || m.contains("no basic auth credentials")
        || m.contains("denied")
    {
        PushError::Refused {
            registry: registry.to_string(),
            username: auth.map(|a| a.username.clone()),
            message,
        }
    } else if m.contains("connection refused")
        || m.contains("no such host")
        || m.contains("i/o timeout")
        || m.contains("dial tcp")
    {
        PushError::Unreachable {
            registry: registry.to_string(),
            message,
        }
    } else {
        PushError::Failed {
            image: image.to_string(),
            registry: registry.to_string(),
            message,
        }
    }
}

/// `reg:5000/team/x` → `team/x`; `team/x` and `x` stay (a first segment is a registry host
/// when it has a `.` or `:` or is `localhost`, as Docker decides).
fn without_registry(repo: &str) -> &str {
    match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_are_replaced() {
        assert_eq!(without_registry("reg:5000/team/x"), "team/x");
        assert_eq!(without_registry("localhost/x"), "x");
        assert_eq!(without_registry("docker.io/library/x"), "library/x");
        assert_eq!(without_registry("team/x"), "team/x");
        assert_eq!(without_registry("x"), "x");
    }

    #[test]
    fn daemon_messages_are_classified_without_secrets() {
        let auth = RegistryAuth {
            username: "alice".into(),
            password: pipeline_core::executor::SecretValue(b"hunter2".to_vec()),
            server_address: None,
        };
        let e = classify(
            "unauthorized: authentication required".into(),
            "r:1",
            Some(&auth),
            "x",
        );
        let text = e.to_string();
        assert!(matches!(e, PushError::Refused { .. }), "{text}");
        assert!(
            text.contains("r:1") && text.contains("alice") && !text.contains("hunter2"),
            "{text}"
        );
        let e = classify(
            "Get \"http://r:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused".into(),
            "r:1",
            None,
            "x",
        );
        assert!(matches!(e, PushError::Unreachable { .. }), "{e}");
    }
}
