"""Why a MAT MLP can gain accuracy as inference noise rises, and a remedy.

Reads the MLPs that `fashion_mnist.py --save-dir DIR` wrote (the reference
784-128-10 MLP, no biases, ReLU) and measures, on the 10,000 real test
images:

1. the hidden layer: mean activation and fraction of active units without
   noise and under the training noise (10 draws), against the Gaussian
   prediction `E[relu(z + e)] = z Phi(z/s) + s phi(z/s)` with
   `s = sd * 2 max|W1| * ||x||` (the noise on a pre-activation has sd
   `sd_w * ||x||`, the same for every unit of an example);
2. the accuracy of the noise-free network whose hidden layer outputs that
   expectation instead of `relu(z)` (the "mean noisy activation");
3. `mat_keras.recalibration.recalibrate` (bias correction, calibrated on
   2,000 training images, no labels): a sweep of the model recalibrated for
   noise-free deployment, and, per inference level, of the model
   recalibrated for exactly that level.

Run: PYTHONPATH=. python benchmarks/experiments/fashion_noise_shift.py --dir runs/fashion-mlp
"""

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import zoo  # noqa: E402
from mat_keras.recalibration import recalibrate  # noqa: E402

SDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
CALIBRATION = 2000


def hidden_statistics(w1, x, sd, draws, seed=0):
    """Mean hidden activation and active fraction: clean, noisy (Monte Carlo), predicted."""
    z = x @ w1
    rng = np.random.default_rng(seed)
    sigma = sd * 2 * np.abs(w1).max()
    noisy_mean, noisy_active = [], []
    for _ in range(draws):
        h = np.maximum(x @ (w1 + sigma * rng.standard_normal(w1.shape).astype(np.float32)), 0)
        noisy_mean.append(h.mean())
        noisy_active.append((h > 0).mean())
    s = sigma * np.linalg.norm(x, axis=1, keepdims=True)
    return {
        "clean mean": float(np.maximum(z, 0).mean()),
        "noisy mean": float(np.mean(noisy_mean)),
        "predicted mean": float(expected_relu(z, s).mean()),
        "clean active": float((z > 0).mean()),
        "noisy active": float(np.mean(noisy_active)),
        "noise sd / |z| (median)": float(np.median(s / (np.abs(z) + 1e-12))),
    }


def expected_relu(z, s):
    """E[relu(z + e)], e ~ N(0, s^2): the Gaussian-smoothed ReLU."""
    from scipy.special import ndtr

    u = z / s
    return z * ndtr(u) + s * np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)


def mean_field_accuracy(w1, w2, x, y, sd):
    s = sd * 2 * np.abs(w1).max() * np.linalg.norm(x, axis=1, keepdims=True)
    logits = expected_relu(x @ w1, s) @ w2
    return float((logits.argmax(1) == y).mean())


def sweep(model, data, name, draws):
    return mat.robustness_sweep(model, data.x_test, data.y_test, sds=list(SDS), draws=draws, seed=0,
                                name=name, verbose=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="the --save-dir of fashion_mnist.py")
    parser.add_argument("--train-sds", default="0.1,0.2")
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()

    data = zoo.load_dataset("fashion-mnist")
    x = data.x_test.reshape(len(data.x_test), -1)
    calibration = data.x_train[:CALIBRATION]
    for train_sd in [float(s) for s in args.train_sds.split(",")]:
        model = zoo.mnist_mlp(weights=os.path.join(args.dir, f"mat-sd{train_sd:g}.weights.h5"))
        w1, w2 = (keras.ops.convert_to_numpy(w) for w in model.get_weights())
        print(f"\n=== MAT MLP, training sd {train_sd:g} ===")
        print("hidden layer (test images):")
        for key, value in hidden_statistics(w1, x, train_sd, args.draws).items():
            print(f"  {key:<26}{value:.4f}")
        print("noise-free accuracy with relu(z):                     "
              f"{100 * mean_field_accuracy(w1, w2, x, data.y_test, 1e-12):.2f} %")
        print(f"noise-free accuracy with E[relu(z+e)] at sd {train_sd:g}:         "
              f"{100 * mean_field_accuracy(w1, w2, x, data.y_test, train_sd):.2f} %")
        results = [sweep(model, data, "as trained", args.draws)]
        fixed = recalibrate(model, calibration, noise=train_sd, draws=args.draws)
        results.append(sweep(fixed, data, "recalibrated sd 0", args.draws))
        matched = []
        for sd in SDS:
            level = recalibrate(model, calibration, noise=train_sd, deploy_noise=sd or None, draws=args.draws)
            one = mat.robustness_sweep(level, data.x_test, data.y_test, sds=[sd], draws=args.draws, seed=0,
                                       verbose=0)
            matched.append((float(one.mean()[0]), float(one.std()[0])))
        print("\nMean ± sd test accuracy (%), 10 draws; 'recalibrated per level' is recalibrated for each level")
        print(mat.sweep.format_table(results).splitlines()[0] + "  recalibrated per level")
        for line, (mean, std) in zip(mat.sweep.format_table(results).splitlines()[1:], matched):
            print(f"{line}  {100 * mean:>12.2f} ± {100 * std:.2f}")


if __name__ == "__main__":
    main()
