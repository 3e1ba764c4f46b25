"""`wrap` and `strip`: put noisy weights on a whole model, and take them off."""

import keras

from mat_keras import compat
from mat_keras import crossbar as crossbar_lib
from mat_keras import layers as layer_table
from mat_keras import noise as noise_lib
from mat_keras.errors import InvalidArgumentError, NoNoisyLayersError, WrapError
from mat_keras.validation import MAX_SEED, check_seed
from mat_keras.wrapper import NoisyWeights


def iter_layers(model):
    """Yields every layer of `model`, entering nested models, in order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
            yield layer


def perturbed_variables(model, batchnorm=False):
    """The variables a sweep perturbs: every trainable weight of the model.

    The weights of opt-in layer types (BatchNormalization's gamma and beta,
    see `mat_keras.layers`) are left out unless `batchnorm=True` (the
    reference implementation's `noise_inference_bn`).

    Args:
        model: a Keras model, wrapped or not.
        batchnorm: also return the weights of opt-in layers.

    Returns:
        A list of variables, in layer order.
    """
    variables = []
    for layer in iter_layers(model):
        inner = getattr(layer, "layer", layer)
        if layer_table.is_opt_in(inner) and not batchnorm:
            continue
        # A wrapper's own trainable variables (learned input ranges) are the chip's, not weights.
        owner = inner if isinstance(layer, NoisyWeights) else layer
        variables.extend(owner.trainable_weights)
    return variables


def noisy_layers(model):
    """Returns the `NoisyWeights` layers of `model`, nested models included.

    Args:
        model: a Keras model.

    Returns:
        A list of `NoisyWeights`, in layer order.

    Example:

    >>> robust = mat_keras.wrap(model, noise=0.1)
    >>> len(mat_keras.noisy_layers(robust))
    2
    """
    return [layer for layer in iter_layers(model) if isinstance(layer, NoisyWeights)]


def _selector(layers, batchnorm):
    """Turns the `layers=` argument of `wrap` into a predicate and its names."""
    if layers is None:
        return (lambda layer: layer_table.wrapped_by_default(layer, batchnorm)), set()
    if isinstance(layers, (str, type)) or callable(layers):
        layers = [layers]
    names, types, predicates = set(), [], []
    for item in layers:
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, type) and issubclass(item, keras.layers.Layer):
            types.append(item)
        elif callable(item):
            predicates.append(item)
        else:
            raise InvalidArgumentError(
                f"layers= takes layer names, layer classes or predicates; got {item!r}."
            )
    types = tuple(types)
    if batchnorm:
        types += layer_table.opt_in_types()

    def selected(layer):
        return (
            layer.name in names
            or isinstance(layer, types)
            or any(predicate(layer) for predicate in predicates)
        )

    return selected, names


def _check_model(model, function):
    if not isinstance(model, keras.Model):
        raise WrapError(f"{function}() takes a Keras model, got {type(model).__name__}.")
    if not compat.is_graph_model(model):
        raise WrapError(
            f"{function}() works on Sequential and functional models; "
            f"'{model.name}' is a subclassed {type(model).__name__}: wrap its "
            "layers with mat_keras.NoisyWeights where you build them."
        )


def _clone(model, clone_layer):
    """Clones `model` with `clone_layer` and copies every layer's weights.

    `clone_layer(layer)` returns `(new_layer, weight_source, weight_target)`:
    the weights of `weight_source` are copied into `weight_target` once the
    clone is built.
    """
    copies = []

    def clone_function(layer):
        new_layer, source, target = clone_layer(layer)
        copies.append((source, target))
        return new_layer

    def call_function(layer, *args, **kwargs):
        # The graph records `mask=None` for layers whose call takes a mask
        # (NoisyWeights does); the replacement layer may not take one.
        if kwargs.get("mask", 0) is None and not compat.call_takes(layer, "mask"):
            del kwargs["mask"]
        return layer(*args, **kwargs)

    clone = keras.models.clone_model(
        model,
        clone_function=clone_function,
        # Sequential models replay no recorded calls (and refuse the option).
        call_function=None if isinstance(model, keras.Sequential) else call_function,
        recursive=True,
    )
    for source, target in copies:
        target.set_weights(source.get_weights())
    return clone


def _copy_layer(layer):
    return layer.__class__.from_config(layer.get_config())


def wrap(
    model,
    noise="gaussian",
    layers=None,
    seed=None,
    batchnorm=False,
    noise_bias=True,
    inference_noise=False,
    crossbar=None,
    chip_inference=False,
):
    """Returns a copy of `model` whose weight layers train with noisy weights.

    The model is cloned (`keras.models.clone_model`, nested models included)
    with its weights; each selected layer is wrapped in `NoisyWeights`. Layer
    `i` of the wrapped ones gets the noise seed `seed + i`, so layers of the
    same shape draw different noise. A model that is already wrapped is
    stripped first, so `wrap` also changes a robust model's noise model.

    Args:
        model: a Sequential or functional Keras model.
        noise: noise model, or anything `mat_keras.noise.get` resolves.
        layers: None for every layer type the layer table marks `wrap`
            (Dense, EinsumDense, convolutions, recurrent and attention
            layers, see `mat_keras.layers`); or a layer name, a layer class,
            a predicate `layer -> bool`, or a list of these.
        seed: integer seed of the first wrapped layer's noise, or None.
        batchnorm: also wrap opt-in layer types: BatchNormalization (noise
            on gamma and beta, the reference implementation's
            `noise_inference_bn`).
        noise_bias: whether biases get noise too.
        inference_noise: whether the noise is also drawn at inference.
        crossbar: None, or the chip the wrapped layers compute through in
            training (and at inference with `chip_inference`): a
            `mat_keras.crossbar.Crossbar`, `"ideal"`, `"standard"` or a dict
            (see `NoisyWeights`). With a crossbar, `noise` may be None.
        chip_inference: whether inference also computes through the crossbar.

    Returns:
        A new Keras model of the same kind, with the same weights.

    Raises:
        WrapError: the model is subclassed, a layer asked for by name does not
            exist or holds no trainable weights, or nothing would be wrapped.

    Example:

    >>> robust = mat_keras.wrap(model, noise=mat_keras.noise.Gaussian(0.1), seed=0)
    >>> robust.compile("adam", "sparse_categorical_crossentropy")
    >>> on_chip = mat_keras.wrap(model, noise=0.02, crossbar="standard", seed=0)
    """
    _check_model(model, "wrap")
    noise = noise_lib.get(noise)
    crossbar = crossbar_lib.get(crossbar)
    if noise is None and crossbar is None:
        raise InvalidArgumentError("wrap() needs a noise model or a crossbar, got neither.")
    seed = check_seed(seed)
    if noisy_layers(model):
        model = strip(model)
    selected, names = _selector(layers, batchnorm)
    chosen = _check_selection(model, selected, names, explicit=layers is not None)
    _check_seed_room(seed, len(chosen))

    count = [0]

    def clone_layer(layer):
        new_layer = _copy_layer(layer)
        if not selected(layer):
            return new_layer, layer, new_layer
        layer_seed = None if seed is None else seed + count[0]
        count[0] += 1
        wrapper = NoisyWeights(
            new_layer,
            noise=noise,
            seed=layer_seed,
            noise_bias=noise_bias,
            inference_noise=inference_noise,
            crossbar=crossbar,
            chip_inference=chip_inference,
            name=f"noisy_{layer.name}",
        )
        return wrapper, layer, new_layer

    return _clone(model, clone_layer)


def _check_selection(model, selected, names, explicit):
    all_layers = list(iter_layers(model))
    known = {layer.name for layer in all_layers}
    missing = sorted(names - known)
    if missing:
        raise WrapError(
            f"No layer named {', '.join(map(repr, missing))} in model "
            f"'{model.name}'; its layers are: {', '.join(sorted(known))}."
        )
    chosen = [layer for layer in all_layers if selected(layer)]
    for layer in chosen:
        if not layer.trainable_weights:
            raise WrapError(
                f"Layer '{layer.name}' ({type(layer).__name__}) holds no trainable "
                "weights, so there is nothing to put noise on; only layers with "
                "weights (Dense, Conv, RNN, BatchNormalization, ...) can be wrapped."
            )
    if not chosen:
        what = "the selected layers" if explicit else "Dense, convolution or RNN layers"
        raise WrapError(f"Model '{model.name}' has none of {what}: nothing to wrap.")
    return chosen


def _check_seed_room(seed, count):
    """Refuses a seed whose layer seeds `seed + i` would pass `MAX_SEED`."""
    if seed is not None and seed + count - 1 > MAX_SEED:
        raise InvalidArgumentError(
            f"seed must be at most {MAX_SEED - count + 1} for {count} wrapped layers "
            f"(layer i draws with seed + i), got {seed}."
        )


def strip(model):
    """Returns a plain copy of `model`: every `NoisyWeights` replaced by its layer.

    The copy holds the clean weights and loads anywhere Keras does, without
    mat-keras.

    Args:
        model: a Sequential or functional Keras model, wrapped or not.

    Returns:
        A new Keras model without `NoisyWeights` layers.

    Example:

    >>> plain = mat_keras.strip(robust)
    >>> plain.save("plain.keras")
    """
    _check_model(model, "strip")

    def clone_layer(layer):
        if isinstance(layer, NoisyWeights):
            inner = _copy_layer(layer.layer)
            return inner, layer.layer, inner
        new_layer = _copy_layer(layer)
        return new_layer, layer, new_layer

    return _clone(model, clone_layer)


def set_noise_gate(model, value):
    """Sets the noise gate of every `NoisyWeights` layer of `model`, and their chip with it.

    A wrapper with a crossbar computes through it in training while the gate
    is above 0. The chip is a different computation, not a level: the
    caller retraces the train step when it switches (`TwoPhaseSchedule`
    does, with `model.make_train_function(force=True)`).

    Args:
        model: a model with noisy layers.
        value: the gate, a number in [0, 1] (0 = clean, 1 = full noise).

    Returns:
        True when a crossbar's chip forward switched on or off.

    Raises:
        NoNoisyLayersError: the model has no `NoisyWeights` layers.
    """
    layers = noisy_layers(model)
    if not layers:
        raise NoNoisyLayersError(
            f"Model '{model.name}' has no NoisyWeights layers; wrap it with "
            "mat_keras.wrap() first."
        )
    switched = False
    for layer in layers:
        layer.gate.assign(float(value))
        chip = float(value) > 0
        switched = switched or (layer.crossbar is not None and layer.chip_training != chip)
        layer.chip_training = chip
    return switched


def model_crossbars(model):
    """The crossbars of `model`'s `NoisyWeights` layers, in layer order (those without one left out)."""
    return [layer.crossbar for layer in noisy_layers(model) if layer.crossbar is not None]


def chip_model(model, crossbar=None, seed=0, batchnorm=False):
    """Returns a copy of `model` that computes through a crossbar at inference.

    A model trained through a chip (its `NoisyWeights` carry a crossbar)
    keeps its crossbar and learned input ranges unless another `crossbar` is
    given; any other model is wrapped with `crossbar` and no weight noise.
    The copy's weights are the model's, in new variables, so a sweep can
    perturb them without touching the model.

    Args:
        model: a Sequential or functional model, wrapped or plain.
        crossbar: the chip (`mat_keras.crossbar.get`), or None to keep the
            model's own.
        seed: integer seed of the read and output noise (layer `i` draws with
            `seed + i`), or None.
        batchnorm: also wrap BatchNormalization (its weights then take a
            sweep's noise; it stays digital).

    Returns:
        A new model whose wrapped layers compute through the chip at inference.

    Raises:
        InvalidArgumentError: no crossbar given and the model has none.

    Example:

    >>> on_chip = mat_keras.chip_model(model, "standard")
    >>> mat_keras.crossbar.calibrate_input_ranges(on_chip, x_train[:1024])
    >>> on_chip.evaluate(x_test, y_test)
    """
    crossbar = crossbar_lib.get(crossbar)
    own = model_crossbars(model)
    keep = own and (crossbar is None or all(c.get_config() == crossbar.get_config() for c in own))
    if keep:
        twin = keras.models.clone_model(model)
        twin.set_weights(model.get_weights())
        for layer in noisy_layers(twin):
            layer.chip_inference = True
        return twin
    if crossbar is None:
        raise InvalidArgumentError(
            f"Model '{model.name}' computes through no crossbar: give one (crossbar='standard')."
        )
    return wrap(model, noise=None, crossbar=crossbar, seed=seed, batchnorm=batchnorm, chip_inference=True)
