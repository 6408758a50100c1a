//! Reading instruction attributes: lists, numbers, called computations, slices, padding,
//! windows.

use super::{ctx, CompPlan, Planner};
use crate::ir::{ArrayType, Attr, Instr, Type};
use crate::kernels::Window;
use statetensor_core::{DType, Error, Result};

/// Parses `{1,2,3}` (or `{}`) into numbers.
pub(crate) fn int_list(s: &str) -> Option<Vec<i64>> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner.split(',').map(|x| x.trim().parse().ok()).collect()
}

impl<'a> Planner<'a> {
    pub(super) fn err<T>(&self, instr: &Instr, msg: impl Into<String>) -> Result<T> {
        Err(Error::invalid_model(ctx(self.comp, instr), msg))
    }

    pub(super) fn attr<'i>(&self, instr: &'i Instr, name: &str) -> Result<&'i Attr> {
        match instr.attr(name) {
            Some(a) => Ok(a),
            None => self.err(instr, format!("{} needs attribute '{name}'", instr.opcode)),
        }
    }

    pub(super) fn usize_list(&self, instr: &Instr, name: &str) -> Result<Vec<usize>> {
        let a = self.attr(instr, name)?;
        match int_list(&a.value) {
            Some(v) if v.iter().all(|&x| x >= 0) => Ok(v.into_iter().map(|x| x as usize).collect()),
            _ => self.err(
                instr,
                format!(
                    "attribute {name}={} : expected a list like {{0,1}}",
                    a.value
                ),
            ),
        }
    }

    pub(super) fn opt_usize_list(&self, instr: &Instr, name: &str) -> Result<Vec<usize>> {
        if instr.attr(name).is_some() {
            self.usize_list(instr, name)
        } else {
            Ok(Vec::new())
        }
    }

    pub(super) fn usize_attr(&self, instr: &Instr, name: &str) -> Result<usize> {
        let a = self.attr(instr, name)?;
        match a.value.trim().parse() {
            Ok(v) => Ok(v),
            Err(_) => self.err(
                instr,
                format!("attribute {name}={}: expected a number", a.value),
            ),
        }
    }

    pub(super) fn comp_attr(&self, instr: &Instr, name: &str) -> Result<usize> {
        let a = self.attr(instr, name)?;
        // `to_apply=%c`, or a one-element list `called_computations={%c}`
        let called = a.value.trim().trim_matches(|c| c == '{' || c == '}').trim();
        self.module
            .computation_index(called.trim_start_matches('%'))
            .map_or_else(
                || self.err(instr, format!("no computation named '{}'", a.value)),
                Ok,
            )
    }

    /// The `to_apply` region of a reduce, reduce-window or scatter over operands of
    /// `dtypes`: it must map (accumulators.., elements..) — scalars of `dtypes`, twice — to
    /// one scalar (one operand) or a tuple of them (several).
    pub(super) fn combining_region(&self, instr: &Instr, dtypes: &[DType]) -> Result<usize> {
        let comp = self.comp_attr(instr, "to_apply")?;
        let p = self.plan_of(comp);
        let scalars: Vec<Type> = dtypes.iter().map(|&d| scalar(d)).collect();
        let params: Vec<Type> = scalars.iter().chain(&scalars).cloned().collect();
        let root = match &scalars[..] {
            [one] => one.clone(),
            _ => Type::Tuple(scalars.clone()),
        };
        if p.param_types != params || p.root_ty != root {
            let list: Vec<String> = params.iter().map(|t| t.to_string()).collect();
            return self.err(
                instr,
                format!(
                    "{} region '{}' must map ({}) to {root}",
                    instr.opcode,
                    p.name,
                    list.join(", ")
                ),
            );
        }
        Ok(comp)
    }

    /// The `window=` attribute over `rank` dimensions, or None when it is absent.
    pub(super) fn window_attr(&self, instr: &Instr, rank: usize) -> Result<Option<Window>> {
        let Some(spec) = instr.attr("window") else {
            return Ok(None);
        };
        match parse_window(&spec.value, rank) {
            Some(w) => Ok(Some(w)),
            None => self.err(
                instr,
                format!(
                    "window={}: expected size=AxB stride=.. pad=lo_hi.. lhs_dilate=.. rhs_dilate=.. rhs_reversal=.. for {rank} dimensions",
                    spec.value
                ),
            ),
        }
    }

    pub(super) fn plan_of(&self, c: usize) -> &CompPlan {
        self.plans[c].as_ref().expect("callees are compiled first")
    }

    pub(super) fn array<'t>(
        &self,
        instr: &Instr,
        t: &'t Type,
        what: &str,
    ) -> Result<&'t ArrayType> {
        match t {
            Type::Array(a) => Ok(a),
            other => self.err(instr, format!("{what} must be an array, found {other}")),
        }
    }
}

