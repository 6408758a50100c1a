//! Constant literals: `constant(1)`, `constant({ {1, 2}, {3, 4} })`, `inf`, `-nan`, `true`.

use crate::ir::ArrayType;
use crate::make_tensor;
use crate::tensor::{Elem, Tensor};
use ndarray::{ArrayD, IxDyn};
use statetensor_core::DType;

fn parse_value<T: Elem>(tok: &str) -> Result<T, String> {
    let lower = tok.to_ascii_lowercase();
    let float = match lower.as_str() {
        "true" => Some(1.0),
        "false" => Some(0.0),
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(f) = float {
        if T::DTYPE.is_float() || T::DTYPE == DType::Pred || f.is_finite() {
            return Ok(T::from_f64(f));
        }
        return Err(format!("'{tok}' is not a valid {} value", T::DTYPE));
    }
    if !T::DTYPE.is_float() {
        if let Ok(i) = tok.parse::<i128>() {
            return Ok(T::from_i128(i));
        }
    }
    match tok.parse::<f64>() {
        Ok(f) if T::DTYPE.is_float() => Ok(T::from_f64(f)),
        Ok(f) if f.fract() == 0.0 => Ok(T::from_f64(f)),
        _ => Err(format!("'{tok}' is not a valid {} value", T::DTYPE)),
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
    let toks: Vec<&str> = text
        .split(|c: char| c == '{' || c == '}' || c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    let n = ty.element_count();
    if toks.len() != n {
        return Err(format!(
            "constant of type {ty} needs {n} values, found {}",
            toks.len()
        ));
    }
    let mut err = None;
    let t = make_tensor!(ty.dtype, T => {
        let v: Vec<T> = toks
            .iter()
            .map(|s| parse_value::<T>(s).unwrap_or_else(|e| {
                err.get_or_insert(e);
                T::default()
            }))
            .collect();
        ArrayD::from_shape_vec(IxDyn(&ty.dims), v).map_err(|e| e.to_string())?
    });
    match err {
        Some(e) => Err(e),
        None => Ok(t),
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
}
