//! Calls of the commits routes.
