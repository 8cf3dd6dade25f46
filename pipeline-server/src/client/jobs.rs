//! Calls of the jobs routes.
