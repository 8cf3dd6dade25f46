//! `executor-process`: runs pipeline user code through the `pipeline_core::executor::Executor` trait.
