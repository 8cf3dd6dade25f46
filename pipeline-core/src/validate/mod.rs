//! Spec validation: all errors at once, each with a field path and a source location.
