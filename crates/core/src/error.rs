//! The one error type of statetensor, and its comparable kind.

use std::fmt;

/// `Result` with statetensor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is. Tests and the conformance suite compare kinds, never
/// message text; the CLI maps kinds to exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Model text that does not parse.
    Parse,
    /// A model that parses but is ill-typed or malformed (wrong operand count, shape mismatch).
    InvalidModel,
    /// An operation or feature statetensor does not implement (for example `custom-call`).
    Unsupported,
    /// An alias map that violates the alias contract.
    Alias,
    /// Bad caller input: a wrong shape, dtype, name, byte range or file content.
    InvalidInput,
    /// A state set poisoned by an earlier failed execute.
    Poisoned,
    /// Device memory exhausted.
    OutOfDeviceMemory,
    /// The backend cannot be used here (libnrt not found, a symbol missing).
    BackendUnavailable,
    /// A failure reported by the runtime or raised while executing.
    Runtime,
    /// An operating-system I/O failure.
    Io,
    /// A named thing (state set, parameter, model) that does not exist.
    NotFound,
    /// A resource used concurrently where exclusive use is required.
    Busy,
}

impl ErrorKind {
    /// The kind's name, as front ends outside Rust key their exceptions (the Python
    /// package's `statetensor.errors`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Parse => "Parse",
            ErrorKind::InvalidModel => "InvalidModel",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::Alias => "Alias",
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::Poisoned => "Poisoned",
            ErrorKind::OutOfDeviceMemory => "OutOfDeviceMemory",
            ErrorKind::BackendUnavailable => "BackendUnavailable",
            ErrorKind::Runtime => "Runtime",
            ErrorKind::Io => "Io",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Busy => "Busy",
        }
    }

    /// True when the failure is the caller's input (the CLI's exit code 2).
    pub fn is_user_error(self) -> bool {
        matches!(
            self,
            ErrorKind::Parse
                | ErrorKind::InvalidModel
                | ErrorKind::Unsupported
                | ErrorKind::Alias
                | ErrorKind::InvalidInput
                | ErrorKind::NotFound
        )
    }
}

/// Where in a text a parse error is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// File name, or `<text>` for in-memory text.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // a binary file (a serialized proto) has no lines
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// Every failure statetensor reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model text does not parse.
    #[error("parse hlo: {location}: {message}")]
    Parse {
        /// Where.
        location: Location,
        /// What was found and what was expected.
        message: String,
    },
    /// The model parses but is malformed.
    #[error("check hlo: {context}: {message}")]
    InvalidModel {
        /// Where: `line N: instruction %name` or a computation name.
        context: String,
        /// What is wrong, with expected and actual shapes.
        message: String,
    },
    /// A feature statetensor does not implement.
    #[error("{context}: unsupported: {what}")]
    Unsupported {
        /// Where.
        context: String,
        /// What is unsupported.
        what: String,
    },
    /// An alias map violating the alias contract.
    #[error("alias parameter {param} -> output {output}: {reason}")]
    Alias {
        /// The parameter side (number and name when known).
        param: String,
        /// The output side (index).
        output: String,
        /// Why the pair is rejected.
        reason: String,
    },
    /// Bad caller input.
    #[error("{op}: {message}")]
    InvalidInput {
        /// The operation that rejected it.
        op: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A state set poisoned by a failed execute.
    #[error("{op}: state set '{state_set}' is poisoned by the failed call '{failed_call}'; reset or restore it")]
    Poisoned {
        /// The rejected operation.
        op: String,
        /// The poisoned state set.
        state_set: String,
        /// The call that failed and poisoned it.
        failed_call: String,
    },
    /// Device memory exhausted.
    #[error("{op}: out of device memory: requested {requested} bytes, {free} free of {capacity}")]
    OutOfDeviceMemory {
        /// What was being allocated.
        op: String,
        /// Bytes requested.
        requested: u64,
        /// Bytes free at the time.
        free: u64,
        /// Device capacity in bytes.
        capacity: u64,
    },
    /// The backend cannot be used here.
    #[error("{what}: backend unavailable: {reason}")]
    BackendUnavailable {
        /// What was being opened.
        what: String,
        /// Why, including every path tried and how to override.
        reason: String,
    },
    /// A runtime failure (a C function's status, or an execution failure).
    #[error("{function}: {message}")]
    Runtime {
        /// The function or operation that failed.
        function: String,
        /// Raw status code when a C runtime reported one.
        status: Option<i64>,
        /// Details.
        message: String,
    },
    /// An I/O failure.
    #[error("{op} '{path}': {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A named thing that does not exist.
    #[error("{op}: no {what} named '{name}'{hint}")]
    NotFound {
        /// The operation.
        op: String,
        /// What kind of thing.
        what: String,
        /// The name asked for.
        name: String,
        /// What exists instead (starting with "; "), or empty.
        hint: String,
    },
    /// Concurrent use of an exclusive resource.
    #[error("{op}: '{resource}' is in use by another call")]
    Busy {
        /// The operation.
        op: String,
        /// The resource.
        resource: String,
    },
}

