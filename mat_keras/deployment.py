"""Deployment sweeps: accuracy of a network on a simulated chip, over time.

`deployment_sweep` programs the model's weights onto a simulated device once
per draw (a new chip: programming noise, stuck devices, level quantisation),
then reads them at several times after programming (drift, fresh read noise)
and evaluates the model at each, with and without global drift compensation.
As `mat_keras.robustness_sweep`, it perturbs the weights in place, reuses the
compiled evaluation and restores the clean weights afterwards.

Times are seconds after programming; `parse_time` also reads `"1h"`,
`"30d"`, `"1y"`, and `format_time` writes them back for tables.
"""

import json
import os
import re

import keras
import numpy as np

from mat_keras import device_models
from mat_keras import noise as noise_lib
from mat_keras.errors import InvalidArgumentError
from mat_keras.layers import is_bias
from mat_keras.results import DeploymentResult
from mat_keras.sweep import make_evaluator
from mat_keras.wrapping import perturbed_variables

#: 1 second, 1 hour, 1 day, 1 month (30 days), 1 year (365 days).
DEFAULT_TIMES = (
    1.0,
    device_models.HOUR,
    device_models.DAY,
    device_models.MONTH,
    device_models.YEAR,
)

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "min": device_models.MINUTE,
    "h": device_models.HOUR,
    "hour": device_models.HOUR,
    "hours": device_models.HOUR,
    "d": device_models.DAY,
    "day": device_models.DAY,
    "days": device_models.DAY,
    "mo": device_models.MONTH,
    "month": device_models.MONTH,
    "months": device_models.MONTH,
    "y": device_models.YEAR,
    "yr": device_models.YEAR,
    "year": device_models.YEAR,
    "years": device_models.YEAR,
}
_NAMES = (
    (device_models.YEAR, "year"),
    (device_models.MONTH, "month"),
    (device_models.DAY, "day"),
    (device_models.HOUR, "h"),
    (device_models.MINUTE, "min"),
)
_TIME = re.compile(r"^\s*([0-9.eE+-]+)\s*([a-zA-Z]*)\s*$")
_COMPENSATION = {False: (False,), True: (True,), "both": (False, True)}
_BIASES = ("digital", "devices")


def parse_time(value):
    """Returns a time after programming in seconds.

    Args:
        value: a number of seconds, or a string: a number with an optional
            unit `s`, `min`, `h`, `d`, `mo` (30 days), `y` (365 days), e.g.
            `"3600"`, `"1h"`, `"30d"`, `"1y"`.

    Returns:
        A float >= 0.

    Raises:
        InvalidArgumentError: not a time, an unknown unit, or negative.

    Example:

    >>> parse_time("1d"), parse_time(60)
    (86400.0, 60.0)
    """
    if isinstance(value, str):
        match = _TIME.match(value)
        unit = match.group(2).lower() if match else None
        if not match or (unit and unit not in _UNITS):
            raise InvalidArgumentError(
                f"Cannot read {value!r} as a time: give seconds or a number with a unit "
                "(s, min, h, d, mo, y), e.g. 1h or 30d."
            )
        try:
            number = float(match.group(1))
        except ValueError:
            raise InvalidArgumentError(f"Cannot read {value!r} as a time.") from None
        value = number * _UNITS[unit or "s"]
    return device_models.check_time(value, "each time")


def format_time(seconds):
    """Writes a time in its largest whole-ish unit: `"1 s"`, `"1 h"`, `"30 days"`, `"1 year"`."""
    seconds = float(seconds)
    for unit, name in _NAMES:
        if seconds >= unit:
            value = seconds / unit
            plural = "s" if name in ("year", "month", "day") and value != 1 else ""
            return f"{value:.3g} {name}{plural}"
    return f"{seconds:.3g} s"


def resolve_device(identifier):
    """Resolves the `device` of a deployment sweep.

    Args:
        identifier: a `NoiseModel` (a `DeviceModel` or any weight noise,
            applied once per programming); an alias (`"pcm"`, `"rram"`,
            `"gaussian"`, `"measured"`, ...); a number (seed Gaussian sd);
            the path of a measurements CSV (`mat_keras.measured`); a JSON
            object, as a string or a `.json` file, or a dict: a noise config
            (`{"class_name": "pcm", "config": {...}}`) or the arguments of a
            `DeviceModel` (`{"programming": 0.02, "drift": {"nu_mean": 0.05}}`).

    Returns:
        A `NoiseModel`.

    Raises:
        InvalidArgumentError: nothing of the above.

    Example:

    >>> resolve_device('{"programming": 0.02, "read": 0.01}')
    DeviceModel(programming=..., read=..., ...)
    """
    if isinstance(identifier, str):
        text = identifier.strip()
        if text.lower().endswith(".csv"):
            from mat_keras.measured import MeasuredDevice

            return MeasuredDevice.from_csv(text)
        if text.lower().endswith(".json"):
            if not os.path.isfile(text):
                raise InvalidArgumentError(f"No device file at {text!r}.")
            with open(text) as handle:
                text = handle.read()
        if text.startswith("{"):
            try:
                identifier = json.loads(text)
            except json.JSONDecodeError as error:
                raise InvalidArgumentError(f"The device is not valid JSON: {error}.") from None
    if isinstance(identifier, dict) and "class_name" not in identifier:
        try:
            return device_models.DeviceModel.from_config(identifier)
        except TypeError as error:
            raise InvalidArgumentError(f"Not a device model config: {error}.") from None
    device = noise_lib.get(identifier)
    if device is None:
        raise InvalidArgumentError("deployment_sweep needs a device model, got None.")
    return device


