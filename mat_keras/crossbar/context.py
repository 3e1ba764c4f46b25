"""What one chip forward computes its products with: crossbar, input ranges, noise stream.

A `ChipContext` is made for one call of a wrapped layer (`NoisyWeights` with
a crossbar). The layer forwards of `mat_keras.crossbar.forward` ask it for
each product by layer and matrix name; it finds that matrix's input ranges
and computes the product through the crossbar (`analog_product`), or, while
calibrating, computes it exactly and records the inputs each row tile sees
(`RangeRecorder`).
"""

import keras
import numpy as np
from keras import ops

from mat_keras.crossbar.analog import (
    analog_product,
    exact_product,
    prepare_matrix,
    row_tiles,
    tile_sums,
)
from mat_keras.crossbar.products import MATMUL


def range_key(layer, name):
    """The key of one matrix's input ranges: the layer (by identity) and the matrix name."""
    return (id(layer), name)


class RangeRecorder:
    """Accumulates, per matrix and row tile, the moments of the inputs the tile reads.

    `ranges()` then gives the anchors' data-initialised range, `std_alpha`
    standard deviations of a tile's inputs (aihwkit's `init_std_alpha`, 3 in
    its standard preset), 1 for a tile that read only zeros.
    """

    def __init__(self, std_alpha=3.0):
        self.std_alpha = float(std_alpha)
        self._moments = {}

    def record(self, key, x, shape, crossbar, product):
        """Adds the inputs `x` of the matrix `key` of `shape` to its tiles' moments."""
        x = ops.convert_to_numpy(x)
        tiles = self._moments.setdefault(key, {})
        for start, stop in row_tiles(shape, crossbar):
            values = np.asarray(ops.convert_to_numpy(product.tile_inputs(x, start, stop)), np.float64)
            count, total, squares = tiles.get((start, stop), (0, 0.0, 0.0))
            tiles[(start, stop)] = (count + values.size, total + values.sum(), squares + np.square(values).sum())

    def ranges(self, key):
        """One range per row tile of matrix `key` (top to bottom), or None when it read nothing."""
        tiles = self._moments.get(key)
        if not tiles:
            return None
        ranges = []
        for span in sorted(tiles):
            count, total, squares = tiles[span]
            mean = total / count
            spread = np.sqrt(max(squares / count - mean * mean, 0.0))
            ranges.append(self.std_alpha * spread if spread > 0 else 1.0)
        return np.asarray(ranges, dtype="float32")


class RecurrentStep:
    """The recurrent matrix of one RNN call, read once, and its per-step output noise.

    Attributes:
        product: `(h, noise_t) -> h @ recurrent_kernel` through the crossbar.
        noise: the per-step standard normal draws (leading axis: steps), or None.
    """

    def __init__(self, product, noise):
        self.product = product
        self.noise = noise


class ChipContext:
    """The crossbar, input ranges and noise of one chip forward.

    Args:
        crossbar: the `Crossbar`.
        input_ranges: `{range_key(layer, name): ranges}` of the matrices whose
            ranges are variables (learned or calibrated); others use the
            crossbar's number.
        seed: the `keras.random.SeedGenerator` of read and output noise.
        noise_gate: multiplies read and output noise.
        learn_range: whether the ranges receive the range gradient.
        recorder: a `RangeRecorder` to calibrate with, or None. While
            recording, products are exact.

    Attributes:
        losses: the learned ranges' decay terms, for the caller's `add_loss`.
    """

    def __init__(self, crossbar, input_ranges=None, seed=None, noise_gate=1.0, learn_range=False,
                 recorder=None):
        self.crossbar = crossbar
        self.input_ranges = input_ranges or {}
        self.seed = seed
        self.noise_gate = noise_gate
        self.learn_range = learn_range
        self.recorder = recorder
        self.losses = []

    def ranges(self, layer, name):
        return self.input_ranges.get(range_key(layer, name))

    def product(self, layer, name, x, matrix, product=MATMUL):
        """Returns the product of `x` with `layer`'s matrix `name` (given as `matrix`) on the chip."""
        matrix = ops.convert_to_tensor(matrix)
        if self.recorder is not None:
            self.recorder.record(range_key(layer, name), x, tuple(matrix.shape), self.crossbar, product)
            return exact_product(x, matrix, product)
        return analog_product(
            x, matrix, self.crossbar, product, self.ranges(layer, name), self.seed,
            self.noise_gate, self.learn_range, self.losses,
        )

    def stepper(self, layer, name, matrix, steps, sequences):
        """Returns the `RecurrentStep` of `layer`'s recurrent matrix for a sequence of `steps`.

        Each step's column sums get their own read and output noise, drawn
        here for all steps so that the loop itself draws nothing.
        """
        matrix = ops.convert_to_tensor(matrix)
        if self.recorder is not None or self.crossbar.is_ideal:
            def exact(h, noise_t):
                return exact_product(h, matrix)

            return RecurrentStep(exact, None)
        prepared = prepare_matrix(matrix, self.crossbar)
        noise = None
        if self.crossbar.is_noisy:
            batch = ops.shape(sequences)[0]
            shape = (steps, len(prepared.spans), batch, matrix.shape[1])
            noise = self.noise_gate * keras.random.normal(shape, seed=self.seed, dtype=matrix.dtype)
        ranges = self.ranges(layer, name)

        def step(h, noise_t):
            draws = None if noise_t is None else (lambda t, sums: noise_t[t])
            return tile_sums(
                h, prepared, self.crossbar, MATMUL, ranges, draws, self.learn_range, self.losses
            )

        return RecurrentStep(step, noise)
