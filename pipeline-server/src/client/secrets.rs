//! Calls of the secrets routes.
