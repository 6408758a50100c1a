//! statetensor-hlo: XLA HLO text in, executed results out, with state updated in place.
//!
//! Design choices:
//! - **Parse once, plan once, run many.** [`Program::parse`] parses the text
//!   ([`parse::parse_module`]), type-checks every instruction and compiles each computation
//!   into a plan: resolved attributes, operand slots, a schedule and the last use of every
//!   value. [`Program::execute`] does no parsing and no name lookups.
//! - **Every op is type-checked before anything runs.** Operand counts, shapes, dtypes and
//!   attributes are checked against what each instruction declares; errors name the line
//!   and instruction. Kernels therefore never see ill-typed input.
//! - **State in place by ownership.** Arguments are `Arc<Tensor>`s. A caller that moves a
//!   state buffer in (keeping no other reference) donates it: `dynamic-update-slice` and
//!   `scatter` then write into it in place, so a one-row update of a 512 MiB cache costs the
//!   row. The scheduler runs other readers of a buffer before its in-place update; where a
//!   reader must still see the old value, copy-on-write copies — functional semantics hold.
//! - **Exact types.** Every HLO element type is stored natively; f16/bf16 compute in f32 and
//!   round to nearest-even on store. Integer arithmetic follows XLA (wrapping, x/0 = -1).
//! - **Real kernels.** `dot` runs a blocked GEMM (matrixmultiply via ndarray) and, for the
//!   matrix-vector products of one-token decoding, a streaming GEMV split by rows; float
//!   elementwise ops and reductions are plain slice loops the compiler vectorises.
//! - **Threads only where they pay.** A program whose kernels can split their work runs each
//!   step on the engine's own rayon pool, whose other threads stay ready while the step
//!   runs; a kernel splits only when one of them polled within the last 50 µs, so it never
//!   waits for a sleeping core or for a thread the OS took away for another process (the
//!   `pool` module has the reasons and figures); any other program runs on the caller's
//!   thread. Work is split by shape, never by thread count or load, so results are the
//!   same on every machine.
//!
//! ```
//! use statetensor_hlo::{Program, Tensor};
//! use std::sync::Arc;
//! let text = "HloModule m, input_output_alias={ {1}: (1, {}, may-alias) }
//! ENTRY e {
//!   x = f32[2] parameter(0)
//!   c = f32[2] parameter(1)
//!   y = f32[2] multiply(x, c)
//!   one = f32[] constant(1)
//!   ones = f32[2] broadcast(one), dimensions={}
//!   c2 = f32[2] add(c, ones)
//!   ROOT t = (f32[2], f32[2]) tuple(y, c2)
//! }";
//! let prog = Program::parse(text, "m.hlo").unwrap();
//! assert_eq!(prog.header_aliases().output_for(1), Some(1));
//! let x = Tensor::from_le_bytes(statetensor_core::DType::F32, &[2], &[0, 0, 128, 63, 0, 0, 0, 64]).unwrap();
//! let cache = Tensor::zeros(statetensor_core::DType::F32, &[2]);
//! let out = prog.execute(vec![Arc::new(x), Arc::new(cache)]).unwrap();
//! assert_eq!(out[0].to_f64_vec(), vec![0.0, 0.0]);
//! assert_eq!(out[1].to_f64_vec(), vec![1.0, 1.0]);
//! ```

mod alias_header;
mod bundle;
pub mod collective;
mod exec;
mod float8;
mod int4;
pub mod ir;
mod kernels;
mod literal;
pub mod manifest;
pub mod models;
pub mod npy;
pub mod parse;
mod plan;
mod pool;
mod program;
pub mod proto;
mod tensor;

pub use alias_header::with_alias_header;
pub use bundle::{Bundle, BUNDLE_HLO, BUNDLE_NEFF, BUNDLE_PROTO};
pub use exec::{ExecStats, Value};
pub use float8::{F8E4M3FN, F8E5M2};
pub use int4::{I4, U4};
pub use kernels::op_kinds::{BinaryOp, CompareDirection, UnaryOp};
pub use manifest::{Manifest, BUNDLE_MANIFEST};
pub use program::Program;
pub use tensor::{Elem, Tensor, BF16, F16};
