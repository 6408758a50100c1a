//! Behaviour tests of the simulator backend: every item of the alias contract.

mod model;
