"""Weight noise models: how a memristor crossbar perturbs the weights it stores.

A noise model maps a clean weight tensor `w` to a perturbation `delta` of the
same shape; the perturbed weights are `w + delta`. Models are small,
serialisable objects (`get_config` / `from_config`) that the wrapper
(`mat_keras.NoisyWeights`), the robustness sweep and the CLI resolve with
`mat_keras.noise.get`, from an instance, a number (a Gaussian sd), a string
alias or a Keras config dict, as larq resolves its quantisers.

All draws go through `keras.random` with the seed the caller passes: a
`keras.random.SeedGenerator` gives a fresh draw each call (also inside compiled
training), an integer gives the same draw every time.
"""

import keras
from keras import ops

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_non_negative

_ALIASES = {}


def register_noise(alias):
    """Class decorator: registers a noise model under a string alias.

    The class is also registered with Keras serialisation (package
    `mat_keras`), so configs that name it load without `custom_objects`.

    Args:
        alias: lower-case name that `get` resolves to the class.

    Returns:
        The decorator.

    Example:

    >>> @register_noise("uniform")
    ... class Uniform(NoiseModel):
    ...     ...
    """

    def decorator(cls):
        if alias in _ALIASES and _ALIASES[alias] is not cls:
            raise InvalidArgumentError(
                f"The noise alias '{alias}' is already registered for "
                f"{_ALIASES[alias].__name__}."
            )
        _ALIASES[alias] = cls
        return keras.saving.register_keras_serializable(package="mat_keras")(
            cls
        )

    return decorator


def aliases():
    """Returns the registered noise aliases, sorted."""
    return sorted(_ALIASES)


def check_sd(value, name="sd"):
    """Returns `value` as a float after checking it is finite and >= 0.

    Args:
        value: the number to check.
        name: the argument's name, for the error message.

    Returns:
        `float(value)`.

    Raises:
        InvalidArgumentError: `value` is negative, non-finite or not a number.
    """
    return check_non_negative(value, name)


def _dtype_of(weights):
    return keras.backend.standardize_dtype(weights.dtype)


class Configurable:
    """Plain settings that are their config: equality, hash and repr from it.

    The base of noise models and of a device model's components.
    """

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class NoiseModel(Configurable):
    """Base class of weight noise models.

    Subclasses implement `perturbation(weights, seed)` with `keras.ops` and
    `keras.random` only, so that they run on every backend and inside
    compiled functions, and `get_config()`.
    """

    def perturbation(self, weights, seed=None):
        """Returns the perturbation to add to `weights`.

        Args:
            weights: clean weight tensor; callers pass it under
                `stop_gradient`.
            seed: a `keras.random.SeedGenerator`, an integer or None.

        Returns:
            A tensor with the shape and dtype of `weights`.
        """
        raise NotImplementedError

    def __call__(self, weights, seed=None):
        """Returns `weights + perturbation` with a straight-through gradient.

        The gradient with respect to `weights` is the identity: the
        perturbation is computed from, and added under, `stop_gradient`.

        Example:

        >>> noise = Gaussian(0.1)
        >>> noisy = noise(keras.ops.ones((3, 3)), seed=0)
        """
        delta = self.perturbation(ops.stop_gradient(weights), seed)
        return weights + ops.stop_gradient(delta)

    # True when `perturbation` at level `sd` equals `sd` times the perturbation
    # at level 1 for the same draw: a sweep then compiles one function for all
    # its levels.
    linear_in_sd = False

    @property
    def sd(self):
        """The noise level in the model's own convention, or None."""
        return getattr(self, "_sd", None)

    def with_sd(self, sd):
        """Returns a copy of this model at noise level `sd`.

        The robustness sweep uses it to evaluate one model family at several
        levels. Models without a single noise level raise.
        """
        config = self.get_config()
        if "sd" not in config:
            raise InvalidArgumentError(
                f"{type(self).__name__} has no single noise level `sd` to set."
            )
        config["sd"] = sd
        return type(self).from_config(config)


_SCALES = ("range", "max_abs", "absolute")


