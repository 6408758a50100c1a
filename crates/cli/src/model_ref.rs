//! Finding the model file and naming parameters on the command line.

use statetensor_core::{AliasMap, Error, Result, TensorSpec};
use std::path::{Path, PathBuf};

/// A model given as an HLO file, or a directory holding `model.hlo` (and optionally
/// `arg{P}.npy` default values for parameters).
pub struct ModelPath {
    /// The HLO text file.
    pub hlo: PathBuf,
    /// The directory for default values, if the model was given as a directory.
    pub dir: Option<PathBuf>,
}

impl ModelPath {
    pub fn resolve(arg: &Path) -> Result<ModelPath> {
        if arg.is_dir() {
            let hlo = arg.join("model.hlo");
            if !hlo.is_file() {
                return Err(Error::invalid_input(
                    "open model",
                    format!("directory '{}' has no model.hlo (expected an HLO text file or a directory holding one)", arg.display()),
                ));
            }
            return Ok(ModelPath {
                hlo,
                dir: Some(arg.to_path_buf()),
            });
        }
        if !arg.exists() {
            return Err(Error::invalid_input(
                "open model",
                format!(
                    "'{}' does not exist (expected an HLO text file or a model directory)",
                    arg.display()
                ),
            ));
        }
        Ok(ModelPath {
            hlo: arg.to_path_buf(),
            dir: None,
        })
    }

    pub fn read(&self) -> Result<String> {
        let bytes = std::fs::read(&self.hlo)
            .map_err(|e| Error::io("read model", self.hlo.display().to_string(), e))?;
        String::from_utf8(bytes).map_err(|_| {
            Error::invalid_input(
                "read model",
                format!(
                    "'{}' is not UTF-8 text (expected HLO text)",
                    self.hlo.display()
                ),
            )
        })
    }

    /// `arg{P}.npy` in the model directory, when present.
    pub fn default_value(&self, p: usize) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("arg{p}.npy")))
            .filter(|f| f.is_file())
    }
}

/// `x.1` without its `.N` suffix.
fn stem(name: &str) -> &str {
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

/// `P=VALUE` split at the first `=`.
pub fn split_assignment<'a>(flag: &str, s: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((p, v)) if !p.is_empty() && !v.is_empty() => Ok((p, v)),
        _ => Err(Error::invalid_input(
            flag,
            format!("'{s}' is not of the form P={what}"),
        )),
    }
}

/// `--alias P=O[,P=O...]` (repeatable) into an alias map.
pub fn parse_aliases(values: &[String], params: &[TensorSpec]) -> Result<Option<AliasMap>> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut map = AliasMap::new();
    for v in values {
        for pair in v.split(',').filter(|s| !s.trim().is_empty()) {
            let (p, o) = split_assignment("--alias", pair.trim(), "O")?;
            let p = resolve_param("--alias", p, params)?;
            let o: usize = o.parse().map_err(|_| {
                Error::invalid_input(
                    "--alias",
                    format!("output '{o}' in '{pair}' is not an output index"),
                )
            })?;
            map.insert(p, o)?;
        }
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use statetensor_core::DType;

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
        let m = parse_aliases(&["cache=1,0=0".into()], &ps)
            .unwrap()
            .unwrap();
        assert_eq!(m.output_for(2), Some(1));
        assert!(parse_aliases(&["cache:1".into()], &ps).is_err());
    }
}
