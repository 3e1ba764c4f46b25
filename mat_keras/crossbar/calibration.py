"""Setting a model's crossbar input ranges from data.

A chip's DAC spends its steps over the input range: too wide and small
inputs round to zero, too narrow and large ones clip. The anchors set a
range from the first batches it sees (aihwkit's `init_from_data`, `3` standard
deviations of the tile's inputs, `init_std_alpha`). `calibrate_input_ranges`
does this for every row tile of every wrapped matrix: it runs the model
eagerly on sample inputs with exact products, records what each tile reads,
and assigns the ranges.
"""

import numpy as np

from mat_keras.crossbar.context import RangeRecorder
from mat_keras.crossbar.products import MATMUL
from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer, check_positive


def _chip_layers(model):
    from mat_keras.wrapping import noisy_layers

    return [layer for layer in noisy_layers(model) if layer.ranges_mode is not None]


def needs_calibration(model):
    """Whether a model's crossbar ranges were neither trained nor calibrated yet."""
    return any(not layer.input_ranges_are_set for layer in _chip_layers(model))


def calibrate_if_needed(model, calibration_data, missing):
    """Calibrates `model`'s input ranges when they were never set (`needs_calibration`).

    Args:
        model: a model with crossbar wrappers.
        calibration_data: sample inputs, or None.
        missing: the sentence to raise when ranges need calibrating and
            `calibration_data` is None.

    Raises:
        InvalidArgumentError: `missing`.
    """
    if not needs_calibration(model):
        return
    if calibration_data is None:
        raise InvalidArgumentError(missing)
    calibrate_input_ranges(model, calibration_data)


def calibrate_input_ranges(model, x, batch_size=256, samples=1024, std_alpha=3.0, mark=True):
    """Sets every crossbar input range of `model` from the inputs its tile reads.

    Args:
        model: a model with `NoisyWeights` layers that have a crossbar with a
            learned or calibrated input range.
        x: sample inputs, an array (its first `samples` are used).
        batch_size: batch size of the eager passes.
        samples: how many inputs to use.
        std_alpha: the range is this many standard deviations of a tile's
            inputs (aihwkit's `init_std_alpha`).
        mark: whether to mark the ranges as set, so that sweeps do not
            calibrate them again.

    Returns:
        `{variable path: ranges}` of what was assigned.

    Raises:
        InvalidArgumentError: the model has no such layers, or `x` is not an
            array of at least one input.

    Example:

    >>> mat_keras.crossbar.calibrate_input_ranges(chip_model, x_train[:1024])
    """
    layers = _chip_layers(model)
    if not layers:
        raise InvalidArgumentError(
            f"Model '{model.name}' has no wrapped layers with learned or calibrated crossbar "
            "input ranges to calibrate."
        )
    if not hasattr(x, "shape") or len(x) == 0:
        raise InvalidArgumentError("Calibration needs sample inputs: an array of at least one input.")
    batch_size = check_integer(batch_size, "batch_size")
    samples = check_integer(samples, "samples")
    std_alpha = check_positive(std_alpha, "std_alpha")
    recorder = RangeRecorder(std_alpha)
    x = np.asarray(x)[:samples]
    for layer in layers:
        layer._recorder = recorder
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size], training=False)
    finally:
        for layer in layers:
            layer._recorder = None
    assigned = {}
    for layer in layers:
        for key, variable in layer.input_ranges.items():
            ranges = recorder.ranges(key)
            if ranges is None:
                continue
            variable.assign(ranges.astype(variable.dtype))
            assigned[variable.path] = ranges
        if mark:
            layer.ranges_set.assign(1.0)
    return assigned


def input_ranges_from_data(x, shape, crossbar, std_alpha=3.0):
    """Returns per-row-tile input ranges calibrated from sample inputs.

    The anchors' rule for initialising a range from data: `std_alpha` times
    the standard deviation of the tile's inputs (aihwkit's `init_std_alpha`,
    3.0 in its standard preset); a tile of all-zero inputs gets 1. The rule
    is `RangeRecorder`'s, which `calibrate_input_ranges` applies to models.

    Args:
        x: sample inputs, `(..., rows)`.
        shape: `(rows, cols)` of the matrix.
        crossbar: a `Crossbar`.
        std_alpha: how many standard deviations the range spans.

    Returns:
        A numpy array of one range per row tile.
    """
    recorder = RangeRecorder(std_alpha)
    recorder.record("inputs", x, tuple(shape), crossbar, MATMUL)
    return recorder.ranges("inputs")
