//! Versioned data storage (repos, branches, commits, files).
