//! State sets and the registry a device keeps of them, generic over where a buffer lives.
//!
//! Every backend keeps named state sets on a device, shared by the models loaded there,
//! locked for exclusive use by one call at a time and poisoned by a failed execute. The
//! bookkeeping — lookup with a hint naming what exists, the lock-and-poison check, the
//! per-state lookup, the compatibility check of a copy — is the same whatever a buffer is
//! (a host tensor in the simulator, an `nrt_tensor_t` on the driver), so it lives here once
//! and both backends give the same errors by construction.

use crate::{Error, HostTensor, Result, TensorSpec};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// How a new state set is filled.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum StateInit {
    /// All zeros (a device-side memset: nothing crosses the bus).
    #[default]
    Zeros,
    /// The given values, by state name: written host → device once, and copied on the
    /// device into a kept copy (charged to HBM) that `reset` restores; states not named are
    /// zeros.
    Values(Vec<(String, HostTensor)>),
}

/// One state tensor of a set: its spec and the backend's buffer.
#[derive(Debug)]
pub struct StateSlot<B> {
    /// Name, dtype and shape.
    pub spec: TensorSpec,
    /// The device buffer.
    pub buf: B,
}

/// A named group of state tensors on a device: the states by name, the initial values kept
/// on the device for `reset` (none: zeros), and the call that poisoned the set, if any.
#[derive(Debug)]
pub struct StateSet<B, I = B> {
    /// The states, by name.
    pub states: BTreeMap<String, StateSlot<B>>,
    /// Initial values by state name, kept on the device (the host keeps no copy).
    pub init: BTreeMap<String, I>,
    /// The call that failed on this set, if any.
    pub poisoned: Option<String>,
}

impl<B, I> StateSet<B, I> {
    /// A set of `states`, not poisoned.
    pub fn new(states: BTreeMap<String, StateSlot<B>>, init: BTreeMap<String, I>) -> Self {
        StateSet {
            states,
            init,
            poisoned: None,
        }
    }

    /// Bytes of the states (the kept initial values not included).
    pub fn state_bytes(&self) -> u64 {
        self.states
            .values()
            .map(|s| s.spec.size_bytes() as u64)
            .sum()
    }

    /// The slot of state `state`; [`Error::NotFound`] naming the states the set holds.
    pub fn slot(&self, op: &str, state: &str) -> Result<&StateSlot<B>> {
        self.states
            .get(state)
            .ok_or_else(|| self.missing_state(op, state))
    }

    /// The slot of state `state`, to update it.
    pub fn slot_mut(&mut self, op: &str, state: &str) -> Result<&mut StateSlot<B>> {
        if !self.states.contains_key(state) {
            return Err(self.missing_state(op, state));
        }
        self.states
            .get_mut(state)
            .ok_or_else(|| Error::runtime(op, "internal: state vanished"))
    }

    fn missing_state(&self, op: &str, state: &str) -> Error {
        Error::NotFound {
            op: op.to_string(),
            what: "state in this state set".into(),
            name: state.to_string(),
            hint: listing("; the set holds: ", self.states.keys().map(String::as_str)),
        }
    }

