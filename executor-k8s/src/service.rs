//! The Kubernetes Service of a pipeline with `service` (or `spout.service`), as Pachyderm
//! exposes it: `type` from the spec (default `NodePort`), `port` and `nodePort` the
//! `external_port`, `targetPort` the worker's `internal_port`, selecting the pipeline
//! version's worker pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pipeline_core::executor::WorkerPoolSpec;
use pipeline_core::spec::ServiceType;

use crate::config::K8sConfig;
use crate::names;

/// The longest Kubernetes object name (a DNS label).
const MAX_NAME: usize = 63;

/// The Service exposing `pool`'s workers, when its spec asks for one.
///
/// ```
/// use executor_k8s::{K8sConfig, build_service};
///
/// let parsed = pipeline_core::spec::parse_str(
///     "pipeline: {name: web}\ntransform: {image: 'web:1', cmd: [serve]}\n\
///      service: {internal_port: 8080, external_port: 30080}\ninput: {pfs: {repo: site, glob: /}}\n",
///     "web.yaml",
/// )
/// .unwrap();
/// let pool = pipeline_core::pps::dry_run_pool_spec(&parsed[0].spec);
/// let svc = build_service(&pool, &K8sConfig::default()).unwrap();
/// let spec = svc.spec.unwrap();
/// assert_eq!(spec.type_.as_deref(), Some("NodePort"));
/// assert_eq!(spec.ports.unwrap()[0].node_port, Some(30080));
/// ```
pub fn build_service(pool: &WorkerPoolSpec, config: &K8sConfig) -> Option<Service> {
    let spec = &pool.spec;
    let svc = spec
        .service
        .as_ref()
        .or_else(|| spec.spout.as_ref().and_then(|s| s.service.as_ref()))?;
    let service_type = svc
        .service_type
        .clone()
        .unwrap_or(ServiceType::NodePort)
        .as_str()
        .to_string();
    let external = if svc.external_port > 0 {
        svc.external_port
    } else {
        svc.internal_port
    };
    let node_port = (service_type == "NodePort" && svc.external_port > 0).then_some(external);
    let mut labels = names::pipeline_selector_labels(&pool.project, &pool.pipeline, &config.owner);
    let mut selector = labels.clone();
    selector.insert(names::LABEL_VERSION.into(), pool.version.to_string());
    selector.insert(names::LABEL_COMPONENT.into(), "worker".into());
    labels.insert(names::LABEL_COMPONENT.into(), "service".into());
    Some(Service {
        metadata: ObjectMeta {
            name: Some(service_name(pool)),
            namespace: config.namespace.clone(),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(service_type),
            selector: Some(BTreeMap::from_iter(selector)),
            ports: Some(vec![ServicePort {
                name: Some("user".into()),
                protocol: Some("TCP".into()),
                port: external,
                target_port: Some(IntOrString::Int(svc.internal_port)),
                node_port,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `<project>-<pipeline>-v<version>`, shortened to a DNS label.
fn service_name(pool: &WorkerPoolSpec) -> String {
    let name = format!(
        "{}-v{}",
        names::dns_base(&pool.project, &pool.pipeline),
        pool.version
    );
    let mut short: String = name.chars().take(MAX_NAME).collect();
    while short.ends_with('-') {
        short.pop();
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(yaml: &str) -> WorkerPoolSpec {
        let parsed = pipeline_core::spec::parse_str(yaml, "p.yaml").unwrap();
        pipeline_core::pps::dry_run_pool_spec(&parsed[0].spec)
    }

    #[test]
    fn a_service_is_rendered_after_its_pods_and_selects_them() {
        let p = pool(
            "pipeline: {name: web}\ntransform: {image: 'web:1', cmd: [serve]}\n\
             service: {internal_port: 8080, external_port: 30080, type: ClusterIP}\n\
             input: {pfs: {repo: site, glob: /}}\n",
        );
        let config = K8sConfig {
            namespace: Some("jobs".into()),
            ..K8sConfig::default()
        };
        let yaml = crate::render_worker_manifests(&p, &config).unwrap();
        let pod = yaml.find("kind: Pod").unwrap();
        let svc = yaml.find("kind: Service").unwrap();
        assert!(pod < svc, "{yaml}");
        let s = build_service(&p, &config).unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("default-web-v1"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("jobs"));
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        let port = &spec.ports.unwrap()[0];
        assert_eq!(
            (port.port, port.node_port, port.target_port.clone()),
            (30080, None, Some(IntOrString::Int(8080)))
        );
        let selector = spec.selector.unwrap();
        assert_eq!(selector[names::LABEL_PIPELINE], "web");
        assert_eq!(selector[names::LABEL_VERSION], "1");
        assert_eq!(selector[names::LABEL_COMPONENT], "worker");
    }

    #[test]
    fn a_spout_service_is_rendered_and_plain_pipelines_get_none() {
        let spout = pool(
            "pipeline: {name: feed}\ntransform: {image: 'f:1', cmd: [run]}\n\
             spout: {service: {internal_port: 9000, external_port: 30900}}\n",
        );
        let s = build_service(&spout, &K8sConfig::default()).unwrap();
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.ports.unwrap()[0].node_port, Some(30900));
        let plain = pool(
            "pipeline: {name: edges}\ntransform: {image: 'e:1', cmd: [run]}\n\
             input: {pfs: {repo: images, glob: /*}}\n",
        );
        assert!(build_service(&plain, &K8sConfig::default()).is_none());
        let yaml = crate::render_worker_manifests(&plain, &K8sConfig::default()).unwrap();
        assert!(!yaml.contains("kind: Service"), "{yaml}");
    }
}
