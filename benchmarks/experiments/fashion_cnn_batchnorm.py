"""The Fashion CNN's clean-accuracy loss after MAT: do BatchNorm's noisy statistics cause it?

During the MAT phase BatchNormalization's moving mean and variance are
averaged over noisy convolution outputs (noise widens them), so at
inference sd 0 each BN layer divides by a variance larger than the clean
one. This script loads the shipped `fashion_cnn` weights, recomputes every
BN layer's moving statistics, in order, from 10,000 training images passed
through the network without noise, and compares noise-free test accuracy
and a short sweep (5 draws) before and after. No labels are used.

Run: PYTHONPATH=. python benchmarks/experiments/fashion_cnn_batchnorm.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import zoo  # noqa: E402

CALIBRATION = 10000
SDS = (0.0, 0.05, 0.1, 0.15)


def clean_batchnorm_statistics(model, x):
    """Sets each BN layer's moving statistics to those of its noise-free inputs on `x`."""
    for index, layer in enumerate(model.layers):
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        probe = keras.Model(model.inputs, model.layers[index - 1].output)
        inputs = probe.predict(x, batch_size=500, verbose=0).reshape(-1, layer.moving_mean.shape[0])
        layer.moving_mean.assign(inputs.mean(axis=0))
        layer.moving_variance.assign(inputs.var(axis=0))
    return model


def main():
    data = zoo.load_dataset("fashion-mnist")
    for variant in ("vanilla", "mat"):
        model = zoo.fashion_cnn(weights=f"fashion_cnn-{variant}-fashionmnist")
        before = mat.robustness_sweep(model, data.x_test, data.y_test, sds=list(SDS), draws=5, seed=0,
                                      name=f"{variant} as trained", verbose=0)
        clean_batchnorm_statistics(model, data.x_train[:CALIBRATION])
        after = mat.robustness_sweep(model, data.x_test, data.y_test, sds=list(SDS), draws=5, seed=0,
                                     name=f"{variant}, clean BN stats", verbose=0)
        print(mat.sweep.format_table([before, after]))
        print()


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
