"""How a layer's inputs drive the rows of one row tile: the products a crossbar computes.

A crossbar matrix (`rows x cols`, as the layer table unrolls the layer's
variable) computes column sums `sum_i x_i w_ij` over the rows of a tile. Two
kinds of layers feed it:

- `MatmulProduct`: each row is one element of the inputs' last axis (Dense,
  EinsumDense after its axes are brought in order, RNN kernels, pointwise
  and transposed convolutions): a row tile reads a slice of that axis.
- `KernelProduct`: each row is one `(offset, channel)` of a patch, as in a
  convolution (the layer table's im2col order, `kh x kw x cin`): the layer's
  own convolution computes every patch's column sums at once, so a row tile
  is the kernel with the rows of the other tiles zeroed. No patches are
  materialised; `T` tiles cost `T` convolutions, as the chip needs `T`
  tiles.

Both offer the same four operations to `mat_keras.crossbar.analog`.
"""

import math

import numpy as np
from keras import ops


class MatmulProduct:
    """Rows are the inputs' last axis: a tile's sums are `x[..., a:b] @ w[a:b]`.

    Example:

    >>> MATMUL.apply(x[..., 0:512], w_n[0:512])
    """

    #: A row is one input element, so a per-row factor scales the inputs.
    row_inputs = True
    columns_axis = -1

    def tile_inputs(self, x, start, stop):
        """The inputs that drive rows `start:stop`."""
        return x[..., start:stop]

    def tile_kernel(self, w_n, start, stop):
        """The tile's normalised weights, in the form `apply` takes."""
        return w_n[start:stop]

    def apply(self, x, kernel):
        """The column sums of `x` over `kernel`'s rows."""
        return ops.matmul(x, kernel)

    def mean_abs(self, x_n, start, stop):
        """`mean_i |x_i|` over the tile's rows, for each input vector, broadcastable to the sums."""
        return ops.mean(ops.abs(x_n), axis=-1, keepdims=True)


MATMUL = MatmulProduct()


class KernelProduct:
    """Rows are patch entries: a tile's sums are the layer's own op on a masked kernel.

    Args:
        op: `(x, kernel) -> column sums`, the layer's linear op
            (`layer.convolution_op`, `ops.depthwise_conv`, ...).
        spec: the layer table's `Matrix` of the kernel (its `roll` maps a
            matrix back onto the kernel).
        kernel_shape: the kernel variable's shape.
        columns_axis: the axis of the op's output that holds the columns
            (1 for `channels_first`, else -1).
        single_column: whether `op` takes a kernel of one output column
            (`kernel_shape[:-1] + (1,)`), so the mean input of every patch
            costs a one-channel convolution (not grouped or depthwise ops).

    Example:

    >>> product = KernelProduct(conv.convolution_op, spec, conv.kernel.shape)
    """

    row_inputs = False

    def __init__(self, op, spec, kernel_shape, columns_axis=-1, single_column=False):
        self.op = op
        self.spec = spec
        self.kernel_shape = tuple(kernel_shape)
        self.columns_axis = columns_axis
        self.single_column = single_column
        self.rows = math.prod(self.kernel_shape) // self._columns(self.kernel_shape)

    def _columns(self, shape):
        return math.prod(self.spec.unroll(np.zeros(shape)).shape[1:])

    def _row_mask(self, start, stop, dtype):
        mask = np.zeros((self.rows, 1), dtype="float32")
        mask[start:stop] = 1.0
        return ops.convert_to_tensor(mask, dtype=dtype)

    def tile_inputs(self, x, start, stop):
        # Every patch entry comes from x; the kernel selects the tile's rows.
        return x

    def tile_kernel(self, w_n, start, stop):
        masked = w_n * self._row_mask(start, stop, w_n.dtype)
        return self.spec.roll(masked, self.kernel_shape, ops)

    def apply(self, x, kernel):
        return self.op(x, kernel)

    def mean_abs(self, x_n, start, stop):
        if self.single_column:
            shape = self.kernel_shape[:-1] + (1,)
            ones = self._row_mask(start, stop, x_n.dtype)
        else:
            shape = self.kernel_shape
            ones = ops.ones((self.rows, self._columns(shape)), dtype=x_n.dtype)
            ones = ones * self._row_mask(start, stop, x_n.dtype)
        kernel = self.spec.roll(ones, shape, ops)
        return self.op(ops.abs(x_n), kernel) * (1.0 / (stop - start))
