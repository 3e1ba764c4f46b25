"""The analog product of one matrix, as a crossbar computes it, on `keras.ops`.

`analog_product(x, matrix, crossbar, product)` computes the product of a
layer's inputs with one of its matrices tile by tile: inputs normalised by
the input range, clipped and DAC-rounded; weights normalised by their scale
and read with read noise; each row tile's column sums attenuated by IR drop,
given output noise, clipped to the output bound and ADC-rounded; the tiles
summed and scaled back (see `mat_keras.crossbar.config` for the
conventions). `product` says how the inputs drive the rows
(`mat_keras.crossbar.products`): a slice of the last axis (`analog_matmul`)
or a convolution's patches. It runs inside compiled train steps on every
backend.

Noise draws. Every column sum of every input vector gets fresh noise: output
noise of sd `output_noise` and read noise, each device's read deviating by
`read_noise * sqrt(|w_n|)` (aihwkit's PCM_READ form), which sums over a
column to sd `read_noise * sqrt(sum_i x_i**2 |w_i|)`. Both are Gaussian and
independent, so one draw of their combined sd stands for the two: one random
number per column sum, not one per device (on a CPU, random numbers cost
more than the product that gives the read noise its sd).

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

from mat_keras.crossbar.products import MATMUL
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
    """Returns `x` clipped to the input range, divided by it and DAC-rounded.

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
    if learn_range:
        # Clipped inputs become sign(x) * r, whose derivative in r is the clip's own;
        # cheaper to differentiate than a clip with tensor bounds.
        clipped = ops.where(ops.abs(x) <= held, x, ops.sign(x) * input_range)
    else:
        clipped = ops.clip(x, -held, held)
    normalised = clipped * (1.0 / held)
    return normalised if steps is None else quantize(normalised, steps)


def range_decay_term(x, input_range, crossbar):
    """A zero-valued loss term whose gradient pulls a learned input range down.

    The anchors' rule: while more than `input_min_fraction` of a tile's
    inputs lie inside the range, the range's gradient gets `decay * r`, so
    a range wider than its inputs need shrinks and spends the DAC's steps on
    them. The term is `(r - stop_gradient(r)) * stop_gradient(decay * r * c)`,
    `c` 1 or 0: its value is 0, its gradient that push.

    Args:
        x: the tile's inputs.
        input_range: the range variable's value, with its gradient.
        crossbar: the `Crossbar`.

    Returns:
        A scalar tensor, 0 in value.
    """
    held = ops.stop_gradient(input_range)
    inside = ops.mean(ops.cast(ops.abs(ops.stop_gradient(x)) <= held, held.dtype))
    pull = ops.cast(inside > crossbar.input_min_fraction, held.dtype)
    return (input_range - held) * ops.stop_gradient(crossbar.input_range_decay * held * pull)


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


def ir_drop_loss(mean_input, mean_weight, crossbar, rows):
    """Returns each row's relative loss to IR drop, `gamma * m * q_i`, shape `(..., rows)`.

    A first-order model of our own, driven by aihwkit's two IR-drop numbers
    (`ir_drop`, `ir_drop_g_ratio`): the wire segment between two neighbouring
    devices of a column has resistance `R = 1 / (ir_drop_g_ratio * g_max)`;
    the voltage a device sees drops by the wire's resistance times the
    currents of the devices that share the wire between it and the
    converter. With the current spread evenly over the rows (see
    `ir_drop_profile`) at the tile's mean normalised device current
    `m = mean_i |x_i| * mean_ij |w_ij|` (inputs and conductances at most 1),
    device `i` loses the fraction `gamma * m * q_i`, `gamma = ir_drop /
    ir_drop_g_ratio`, and column sum `j` becomes
    `sum_i x_i w_ij (1 - gamma m q_i)`. First order: currents are taken at
    the ideal voltages, valid while the loss is small (about 2 % for a full
    512-row tile at `m = 0.1` and `ir_drop = 1`). The mean current is the
    tile's, the same for each of its columns: a column-averaged model, which
    lets the loss scale the inputs instead of costing a second product.

    Args:
        mean_input: `mean_i |x_i|` of each input vector, `(..., 1)`.
        mean_weight: `mean_ij |w_ij|` of the tile, a scalar.
        crossbar: a `Crossbar` with `ir_drop > 0`.
        rows: the tile's rows.

    Returns:
        The relative loss of every row, for every input vector.
    """
    gamma = crossbar.ir_drop / crossbar.ir_drop_g_ratio
    profile = ops.convert_to_tensor(ir_drop_profile(rows), dtype=mean_input.dtype)
    return (gamma * mean_weight) * mean_input * profile


