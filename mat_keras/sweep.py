"""Robustness sweeps: accuracy against the noise level of the weights at inference.

For each noise level the sweep adds one fresh draw of weight noise to the
model's weights, evaluates, and repeats for `draws` draws: a Monte-Carlo
estimate of how a network programmed onto noisy devices performs. The weights
are perturbed in place and restored afterwards, so the model is neither copied
nor retraced. The results, their tables and files are in `mat_keras.results`.

With a crossbar, the sweep evaluates a chip twin of the model instead
(`chip_twin`: `mat_keras.chip_model`, its input ranges calibrated when they
were never set, its read and output noise seeded from the sweep's seed) and
perturbs the twin's weights the same way: the products then go through the
chip (`mat_keras.crossbar`). `mat_keras.deployment_sweep` does the same.
"""

import functools

import keras
import numpy as np

from mat_keras import crossbar as crossbar_lib
from mat_keras import noise as noise_lib
from mat_keras.backend_utils import array_batches, compile_function, stateless_draw
from mat_keras.errors import InvalidArgumentError
from mat_keras.progress import Progress
from mat_keras.validation import check_integer, check_labels, check_same_length, check_seed

# The results and their files, reachable here too (`mat.sweep.format_table`).
from mat_keras.results import (  # noqa: F401
    SweepResult,
    describe_crossbar,
    format_table,
    load_json,
    plot_results,
    save_csv,
    save_json,
)
from mat_keras.wrapping import chip_model, noisy_layers, perturbed_variables

DEFAULT_SDS = (0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3)
_ACCURACY_KEYS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy")

# Mixed into the sweep's seed for the chip's noise streams, so that they are
# not the weight draws' stream (`keras.random.SeedGenerator(seed)`).
_CHIP_STREAM = 0x43484950  # "CHIP"


def _accuracy_key(logs):
    for key in _ACCURACY_KEYS:
        if key in logs:
            return key
    raise InvalidArgumentError(
        "A sweep needs an accuracy metric: compile the model with "
        "metrics=['accuracy'] (or leave it uncompiled)."
    )


def check_data(model, x, y):
    """Checks array inputs and labels against each other and against `model`'s classes.

    Labels given as one class index per example (a vector, or a column) must
    be integers from 0 to the number of the model's outputs minus one, as the
    sparse cross-entropy takes them; other labels (one-hot rows) and a
    model of one output (a regression, a binary classifier) are only checked
    for their length. Datasets carry their own labels and are not checked.

    Args:
        model: the Keras model that will score the data.
        x: the inputs (an array), or a dataset.
        y: the labels, or None with a dataset.

    Raises:
        InvalidArgumentError: the lengths differ, or class indices are not
            integers in range (`mat_keras.validation.check_labels`).
    """
    if y is None or not hasattr(x, "shape"):
        return
    y = np.asarray(y)
    shape = getattr(model, "output_shape", None)
    classes = shape[-1] if isinstance(shape, tuple) and shape else None
    class_indices = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
    if class_indices and classes is not None and classes > 1:
        check_labels(x, y.reshape(len(y)), classes)
    else:
        check_same_length(x, y)


def make_evaluator(model, x, y=None, batch_size=256):
    """Returns `evaluate() -> (accuracy, loss)` of `model` on the data, for repeated calls.

    Sweeps evaluate the same data dozens of times with other weights: arrays
    are batched once (`backend_utils.array_batches`) and the compiled
    evaluation is reused. An uncompiled model is compiled with sparse
    categorical cross-entropy on logits and accuracy.

    Args:
        model: a Keras classifier, uncompiled or compiled with an accuracy
            metric.
        x: inputs (array) or a dataset / PyDataset of `(x, y)` batches.
        y: integer labels when `x` is an array.
        batch_size: batch size for array inputs.

    Returns:
        A function of no arguments returning two floats (loss NaN when the
        model has none).

    Raises:
        InvalidArgumentError: array inputs and labels do not fit each other
            or the model (`check_data`); (at the first call) the model
            reports no accuracy.

    Example:

    >>> evaluate = make_evaluator(model, x_test, y_test)
    >>> accuracy, loss = evaluate()
    """
    check_data(model, x, y)
    if not model.compiled:
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    if y is not None:
        x = array_batches(x, y, batch_size)
    key = None

    def evaluate():
        nonlocal key
        logs = model.evaluate(x, verbose=0, return_dict=True)
        key = key or _accuracy_key(logs)
        return logs[key], logs.get("loss", np.nan)

    return evaluate


