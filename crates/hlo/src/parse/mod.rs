//! HLO text parser.
//!
//! This module holds the entry point and the lexer (positions, whitespace and comments,
//! identifiers, numbers, raw attribute values); `header` reads the `HloModule` line and
//! the debug sections, `body` computations and instructions, `types` element and tuple
//! types, `infer` the result types the source leaves out.
//!
//! Accepts what XLA prints: JAX's `lowered.as_text(dialect="hlo")`, XLA's own dumps
//! (`%`-prefixed names, computation signatures, `is_scheduled`, `FileNames`/`StackFrames`
//! sections, `metadata={...}`, `/*index=N*/` comments, layouts, tuple types) and torch-xla
//! dumps (operands with a type prefix). Like XLA's own parser it is free-form: whitespace,
//! line breaks included, may stand between any two tokens, so an instruction, its operands
//! or its attribute list may run over several lines (as XLA's tests write them) and
//! several instructions may share one. An attribute value ends at a `,` or whitespace
//! outside brackets and strings; a constant's literal at its closing `)`. Every error
//! names `file:line:column` and what was expected. It never panics: all access is
//! bounds-checked (see the fuzz-style property test).

use crate::ir::{Instr, Module, Pos, Type};
use statetensor_core::{Error, Location, Result};

/// Parses HLO text; `file` names the source in error messages.
pub fn parse_module(text: &str, file: &str) -> Result<Module> {
    let mut p = Parser {
        src: text.as_bytes(),
        at: 0,
        line: 1,
        col: 1,
        file,
        inline_depth: 0,
        untyped: Vec::new(),
        inline_computations: Vec::new(),
        inline_names: Default::default(),
    };
    p.module()
}

/// Sections of XLA dumps that carry only debug information.
const DEBUG_SECTIONS: [&str; 4] = ["FileNames", "FunctionNames", "FileLocations", "StackFrames"];

/// An operand as written: its name, where, and its type when the source gives one.
type ParsedOperand = (String, Pos, Option<Type>);

/// An instruction and its operands as written (resolved once the computation is read).
type InstrWithOperands = (Instr, Vec<ParsedOperand>);

/// An instruction, its operands as written, whether it is the ROOT, and the instructions
/// written inline as its operands (`tuple(x, (f32[], s32[]) tuple(a, b))`), innermost
/// first, which the computation holds before it.
type ParsedInstr = (Instr, Vec<ParsedOperand>, bool, Vec<InstrWithOperands>);

pub(super) struct Parser<'a> {
    src: &'a [u8],
    at: usize,
    line: usize,
    col: usize,
    file: &'a str,
    /// How deep the instruction being read is written inline as an operand.
    inline_depth: usize,
    /// Instructions of the computation being read whose source leaves out the result type
    /// (inferred once the module is read: `infer`).
    untyped: Vec<String>,
    /// Computations written inline as attribute values (`to_apply={...}`), with their
    /// untyped instructions, for the module to take in.
    inline_computations: Vec<(crate::ir::Computation, Vec<usize>)>,
    /// The names given to inline computations so far (unique in the module).
    inline_names: std::collections::HashSet<String>,
}

pub(super) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'%' | b'$')
}

