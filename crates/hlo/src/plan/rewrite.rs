//! Plan-time rewrites: they change how a computation's values are computed, never what.
//!
//! - A `dot` whose operand is a `transpose` reads the transpose's operand in place: the
//!   product's dimension numbers are renumbered through the permutation
//!   ([`DotDims::through_transpose`]), and the matrix kernels take the strided view (a
//!   matrix-vector product over a transposed matrix streams its columns, which are then
//!   contiguous). flax's `Embed.attend` (`h @ E.T`) and attention's `q @ k.T` lower this way;
//!   materialising the transpose copied the whole operand every step. The transpose itself
//!   disappears from the plan when the dot was its only reader.

use super::Op;
use crate::kernels::DotDims;

/// Folds every `transpose` read by a `dot` into the dot's dimension numbers, rewriting
/// `ops` and `operands` (indexed by instruction). Chains of transposes fold one by one.
pub(super) fn fold_transposes_into_dots(ops: &mut [Option<Op>], operands: &mut [Vec<usize>]) {
    for i in 0..ops.len() {
        let Some(Op::Dot(dims)) = &ops[i] else {
            continue;
        };
        let mut dims: DotDims = dims.clone();
        let mut changed = false;
        for side in 0..2 {
            while let Some(Op::Transpose(perm)) =
                operands[i].get(side).and_then(|&o| ops[o].as_ref())
            {
                let source = operands[operands[i][side]][0];
                dims = dims.through_transpose(side, perm);
                operands[i][side] = source;
                changed = true;
            }
        }
        if changed {
            ops[i] = Some(Op::Dot(dims));
        }
    }
}

/// Keeps in `order` (operands before users) only what `root` still reads through
/// `operands` after a rewrite.
pub(super) fn keep_live(order: &mut Vec<usize>, operands: &[Vec<usize>], root: usize) {
    let mut live = vec![false; operands.len()];
    live[root] = true;
    for &i in order.iter().rev() {
        if live[i] {
            for &o in &operands[i] {
                live[o] = true;
            }
        }
    }
    order.retain(|&i| live[i]);
}

#[cfg(test)]
mod tests {
    use super::super::{entry_ops, Op};

    #[test]
    fn a_transpose_only_a_dot_reads_leaves_the_plan() {
        let ops = entry_ops(
            "HloModule t
ENTRY e {
  h = f32[4] parameter(0)
  e = f32[6,4] parameter(1)
  t = f32[4,6] transpose(e), dimensions={1,0}
  ROOT y = f32[6] dot(h, t), lhs_contracting_dims={0}, rhs_contracting_dims={0}
}",
        );
        assert_eq!(ops.len(), 1, "{ops:?}");
        let Op::Dot(d) = &ops[0] else {
            panic!("{ops:?}")
        };
        assert_eq!(
            (d.rhs_contract.as_slice(), d.rhs_free.as_slice()),
            (&[1][..], &[0][..])
        );
    }

    #[test]
    fn a_transpose_with_other_readers_stays_for_them() {
        let ops = entry_ops(
            "HloModule t
ENTRY e {
  h = f32[4] parameter(0)
  e = f32[6,4] parameter(1)
  t = f32[4,6] transpose(e), dimensions={1,0}
  y = f32[6] dot(h, t), lhs_contracting_dims={0}, rhs_contracting_dims={0}
  ROOT r = (f32[6], f32[4,6]) tuple(y, t)
}",
        );
        assert_eq!(
            ops.iter().filter(|o| matches!(o, Op::Transpose(_))).count(),
            1
        );
    }
}