class PreparedMatrix:
    """A matrix as its tiles hold it during one call: scaled and split.

    Attributes:
        weights: the weights in weight units. Dividing a tile's column sums
            by `scale` gives them in normalised units: the same as summing
            normalised conductances, at a cost per output, not per weight.
        scale: the column (or tensor) scale that maps the weights onto [-1, 1].
        spans: the row tiles' `(start, stop)`.
    """

    def __init__(self, weights, scale, spans):
        self.weights = weights
        self.scale = scale
        self.inverse_scale = 1.0 / scale
        self.spans = spans


def prepare_matrix(matrix, crossbar):
    """Scales a matrix and splits it into row tiles.

    Args:
        matrix: the weight matrix, `(rows, cols)`, in weight units.
        crossbar: the `Crossbar`.

    Returns:
        A `PreparedMatrix`.
    """
    matrix = ops.convert_to_tensor(matrix)
    return PreparedMatrix(matrix, weight_scale(matrix, crossbar), row_tiles(tuple(matrix.shape), crossbar))


def noise_sd(x_n, kernel, inverse_scale, product, crossbar):
    """The sd of a tile's column sums from read and output noise together, normalised units."""
    variance = crossbar.output_noise**2
    if crossbar.read_noise > 0:
        reads = product.apply(ops.square(x_n), ops.abs(kernel)) * inverse_scale
        variance = variance + crossbar.read_noise**2 * reads
    return ops.sqrt(variance)


def _per_column(values, like, axis):
    """`values` (one per column) shaped to broadcast along `axis` of `like`."""
    if axis == -1 or axis == ops.ndim(like) - 1 or ops.ndim(values) == 0:
        return values
    shape = [1] * ops.ndim(like)
    shape[axis] = -1
    return ops.reshape(values, shape)


def _convert(y, crossbar):
    """Clips a tile's column sums to the output bound and ADC-rounds them."""
    if crossbar.output_bound is not None:
        y = ops.clip(y, -crossbar.output_bound, crossbar.output_bound)
    if crossbar.output_steps is not None:
        y = quantize(y, crossbar.output_steps, crossbar.output_bound)
    return y


def tile_sums(x, prepared, crossbar, product=MATMUL, input_ranges=None, output_draws=None,
              learn_range=None, losses=None):
    """Returns the periphery's result: every tile's converted sums, added and scaled back.

    Args:
        x: the layer's inputs as `product` takes them.
        prepared: the `PreparedMatrix`.
        crossbar: the `Crossbar`.
        product: how the inputs drive the rows (`mat_keras.crossbar.products`).
        input_ranges: see `analog_product`.
        output_draws: None, or a callable `tile, sums -> standard normal
            draw` shaped like the sums (gated), for read and output noise.
        learn_range: whether the ranges receive the range gradient.
        losses: a list to append the learned ranges' decay terms to, or None.

    Returns:
        The column outputs, in the units of the exact product.
    """
    if learn_range is None:
        learn_range = crossbar.input_range == "learned"
    dtype = prepared.weights.dtype
    x = ops.cast(x, dtype)
    ranges = resolve_input_ranges(crossbar, len(prepared.spans), input_ranges)
    total = None
    for t, ((start, stop), input_range) in enumerate(zip(prepared.spans, ranges)):
        input_range = ops.cast(input_range, dtype)
        x_t = product.tile_inputs(x, start, stop)
        x_n = normalise_inputs(x_t, input_range, crossbar.input_steps, learn_range)
        if learn_range and losses is not None and crossbar.input_range_decay > 0:
            losses.append(range_decay_term(x_t, input_range, crossbar))
        kernel = product.tile_kernel(prepared.weights, start, stop)
        inverse = _per_column(prepared.inverse_scale, x_n, product.columns_axis)
        sums = _analog_sums(x_n, kernel, inverse, product, crossbar, start, stop)
        if output_draws is not None:
            sd = noise_sd(ops.stop_gradient(x_n), ops.stop_gradient(kernel), inverse, product, crossbar)
            sums = sums + ops.stop_gradient(sd * output_draws(t, sums))
        sums = _convert(sums, crossbar) * ops.stop_gradient(input_range)
        total = sums if total is None else total + sums
    return total * _per_column(prepared.scale, total, product.columns_axis)