impl<'a> Parser<'a> {
    pub(super) fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.col,
        }
    }

    pub(super) fn err_at<T>(&self, pos: Pos, message: impl Into<String>) -> Result<T> {
        Err(Error::Parse {
            location: Location {
                file: self.file.to_string(),
                line: pos.line,
                column: pos.column,
            },
            message: message.into(),
        })
    }

    pub(super) fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        self.err_at(self.pos(), message)
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }

    pub(super) fn peek_at(&self, k: usize) -> Option<u8> {
        self.src.get(self.at + k).copied()
    }

    pub(super) fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            // count characters, not UTF-8 continuation bytes
            self.col += 1;
        }
        Some(b)
    }

    /// What is at the cursor, for messages.
    pub(super) fn found(&self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(b'\n') => "end of line".to_string(),
            Some(_) => {
                let end = (self.at + 16).min(self.src.len());
                let s = String::from_utf8_lossy(&self.src[self.at..end]);
                let s = s.split('\n').next().unwrap_or("");
                format!("'{s}'")
            }
        }
    }

    /// Skips whitespace (line breaks included: HLO text is free-form, and an instruction or
    /// attribute list may run over several lines), `/* */` and `//` comments.
    pub(super) fn skip_ws(&mut self) -> Result<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.peek() {
                            None => {
                                return self.err_at(start, "unterminated comment: expected '*/'")
                            }
                            Some(b'*') if self.peek_at(1) == Some(b'/') => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            Some(_) => {
                                self.bump();
                            }
                        }
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.bump();
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    pub(super) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Comma-separated items up to `close` (the opening delimiter already read), each read
    /// by `item`; `between` says what a missing comma was expected between.
    pub(super) fn list<T>(
        &mut self,
        close: u8,
        between: &str,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        loop {
            self.skip_ws()?;
            if self.eat(close) {
                return Ok(out);
            }
            if !out.is_empty() {
                self.expect(b',', between)?;
                self.skip_ws()?;
            }
            out.push(item(self)?);
        }
    }

    pub(super) fn expect(&mut self, b: u8, what: &str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            self.err(format!(
                "expected '{}' {what}, found {}",
                b as char,
                self.found()
            ))
        }
    }

    pub(super) fn ident(&mut self, what: &str) -> Result<String> {
        let start = self.at;
        while self.peek().is_some_and(is_ident_byte) {
            self.bump();
        }
        if start == self.at {
            return self.err(format!("expected {what}, found {}", self.found()));
        }
        let s = String::from_utf8_lossy(&self.src[start..self.at]).into_owned();
        Ok(s.strip_prefix('%').map(str::to_string).unwrap_or(s))
    }

    pub(super) fn number(&mut self, what: &str) -> Result<usize> {
        let start = self.at;
        let pos = self.pos();
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.bump();
        }
        let s = std::str::from_utf8(&self.src[start..self.at]).unwrap_or("");
        match s.parse() {
            Ok(n) => Ok(n),
            Err(_) if s.is_empty() => {
                self.err_at(pos, format!("expected {what}, found {}", self.found()))
            }
            Err(_) => self.err_at(pos, format!("{what} '{s}' is too large")),
        }
    }

    /// Reads a balanced raw attribute value up to a `,`, whitespace or `stop` outside
    /// brackets and strings.
    pub(super) fn raw_value(&mut self, stop: &[u8]) -> Result<String> {
        self.balanced_text(stop, true)
    }

    /// A constant's literal, up to its closing ')': free-form like the rest of HLO text, so
    /// spaces and line breaks between its values are allowed.
    pub(super) fn literal_text(&mut self) -> Result<String> {
        self.balanced_text(b")", false)
    }

    /// Text up to a ',' or one of `stop` outside brackets and strings (and, for
    /// `space_ends`, up to whitespace outside them: an attribute value never holds a space
    /// outside brackets, and the next attribute or instruction may follow after one).
    fn balanced_text(&mut self, stop: &[u8], space_ends: bool) -> Result<String> {
        let start = self.at;
        let start_pos = self.pos();
        let mut stack: Vec<u8> = Vec::new();
        while let Some(b) = self.peek() {
            let space = matches!(b, b' ' | b'\t' | b'\r' | b'\n');
            if stack.is_empty() && (b == b',' || (space_ends && space) || stop.contains(&b)) {
                break;
            }
            match b {
                b'{' => stack.push(b'}'),
                b'(' => stack.push(b')'),
                b'[' => stack.push(b']'),
                b'}' | b')' | b']' if stack.last() != Some(&b) => {
                    return self.err(format!("unbalanced '{}' in attribute value", b as char));
                }
                b'}' | b')' | b']' => {
                    stack.pop();
                }
                b'"' => {
                    self.bump();
                    loop {
                        match self.bump() {
                            None => {
                                return self.err_at(start_pos, "unterminated string: expected '\"'")
                            }
                            Some(b'\\') => {
                                self.bump();
                            }
                            Some(b'"') => break,
                            Some(_) => {}
                        }
                    }
                    continue;
                }
                _ => {}
            }
            self.bump();
        }
        if let Some(&close) = stack.last() {
            return self.err_at(
                start_pos,
                format!("unterminated value: expected '{}'", close as char),
            );
        }
        Ok(String::from_utf8_lossy(&self.src[start..self.at])
            .trim()
            .to_string())
    }

    /// Skips one balanced `{...}` group (a layout) starting at the cursor.
    pub(super) fn skip_group(&mut self) -> Result<()> {
        let start = self.pos();
        let mut depth = 0usize;
        loop {
            match self.bump() {
                None => return self.err_at(start, "unterminated layout: expected '}'"),
                Some(b'{' | b'(') => depth += 1,
                Some(b'}' | b')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
        }
    }
}

mod attr_names;
mod body;
mod header;
mod infer;
mod types;

#[cfg(test)]
mod tests {
    use super::*;
    use statetensor_core::ErrorKind;

    const JAX: &str = r#"HloModule jit_f, input_output_alias={ {1}: (1, {}, may-alias), {2}: (2, {}, must-alias) }, entry_computation_layout={(f32[4]{0}, f32[3,4]{1,0}, s32[])->(f32[], f32[3,4]{1,0}, s32[])}

region_0.1 {
  reduce_sum.3 = f32[] parameter(0)
  reduce_sum.4 = f32[] parameter(1)
  ROOT reduce_sum.5 = f32[] add(reduce_sum.3, reduce_sum.4)
}

ENTRY main.2 {
  x.1 = f32[4]{0} parameter(0)
  constant.6 = f32[] constant(0)
  reduce_sum.7 = f32[] reduce(x.1, constant.6), dimensions={0}, to_apply=region_0.1
  cache.1 = f32[3,4]{1,0} parameter(1)
  pos.1 = s32[] parameter(2)
  ROOT tuple.1 = (f32[], f32[3,4]{1,0}, /*index=2*/s32[]) tuple(reduce_sum.7, cache.1, pos.1)
}
"#;

    #[test]
    fn parses_jax_text() {
        let m = parse_module(JAX, "t.hlo").unwrap();
        assert_eq!(m.name, "jit_f");
        assert_eq!(m.computations.len(), 2);
        assert_eq!(m.entry().name, "main.2");
        assert_eq!(m.entry().params.len(), 3);
        assert_eq!(m.aliases.len(), 2);
        assert_eq!(m.aliases[0].output_index, vec![1]);
        assert!(m.aliases[1].must_alias);
        let reduce = &m.entry().instrs[2];
        assert_eq!(reduce.opcode, "reduce");
        assert_eq!(reduce.attr("to_apply").unwrap().value, "region_0.1");
        assert_eq!(reduce.attr("dimensions").unwrap().value, "{0}");
    }

    #[test]
    fn parses_xla_dump_style() {
        let text = r#"HloModule m, is_scheduled=true, input_output_alias={ {}: 0 }

FileNames
1 "/tmp/t.py"

StackFrames
1 {file_location_id=1 parent_frame_id=1}


%add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0), metadata={op_name="x, y" stack_frame_id=1}
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(f32[] %a, f32[] %b), sharding={replicated}
}

ENTRY %main (p: f32[2,2]) -> f32[2,2] {
  %p = f32[2,2]{1,0:T(2,128)} parameter(0)
  ROOT %n = f32[2,2]{1,0} negate(%p), backend_config={"a":{"b":[1,2]}}
}
"#;
        let m = parse_module(text, "d.hlo").unwrap();
        assert_eq!(m.computations.len(), 2);
        assert_eq!(m.entry().name, "main");
        assert_eq!(m.aliases[0].output_index, Vec::<usize>::new());
        assert_eq!(m.aliases[0].param, 0);
        assert_eq!(m.computations[0].instrs[2].operands, vec![0, 1]);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let text =
            "HloModule m\n\nENTRY e {\n  p = f32[2] parameter(0)\n  ROOT n = f32[2] negate(q)\n}\n";
        let e = parse_module(text, "bad.hlo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert!(e.to_string().contains("bad.hlo:5:26"), "{e}");
        assert!(e.to_string().contains("unknown operand 'q'"), "{e}");
        let e = parse_module(
            "HloModule m\nENTRY e {\n  p = f33[2] parameter(0)\n}\n",
            "x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("x:3:7"), "{e}");
        assert!(e.to_string().contains("f33"), "{e}");
    }
}
