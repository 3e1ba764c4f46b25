"""A small convolutional network for Fashion-MNIST (28 x 28 grey images).

Sized to train to about 91 % test accuracy in a quarter of an hour on two
CPU cores: two convolution blocks with batch normalisation, then one hidden
Dense layer.
"""

import keras

from mat_keras import validation
from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer
from mat_keras.zoo.models.shapes import as_tuple
from mat_keras.zoo.weights import load_zoo_weights

_SIDE = 28


def fashion_cnn(filters=(32, 64), dense_units=128, dropout=0.25, num_classes=10, input_shape=(28, 28), weights=None):
    """Returns a small BatchNorm CNN for 28 x 28 grey images, uncompiled.

    Per entry of `filters`: a 3x3 convolution (no bias: batch normalisation
    makes it redundant), batch normalisation, ReLU and 2x2 max pooling;
    then flatten, a `dense_units` ReLU layer, dropout and the logits.

    Args:
        filters: filters of each convolution block.
        dense_units: width of the hidden Dense layer.
        dropout: dropout rate before the logits, in [0, 1).
        num_classes: number of output logits (>= 2).
        input_shape: `(28, 28)` as `zoo.load_dataset("fashion-mnist")`
            gives the images, or `(28, 28, 1)`.
        weights: None for random initialisation; `"mat"` or `"vanilla"`
            for the zoo's weights trained on Fashion-MNIST (shipped,
            offline); a registry name; or the path of a `.weights.h5` file.

    Returns:
        A `keras.Sequential` model with 421,834 weights at the defaults
        (421,642 trainable, 192 batch-normalisation moving statistics).

    Raises:
        InvalidArgumentError: an input shape other than 28 x 28 grey images,
            or a bad size.

    Example:

    >>> model = mat_keras.zoo.fashion_cnn()
    >>> model.count_params()
    421834
    >>> model = mat_keras.zoo.fashion_cnn(weights="mat")  # shipped, offline
    """
    check_integer(num_classes, "num_classes", minimum=2)
    input_shape = _check_input_shape(input_shape)
    filters = _check_filters(filters)
    dense_units = validation.check_integer(dense_units, "dense_units")
    dropout = validation.check_fraction(dropout, "dropout")
    if dropout >= 1:
        raise InvalidArgumentError(f"dropout must be below 1, got {dropout!r}.")
    layers = [keras.Input(input_shape)]
    if len(input_shape) == 2:
        layers.append(keras.layers.Reshape((*input_shape, 1), name="add_channel"))
    for block, width in enumerate(filters, start=1):
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{block}"),
            keras.layers.BatchNormalization(name=f"conv{block}_bn"),
            keras.layers.ReLU(name=f"conv{block}_relu"),
            keras.layers.MaxPooling2D(2, name=f"pool{block}"),
        ]
    layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(dense_units, activation="relu", name="fc"),
        keras.layers.Dropout(dropout, name="dropout"),
        keras.layers.Dense(num_classes, name="logits"),
    ]
    return load_zoo_weights(keras.Sequential(layers, name="fashion_cnn"), weights, "fashion_cnn")


def _check_input_shape(input_shape):
    shape = as_tuple(input_shape)
    if shape not in ((_SIDE, _SIDE), (_SIDE, _SIDE, 1)):
        raise InvalidArgumentError(
            f"fashion_cnn takes 28 x 28 grey images, input_shape (28, 28) or (28, 28, 1), got {input_shape!r}; "
            f"for colour images use zoo.cifar_cnn."
        )
    return shape


def _check_filters(filters):
    widths = as_tuple(filters)
    if not widths or len(widths) > 3:
        # Each block halves the side: 28 -> 14 -> 7 -> 3.
        raise InvalidArgumentError(f"filters must list 1 to 3 block widths, got {filters!r}.")
    return tuple(validation.check_integer(width, "filters") for width in widths)
