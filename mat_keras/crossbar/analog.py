"""The analog product of one matrix, as a crossbar computes it, on `keras.ops`.

`analog_matmul(x, matrix, crossbar)` is `x @ matrix` computed tile by tile:
inputs normalised by the input range, clipped and DAC-rounded; weights
normalised by their scale; each row tile's column sums attenuated by IR drop,
given read and output noise, clipped to the output bound and ADC-rounded;
the tiles summed and scaled back (see `mat_keras.crossbar.config` for the
conventions). It runs inside compiled train steps on every backend.

Gradients (straight-through, as the anchors train through a chip):

- rounding (DAC, ADC) passes the gradient unchanged;
- clipping passes nothing for clipped values, and the input range gets the
  derivative of the clip itself: `+1` for every input clipped above, `-1`
  for every input clipped below (times the incoming gradient);
- noise, IR drop and the weight scale are constants (`stop_gradient`): like
  weight noise in MAT, they shape the forward pass the network learns to
  tolerate, and keep the backward pass at the cost of the plain one.

So where nothing clips and IR drop is off, the gradient equals the plain
product's gradient at the quantised inputs.
"""

import keras
import numpy as np
from keras import ops

from mat_keras.crossbar.tiles import tile_grid
from mat_keras.errors import InvalidArgumentError


def row_tiles(shape, crossbar):
    """Returns the `(start, stop)` row spans of the row tiles of a matrix.

    The split is the exporter's own (`tile_grid`), so a simulated tile holds
    exactly the rows an exported tile holds.

    Args:
        shape: `(rows, cols)` of the matrix.
        crossbar: a `Crossbar`.

    Returns:
        A list of `(start, stop)`, top to bottom.

    Example:

    >>> row_tiles((1200, 10), Crossbar(tile_rows=512))
    [(0, 512), (512, 1024), (1024, 1200)]
    """
    rows, cols = shape
    tile = (crossbar.tile_rows or rows, crossbar.tile_cols or cols)
    return sorted({(t.row, t.row + t.rows) for t in tile_grid((rows, cols), tile)})


def weight_scale(matrix, crossbar):
    """Returns the scale that maps `matrix` onto normalised conductances in [-1, 1].

    `max|w|` of each column (`weight_scaling="column"`, shape `(cols,)`) or of
    the whole matrix (`"tensor"`, a scalar); an all-zero column gets 1 so that
    it maps to zero conductance without a division by zero. Constant for the
    gradient.
    """
    magnitude = ops.abs(ops.stop_gradient(matrix))
    if crossbar.weight_scaling == "column":
        scale = ops.max(magnitude, axis=0)
    else:
        scale = ops.max(magnitude)
    return ops.where(scale > 0, scale, ops.ones_like(scale))


def quantize(x, steps, bound=1.0):
    """Rounds `x` to `steps` uniform steps over `[-bound, bound]`, straight-through.

    Example:

    >>> keras.ops.convert_to_numpy(quantize(keras.ops.convert_to_tensor([0.3]), steps=4))
    array([0.5], dtype=float32)
    """
    per_unit = steps / (2.0 * bound)  # steps per unit of x
    return x + ops.stop_gradient(ops.round(x * per_unit) / per_unit - x)


def normalise_inputs(x, input_range, steps=None, learn_range=True):
    """Returns `x` divided by the input range, clipped to [-1, 1] and DAC-rounded.

    The gradient with respect to `x` is 1 inside the range (rounding is
    straight-through) and 0 outside. With `learn_range`, the range gets the
    clip's own derivative: `+1` for each input clipped above and `-1` for
    each clipped below, times the incoming gradient in input units, so a loss
    hurt by clipping widens the range.

    Args:
        x: inputs.
        input_range: the range `r`, a scalar tensor or variable.
        steps: DAC steps over [-1, 1], or None (no rounding).
        learn_range: whether `input_range` receives a gradient.

    Returns:
        The normalised inputs, in [-1, 1].
    """
    held = ops.stop_gradient(input_range)
    scaled = x * (1.0 / held)
    clipped = ops.clip(scaled, -1.0, 1.0)
    normalised = clipped if steps is None else quantize(clipped, steps)
    if learn_range:
        # sign(scaled - clipped) is +1 above the range, -1 below, 0 inside;
        # the zero-valued term carries the range's gradient.
        beyond = ops.stop_gradient(ops.sign(scaled - clipped))
        normalised = normalised + (input_range - held) * (1.0 / held) * beyond
    return normalised


