//! What the CLI writes to stdout, never panicking on a closed pipe (its files are written
//! whole or not at all by `statetensor_core::files`).

use statetensor_core::{Error, Result};

/// Writes to stdout; a closed pipe (`statetensor ... | head`) ends output quietly rather
/// than panicking as `println!` would.
pub fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("write", "stdout", e)),
    }
}