@register_noise("gaussian")
class Gaussian(NoiseModel):
    """Additive Gaussian weight noise, fresh on every draw.

    With `relative_to="range"` (the seed's convention) the standard deviation
    is `sd * 2 * max|w|`, one scale per weight tensor, so `sd=0.1` means 10 %
    of the tensor's weight range. `"max_abs"` uses `sd * max|w|` and
    `"absolute"` uses `sd` itself.

    Args:
        sd: noise level, a finite number >= 0.
        relative_to: `"range"`, `"max_abs"` or `"absolute"`.

    Example:

    >>> noise = mat_keras.noise.Gaussian(0.1)
    >>> delta = noise.perturbation(keras.ops.ones((4, 4)), seed=0)
    >>> # delta has standard deviation 0.1 * 2 * 1 = 0.2
    """

    linear_in_sd = True

    def __init__(self, sd=0.1, relative_to="range"):
        self._sd = check_sd(sd)
        if relative_to not in _SCALES:
            raise InvalidArgumentError(
                f"relative_to must be one of {', '.join(_SCALES)}; "
                f"got {relative_to!r}."
            )
        self.relative_to = relative_to

    def scale(self, weights):
        """Returns the noise standard deviation for `weights` (a scalar)."""
        if self.relative_to == "absolute":
            return ops.convert_to_tensor(self._sd, _dtype_of(weights))
        max_abs = ops.max(ops.abs(weights))
        factor = 2.0 * self._sd if self.relative_to == "range" else self._sd
        return max_abs * factor

    def perturbation(self, weights, seed=None):
        unit = keras.random.normal(
            ops.shape(weights), dtype=_dtype_of(weights), seed=seed
        )
        return unit * self.scale(weights)

    def get_config(self):
        return {"sd": self._sd, "relative_to": self.relative_to}


@register_noise("multiplicative")
class Multiplicative(NoiseModel):
    """Gaussian noise proportional to each weight's magnitude.

    `delta = sd * |w| * N(0, 1)`: a device whose programming error grows with
    its conductance. A zero weight stays zero.

    Args:
        sd: relative noise level, a finite number >= 0.

    Example:

    >>> noise = mat_keras.noise.Multiplicative(0.05)
    """

    linear_in_sd = True

    def __init__(self, sd=0.1):
        self._sd = check_sd(sd)

    def perturbation(self, weights, seed=None):
        unit = keras.random.normal(
            ops.shape(weights), dtype=_dtype_of(weights), seed=seed
        )
        return unit * ops.abs(weights) * self._sd

    def get_config(self):
        return {"sd": self._sd}


def serialize(noise):
    """Returns the Keras config dict of a noise model (None stays None)."""
    if noise is None:
        return None
    return keras.saving.serialize_keras_object(noise)


def get(identifier):
    """Resolves a noise model from an instance, number, alias or config.

    Args:
        identifier: a `NoiseModel` (returned as is); None; a number (a
            `Gaussian` with that sd, seed convention); a string alias such as
            `"gaussian"` (default parameters); a Keras config dict as written
            by `serialize`, or `{"class_name": alias, "config": {...}}`.

    Returns:
        A `NoiseModel`, or None for None.

    Raises:
        InvalidArgumentError: the identifier names no known noise model or
            its parameters are invalid.

    Example:

    >>> mat_keras.noise.get(0.2)
    Gaussian(sd=0.2, relative_to='range')
    >>> mat_keras.noise.get({"class_name": "multiplicative", "config": {"sd": 0.05}})
    Multiplicative(sd=0.05)
    """
    if identifier is None or isinstance(identifier, NoiseModel):
        return identifier
    if isinstance(identifier, bool):
        raise InvalidArgumentError(f"Not a noise model: {identifier!r}.")
    if isinstance(identifier, (int, float)):
        return Gaussian(identifier)
    if isinstance(identifier, str):
        return _class_for(identifier)()
    if isinstance(identifier, dict) and "class_name" in identifier:
        name = identifier["class_name"]
        config = identifier.get("config") or {}
        if isinstance(name, str) and name.lower() in _ALIASES:
            return _ALIASES[name.lower()].from_config(dict(config))
        try:
            noise = keras.saving.deserialize_keras_object(identifier)
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(
                f"Unknown noise model {name!r}; known aliases: "
                f"{', '.join(aliases())}."
            ) from error
        if isinstance(noise, NoiseModel):
            return noise
    raise InvalidArgumentError(
        f"Cannot interpret {identifier!r} as a noise model; pass a NoiseModel, "
        f"a number, one of {', '.join(aliases())}, or a config dict."
    )


def _class_for(alias):
    cls = _ALIASES.get(alias.lower())
    if cls is None:
        for candidate in _ALIASES.values():
            if candidate.__name__ == alias:
                return candidate
        raise InvalidArgumentError(
            f"Unknown noise model '{alias}'; known aliases: "
            f"{', '.join(aliases())}."
        )
    return cls


# Device models and quantisers live in modules of their own; importing them
# here registers their aliases ("quantized", "device", "pcm", "rram",
# "measured") and makes them reachable as `mat_keras.noise.<Name>`. The import
# sits at the end because those modules build on the classes above.
from mat_keras.device_models import (  # noqa: E402,F401
    PCM,
    RRAM,
    DeviceModel,
    Drift,
    ProgrammingNoise,
    ReadNoise,
    StuckDevices,
)
from mat_keras.measured import Measured, MeasuredDevice  # noqa: E402,F401
from mat_keras.quantized import Quantized  # noqa: E402,F401
