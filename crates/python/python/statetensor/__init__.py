"""statetensor: develop, test and measure state tensors for AWS Neuron without a Neuron
machine.

- :func:`load` a model (HLO text, an HloModuleProto, a bundle) on the simulator or libnrt;
- :func:`statetensor.jax.trace` a JAX step with donated state;
- :func:`statetensor.torch.trace` a PyTorch module, as ``torch_neuronx.trace`` would.

With ``load(..., cores=N)`` an SPMD (tensor-parallel) model runs on N cores as a
:class:`ShardedModel`. Each returns a model whose state tensors stay on the device across calls, and
whose :meth:`Model.report` tells what crossed host↔device and what that would have been
without state tensors.
"""

from . import errors
from ._model import DEFAULT_STATE_SET, Model, Output, Param, load
from ._native import __version__
from ._sharded import ShardedModel
from .errors import (AliasError, BackendUnavailable, BusyError, DeviceIOError, Error,
                     InvalidInputError, InvalidModelError, NotFoundError, OutOfDeviceMemory,
                     ParseError, PoisonedError, RuntimeFailure, UnsupportedError)

__all__ = [
    "load", "Model", "ShardedModel", "Param", "Output", "DEFAULT_STATE_SET", "errors", "Error", "ParseError",
    "InvalidModelError", "UnsupportedError", "AliasError", "InvalidInputError",
    "NotFoundError", "PoisonedError", "OutOfDeviceMemory", "BackendUnavailable",
    "RuntimeFailure", "DeviceIOError", "BusyError", "__version__",
]
