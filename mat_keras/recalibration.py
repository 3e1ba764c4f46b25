"""Give a noise-trained model back the activations it trained with: two remedies.

Weight noise is zero-mean, so it leaves the mean of a layer's first
pre-activations alone; but after a ReLU it does not: a pre-activation
`z + e` with `e ~ N(0, s^2)` has `E[relu(z + e)] > relu(z)`, most for units
near zero. A network trained with noise (MAT) learns on those raised hidden
activations, and its next layer counts on them: without biases (the reference implementation's
MNIST MLP) the noise-induced offset even stands in for the missing bias.
Evaluated with less noise than it trained with (sd 0 in particular), every
layer after the first ReLU then sees activations below the ones it was
trained on, and accuracy can *rise* as inference noise is added.

Two remedies, for evaluating a MAT model with less noise than it trained with:

- `mean_field_model` replaces each hidden ReLU by its expectation under the
  training noise, per example and unit: on the Fashion-MNIST MLP trained at
  sd 0.2 it lifts noise-free accuracy from 71.5 % to 84.4 %
  (benchmarks/experiments/fashion_noise_shift.py);
- `recalibrate` only corrects the mean per unit (a bias), which there does
  not help (71.5 % -> 71.7 %): the lost activation is not a per-unit constant
  but depends on each example's pre-activation and input norm.

`recalibrate` corrects the first moment: for each Dense or convolution layer
in turn, it adds to the layer's bias the difference between the mean
pre-activation of each unit under the training noise and its mean in the
deployment condition (noise-free by default), measured on unlabelled
calibration inputs. It changes no kernel and needs no labels; layers
without a bias get one, and fused activations are split out so that the
correction acts before them.
"""

import keras
import numpy as np

from mat_keras import noise as noise_lib
from mat_keras import validation
from mat_keras.errors import InvalidArgumentError
from mat_keras.sweep import perturbed_variables
from mat_keras.wrapping import noisy_layers, strip

# Layers whose bias the correction adjusts: one bias per output unit on the
# last axis.
_CORRECTED = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def recalibrate(model, x, noise, deploy_noise=None, draws=4, seed=0, batch_size=256):
    """Returns a copy of `model` whose mean pre-activations match those under `noise`.

    For each Dense / Conv layer, in order, the mean of every output unit
    (over the calibration inputs, the draws and any spatial positions) is
    measured with all weights perturbed by `noise`, as in training, and in
    the deployment condition (`deploy_noise`, None for noise-free weights)
    with the corrections made so far; the difference is added to the
    layer's bias. The copy is a plain Keras model: the input `Sequential`
    with a bias on every corrected layer and each fused activation moved
    into an `Activation` layer right after it.

    Args:
        model: a built `keras.Sequential` classifier, plain or wrapped
            (`mat.wrap`; the wrapper is stripped).
        x: calibration inputs (numpy array), e.g. a few thousand training
            images; no labels needed.
        noise: the training noise, anything `mat.noise.get` resolves
            (`0.2` is the reference implementation's Gaussian of sd 0.2).
        deploy_noise: the noise of the deployment, or None for none.
        draws: noise draws per measurement.
        seed: seed of the draws.
        batch_size: batch size of the calibration passes.

    Returns:
        A new `keras.Sequential` model, uncompiled.

    Raises:
        InvalidArgumentError: not a Sequential model, no layer to correct,
            or a bad argument.

    Example:

    >>> robust = mat_keras.zoo.mnist_mlp(weights="mnist_mlp-mat-fashionmnist")
    >>> from mat_keras.recalibration import recalibrate
    >>> fixed = recalibrate(robust, data.x_train[:2000], noise=0.1)
    >>> mat_keras.robustness_sweep(fixed, data.x_test, data.y_test, sds=[0, 0.1])
    """
    noise = noise_lib.get(noise)
    deploy_noise = noise_lib.get(deploy_noise)
    if noise is None:
        raise InvalidArgumentError("recalibrate needs the training noise, got None.")
    draws = validation.check_integer(draws, "draws")
    seed = validation.check_seed(seed, allow_none=False)
    batch_size = validation.check_integer(batch_size, "batch_size")
    model = _plain_sequential(model, "recalibrate")
    x = np.asarray(x, dtype=np.float32)
    copy, corrected = _with_biases(model)
    probe = keras.Model(copy.inputs, [layer.output for layer in corrected])
    measure = _Measurer(copy, probe, x, batch_size, draws, seed)
    targets = measure.means(noise)
    for index, layer in enumerate(corrected):
        current = measure.means(deploy_noise)[index]
        layer.bias.assign(keras.ops.convert_to_numpy(layer.bias) + (targets[index] - current))
    return copy


