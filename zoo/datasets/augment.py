"""The reference implementation's CIFAR augmentation, vectorised over a batch, in two twins.

Random horizontal flip (probability 1/2) and a random rotation of up to
10 degrees either way, as the reference implementation's torchvision pipeline does
(`RandomHorizontalFlip`, `RandomRotation(10)`): nearest-neighbour sampling,
corners that come from outside the image filled with 0 (black).

Both are one affine map per image, so a single projective-transform op
applies them to the whole batch; nearest sampling moves pixels without
computing new values, which lets the pipelines augment the uint8 images
before casting them.

`flip_and_rotate` and `rotate` use TensorFlow ops for the tf.data pipelines;
their random draws use stateless ops keyed by an explicit seed, so a
pipeline that maps batches in parallel stays reproducible.
`numpy_flip_and_rotate` and `numpy_rotate` are their numpy twins for the
numpy batches that feed the other backends: the same distribution and, for
the same angles and flips, the same pixels. TensorFlow is imported only
when a TensorFlow twin runs.
"""

import math

import numpy as np


def flip_and_rotate(images, seed, max_degrees=10.0):
    """Mirrors each image left-right with probability 1/2, then rotates it.

    Args:
        images: tensor `(B, H, W, C)`, uint8 or float.
        seed: int tensor of shape `[2]` for the stateless random ops.
        max_degrees: rotation angles are uniform in
            `[-max_degrees, max_degrees]`.

    Returns:
        The augmented batch, same shape and dtype.

    Example:

    >>> x = tf.zeros((128, 32, 32, 3), tf.uint8)
    >>> flip_and_rotate(x, tf.constant([0, 1], tf.int64)).shape
    TensorShape([128, 32, 32, 3])
    """
    import tensorflow as tf

    flip_seed, angle_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    batch = tf.shape(images)[0]
    flips = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    limit = max_degrees * math.pi / 180.0
    angles = tf.random.stateless_uniform([batch], angle_seed, minval=-limit, maxval=limit)
    return rotate(images, angles, flips)


def rotate(images, angles, flips=None):
    """Rotates each image about its centre, counter-clockwise as displayed.

    Nearest-neighbour sampling; pixels that come from outside the image are
    0. With `flips`, the flagged images are mirrored left-right first.

    Args:
        images: tensor `(B, H, W, C)`, uint8 or float.
        angles: float32 tensor `(B,)`, in radians.
        flips: None, or a boolean tensor `(B,)`.

    Returns:
        The transformed batch, same shape and dtype.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    height = tf.cast(shape[1], tf.float32)
    width = tf.cast(shape[2], tf.float32)
    cos, sin = tf.cos(angles), tf.sin(angles)
    # Each output pixel (x, y) samples the input at
    # (a0 x + a1 y + a2, b0 x + b1 y + b2): here a rotation by -angle about
    # the centre ((W-1)/2, (H-1)/2), which, with y pointing down the rows,
    # turns the picture counter-clockwise.
    a0, a1 = cos, -sin
    a2 = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    b0, b1 = sin, cos
    b2 = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    if flips is not None:
        # Flipping first means sampling at x' = (W-1) - x of the rotated
        # position: negate the x row and shift it.
        sign = tf.where(flips, -1.0, 1.0)
        a0, a1 = sign * a0, sign * a1
        a2 = tf.where(flips, (width - 1) - a2, a2)
    zeros = tf.zeros_like(angles)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )


def numpy_flip_and_rotate(images, seed, max_degrees=10.0):
    """The numpy twin of `flip_and_rotate`, for the numpy batches.

    Mirrors each image left-right with probability 1/2, then rotates it by
    an angle uniform in `[-max_degrees, max_degrees]`: the distribution of
    `flip_and_rotate`, drawn from a numpy generator (so one seed gives other
    draws than TensorFlow's stateless ops).

    Args:
        images: array `(B, H, W, C)`, uint8 or float.
        seed: a `numpy.random.Generator`, or what `numpy.random.default_rng`
            takes: an int or a tuple of ints, e.g. `(seed, epoch, batch)`.
        max_degrees: largest rotation either way, in degrees.

    Returns:
        The augmented batch, a new array of the same shape and dtype.

    Example:

    >>> x = np.zeros((128, 32, 32, 3), np.uint8)
    >>> numpy_flip_and_rotate(x, (0, 1, 2)).shape
    (128, 32, 32, 3)
    """
    rng = np.random.default_rng(seed)
    batch = len(images)
    flips = rng.random(batch) < 0.5
    limit = max_degrees * math.pi / 180.0
    angles = rng.uniform(-limit, limit, batch)
    return numpy_rotate(images, angles, flips)


def numpy_rotate(images, angles, flips=None):
    """The numpy twin of `rotate`: the same pixels for the same arguments.

    Rotates each image about its centre, counter-clockwise as displayed,
    with nearest-neighbour sampling; pixels that come from outside the image
    are 0. With `flips`, the flagged images are mirrored left-right first.

    Args:
        images: array `(B, H, W, C)`, uint8 or float.
        angles: array `(B,)`, in radians.
        flips: None, or a boolean array `(B,)`.

    Returns:
        The transformed batch, a new array of the same shape and dtype.

    Example:

    >>> image = np.arange(9).reshape(1, 3, 3, 1)
    >>> numpy_rotate(image, [math.pi / 2])[0, :, :, 0]
    array([[2, 5, 8],
           [1, 4, 7],
           [0, 3, 6]])
    """
    images = np.asarray(images)
    batch, height, width = images.shape[:3]
    source_x, source_y = _source_coordinates(height, width, angles, flips)
    rows = _round_half_away(source_y)
    cols = _round_half_away(source_x)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    out = images[
        np.arange(batch)[:, None, None],
        np.clip(rows, 0, height - 1),
        np.clip(cols, 0, width - 1),
    ]
    out[~inside] = 0
    return out


def _source_coordinates(height, width, angles, flips):
    """Where each output pixel samples the input, as `(x, y)` of `(B, H, W)`.

    `rotate`'s map, computed in float32 in the order TensorFlow's kernel
    uses, so that both twins round to the same pixels.
    """
    angles = np.asarray(angles, dtype=np.float32)
    cos, sin = np.cos(angles), np.sin(angles)
    w, h = np.float32(width - 1), np.float32(height - 1)
    a0, a1 = cos, -sin
    a2 = (w - (cos * w - sin * h)) / 2
    b0, b1 = sin, cos
    b2 = (h - (sin * w + cos * h)) / 2
    if flips is not None:
        flips = np.asarray(flips, dtype=bool)
        sign = np.where(flips, np.float32(-1), np.float32(1))
        a0, a1 = sign * a0, sign * a1
        a2 = np.where(flips, w - a2, a2)
    y, x = np.mgrid[:height, :width].astype(np.float32)

    def apply(c0, c1, c2):
        return c0[:, None, None] * x + c1[:, None, None] * y + c2[:, None, None]

    return apply(a0, a1, a2), apply(b0, b1, b2)


def _round_half_away(coordinates):
    """Rounds to int indices with halves away from zero, as C's `round` does.

    TensorFlow's nearest sampling rounds so; numpy's `round` sends halves to
    the even neighbour, which would pick other pixels at exact halves.
    """
    whole = np.trunc(coordinates)
    away = np.abs(coordinates - whole) >= 0.5
    return (whole + np.where(away, np.sign(coordinates), 0)).astype(np.intp)
