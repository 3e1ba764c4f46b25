"""Deployment sweeps: accuracy of a network on a simulated chip, over time.

`deployment_sweep` programs the model's weights onto a simulated device once
per draw (a new chip: programming noise, stuck devices, level quantisation),
then reads them at several times after programming (drift, fresh read noise)
and evaluates the model at each, with and without global drift compensation.
As `mat_keras.robustness_sweep`, it perturbs the weights in place, reuses the
compiled evaluation and restores the clean weights afterwards.

With a crossbar, the programmed and read weights go into the model's chip
twin (`mat_keras.sweep.chip_twin`), which computes every product through
the crossbar: programming, drift and compensation as without, then the chip
forward.

Times are seconds after programming; `mat_keras.devices.parse_time` also
reads `"1h"`, `"30d"`, `"1y"`, and `format_time` writes them back for tables.
"""

import keras
import numpy as np

from mat_keras import noise as noise_lib
from mat_keras.devices import (
    DAY,
    HOUR,
    MONTH,
    YEAR,
    DeviceModel,
    check_time,
    parse_time,
    resolve_device,
)
from mat_keras.errors import InvalidArgumentError
from mat_keras.layers import is_bias
from mat_keras.progress import Progress
from mat_keras.results import DeploymentResult
from mat_keras.sweep import check_chip_arguments, check_data, chip_twin, make_evaluator
from mat_keras.validation import check_integer, check_seed
from mat_keras.wrapping import perturbed_variables

#: 1 second, 1 hour, 1 day, 1 month (30 days), 1 year (365 days).
DEFAULT_TIMES = (1.0, HOUR, DAY, MONTH, YEAR)

_COMPENSATION = {False: (False,), True: (True,), "both": (False, True)}
_BIASES = ("digital", "devices")

class _WeightNoise:
    """Any weight noise model as a device: drawn once per programming, no drift."""

    def __init__(self, noise):
        self.noise = noise

    def program(self, weights, seed=None):
        return weights + self.noise.perturbation(weights, seed)

    def read(self, state, time=0.0, seed=None, compensation=False):
        check_time(time)
        return state

    def compensation_factor(self, state, time=0.0, seed=None):
        return 1.0


def _check_arguments(times, draws, compensation, biases):
    if isinstance(times, (int, float, str)):
        times = [times]
    times = [parse_time(t) for t in times]
    if not times:
        raise InvalidArgumentError("times must hold at least one time after programming.")
    check_integer(draws, "draws")
    if isinstance(compensation, str):
        compensation = compensation.lower()
    numeric = isinstance(compensation, (int, float)) and not isinstance(compensation, bool)
    if numeric or compensation not in _COMPENSATION:
        raise InvalidArgumentError(
            f"compensation must be True, False or 'both'; got {compensation!r}."
        )
    if biases not in _BIASES:
        raise InvalidArgumentError(f"biases must be one of {', '.join(_BIASES)}; got {biases!r}.")
    return times, _COMPENSATION[compensation]


