//! Parameter names: how a user may refer to a parameter, one rule for every front end.
//!
//! HLO names parameters `x.1`, `cache.3`; users write the number, the full name, or the
//! name without its `.N` suffix when that is unambiguous. The CLI, bundle manifests, the
//! driver's `bindings.json` and the Python package all resolve references here.

use crate::{Error, Result, TensorSpec};

/// `x.1` without its `.N` suffix.
pub fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => name,
    }
}

/// Resolves a parameter reference: its number, its HLO name (`x.1`), or that name without
/// the `.N` suffix when unambiguous (`x`).
pub fn resolve_param(flag: &str, r: &str, params: &[TensorSpec]) -> Result<usize> {
    let listing = || {
        params
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{i} ({})", p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Ok(n) = r.parse::<usize>() {
        return if n < params.len() {
            Ok(n)
        } else {
            Err(Error::invalid_input(
                flag,
                format!(
                    "parameter {n} does not exist; the parameters are {}",
                    listing()
                ),
            ))
        };
    }
    if let Some(i) = params.iter().position(|p| p.name == r) {
        return Ok(i);
    }
    let matches: Vec<usize> = (0..params.len())
        .filter(|&i| stem(&params[i].name) == r)
        .collect();
    match matches[..] {
        [i] => Ok(i),
        [] => Err(Error::invalid_input(
            flag,
            format!("no parameter '{r}'; the parameters are {}", listing()),
        )),
        _ => Err(Error::invalid_input(
            flag,
            format!(
                "'{r}' is ambiguous: it matches {}; use the full name or the number",
                matches
                    .iter()
                    .map(|&i| format!("{i} ({})", params[i].name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn references() {
        let ps = vec![
            TensorSpec::new("x.1", DType::F32, vec![2]),
            TensorSpec::new("x.2", DType::F32, vec![2]),
            TensorSpec::new("cache.1", DType::F32, vec![2]),
        ];
        assert_eq!(resolve_param("f", "2", &ps).unwrap(), 2);
        assert_eq!(resolve_param("f", "x.2", &ps).unwrap(), 1);
        assert_eq!(resolve_param("f", "cache", &ps).unwrap(), 2);
        assert!(resolve_param("f", "x", &ps)
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
        assert!(resolve_param("f", "3", &ps).is_err());
        assert!(resolve_param("f", "y", &ps).is_err());
        assert_eq!(stem("x.12"), "x");
        assert_eq!(stem("x."), "x.");
        assert_eq!(stem("x.a"), "x.a");
    }
}
