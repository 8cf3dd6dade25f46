//! Executor conformance suite.
