//! Integration tests of the HLO engine: JAX fixtures, reference properties, parser
//! robustness and in-place state updates.

mod fixtures;
mod in_place;
mod parser_fuzz;
mod props;