class _WeightNoise:
    """Any weight noise model as a device: drawn once per programming, no drift."""

    def __init__(self, noise):
        self.noise = noise

    def program(self, weights, seed=None):
        return weights + self.noise.perturbation(weights, seed)

    def read(self, state, time=0.0, seed=None, compensation=False):
        device_models.check_time(time)
        return state

    def compensation_factor(self, state, time=0.0, seed=None):
        return 1.0


def _check_arguments(times, draws, compensation, biases):
    if isinstance(times, (int, float, str)):
        times = [times]
    times = [parse_time(t) for t in times]
    if not times:
        raise InvalidArgumentError("times must hold at least one time after programming.")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise InvalidArgumentError(f"draws must be an integer >= 1, got {draws!r}.")
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
):
    """Measures accuracy on a simulated chip at several times after programming.

    For each of `draws` draws, the model's weight tensors are programmed once
    onto `device` (`DeviceModel.program`: mapping to conductance pairs, level
    quantisation, programming noise, stuck devices, drift exponents); at each
    time the conductances are read (drift, fresh read noise), turned back
    into weights and the model is evaluated, without and/or with global
    drift compensation (one factor per tensor from a calibration read, see
    `mat_keras.device_models`). Both settings see the same programming and
    the same read, so their difference is the compensation alone. A weight
    noise model that is not a `DeviceModel` (e.g. `"gaussian"`) is drawn
    once per programming and does not change with time.

    Biases stay digital (exact) by default, as the exporter keeps them; a
    network whose layers are positively homogeneous (ReLU, no biases, like
    the seed's MNIST MLP) classifies the same after any positive rescaling of
    a layer, so drift compensation cannot change its accuracy there, only
    where something does not drift with the weights (digital biases,
    BatchNorm, fixed ranges).

    The clean weights are restored afterwards, also on error or interrupt.
    An uncompiled model is compiled with sparse categorical cross-entropy
    on logits and accuracy.

    Args:
        model: a Keras classifier (wrapped or plain).
        x: inputs (array) or a `tf.data.Dataset` / PyDataset of `(x, y)`.
        y: integer labels when `x` is an array.
        device: the device (see `resolve_device`): `"pcm"`, `"rram"`,
            `"gaussian"`, a `DeviceModel`, a CSV path, a JSON config, ...
        times: seconds after programming (numbers, or strings such as
            `"1d"`); default 1 s, 1 h, 1 day, 1 month, 1 year.
        draws: programmings (chips) to average over.
        seed: integer seed; the same seed gives the same chips and reads.
        compensation: True, False, or `"both"` (one result each).
        biases: `"digital"` (exact) or `"devices"` (programmed like weights).
        batch_size: evaluation batch size for array inputs.
        batchnorm: also program BatchNormalization's gamma and beta.
        name: label of the results (defaults to the model's name).
        data: a description of the evaluation data, kept in the results.
        verbose: 1 shows a progress bar.

    Returns:
        A list of `DeploymentResult`: `[uncompensated, compensated]` for
        `"both"`, else one.

    Raises:
        InvalidArgumentError: a bad device, time, draw count or setting.

    Example:

    >>> results = mat_keras.deployment_sweep(model, x_test, y_test, device="pcm",
    ...                                      times=["1s", "1d", "1y"], draws=5)
    >>> print(mat_keras.sweep.format_table(results))
    >>> mat_keras.sweep.plot_results(results, path="deployment.png")
    """
    times, settings = _check_arguments(times, draws, compensation, biases)
    family = resolve_device(device)
    simulator = family if isinstance(family, device_models.DeviceModel) else _WeightNoise(family)
    variables = [
        v for v in perturbed_variables(model, batchnorm=batchnorm)
        if biases == "devices" or not is_bias(v)
    ]
    clean = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    generator = keras.random.SeedGenerator(seed)
    accuracy = np.zeros((len(settings), len(times), draws))
    loss = np.full_like(accuracy, np.nan)
    progress = keras.utils.Progbar(
        draws * len(times) * len(settings), verbose=verbose,
        stateful_metrics=["time", "accuracy"], unit_name="evaluation",
    )
    evaluate = make_evaluator(model, x, y, batch_size)
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
            )
        )
    return results
