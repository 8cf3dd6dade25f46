//! The network of workers whose user code talks to the engine's host
//! ([`EffectiveSpec::talks_to_host`](pipeline_core::spec::EffectiveSpec::talks_to_host):
//! spouts, services, S3 inputs and outputs).
//!
//! Other workers keep [`DockerConfig::network_mode`](crate::DockerConfig::network_mode)
//! (default `none`). These join one *internal* bridge network per daemon,
//! [`WORKER_NETWORK`]: containers on it reach the host at the network's gateway address
//! (where the engine's per-pipeline servers listen) and the host reaches them at their own
//! address, but nothing outside the machine is routed. One shared network, created when
//! first needed and never removed, because every bridge network takes an address pool of
//! the daemon's few. Workers of different pipelines on it can reach each other; use
//! `network_mode: host` (then everything is on loopback) only where that is acceptable.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use pipeline_core::executor::ExecutorError;

use crate::container::{BACKEND, backend_err, is_status};

/// The internal bridge network networked workers join.
pub const WORKER_NETWORK: &str = "pipeline-workers";

/// The label that marks [`WORKER_NETWORK`] as this crate's.
const LABEL: &str = "io.pipeline-engine.network";

/// Creates [`WORKER_NETWORK`] unless it exists, and returns its gateway: the host's address
/// on it.
pub(crate) async fn ensure_worker_network(docker: &Docker) -> Result<IpAddr, ExecutorError> {
    if let Some(gateway) = gateway_of(docker).await? {
        return Ok(gateway);
    }
    let request = NetworkCreateRequest {
        name: WORKER_NETWORK.to_string(),
        driver: Some("bridge".to_string()),
        internal: Some(true),
        labels: Some(HashMap::from([(LABEL.to_string(), "workers".to_string())])),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(_) => {}
        // Another executor created it meanwhile.
        Err(e) if is_status(&e, 409) => {}
        Err(e) => {
            return Err(backend_err(
                format!("creating the worker network {WORKER_NETWORK}"),
                e,
            ));
        }
    }
    gateway_of(docker)
        .await?
        .ok_or_else(|| ExecutorError::Backend {
            backend: BACKEND,
            message: format!("the worker network {WORKER_NETWORK} has no IPv4 gateway address"),
            source: None,
        })
}

/// The gateway of [`WORKER_NETWORK`], `None` when the network does not exist.
async fn gateway_of(docker: &Docker) -> Result<Option<IpAddr>, ExecutorError> {
    let network = match docker
        .inspect_network(
            WORKER_NETWORK,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(n) => n,
        Err(e) if is_status(&e, 404) => return Ok(None),
        Err(e) => {
            return Err(backend_err(
                format!("inspecting the worker network {WORKER_NETWORK}"),
                e,
            ));
        }
    };
    let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
    Ok(configs
        .iter()
        .filter_map(|c| c.gateway.as_deref()?.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4))
}

/// The address of container `id` on [`WORKER_NETWORK`], if it is attached.
pub(crate) async fn container_address(
    docker: &Docker,
    id: &str,
) -> Result<Option<IpAddr>, ExecutorError> {
    let c = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| backend_err(format!("inspecting container {id}"), e))?;
    Ok(c.network_settings
        .and_then(|s| s.networks)
        .and_then(|mut n| n.remove(WORKER_NETWORK))
        .and_then(|e| e.ip_address)
        .and_then(|ip| ip.parse().ok()))
}
