//! A `dot` reading a `transpose` of its operand (folded away by the planner, the operand read
//! in place) computes what the same dot computes over the materialised transpose (kept by a
//! `copy` between them, which the planner does not fold): random ranks, dimension numbers,
//! permutations (chains of two included), float and integer types. Values are small
//! integers, so every sum is exact in any order and the two results must be identical.

use proptest::prelude::*;
use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

/// A tiny deterministic generator, so one proptest seed drives the whole case.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

fn list(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// One operand: its logical axes (role, index) in operand order, and a source written in
/// another order that one or two transposes bring back.
struct Operand {
    dims: Vec<usize>,
    source_dims: Vec<usize>,
    /// transposes from the source to the operand (each a `dimensions=` list)
    perms: Vec<Vec<usize>>,
}

fn operand(rng: &mut Lcg, dims: Vec<usize>) -> Operand {
    let rank = dims.len();
    let mut perms = Vec::new();
    let mut current = dims.clone();
    // walk back from the operand: each transpose's source is the previous shape
    for _ in 0..1 + rng.below(2) {
        let mut p: Vec<usize> = (0..rank).collect();
        rng.shuffle(&mut p);
        let mut src = vec![0; rank];
        for (i, &pi) in p.iter().enumerate() {
            src[pi] = current[i];
        }
        perms.insert(0, p);
        current = src;
    }
    Operand {
        dims,
        source_dims: current,
        perms,
    }
}

fn module(ty: &str, l: &Operand, r: &Operand, dims: &str, out: &[usize], copy: bool) -> String {
    let mut body = String::new();
    for (name, o, p) in [("l", l, 0), ("r", r, 1)] {
        body += &format!(
            "  {name}0 = {ty}[{}] parameter({p})\n",
            list(&o.source_dims)
        );
        let mut shape = o.source_dims.clone();
        for (k, perm) in o.perms.iter().enumerate() {
            shape = perm.iter().map(|&i| shape[i]).collect();
            body += &format!(
                "  {name}{} = {ty}[{}] transpose({name}{k}), dimensions={{{}}}\n",
                k + 1,
                list(&shape),
                list(perm)
            );
        }
        assert_eq!(shape, o.dims);
        let last = o.perms.len();
        if copy {
            body += &format!("  {name}c = {ty}[{}] copy({name}{last})\n", list(&o.dims));
        } else {
            body += &format!(
                "  {name}c = {ty}[{}] transpose({name}{last}), dimensions={{{}}}\n",
                list(&o.dims),
                list(&(0..o.dims.len()).collect::<Vec<_>>())
            );
        }
    }
    format!(
        "HloModule t\nENTRY e {{\n{body}  ROOT d = {ty}[{}] dot(lc, rc), {dims}\n}}\n",
        list(out)
    )
}

fn values(dtype: DType, dims: &[usize], rng: &mut Lcg) -> Arc<Tensor> {
    let n: usize = dims.iter().product();
    let ints: Vec<i32> = (0..n).map(|_| rng.below(7) as i32 - 3).collect();
    let bytes: Vec<u8> = match dtype {
        DType::F32 => ints
            .iter()
            .flat_map(|&x| (x as f32).to_le_bytes())
            .collect(),
        _ => ints.iter().flat_map(|&x| x.to_le_bytes()).collect(),
    };
    Arc::new(Tensor::from_le_bytes(dtype, dims, &bytes).unwrap())
}

fn check(seed: u64, dtype: DType) {
    let mut rng = Lcg(seed);
    let size = |rng: &mut Lcg| 1 + rng.below(5);
    let batch: Vec<usize> = (0..rng.below(2)).map(|_| size(&mut rng)).collect();
    let contract: Vec<usize> = (0..1 + rng.below(2)).map(|_| size(&mut rng)).collect();
    let lfree: Vec<usize> = (0..rng.below(3)).map(|_| size(&mut rng)).collect();
    let rfree: Vec<usize> = (0..rng.below(3)).map(|_| size(&mut rng)).collect();
    // (role, index): 0 batch, 1 contracting, 2 free
    let axes = |free: usize, rng: &mut Lcg| {
        let mut a: Vec<(u8, usize)> = (0..batch.len()).map(|i| (0, i)).collect();
        a.extend((0..contract.len()).map(|i| (1, i)));
        a.extend((0..free).map(|i| (2, i)));
        rng.shuffle(&mut a);
        a
    };
    let (la, ra) = (axes(lfree.len(), &mut rng), axes(rfree.len(), &mut rng));
    let size_of = |(role, i): (u8, usize), free: &[usize]| match role {
        0 => batch[i],
        1 => contract[i],
        _ => free[i],
    };
    let position =
        |a: &[(u8, usize)], role: u8, i: usize| a.iter().position(|&x| x == (role, i)).unwrap();
    let numbers = |role: u8, n: usize| {
        (
            list(&(0..n).map(|i| position(&la, role, i)).collect::<Vec<_>>()),
            list(&(0..n).map(|i| position(&ra, role, i)).collect::<Vec<_>>()),
        )
    };
    let (lb, rb) = numbers(0, batch.len());
    let (lc, rc) = numbers(1, contract.len());
    let dims = format!("lhs_batch_dims={{{lb}}}, rhs_batch_dims={{{rb}}}, lhs_contracting_dims={{{lc}}}, rhs_contracting_dims={{{rc}}}");
    let l = operand(&mut rng, la.iter().map(|&x| size_of(x, &lfree)).collect());
    let r = operand(&mut rng, ra.iter().map(|&x| size_of(x, &rfree)).collect());
    // result: batch, lhs free in operand order, rhs free in operand order
    let mut out = batch.clone();
    out.extend(la.iter().filter(|x| x.0 == 2).map(|&x| lfree[x.1]));
    out.extend(ra.iter().filter(|x| x.0 == 2).map(|&x| rfree[x.1]));
    let ty = if dtype == DType::F32 { "f32" } else { "s32" };
    let args = vec![
        values(dtype, &l.source_dims, &mut rng),
        values(dtype, &r.source_dims, &mut rng),
    ];
    let run = |text: &str| {
        Program::parse(text, "t.hlo")
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .execute(args.clone())
            .unwrap()
    };
    let folded = module(ty, &l, &r, &dims, &out, false);
    let materialised = module(ty, &l, &r, &dims, &out, true);
    let (got, want) = (run(&folded), run(&materialised));
    assert_eq!(got[0].dims(), &out[..], "{folded}");
    assert_eq!(got[0].to_le_bytes(), want[0].to_le_bytes(), "{folded}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(96), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dots_over_transposes_match_the_materialised_transpose(seed in any::<u64>(), float in any::<bool>()) {
        check(seed, if float { DType::F32 } else { DType::S32 });
    }
}

/// `h @ E.T` as flax's `Embed.attend` lowers it, at a size that takes the threaded
/// dot-per-column path: the same logits as over the materialised transpose.
#[test]
fn tied_embedding_logits_read_the_table_in_place() {
    let (vocab, d) = (3000, 96);
    let text = |copy: bool| {
        format!(
            "HloModule t\nENTRY e {{\n  h = f32[{d}] parameter(0)\n  e = f32[{vocab},{d}] parameter(1)\n  t = f32[{d},{vocab}] transpose(e), dimensions={{1,0}}\n{}  ROOT y = f32[{vocab}] dot(h, {}), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}\n}}\n",
            if copy { format!("  c = f32[{d},{vocab}] copy(t)\n") } else { String::new() },
            if copy { "c" } else { "t" }
        )
    };
    let mut rng = Lcg(5);
    let args = vec![
        values(DType::F32, &[d], &mut rng),
        values(DType::F32, &[vocab, d], &mut rng),
    ];
    let run = |t: &str| {
        Program::parse(t, "t.hlo")
            .unwrap()
            .execute(args.clone())
            .unwrap()
    };
    assert_eq!(
        run(&text(false))[0].to_le_bytes(),
        run(&text(true))[0].to_le_bytes()
    );
}
