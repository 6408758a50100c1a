//! Device profiles: one NeuronCore's memory, bandwidths, latency and compute.

use serde::{Deserialize, Serialize};
use statetensor_core::{Error, Result};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// What the simulator models for one NeuronCore. Every field can be overridden by a JSON
/// profile file (`statetensor calibrate` writes one from measurements on hardware).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceProfile {
    /// Profile name (`inf2`, `trn1`, `trn2`, or the file's).
    pub name: String,
    /// HBM usable by models, bytes (after the runtime's reservation).
    pub hbm_bytes: u64,
    /// HBM bandwidth, bytes per second.
    pub hbm_bytes_per_s: f64,
    /// Host → device bandwidth, bytes per second.
    pub h2d_bytes_per_s: f64,
    /// Device → host bandwidth, bytes per second.
    pub d2h_bytes_per_s: f64,
    /// Fixed cost of one host↔device transfer, seconds.
    pub transfer_latency_s: f64,
    /// Peak compute, operations per second.
    pub peak_flops: f64,
    /// Fixed cost of one execute, seconds.
    pub execute_overhead_s: f64,
    /// Where the figures come from, and which are assumptions.
    pub notes: Vec<String>,
}

impl Default for DeviceProfile {
    fn default() -> Self {
        DeviceProfile::inf2()
    }
}

impl DeviceProfile {
    /// One NeuronCore-v2 of an Inferentia2 chip.
    pub fn inf2() -> DeviceProfile {
        DeviceProfile {
            name: "inf2".into(),
            hbm_bytes: statetensor_core::INF2_CORE_HBM_BYTES,
            hbm_bytes_per_s: 410.0 * GIB as f64,
            h2d_bytes_per_s: 12.0 * GIB as f64,
            d2h_bytes_per_s: 12.0 * GIB as f64,
            transfer_latency_s: 10e-6,
            peak_flops: 95e12,
            execute_overhead_s: 50e-6,
            notes: vec![
                "documented: 32 GiB HBM and 820 GiB/s per chip, 2 NeuronCore-v2 per chip, 190 TFLOPS BF16 per chip; the runtime reserves 96 MiB per core (AWS Neuron documentation; docs/architecture.md §12)".into(),
                "derived: per core 16 GiB - 96 MiB HBM, 410 GiB/s, 95 TFLOPS".into(),
                "assumption: host<->device 12 GiB/s each way and 10 us per transfer (PCIe figures are not published); 50 us per execute".into(),
            ],
        }
    }

    /// One NeuronCore-v2 of a Trainium chip (same core as inf2).
    pub fn trn1() -> DeviceProfile {
        DeviceProfile {
            name: "trn1".into(),
            notes: vec![
                "documented: 32 GiB HBM and 820 GiB/s per chip, 2 NeuronCore-v2 per chip, 190 TFLOPS BF16 per chip; 96 MiB runtime reservation per core (AWS Neuron documentation; docs/architecture.md §12)".into(),
                "derived: per core 16 GiB - 96 MiB HBM, 410 GiB/s, 95 TFLOPS".into(),
                "assumption: host<->device 12 GiB/s each way and 10 us per transfer (not published); 50 us per execute".into(),
            ],
            ..DeviceProfile::inf2()
        }
    }

    /// One logical NeuronCore (LNC=2) of a Trainium2 chip.
    pub fn trn2() -> DeviceProfile {
        DeviceProfile {
            name: "trn2".into(),
            hbm_bytes: 24 * GIB - 2 * 96 * MIB,
            hbm_bytes_per_s: 2.9e12 / 4.0,
            h2d_bytes_per_s: 24.0 * GIB as f64,
            d2h_bytes_per_s: 24.0 * GIB as f64,
            transfer_latency_s: 10e-6,
            peak_flops: 667e12 / 4.0,
            execute_overhead_s: 50e-6,
            notes: vec![
                "documented: 96 GiB HBM (4 x 24 GB banks) and 2.9 TB/s per chip, 8 NeuronCore-v3 exposed as 4 logical cores at LNC=2, 667 TFLOPS BF16 per chip (AWS Neuron documentation; docs/architecture.md §12)".into(),
                "derived: per logical core 24 GiB HBM less two 96 MiB reservations, 725 GB/s, 167 TFLOPS".into(),
                "assumption: host<->device 24 GiB/s each way and 10 us per transfer (not published); 50 us per execute".into(),
            ],
        }
    }

