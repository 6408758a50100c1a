//! The CLI contract (docs/architecture.md §9), through the real binary: one test binary,
//! one module per command or concern.

mod backends;
mod cores;
mod inspect;
mod measure;
mod models;
mod run;
mod support;
