//! HBM capacity accounting: every device allocation is charged, nothing is reserved up
//! front, so a 16 GiB profile costs no host memory until a model really holds data.

use crate::{Error, MemoryReport, Result};
use std::sync::Mutex;

/// HBM of one inf2 NeuronCore-v2 as the runtime leaves it to models: half of the chip's
/// 32 GiB, less the 96 MiB the runtime reserves per core (documented figures;
/// docs/architecture.md §12). The simulator's `inf2` profile and the libnrt
/// emulator's default capacity are both this number, so their capacity checks agree.
pub const INF2_CORE_HBM_BYTES: u64 = (16 << 30) - (96 << 20);

/// A device's memory ledger.
#[derive(Debug)]
pub struct Hbm {
    inner: Mutex<MemoryReport>,
}

impl Hbm {
    /// Empty memory of `capacity` bytes.
    pub fn new(capacity: u64) -> Hbm {
        Hbm {
            inner: Mutex::new(MemoryReport {
                used: 0,
                peak: 0,
                capacity,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryReport> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Charges `bytes`, or fails with the numbers and changes nothing.
    pub fn alloc(&self, op: &str, bytes: u64) -> Result<()> {
        let mut m = self.lock();
        let free = m.capacity.saturating_sub(m.used);
        if bytes > free {
            return Err(Error::OutOfDeviceMemory {
                op: op.to_string(),
                requested: bytes,
                free,
                capacity: m.capacity,
            });
        }
        m.used += bytes;
        m.peak = m.peak.max(m.used);
        Ok(())
    }

    /// Returns `bytes` charged earlier.
    pub fn free(&self, bytes: u64) {
        let mut m = self.lock();
        m.used = m.used.saturating_sub(bytes);
    }

    /// Changes the capacity (allocations already made stay charged).
    pub fn set_capacity(&self, capacity: u64) {
        self.lock().capacity = capacity;
    }

    /// Used, peak and capacity.
    pub fn report(&self) -> MemoryReport {
        *self.lock()
    }
}