/// A rank-0 array type.
pub(crate) fn scalar(d: DType) -> Type {
    Type::Array(ArrayType {
        dtype: d,
        dims: Vec::new(),
    })
}

/// `{[0:2], [1:5:2]}` into (start, limit, stride) triples.
pub(super) fn parse_slice(s: &str) -> Option<Vec<(usize, usize, usize)>> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|part| {
            let p = part.trim().strip_prefix('[')?.strip_suffix(']')?;
            let nums: Vec<usize> = p
                .split(':')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<_>>()?;
            match nums[..] {
                [a, b] => Some((a, b, 1)),
                [a, b, c] => Some((a, b, c)),
                _ => None,
            }
        })
        .collect()
}

/// `0_1_0x2_2` into (lo, hi, interior) per dim (interior defaults to 0).
pub(crate) fn parse_padding(s: &str) -> Option<Vec<(i64, i64, i64)>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split('x')
        .map(|d| {
            let n: Vec<i64> = d
                .split('_')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<_>>()?;
            match n[..] {
                [lo, hi] => Some((lo, hi, 0)),
                [lo, hi, i] => Some((lo, hi, i)),
                _ => None,
            }
        })
        .collect()
}

/// Whether `perm` lists each of `0..rank` once (a transpose's `dimensions`).
pub(crate) fn is_permutation(perm: &[usize], rank: usize) -> bool {
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    sorted.iter().copied().eq(0..rank)
}

/// The size of a dimension of `n` elements padded by `lo` and `hi` at its ends (negative:
/// cropped) and `interior` between its elements, or None when the padding is invalid (a
/// negative interior or size) or the size overflows.
pub(crate) fn padded_size(n: usize, lo: i64, hi: i64, interior: i64) -> Option<usize> {
    if interior < 0 {
        return None;
    }
    let n = i64::try_from(n).ok()?;
    let size = (n - 1)
        .max(0)
        .checked_mul(interior)?
        .checked_add(lo)?
        .checked_add(hi)?
        .checked_add(n)?;
    usize::try_from(size).ok()
}

/// `{size=1x2 stride=1x2 pad=0_0x0_1 lhs_dilate=1x1 rhs_dilate=1x1}`.
pub(crate) fn parse_window(s: &str, rank: usize) -> Option<Window> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    let ones = vec![1usize; rank];
    let mut w = Window {
        size: ones.clone(),
        stride: ones.clone(),
        pad_lo: vec![0; rank],
        pad_hi: vec![0; rank],
        base_dilation: ones.clone(),
        window_dilation: ones,
        reversal: vec![false; rank],
    };
    let nums =
        |v: &str| -> Option<Vec<usize>> { v.split('x').map(|x| x.trim().parse().ok()).collect() };
    for field in inner.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        let list = match k {
            "size" => &mut w.size,
            "stride" => &mut w.stride,
            "lhs_dilate" => &mut w.base_dilation,
            "rhs_dilate" => &mut w.window_dilation,
            "pad" => {
                let p = parse_padding(v)?;
                if p.len() != rank {
                    return None;
                }
                w.pad_lo = p.iter().map(|x| x.0).collect();
                w.pad_hi = p.iter().map(|x| x.1).collect();
                continue;
            }
            "rhs_reversal" => {
                let flags = nums(v)?;
                if flags.len() != rank || flags.iter().any(|&f| f > 1) {
                    return None;
                }
                w.reversal = flags.into_iter().map(|f| f == 1).collect();
                continue;
            }
            _ => return None,
        };
        *list = nums(v)?;
        if list.len() != rank {
            return None;
        }
    }
    // sizes, strides and dilations are positive, as XLA's shape inference requires
    let positive = |v: &[usize]| v.iter().all(|&x| x > 0);
    (rank == 0
        || (positive(&w.size)
            && positive(&w.stride)
            && positive(&w.base_dilation)
            && positive(&w.window_dilation)))
    .then_some(w)
}
