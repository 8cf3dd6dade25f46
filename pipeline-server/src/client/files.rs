//! Calls of the files routes.