def _plain_sequential(model, function):
    """`model` without its wrappers; refuses anything but a Sequential model."""
    if noisy_layers(model):
        model = strip(model)
    if not isinstance(model, keras.Sequential):
        raise InvalidArgumentError(
            f"{function} takes a keras.Sequential model, got {type(model).__name__} '{model.name}'."
        )
    return model


class _Measurer:
    """Mean pre-activation per unit of the corrected layers, under a noise model."""

    def __init__(self, model, probe, x, batch_size, draws, seed):
        self._variables = perturbed_variables(model)
        self._probe = probe
        self._x = x
        self._batch_size = batch_size
        self._draws = draws
        self._seed = seed

    def means(self, noise):
        if noise is None:
            return self._pass()
        clean = [keras.ops.convert_to_numpy(v) for v in self._variables]
        generator = keras.random.SeedGenerator(self._seed)
        totals = None
        try:
            for _ in range(self._draws):
                for variable, value in zip(self._variables, clean):
                    variable.assign(value + keras.ops.convert_to_numpy(noise.perturbation(value, generator)))
                means = self._pass()
                totals = means if totals is None else [t + m for t, m in zip(totals, means)]
        finally:
            # The clean weights come back also on error or interrupt.
            for variable, value in zip(self._variables, clean):
                variable.assign(value)
        return [t / self._draws for t in totals]

    def _pass(self):
        outputs = self._probe.predict(self._x, batch_size=self._batch_size, verbose=0)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [np.asarray(o, dtype=np.float64).reshape(-1, o.shape[-1]).mean(axis=0) for o in outputs]


def _with_biases(model):
    """A copy of the Sequential `model` with biased, activation-free corrected layers.

    Returns:
        `(copy, corrected)`: the new model (weights copied, new biases zero)
        and its corrected layers in order.
    """
    layers, sources, corrected = [], [], []
    for layer in model.layers:
        config = layer.get_config()
        if isinstance(layer, _CORRECTED):
            activation = config.get("activation", "linear")
            config.update(use_bias=True, activation="linear")
            new = type(layer).from_config(config)
            layers.append(new)
            sources.append(layer)
            corrected.append(new)
            if activation not in ("linear", None):
                layers.append(keras.layers.Activation(activation, name=f"{layer.name}_activation"))
                sources.append(None)
        else:
            layers.append(type(layer).from_config(config))
            sources.append(layer)
    if not corrected:
        raise InvalidArgumentError(f"Model '{model.name}' has no Dense or convolution layer to recalibrate.")
    copy = keras.Sequential([keras.Input(model.input_shape[1:]), *layers], name=f"{model.name}_recalibrated")
    for new, old in zip(layers, sources):
        if old is None:
            continue
        values = old.get_weights()
        if new in corrected and not old.use_bias:
            # The new bias sits right after the kernel in a Dense/Conv layer.
            values = values[:1] + [np.zeros(new.bias.shape, dtype=values[0].dtype)] + values[1:]
        new.set_weights(values)
    return copy, corrected


