//! Differences between backends that are meant to be, each with its reason.

/// A difference between backends that is intended, with why. The suite checks it still
/// holds: a difference that disappears fails the run until this list is updated.
pub struct Known {
    /// What differs.
    pub what: &'static str,
    /// Why it is meant to.
    pub reason: &'static str,
}

/// The declared differences between the simulator and the driver.
pub const KNOWN_DIFFERENCES: &[Known] = &[
    Known {
        what: "device memory in use between executes",
        reason: "the driver keeps each state set's staging tensors (user inputs and returned outputs) and tensor sets allocated after its first execute, as a libnrt host must; the simulator charges staging only for the duration of an execute",
    },
    Known {
        what: "ledger seconds",
        reason: "the simulator reports modelled time, the driver measured time; only byte and transfer counts are compared",
    },
];