impl Error {
    /// The same error, its operation prefixed with `core {core}: ` — what a model run by
    /// several cores reports, so the failing core is named. The kind is unchanged.
    pub fn on_core(self, core: usize) -> Error {
        let tag = |s: String| format!("core {core}: {s}");
        match self {
            Error::InvalidModel { context, message } => Error::InvalidModel {
                context: tag(context),
                message,
            },
            Error::Unsupported { context, what } => Error::Unsupported {
                context: tag(context),
                what,
            },
            Error::InvalidInput { op, message } => Error::InvalidInput {
                op: tag(op),
                message,
            },
            Error::Poisoned {
                op,
                state_set,
                failed_call,
            } => Error::Poisoned {
                op: tag(op),
                state_set,
                failed_call,
            },
            Error::OutOfDeviceMemory {
                op,
                requested,
                free,
                capacity,
            } => Error::OutOfDeviceMemory {
                op: tag(op),
                requested,
                free,
                capacity,
            },
            Error::Runtime {
                function,
                status,
                message,
            } => Error::Runtime {
                function: tag(function),
                status,
                message,
            },
            Error::Io { op, path, source } => Error::Io {
                op: tag(op),
                path,
                source,
            },
            Error::NotFound {
                op,
                what,
                name,
                hint,
            } => Error::NotFound {
                op: tag(op),
                what,
                name,
                hint,
            },
            Error::Busy { op, resource } => Error::Busy {
                op: tag(op),
                resource,
            },
            other => other,
        }
    }

    /// The comparable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Parse { .. } => ErrorKind::Parse,
            Error::InvalidModel { .. } => ErrorKind::InvalidModel,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Alias { .. } => ErrorKind::Alias,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Poisoned { .. } => ErrorKind::Poisoned,
            Error::OutOfDeviceMemory { .. } => ErrorKind::OutOfDeviceMemory,
            Error::BackendUnavailable { .. } => ErrorKind::BackendUnavailable,
            Error::Runtime { .. } => ErrorKind::Runtime,
            Error::Io { .. } => ErrorKind::Io,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Busy { .. } => ErrorKind::Busy,
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(op: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidInput {
            op: op.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::InvalidModel`].
    pub fn invalid_model(context: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidModel {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Runtime`] without a status code.
    pub fn runtime(function: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Runtime {
            function: function.into(),
            status: None,
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(op: impl Into<String>, path: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            op: op.into(),
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_core_names_the_core_and_keeps_the_kind() {
        let oom = Error::OutOfDeviceMemory {
            op: "create state set 'a'".into(),
            requested: 10,
            free: 2,
            capacity: 8,
        }
        .on_core(3);
        assert_eq!(oom.kind(), ErrorKind::OutOfDeviceMemory);
        assert!(
            oom.to_string().starts_with("core 3: create state set 'a'"),
            "{oom}"
        );
        let bad = Error::invalid_input("execute", "wrong shape").on_core(1);
        assert_eq!(bad.kind(), ErrorKind::InvalidInput);
        assert_eq!(bad.to_string(), "core 1: execute: wrong shape");
        let rt = Error::runtime("execute", "stopped").on_core(0);
        assert_eq!(rt.kind(), ErrorKind::Runtime);
        assert!(rt.to_string().starts_with("core 0: execute"), "{rt}");
    }

    #[test]
    fn kinds_and_messages() {
        let e = Error::OutOfDeviceMemory {
            op: "allocate state 'k'".into(),
            requested: 10,
            free: 4,
            capacity: 16,
        };
        assert_eq!(e.kind(), ErrorKind::OutOfDeviceMemory);
        assert_eq!(
            e.to_string(),
            "allocate state 'k': out of device memory: requested 10 bytes, 4 free of 16"
        );
        let p = Error::Parse {
            location: Location {
                file: "m.hlo".into(),
                line: 3,
                column: 7,
            },
            message: "expected ')'".into(),
        };
        assert_eq!(p.to_string(), "parse hlo: m.hlo:3:7: expected ')'");
        assert!(p.kind().is_user_error());
        assert!(!ErrorKind::Runtime.is_user_error());
    }
}
