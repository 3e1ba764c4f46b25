"""`NoisyWeights`: a layer wrapper that trains a layer on perturbed weights.

How it works. Keras 3 layers read their weights as `keras.Variable`s, and a
variable read consults the active `keras.StatelessScope` first. In the forward
pass the wrapper draws one perturbation per weight tensor, maps each variable
to `w + gate * stop_gradient(delta)` in a scope of its own, and calls the
wrapped layer inside it. Every read of a weight then sees the noisy value,
whatever op the layer uses: `matmul`, convolutions, the fused LSTM/GRU kernels
or a custom RNN cell. The gradient of the noisy weight reaches the clean
variable unchanged (straight-through), so the optimizer updates clean weights.

The scope falls through to the enclosing one (the JAX trainer runs the model
in a stateless scope of its own) and passes on the variable updates the
wrapped layer makes (BatchNormalization statistics), so wrapping changes
nothing but the weight values the layer computes with.

With a crossbar, the wrapped layer's products are computed as a chip computes
them (`mat_keras.crossbar.forward.chip_call`), from the same noisy weights:
in training while the chip is on (`chip_training`, switched by
`TwoPhaseSchedule` with the noise), and at inference with
`chip_inference=True`.
"""

import inspect

import keras
import numpy as np
from keras import ops

from mat_keras import compat
from mat_keras import crossbar as crossbar_lib
from mat_keras import layers as layer_table
from mat_keras import noise as noise_lib
from mat_keras.crossbar.context import ChipContext, range_key
from mat_keras.crossbar.forward import chip_call, product_layers
from mat_keras.errors import InvalidArgumentError, WrapError
from mat_keras.validation import check_seed


