//! Constant literals as XLA's parser reads them: `constant(1)`, `constant({ {1, 2}, {3, 4} })`,
//! `inf`, `-nan`, NaN payloads (`-nan(0x7f)`), `true`; `/*i0=0*/` index comments (what
//! XLA's printer writes in rank-4+ literals) are skipped.
//!
//! The nesting must follow the shape (a `[2,3]` literal is two braces of three values); a
//! single value without braces for an array sets its first element and leaves the rest
//! zero, as XLA's parser does (XLA:CPU computes `{{1,0,0},{0,0,0}}` for
//! `s32[2,3] constant(1)`, checked through jaxlib). A value that does not fit
//! the element type is refused (u8 `300`, u32 `4294967296`, bf16 `1e100`), as XLA refuses
//! it, instead of wrapping or turning into infinity.

use crate::ir::ArrayType;
use crate::make_tensor;
use crate::tensor::{Elem, Tensor};
use ndarray::{ArrayD, IxDyn};
use statetensor_core::DType;

/// One element's value: a number, or a NaN with its sign and payload bits (0: default).
enum Value<'a> {
    Number(&'a str),
    Nan { negative: bool, payload: u64 },
}

/// Tells NaNs from numbers, case-insensitively and without allocating (a literal may hold
/// millions of values).
fn value_of(tok: &str) -> Result<Value<'_>, String> {
    let (negative, rest) = match tok.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    if rest.eq_ignore_ascii_case("nan") {
        return Ok(Value::Nan {
            negative,
            payload: 0,
        });
    }
    let nan_prefix = "nan(0x";
    if let Some(hex) = rest
        .get(..nan_prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(nan_prefix))
        .and_then(|_| rest[nan_prefix.len()..].strip_suffix(')'))
    {
        let payload = u64::from_str_radix(hex, 16)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("'{tok}' is not a NaN payload: expected nan(0x<hex>)"))?;
        return Ok(Value::Nan { negative, payload });
    }
    Ok(Value::Number(tok))
}

