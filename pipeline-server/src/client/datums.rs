//! Calls of the datums routes.
