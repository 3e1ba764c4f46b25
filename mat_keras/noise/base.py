"""The base classes of noise models and of a device model's components.

A noise model maps a clean weight tensor `w` to a perturbation `delta` of the
same shape; the perturbed weights are `w + delta`. Models are small,
serialisable objects (`get_config` / `from_config`) that the registry
(`mat_keras.noise.registry`) resolves from aliases and configs.

All draws go through `keras.random` with the seed the caller passes: a
`keras.random.SeedGenerator` gives a fresh draw each call (also inside compiled
training), an integer gives the same draw every time.
"""

import keras
from keras import ops

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_non_negative


def check_sd(value, name="sd"):
    """Returns a noise level as a float after checking it is finite and >= 0.

    Args:
        value: the number to check.
        name: the argument's name, for the error message.

    Returns:
        `float(value)`.

    Raises:
        InvalidArgumentError: `value` is negative, non-finite or not a number.

    Example:

    >>> check_sd(0.1)
    0.1
    """
    return check_non_negative(value, name)


def dtype_of(tensor):
    """Returns the standardised dtype name of a tensor (`"float32"`, ...)."""
    return keras.backend.standardize_dtype(tensor.dtype)


class Configurable:
    """Plain settings that are their config: equality, hash and repr from it.

    The base of noise models and of a device model's components. `kind` names
    the registry namespace of a family of subclasses (`mat_keras.noise.register`).
    """

    kind = None

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

    kind = "noise"

    # True when `perturbation` at level `sd` equals `sd` times the perturbation
    # at level 1 for the same draw: a sweep then compiles one function for all
    # its levels.
    linear_in_sd = False

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

    def gated_perturbation(self, weights, seed, gate):
        """Returns `gate * perturbation(weights, seed)`: what the wrapper adds at each step.

        Models whose perturbation is a draw times a scalar override this to
        fold `gate` into the scalar: one full-size multiply less per weight
        tensor and step, on the training hot path.

        Args:
            weights: clean weight tensor, under `stop_gradient`.
            seed: a `keras.random.SeedGenerator`, an integer or None.
            gate: a scalar (the wrapper's noise gate variable).

        Returns:
            A tensor with the shape and dtype of `weights`.
        """
        return ops.cast(gate, dtype_of(weights)) * self.perturbation(weights, seed)

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