@keras.saving.register_keras_serializable(package="mat_keras")
class NoisyWeights(keras.layers.Wrapper):
    """Wraps a layer so that it trains on noisy copies of its weights.

    In training (`training=True`) every call draws a fresh perturbation of
    each trainable weight tensor of the wrapped layer (kernels, recurrent
    kernels and, unless `noise_bias=False`, biases) from `noise` and runs the
    layer with `w + gate * delta`; the gradient flows to the clean `w`
    (straight-through). At inference the layer computes with its clean weights
    unless `inference_noise=True`.

    The gate is a non-trainable variable in [0, 1] that scales the
    perturbation: 0 trains clean, 1 trains with the full noise. Callbacks such
    as `TwoPhaseSchedule` set it between epochs; because it is a variable the
    change takes effect inside compiled train steps.

    Any layer with trainable weights can be wrapped: Dense, EinsumDense,
    Conv1D/2D/3D, DepthwiseConv2D, SeparableConv1D/2D, SimpleRNN, LSTM, GRU,
    RNN layers with custom cells, MultiHeadAttention (called with query and
    value, like the layer itself), Embedding, BatchNormalization (gamma and
    beta) and others.

    Saving the model (`model.save`, `save_weights`, and so
    `keras.callbacks.BackupAndRestore`) keeps the position of the noise
    stream: a reloaded or resumed model draws the noise the saved one would
    have drawn next.

    With a `crossbar`, the layer computes its products as a chip does
    (tiles, DAC, read and output noise, IR drop, ADC; see
    `mat_keras.crossbar`) with the noisy weights: in training while
    `chip_training` is True (the default; `TwoPhaseSchedule` switches it off
    in the clean epochs), and at inference when `chip_inference=True`. The
    gate scales the crossbar's read and output noise as it scales the
    weight noise. A crossbar whose input range is `"learned"` or
    `"calibrated"` gives the wrapper one range variable per row tile of
    each matrix: learned ranges train with the straight-through range
    gradient and decay, calibrated ones are set from data
    (`mat_keras.crossbar.calibrate_input_ranges`).

    Args:
        layer: the `keras.layers.Layer` to wrap.
        noise: a noise model or anything `mat_keras.noise.get` resolves
            (a number is a Gaussian sd in the reference implementation's
            convention); None for a crossbar without weight noise.
        seed: integer seed of this layer's noise stream, or None.
        noise_bias: whether biases (and BatchNorm's beta) get noise too; the
            layer table (`mat_keras.layers`) says which variables are biases.
        inference_noise: whether noise is also drawn at inference.
        crossbar: a `mat_keras.crossbar.Crossbar`, an alias (`"ideal"`,
            `"standard"`), a dict of settings, or None (exact products).
        chip_inference: whether inference also computes through the crossbar.
        **kwargs: base `Layer` arguments such as `name`.

    Raises:
        WrapError: the layer has no weights (`Flatten`, `Dropout`), found
            when it is built (at once for a layer built already).
        InvalidArgumentError: no noise model and no crossbar, or a bad seed
            or crossbar.
        UnsupportedLayerError: a crossbar for a layer it cannot compute
            (named), found when the layer is built.

    Example:

    >>> layer = mat_keras.NoisyWeights(keras.layers.Dense(8), noise=0.1, seed=0)
    >>> y = layer(keras.ops.ones((2, 4)), training=True)  # noisy weights
    >>> y = layer(keras.ops.ones((2, 4)))                 # clean weights
    """

    def __init__(
        self,
        layer,
        noise="gaussian",
        seed=None,
        noise_bias=True,
        inference_noise=False,
        crossbar=None,
        chip_inference=False,
        **kwargs,
    ):
        super().__init__(layer, **kwargs)
        self.noise = noise_lib.get(noise)
        self.crossbar = crossbar_lib.get(crossbar)
        if self.noise is None and self.crossbar is None:
            raise InvalidArgumentError(
                f"NoisyWeights({layer.name}) needs a noise model or a crossbar, got neither."
            )
        self.chip_inference = bool(chip_inference)
        # Python-level, so a phase switch retraces the train step (TwoPhaseSchedule).
        self.chip_training = True
        self._range_variables = {}
        # A `RangeRecorder` while `calibrate_input_ranges` runs the model, else None.
        self._recorder = None
        self.seed = check_seed(seed)
        self.noise_bias = bool(noise_bias)
        self.inference_noise = bool(inference_noise)
        # Created here, not in call: a stateful generator redraws at every
        # compiled step on every backend.
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self._layer_takes_training = compat.call_takes(self.layer, "training")
        self._layer_takes_mask = compat.call_takes(self.layer, "mask")
        self.supports_masking = getattr(self.layer, "supports_masking", False)
        # ids of the wrapped layer's biases (the layer table's), once it is built.
        self._bias_ids = None
        self._check_has_weights()

    def build(self, input_shape=None):
        # Keras passes the shape of the first call argument only; a layer
        # built from several (MultiHeadAttention: query and value) is built
        # at the first call, from all of them (`_build_layer`).
        if _builds_from_one_shape(self.layer):
            super().build(input_shape)
            self._check_has_weights()
        self.gate = self.add_weight(
            shape=(),
            initializer="ones",
            trainable=False,
            name="noise_gate",
        )
        if self.layer.built:
            self._build_ranges()
        self.built = True

    @property
    def ranges_mode(self):
        """`"learned"` or `"calibrated"` when the wrapper holds range variables, else None."""
        mode = None if self.crossbar is None else self.crossbar.input_range
        return mode if isinstance(mode, str) else None

    def _build_ranges(self):
        """Creates one input-range variable per row tile of each crossbar matrix.

        Also checks that the crossbar can compute the layer: a layer it
        cannot is refused here, by name.
        """
        if self.crossbar is None or self._range_variables:
            return
        products = product_layers(self.layer)
        if self.ranges_mode is None:
            return
        for path, sublayer in products:
            for matrix in layer_table.layer_roles(sublayer, path).matrices:
                variable = layer_table.get_attr(sublayer, matrix.attr)
                shape = tuple(matrix.unroll(np.zeros(tuple(variable.shape))).shape)
                tiles = len(crossbar_lib.row_tiles(shape, self.crossbar))
                self._range_variables[range_key(sublayer, matrix.name)] = self.add_weight(
                    shape=(tiles,),
                    initializer=keras.initializers.Constant(self.crossbar.input_range_init),
                    trainable=self.ranges_mode == "learned",
                    # Torch refuses "." and Keras "/" in variable names.
                    name=f"{path.replace('/', '_').replace('.', '_')}_{matrix.name}_input_range",
                )
        # 1 once the ranges hold trained or calibrated values (sweeps calibrate the others).
        self.ranges_set = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="input_ranges_set"
        )

    @property
    def input_ranges_are_set(self):
        """Whether the input ranges hold trained or calibrated values (False without ranges)."""
        return self.ranges_mode is not None and float(ops.convert_to_numpy(self.ranges_set)) == 1.0

    @property
    def input_ranges(self):
        """`{range_key(layer, matrix name): variable}` of the wrapper's input ranges."""
        return dict(self._range_variables)

    @property
    def noisy_variables(self):
        """The wrapped layer's variables that receive noise, in draw order."""
        variables = self.layer.trainable_weights
        if self.noise_bias:
            return variables
        return [variable for variable in variables if id(variable) not in self._biases()]

    def _biases(self):
        """ids of the wrapped layer's biases, looked up in the layer table once."""
        if self._bias_ids is not None:
            return self._bias_ids
        roles = layer_table.variable_roles(self.layer)
        biases = {
            id(variable)
            for variable in self.layer.weights
            if layer_table.role(variable, roles) == layer_table.BIAS
        }
        # A layer built at its first call (MultiHeadAttention) has no variables before.
        if self.layer.built:
            self._bias_ids = biases
        return biases

    @property
    def noise_sd(self):
        """The noise level in effect now: gate times the model's sd (None without one)."""
        sd = None if self.noise is None else self.noise.sd
        gate = float(ops.convert_to_numpy(self.gate))
        return None if sd is None else gate * sd

    def noisy_values(self):
        """Returns one fresh noisy value per variable of `noisy_variables`.

        Each value is `w + gate * stop_gradient(delta)`, so the gradient with
        respect to it reaches `w` unchanged. Without a noise model: none.
        """
        if self.noise is None:
            return []
        values = []
        for variable in self.noisy_variables:
            # One read of the variable serves the scale and the sum.
            value = ops.convert_to_tensor(variable)
            delta = self.noise.gated_perturbation(
                ops.stop_gradient(value), self.seed_generator, self.gate
            )
            values.append(value + ops.stop_gradient(delta))
        return values

    def call(self, inputs, *args, training=None, mask=None, **kwargs):
        if self._layer_takes_mask and mask is not None:
            kwargs["mask"] = mask
        chip = self._chip_on(training)
        if self._layer_takes_training and not chip:
            kwargs["training"] = training
        if not (training or self.inference_noise or chip):
            return self.layer(inputs, *args, **kwargs)
        if not self.layer.built:
            self._build_layer(inputs, *args, **kwargs)
        noisy = training or self.inference_noise
        if not noisy:
            # The chip at inference on clean weights: nothing to overlay.
            return self._chip_forward(inputs, *args, training=training, **kwargs)
        mapping = list(zip(self.noisy_variables, self.noisy_values()))
        with compat.OverlayScope(mapping) as scope:
            if chip:
                outputs = self._chip_forward(inputs, *args, training=training, **kwargs)
            else:
                outputs = self.layer(inputs, *args, **kwargs)
                if training and self.ranges_mode == "learned":
                    # Idle ranges (clean epochs) get a zero gradient, not a missing one.
                    self.add_loss(0.0 * ops.sum(ops.stack([ops.sum(v) for v in self._range_variables.values()])))
        if scope.losses:
            self.add_loss(scope.losses)
        return outputs

    def _chip_on(self, training):
        if self.crossbar is None:
            return False
        if self._recorder is not None:
            return True
        return self.chip_training if training else self.chip_inference

    def _chip_forward(self, inputs, *args, training=None, **kwargs):
        """The wrapped layer's call, its products computed through the crossbar."""
        training = bool(training)
        if self._layer_takes_training:
            kwargs["training"] = training
        learn = training and self.ranges_mode == "learned"
        context = ChipContext(
            self.crossbar,
            input_ranges=self.input_ranges,
            seed=self.seed_generator,
            noise_gate=self.gate,
            learn_range=learn,
            recorder=self._recorder,
        )
        outputs = chip_call(self.layer, context, inputs, *args, **kwargs)
        if context.losses:
            self.add_loss(ops.sum(ops.stack(context.losses)))
        if learn:
            self.ranges_set.assign(1.0)
        return outputs

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return self.layer.compute_output_shape(input_shape, *args, **kwargs)

    def compute_output_spec(self, *args, **kwargs):
        kwargs.pop("training", None)
        if not self._layer_takes_mask:
            kwargs.pop("mask", None)
        if not self.layer.built:
            self._build_layer(*args, **kwargs)
        return self.layer.compute_output_spec(*args, **kwargs)

    def _build_layer(self, *args, **kwargs):
        """Builds the wrapped layer from the shapes of all its call arguments.

        For layers built from several inputs: Keras's convention passes the
        shape of call argument `name` as the build argument `name_shape`
        (MultiHeadAttention: `query_shape`, `value_shape`, `key_shape`).
        """
        bound = inspect.signature(self.layer.call).bind_partial(*args, **kwargs)
        accepted = inspect.signature(self.layer.build).parameters
        shapes = {
            f"{name}_shape": tuple(value.shape)
            for name, value in bound.arguments.items()
            if f"{name}_shape" in accepted and hasattr(value, "shape")
        }
        self.layer.build(**shapes)
        self._check_has_weights()
        with compat.unlocked_state(self):
            self._build_ranges()

    def _check_has_weights(self):
        """Refuses a built layer without weights: there would be nothing to perturb."""
        if self.layer.built and not self.layer.weights:
            raise WrapError(
                f"NoisyWeights({self.layer.name}): a {type(self.layer).__name__} layer has no weights "
                "to perturb; wrap the layers that hold weights."
            )

    def compute_mask(self, inputs, previous_mask=None):
        return self.layer.compute_mask(inputs, previous_mask)

    def save_own_variables(self, store):
        """Saves the wrapper's weights, then the state of its noise stream.

        Keras saves a layer's weights but not its `SeedGenerator`s: without
        the stream's position a resumed run (`BackupAndRestore`) or a reloaded
        model would draw the noise of the steps already taken again. The
        state follows the wrapper's own weights, under the next index.

        Args:
            store: the dict-like entry Keras saves this layer's state in.
        """
        super().save_own_variables(store)
        store[self._seed_state_key()] = self.seed_generator.state

    def load_own_variables(self, store):
        """Loads what `save_own_variables` saved; files without the stream's state load too.

        Args:
            store: the dict-like entry Keras saved this layer's state in.
        """
        key = self._seed_state_key()
        if key in store:
            # As saved on any backend: the state's integer type is the backend's.
            state = self.seed_generator.state
            state.assign(ops.cast(ops.convert_to_tensor(store[key][()]), state.dtype))
            store = {name: store[name] for name in store.keys() if name != key}
        super().load_own_variables(store)

    def _seed_state_key(self):
        """The store key of the noise stream's state: the index after the wrapper's own weights."""
        return str(len(self._trainable_variables + self._non_trainable_variables))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "noise": None if self.noise is None else noise_lib.serialize(self.noise),
                "seed": self.seed,
                "noise_bias": self.noise_bias,
                "inference_noise": self.inference_noise,
                "crossbar": None if self.crossbar is None else crossbar_lib.serialize(self.crossbar),
                "chip_inference": self.chip_inference,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["noise"] = noise_lib.get(config.get("noise"))
        config["crossbar"] = crossbar_lib.get(config.get("crossbar"))
        return super().from_config(config, custom_objects=custom_objects)


def _builds_from_one_shape(layer):
    """Whether `layer.build` takes a single input shape (most layers do)."""
    parameters = inspect.signature(layer.build).parameters.values()
    required = [
        p for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(required) <= 1
