//! Calls of the logs routes.