def check_chip_arguments(crossbar, calibration_data):
    """Resolves a sweep's `crossbar` and checks its `calibration_data`, before any work.

    Args:
        crossbar: None, or anything `mat_keras.crossbar.get` resolves.
        calibration_data: None, or sample inputs (an array).

    Returns:
        The `Crossbar`, or None.

    Raises:
        InvalidArgumentError: an unknown alias or bad settings, calibration
            data without a crossbar, or calibration data that is not an
            array of at least one input.
    """
    crossbar = crossbar_lib.get(crossbar)
    if calibration_data is None:
        return crossbar
    if crossbar is None:
        raise InvalidArgumentError(
            "calibration_data sets a crossbar's input ranges: give it with crossbar=..."
        )
    if not hasattr(calibration_data, "shape") or len(calibration_data) == 0:
        raise InvalidArgumentError("calibration_data must be an array of at least one input.")
    return crossbar


def sample_inputs(x, samples=1024):
    """Returns the first `samples` inputs of an array or of a dataset's batches, as an array.

    Args:
        x: an array, or a `tf.data.Dataset` / PyDataset / iterable of
            `(x, y)` batches (or of input batches).
        samples: how many inputs to take at most.

    Returns:
        A numpy array of at most `samples` inputs.

    Raises:
        InvalidArgumentError: `x` holds no inputs.

    Example:

    >>> sample_inputs(data.test_dataset(256), 1024).shape
    (1024, 28, 28)
    """
    if hasattr(x, "shape"):
        inputs = np.asarray(x[:samples])
    else:
        if isinstance(x, keras.utils.PyDataset):
            count = x.num_batches if x.num_batches is not None else len(x)
            batches = (x[i] for i in range(count))
        else:
            batches = iter(x)
        taken, total = [], 0
        for batch in batches:
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            inputs = np.asarray(inputs)
            taken.append(inputs[: samples - total])
            total += len(taken[-1])
            if total >= samples:
                break
        inputs = np.concatenate(taken) if taken else np.zeros((0,))
    if len(inputs) == 0:
        raise InvalidArgumentError("The evaluation data holds no inputs to calibrate the crossbar with.")
    return inputs


def seed_chip_noise(model, seed):
    """Restarts the noise streams of `model`'s chip wrappers from `seed`.

    Wrapper `i` with a crossbar gets its own seed, drawn from `seed` with
    `numpy.random.SeedSequence` apart from the sweeps' weight draws, so the
    same seed gives the same read and output noise, and never the weight
    draws' numbers.

    Args:
        model: a model with `NoisyWeights` layers.
        seed: an integer from 0 to 2**32 - 1, or None (fresh seeds).

    Example:

    >>> seed_chip_noise(twin, 0)
    """
    chips = [layer for layer in noisy_layers(model) if layer.crossbar is not None]
    entropy = None if seed is None else [int(seed), _CHIP_STREAM]
    seeds = np.random.SeedSequence(entropy).generate_state(max(1, len(chips)))
    for layer, layer_seed in zip(chips, seeds):
        state = layer.seed_generator.state
        # 31 bits: the seed state is int32 on PyTorch.
        state.assign(keras.ops.convert_to_tensor([int(layer_seed) >> 1, 0], dtype=state.dtype))


def _compile_like(twin, model):
    """Compiles `twin` with `model`'s loss and metrics (none: `make_evaluator`'s default)."""
    if not model.compiled:
        return
    try:
        config = keras.saving.deserialize_keras_object(model.get_compile_config()) or {}
    except (TypeError, ValueError):  # a loss or metric that does not serialise
        config = {"loss": getattr(model, "loss", None), "metrics": ["accuracy"]}
    # Only evaluated: no optimizer state to build.
    config.pop("optimizer", None)
    twin.compile(**config)


