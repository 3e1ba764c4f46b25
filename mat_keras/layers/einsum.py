"""EinsumDense kernels as crossbar matrices: which kernel axes are rows, which columns.

An EinsumDense kernel is a matrix when it lists its contracted axes (in the
input, not in the output) first, then its output axes (in the output, not in
the input): then `kernel.reshape(-1, columns)` is its matrix. `"abc,cd->abd"`
is c x d, MultiHeadAttention's `"abc,cde->abde"` c x (d*e) and
`"abcd,cde->abe"` (c*d) x e. Other equations (batched matrices: a kernel axis
in the input and the output; another order; ellipses) are refused.
"""

import re

from mat_keras.errors import UnsupportedLayerError

# Keras's own form of an EinsumDense equation, without ellipses.
_EQUATION = re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)")


def einsum_kernel_axes(equation, name="einsum_dense"):
    """Splits the kernel axes of an EinsumDense equation into rows and columns.

    Args:
        equation: the layer's `"input,kernel->output"` equation.
        name: the layer's name or path, for error messages.

    Returns:
        `(contracted, produced, output)`: the kernel's contracted letters
        (rows), its output letters (columns), both in kernel order, and the
        equation's output letters.

    Raises:
        UnsupportedLayerError: the kernel is not `[contracted..., output...]`;
            the message names the equation.

    Example:

    >>> einsum_kernel_axes("abc,cde->abde")
    ('c', 'de', 'abde')
    """

    def unsupported(reason):
        return UnsupportedLayerError(
            f"Layer '{name}' (EinsumDense '{equation}') cannot be a crossbar matrix: {reason}; "
            "supported are kernels with the contracted axes first, then the output axes, "
            "as in 'abc,cd->abd'."
        )

    if "." in equation:
        raise unsupported("ellipses are not supported")
    match = _EQUATION.fullmatch(equation)
    if match is None:
        raise unsupported("it is not of the form 'input,kernel->output'")
    inputs, kernel, output = match.groups()
    batched = "".join(c for c in kernel if c in inputs and c in output)
    if batched:
        raise unsupported(f"kernel axes '{batched}' are in the input and the output (batched matrices)")
    contracted = "".join(c for c in kernel if c in inputs)
    produced = "".join(c for c in kernel if c in output)
    if not contracted:
        raise unsupported("no kernel axis is contracted with the input")
    if kernel != contracted + produced or len(set(kernel)) != len(kernel):
        raise unsupported(f"kernel axes '{kernel}' are not the contracted '{contracted}' then the output '{produced}'")
    return contracted, produced, output


def einsum_bias_row_error(layer, produced, output):
    """Why the bias of an EinsumDense cannot be a bias row, or None.

    Args:
        layer: the EinsumDense layer.
        produced: its kernel's output letters (`einsum_kernel_axes`).
        output: the equation's output letters.

    Returns:
        A reason (str), or None when the bias is one value per column.
    """
    if not layer.bias_axes:
        return None
    # Keras shapes the bias like the output axes from the first bias axis
    # on, with 1 on the axes not in `bias_axes`: it is one value per column
    # only when those axes are the kernel's output axes, all biased.
    spanned = output[min(output.find(c) for c in layer.bias_axes):]
    if spanned == produced and set(layer.bias_axes) == set(produced):
        return None
    return (
        f"its bias over axes '{layer.bias_axes}' of '{layer.equation}' is not one value "
        f"per column (the kernel's output axes '{produced}')"
    )
