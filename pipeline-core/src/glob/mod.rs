//! Pachyderm's glob dialect.