def chip_twin(model, crossbar, x=None, seed=0, batchnorm=False, calibration_data=None):
    """Returns the copy of `model` that a sweep evaluates through `crossbar`.

    The copy is `mat_keras.chip_model(model, crossbar)`: a model trained
    through the same crossbar keeps its learned input ranges, any other is
    wrapped with it. Ranges that were never trained or calibrated
    (`mat_keras.crossbar.needs_calibration`) are calibrated from
    `calibration_data`, else from the first inputs of `x`. The chip's read
    and output noise start from `seed` (`seed_chip_noise`). The copy is
    compiled with `model`'s loss and metrics when `model` is compiled.

    Args:
        model: a Sequential or functional model, wrapped or plain.
        crossbar: anything `mat_keras.crossbar.get` resolves (not None).
        x: the evaluation inputs (array or dataset), for the calibration.
        seed: seed of the chip's noise, or None.
        batchnorm: also wrap BatchNormalization (see `chip_model`).
        calibration_data: sample inputs (an array) for the calibration.

    Returns:
        The chip twin, a new model; `model` is not modified.

    Raises:
        InvalidArgumentError: a bad crossbar, or ranges to calibrate and no
            inputs to calibrate them with.

    Example:

    >>> twin = mat_keras.sweep.chip_twin(model, "standard", x_test, seed=0)
    >>> twin.evaluate(x_test, y_test)
    """
    twin = chip_model(model, crossbar_lib.get(crossbar), seed=0, batchnorm=batchnorm)
    if calibration_data is None and x is not None and crossbar_lib.needs_calibration(twin):
        calibration_data = sample_inputs(x)
    crossbar_lib.calibrate_if_needed(
        twin, calibration_data, "The crossbar's input ranges need calibrating: give calibration_data."
    )
    seed_chip_noise(twin, seed)
    _compile_like(twin, model)
    return twin


# Compiled draw functions, reused by later sweeps of the same family and
# weight shapes: compiling costs seconds on JAX.
_DRAW_CACHE = {}


def _compiled_draws(family, sds, clean):
    """One `draw(state, clean) -> (noisy weights, state)` per level, compiled.

    A family whose perturbation is linear in its sd is compiled once, at level
    1, with the level as an argument.
    """
    signature = (repr(family), tuple((tuple(v.shape), str(v.dtype)) for v in clean))
    if family.linear_in_sd:
        draw = _cached_draw((*signature, None), family.with_sd(1.0))
        return [functools.partial(_with_level, draw, sd) for sd in sds]
    return [_cached_draw((*signature, sd), family.with_sd(sd)) for sd in sds]


def _cached_draw(key, level):
    if key not in _DRAW_CACHE:
        # Names the random state inside the compiled code; the state itself
        # goes in and out as an argument.
        generator = keras.random.SeedGenerator(0)

        def perturb(clean, factor=1.0):
            return [value + factor * level.perturbation(value, generator) for value in clean]

        _DRAW_CACHE[key] = compile_function(stateless_draw(perturb, generator))
    return _DRAW_CACHE[key]


def _with_level(draw, sd, state, clean):
    return draw(state, clean, keras.ops.convert_to_tensor(sd, "float32"))


def _check_levels(sds, draws):
    if isinstance(sds, (int, float)):
        sds = [sds]
    sds = [noise_lib.check_sd(sd, "each sd") for sd in sds]
    if not sds:
        raise InvalidArgumentError("sds must hold at least one noise level.")
    check_integer(draws, "draws")
    return sds


