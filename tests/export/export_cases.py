"""Small models, one per exported layer type, for the export tests.

Imported by the test modules as `export_cases` (pytest puts this folder on
`sys.path`; there is no `__init__.py`, so that the folder name `export`
cannot shadow the repository's `export/` package).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402

L = keras.layers


def randomise_batchnorm(model, seed=0):
    """Gives every BatchNorm non-trivial statistics, so folding is tested."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, n),  # gamma
                    rng.normal(0.0, 0.5, n),  # beta
                    rng.normal(0.0, 0.3, n),  # moving mean
                    rng.uniform(0.2, 3.0, n),  # moving variance
                ]
            )
    return model


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def _model(input_shape, *layers, name):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return randomise_batchnorm(keras.Model(inputs, x, name=name))


# name -> (builder, input shape, {exported layer name: [matrix names]})
LAYER_CASES = {
    "Dense": (lambda: _model((12,), L.Dense(7, name="layer"), name="dense"), (12,)),
    "Conv1D": (lambda: _model((9, 3), L.Conv1D(5, 3, name="layer"), name="conv1d"), (9, 3)),
    "Conv2D": (lambda: _model((6, 6, 3), L.Conv2D(4, 3, name="layer"), name="conv2d"), (6, 6, 3)),
    "Conv3D": (lambda: _model((4, 4, 4, 2), L.Conv3D(3, 2, name="layer"), name="conv3d"), (4, 4, 4, 2)),
    # Transposed convolutions take no bias row (their outputs sum over kernel
    # offsets): these cases have none, so that every bias setting applies.
    "Conv1DTranspose": (
        lambda: _model((5, 3), L.Conv1DTranspose(4, 3, strides=2, use_bias=False, name="layer"), name="conv1d_t"),
        (5, 3),
    ),
    "Conv2DTranspose": (
        lambda: _model((4, 4, 3), L.Conv2DTranspose(4, 3, strides=2, use_bias=False, name="layer"), name="conv2d_t"),
        (4, 4, 3),
    ),
    "Conv3DTranspose": (
        lambda: _model((3, 3, 3, 2), L.Conv3DTranspose(3, 2, use_bias=False, name="layer"), name="conv3d_t"),
        (3, 3, 3, 2),
    ),
    "DepthwiseConv2D": (
        lambda: _model((6, 6, 3), L.DepthwiseConv2D(3, depth_multiplier=2, name="layer"), name="depthwise"),
        (6, 6, 3),
    ),
    "SeparableConv2D": (
        lambda: _model((6, 6, 3), L.SeparableConv2D(5, 3, depth_multiplier=2, name="layer"), name="separable"),
        (6, 6, 3),
    ),
    "SimpleRNN": (lambda: _model((5, 3), L.SimpleRNN(4, name="layer"), name="simple_rnn"), (5, 3)),
    "LSTM": (lambda: _model((5, 3), L.LSTM(4, name="layer"), name="lstm"), (5, 3)),
    "GRU": (lambda: _model((5, 3), L.GRU(4, name="layer"), name="gru"), (5, 3)),
    "Dense+BN": (
        lambda: _model((12,), L.Dense(7, name="layer"), L.BatchNormalization(name="bn"), name="dense_bn"),
        (12,),
    ),
    "Conv2D+BN": (
        lambda: _model(
            (6, 6, 3), L.Conv2D(4, 3, use_bias=False, name="layer"), L.BatchNormalization(name="bn"),
            name="conv2d_bn",
        ),
        (6, 6, 3),
    ),
}


def build_case(name):
    """Returns `(model, sample_input)` of a layer case, with random biases."""
    builder, shape = LAYER_CASES[name]
    model = builder()
    rng = np.random.default_rng(1)
    for layer in _all_layers(model):
        for variable in layer.weights:
            if variable.path.endswith("bias"):
                variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))
    x = rng.normal(size=(4, *shape)).astype("float32")
    return model, x


def to_numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


def mlp():
    """A small MLP with biases: 20-16-3."""
    return _model((20,), L.Dense(16, activation="relu", name="hidden"), L.Dense(3, name="logits"), name="mlp")


def getattr_path(layer, dotted):
    """`layer.a.b` for `dotted="a.b"`."""
    for part in dotted.split("."):
        layer = getattr(layer, part)
    return layer