def deployment_sweep(
    model,
    x,
    y=None,
    device="pcm",
    times=DEFAULT_TIMES,
    draws=10,
    seed=0,
    compensation="both",
    biases="digital",
    batch_size=256,
    batchnorm=False,
    name=None,
    data=None,
    verbose=1,
    crossbar=None,
    calibration_data=None,
):
    """Measures accuracy on a simulated chip at several times after programming.

    For each of `draws` draws, the model's weight tensors are programmed once
    onto `device` (`DeviceModel.program`: mapping to conductance pairs, level
    quantisation, programming noise, stuck devices, drift exponents); at each
    time the conductances are read (drift, fresh read noise), turned back
    into weights and the model is evaluated, without and/or with global
    drift compensation (one factor per tensor from a calibration read, see
    `mat_keras.devices.model`). Both settings see the same programming and
    the same read, so their difference is the compensation alone. A weight
    noise model that is not a `DeviceModel` (e.g. `"gaussian"`) is drawn
    once per programming and does not change with time.

    Biases stay digital (exact) by default, as the exporter keeps them; a
    network whose layers are positively homogeneous (ReLU, no biases, like
    the reference implementation's MNIST MLP) classifies the same after any positive rescaling of
    a layer, so drift compensation cannot change its accuracy there, only
    where something does not drift with the weights (digital biases,
    BatchNorm, fixed ranges).

    The clean weights are restored afterwards, also on error or interrupt.
    An uncompiled model is compiled with sparse categorical cross-entropy
    on logits and accuracy.

    With a `crossbar`, each chip's weights go into the model's chip twin
    (`mat_keras.sweep.chip_twin`) and every product is computed through the
    crossbar (tiles, DAC, read and output noise, IR drop, ADC), its noise
    seeded from `seed`; learned input ranges are kept, ranges never set
    are calibrated first from `calibration_data` or the first inputs of
    `x`. The model itself is not touched.

    Args:
        model: a Keras classifier (wrapped or plain).
        x: inputs (array) or a `tf.data.Dataset` / PyDataset of `(x, y)`.
        y: integer labels when `x` is an array.
        device: the device (see `resolve_device`): `"pcm"`, `"rram"`,
            `"gaussian"`, a `DeviceModel`, a CSV path, a JSON config, ...
        times: seconds after programming (numbers, or strings such as
            `"1d"`); default 1 s, 1 h, 1 day, 1 month, 1 year.
        draws: programmings (chips) to average over.
        seed: integer seed from 0 to 2**32 - 1 (or None: unseeded); the
            same seed gives the same chips and reads.
        compensation: True, False, or `"both"` (one result each).
        biases: `"digital"` (exact) or `"devices"` (programmed like weights).
        batch_size: evaluation batch size for array inputs.
        batchnorm: also program BatchNormalization's gamma and beta.
        name: label of the results (defaults to the model's name).
        data: a description of the evaluation data, kept in the results.
        verbose: 1 shows a Keras progress bar on a terminal, and one line
            per draw when the output is a file or a pipe; 0 shows nothing.
        crossbar: None (exact products), or the chip the programmed
            weights compute through (`mat_keras.crossbar.get`: a
            `Crossbar`, `"ideal"`, `"standard"`, a dict of settings).
        calibration_data: sample inputs (an array) to calibrate the
            crossbar's input ranges with; None takes the first inputs of `x`.

    Returns:
        A list of `DeploymentResult`: `[uncompensated, compensated]` for
        `"both"`, else one (their `crossbar` the crossbar's config, or None).

    Raises:
        InvalidArgumentError: a bad device, time, draw count, seed,
            crossbar, calibration data or setting, or array inputs and
            labels that do not fit each other or the model
            (`mat_keras.sweep.check_data`).

    Example:

    >>> results = mat_keras.deployment_sweep(model, x_test, y_test, device="pcm",
    ...                                      times=["1s", "1d", "1y"], draws=5)
    >>> print(mat_keras.sweep.format_table(results))
    >>> mat_keras.sweep.plot_results(results, path="deployment.png")
    >>> chip = mat_keras.deployment_sweep(model, x_test, y_test, device="pcm", crossbar="standard")
    """
    times, settings = _check_arguments(times, draws, compensation, biases)
    seed = check_seed(seed)
    chip = check_chip_arguments(crossbar, calibration_data)
    # Checks the data before the device is read and the twin made.
    check_data(model, x, y)
    family = resolve_device(device)
    simulator = family if isinstance(family, DeviceModel) else _WeightNoise(family)
    target = model if chip is None else chip_twin(model, chip, x, seed, batchnorm, calibration_data)
    evaluate = make_evaluator(target, x, y, batch_size)
    variables = [
        v for v in perturbed_variables(target, batchnorm=batchnorm)
        if biases == "devices" or not is_bias(v)
    ]
    clean = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    generator = keras.random.SeedGenerator(seed)
    accuracy = np.zeros((len(settings), len(times), draws))
    loss = np.full_like(accuracy, np.nan)
    # One line per draw (a chip at every time) when the output is not a terminal.
    progress = Progress(
        draws * len(times) * len(settings), verbose=verbose, group=len(times) * len(settings),
        stateful_metrics=["time", "accuracy"], unit_name="evaluation",
    )
    try:
        for d in range(draws):
            states = [simulator.program(keras.ops.convert_to_tensor(v), generator) for v in clean]
            for i, time in enumerate(times):
                # Host copies: evaluation may donate (and delete) the buffers
                # of assigned values (JAX), and each read is assigned twice.
                reads = [
                    keras.ops.convert_to_numpy(simulator.read(s, time, generator, compensation=False))
                    for s in states
                ]
                factors = (
                    [float(keras.ops.convert_to_numpy(simulator.compensation_factor(s, time, generator)))
                     for s in states]
                    if True in settings else None
                )
                for k, compensate in enumerate(settings):
                    for j, (variable, value) in enumerate(zip(variables, reads)):
                        if compensate:
                            value = value * factors[j]
                        variable.assign(value.astype(variable.dtype))
                    accuracy[k, i, d], loss[k, i, d] = evaluate()
                    progress.add(1, [("time", time), ("accuracy", accuracy[k, i, d])])
    finally:
        for variable, value in zip(variables, clean):
            variable.assign(value)
    label = name or model.name
    results = []
    for k, compensate in enumerate(settings):
        suffix = ("compensated" if compensate else "uncompensated") if len(settings) > 1 else ""
        results.append(
            DeploymentResult(
                times=list(times),
                accuracy=accuracy[k],
                loss=loss[k],
                name=f"{label}, {suffix}" if suffix else label,
                noise=noise_lib.serialize(family),
                seed=seed,
                data=data or "",
                compensated=compensate,
                crossbar=None if chip is None else chip.get_config(),
            )
        )
    return results
