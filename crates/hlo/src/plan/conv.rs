//! Planning `convolution`: dimension labels, window, group counts, checked against the
//! operands and the declared result as XLA's shape inference checks them.

use super::attrs::parse_window;
use super::{Op, Planner};
use crate::ir::{ArrayType, Instr, Type};
use crate::kernels::ConvDims;
use statetensor_core::{DType, Result};

/// The axes `dim_labels` gives one operand: (batch-like, feature-like, spatial in order).
type Labels = (usize, usize, Vec<usize>);

/// Reads one operand's labels (`b01f`, `01io`, ...): `first` and `second` name the two
/// non-spatial axes, digits the spatial ones.
fn labels(s: &str, first: char, second: char) -> Option<Labels> {
    let (mut a, mut b) = (None, None);
    let mut spatial: Vec<Option<usize>> = vec![None; s.len()];
    let mut spatial_count = 0;
    for (axis, ch) in s.chars().enumerate() {
        if ch == first && a.is_none() {
            a = Some(axis);
        } else if ch == second && b.is_none() {
            b = Some(axis);
        } else {
            let d = ch.to_digit(10)? as usize;
            if d >= spatial.len() || spatial[d].is_some() {
                return None;
            }
            spatial[d] = Some(axis);
            spatial_count += 1;
        }
    }
    let spatial: Vec<usize> = spatial[..spatial_count]
        .iter()
        .map(|x| x.ok_or(()))
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    Some((a?, b?, spatial))
}

/// `b01f_01io->b01f` into the input's, the kernel's and the result's labels.
fn dim_labels(s: &str) -> Option<(Labels, Labels, Labels)> {
    let (operands, result) = s.trim().split_once("->")?;
    let (lhs, rhs) = operands.split_once('_')?;
    let (l, r, o) = (
        labels(lhs, 'b', 'f')?,
        labels(rhs, 'i', 'o')?,
        labels(result, 'b', 'f')?,
    );
    (l.2.len() == r.2.len() && l.2.len() == o.2.len()).then_some((l, r, o))
}

impl<'a> Planner<'a> {
    pub(super) fn convolution(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 2 {
            return self.err(
                instr,
                format!("convolution takes 2 operands, found {}", ots.len()),
            );
        }
        let l = self.array(instr, ots[0], "convolution input")?;
        let r = self.array(instr, ots[1], "convolution kernel")?;
        let declared = self.array(instr, &instr.ty, "the result of convolution")?;
        let labels_attr = self.attr(instr, "dim_labels")?;
        let Some(((lb, lf, ls), (ri, ro, rs), (ob, of, os))) = dim_labels(&labels_attr.value)
        else {
            return self.err(
                instr,
                format!(
                    "dim_labels={}: expected input, kernel and result labels like b01f_01io->b01f (b, f and one digit per spatial dimension; i, o and the same digits; b, f and the same digits)",
                    labels_attr.value
                ),
            );
        };
        let n = ls.len();
        for (what, rank, t) in [("input", l.dims.len(), l), ("kernel", r.dims.len(), r)] {
            if rank != n + 2 {
                return self.err(
                    instr,
                    format!(
                        "dim_labels={} name {} axes but the {what} is {t}",
                        labels_attr.value,
                        n + 2
                    ),
                );
            }
        }
        if declared.dims.len() != n + 2 {
            return self.err(
                instr,
                format!(
                    "dim_labels={} name {} axes but the result is {declared}",
                    labels_attr.value,
                    n + 2
                ),
            );
        }
        let window = match self.window_attr(instr, n)? {
            Some(w) => w,
            None if n == 0 => parse_window("{}", 0).expect("an empty window"),
            None => {
                return self.err(
                    instr,
                    format!("convolution over {n} spatial dimensions needs attribute 'window'"),
                )
            }
        };
        let count = |name: &str| -> Result<usize> {
            match instr.attr(name) {
                None => Ok(1),
                Some(_) => match self.usize_attr(instr, name)? {
                    0 => self.err(instr, format!("{name} must be at least 1")),
                    k => Ok(k),
                },
            }
        };
        let (fg, bg) = (count("feature_group_count")?, count("batch_group_count")?);
        let (batch, channels) = (l.dims[lb], l.dims[lf]);
        let (in_features, out_features) = (r.dims[ri], r.dims[ro]);
        let mut problems = Vec::new();
        if fg > 1 && bg > 1 {
            problems.push(format!(
                "feature_group_count={fg} and batch_group_count={bg} are both above 1"
            ));
        }
        if channels != in_features * fg {
            problems.push(format!(
                "the input has {channels} features but the kernel takes {in_features} per group x {fg} group(s)"
            ));
        }
        if out_features % fg != 0 || out_features % bg != 0 {
            problems.push(format!(
                "the kernel's {out_features} output features do not split into {} groups",
                fg * bg
            ));
        }
        if batch % bg != 0 {
            problems.push(format!(
                "the input batch {batch} does not split into batch_group_count={bg} groups"
            ));
        }
        let mut dims = vec![0usize; n + 2];
        dims[ob] = batch / bg;
        dims[of] = out_features;
        for d in 0..n {
            let k = r.dims[rs[d]];
            if window.size[d] != k {
                problems.push(format!(
                    "the window's size {} in spatial dimension {d} is not the kernel's {k}",
                    window.size[d]
                ));
            }
            match window.output_len(d, l.dims[ls[d]]) {
                Some(len) => dims[os[d]] = len,
                None => problems.push(format!(
                    "the window's extent over spatial dimension {d} overflows"
                )),
            }
        }
        let numeric = |t: &ArrayType| t.dtype != DType::Pred;
        if !numeric(l) || !numeric(r) || !numeric(declared) {
            problems.push("convolution takes numbers, not pred".to_string());
        }
        if l.dtype.is_float() != r.dtype.is_float() {
            problems.push(format!(
                "the input is {} but the kernel {}",
                l.dtype, r.dtype
            ));
        }
        if problems.is_empty() && dims != declared.dims {
            problems.push(format!(
                "the result is declared {declared} but the operands and window give {:?}",
                dims
            ));
        }
        if !problems.is_empty() {
            return self.err(
                instr,
                format!("convolution of {l} with {r}: {}", problems.join("; ")),
            );
        }
        Ok((
            Op::Convolution(Box::new(ConvDims {
                lhs_batch: lb,
                lhs_feature: lf,
                lhs_spatial: ls,
                rhs_in: ri,
                rhs_out: ro,
                rhs_spatial: rs,
                out_batch: ob,
                out_feature: of,
                out_spatial: os,
                window,
                feature_groups: fg,
                batch_groups: bg,
            })),
            Type::Array(declared.clone()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_in_every_order() {
        let (l, r, o) = dim_labels("b01f_01io->b01f").unwrap();
        assert_eq!(l, (0, 3, vec![1, 2]));
        assert_eq!(r, (2, 3, vec![0, 1]));
        assert_eq!(o, (0, 3, vec![1, 2]));
        let (l, r, o) = dim_labels("bf10_oi01->f01b").unwrap();
        assert_eq!(l, (0, 1, vec![3, 2]));
        assert_eq!(r, (1, 0, vec![2, 3]));
        assert_eq!(o, (3, 0, vec![1, 2]));
        assert_eq!(dim_labels("bf_io->bf").unwrap().0, (0, 1, vec![]));
        for bad in [
            "b0f_0io",
            "b0f_01io->b0f",
            "b00f_01io->b01f",
            "b0x_0io->b0f",
            "bf2_io2->bf2",
        ] {
            assert!(dim_labels(bad).is_none(), "{bad}");
        }
    }
}
