//! Types: element types, array shapes with layouts, tuples, tokens.

use super::Parser;
use crate::ir::{ArrayType, Type};
use statetensor_core::{DType, Result};

/// XLA's element types statetensor does not compute in: recognised as types where one may
/// stand (so that the error names the type, not the syntax around it), then refused.
const OTHER_XLA_TYPES: &[&str] = &[
    "s1",
    "s2",
    "u1",
    "u2",
    "c64",
    "c128",
    "f8e4m3",
    "f8e3m4",
    "f8e4m3fnuz",
    "f8e5m2fnuz",
    "f8e4m3b11fnuz",
    "f8e8m0fnu",
    "f4e2m1fn",
];

impl<'a> Parser<'a> {
    /// Whether the text at the cursor is an element type of XLA's followed by `[`.
    pub(super) fn starts_with_type(&self) -> bool {
        let mut k = self.at;
        while self.src.get(k).is_some_and(|b| b.is_ascii_alphanumeric()) {
            k += 1;
        }
        self.src.get(k) == Some(&b'[')
            && std::str::from_utf8(&self.src[self.at..k]).is_ok_and(|w| {
                DType::from_hlo_name(w).is_some() || w == "token" || OTHER_XLA_TYPES.contains(&w)
            })
    }

    /// A type: `f32[2,3]{1,0}`, `(f32[], s32[2])`, `token[]`.
    pub(super) fn ty(&mut self) -> Result<Type> {
        Ok(self.ty_with_layout()?.0)
    }

    /// A type and, for an array written with one, its layout's minor-to-major order (the
    /// numbers before any `:` of tiling or memory space).
    pub(super) fn ty_with_layout(&mut self) -> Result<(Type, Option<Vec<usize>>)> {
        if self.eat(b'(') {
            let mut elems = Vec::new();
            loop {
                self.skip_ws()?;
                if self.eat(b')') {
                    return Ok((Type::Tuple(elems), None));
                }
                if !elems.is_empty() {
                    self.expect(b',', "between tuple element types")?;
                    self.skip_ws()?;
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
            return Ok((Type::Token, None));
        }
        if word == "b" && self.peek() == Some(b'(') {
            // XLA's buffer type `b(f32[32])` (what Pin/Unpin custom-calls take and give):
            // read as the array it holds
            self.bump();
            self.skip_ws()?;
            let inner = self.ty_with_layout()?;
            self.skip_ws()?;
            self.expect(b')', "to close a buffer type 'b(...)'")?;
            return Ok(inner);
        }
        let Some(dtype) = DType::from_hlo_name(word) else {
            return if word.is_empty() {
                self.err_at(
                    pos,
                    format!("expected a type such as 'f32[2,3]', found {}", self.found()),
                )
            } else if matches!(self.peek(), Some(b'(')) || word == "tuple" {
                self.err_at(
                    pos,
                    format!("expected a type before '{word}' (e.g. 'f32[2,3] {word}(...)')"),
                )
            } else {
                self.err_at(
                    pos,
                    format!("unsupported element type '{word}': expected pred, s4, s8..s64, u4, u8..u64, f16, bf16, f32, f64, f8e4m3fn or f8e5m2"),
                )
            };
        };
        self.expect(b'[', &format!("after element type '{word}'"))?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws()?;
            if self.eat(b']') {
                break;
            }
            if !dims.is_empty() {
                self.expect(b',', "between dimensions")?;
                self.skip_ws()?;
            }
            if matches!(self.peek(), Some(b'<' | b'?')) {
                return self.err(
                    "dynamic dimensions ('<=N', '?') are not supported: expected a static size",
                );
            }
            dims.push(self.number("a dimension size")?);
        }
        let mut layout = None;
        if self.peek() == Some(b'{') {
            // layout: {1,0} or {1,0:T(8,128)}; the order is kept, tiling dropped
            let start = self.at;
            let lpos = self.pos();
            self.skip_group()?;
            let text = String::from_utf8_lossy(&self.src[start + 1..self.at - 1]).into_owned();
            let order = text.split(':').next().unwrap_or("").trim();
            if !order.is_empty() {
                let parsed: Option<Vec<usize>> =
                    order.split(',').map(|d| d.trim().parse().ok()).collect();
                match parsed {
                    Some(o) if crate::ir::is_permutation(&o, dims.len()) => layout = Some(o),
                    _ => {
                        return self.err_at(
                            lpos,
                            format!(
                                "layout {{{order}}} is not an order of the {} dimensions",
                                dims.len()
                            ),
                        )
                    }
                }
            }
        }
        let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count
            .and_then(|c| c.checked_mul(dtype.size_bytes()))
            .is_none()
        {
            return self.err_at(pos, "array type is too large: its byte size overflows");
        }
        Ok((Type::Array(ArrayType { dtype, dims }), layout))
    }
}
