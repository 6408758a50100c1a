//! The `HloModule` line (alias config, buffer donors, entry layout) and the module's
//! computations and debug sections.

use super::{Parser, DEBUG_SECTIONS};
use crate::ir::{AliasEntry, Computation, Instr, Module, Pos, Type};
use statetensor_core::Result;

impl<'a> Parser<'a> {
    pub(super) fn module(&mut self) -> Result<Module> {
        self.skip_ws()?;
        let start = (self.at, self.line, self.col);
        let kw = self.ident("'HloModule', a computation or an instruction")?;
        if kw != "HloModule" {
            // XLA's parser also takes the computations alone (the entry is the one marked
            // ENTRY, or the last), or one instruction whose typed operands become parameters.
            (self.at, self.line, self.col) = start;
            let name = self.module_name_from_file();
            if self.starts_instruction() {
                return self.single_instruction(name);
            }
            return self.computations(name, Vec::new(), Vec::new(), None);
        }
        self.skip_ws()?;
        let name = self.ident("a module name")?;
        // XLA's lexer reads `name:` as one name token, so `HloModule m:` is accepted
        self.eat(b':');
        let mut aliases = Vec::new();
        let mut buffer_donors = Vec::new();
        let mut entry_layout = None;
        let mut devices = crate::ir::DeviceCounts::default();
        loop {
            self.skip_ws()?;
            if !self.eat(b',') {
                break;
            }
            self.skip_ws()?;
            let attr = self.ident("a module attribute name")?;
            self.skip_ws()?;
            self.expect(b'=', "after a module attribute name")?;
            self.skip_ws()?;
            if attr == "input_output_alias" {
                aliases = self.alias_config()?;
            } else if attr == "buffer_donor" {
                buffer_donors = self.buffer_donors()?;
            } else if attr == "entry_computation_layout" {
                entry_layout = Some(self.entry_layout()?);
            } else if attr == "replica_count" {
                devices.replica_count = Some(self.number("a replica count")?);
            } else if attr == "num_partitions" {
                devices.num_partitions = Some(self.number("a partition count")?);
            } else {
                self.raw_value(&[])?;
            }
        }
        let mut module = self.computations(name, aliases, buffer_donors, entry_layout)?;
        module.devices = devices;
        Ok(module)
    }

    /// A module without a header is named after its file, as `inspect` and reports show it.
    fn module_name_from_file(&self) -> String {
        std::path::Path::new(self.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("module")
            .to_string()
    }

    /// Whether the cursor is at `[ROOT] name =`: an instruction, not a computation.
    fn starts_instruction(&mut self) -> bool {
        let save = (self.at, self.line, self.col);
        let mut is_instruction = false;
        if let Ok(word) = self.ident("") {
            let mut ok = true;
            if word == "ROOT" {
                ok = self.skip_ws().is_ok() && self.ident("").is_ok();
            }
            is_instruction = ok && self.skip_ws().is_ok() && self.peek() == Some(b'=');
        }
        (self.at, self.line, self.col) = save;
        is_instruction
    }

    /// One instruction as a module: each distinct operand, which must carry its type,
    /// becomes a parameter in the order it first appears, and the instruction is the root.
    fn single_instruction(&mut self, name: String) -> Result<Module> {
        let pos = self.pos();
        let (mut instr, operands, _, nested) = self.instruction()?;
        if !nested.is_empty() {
            return self.err_at(
                pos,
                "a module of one instruction takes its parameters from its operands: write them as typed names, not as instructions",
            );
        }
        self.skip_ws()?;
        if self.peek().is_some() {
            return self.err(format!(
                "expected the end of input after the single instruction '{}', found {}",
                instr.written_name(),
                self.found()
            ));
        }
        let mut instrs: Vec<Instr> = Vec::new();
        for (operand, opos, ty) in operands {
            let index = match instrs.iter().position(|p| p.name == operand) {
                Some(i) => i,
                None => {
                    let Some(ty) = ty else {
                        return self.err_at(
                            opos,
                            format!(
                                "operand '{operand}' needs its type: a module of one instruction takes its parameters from its operands' types"
                            ),
                        );
                    };
                    let number = instrs.len();
                    instrs.push(Instr {
                        name: operand,
                        ty,
                        opcode: "parameter".to_string(),
                        operands: Vec::new(),
                        attrs: Vec::new(),
                        literal: None,
                        parameter_number: Some(number),
                        pos: opos,
                        percent: instr.percent,
                        layout: None,
                    });
                    number
                }
            };
            instr.operands.push(index);
        }
        if instrs.iter().any(|p| p.name == instr.name) {
            return self.err_at(
                pos,
                format!(
                    "instruction '{}' is also its own operand",
                    instr.written_name()
                ),
            );
        }
        let params = (0..instrs.len()).collect();
        let root = instrs.len();
        instrs.push(instr);
        Ok(Module {
            name: name.clone(),
            file: self.file.to_string(),
            computations: vec![Computation {
                name,
                instrs,
                root,
                params,
                pos,
            }],
            entry: 0,
            aliases: Vec::new(),
            buffer_donors: Vec::new(),
            entry_layout: None,
            devices: crate::ir::DeviceCounts::default(),
        })
    }

    /// The module's computations and debug sections, up to the end of input.
    fn computations(
        &mut self,
        name: String,
        aliases: Vec<AliasEntry>,
        buffer_donors: Vec<(usize, Vec<usize>, Pos)>,
        entry_layout: Option<(Vec<Type>, Type, Pos)>,
    ) -> Result<Module> {
        let mut computations: Vec<Computation> = Vec::new();
        let mut untyped = Vec::new();
        let mut entry = None;
        loop {
            self.skip_ws()?;
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
            let (comp, is_entry, comp_untyped) = self.computation()?;
            for (inline, inline_untyped) in std::mem::take(&mut self.inline_computations) {
                if computations.iter().any(|c| c.name == inline.name) {
                    return self.err_at(
                        inline.pos,
                        format!("computation '{}' is defined twice", inline.name),
                    );
                }
                // before the computation that holds it, which stays the last when no
                // computation is marked ENTRY
                computations.push(inline);
                untyped.push(inline_untyped);
            }
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
            untyped.push(comp_untyped);
            // attributes after the closing brace: `}, execution_thread="parallel_thread"`
            loop {
                self.skip_ws()?;
                if self.peek() != Some(b',') {
                    break;
                }
                self.bump();
                self.skip_ws()?;
                let attr = self.ident("a computation attribute name")?;
                self.skip_ws()?;
                self.expect(b'=', &format!("after computation attribute '{attr}'"))?;
                self.skip_ws()?;
                self.raw_value(&[])?;
            }
        }
        if let Err((pos, message)) = super::infer::infer_types(&mut computations, &untyped) {
            return self.err_at(pos, message);
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
            buffer_donors,
            entry_layout,
            devices: crate::ir::DeviceCounts::default(),
        })
    }

