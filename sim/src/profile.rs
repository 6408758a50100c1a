//! Device profiles: one NeuronCore's memory, bandwidths, latency and compute.

use serde::{Deserialize, Serialize};
use statetensor_core::{Error, Result};
use statetensor_hlo::collective::CollectiveKind;

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
    /// NeuronCores per chip: cores of one chip exchange collective data through the chip,
    /// cores of different chips over NeuronLink.
    pub cores_per_chip: usize,
    /// Bandwidth a collective gets between the cores of one chip, bytes per second.
    pub chip_bytes_per_s: f64,
    /// Bandwidth a ring collective gets between chips over NeuronLink, bytes per second
    /// (per core, all rings the topology allows at once).
    pub link_bytes_per_s: f64,
    /// Fixed cost of one step of a collective algorithm (one hop of a ring), seconds.
    pub collective_latency_s: f64,
    /// How the chips are linked, for reports.
    pub interconnect: String,
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
            cores_per_chip: 2,
            chip_bytes_per_s: 205.0 * GIB as f64,
            link_bytes_per_s: 96.0 * GIB as f64,
            collective_latency_s: 2e-6,
            interconnect: "NeuronLink-v2 ring of up to 12 chips (inf2.48xlarge)".into(),
            notes: vec![
                "documented: 32 GiB HBM and 820 GiB/s per chip, 2 NeuronCore-v2 per chip, 190 TFLOPS BF16 per chip; the runtime reserves 96 MiB per core (AWS Neuron documentation; docs/architecture.md §12)".into(),
                "derived: per core 16 GiB - 96 MiB HBM, 410 GiB/s, 95 TFLOPS".into(),
                "assumption: host<->device 12 GiB/s each way and 10 us per transfer (PCIe figures are not published); 50 us per execute".into(),
                "documented: NeuronLink-v2, 192 GiB/s per chip on inf2.24xlarge/48xlarge, chips in a ring (12 on inf2.48xlarge)".into(),
                "assumption: a ring collective gets both directions of the ring, 96 GiB/s per core (192 GiB/s per chip over 2 links x 2 directions, 2 rings); cores of one chip exchange at half the core's HBM bandwidth (205 GiB/s: read and write); 2 us per ring step".into(),
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
                "documented: NeuronLink-v2, 384 GiB/s per chip on trn1.32xlarge (768 on trn1n), 16 chips in a 2D torus".into(),
                "assumption: a ring collective gets 4 rings at once (2 torus dimensions x 2 directions), 192 GiB/s per core; cores of one chip exchange at 205 GiB/s; 2 us per ring step".into(),
            ],
            link_bytes_per_s: 192.0 * GIB as f64,
            interconnect: "NeuronLink-v2 2D torus of 16 chips (trn1.32xlarge)".into(),
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
            cores_per_chip: 4,
            chip_bytes_per_s: 2.9e12 / 8.0,
            link_bytes_per_s: 640e9,
            collective_latency_s: 2e-6,
            interconnect: "NeuronLink-v3 2D torus of 16 chips (trn2.48xlarge)".into(),
            notes: vec![
                "documented: 96 GiB HBM (4 x 24 GB banks) and 2.9 TB/s per chip, 8 NeuronCore-v3 exposed as 4 logical cores at LNC=2, 667 TFLOPS BF16 per chip (AWS Neuron documentation; docs/architecture.md §12)".into(),
                "derived: per logical core 24 GiB HBM less two 96 MiB reservations, 725 GB/s, 167 TFLOPS".into(),
                "assumption: host<->device 24 GiB/s each way and 10 us per transfer (not published); 50 us per execute".into(),
                "documented: NeuronLink-v3, 1.28 TB/s per chip, 16 chips in a 2D torus on trn2.48xlarge".into(),
                "assumption: a ring collective gets 4 rings at once, 640 GB/s per logical core (1.28 TB/s over 4 links x 2 directions = 160 GB/s per ring); logical cores of one chip exchange at half their HBM bandwidth (362 GB/s); 2 us per ring step".into(),
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
            ("chip_bytes_per_s", self.chip_bytes_per_s),
            ("link_bytes_per_s", self.link_bytes_per_s),
        ];
        if self.cores_per_chip == 0 {
            return Err(Error::invalid_input(
                format!("device profile '{what}'"),
                "cores_per_chip must be at least 1",
            ));
        }
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
            ("collective_latency_s", self.collective_latency_s),
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

    /// A collective of `kind` over the cores `group` (this core putting in `bytes_in`):
    /// the bytes this core sends and the modelled seconds, by a ring algorithm over the
    /// group — all-reduce 2(G-1) steps of S/G, all-gather G-1 steps of S, reduce-scatter
    /// and all-to-all G-1 steps of S/G, a permute one step of S to each target (its group
    /// is the sender and its targets; a core that sends nothing pays nothing), a broadcast G-1
    /// pipelined steps and S once — each step paying the latency, at the chip's bandwidth
    /// when the whole group is on one chip and NeuronLink's otherwise.
    pub fn collective_cost(
        &self,
        kind: CollectiveKind,
        group: &[usize],
        bytes_in: u64,
    ) -> (u64, f64) {
        let g = group.len() as u64;
        if g <= 1 {
            return (0, 0.0);
        }
        let chip = |c: &usize| c / self.cores_per_chip.max(1);
        let one_chip = group.iter().all(|c| chip(c) == chip(&group[0]));
        let bw = if one_chip {
            self.chip_bytes_per_s
        } else {
            self.link_bytes_per_s.min(self.chip_bytes_per_s)
        };
        let (steps, sent) = match kind {
            CollectiveKind::AllReduce => (2 * (g - 1), 2 * (g - 1) * bytes_in / g),
            CollectiveKind::AllGather => (g - 1, (g - 1) * bytes_in),
            CollectiveKind::ReduceScatter | CollectiveKind::AllToAll => {
                (g - 1, (g - 1) * bytes_in / g)
            }
            // the group is the sender and its targets, sent to at once
            CollectiveKind::CollectivePermute => (1, (g - 1) * bytes_in),
            CollectiveKind::CollectiveBroadcast => (g - 1, bytes_in),
        };
        (
            sent,
            steps as f64 * self.collective_latency_s + sent as f64 / bw,
        )
    }

    /// Modelled seconds of an execute doing `flops` operations over `bytes` of memory.
    pub fn execute_seconds(&self, flops: u64, bytes: u64) -> f64 {
        self.execute_overhead_s
            + (flops as f64 / self.peak_flops).max(bytes as f64 / self.hbm_bytes_per_s)
    }
}
