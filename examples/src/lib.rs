//! Shared code of the example programs and `pipectl`.

pub mod cli;