    /// Skips a debug section: lines up to the next empty line.
    pub(super) fn skip_section(&mut self) {
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
    pub(super) fn entry_layout(&mut self) -> Result<(Vec<Type>, Type, Pos)> {
        let pos = self.pos();
        self.expect(b'{', "to open entry_computation_layout")?;
        self.skip_ws()?;
        self.expect(
            b'(',
            "to open the parameter types of entry_computation_layout",
        )?;
        let params = self.list(b')', "between parameter types", |p| p.ty())?;
        self.skip_ws()?;
        self.expect(b'-', "before '->' in entry_computation_layout")?;
        self.expect(b'>', "in '->' of entry_computation_layout")?;
        self.skip_ws()?;
        let result = self.ty()?;
        self.skip_ws()?;
        self.expect(b'}', "to close entry_computation_layout")?;
        Ok((params, result, pos))
    }

    /// `{ (0, {}), (3, {}) }`: parameters whose buffers the caller donates (XLA may reuse
    /// them for outputs). Returns (parameter, shape index, where).
    pub(super) fn buffer_donors(&mut self) -> Result<Vec<(usize, Vec<usize>, Pos)>> {
        self.expect(b'{', "to open buffer_donor")?;
        self.list(b'}', "between buffer_donor entries", |p| {
            let pos = p.pos();
            p.expect(b'(', "to open a buffer_donor entry")?;
            p.skip_ws()?;
            let param = p.number("a parameter number")?;
            p.skip_ws()?;
            p.expect(b',', "after the parameter number")?;
            p.skip_ws()?;
            let index = p.shape_index()?;
            p.skip_ws()?;
            p.expect(b')', "to close a buffer_donor entry")?;
            Ok((param, index, pos))
        })
    }

    /// `{ {0}: (1, {}, may-alias), ... }` or the short `{ {}: 0 }`.
    pub(super) fn alias_config(&mut self) -> Result<Vec<AliasEntry>> {
        self.expect(b'{', "to open input_output_alias")?;
        self.list(b'}', "between input_output_alias entries", |p| {
            let pos = p.pos();
            let output_index = p.shape_index()?;
            p.skip_ws()?;
            p.expect(b':', "after an output shape index")?;
            p.skip_ws()?;
            let (param, param_index, must_alias) = if p.eat(b'(') {
                p.skip_ws()?;
                let param = p.number("a parameter number")?;
                p.skip_ws()?;
                p.expect(b',', "after the parameter number")?;
                p.skip_ws()?;
                let idx = p.shape_index()?;
                p.skip_ws()?;
                let mut must = false;
                if p.eat(b',') {
                    p.skip_ws()?;
                    let kind_pos = p.pos();
                    let kind = p.ident("an alias kind")?;
                    must = match kind.as_str() {
                        "must-alias" | "must_alias" => true,
                        "may-alias" | "may_alias" => false,
                        other => {
                            return p.err_at(
                                kind_pos,
                                format!("expected 'may-alias' or 'must-alias', found '{other}'"),
                            )
                        }
                    };
                    p.skip_ws()?;
                }
                p.expect(b')', "to close an alias entry")?;
                (param, idx, must)
            } else {
                (p.number("a parameter number or '('")?, Vec::new(), false)
            };
            Ok(AliasEntry {
                output_index,
                param,
                param_index,
                must_alias,
                pos,
            })
        })
    }

    /// `{}` or `{1,2}`.
    pub(super) fn shape_index(&mut self) -> Result<Vec<usize>> {
        self.expect(b'{', "to open a shape index")?;
        let mut v = Vec::new();
        loop {
            self.skip_ws()?;
            if self.eat(b'}') {
                return Ok(v);
            }
            if !v.is_empty() {
                self.expect(b',', "in a shape index")?;
                self.skip_ws()?;
            }
            v.push(self.number("a shape index element")?);
        }
    }
}
