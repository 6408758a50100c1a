//! The values a run gives its model: `--input` (the same every step), `--feed` (one value
//! per step, read step by step), `--state` (initial state), and the bundle's `arg{P}.npy`
//! defaults. Every flag is checked against the model before anything is allocated.

use crate::model_args::{split_assignment, ModelArgs};
use statetensor_core::{
    resolve_param, snapshot, Error, HostTensor, PreparedInputs, Result, Signature, StateInit,
    StatefulModel, TensorSpec,
};
use statetensor_hlo::{npy, Bundle};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

type NpyReader = npy::FileReader;

/// Opens an npy file and checks it holds `spec`'s dtype, with dims `check_dims` accepts
/// (it says what was expected otherwise); returns the reader positioned at the data, and
/// the file's dims.
fn open_npy(
    flag: &str,
    p: usize,
    spec: &TensorSpec,
    file: &Path,
    check_dims: impl Fn(&[usize]) -> Option<String>,
) -> Result<(NpyReader, Vec<usize>)> {
    let what = file.display().to_string();
    let (r, h) = npy::open(file, &format!("{flag} {}: open", spec.name))?;
    let problem = if !h.reads_as(spec.dtype) {
        Some(format!("{} values", spec.dtype))
    } else {
        check_dims(&h.dims)
    };
    if let Some(expected) = problem {
        return Err(Error::invalid_input(
            flag,
            format!(
                "parameter {p} ({}) is {}; '{what}' holds {}{:?} ('{}'), expected {expected}",
                spec.name,
                spec.type_string(),
                h.dtype,
                h.dims,
                h.descr
            ),
        ));
    }
    Ok((r, h.dims))
}

/// The value of parameter `p` (`spec`) in npy file `file`, which must hold exactly its
/// dtype and shape (`flag` names where it was given).
pub(crate) fn read_npy_value(
    flag: &str,
    p: usize,
    spec: &TensorSpec,
    file: &Path,
) -> Result<HostTensor> {
    let exact = |dims: &[usize]| {
        (dims != spec.shape.dims()).then(|| format!("shape {:?}", spec.shape.dims()))
    };
    let (mut r, _) = open_npy(flag, p, spec, file, exact)?;
    npy::read_host_value(&mut r, spec, &file.display().to_string())
}

/// A parameter fed one value per step from an npy file.
struct Feed {
    /// Its position among the model's inputs.
    slot: usize,
    spec: TensorSpec,
    file: String,
    reader: NpyReader,
    /// Where the first value starts.
    data_start: u64,
    /// Values the file holds.
    count: usize,
}

/// The inputs of every step of a run.
pub(crate) struct StepInputs {
    inputs: Vec<HostTensor>,
    feeds: Vec<Feed>,
    /// The same-every-step inputs converted once, when nothing is fed.
    prepared: Option<PreparedInputs>,
    next: usize,
}

impl StepInputs {
    /// The same `inputs` every step.
    pub fn fixed(model: &dyn StatefulModel, inputs: Vec<HostTensor>) -> Result<StepInputs> {
        Ok(StepInputs {
            prepared: Some(model.prepare_inputs(&inputs)?),
            inputs,
            feeds: Vec::new(),
            next: 0,
        })
    }

    /// Bytes fed per step.
    pub fn fed_bytes_per_step(&self) -> u64 {
        self.feeds.iter().map(|f| f.spec.size_bytes() as u64).sum()
    }

    /// Runs the next step on `set`.
    pub fn execute_next(
        &mut self,
        model: &dyn StatefulModel,
        set: &str,
    ) -> Result<Vec<HostTensor>> {
        let step = self.next;
        self.next += 1;
        if let Some(p) = &self.prepared {
            return model.execute_prepared(set, p);
        }
        for f in &mut self.feeds {
            if step >= f.count {
                return Err(Error::invalid_input(
                    "--feed",
                    format!(
                        "'{}' holds {} values of {}; step {} needs one more",
                        f.file,
                        f.count,
                        f.spec.name,
                        step + 1
                    ),
                ));
            }
            self.inputs[f.slot] = npy::read_host_value(&mut f.reader, &f.spec, &f.file)?;
        }
        model.execute(set, &self.inputs)
    }

    /// Starts again from the first fed value (a second pass over the same steps).
    pub fn rewind(&mut self) -> Result<()> {
        self.next = 0;
        for f in &mut self.feeds {
            f.reader
                .seek(SeekFrom::Start(f.data_start))
                .map_err(|e| Error::io("--feed: rewind", &f.file, e))?;
        }
        Ok(())
    }
}

/// A value a flag gives a parameter.
#[derive(Clone, PartialEq)]
pub(crate) enum Given {
    Input(PathBuf),
    Feed(PathBuf),
    State(PathBuf),
}

