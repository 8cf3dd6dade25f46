//! `executor-k8s`: runs pipeline user code through the `pipeline_core::executor::Executor` trait.
