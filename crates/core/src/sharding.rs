//! A whole tensor and its shards along one axis: core k's shard is the k-th of N equal
//! blocks along the axis (how tensor parallelism splits a KV cache by heads, or a weight
//! by columns), and gathering is the inverse. int4 tensors are split element by element
//! (a block may start inside a packed byte).

use crate::{packing, DType, Error, HostTensor, Result};

/// The bytes of `t` one element each (int4 unpacked), and the bytes per element.
fn elements(t: &HostTensor) -> (Vec<u8>, usize) {
    if t.dtype.is_packed() {
        let mut v = vec![0u8; t.shape.element_count()];
        packing::unpack_nibbles(t.dtype, &t.data, &mut v);
        (v, 1)
    } else {
        (t.data.clone(), t.dtype.size_bytes())
    }
}

fn tensor(dtype: DType, dims: Vec<usize>, bytes: Vec<u8>) -> Result<HostTensor> {
    let data = if dtype.is_packed() {
        let mut packed = vec![0u8; bytes.len().div_ceil(2)];
        packing::pack_nibbles(&bytes, &mut packed);
        packed
    } else {
        bytes
    };
    HostTensor::new(dtype, dims, data)
}

/// `t` split into `parts` equal blocks along `axis`, in order. An axis past the last, or
/// one whose length `parts` does not divide, is refused naming both.
pub fn split_along(t: &HostTensor, axis: usize, parts: usize) -> Result<Vec<HostTensor>> {
    let dims = t.shape.dims();
    let len = *dims.get(axis).ok_or_else(|| {
        Error::invalid_input(
            "split along an axis",
            format!(
                "axis {axis} of {}, which has {} axes",
                t.type_string(),
                dims.len()
            ),
        )
    })?;
    if parts == 0 || len % parts != 0 {
        return Err(Error::invalid_input(
            "split along an axis",
            format!(
                "axis {axis} of {} has length {len}, which does not split into {parts} equal shards",
                t.type_string()
            ),
        ));
    }
    let (bytes, unit) = elements(t);
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product::<usize>() * unit;
    let block = len / parts * inner;
    let mut shard_dims = dims.to_vec();
    shard_dims[axis] = len / parts;
    (0..parts)
        .map(|p| {
            let mut out = Vec::with_capacity(outer * block);
            for o in 0..outer {
                let start = o * len * inner + p * block;
                out.extend_from_slice(&bytes[start..start + block]);
            }
            tensor(t.dtype, shard_dims.clone(), out)
        })
        .collect()
}

/// The shards put back together along `axis` (the inverse of [`split_along`]); shards of
/// different types are refused.
pub fn gather_along(shards: &[HostTensor], axis: usize) -> Result<HostTensor> {
    let first = shards
        .first()
        .ok_or_else(|| Error::invalid_input("gather along an axis", "no shards"))?;
    let dims = first.shape.dims();
    if axis >= dims.len() {
        return Err(Error::invalid_input(
            "gather along an axis",
            format!(
                "axis {axis} of {}, which has {} axes",
                first.type_string(),
                dims.len()
            ),
        ));
    }
    if let Some(s) = shards
        .iter()
        .find(|s| s.dtype != first.dtype || s.shape != first.shape)
    {
        return Err(Error::invalid_input(
            "gather along an axis",
            format!("shards of {} and {}", first.type_string(), s.type_string()),
        ));
    }
    let parts: Vec<(Vec<u8>, usize)> = shards.iter().map(elements).collect();
    let unit = parts[0].1;
    let outer: usize = dims[..axis].iter().product();
    let block = dims[axis] * dims[axis + 1..].iter().product::<usize>() * unit;
    let mut out = Vec::with_capacity(block * outer * shards.len());
    for o in 0..outer {
        for (bytes, _) in &parts {
            out.extend_from_slice(&bytes[o * block..(o + 1) * block]);
        }
    }
    let mut whole = dims.to_vec();
    whole[axis] *= shards.len();
    tensor(first.dtype, whole, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s32(dims: &[usize], v: &[i32]) -> HostTensor {
        HostTensor::new(
            DType::S32,
            dims,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn split_and_gather_are_inverse_along_any_axis() {
        let t = s32(&[2, 4, 3], &(0..24).collect::<Vec<_>>());
        for axis in 0..3 {
            let parts = [2, 4, 3][axis];
            let shards = split_along(&t, axis, parts).unwrap();
            assert_eq!(shards.len(), parts);
            assert_eq!(gather_along(&shards, axis).unwrap(), t, "axis {axis}");
        }
        // along the middle axis: core 1 holds columns 2..4 of every row block
        let shards = split_along(&t, 1, 2).unwrap();
        assert_eq!(
            shards[1],
            s32(&[2, 2, 3], &[6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23])
        );
    }

    #[test]
    fn int4_splits_inside_packed_bytes() {
        let mut packed = [0u8; 3];
        packing::pack_nibbles(&[1, 2, 3, 4, 5, 6], &mut packed);
        let t = HostTensor::new(DType::S4, vec![2, 3], packed.to_vec()).unwrap();
        let shards = split_along(&t, 0, 2).unwrap();
        let mut v = [0u8; 3];
        packing::unpack_nibbles(DType::S4, &shards[1].data, &mut v);
        assert_eq!(v, [4, 5, 6]);
        assert_eq!(gather_along(&shards, 0).unwrap(), t);
    }

    #[test]
    fn uneven_splits_and_missing_axes_are_named() {
        let t = s32(&[3, 2], &[0; 6]);
        let e = split_along(&t, 0, 2).unwrap_err().to_string();
        assert!(
            e.contains("length 3") && e.contains("2 equal shards"),
            "{e}"
        );
        let e = split_along(&t, 2, 2).unwrap_err().to_string();
        assert!(e.contains("axis 2") && e.contains("2 axes"), "{e}");
    }
}
