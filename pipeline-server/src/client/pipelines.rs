//! Calls of the pipelines routes.
