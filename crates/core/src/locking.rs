//! Exclusive use and poisoning: the two checks before any call touches a state set.

use crate::{Error, Result};

/// Locks a state set (or any resource) for exclusive use without waiting: a resource in use
/// by another call is [`Error::Busy`] — never a race, never a deadlock. A lock poisoned by a
/// panic elsewhere is taken anyway (the state set's own poisoning is what reports failures).
pub fn lock_exclusive<'a, T>(
    op: &str,
    resource: &str,
    m: &'a std::sync::Mutex<T>,
) -> Result<std::sync::MutexGuard<'a, T>> {
    match m.try_lock() {
        Ok(g) => Ok(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(Error::Busy {
            op: op.to_string(),
            resource: resource.to_string(),
        }),
    }
}

/// [`Error::Poisoned`] when state set `set` was poisoned by the call `failed`.
pub fn check_not_poisoned(op: &str, set: &str, failed: &Option<String>) -> Result<()> {
    match failed {
        Some(f) => Err(Error::Poisoned {
            op: op.to_string(),
            state_set: set.to_string(),
            failed_call: f.clone(),
        }),
        None => Ok(()),
    }
}

/// [`Error::InvalidInput`] when a copy's source and destination are the same state set.
pub fn check_distinct_sets(op: &str, from: &str, to: &str) -> Result<()> {
    if from == to {
        return Err(Error::invalid_input(
            op,
            "source and destination are the same state set",
        ));
    }
    Ok(())
}

/// Locks `m`, taking the data even if a panic elsewhere poisoned the lock: the ledgers and
/// registries it guards stay consistent between statements, and a state set's own poisoning
/// is what reports failed calls.
pub fn lock_unpoisoned<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