    /// Checks that state set `from_name` (`src`) can be copied into this one: every state
    /// of this set must be in the source with the same dtype and shape.
    pub fn check_copy_from<C, J>(
        &self,
        op: &str,
        from_name: &str,
        src: &StateSet<C, J>,
    ) -> Result<()> {
        for (name, slot) in &self.states {
            match src.states.get(name) {
                Some(s) if s.spec.dtype == slot.spec.dtype && s.spec.shape == slot.spec.shape => {}
                _ => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "'{from_name}' has no state '{name}' of type {}",
                            slot.spec.type_string()
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A shared handle to one state set.
pub type StateSetHandle<B, I> = Arc<Mutex<StateSet<B, I>>>;

/// The state sets of one device, by name, shared by every model loaded on it.
#[derive(Debug)]
pub struct StateSets<B, I = B> {
    sets: Mutex<HashMap<String, StateSetHandle<B, I>>>,
}

impl<B, I> Default for StateSets<B, I> {
    fn default() -> Self {
        StateSets {
            sets: Mutex::new(HashMap::new()),
        }
    }
}

impl<B, I> StateSets<B, I> {
    /// The registry itself, locked: for a create that checks and inserts atomically.
    pub fn registry(&self) -> MutexGuard<'_, HashMap<String, StateSetHandle<B, I>>> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// State set `name`; [`Error::NotFound`] listing the sets that exist.
    pub fn get(&self, op: &str, name: &str) -> Result<StateSetHandle<B, I>> {
        let sets = self.registry();
        sets.get(name).cloned().ok_or_else(|| {
            let mut names: Vec<&str> = sets.keys().map(String::as_str).collect();
            names.sort_unstable();
            Error::NotFound {
                op: op.to_string(),
                what: "state set".into(),
                name: name.to_string(),
                hint: if names.is_empty() {
                    "; no state sets exist (create one first)".into()
                } else {
                    listing("; existing: ", names.into_iter())
                },
            }
        })
    }

    /// True when state set `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.registry().contains_key(name)
    }

    /// Copies state set `from` into `to` on the device — a snapshot, or a restore: `to`
    /// is created with `create` when it does not exist yet; the source must be usable (not
    /// busy, not poisoned) and hold every state of `to` with its type; `copy_state` moves
    /// one state's bytes (spec, source buffer, destination buffer). A completed copy clears
    /// `to`'s poisoning.
    pub fn copy_set(
        &self,
        op: &str,
        from: &str,
        to: &str,
        create: impl FnOnce() -> Result<()>,
        mut copy_state: impl FnMut(&TensorSpec, &B, &mut B) -> Result<()>,
    ) -> Result<()> {
        crate::check_distinct_sets(op, from, to)?;
        let src_handle = self.get(op, from)?;
        drop(lock_state_set(op, from, &src_handle, false)?);
        if !self.contains(to) {
            create()?;
        }
        let dst_handle = self.get(op, to)?;
        let src = lock_state_set(op, from, &src_handle, false)?;
        let mut dst = lock_state_set(op, to, &dst_handle, true)?;
        dst.check_copy_from(op, from, &src)?;
        for (name, slot) in dst.states.iter_mut() {
            copy_state(&slot.spec, &src.slot(op, name)?.buf, &mut slot.buf)?;
        }
        dst.poisoned = None;
        Ok(())
    }

    /// Forgets state set `name` (its buffers are freed when the last handle goes).
    pub fn remove(&self, name: &str) -> Option<StateSetHandle<B, I>> {
        self.registry().remove(name)
    }
}

/// Locks state set `name` for exclusive use without waiting: a set in use by another call
/// is [`Error::Busy`]; a poisoned set is [`Error::Poisoned`] unless `allow_poisoned` (reset,
/// restore, drop and attach may use a poisoned set).
pub fn lock_state_set<'a, B, I>(
    op: &str,
    name: &str,
    set: &'a Mutex<StateSet<B, I>>,
    allow_poisoned: bool,
) -> Result<MutexGuard<'a, StateSet<B, I>>> {
    let g = crate::lock_exclusive(op, &format!("state set '{name}'"), set)?;
    if !allow_poisoned {
        crate::check_not_poisoned(op, name, &g.poisoned)?;
    }
    Ok(g)
}

/// Checks that bytes `[offset, offset + len)` lie inside a state of `size` bytes; returns
/// the offset as an index.
pub fn check_byte_range(op: &str, size: usize, offset: u64, len: usize) -> Result<usize> {
    let off = usize::try_from(offset)
        .map_err(|_| Error::invalid_input(op, format!("offset {offset} does not fit in memory")))?;
    if off.checked_add(len).is_none_or(|end| end > size) {
        return Err(Error::invalid_input(
            op,
            format!(
                "byte range {off}..{} is outside the state's {size} bytes",
                off.saturating_add(len)
            ),
        ));
    }
    Ok(off)
}

fn listing<'a>(prefix: &str, names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("{prefix}{}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, ErrorKind};

    fn set(names: &[&str]) -> StateSet<u8> {
        StateSet::new(
            names
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        StateSlot {
                            spec: TensorSpec::new(*n, DType::F32, vec![2]),
                            buf: 0,
                        },
                    )
                })
                .collect(),
            BTreeMap::new(),
        )
    }

    #[test]
    fn missing_sets_and_states_name_what_exists() {
        let sets: StateSets<u8> = StateSets::default();
        let e = sets.get("op", "a").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("no state sets exist"), "{e}");
        sets.registry()
            .insert("b".into(), Arc::new(Mutex::new(set(&["k", "v"]))));
        let e = sets.get("op", "a").unwrap_err();
        assert!(e.to_string().contains("existing: b"), "{e}");
        let h = sets.get("op", "b").unwrap();
        let g = lock_state_set("op", "b", &h, false).unwrap();
        let e = g.slot("op", "q").unwrap_err();
        assert!(e.to_string().contains("holds: k, v"), "{e}");
    }

    #[test]
    fn busy_and_poisoned_sets_are_refused() {
        let m = Mutex::new(set(&["k"]));
        let g = lock_state_set("op", "s", &m, false).unwrap();
        assert_eq!(
            lock_state_set("op", "s", &m, true).unwrap_err().kind(),
            ErrorKind::Busy
        );
        drop(g);
        m.lock().unwrap().poisoned = Some("execute #1".into());
        assert_eq!(
            lock_state_set("op", "s", &m, false).unwrap_err().kind(),
            ErrorKind::Poisoned
        );
        assert!(lock_state_set("op", "s", &m, true).is_ok());
    }

    #[test]
    fn copies_need_every_destination_state() {
        let (small, big) = (set(&["k"]), set(&["k", "v"]));
        assert!(small.check_copy_from("op", "big", &big).is_ok());
        let e = big.check_copy_from("op", "small", &small).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("no state 'v'"), "{e}");
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(check_byte_range("op", 8, 4, 4).unwrap(), 4);
        assert!(check_byte_range("op", 8, 5, 4).is_err());
        assert!(check_byte_range("op", 8, u64::MAX, 1).is_err());
        assert_eq!(check_byte_range("op", 8, 8, 0).unwrap(), 8);
    }
}
