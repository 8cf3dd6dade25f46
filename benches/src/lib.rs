//! Benchmark helpers shared by the criterion benches in `benches/benches/` and the scripted
//! measurements in `benches/scripts/`.

pub mod null_engine;