fn number<T: Elem>(tok: &str) -> Result<T, String> {
    let bad = || format!("'{tok}' is not a valid {} value", T::DTYPE);
    let out_of_range = || format!("{tok} is out of range for {}", T::DTYPE);
    let special = [
        ("true", 1.0),
        ("false", 0.0),
        ("inf", f64::INFINITY),
        ("+inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
    ]
    .into_iter()
    .find(|(word, _)| tok.eq_ignore_ascii_case(word))
    .map(|(_, f)| f);
    if let Some(f) = special {
        if f.is_infinite() && T::DTYPE == DType::F8E4M3FN {
            return Err(format!(
                "{tok} is not a value of f8e4m3fn, which has no infinity"
            ));
        }
        if T::DTYPE.is_float() || T::DTYPE == DType::Pred || f.is_finite() {
            return Ok(T::from_f64(f));
        }
        return Err(bad());
    }
    if !T::DTYPE.is_float() {
        let i = match tok.parse::<i128>() {
            Ok(i) => i,
            Err(_) => match tok.parse::<f64>() {
                Ok(f) if f.fract() == 0.0 && f.abs() < 1e38 => f as i128,
                _ => return Err(bad()),
            },
        };
        let v = T::from_i128(i);
        if T::DTYPE == DType::Pred {
            return if i == 0 || i == 1 {
                Ok(v)
            } else {
                Err(out_of_range())
            };
        }
        return if v.to_i128() == i {
            Ok(v)
        } else {
            Err(out_of_range())
        };
    }
    let f = tok.parse::<f64>().map_err(|_| bad())?;
    let v = T::from_f64(f);
    if f.is_finite() && !v.to_f64().is_finite() {
        return Err(out_of_range());
    }
    Ok(v)
}

/// Little-endian bytes of a NaN of `dtype` with `payload` in its significand (the quiet
/// NaN with an empty payload when 0).
fn nan_bytes(dtype: DType, negative: bool, payload: u64) -> Result<Vec<u8>, String> {
    if dtype == DType::F8E4M3FN {
        // its only NaN is S.1111.111, and XLA's parser refuses a payload written for it
        return match payload {
            0 => Ok(vec![(u8::from(negative) << 7) | 0x7f]),
            _ => Err(format!(
                "NaN payload 0x{payload:x}: f8e4m3fn has one NaN and takes no payload (write nan or -nan)"
            )),
        };
    }
    let (width, significand) = match dtype {
        DType::F64 => (64, 52),
        DType::F8E5M2 => (8, 2),
        DType::F32 => (32, 23),
        DType::F16 => (16, 10),
        DType::BF16 => (16, 7),
        other => return Err(format!("nan is not a valid {other} value")),
    };
    let payload = if payload == 0 {
        1 << (significand - 1)
    } else {
        payload
    };
    if payload >> significand != 0 {
        return Err(format!(
            "NaN payload 0x{payload:x} does not fit {dtype}'s {significand}-bit significand"
        ));
    }
    let exponent = ((1u64 << (width - 1 - significand)) - 1) << significand;
    let bits = (u64::from(negative) << (width - 1)) | exponent | payload;
    Ok(bits.to_le_bytes()[..width / 8].to_vec())
}

/// The literal's tokens: braces, commas and values, comments dropped.
fn tokens(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        if let Some(after) = rest.strip_prefix("/*") {
            let end = after
                .find("*/")
                .ok_or("unterminated comment in a literal: expected '*/'")?;
            rest = &after[end + 2..];
            continue;
        }
        let first = rest.as_bytes()[0];
        let len = if matches!(first, b'{' | b'}' | b',') {
            1
        } else {
            // a value runs to whitespace, a brace, a comma or a comment; `nan(0x7f)` keeps
            // its parentheses
            let mut depth = 0usize;
            rest.char_indices()
                .find(|&(i, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    depth == 0
                        && (c.is_whitespace()
                            || matches!(c, '{' | '}' | ',')
                            || rest[i..].starts_with("/*"))
                })
                .map_or(rest.len(), |(i, _)| i)
        };
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
}

/// Reads the values of a literal nested as `dims` says from `toks[*at..]`.
fn nested<'a>(
    toks: &[&'a str],
    at: &mut usize,
    dims: &[usize],
    out: &mut Vec<&'a str>,
) -> Result<(), String> {
    let Some((&len, inner)) = dims.split_first() else {
        return match toks.get(*at) {
            Some(&t) if !matches!(t, "{" | "}" | ",") => {
                out.push(t);
                *at += 1;
                Ok(())
            }
            found => Err(format!(
                "expected a value, found {}",
                found.map_or("the end of the literal".into(), |t| format!("'{t}'"))
            )),
        };
    };
    if toks.get(*at) != Some(&"{") {
        return Err(format!(
            "expected '{{' to open {len} elements of a literal, found {}",
            toks.get(*at)
                .map_or("the end of the literal".into(), |t| format!("'{t}'"))
        ));
    }
    *at += 1;
    for k in 0..len {
        if k > 0 {
            if toks.get(*at) != Some(&",") {
                return Err(format!(
                    "a literal level of this shape holds {len} elements, found {k}"
                ));
            }
            *at += 1;
        }
        nested(toks, at, inner, out)?;
    }
    match toks.get(*at) {
        Some(&"}") => {
            *at += 1;
            Ok(())
        }
        _ => Err(format!(
            "a literal level of this shape holds {len} elements, found more"
        )),
    }
}

/// Parses a literal of type `ty` (the text between `constant(` and `)`).
pub(crate) fn parse_literal(text: &str, ty: &ArrayType) -> Result<Tensor, String> {
    if text.contains("...") {
        return Err(
            "constant literal was elided by the printer ('...'); dump the HLO with full literals"
                .to_string(),
        );
    }
    let toks = tokens(text)?;
    let n = ty.element_count();
    let mut values = Vec::with_capacity(n);
    // one value without braces for an array: XLA's parser sets the first element to it and
    // leaves the rest zero (`s32[2,3] constant(1)` is {{1,0,0},{0,0,0}}), and so does this
    let fill = !ty.dims.is_empty() && toks.len() == 1 && toks[0] != "{";
    let mut at = 0;
    if fill {
        if n > 0 {
            values.push(toks[0]);
        }
        at = 1;
    } else if n == 0 && toks.is_empty() {
        // an empty literal for a shape with no elements
    } else {
        nested(&toks, &mut at, &ty.dims, &mut values)
            .map_err(|e| format!("constant of type {ty}: {e}"))?;
    }
    if at != toks.len() {
        return Err(format!(
            "constant of type {ty}: unexpected '{}' after the literal",
            toks[at]
        ));
    }
    let mut err = None;
    let t = make_tensor!(ty.dtype, T => {
        let mut v: Vec<T> = values
            .iter()
            .map(|tok| element::<T>(tok).unwrap_or_else(|e| {
                err.get_or_insert(e);
                T::default()
            }))
            .collect();
        if fill && n > 1 {
            v.resize(n, T::default());
        }
        ArrayD::from_shape_vec(IxDyn(&ty.dims), v).map_err(|e| e.to_string())?
    });
    match err {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// One element from its token.
fn element<T: Elem>(tok: &str) -> Result<T, String> {
    match value_of(tok)? {
        Value::Nan { negative, payload } => {
            Ok(T::read_le(&nan_bytes(T::DTYPE, negative, payload)?))
        }
        Value::Number(t) => number::<T>(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dtype: DType, dims: &[usize]) -> ArrayType {
        ArrayType {
            dtype,
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn literals() {
        let t = parse_literal("{ {1, 2}, {3, 4} }", &at(DType::S32, &[2, 2])).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.0, 2.0, 3.0, 4.0]);
        let t = parse_literal("-inf", &at(DType::F32, &[])).unwrap();
        assert_eq!(t.to_f64_vec(), vec![f64::NEG_INFINITY]);
        let t = parse_literal("{true, false}", &at(DType::Pred, &[2])).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.0, 0.0]);
        let t = parse_literal("18446744073709551615", &at(DType::U64, &[])).unwrap();
        assert_eq!(t.to_le_bytes(), vec![0xff; 8]);
        assert!(parse_literal("{1, 2}", &at(DType::S32, &[3])).is_err());
        assert!(parse_literal("abc", &at(DType::F32, &[])).is_err());
        assert!(parse_literal("inf", &at(DType::S32, &[])).is_err());
        assert!(parse_literal("{...}", &at(DType::S32, &[3])).is_err());
    }

    /// What XLA's printer writes for rank-4+ literals: index comments before each row.
    #[test]
    fn index_comments_are_not_values() {
        let text = "{ /*i0=0*/ { /*i1=0*/ {1, 2}, /*i1=1*/ {3, 4} } }";
        let t = parse_literal(text, &at(DType::F32, &[1, 2, 2])).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn one_value_for_an_array_sets_its_first_element_as_xla_does() {
        // XLA:CPU through jaxlib: s32[2,3] constant(7) is {{7,0,0},{0,0,0}}
        let t = parse_literal("7", &at(DType::S32, &[2, 3])).unwrap();
        assert_eq!(t.to_f64_vec(), vec![7.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let t = parse_literal("1", &at(DType::S32, &[3, 0])).unwrap();
        assert!(t.is_empty());
    }

    #[test]
    fn nesting_must_follow_the_shape() {
        let ty = at(DType::S32, &[2, 2]);
        for bad in [
            "{1, 2, 3, 4}",
            "{ {1, 2, 3}, {4} }",
            "{ {1, 2} }",
            "{ {1, 2}, {3, 4}, {5, 6} }",
            "{ {1, 2}, {3, {4}} }",
            "{ {1, 2}, {3, 4} } 5",
        ] {
            assert!(parse_literal(bad, &ty).is_err(), "{bad}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(parse_literal("300", &at(DType::U8, &[])).is_err());
        assert!(parse_literal("-1", &at(DType::U32, &[])).is_err());
        assert!(parse_literal("4294967296", &at(DType::U32, &[])).is_err());
        assert!(parse_literal("-129", &at(DType::S8, &[])).is_err());
        assert!(parse_literal("1e100", &at(DType::BF16, &[])).is_err());
        assert!(parse_literal("70000", &at(DType::F16, &[])).is_err());
        assert!(parse_literal("2", &at(DType::Pred, &[])).is_err());
        let t = parse_literal("{255, -128}", &at(DType::U8, &[2]));
        assert!(t.is_err());
        let t = parse_literal("{255, 0}", &at(DType::U8, &[2])).unwrap();
        assert_eq!(t.to_f64_vec(), vec![255.0, 0.0]);
        let t = parse_literal("-128", &at(DType::S8, &[])).unwrap();
        assert_eq!(t.to_f64_vec(), vec![-128.0]);
    }

    #[test]
    fn nan_payloads_are_kept_bit_for_bit() {
        let t = parse_literal("-nan(0x7f)", &at(DType::BF16, &[])).unwrap();
        assert_eq!(t.to_le_bytes(), 0xff_ffu16.to_le_bytes());
        let t = parse_literal("{nan(0x1), -nan}", &at(DType::F32, &[2])).unwrap();
        let b = t.to_le_bytes();
        assert_eq!(&b[..4], &0x7f80_0001u32.to_le_bytes());
        assert_eq!(&b[4..], &0xffc0_0000u32.to_le_bytes());
        let t = parse_literal("nan(0x200)", &at(DType::F16, &[])).unwrap();
        assert_eq!(t.to_le_bytes(), 0x7e00u16.to_le_bytes());
        assert!(parse_literal("nan(0x800)", &at(DType::F16, &[])).is_err());
        // FP8: f8e5m2 takes a 2-bit payload; f8e4m3fn has one NaN and, as in XLA, no payload
        let t = parse_literal("{-nan(0x1), nan}", &at(DType::F8E5M2, &[2])).unwrap();
        assert_eq!(t.to_le_bytes(), [0xfd, 0x7e]);
        assert!(parse_literal("nan(0x4)", &at(DType::F8E5M2, &[])).is_err());
        let t = parse_literal("{-nan, nan}", &at(DType::F8E4M3FN, &[2])).unwrap();
        assert_eq!(t.to_le_bytes(), [0xff, 0x7f]);
        for payload in ["nan(0x7)", "nan(0x1)"] {
            let e = parse_literal(payload, &at(DType::F8E4M3FN, &[])).unwrap_err();
            assert!(e.contains("takes no payload"), "{e}");
        }
        assert!(parse_literal("nan", &at(DType::S32, &[])).is_err());
    }
}