def ir_drop_profile(rows):
    """Returns `q_i`, the wire segments' summed share of current seen by row `i`.

    Row 0 is farthest from the column's converter. The segment below row `k`
    carries the currents of rows `0..k`; with the column's current spread
    evenly over its rows (`(k + 1) * m` for a mean current `m` per row), the
    voltage lost by row `i` is `r * m * sum_{k=i}^{n-1} (k + 1) = r * m * q_i`,
    `q_i = (n (n + 1) - i (i + 1)) / 2`.

    Example:

    >>> ir_drop_profile(3).tolist()
    [6.0, 5.0, 3.0]
    """
    i = np.arange(rows, dtype=np.float64)
    return (rows * (rows + 1) - i * (i + 1)) / 2.0


def ir_drop_attenuation(x_n, w_n, crossbar):
    """Returns what IR drop takes from a tile's column sums, in normalised units.

    A first-order model of our own, driven by aihwkit's two IR-drop numbers
    (`ir_drop`, `ir_drop_g_ratio`): the wire segment between two neighbouring
    devices of a column has resistance `R = 1 / (ir_drop_g_ratio * g_max)`;
    the voltage each device sees drops by the wire's resistance times the
    current of the devices that share the wire between it and the converter
    (a device's relative loss is `R * g_max * m * q_i`, see
    `ir_drop_profile`, with `m = mean_i |x_i| |w_i|` the column's mean
    normalised current per row, inputs and conductances at most 1). Column
    sum `j` becomes `sum_i x_i w_ij (1 - gamma m_j q_i)`, `gamma = ir_drop /
    ir_drop_g_ratio`. First order: currents are taken at the ideal voltages,
    valid while the loss is small (about 2 % for a 512-row tile at a mean
    current of 0.1 and `ir_drop = 1`).

    Args:
        x_n: normalised inputs of the tile, `(..., rows)`.
        w_n: normalised weights of the tile, `(rows, cols)`.
        crossbar: a `Crossbar` with `ir_drop > 0`.

    Returns:
        The loss of every column sum, `(..., cols)`, to subtract.
    """
    rows = w_n.shape[0]
    gamma = crossbar.ir_drop / crossbar.ir_drop_g_ratio
    mean_current = ops.matmul(ops.abs(x_n), ops.abs(w_n)) / rows
    profile = ops.convert_to_tensor(ir_drop_profile(rows)[:, None], dtype=w_n.dtype)
    return gamma * mean_current * ops.matmul(x_n, profile * w_n)


def _noise_sd(x_n, w_n, crossbar):
    """The sd of a tile's column sums from read and output noise together.

    Both are Gaussian and independent, so one draw of their combined sd
    stands for the two: half the random numbers.
    """
    variance = crossbar.output_noise**2
    if crossbar.read_noise > 0:
        variance = variance + crossbar.read_noise**2 * ops.matmul(
            ops.square(x_n), ops.abs(w_n)
        )
    return ops.sqrt(variance)


def _tile_sums(x_n, w_n, crossbar, draw):
    """One tile's column sums after IR drop, noise, output clipping and the ADC.

    `draw` is the tile's standard normal draw (gated), or None without noise.
    """
    y = ops.matmul(x_n, w_n)
    if crossbar.ir_drop > 0 or draw is not None:
        x_held, w_held = ops.stop_gradient(x_n), ops.stop_gradient(w_n)
        if crossbar.ir_drop > 0:
            y = y - ops.stop_gradient(ir_drop_attenuation(x_held, w_held, crossbar))
        if draw is not None:
            y = y + ops.stop_gradient(_noise_sd(x_held, w_held, crossbar) * draw)
    if crossbar.output_bound is not None:
        y = ops.clip(y, -crossbar.output_bound, crossbar.output_bound)
    if crossbar.output_steps is not None:
        y = quantize(y, crossbar.output_steps, crossbar.output_bound)
    return y


