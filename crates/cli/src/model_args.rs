//! What `run` and `bench` share: naming the model, its backend and device, its alias map
//! and its values on the command line, and opening it through the one seam.

use crate::values::read_npy_value;
use clap::Args;
use statetensor_core::{
    resolve_param, AliasMap, Error, LoadOptions, Result, StatefulModel, TensorSpec,
};
use statetensor_open::{Backend, Bundle, Device, DeviceProfile};
use std::path::PathBuf;

/// What `run` and `bench` share: the model, where it runs, and its values.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// An HLO text file, or a directory holding model.hlo (and arg{P}.npy default values).
    pub model: PathBuf,
    /// Backend: the simulator, or libnrt (real hardware or the emulator).
    #[arg(long, default_value = "sim", value_parser = parse_backend())]
    pub backend: Backend,
    /// Device profile: inf2, trn1, trn2, or a JSON profile file.
    #[arg(long, default_value = "inf2")]
    pub device: String,
    /// State parameter P is updated from output O (replaces the module's alias map).
    #[arg(long = "alias", value_name = "P=O[,P=O...]")]
    pub aliases: Vec<String>,
    /// Value of a non-state parameter, the same every step.
    #[arg(long = "input", value_name = "P=FILE.npy")]
    pub inputs: Vec<String>,
    /// Initial value of a state parameter (default zeros).
    #[arg(long = "state", value_name = "P=FILE.npy")]
    pub states: Vec<String>,
    /// Values of a non-state parameter, one per step along a new leading axis (step k uses
    /// slice k; read step by step, never loaded whole).
    #[arg(long = "feed", value_name = "P=FILE.npy")]
    pub feeds: Vec<String>,
    /// Value of a resident weight: uploaded once at load, held on the device with the
    /// state, never moved per step.
    #[arg(long = "weight", value_name = "P=FILE.npy")]
    pub weights: Vec<String>,
    /// Run an SPMD module (collectives, replica-id/partition-id) on N simulated cores at
    /// once. A value file whose leading axis is N gives core k slice k; without that axis
    /// every core gets the same value.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub cores: Option<u64>,
    /// With --cores N: state P is sharded along AXIS — its --state file is the whole state
    /// (core k gets the k-th of N blocks along AXIS; a bundle's own value files stay per
    /// core) and --out writes it whole, gathered.
    #[arg(long = "state-axis", value_name = "P=AXIS")]
    pub state_axes: Vec<String>,
}

/// A model opened on the chosen backend.
pub(crate) struct Opened {
    pub bundle: Bundle,
    pub model: Box<dyn StatefulModel>,
    /// The device as the report names it.
    pub device: String,
    /// The cost model for the "without state tensors" column (and the simulator's clock).
    pub profile: DeviceProfile,
}

impl ModelArgs {
    /// Opens the model these arguments name on their backend and device.
    pub(crate) fn open(&self) -> Result<Opened> {
        // the device first: a bad --device is reported before the model is read
        DeviceProfile::resolve(&self.device)?;
        self.open_bundle(Bundle::open(&self.model)?)
    }

    /// Loads `bundle` on these arguments' backend and device, with their alias map and
    /// weights.
    pub(crate) fn open_bundle(&self, bundle: Bundle) -> Result<Opened> {
        let profile = DeviceProfile::resolve(&self.device)?;
        let opts = self.load_options(&bundle)?;
        let device = Device::open(self.backend, &profile)?;
        let model = device.load(&bundle, &opts)?;
        Ok(Opened {
            bundle,
            model,
            device: device.describe(),
            profile,
        })
    }
}

impl ModelArgs {
    /// The load options these flags give: `--alias` and `--weight` (each value read and
    /// checked against its parameter before anything is loaded). They override the
    /// bundle's manifest when the model is loaded.
    pub(crate) fn load_options(&self, bundle: &Bundle) -> Result<LoadOptions> {
        let params = &bundle.params();
        let mut opts = LoadOptions::with_aliases(parse_aliases(&self.aliases, params)?);
        for v in &self.weights {
            let (p, file) = split_assignment("--weight", v, "FILE.npy")?;
            let p = resolve_param("--weight", p, params)?;
            let value = read_npy_value("--weight", p, &params[p], std::path::Path::new(file))?;
            if opts.weights.insert(p, Some(value)).is_some() {
                return Err(Error::invalid_input(
                    "--weight",
                    format!("parameter {p} ({}) is given twice", params[p].name),
                ));
            }
        }
        Ok(opts)
    }
}

/// `--backend` values: the backends' names, listed in help and in errors.
pub(crate) fn parse_backend() -> impl clap::builder::TypedValueParser<Value = Backend> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Backend::ALL.map(|(name, _)| name))
        .try_map(|s| s.parse::<Backend>())
}

/// `P=VALUE` split at the first `=`.
pub fn split_assignment<'a>(flag: &str, s: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((p, v)) if !p.is_empty() && !v.is_empty() => Ok((p, v)),
        _ => Err(Error::invalid_input(
            flag,
            format!("'{s}' is not of the form P={what}"),
        )),
    }
}

/// `--alias P=O[,P=O...]` (repeatable) into an alias map.
pub fn parse_aliases(values: &[String], params: &[TensorSpec]) -> Result<Option<AliasMap>> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut map = AliasMap::new();
    for v in values {
        for pair in v.split(',').filter(|s| !s.trim().is_empty()) {
            let (p, o) = split_assignment("--alias", pair.trim(), "O")?;
            let p = resolve_param("--alias", p, params)?;
            let o: usize = o.parse().map_err(|_| {
                Error::invalid_input(
                    "--alias",
                    format!("output '{o}' in '{pair}' is not an output index"),
                )
            })?;
            map.insert(p, o)?;
        }
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use statetensor_core::DType;

    #[test]
    fn alias_flags() {
        let ps = vec![
            TensorSpec::new("x.1", DType::F32, vec![2]),
            TensorSpec::new("x.2", DType::F32, vec![2]),
            TensorSpec::new("cache.1", DType::F32, vec![2]),
        ];
        let m = parse_aliases(&["cache=1,0=0".into()], &ps)
            .unwrap()
            .unwrap();
        assert_eq!(m.output_for(2), Some(1));
        assert!(parse_aliases(&["cache:1".into()], &ps).is_err());
    }
}