def _analog_sums(x_n, kernel, inverse_scale, product, crossbar, start, stop):
    """A tile's column sums of normalised inputs and conductances, with IR drop (forward only)."""
    if crossbar.ir_drop == 0:
        return product.apply(x_n, kernel) * inverse_scale
    held = ops.stop_gradient(x_n)
    magnitude = ops.abs(ops.stop_gradient(kernel))
    if product.row_inputs:
        mean_weight = ops.mean(ops.mean(magnitude, axis=0) * inverse_scale)
        loss = ir_drop_loss(product.mean_abs(held, start, stop), mean_weight, crossbar, stop - start)
        # Each row's loss scales its input: the same sums at the cost of one product.
        return product.apply(x_n - ops.stop_gradient(held * loss), kernel) * inverse_scale
    # Patch rows: the kernel's mean over its tile's rows only (others are zero).
    rows = product.rows
    unrolled = product.spec.unroll(magnitude, ops) * ops.reshape(inverse_scale, (1, -1))
    mean_weight = ops.mean(unrolled) * (rows / (stop - start))
    profile = np.zeros((rows, 1), dtype="float32")
    profile[start:stop, 0] = ir_drop_profile(stop - start)
    gamma = crossbar.ir_drop / crossbar.ir_drop_g_ratio
    weighted = product.spec.roll(
        product.spec.unroll(ops.stop_gradient(kernel), ops) * ops.convert_to_tensor(profile, kernel.dtype),
        product.kernel_shape,
        ops,
    )
    lost = gamma * mean_weight * product.mean_abs(held, start, stop) * product.apply(held, weighted)
    return (product.apply(x_n, kernel) - ops.stop_gradient(lost)) * inverse_scale


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


def noise_draws(crossbar, seed, noise_gate=1.0):
    """Returns `tile, sums -> gated standard normal draw` for read and output noise, or None.

    Each call draws for one tile's sums; the generator advances once per tile.
    """
    if not crossbar.is_noisy:
        return None

    def draw(tile, sums):
        return noise_gate * keras.random.normal(ops.shape(sums), seed=seed, dtype=sums.dtype)

    return draw


def exact_product(x, matrix, product=MATMUL):
    """Returns the exact product of `x` with `matrix`, as `product` drives the rows: one op, all rows."""
    matrix = ops.convert_to_tensor(matrix)
    return product.apply(ops.cast(x, matrix.dtype), product.tile_kernel(matrix, 0, matrix.shape[0]))


def analog_product(x, matrix, crossbar, product=MATMUL, input_ranges=None, seed=None,
                   noise_gate=1.0, learn_range=None, losses=None):
    """Returns the product of `x` with `matrix` as the crossbar computes it.

    Args:
        x: the layer's inputs, as `product` takes them (`(..., rows)` for
            the default `MATMUL`).
        matrix: the weight matrix, `(rows, cols)`, in weight units (the
            devices' programmed state: pass noisy weights to add programming
            noise or drift).
        crossbar: a `Crossbar` (see `mat_keras.crossbar.get`).
        product: how the inputs drive the rows (`mat_keras.crossbar.products`).
        input_ranges: None (the crossbar's fixed range), a scalar, or one
            range per row tile (shape `(tiles,)`); learned ranges are
            variables, which then receive the range gradient.
        seed: a `keras.random.SeedGenerator` (a fresh draw at every call, also
            compiled), an integer or None, for read and output noise.
        noise_gate: multiplies the read and output noise (0 switches them
            off), as the wrapper's noise gate does.
        learn_range: whether the input ranges receive the range gradient;
            None: when the crossbar's input range is `"learned"`.
        losses: a list that collects the learned ranges' decay terms (see
            `range_decay_term`), or None.

    Returns:
        The product, in the units of the exact one.

    Example:

    >>> chip = mat_keras.crossbar.get("standard")
    >>> y = analog_product(x, kernel, chip, input_ranges=3.0, seed=0)
    """
    matrix = ops.convert_to_tensor(matrix)
    if crossbar.is_ideal:
        # Tiles of exact sums add up to the exact product: one op computes it.
        return exact_product(x, matrix, product)
    if isinstance(seed, int):
        # One generator for the read and the output draws, so they differ.
        seed = keras.random.SeedGenerator(seed)
    prepared = prepare_matrix(matrix, crossbar)
    draws = noise_draws(crossbar, seed, noise_gate)
    return tile_sums(x, prepared, crossbar, product, input_ranges, draws, learn_range, losses)


def analog_matmul(x, matrix, crossbar, input_ranges=None, seed=None, noise_gate=1.0, learn_range=None):
    """Returns `x @ matrix` as the crossbar computes it: `analog_product` of a dense layer.

    Example:

    >>> chip = mat_keras.crossbar.get("standard")
    >>> y = analog_matmul(x, kernel, chip, input_ranges=3.0, seed=0)
    """
    return analog_product(x, matrix, crossbar, MATMUL, input_ranges, seed, noise_gate, learn_range)
