//! A computation and its instructions: names, types, operands, attributes.

use super::{attr_names, is_ident_byte, InstrWithOperands, ParsedInstr, ParsedOperand, Parser};
use crate::ir::{Attr, Computation, Instr, Literal};
use statetensor_core::Result;
use std::collections::HashMap;

/// Attributes whose value names a computation, which XLA's text may also write inline.
const COMPUTATION_ATTRS: [&str; 10] = [
    "to_apply",
    "true_computation",
    "false_computation",
    "calls",
    "condition",
    "body",
    "select",
    "scatter",
    "comparator",
    "called_computations",
];

/// How deep instructions written inline as operands may nest: a bound on the parser's
/// recursion, so deeply nested text is an error, not a stack overflow.
const MAX_INLINE_DEPTH: usize = 64;

impl<'a> Parser<'a> {
    /// A computation, whether it is the ENTRY, and the indices of its instructions whose
    /// result type the source leaves out.
    pub(super) fn computation(&mut self) -> Result<(Computation, bool, Vec<usize>)> {
        let pos = self.pos();
        let mut name = self.ident("a computation name")?;
        let mut is_entry = false;
        if name == "ENTRY" {
            is_entry = true;
            self.skip_ws()?;
            name = self.ident("the entry computation's name")?;
        }
        // Optional signature `(p: f32[2]) -> f32[2]` and attributes (`, execution_thread="x"`).
        self.skip_ws()?;
        if self.eat(b'(') {
            // signature `(p: f32[2], q: (s32[], f32[])) -> ...`: names and types, checked for form
            let mut first = true;
            loop {
                self.skip_ws()?;
                if self.eat(b')') {
                    break;
                }
                if !first {
                    self.expect(b',', "between signature parameters")?;
                    self.skip_ws()?;
                }
                first = false;
                self.ident("a signature parameter name")?;
                self.skip_ws()?;
                self.expect(b':', "after a signature parameter name")?;
                self.skip_ws()?;
                self.ty()?;
            }
        }
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(b'{') => break,
                Some(b'-') if self.peek_at(1) == Some(b'>') => {
                    self.bump();
                    self.bump();
                    self.skip_ws()?;
                    self.ty()?;
                }
                // `, execution_thread="main"` and other computation attributes
                Some(b',') => {
                    self.bump();
                    self.skip_ws()?;
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
        let (comp, untyped) = self.computation_body(name, pos)?;
        Ok((comp, is_entry, untyped))
    }

    /// A computation's instructions, from its `{` to its `}`, and the indices of those
    /// whose result type the source leaves out.
    pub(super) fn computation_body(
        &mut self,
        name: String,
        pos: crate::ir::Pos,
    ) -> Result<(Computation, Vec<usize>)> {
        let outer_untyped = std::mem::take(&mut self.untyped);
        let body = self.computation_instructions(name, pos);
        let untyped = std::mem::replace(&mut self.untyped, outer_untyped);
        let (comp, by_name) = body?;
        let untyped = untyped.iter().map(|n| by_name[n]).collect();
        Ok((comp, untyped))
    }

    fn computation_instructions(
        &mut self,
        name: String,
        pos: crate::ir::Pos,
    ) -> Result<(Computation, HashMap<String, usize>)> {
        self.expect(b'{', "to open a computation")?;
        let mut instrs: Vec<Instr> = Vec::new();
        let mut operand_names: Vec<Vec<ParsedOperand>> = Vec::new();
        let mut root = None;
        let mut by_name: HashMap<String, usize> = HashMap::new();
        loop {
            self.skip_ws()?;
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
            let (instr, operands, is_root, nested) = self.instruction()?;
            for (inner, inner_operands) in nested {
                if by_name.insert(inner.name.clone(), instrs.len()).is_some() {
                    return self.err_at(
                        inner.pos,
                        format!("instruction '{}' is defined twice in '{name}'", inner.name),
                    );
                }
                instrs.push(inner);
                operand_names.push(inner_operands);
            }
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
            for (n, npos, _) in names {
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
            by_name,
        ))
    }

    pub(super) fn instruction(&mut self) -> Result<ParsedInstr> {
        let pos = self.pos();
        let mut percent = self.peek() == Some(b'%');
        let mut name = self.ident("an instruction name")?;
        let mut is_root = false;
        if name == "ROOT" {
            is_root = true;
            self.skip_ws()?;
            percent = self.peek() == Some(b'%');
            name = self.ident("an instruction name after ROOT")?;
        }
        self.skip_ws()?;
        self.expect(b'=', &format!("after instruction name '{name}'"))?;
        self.skip_ws()?;
        // XLA's text may leave out a result type it can infer: `t = tuple(a, b)`
        let (ty, layout) = if self.opcode_follows() {
            self.untyped.push(name.clone());
            (crate::ir::Type::Tuple(Vec::new()), None)
        } else {
            self.ty_with_layout()?
        };
        self.skip_ws()?;
        let mut nested = Vec::new();
        let (instr, operands) =
            self.instruction_rhs(pos, name, percent, (ty, layout), b"}", &mut nested)?;
        // HLO text is free-form: the next instruction may follow on the same line
        match self.peek() {
            None | Some(b'}') => {}
            Some(b) if is_ident_byte(b) => {}
            _ => {
                return self.err(format!(
                    "expected ',' and an attribute, the next instruction or '}}' after instruction '{}', found {}",
                    instr.name,
                    self.found()
                ))
            }
        }
        Ok((instr, operands, is_root, nested))
    }

    /// Whether the cursor is at `, name =`: an attribute follows (not another operand, as
    /// after an instruction written inline as an operand).
    fn attribute_follows(&mut self) -> bool {
        self.assignment_follows(b',')
    }

    /// Whether the cursor is at `{ name =`: a computation written inline as an attribute's
    /// value (a braced list of numbers or names is not one).
    fn computation_follows(&mut self) -> bool {
        self.assignment_follows(b'{')
    }

    /// Whether the cursor is at `open name =`, without moving it.
    fn assignment_follows(&mut self, open: u8) -> bool {
        let save = (self.at, self.line, self.col);
        let follows = self.eat(open)
            && self.skip_ws().is_ok()
            && self.ident("").is_ok()
            && self.skip_ws().is_ok()
            && self.peek() == Some(b'=');
        (self.at, self.line, self.col) = save;
        follows
    }

    /// Whether the cursor is at `opcode(`: an instruction written inline as an operand
    /// (after its type).
    fn opcode_follows(&mut self) -> bool {
        let save = (self.at, self.line, self.col);
        // `b(` opens XLA's buffer type `b(f32[4])`; no opcode is named `b`
        let follows = self.ident("").is_ok_and(|w| w != "b")
            && self.skip_ws().is_ok()
            && self.peek() == Some(b'(');
        (self.at, self.line, self.col) = save;
        follows
    }

    /// An instruction after its name and type: `opcode(operands), attributes`, the last
    /// attribute value ending before one of `stop` (the computation's '}', or also the ')'
    /// of the instruction an inline one is an operand of). Operands written as
    /// instructions (`(f32[], s32[]) tuple(a, b)`) are parsed into `nested`, innermost
    /// first, and named `{name}.operand{k}`.
    fn instruction_rhs(
        &mut self,
        pos: crate::ir::Pos,
        name: String,
        percent: bool,
        (ty, layout): (crate::ir::Type, Option<Vec<usize>>),
        stop: &[u8],
        nested: &mut Vec<InstrWithOperands>,
    ) -> Result<InstrWithOperands> {
        let opcode = self.ident("an opcode")?;
        self.skip_ws()?;
        self.expect(b'(', &format!("to open the operands of '{opcode}'"))?;
        let mut operands = Vec::new();
        let mut literal = None;
        let mut parameter_number = None;
        if opcode == "constant" {
            let v = self.literal_text()?;
            literal = Some(Literal::Text(v));
            self.expect(b')', "to close a constant literal")?;
        } else if opcode == "parameter" {
            self.skip_ws()?;
            parameter_number = Some(self.number("a parameter number")?);
            self.skip_ws()?;
            self.expect(b')', "to close parameter(N)")?;
        } else {
            loop {
                self.skip_ws()?;
                if self.eat(b')') {
                    break;
                }
                if !operands.is_empty() {
                    self.expect(b',', "between operands")?;
                    self.skip_ws()?;
                }
                // torch-xla and older XLA print a type before each operand; an instruction
                // may be written inline as an operand, with or without its type
                let mut ty = None;
                let opos = self.pos();
                let mut inline = None;
                if self.peek() == Some(b'(') || self.starts_with_type() {
                    let (t, l) = self.ty_with_layout()?;
                    self.skip_ws()?;
                    if self.opcode_follows() {
                        inline = Some((t, l));
                    } else {
                        ty = Some(t);
                    }
                } else if self.opcode_follows() {
                    self.untyped
                        .push(format!("{name}.operand{}", operands.len()));
                    inline = Some((crate::ir::Type::Tuple(Vec::new()), None));
                }
                if let Some((t, l)) = inline {
                    if self.inline_depth >= MAX_INLINE_DEPTH {
                        return self.err_at(
                            opos,
                            format!("instructions written inline as operands nest deeper than {MAX_INLINE_DEPTH}"),
                        );
                    }
                    let inner_name = format!("{name}.operand{}", operands.len());
                    self.inline_depth += 1;
                    let inner = self.instruction_rhs(
                        opos,
                        inner_name.clone(),
                        percent,
                        (t, l),
                        b"})",
                        nested,
                    );
                    self.inline_depth -= 1;
                    let inner = inner?;
                    nested.push(inner);
                    operands.push((inner_name, opos, None));
                    continue;
                }
                let opos = self.pos();
                let n = self.ident("an operand name")?;
                operands.push((n, opos, ty));
            }
        }
        let mut attrs = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() != Some(b',') || !self.attribute_follows() {
                break;
            }
            self.bump();
            self.skip_ws()?;
            let npos = self.pos();
            let aname = self.ident("an attribute name")?;
            self.skip_ws()?;
            self.expect(b'=', &format!("after attribute name '{aname}'"))?;
            self.skip_ws()?;
            let apos = self.pos();
            match attr_names::takes(&opcode, &aname) {
                Some(false) => {
                    return self.err_at(
                        npos,
                        format!(
                            "{opcode} does not take attribute '{aname}'; it takes: {}",
                            attr_names::allowed(&opcode)
                        ),
                    )
                }
                _ if attrs.iter().any(|a: &Attr| a.name == aname) => {
                    return self.err_at(npos, format!("attribute '{aname}' is given twice"))
                }
                _ => {}
            }
            let value = if COMPUTATION_ATTRS.contains(&aname.as_str()) && self.computation_follows()
            {
                // a computation written inline as the value: `to_apply={ x = ... }`
                // unique in the module: two computations may each have an instruction `r`
                let mut inner = format!("{name}.{aname}");
                let mut k = 1;
                while !self.inline_names.insert(inner.clone()) {
                    k += 1;
                    inner = format!("{name}.{aname}.{k}");
                }
                let (comp, untyped) = self.computation_body(inner.clone(), apos)?;
                self.inline_computations.push((comp, untyped));
                inner
            } else if aname == "literal" && self.starts_with_type() {
                // custom-call's `literal=s32[] 1`: a type, then the value
                let ty = self.raw_value(stop)?;
                self.skip_ws()?;
                format!("{ty} {}", self.raw_value(stop)?)
            } else {
                self.raw_value(stop)?
            };
            attrs.push(Attr {
                name: aname,
                value,
                pos: apos,
            });
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
                percent,
                layout,
            },
            operands,
        ))
    }
}
