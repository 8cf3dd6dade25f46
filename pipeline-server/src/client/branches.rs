//! Calls of the branches routes.
