//! Shared code of the example programs and `pipectl`.
