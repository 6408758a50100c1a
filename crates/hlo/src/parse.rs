//! HLO text parser.
//!
//! Accepts what XLA prints: JAX's `lowered.as_text(dialect="hlo")`, XLA's own dumps
//! (`%`-prefixed names, computation signatures, `is_scheduled`, `FileNames`/`StackFrames`
//! sections, `metadata={...}`, `/*index=N*/` comments, layouts, tuple types) and torch-xla
//! dumps (operands with a type prefix). Every error names `file:line:column` and what was
//! expected. It never panics: all access is bounds-checked (see the fuzz-style property test).

use crate::ir::{AliasEntry, ArrayType, Attr, Computation, Instr, Module, Pos, Type};
use statetensor_core::{DType, Error, Location, Result};
use std::collections::HashMap;

/// Parses HLO text; `file` names the source in error messages.
pub fn parse_module(text: &str, file: &str) -> Result<Module> {
    let mut p = Parser {
        src: text.as_bytes(),
        at: 0,
        line: 1,
        col: 1,
        file,
    };
    p.module()
}

/// Sections of XLA dumps that carry only debug information.
const DEBUG_SECTIONS: [&str; 4] = ["FileNames", "FunctionNames", "FileLocations", "StackFrames"];

/// An instruction, its operand names with positions (resolved once the computation is
/// read), and whether it is the ROOT.
type ParsedInstr = (Instr, Vec<(String, Pos)>, bool);

struct Parser<'a> {
    src: &'a [u8],
    at: usize,
    line: usize,
    col: usize,
    file: &'a str,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'%' | b'$')
}

