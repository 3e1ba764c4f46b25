"""Weight clipping to a multiple of each tensor's standard deviation."""

import math

import keras
from keras import ops

from mat_keras import layers as layer_table
from mat_keras.errors import InvalidArgumentError
from mat_keras.noise import check_sd
from mat_keras.wrapping import iter_layers


@keras.saving.register_keras_serializable(package="mat_keras")
class ClipByStd(keras.constraints.Constraint):
    """Constraint: clips a tensor to `±clip_w * std(tensor)`.

    Args:
        clip_w: the bound in standard deviations, a finite number > 0.
        then: another constraint applied after clipping, or None.

    Example:

    >>> layer = keras.layers.Dense(10, kernel_constraint=ClipByStd(2.5))
    """

    def __init__(self, clip_w=2.5, then=None):
        self.clip_w = check_clip_w(clip_w)
        self.then = keras.constraints.get(then)

    def __call__(self, w):
        bound = self.clip_w * ops.std(w)
        w = ops.clip(w, -bound, bound)
        return w if self.then is None else self.then(w)

    def get_config(self):
        return {
            "clip_w": self.clip_w,
            "then": keras.constraints.serialize(self.then) if self.then else None,
        }


def check_clip_w(value):
    """Returns `clip_w` as a float, raising unless it is finite and > 0."""
    number = check_sd(value, "clip_w")
    if number == 0:
        raise InvalidArgumentError("clip_w must be > 0, got 0.")
    return number


class WeightClip(keras.callbacks.Callback):
    """Clips weights to `±clip_w * std` after every optimizer step, as the reference implementation.

    While `fit` runs, each weight matrix (kernels, recurrent kernels,
    embeddings: the matrices of the layer table `mat_keras.layers`, and any
    other trainable variable of two or more dimensions not named a bias;
    with `include_bias=True` every other trainable weight of more than one
    value too) carries a `ClipByStd` constraint, which the optimizer
    applies right after its update inside the compiled train step, so
    clipping costs no host round trip. The variables' own constraints still
    apply after the clip. Everything is restored when training ends.

    Biases are left out by default: a zero-initialised bias has a standard
    deviation of 0 and the reference implementation's rule would hold it at 0 for ever.

    Args:
        clip_w: the bound in standard deviations (the reference implementation uses 2.5).
        include_bias: also clip biases and the other non-matrix weights
            (BatchNorm's gamma and beta).

    Example:

    >>> model.fit(x, y, callbacks=[mat_keras.WeightClip(2.5)])
    """

    def __init__(self, clip_w=2.5, include_bias=False):
        super().__init__()
        self.clip_w = check_clip_w(clip_w)
        self.include_bias = bool(include_bias)
        self._saved = []

    def clipped_variables(self, model):
        """The variables of `model` this callback clips."""
        roles = {}
        for layer in iter_layers(model):
            roles.update(layer_table.variable_roles(layer))
        return [
            variable
            for variable in model.trainable_variables
            if layer_table.role(variable, roles) == layer_table.MATRIX
            or (self.include_bias and math.prod(variable.shape) > 1)
        ]

    def on_train_begin(self, logs=None):
        self._saved = []
        for variable in self.clipped_variables(self.model):
            self._saved.append((variable, variable.constraint))
            variable.constraint = ClipByStd(self.clip_w, then=variable.constraint)
        # The train function may have been traced without the constraints.
        self.model.make_train_function(force=True)

    def on_train_end(self, logs=None):
        for variable, constraint in self._saved:
            variable.constraint = constraint
        self._saved = []
        # The next `fit` retraces without the clip; none is traced for nothing.
        self.model.train_function = None