/// The `--input`, `--feed` and `--state` flags of `m` by parameter, each checked against
/// the parameter's role in `sig` (a state takes `--state`, a weight `--weight`, anything
/// else `--input` or `--feed`) and given at most once — before anything is allocated.
pub(crate) fn given_values(sig: &Signature, m: &ModelArgs) -> Result<Vec<Option<Given>>> {
    // values given on the command line, checked before anything is allocated
    if !m.state_axes.is_empty() && m.cores.is_none() {
        return Err(Error::invalid_input(
            "--state-axis",
            "shards a state across cores; it needs --cores N",
        ));
    }
    let mut given: Vec<Option<Given>> = vec![None; sig.params.len()];
    for (flag, list) in [
        ("--input", &m.inputs),
        ("--feed", &m.feeds),
        ("--state", &m.states),
    ] {
        for v in list.iter() {
            let (p, file) = split_assignment(flag, v, "FILE.npy")?;
            let p = resolve_param(flag, p, &sig.params)?;
            let want_state = flag == "--state";
            if sig.weights.contains(&p) {
                return Err(Error::invalid_input(
                    flag,
                    format!(
                        "parameter {p} ({}) is a resident weight; give its value with --weight",
                        sig.params[p].name
                    ),
                ));
            }
            if sig.aliases.is_state(p) != want_state {
                let (is, use_) = if want_state {
                    ("not a state", "--input or --feed")
                } else {
                    ("a state", "--state")
                };
                return Err(Error::invalid_input(
                    flag,
                    format!(
                        "parameter {p} ({}) is {is} parameter; use {use_}",
                        sig.params[p].name
                    ),
                ));
            }
            let file = PathBuf::from(file);
            let value = match flag {
                "--input" => Given::Input(file),
                "--feed" => Given::Feed(file),
                _ => Given::State(file),
            };
            if given[p].replace(value).is_some() {
                return Err(Error::invalid_input(
                    flag,
                    format!("parameter {p} ({}) is given twice", sig.params[p].name),
                ));
            }
        }
    }
    Ok(given)
}

/// Checks the value flags of `m` against `model`, loads the inputs (from the flags or the
/// bundle's `arg{P}.npy`), opens the feeds (each holding at least `steps` values), creates
/// state set `set` and streams the initial state into it. Returns the step inputs and the
/// states that start at zeros.
pub(crate) fn prepare(
    model: &dyn StatefulModel,
    bundle: &Bundle,
    m: &ModelArgs,
    steps: u64,
    set: &str,
) -> Result<(StepInputs, Vec<String>)> {
    let sig = model.signature().clone();
    let given = given_values(&sig, m)?;
    let mut inputs = Vec::new();
    let mut feeds = Vec::new();
    for (slot, p) in sig.input_params().into_iter().enumerate() {
        let spec = &sig.params[p];
        match given[p].clone() {
            Some(Given::Feed(file)) => {
                let what = file.display().to_string();
                let per_step = |dims: &[usize]| match dims.split_first() {
                    Some((&n, rest)) if rest == spec.shape.dims() && n as u64 >= steps => None,
                    _ => Some(format!(
                        "shape [N, {}] with N >= {steps} (one value per step)",
                        spec.shape
                            .dims()
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                let (mut reader, dims) = open_npy("--feed", p, spec, &file, per_step)?;
                let data_start = reader
                    .stream_position()
                    .map_err(|e| Error::io("--feed: open", &what, e))?;
                // checked above: the leading axis is the value count
                let count = dims[0];
                inputs.push(HostTensor::zeros(spec));
                feeds.push(Feed {
                    slot,
                    spec: spec.clone(),
                    file: what,
                    reader,
                    data_start,
                    count,
                });
            }
            Some(Given::Input(file)) => inputs.push(read_npy_value("--input", p, spec, &file)?),
            _ => {
                let file = bundle.default_value(p).ok_or_else(|| {
                    Error::invalid_input(
                        "run",
                        format!(
                            "parameter {p} ({} {}) needs a value: pass --input {}=FILE.npy (or --feed, one value per step; or --weight to keep it resident)",
                            spec.name,
                            spec.type_string(),
                            spec.name
                        ),
                    )
                })?;
                inputs.push(read_npy_value("--input", p, spec, &file)?);
            }
        }
    }
    model.create_state_set(set, StateInit::Zeros)?;
    let mut zeros = Vec::new();
    for p in sig.state_params() {
        let spec = &sig.params[p];
        let file = match given[p].clone() {
            Some(Given::State(f)) => Some(f),
            _ => bundle.default_value(p),
        };
        match file {
            Some(file) => {
                let exact = |dims: &[usize]| {
                    (dims != spec.shape.dims()).then(|| format!("shape {:?}", spec.shape.dims()))
                };
                let (mut r, _) = open_npy("--state", p, spec, &file, exact)?;
                // int4: one value per byte in the file, packed in the state
                snapshot::read_state_values(model, set, spec, &mut r, true)?;
            }
            None => zeros.push(spec.name.clone()),
        }
    }
    let prepared = if feeds.is_empty() {
        // the same values every step: converted once
        Some(model.prepare_inputs(&inputs)?)
    } else {
        model.signature().check_inputs(&inputs)?;
        None
    };
    Ok((
        StepInputs {
            inputs,
            feeds,
            prepared,
            next: 0,
        },
        zeros,
    ))
}