def resolve_input_ranges(crossbar, tiles, input_ranges):
    """Returns one input range per row tile: the given values or the crossbar's number."""
    if input_ranges is None:
        if isinstance(crossbar.input_range, str):
            raise InvalidArgumentError(
                f"A crossbar with a {crossbar.input_range} input range needs its "
                "ranges (input_ranges=), one per row tile."
            )
        return [crossbar.input_range] * tiles
    if ops.ndim(input_ranges) == 0:
        return [input_ranges] * tiles
    if input_ranges.shape[0] != tiles:
        raise InvalidArgumentError(
            f"input_ranges has {input_ranges.shape[0]} values for {tiles} row tiles."
        )
    return [input_ranges[t] for t in range(tiles)]


def analog_matmul(
    x, matrix, crossbar, input_ranges=None, seed=None, noise_gate=1.0, learn_range=None
):
    """Returns `x @ matrix` as the crossbar computes it.

    Args:
        x: inputs, `(..., rows)`.
        matrix: the weight matrix, `(rows, cols)`, in weight units (the
            devices' programmed state: pass noisy weights to add programming
            noise or drift).
        crossbar: a `Crossbar` (see `mat_keras.crossbar.get`).
        input_ranges: None (the crossbar's fixed range), a scalar, or one
            range per row tile (shape `(tiles,)`); learned ranges are
            variables, which then receive the range gradient.
        seed: a `keras.random.SeedGenerator` (a fresh draw at every call, also
            compiled), an integer or None, for read and output noise.
        noise_gate: multiplies the read and output noise (0 switches them
            off), as the wrapper's noise gate does.
        learn_range: whether the input ranges receive the range gradient;
            None: when the crossbar's input range is `"learned"`.

    Returns:
        `(..., cols)`, in the units of `x @ matrix`.

    Example:

    >>> chip = mat_keras.crossbar.get("standard")
    >>> y = analog_matmul(x, kernel, chip, input_ranges=3.0, seed=0)
    """
    matrix = ops.convert_to_tensor(matrix)
    x = ops.cast(x, matrix.dtype)
    if crossbar.is_ideal:
        return ops.matmul(x, matrix)
    if learn_range is None:
        learn_range = crossbar.input_range == "learned"
    spans = row_tiles(tuple(matrix.shape), crossbar)
    ranges = resolve_input_ranges(crossbar, len(spans), input_ranges)
    scale = weight_scale(matrix, crossbar)
    w_n = matrix / scale
    draws = None
    if crossbar.is_noisy:
        # One draw for every tile: one advance of the generator per call.
        shape = (len(spans),) + tuple(ops.shape(x)[:-1]) + (matrix.shape[1],)
        draws = noise_gate * keras.random.normal(shape, seed=seed, dtype=matrix.dtype)
    total = None
    for t, ((start, stop), input_range) in enumerate(zip(spans, ranges)):
        input_range = ops.cast(input_range, matrix.dtype)
        x_n = normalise_inputs(
            x[..., start:stop], input_range, crossbar.input_steps, learn_range
        )
        draw = None if draws is None else draws[t]
        sums = _tile_sums(x_n, w_n[start:stop], crossbar, draw)
        sums = sums * ops.stop_gradient(input_range)
        total = sums if total is None else total + sums
    return total * scale


def input_ranges_from_data(x, shape, crossbar, std_alpha=3.0):
    """Returns per-row-tile input ranges calibrated from sample inputs.

    The anchors' rule for initialising a range from data: `std_alpha` times
    the standard deviation of the tile's inputs (aihwkit's `init_std_alpha`,
    3.0 in its standard preset); a tile of all-zero inputs gets 1.

    Args:
        x: sample inputs, `(..., rows)`.
        shape: `(rows, cols)` of the matrix.
        crossbar: a `Crossbar`.
        std_alpha: how many standard deviations the range spans.

    Returns:
        A numpy array of one range per row tile.
    """
    x = np.asarray(ops.convert_to_numpy(x), dtype=np.float64)
    ranges = []
    for start, stop in row_tiles(shape, crossbar):
        spread = float(np.std(x[..., start:stop]))
        ranges.append(std_alpha * spread if spread > 0 else 1.0)
    return np.asarray(ranges, dtype=np.float32)
