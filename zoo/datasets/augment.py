"""The seed's CIFAR augmentation, vectorised over a batch with TensorFlow ops.

Random horizontal flip (probability 1/2) and a random rotation of up to
10 degrees either way, as the seed's torchvision pipeline does
(`RandomHorizontalFlip`, `RandomRotation(10)`): nearest-neighbour sampling,
corners that come from outside the image filled with 0 (black).

Both are one affine map per image, so a single projective-transform op
applies them to the whole batch; nearest sampling moves pixels without
computing new values, which lets the pipeline augment the uint8 images
before casting them. Random draws use stateless ops keyed by an explicit
seed, so a tf.data pipeline that maps batches in parallel stays reproducible.
"""

import math

import tensorflow as tf


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