@keras.saving.register_keras_serializable(package="mat_keras")
class MeanNoisyReLU(keras.layers.Layer):
    """A Dense layer with ReLU that outputs its mean activation under weight noise.

    With the kernel perturbed by Gaussian noise of sd `sigma` per weight, a
    pre-activation `z = x . w` becomes `z + e` with `e ~ N(0, s^2)`,
    `s = sigma * ||x||` (plus the bias's own noise); the layer returns
    `E[relu(z + e)] = z Phi(z / s) + s phi(z / s)`, the activation the next
    layer saw on average in noisy training. `sigma` is fixed when the layer
    is made (the reference implementation's convention: `sd * 2 * max|w|`).

    Args:
        units: output units.
        sigma: noise sd of each kernel entry (absolute).
        bias_sigma: noise sd of each bias entry (absolute), 0 without bias.
        use_bias: whether the layer has a bias.
    """

    def __init__(self, units, sigma, bias_sigma=0.0, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.sigma = float(sigma)
        self.bias_sigma = float(bias_sigma)
        self.use_bias = use_bias

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="zeros") if self.use_bias else None

    def call(self, x):
        z = keras.ops.matmul(x, self.kernel)
        variance = self.sigma**2 * keras.ops.sum(keras.ops.square(x), axis=-1, keepdims=True)
        if self.bias is not None:
            z = z + self.bias
            variance = variance + self.bias_sigma**2
        s = keras.ops.sqrt(variance + 1e-12)
        u = z / s
        cdf = 0.5 * (1.0 + keras.ops.erf(u / np.sqrt(2.0)))
        pdf = keras.ops.exp(-0.5 * u * u) / np.sqrt(2.0 * np.pi)
        return z * cdf + s * pdf

    def get_config(self):
        return {**super().get_config(), "units": self.units, "sigma": self.sigma,
                "bias_sigma": self.bias_sigma, "use_bias": self.use_bias}


def mean_field_model(model, sd):
    """Returns a noise-free copy of an MLP whose hidden layers output their mean noisy activation.

    Every `Dense(activation="relu")` layer becomes a `MeanNoisyReLU` with the
    noise of the reference implementation's Gaussian of level `sd` (per tensor, `sd * 2 *
    max|w|`); other layers are copied unchanged (the noise of a linear layer
    is zero-mean and shifts nothing). Evaluated without noise, the copy
    shows what the network trained with noise `sd` computes on average:
    where a MAT model loses accuracy at inference sd 0, this copy tells
    whether the lost noise-induced activation is the cause, and is a
    deterministic (digital) stand-in that keeps it.

    Args:
        model: a built `keras.Sequential` of Dense layers (and layers
            without weights, such as Flatten), plain or wrapped.
        sd: the training noise level (fraction of `2 * max|w|`).

    Returns:
        A new `keras.Sequential` model, uncompiled.

    Raises:
        InvalidArgumentError: not a Sequential model, or a layer with
            weights other than Dense.

    Example:

    >>> robust = mat_keras.zoo.mnist_mlp(weights="mnist_mlp-mat-fashionmnist")
    >>> smooth = mean_field_model(robust, sd=0.1)
    >>> smooth.compile(metrics=["accuracy"], loss=...); smooth.evaluate(x_test, y_test)
    """
    sd = validation.check_non_negative(sd, "sd")
    model = _plain_sequential(model, "mean_field_model")
    layers, sources = [], []
    for layer in model.layers:
        if layer.weights and not isinstance(layer, keras.layers.Dense):
            raise InvalidArgumentError(
                f"mean_field_model handles Dense layers only; '{layer.name}' is a {type(layer).__name__}."
            )
        if isinstance(layer, keras.layers.Dense) and layer.get_config()["activation"] == "relu":
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            bias = keras.ops.convert_to_numpy(layer.bias) if layer.use_bias else np.zeros(1)
            new = MeanNoisyReLU(layer.units, sigma=sd * 2 * np.abs(kernel).max(),
                                bias_sigma=sd * 2 * np.abs(bias).max(), use_bias=layer.use_bias,
                                name=f"{layer.name}_mean_field")
        else:
            new = type(layer).from_config(layer.get_config())
        layers.append(new)
        sources.append(layer)
    copy = keras.Sequential([keras.Input(model.input_shape[1:]), *layers], name=f"{model.name}_mean_field")
    for new, old in zip(layers, sources):
        if old.weights:
            new.set_weights(old.get_weights())
    return copy
