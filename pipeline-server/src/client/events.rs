//! Calls of the events routes.