def robustness_sweep(
    model,
    x,
    y=None,
    sds=DEFAULT_SDS,
    draws=10,
    seed=0,
    noise="gaussian",
    batch_size=256,
    batchnorm=False,
    name=None,
    data=None,
    verbose=1,
    crossbar=None,
    calibration_data=None,
):
    """Measures accuracy and loss under weight noise at several levels.

    For each level in `sds` and each of `draws` draws, every trainable weight
    `w` of the model (biases too; BatchNorm parameters with `batchnorm=True`)
    is set to `w + delta`, with `delta` from `noise` at that level (by default
    the reference implementation's Gaussian, sd times `2 * max|w|` per tensor), and the model is
    evaluated. The clean weights are restored afterwards, also on error or
    interrupt. The compiled evaluation function is reused throughout.

    An uncompiled model is compiled with sparse categorical cross-entropy on
    logits and accuracy. `NoisyWeights` layers evaluate with their clean
    (here: perturbed) weights, so wrapped and plain models sweep alike.

    With a `crossbar`, the sweep evaluates the model's chip twin
    (`chip_twin`): the same weights perturbed by the same draws, then every
    product computed through the crossbar. A model trained through that
    crossbar keeps its learned input ranges; ranges never set are
    calibrated first, from `calibration_data` or the first 1,024 inputs of
    `x`. The chip's read and output noise is seeded from `seed` too. The
    model itself is not touched.

    Args:
        model: a Keras classifier.
        x: inputs (array) or a `tf.data.Dataset` / PyDataset of `(x, y)`.
        y: integer labels when `x` is an array.
        sds: inference noise levels.
        draws: noise draws per level.
        seed: integer seed from 0 to 2**32 - 1 (or None: unseeded); the
            same seed gives the same draws.
        noise: the noise family (`mat_keras.noise.get`), set to each level
            with `NoiseModel.with_sd`.
        batch_size: evaluation batch size for array inputs.
        batchnorm: also perturb BatchNormalization's gamma and beta.
        name: label of the result (defaults to the model's name).
        data: a description of the evaluation data, kept in the result.
        verbose: 1 shows a Keras progress bar on a terminal, and one line
            per noise level when the output is a file or a pipe
            (`mat_keras.progress.Progress`); 0 shows nothing.
        crossbar: None (exact products), or the chip to compute through:
            a `mat_keras.crossbar.Crossbar`, `"ideal"`, `"standard"` or a
            dict of settings (`mat_keras.crossbar.get`). A model trained
            through a crossbar computes through it only when it is given.
        calibration_data: sample inputs (an array) to calibrate the
            crossbar's input ranges with; None takes the first inputs of `x`.

    Returns:
        A `SweepResult` (its `crossbar` the crossbar's config, or None).

    Raises:
        InvalidArgumentError: a bad level, draw count, seed, crossbar or
            calibration data, or array inputs and labels that do not fit
            each other or the model (`check_data`).

    Example:

    >>> result = mat_keras.robustness_sweep(model, x_test, y_test,
    ...                                     sds=[0, 0.1, 0.2], draws=10)
    >>> print(result.table())
    >>> on_chip = mat_keras.robustness_sweep(model, x_test, y_test, crossbar="standard")
    """
    sds = _check_levels(sds, draws)
    seed = check_seed(seed)
    family = noise_lib.get(noise)
    chip = check_chip_arguments(crossbar, calibration_data)
    # Checks the data before the twin is made and the draws are compiled (seconds on JAX).
    check_data(model, x, y)
    target = model if chip is None else chip_twin(model, chip, x, seed, batchnorm, calibration_data)
    evaluate = make_evaluator(target, x, y, batch_size)
    variables = perturbed_variables(target, batchnorm=batchnorm)
    clean = [keras.ops.convert_to_tensor(keras.ops.convert_to_numpy(v)) for v in variables]
    generator = keras.random.SeedGenerator(seed)
    draws_at = _compiled_draws(family, sds, clean)
    accuracy = np.zeros((len(sds), draws))
    loss = np.full((len(sds), draws), np.nan)
    progress = Progress(
        len(sds) * draws, verbose=verbose, group=draws, stateful_metrics=["sd", "accuracy"], unit_name="draw"
    )
    state = generator.state.value
    try:
        for i, draw in enumerate(draws_at):
            for d in range(draws):
                noisy, state = draw(state, clean)
                for variable, value in zip(variables, noisy):
                    variable.assign(value)
                accuracy[i, d], loss[i, d] = evaluate()
                progress.add(1, [("sd", sds[i]), ("accuracy", accuracy[i, d])])
    finally:
        for variable, value in zip(variables, clean):
            variable.assign(value)
    return SweepResult(
        sds=sds,
        accuracy=accuracy,
        loss=loss,
        name=name or model.name,
        noise=noise_lib.serialize(family),
        seed=seed,
        data=data or "",
        crossbar=None if chip is None else chip.get_config(),
    )
