//! Integration tests of the HLO engine: JAX fixtures, reference properties, parser
//! robustness and in-place state updates.

mod collectives;
mod conv;
mod fixtures;
mod fusion;
mod grammar;
mod in_place;
mod kernels;
mod parser_fuzz;
mod props;
mod proto_fuzz;
mod regions;
mod sorts;
mod spmd_fixtures;
mod transposed_dots;
mod xla_corpus;

/// Proptest case count: `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
