//! A progress line on stderr for long runs.

use std::io::IsTerminal;
use std::time::Instant;

/// A progress line on stderr for long runs (only when stderr is a terminal).
pub struct Progress {
    total: u64,
    done: u64,
    start: Instant,
    show: bool,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            show: std::io::stderr().is_terminal(),
        }
    }

    pub fn tick(&mut self, what: &str) {
        self.done += 1;
        if self.show && self.start.elapsed().as_secs_f64() > 1.0 {
            let w = 30 * self.done / self.total.max(1);
            eprint!(
                "\r{what} [{}{}] {}/{}",
                "=".repeat(w as usize),
                " ".repeat(30 - w as usize),
                self.done,
                self.total
            );
            if self.done == self.total {
                eprintln!();
            }
        }
    }
}
