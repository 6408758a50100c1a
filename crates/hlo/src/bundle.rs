//! A model as users hand it over: an HLO module (a file, or a bundle directory) parsed and
//! planned once, with whatever else the directory holds for deployment.
//!
//! A model file is HLO text or a serialized `HloModuleProto` (what torch-neuronx and JAX
//! hand `neuronx-cc`). A bundle directory holds `model.pb` or `model.hlo` (the semantics:
//! parameters, outputs, alias map; `model.pb` is preferred when both are there, since the
//! text printer elides large constants) and optionally `model.neff` (what `neuronx-cc`
//! compiled from it, for real hardware), `statetensor.json` (each parameter's role, name
//! and value file: [`Manifest`]), `bindings.json` (explicit NEFF I/O names, read by the
//! driver) and `arg{P}.npy` (a default value for parameter P). Every backend loads from a
//! [`Bundle`], so the model is parsed once per process however many models are loaded
//! from it.
//!
//! The alias map a model runs with is decided here, once: the caller's (`--alias`), else
//! the manifest's, else the HLO header's ([`Bundle::load_options`]).

use crate::{proto, with_alias_header, Manifest, Program};
use statetensor_core::{AliasMap, Error, LoadOptions, Result, TensorSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The HLO text file a bundle directory may hold.
pub const BUNDLE_HLO: &str = "model.hlo";
/// The serialized `HloModuleProto` a bundle directory may hold (preferred over the text).
pub const BUNDLE_PROTO: &str = "model.pb";
/// The compiled NEFF a bundle directory may hold.
pub const BUNDLE_NEFF: &str = "model.neff";

/// A parsed model and its deployment files.
#[derive(Debug, Clone)]
pub struct Bundle {
    program: Arc<Program>,
    /// The model as stored: HLO text or a serialized proto (what the libnrt emulator loads
    /// in place of a NEFF).
    bytes: Arc<[u8]>,
    /// Whether `bytes` are HLO text.
    is_text: bool,
    /// Where the model came from, for messages (a path, or a name for in-memory text).
    source: String,
    /// The bundle directory, when the model was given as one.
    dir: Option<PathBuf>,
    /// The directory's `statetensor.json`, checked against the model.
    manifest: Option<Manifest>,
}

impl Bundle {
    /// Opens an HLO text or `HloModuleProto` file, or a bundle directory holding
    /// `model.pb` or `model.hlo`.
    pub fn open(path: &Path) -> Result<Bundle> {
        let (file, dir) = if path.is_dir() {
            let file = [BUNDLE_PROTO, BUNDLE_HLO]
                .iter()
                .map(|f| path.join(f))
                .find(|f| f.is_file())
                .ok_or_else(|| {
                    Error::invalid_input(
                        "open model",
                        format!(
                            "directory '{}' has neither {BUNDLE_PROTO} nor {BUNDLE_HLO} (expected a model file or a directory holding one)",
                            path.display()
                        ),
                    )
                })?;
            (file, Some(path.to_path_buf()))
        } else if path.exists() {
            (path.to_path_buf(), None)
        } else {
            return Err(Error::invalid_input(
                "open model",
                format!(
                    "'{}' does not exist (expected an HLO text or HloModuleProto file, or a model directory)",
                    path.display()
                ),
            ));
        };
        let source = file.display().to_string();
        let bytes = std::fs::read(&file).map_err(|e| Error::io("read model", &source, e))?;
        let mut bundle = Bundle::from_bytes(bytes, &source)?;
        if let Some(d) = &dir {
            bundle.manifest = Manifest::read(d, bundle.program.params())?;
        }
        bundle.dir = dir;
        Ok(bundle)
    }

    /// A model from HLO text in memory; `source` names it in messages.
    pub fn from_text(text: &str, source: &str) -> Result<Bundle> {
        Ok(Bundle {
            program: Arc::new(Program::parse(text, source)?),
            bytes: Arc::from(text.as_bytes()),
            is_text: true,
            source: source.to_string(),
            dir: None,
            manifest: None,
        })
    }

    /// A model from HLO text or a serialized `HloModuleProto` in memory.
    pub fn from_bytes(bytes: Vec<u8>, source: &str) -> Result<Bundle> {
        let (module, is_text) = crate::program::parse_model(&bytes, source)?;
        Ok(Bundle {
            program: Arc::new(Program::from_module(&module)?),
            is_text,
            bytes: Arc::from(bytes),
            source: source.to_string(),
            dir: None,
            manifest: None,
        })
    }

    /// The parsed, planned module (shared by every model loaded from this bundle).
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// The model as stored (HLO text or a serialized `HloModuleProto`).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the model is stored as HLO text (else as a serialized `HloModuleProto`).
    pub fn is_text(&self) -> bool {
        self.is_text
    }

    /// The model as stored, with its alias map replaced by `aliases` — what a compiler
    /// given that map would compile, and what the libnrt emulator loads.
    pub fn with_aliases(&self, aliases: &AliasMap) -> Result<Vec<u8>> {
        if aliases == self.program.header_aliases() {
            return Ok(self.bytes.to_vec());
        }
        if self.is_text {
            let text = std::str::from_utf8(&self.bytes).map_err(|_| {
                Error::runtime("write the alias map", "internal: text is not UTF-8")
            })?;
            Ok(with_alias_header(text, &self.program, aliases)?.into_bytes())
        } else {
            proto::with_proto_aliases(&self.bytes, aliases, &self.program, &self.source)
        }
    }

    /// Where the model came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The bundle directory, when the model was given as one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A file in the bundle directory, when the model was given as one and the file exists.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(name))
            .filter(|f| f.is_file())
    }

    /// The manifest, when the bundle directory holds one.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The parameters under the names callers use: the manifest's where it names them.
    pub fn params(&self) -> Vec<TensorSpec> {
        let mut params = self.program.params().to_vec();
        if let Some(m) = &self.manifest {
            for (spec, entry) in params.iter_mut().zip(&m.params) {
                if let Some(n) = &entry.name {
                    spec.name = n.clone();
                }
            }
        }
        params
    }

    /// The alias map the model was compiled with: the manifest's (torch-neuronx keeps the
    /// map beside the HLO), else the HLO header's. A `model.neff` in the bundle aliases
    /// exactly these pairs.
    pub fn compiled_aliases(&self) -> &AliasMap {
        match &self.manifest {
            Some(m) => &m.aliases,
            None => self.program.header_aliases(),
        }
    }

    /// How the model loads: the caller's `overrides` over the manifest over the HLO. The
    /// alias map is the caller's, else the manifest's, else the header's; names and weights
    /// are the manifest's with the caller's on top (a weight the caller gives `None` is
    /// shared rather than uploaded). The manifest's weights are read from their files when
    /// `read_weights` (a load needs them; listing roles does not).
    pub fn load_options(&self, overrides: &LoadOptions, read_weights: bool) -> Result<LoadOptions> {
        let mut opts = match &self.manifest {
            Some(m) => {
                let params = self.program.params();
                let mut o = m.load_options(params, false)?;
                for (&p, value) in o.weights.iter_mut() {
                    if read_weights && !overrides.weights.contains_key(&p) {
                        if let Some(file) = &m.params[p].value {
                            *value = Some(crate::manifest::read_value(file, p, &params[p])?);
                        }
                    }
                }
                o
            }
            None => LoadOptions::default(),
        };
        if overrides.aliases.is_some() {
            opts.aliases = overrides.aliases.clone();
        }
        opts.names
            .extend(overrides.names.iter().map(|(&p, n)| (p, n.clone())));
        opts.weights
            .extend(overrides.weights.iter().map(|(&p, v)| (p, v.clone())));
        Ok(opts)
    }

    /// The default value of parameter `p`: the manifest's value file for an input or a
    /// state, else `arg{P}.npy`, when the bundle has one.
    pub fn default_value(&self, p: usize) -> Option<PathBuf> {
        let from_manifest = self
            .manifest
            .as_ref()
            .and_then(|m| m.params.get(p))
            .and_then(|e| e.value.clone());
        from_manifest.or_else(|| self.file(&format!("arg{p}.npy")))
    }

    /// The compiled NEFF's bytes, when the bundle holds `model.neff`.
    pub fn neff(&self) -> Result<Option<Vec<u8>>> {
        match self.file(BUNDLE_NEFF) {
            Some(p) => std::fs::read(&p)
                .map(Some)
                .map_err(|e| Error::io("read NEFF", p.display().to_string(), e)),
            None => Ok(None),
        }
    }
}
