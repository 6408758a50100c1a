"""statetensor's exceptions: one class per kind of failure the engine reports.

Every exception derives from :class:`Error` and from the built-in exception a Python caller
would reach for (``ValueError`` for bad input, ``MemoryError`` for device memory, ...), so
``except ValueError`` works as well as ``except statetensor.Error``. ``kind`` names the
engine's error kind (the Rust ``ErrorKind``), the same for every backend.
"""

from __future__ import annotations


class Error(Exception):
    """Any failure statetensor reports."""

    kind: str = "Runtime"


class ParseError(Error, ValueError):
    """The model file does not parse (HLO text or HloModuleProto)."""

    kind = "Parse"


class InvalidModelError(Error, ValueError):
    """The model parses but is malformed (ill-typed, wrong operand count)."""

    kind = "InvalidModel"


class UnsupportedError(Error, NotImplementedError):
    """An op or feature statetensor does not implement."""

    kind = "Unsupported"


class AliasError(Error, ValueError):
    """An alias map that breaks the alias contract (a state's output of another shape, ...)."""

    kind = "Alias"


class InvalidInputError(Error, ValueError):
    """Bad input from the caller: a wrong shape, dtype, name, array layout or file."""

    kind = "InvalidInput"


class NotFoundError(Error, LookupError):
    """A named thing (state set, parameter, state) that does not exist."""

    kind = "NotFound"


class PoisonedError(Error, RuntimeError):
    """A state set left poisoned by a failed step; reset or restore it."""

    kind = "Poisoned"


class OutOfDeviceMemory(Error, MemoryError):
    """Device memory (HBM) exhausted. ``requested``, ``free`` and ``capacity`` are bytes."""

    kind = "OutOfDeviceMemory"

    def __init__(self, message: str, requested: int = 0, free: int = 0, capacity: int = 0):
        super().__init__(message)
        self.requested = requested
        self.free = free
        self.capacity = capacity


class BackendUnavailable(Error, RuntimeError):
    """The backend cannot be used here (libnrt not found, a symbol missing)."""

    kind = "BackendUnavailable"


class RuntimeFailure(Error, RuntimeError):
    """A failure reported by the runtime or raised while executing."""

    kind = "Runtime"


class DeviceIOError(Error, OSError):
    """An operating-system I/O failure (a snapshot file that cannot be written, ...)."""

    kind = "Io"


class BusyError(Error, RuntimeError):
    """A resource used concurrently where exclusive use is required."""

    kind = "Busy"


_BY_KIND = {
    cls.kind: cls
    for cls in (
        ParseError, InvalidModelError, UnsupportedError, AliasError, InvalidInputError,
        NotFoundError, PoisonedError, OutOfDeviceMemory, BackendUnavailable, RuntimeFailure,
        DeviceIOError, BusyError,
    )
}


def _from_native(kind: str, message: str, extra: dict) -> Error:
    """The exception for an engine error (called by the native module)."""
    cls = _BY_KIND.get(kind, RuntimeFailure)
    if cls is OutOfDeviceMemory:
        return cls(message, **extra)
    return cls(message)
