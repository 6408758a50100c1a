//! A model as users hand it over: an HLO module (a file, or a bundle directory) parsed and
//! planned once, with whatever else the directory holds for deployment.
//!
//! A bundle directory holds `model.hlo` (the semantics: parameters, outputs, alias map) and
//! optionally `model.neff` (what `neuronx-cc` compiled from it, for real hardware),
//! `bindings.json` (explicit NEFF I/O names, read by the driver) and `arg{P}.npy` (a default
//! value for parameter P). Every backend loads from a [`Bundle`], so the model is parsed once
//! per process however many models are loaded from it.

use crate::Program;
use statetensor_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The HLO file a bundle directory holds.
pub const BUNDLE_HLO: &str = "model.hlo";
/// The compiled NEFF a bundle directory may hold.
pub const BUNDLE_NEFF: &str = "model.neff";

/// A parsed model and its deployment files.
#[derive(Debug, Clone)]
pub struct Bundle {
    program: Arc<Program>,
    /// The HLO text (what the libnrt emulator loads in place of a NEFF).
    text: Arc<str>,
    /// Where the model came from, for messages (a path, or a name for in-memory text).
    source: String,
    /// The bundle directory, when the model was given as one.
    dir: Option<PathBuf>,
}

impl Bundle {
    /// Opens an HLO text file, or a bundle directory holding `model.hlo`.
    pub fn open(path: &Path) -> Result<Bundle> {
        let (hlo, dir) = if path.is_dir() {
            let hlo = path.join(BUNDLE_HLO);
            if !hlo.is_file() {
                return Err(Error::invalid_input(
                    "open model",
                    format!(
                        "directory '{}' has no {BUNDLE_HLO} (expected an HLO text file or a directory holding one)",
                        path.display()
                    ),
                ));
            }
            (hlo, Some(path.to_path_buf()))
        } else if path.exists() {
            (path.to_path_buf(), None)
        } else {
            return Err(Error::invalid_input(
                "open model",
                format!(
                    "'{}' does not exist (expected an HLO text file or a model directory)",
                    path.display()
                ),
            ));
        };
        let source = hlo.display().to_string();
        let bytes = std::fs::read(&hlo).map_err(|e| Error::io("read model", &source, e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::invalid_input(
                "read model",
                format!("'{source}' is not UTF-8 text (expected HLO text)"),
            )
        })?;
        let mut bundle = Bundle::from_text(&text, &source)?;
        bundle.dir = dir;
        Ok(bundle)
    }

    /// A model from HLO text in memory; `source` names it in messages.
    pub fn from_text(text: &str, source: &str) -> Result<Bundle> {
        Ok(Bundle {
            program: Arc::new(Program::parse(text, source)?),
            text: Arc::from(text),
            source: source.to_string(),
            dir: None,
        })
    }

    /// The parsed, planned module (shared by every model loaded from this bundle).
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// The HLO text.
    pub fn text(&self) -> &str {
        &self.text
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

    /// `arg{P}.npy`, the default value of parameter `p`, when the bundle has one.
    pub fn default_value(&self, p: usize) -> Option<PathBuf> {
        self.file(&format!("arg{p}.npy"))
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
