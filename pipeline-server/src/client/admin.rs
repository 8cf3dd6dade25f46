//! Calls of the admin routes.
