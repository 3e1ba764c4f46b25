"""The reference implementation's CIFAR networks: a compact VGG-style CNN and MobileNetV2.

Both take 32x32 RGB images normalised as `zoo.load_dataset("cifar10")` gives
them and output logits for CIFAR-10 or CIFAR-100 (`num_classes=100`).
"""

import keras

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer, check_number, check_positive
from mat_keras.zoo.models.shapes import as_tuple, is_size
from mat_keras.zoo.weights import load_zoo_weights

# The reference implementation's CIFAR table of inverted-residual stages: expansion t, output
# channels c, repeats n, first stride s. Two strides of 1 where ImageNet's
# table has 2 keep enough resolution for 32x32 inputs.
CIFAR_MOBILENETV2_BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 1),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

_CNN_FILTERS = (32, 64, 128)


def cifar_cnn(num_classes=10, input_shape=(32, 32, 3), weights=None):
    """Returns a compact VGG-style CIFAR CNN, uncompiled.

    Three blocks of two 3x3 convolutions (32, 64, 128 filters), each followed
    by batch normalisation and ReLU, each block ending in 2x2 max pooling;
    then a 128-unit ReLU Dense layer, dropout 0.2 and the classifier. The
    convolutions have no bias, which batch normalisation makes redundant.

    Args:
        num_classes: number of output logits (>= 2): 10 or 100 for CIFAR.
        input_shape: `(height, width, channels)`, height and width at least 8.
        weights: None for random initialisation.

    Returns:
        A `keras.Sequential` model with 551,914 weights at the defaults
        (551,018 trainable, 896 batch-normalisation moving statistics);
        563,524 with `num_classes=100`.

    Example:

    >>> model = mat_keras.zoo.cifar_cnn()
    >>> model.count_params()
    551914
    """
    check_integer(num_classes, "num_classes", minimum=2)
    input_shape = _check_image_shape(input_shape, min_size=8)
    layers = [keras.Input(input_shape)]
    for block, filters in enumerate(_CNN_FILTERS, start=1):
        for conv in (1, 2):
            name = f"block{block}_conv{conv}"
            layers += [
                keras.layers.Conv2D(
                    filters, 3, padding="same", use_bias=False, name=name
                ),
                keras.layers.BatchNormalization(name=f"{name}_bn"),
                keras.layers.ReLU(name=f"{name}_relu"),
            ]
        layers.append(keras.layers.MaxPooling2D(2, name=f"block{block}_pool"))
    layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(128, activation="relu", name="fc"),
        keras.layers.Dropout(0.2, name="dropout"),
        keras.layers.Dense(num_classes, name="logits"),
    ]
    return load_zoo_weights(keras.Sequential(layers, name="cifar_cnn"), weights, "cifar_cnn")


def cifar_mobilenetv2(
    num_classes=10,
    width_multiplier=0.4,
    input_shape=(32, 32, 3),
    dropout=0.2,
    weights=None,
):
    """Returns the reference implementation's CIFAR MobileNetV2, uncompiled.

    MobileNetV2 (Sandler et al., 2018) with the CIFAR stage table
    `CIFAR_MOBILENETV2_BLOCKS` and a stride-1 stem: a 3x3 convolution with
    `32 * width` filters, 17 inverted-residual blocks (1x1 expansion, 3x3
    depthwise, linear 1x1 projection; a residual connection where the stride
    is 1 and the channels match), a 1x1 convolution to 1280 channels (scaled
    by the width only above 1, as torchvision does), global average pooling,
    dropout and the Dense classifier. Every convolution is followed by batch
    normalisation and, except the projections, ReLU6. Channel counts are
    rounded to multiples of 8 (never more than 10 % below the scaled value).

    Args:
        num_classes: number of output logits (>= 2): 10 or 100 for CIFAR.
        width_multiplier: channel multiplier (> 0); the reference implementation uses 0.4.
        input_shape: `(height, width, channels)`, height and width at least 4.
        dropout: dropout rate before the classifier, in [0, 1).
        weights: None for random initialisation.

    Returns:
        A functional `keras.Model` with 518,314 weights at the defaults
        (502,538 trainable, 15,776 batch-normalisation moving statistics);
        633,604 with `num_classes=100`. At `width_multiplier=1.0` it has
        2,236,682 trainable weights, as torchvision's CIFAR variant.

    Example:

    >>> model = mat_keras.zoo.cifar_mobilenetv2(num_classes=100)
    >>> model.count_params()
    633604
    """
    check_integer(num_classes, "num_classes", minimum=2)
    check_positive(width_multiplier, "width_multiplier")
    # A dropout of 1 drops everything: the range is [0, 1), not a fraction's [0, 1].
    if check_number(dropout, "dropout", minimum=0.0) >= 1:
        raise InvalidArgumentError(f"dropout must be in [0, 1), got {dropout!r}.")
    input_shape = _check_image_shape(input_shape, min_size=4)

    inputs = keras.Input(input_shape)
    channels = make_divisible(32 * width_multiplier)
    x = _conv_bn(inputs, channels, 3, "stem")
    block = 0
    for expansion, filters, repeats, stride in CIFAR_MOBILENETV2_BLOCKS:
        out_channels = make_divisible(filters * width_multiplier)
        for i in range(repeats):
            x = _inverted_residual(
                x, expansion, out_channels, stride if i == 0 else 1, f"block{block}"
            )
            block += 1
    x = _conv_bn(x, make_divisible(1280 * max(1.0, width_multiplier)), 1, "head")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return load_zoo_weights(
        keras.Model(inputs, outputs, name="cifar_mobilenetv2"), weights, "cifar_mobilenetv2"
    )


def make_divisible(value, divisor=8):
    """Rounds a channel count to the nearest multiple of `divisor`.

    The result is at least `divisor` and never more than 10 % below `value`
    (the rule of the reference MobileNet implementations).

    Args:
        value: scaled channel count.
        divisor: the multiple to round to.

    Returns:
        An int.

    Example:

    >>> make_divisible(32 * 0.4)
    16
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _inverted_residual(x, expansion, out_channels, stride, name):
    """Expand (1x1) -> depthwise (3x3) -> project (1x1, linear), + residual."""
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv_bn(y, int(round(in_channels * expansion)), 1, f"{name}_expand")
    y = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding="same", use_bias=False, name=f"{name}_depthwise"
    )(y)
    y = keras.layers.BatchNormalization(name=f"{name}_depthwise_bn")(y)
    y = keras.layers.ReLU(6.0, name=f"{name}_depthwise_relu")(y)
    y = _conv_bn(y, out_channels, 1, f"{name}_project", activation=False)
    if stride == 1 and in_channels == out_channels:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def _conv_bn(x, filters, kernel_size, name, activation=True):
    """Convolution (no bias) -> batch normalisation [-> ReLU6]."""
    x = keras.layers.Conv2D(
        filters, kernel_size, padding="same", use_bias=False, name=name
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.ReLU(6.0, name=f"{name}_relu")(x)
    return x


def _check_image_shape(input_shape, min_size):
    """Returns `input_shape` as a tuple `(height, width, channels)` or raises."""
    shape = as_tuple(input_shape)
    if (
        shape is None
        or len(shape) != 3
        or not all(is_size(d) for d in shape)
        or min(shape[:2]) < min_size
    ):
        raise InvalidArgumentError(
            "input_shape must be (height, width, channels) with height and width "
            f"of at least {min_size}, e.g. (32, 32, 3) for CIFAR; got {input_shape!r}."
        )
    return shape
