//! Files written whole or not at all: under a temporary name, then renamed into place, so a
//! failure never leaves a half-written file under the final name (the CLI's outputs and
//! reports, the Python package's snapshots).

use crate::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `path` via a temporary file and a rename, so a failure never leaves a
/// half-written file under the final name.
pub fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let what = path.display().to_string();
    let tmp = path.with_extension("tmp");
    let f = std::fs::File::create(&tmp)
        .map_err(|e| Error::io("create", tmp.display().to_string(), e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let r = body(&mut w).and_then(|_| w.flush().map_err(|e| Error::io("write", &what, e)));
    drop(w);
    match r {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", &what, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes `data` to `path` atomically.
pub fn write_file_atomically(path: &Path, data: &[u8]) -> Result<()> {
    write_atomically(path, |w| {
        w.write_all(data)
            .map_err(|e| Error::io("write", path.display().to_string(), e))
    })
}
