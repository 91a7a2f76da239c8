//! Criterion benchmarks spanning crates live in `benches/`; this library is empty.
