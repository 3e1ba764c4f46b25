"""The reference implementation's MNIST network: a 784-128-10 perceptron without biases."""

import keras

from mat_keras.zoo.weights import load_zoo_weights


def mnist_mlp(hidden_units=128, num_classes=10, input_shape=(28, 28), weights=None):
    """Returns the reference implementation's MNIST MLP (784-128-10, ReLU, no biases), uncompiled.

    The network outputs logits; compile it with
    `SparseCategoricalCrossentropy(from_logits=True)`. Inputs are images with
    values in [0, 1], as `zoo.load_dataset("mnist")` gives them.

    Args:
        hidden_units: width of the hidden layer (the reference implementation uses 128).
        num_classes: number of output logits.
        input_shape: shape of one input image; it is flattened.
        weights: None for random initialisation; `"mat"` or `"vanilla"`
            for the zoo's pretrained weights (shipped, trained on mnist-5k);
            a registry name (`mat-keras zoo list`); or the path of a
            `.weights.h5` file (see `mat_keras.zoo.weights`).

    Returns:
        A `keras.Sequential` model with 101,632 weights at the defaults.

    Example:

    >>> model = mat_keras.zoo.mnist_mlp()
    >>> model.count_params()
    101632
    >>> model = mat_keras.zoo.mnist_mlp(weights="mat")   # MAT-trained, shipped, offline
    """
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(hidden_units, activation="relu", use_bias=False, name="hidden"),
            keras.layers.Dense(num_classes, use_bias=False, name="logits"),
        ],
        name="mnist_mlp",
    )
    return load_zoo_weights(model, weights, "mnist_mlp")
