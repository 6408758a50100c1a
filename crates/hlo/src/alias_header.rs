//! Writing an alias map into a module's header — what a compiler does with the map it is
//! given. The libnrt driver hands HLO text (an emulated NEFF) to `nrt_load`; when the caller
//! overrides the module's own alias map (torch-neuronx keeps it outside the HLO), the module
//! loaded must carry that map, or the runtime would bind a state to an output its "compiled"
//! model does not alias.

use crate::Program;
use statetensor_core::{AliasMap, Error, Result};

/// `text` with its `HloModule` header's `input_output_alias` replaced by `aliases` (removed
/// when `aliases` is empty); other header attributes are kept. `program` is `text` parsed.
/// The result is checked by parsing it again.
pub fn with_alias_header(text: &str, program: &Program, aliases: &AliasMap) -> Result<String> {
    let op = "write the alias map into the module";
    let start = header_start(text)
        .ok_or_else(|| Error::invalid_model(op, "the text has no 'HloModule' header line"))?;
    let end = text[start..].find('\n').map_or(text.len(), |n| start + n);
    let mut header = text[start..end].trim_end_matches('\r').to_string();
    if let Some(at) = header.find("input_output_alias=") {
        let open = at + "input_output_alias=".len();
        let close = matching_brace(&header, open)
            .ok_or_else(|| Error::invalid_model(op, "input_output_alias={...} is not closed"))?;
        // the attribute and the ", " before it
        let from = header[..at].trim_end().trim_end_matches(',').len();
        header.replace_range(from..=close, "");
    }
    if !aliases.is_empty() {
        let entries: Vec<String> = aliases
            .pairs()
            .map(|a| {
                let list = |v: &[usize]| {
                    v.iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let (param, index) = program.param_location(a.param);
                format!(
                    "{{{}}}: ({param}, {{{}}}, may-alias)",
                    list(program.output_location(a.output)),
                    list(index)
                )
            })
            .collect();
        header.push_str(&format!(
            ", input_output_alias={{ {} }}",
            entries.join(", ")
        ));
    }
    let out = format!("{}{header}{}", &text[..start], &text[end..]);
    let check = Program::parse(&out, "the module with its alias map written in")?;
    if check.header_aliases() != aliases {
        return Err(Error::runtime(
            op,
            "internal: the rewritten header does not hold the alias map",
        ));
    }
    Ok(out)
}

/// Byte offset of the line that starts with `HloModule`.
fn header_start(text: &str) -> Option<usize> {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("HloModule") {
            return Some(at + (line.len() - line.trim_start().len()));
        }
        at += line.len();
    }
    None
}

/// Index of the `}` that closes the `{` at `open`.
fn matching_brace(s: &str, open: usize) -> Option<usize> {
    if s.as_bytes().get(open) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWAP: &str = "HloModule swap, input_output_alias={ {0}: (0, {}, may-alias), {1}: (1, {}, must-alias) }, entry_computation_layout={(f32[2]{0}, f32[2]{0})->(f32[2]{0}, f32[2]{0})}

ENTRY e {
  a = f32[2] parameter(0)
  b = f32[2] parameter(1)
  ROOT t = (f32[2], f32[2]) tuple(b, a)
}
";

    fn header_of(text: &str) -> AliasMap {
        Program::parse(text, "t").unwrap().header_aliases().clone()
    }

    #[test]
    fn replaces_removes_and_adds_the_map() {
        let p = Program::parse(SWAP, "swap").unwrap();
        let crossed = AliasMap::from_pairs([(0, 1), (1, 0)]).unwrap();
        let t = with_alias_header(SWAP, &p, &crossed).unwrap();
        assert_eq!(header_of(&t), crossed);
        assert!(t.contains("entry_computation_layout="), "{t}");
        let none = with_alias_header(SWAP, &p, &AliasMap::new()).unwrap();
        assert!(header_of(&none).is_empty());
        assert!(!none.contains("input_output_alias"), "{none}");
        let again = with_alias_header(&none, &p, &crossed).unwrap();
        assert_eq!(header_of(&again), crossed);
    }

    #[test]
    fn a_non_tuple_root_aliases_output_index_empty() {
        let text = "HloModule c\nENTRY e {\n  c = s32[] parameter(0)\n  one = s32[] constant(1)\n  ROOT n = s32[] add(c, one)\n}\n";
        let p = Program::parse(text, "c").unwrap();
        let map = AliasMap::from_pairs([(0, 0)]).unwrap();
        let t = with_alias_header(text, &p, &map).unwrap();
        assert_eq!(header_of(&t), map);
        assert!(
            t.starts_with("HloModule c, input_output_alias={ {}: (0, {}, may-alias) }"),
            "{t}"
        );
    }
}
