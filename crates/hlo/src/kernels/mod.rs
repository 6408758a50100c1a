//! The kernels: one function per HLO operation family, on [`Tensor`](crate::Tensor)s.
//!
//! | module | what it holds |
//! |---|---|
//! | [`op_kinds`] | the unary, binary and comparison kinds the planner resolves opcodes into |
//! | [`elementwise`] | unary, binary, compare, select, clamp, convert, bitcast-convert, map |
//! | [`fused`] | chains of elementwise operations in one pass, block by block |
//! | [`movement`] | reshape, transpose, broadcast, slices, dynamic slices and updates, concatenate, reverse, iota, pad |
//! | [`indexing`] | gather, scatter |
//! | [`dot`] (with [`gemm`]) | dot with general dimension numbers |
//! | [`conv`] | convolution, as im2col onto matrix products |
//! | [`reduce`] | reduce, reduce-window |
//! | [`select_scatter`] | select-and-scatter (max pooling's gradient) |
//! | [`precision`] | reduce-precision |
//! | [`rng`] | rng-bit-generator (ThreeFry, Philox) |
//! | [`select_reduce`] | (value, index) reducers such as argmax, by a table of cases |
//! | [`sort`] | sort with a comparator |
//! | [`special`] | special functions as XLA computes them (erf) |
//! | [`layout`] | index arithmetic and element access the others use |
//!
//! Kernels assume the planner has type-checked their operands and attributes; they index
//! only within the shapes the planner validated. Dependencies point one way: `layout` uses
//! no other kernel, `movement` only `layout`, `elementwise` only `movement`; the structured
//! kernels use those.

pub(crate) mod conv;
pub(crate) mod dot;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod gemm;
pub(crate) mod indexing;
pub(crate) mod layout;
pub(crate) mod movement;
pub(crate) mod op_kinds;
pub(crate) mod precision;
pub(crate) mod reduce;
pub(crate) mod rng;
pub(crate) mod select_reduce;
pub(crate) mod select_scatter;
pub(crate) mod sort;
pub(crate) mod special;

pub(crate) use conv::*;
pub(crate) use dot::*;
pub(crate) use elementwise::*;
pub(crate) use fused::*;
pub(crate) use indexing::*;
pub(crate) use layout::*;
pub(crate) use movement::*;
pub(crate) use op_kinds::*;
pub(crate) use precision::*;
pub(crate) use reduce::*;
pub(crate) use rng::*;
pub(crate) use select_reduce::*;
pub(crate) use select_scatter::*;
pub(crate) use sort::*;
