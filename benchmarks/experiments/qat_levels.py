"""Quantisation-aware training (the reference implementation's QAT): accuracy against the number of levels.

Trains the reference implementation's MNIST MLP (`zoo.mnist_mlp`) on the offline `mnist-5k` data
with its weights quantised in every forward pass (`mat.noise.Quantized(n)`:
n uniform levels between the 1 % and 99 % quantiles of each tensor,
straight-through gradient), for n = 2, 4, 8, 16, 32, plus a float baseline;
same recipe for all (Adam 1e-3, batch 32, weights clipped to ±2.5 std,
`--epochs` epochs, same initialisation). Each QAT model is evaluated with
its weights quantised (what a chip with n levels would hold).

Run: python benchmarks/experiments/qat_levels.py [--epochs 20 --seeds 0,1,2]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import zoo  # noqa: E402

LEVELS = (2, 4, 8, 16, 32)


def train_and_evaluate(data, levels, epochs, seed):
    """Test accuracy of a model trained (and evaluated) with `levels` levels; None = float."""
    keras.utils.set_random_seed(seed)
    model = zoo.mnist_mlp()
    quantizer = None if levels is None else mat.noise.Quantized(levels)
    if quantizer is not None:
        model = mat.wrap(model, noise=quantizer, seed=seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(data.train_dataset(32, seed=seed), epochs=epochs, callbacks=[mat.WeightClip(2.5)], verbose=0)
    if quantizer is None:
        return model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)["accuracy"]
    (result,) = mat.deployment_sweep(
        model, data.x_test, data.y_test, device=quantizer, times=[0.0], draws=1,
        compensation=False, verbose=0,
    )
    return float(result.mean()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    data = zoo.load_dataset("mnist-5k", seed=0)
    rows = {}
    for levels in (*LEVELS, None):
        rows[levels] = [train_and_evaluate(data, levels, args.epochs, seed) for seed in seeds]
    print(f"backend={keras.backend.backend()}  epochs={args.epochs}  seeds={seeds}")
    print(f"Test accuracy (%) of QAT models, mean ± sd over {len(seeds)} seeds, {data.description}")
    print(f"{'levels':<8}{'accuracy':>16}")
    for levels, values in rows.items():
        label = "float" if levels is None else str(levels)
        print(f"{label:<8}{100 * np.mean(values):>9.2f} ± {100 * np.std(values):.2f}")


if __name__ == "__main__":
    main()
