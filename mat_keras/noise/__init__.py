"""Weight noise models: how a memristor crossbar perturbs the weights it stores.

A noise model maps a clean weight tensor `w` to a perturbation `delta` of the
same shape; the perturbed weights are `w + delta`. The wrapper
(`mat_keras.NoisyWeights`), the sweeps and the CLIs resolve models with
`get`, from an instance, a number (a Gaussian sd), a string alias or a Keras
config dict, as Keras's `quantizers` and larq resolve theirs.

Modules: `base` (`NoiseModel`, `Configurable`), `registry` (the one alias
registry: `register`, `get`, `serialize`, `deserialize`, `aliases`),
`gaussian` (`Gaussian`, `Multiplicative`), `quantized` (`Quantized`,
`quantile_op`).

The device models (`DeviceModel`, `PCM`, `RRAM`, `MeasuredDevice`) and their
components live in `mat_keras.devices`, which builds on this package; they
are reachable here too (`mat_keras.noise.PCM`), loaded on first use, so
neither package imports the other at load time.

Example:

>>> import mat_keras as mat
>>> mat.noise.get(0.2)
Gaussian(sd=0.2, relative_to='range')
>>> mat.noise.get("pcm")
PCM(...)
"""

import importlib

from mat_keras.noise.base import Configurable, NoiseModel, check_sd
from mat_keras.noise.gaussian import Gaussian, Multiplicative
from mat_keras.noise.quantized import Quantized, quantile_op
from mat_keras.noise.registry import COMPONENT, NOISE, aliases, deserialize, get, lookup, register, serialize

# Names of `mat_keras.devices` that are also reachable as `mat_keras.noise.<Name>`.
_DEVICE_NAMES = (
    "PCM",
    "RRAM",
    "DeviceModel",
    "Drift",
    "Measured",
    "MeasuredDevice",
    "ProgrammingNoise",
    "ReadNoise",
    "StuckDevices",
)

__all__ = [
    "COMPONENT",
    "NOISE",
    "Configurable",
    "Gaussian",
    "Multiplicative",
    "NoiseModel",
    "Quantized",
    "aliases",
    "check_sd",
    "deserialize",
    "get",
    "lookup",
    "quantile_op",
    "register",
    "serialize",
    *_DEVICE_NAMES,
]


def __getattr__(name):
    # PEP 562: the device names load `mat_keras.devices` when first asked for,
    # which imports this package's modules; an import here at load time would
    # be a cycle.
    if name in _DEVICE_NAMES:
        return getattr(importlib.import_module("mat_keras.devices"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_DEVICE_NAMES))