impl<'a> Parser<'a> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.col,
        }
    }

    fn err_at<T>(&self, pos: Pos, message: impl Into<String>) -> Result<T> {
        Err(Error::Parse {
            location: Location {
                file: self.file.to_string(),
                line: pos.line,
                column: pos.column,
            },
            message: message.into(),
        })
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        self.err_at(self.pos(), message)
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.src.get(self.at + k).copied()
    }

    fn bump(&mut self) -> Option<u8> {
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
    fn found(&self) -> String {
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

    /// Skips spaces, tabs, `/* */` and `//` comments; newlines too when `newlines`.
    fn skip_ws(&mut self, newlines: bool) -> Result<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => {
                    self.bump();
                }
                Some(b'\n') if newlines => {
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

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<()> {
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

    fn ident(&mut self, what: &str) -> Result<String> {
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

    fn number(&mut self, what: &str) -> Result<usize> {
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

    /// Reads a balanced raw value up to a `,` or newline (or `stop`) at depth 0.
    fn raw_value(&mut self, stop: &[u8]) -> Result<String> {
        let start = self.at;
        let start_pos = self.pos();
        let mut stack: Vec<u8> = Vec::new();
        while let Some(b) = self.peek() {
            if stack.is_empty() && (b == b',' || b == b'\n' || stop.contains(&b)) {
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
    fn skip_group(&mut self) -> Result<()> {
        let start = self.pos();
        let mut depth = 0usize;
        loop {
            match self.bump() {
                None | Some(b'\n') => {
                    return self.err_at(start, "unterminated layout: expected '}'")
                }
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

    fn module(&mut self) -> Result<Module> {
        self.skip_ws(true)?;
        let kw = self.ident("'HloModule'")?;
        if kw != "HloModule" {
            return self.err_at(
                Pos { line: 1, column: 1 },
                format!("expected 'HloModule' at the start, found '{kw}'"),
            );
        }
        self.skip_ws(false)?;
        let name = self.ident("a module name")?;
        let mut aliases = Vec::new();
        let mut entry_layout = None;
        loop {
            self.skip_ws(false)?;
            if !self.eat(b',') {
                break;
            }
            self.skip_ws(false)?;
            let attr = self.ident("a module attribute name")?;
            self.skip_ws(false)?;
            self.expect(b'=', "after a module attribute name")?;
            self.skip_ws(false)?;
            if attr == "input_output_alias" {
                aliases = self.alias_config()?;
            } else if attr == "entry_computation_layout" {
                entry_layout = Some(self.entry_layout()?);
            } else {
                self.raw_value(&[])?;
            }
        }
        let mut computations: Vec<Computation> = Vec::new();
        let mut entry = None;
        loop {
            self.skip_ws(true)?;
            if self.peek().is_none() {
                break;
            }
            let save = (self.at, self.line, self.col);
            let word = self.ident("a computation")?;
            if DEBUG_SECTIONS.contains(&word.as_str()) {
                self.skip_section();
                continue;
            }
            (self.at, self.line, self.col) = save;
            let pos = self.pos();
            let (comp, is_entry) = self.computation()?;
            if computations.iter().any(|c| c.name == comp.name) {
                return self.err_at(pos, format!("computation '{}' is defined twice", comp.name));
            }
            if is_entry {
                if entry.is_some() {
                    return self
                        .err_at(pos, "a second ENTRY computation; a module has exactly one");
                }
                entry = Some(computations.len());
            }
            computations.push(comp);
        }
        let entry = match entry {
            Some(e) => e,
            // XLA treats the last computation as the entry when none is marked.
            None if !computations.is_empty() => computations.len() - 1,
            None => return self.err("expected at least one computation, found end of input"),
        };
        Ok(Module {
            name,
            file: self.file.to_string(),
            computations,
            entry,
            aliases,
            entry_layout,
        })
    }

    /// Skips a debug section: lines up to the next empty line.
    fn skip_section(&mut self) {
        loop {
            while !matches!(self.peek(), None | Some(b'\n')) {
                self.bump();
            }
            self.bump();
            let mut k = self.at;
            while matches!(self.src.get(k), Some(b' ' | b'\t' | b'\r')) {
                k += 1;
            }
            if matches!(self.src.get(k), None | Some(b'\n')) {
                return;
            }
        }
    }

    /// `{(f32[4]{0}, s32[])->(f32[], s32[])}`.
    fn entry_layout(&mut self) -> Result<(Vec<Type>, Type, Pos)> {
        let pos = self.pos();
        self.expect(b'{', "to open entry_computation_layout")?;
        self.skip_ws(false)?;
        self.expect(
            b'(',
            "to open the parameter types of entry_computation_layout",
        )?;
        let mut params = Vec::new();
        loop {
            self.skip_ws(false)?;
            if self.eat(b')') {
                break;
            }
            if !params.is_empty() {
                self.expect(b',', "between parameter types")?;
                self.skip_ws(false)?;
            }
            params.push(self.ty()?);
        }
        self.skip_ws(false)?;
        self.expect(b'-', "before '->' in entry_computation_layout")?;
        self.expect(b'>', "in '->' of entry_computation_layout")?;
        self.skip_ws(false)?;
        let result = self.ty()?;
        self.skip_ws(false)?;
        self.expect(b'}', "to close entry_computation_layout")?;
        Ok((params, result, pos))
    }

    /// `{ {0}: (1, {}, may-alias), ... }` or the short `{ {}: 0 }`.
    fn alias_config(&mut self) -> Result<Vec<AliasEntry>> {
        self.expect(b'{', "to open input_output_alias")?;
        let mut out = Vec::new();
        loop {
            self.skip_ws(false)?;
            if self.eat(b'}') {
                break;
            }
            if !out.is_empty() {
                self.expect(b',', "between input_output_alias entries")?;
                self.skip_ws(false)?;
            }
            let pos = self.pos();
            let output_index = self.shape_index()?;
            self.skip_ws(false)?;
            self.expect(b':', "after an output shape index")?;
            self.skip_ws(false)?;
            let (param, param_index, must_alias) = if self.eat(b'(') {
                self.skip_ws(false)?;
                let param = self.number("a parameter number")?;
                self.skip_ws(false)?;
                self.expect(b',', "after the parameter number")?;
                self.skip_ws(false)?;
                let idx = self.shape_index()?;
                self.skip_ws(false)?;
                let mut must = false;
                if self.eat(b',') {
                    self.skip_ws(false)?;
                    let kind_pos = self.pos();
                    let kind = self.ident("an alias kind")?;
                    must = match kind.as_str() {
                        "must-alias" | "must_alias" => true,
                        "may-alias" | "may_alias" => false,
                        other => {
                            return self.err_at(
                                kind_pos,
                                format!("expected 'may-alias' or 'must-alias', found '{other}'"),
                            )
                        }
                    };
                    self.skip_ws(false)?;
                }
                self.expect(b')', "to close an alias entry")?;
                (param, idx, must)
            } else {
                (self.number("a parameter number or '('")?, Vec::new(), false)
            };
            out.push(AliasEntry {
                output_index,
                param,
                param_index,
                must_alias,
                pos,
            });
        }
        Ok(out)
    }

    /// `{}` or `{1,2}`.
    fn shape_index(&mut self) -> Result<Vec<usize>> {
        self.expect(b'{', "to open a shape index")?;
        let mut v = Vec::new();
        loop {
            self.skip_ws(false)?;
            if self.eat(b'}') {
                return Ok(v);
            }
            if !v.is_empty() {
                self.expect(b',', "in a shape index")?;
                self.skip_ws(false)?;
            }
            v.push(self.number("a shape index element")?);
        }
    }

    fn computation(&mut self) -> Result<(Computation, bool)> {
        let pos = self.pos();
        let mut name = self.ident("a computation name")?;
        let mut is_entry = false;
        if name == "ENTRY" {
            is_entry = true;
            self.skip_ws(false)?;
            name = self.ident("the entry computation's name")?;
        }
        // Optional signature `(p: f32[2]) -> f32[2]` and attributes: skip to '{' on this line.
        self.skip_ws(false)?;
        if self.eat(b'(') {
            // signature `(p: f32[2], q: (s32[], f32[])) -> ...`: names and types, checked for form
            let mut first = true;
            loop {
                self.skip_ws(true)?;
                if self.eat(b')') {
                    break;
                }
                if !first {
                    self.expect(b',', "between signature parameters")?;
                    self.skip_ws(true)?;
                }
                first = false;
                self.ident("a signature parameter name")?;
                self.skip_ws(false)?;
                self.expect(b':', "after a signature parameter name")?;
                self.skip_ws(false)?;
                self.ty()?;
            }
        }
        loop {
            self.skip_ws(false)?;
            match self.peek() {
                Some(b'{') => break,
                Some(b'-') if self.peek_at(1) == Some(b'>') => {
                    self.bump();
                    self.bump();
                    self.skip_ws(false)?;
                    self.ty()?;
                }
                Some(b',') => {
                    self.bump();
                    self.raw_value(b"{")?;
                }
                _ => {
                    return self.err(format!(
                        "expected '{{' to open computation '{name}', found {}",
                        self.found()
                    ))
                }
            }
        }
        self.expect(b'{', "to open a computation")?;
        let mut instrs: Vec<Instr> = Vec::new();
        let mut operand_names: Vec<Vec<(String, Pos)>> = Vec::new();
        let mut root = None;
        let mut by_name: HashMap<String, usize> = HashMap::new();
        loop {
            self.skip_ws(true)?;
            if self.eat(b'}') {
                break;
            }
            if self.peek().is_none() {
                return self.err_at(
                    pos,
                    format!("computation '{name}' is not closed: expected '}}'"),
                );
            }
            let ipos = self.pos();
            let (instr, operands, is_root) = self.instruction()?;
            if by_name.insert(instr.name.clone(), instrs.len()).is_some() {
                return self.err_at(
                    ipos,
                    format!("instruction '{}' is defined twice in '{name}'", instr.name),
                );
            }
            if is_root {
                if root.is_some() {
                    return self.err_at(ipos, format!("a second ROOT in computation '{name}'"));
                }
                root = Some(instrs.len());
            }
            instrs.push(instr);
            operand_names.push(operands);
        }
        if instrs.is_empty() {
            return self.err_at(pos, format!("computation '{name}' has no instructions"));
        }
        for (instr, names) in instrs.iter_mut().zip(operand_names) {
            for (n, npos) in names {
                match by_name.get(&n) {
                    Some(&i) => instr.operands.push(i),
                    None => {
                        return self.err_at(
                            npos,
                            format!("unknown operand '{n}' in computation '{name}'"),
                        )
                    }
                }
            }
        }
        let mut params: Vec<Option<usize>> = Vec::new();
        for (i, instr) in instrs.iter().enumerate() {
            if let Some(p) = instr.parameter_number {
                if p >= instrs.len() {
                    return self.err_at(
                        instr.pos,
                        format!("parameter number {p} is larger than the computation"),
                    );
                }
                if params.len() <= p {
                    params.resize(p + 1, None);
                }
                if params[p].is_some() {
                    return self.err_at(
                        instr.pos,
                        format!("parameter({p}) is declared twice in '{name}'"),
                    );
                }
                params[p] = Some(i);
            }
        }
        let params = params
            .into_iter()
            .enumerate()
            .map(|(p, i)| {
                i.map_or_else(
                    || self.err_at(pos, format!("computation '{name}' lacks parameter({p})")),
                    Ok,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let root = root.unwrap_or(instrs.len() - 1);
        Ok((
            Computation {
                name,
                instrs,
                root,
                params,
                pos,
            },
            is_entry,
        ))
    }

    fn instruction(&mut self) -> Result<ParsedInstr> {
        let pos = self.pos();
        let mut name = self.ident("an instruction name")?;
        let mut is_root = false;
        if name == "ROOT" {
            is_root = true;
            self.skip_ws(false)?;
            name = self.ident("an instruction name after ROOT")?;
        }
        self.skip_ws(false)?;
        self.expect(b'=', &format!("after instruction name '{name}'"))?;
        self.skip_ws(false)?;
        let ty = self.ty()?;
        self.skip_ws(false)?;
        let opcode = self.ident("an opcode")?;
        self.skip_ws(false)?;
        self.expect(b'(', &format!("to open the operands of '{opcode}'"))?;
        let mut operands = Vec::new();
        let mut literal = None;
        let mut parameter_number = None;
        if opcode == "constant" {
            let v = self.raw_value(b")")?;
            literal = Some(v);
            self.expect(b')', "to close a constant literal")?;
        } else if opcode == "parameter" {
            self.skip_ws(false)?;
            parameter_number = Some(self.number("a parameter number")?);
            self.skip_ws(false)?;
            self.expect(b')', "to close parameter(N)")?;
        } else {
            loop {
                self.skip_ws(true)?;
                if self.eat(b')') {
                    break;
                }
                if !operands.is_empty() {
                    self.expect(b',', "between operands")?;
                    self.skip_ws(true)?;
                }
                // torch-xla and older XLA print a type before each operand.
                if self.peek() == Some(b'(') || self.starts_with_type() {
                    self.ty()?;
                    self.skip_ws(false)?;
                }
                let opos = self.pos();
                let n = self.ident("an operand name")?;
                operands.push((n, opos));
            }
        }
        let mut attrs = Vec::new();
        loop {
            self.skip_ws(false)?;
            if !self.eat(b',') {
                break;
            }
            self.skip_ws(false)?;
            let aname = self.ident("an attribute name")?;
            self.skip_ws(false)?;
            self.expect(b'=', &format!("after attribute name '{aname}'"))?;
            self.skip_ws(false)?;
            let apos = self.pos();
            let value = self.raw_value(b"}")?;
            attrs.push(Attr {
                name: aname,
                value,
                pos: apos,
            });
        }
        match self.peek() {
            None | Some(b'\n') | Some(b'}') => {}
            _ => {
                return self.err(format!(
                    "expected ',' or end of line after instruction '{name}', found {}",
                    self.found()
                ))
            }
        }
        Ok((
            Instr {
                name,
                ty,
                opcode,
                operands: Vec::new(),
                attrs,
                literal,
                parameter_number,
                pos,
            },
            operands,
            is_root,
        ))
    }

    /// Whether the text at the cursor is a dtype followed by `[`.
    fn starts_with_type(&self) -> bool {
        let mut k = self.at;
        while self.src.get(k).is_some_and(|b| b.is_ascii_alphanumeric()) {
            k += 1;
        }
        self.src.get(k) == Some(&b'[')
            && std::str::from_utf8(&self.src[self.at..k])
                .is_ok_and(|w| DType::from_hlo_name(w).is_some() || w == "token")
    }

    /// A type: `f32[2,3]{1,0}`, `(f32[], s32[2])`, `token[]`.
    fn ty(&mut self) -> Result<Type> {
        if self.eat(b'(') {
            let mut elems = Vec::new();
            loop {
                self.skip_ws(true)?;
                if self.eat(b')') {
                    return Ok(Type::Tuple(elems));
                }
                if !elems.is_empty() {
                    self.expect(b',', "between tuple element types")?;
                    self.skip_ws(true)?;
                }
                elems.push(self.ty()?);
            }
        }
        let pos = self.pos();
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
            self.bump();
        }
        let word = std::str::from_utf8(&self.src[start..self.at]).unwrap_or("");
        if word == "token" {
            self.expect(b'[', "after 'token'")?;
            self.expect(b']', "after 'token['")?;
            return Ok(Type::Token);
        }
        let Some(dtype) = DType::from_hlo_name(word) else {
            return if word.is_empty() {
                self.err_at(
                    pos,
                    format!("expected a type such as 'f32[2,3]', found {}", self.found()),
                )
            } else {
                self.err_at(
                    pos,
                    format!("unsupported element type '{word}': expected pred, s8..s64, u8..u64, f16, bf16, f32 or f64"),
                )
            };
        };
        self.expect(b'[', &format!("after element type '{word}'"))?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws(false)?;
            if self.eat(b']') {
                break;
            }
            if !dims.is_empty() {
                self.expect(b',', "between dimensions")?;
                self.skip_ws(false)?;
            }
            if matches!(self.peek(), Some(b'<' | b'?')) {
                return self.err(
                    "dynamic dimensions ('<=N', '?') are not supported: expected a static size",
                );
            }
            dims.push(self.number("a dimension size")?);
        }
        if self.peek() == Some(b'{') {
            // layout: {1,0} or {1,0:T(8,128)} — parsed for balance, then dropped
            self.skip_group()?;
        }
        let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count
            .and_then(|c| c.checked_mul(dtype.size_bytes()))
            .is_none()
        {
            return self.err_at(pos, "array type is too large: its byte size overflows");
        }
        Ok(Type::Array(ArrayType { dtype, dims }))
    }
}

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
