//! The transfer ledger (docs/architecture.md §2.9): bytes, transfers and time, each direction.

use serde::{Deserialize, Serialize};
use std::ops::Sub;

/// A direction of data movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Host memory to device memory.
    HostToDevice,
    /// Device memory to host memory.
    DeviceToHost,
    /// Within device memory.
    DeviceToDevice,
}

/// Counts for one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Bytes moved.
    pub bytes: u64,
    /// Separate transfers.
    pub transfers: u64,
    /// Seconds: modelled on the simulator, measured on hardware.
    pub seconds: f64,
}

impl Flow {
    fn minus(self, o: Flow) -> Flow {
        Flow {
            bytes: self.bytes - o.bytes,
            transfers: self.transfers - o.transfers,
            seconds: self.seconds - o.seconds,
        }
    }
}

/// Everything a backend moved and executed, in total since the model was loaded. The
/// per-call figures are differences of two snapshots (`after - before`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferLedger {
    /// Host → device.
    pub h2d: Flow,
    /// Device → host.
    pub d2h: Flow,
    /// Device → device.
    pub d2d: Flow,
    /// Executes that ran (successful or not).
    pub executes: u64,
    /// Seconds spent executing (modelled or measured).
    pub execute_seconds: f64,
    /// Collectives with the other cores of a model run by several: bytes this core sent
    /// over the links, collectives it took part in, and their time (modelled or measured).
    #[serde(default)]
    pub collective: Flow,
}

impl TransferLedger {
    /// Records one transfer.
    pub fn record(&mut self, dir: Direction, bytes: u64, seconds: f64) {
        let f = match dir {
            Direction::HostToDevice => &mut self.h2d,
            Direction::DeviceToHost => &mut self.d2h,
            Direction::DeviceToDevice => &mut self.d2d,
        };
        f.bytes += bytes;
        f.transfers += 1;
        f.seconds += seconds;
    }

    /// Records one execute.
    pub fn record_execute(&mut self, seconds: f64) {
        self.executes += 1;
        self.execute_seconds += seconds;
    }

    /// Records one collective: `bytes` sent to other cores in `seconds`.
    pub fn record_collective(&mut self, bytes: u64, seconds: f64) {
        self.collective.bytes += bytes;
        self.collective.transfers += 1;
        self.collective.seconds += seconds;
    }

    /// Total seconds: transfers, executes and collectives.
    pub fn total_seconds(&self) -> f64 {
        self.h2d.seconds
            + self.d2h.seconds
            + self.d2d.seconds
            + self.execute_seconds
            + self.collective.seconds
    }
}

impl Sub for TransferLedger {
    type Output = TransferLedger;
    fn sub(self, o: TransferLedger) -> TransferLedger {
        TransferLedger {
            h2d: self.h2d.minus(o.h2d),
            d2h: self.d2h.minus(o.d2h),
            d2d: self.d2d.minus(o.d2d),
            executes: self.executes - o.executes,
            execute_seconds: self.execute_seconds - o.execute_seconds,
            collective: self.collective.minus(o.collective),
        }
    }
}

/// Device memory use, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Bytes allocated now.
    pub used: u64,
    /// Most bytes ever allocated at once.
    pub peak: u64,
    /// Capacity.
    pub capacity: u64,
}