    /// The built-in profile named `name`.
    pub fn builtin(name: &str) -> Option<DeviceProfile> {
        match name {
            "inf2" => Some(DeviceProfile::inf2()),
            "trn1" => Some(DeviceProfile::trn1()),
            "trn2" => Some(DeviceProfile::trn2()),
            _ => None,
        }
    }

    /// A built-in name, or a JSON file whose fields override the `base` field's profile
    /// (default inf2).
    pub fn resolve(spec: &str) -> Result<DeviceProfile> {
        if let Some(p) = DeviceProfile::builtin(spec) {
            return Ok(p);
        }
        let path = std::path::Path::new(spec);
        if !path.exists() {
            return Err(Error::invalid_input(
                "device profile",
                format!("'{spec}' is neither a built-in profile (inf2, trn1, trn2) nor an existing JSON file"),
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("read device profile", spec, e))?;
        DeviceProfile::from_json(&text, spec)
    }

    /// Parses a profile file: `{"base": "trn1", "h2d_bytes_per_s": 2.0e10, ...}`.
    pub fn from_json(text: &str, what: &str) -> Result<DeviceProfile> {
        let bad = |m: String| Error::invalid_input(format!("device profile '{what}'"), m);
        let mut v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object_mut()
            .ok_or_else(|| bad("expected a JSON object of profile fields".into()))?;
        let base = match obj.remove("base") {
            None => DeviceProfile::inf2(),
            Some(serde_json::Value::String(b)) => DeviceProfile::builtin(&b)
                .ok_or_else(|| bad(format!("base '{b}' is not inf2, trn1 or trn2")))?,
            Some(other) => return Err(bad(format!("base must be a profile name, found {other}"))),
        };
        let mut merged = serde_json::to_value(&base).map_err(|e| bad(e.to_string()))?;
        let m = merged
            .as_object_mut()
            .expect("a profile serialises to an object");
        for (k, val) in obj.iter() {
            m.insert(k.clone(), val.clone());
        }
        let p: DeviceProfile = serde_json::from_value(merged).map_err(|e| bad(format!("{e}")))?;
        if p.name == base.name && !obj.contains_key("name") {
            // a file profile is named after its file unless it says otherwise
            return DeviceProfile {
                name: what.to_string(),
                ..p
            }
            .checked(what);
        }
        p.checked(what)
    }

    fn checked(self, what: &str) -> Result<DeviceProfile> {
        let positive = [
            ("hbm_bytes_per_s", self.hbm_bytes_per_s),
            ("h2d_bytes_per_s", self.h2d_bytes_per_s),
            ("d2h_bytes_per_s", self.d2h_bytes_per_s),
            ("peak_flops", self.peak_flops),
        ];
        for (k, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid_input(
                    format!("device profile '{what}'"),
                    format!("{k} must be a positive number, found {v}"),
                ));
            }
        }
        for (k, v) in [
            ("transfer_latency_s", self.transfer_latency_s),
            ("execute_overhead_s", self.execute_overhead_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid_input(
                    format!("device profile '{what}'"),
                    format!("{k} must be zero or more, found {v}"),
                ));
            }
        }
        Ok(self)
    }

    /// Modelled seconds of one host → device transfer.
    pub fn h2d_seconds(&self, bytes: u64) -> f64 {
        self.transfer_latency_s + bytes as f64 / self.h2d_bytes_per_s
    }

    /// Modelled seconds of one device → host transfer.
    pub fn d2h_seconds(&self, bytes: u64) -> f64 {
        self.transfer_latency_s + bytes as f64 / self.d2h_bytes_per_s
    }

    /// Modelled seconds of a device → device copy.
    pub fn d2d_seconds(&self, bytes: u64) -> f64 {
        bytes as f64 / self.hbm_bytes_per_s
    }

    /// Modelled seconds of an execute doing `flops` operations over `bytes` of memory.
    pub fn execute_seconds(&self, flops: u64, bytes: u64) -> f64 {
        self.execute_overhead_s
            + (flops as f64 / self.peak_flops).max(bytes as f64 / self.hbm_bytes_per_s)
    }
}
