//! `executor-docker`: runs pipeline user code through the `pipeline_core::executor::Executor` trait.
