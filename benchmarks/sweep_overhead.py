"""Robustness-sweep time against the same number of clean evaluations.

A sweep of 7 noise levels x 10 draws evaluates the model 70 times, each after
drawing and assigning noisy weights; the baseline is 70 `model.evaluate`
calls with the clean weights. Both run in one process on the same data
(the offline `mnist-5k` test set, the reference implementation's MLP, as `data.test_dataset`
batches), in interleaved rounds. Prints the ratio sweep / clean (target at
most 1.3, issue 2), and the time of the same sweep given numpy arrays (it
builds its batches once, so it should match the dataset's).

Run: python benchmarks/sweep_overhead.py [--rounds 3]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import zoo  # noqa: E402
from timing import Stopwatch  # noqa: E402

SDS = [0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3]
DRAWS = 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    data = zoo.load_dataset("mnist-5k")
    model = zoo.mnist_mlp()
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    model.fit(data.x_train, data.y_train, epochs=1, verbose=0)
    batches = data.test_dataset(args.batch_size)
    model.evaluate(batches, verbose=0)  # trace
    mat.robustness_sweep(model, batches, sds=[0.1], draws=1, verbose=0)  # compile the draws
    times = {"clean": [], "sweep": [], "arrays": []}
    for _ in range(args.rounds):
        with Stopwatch() as watch:
            for _ in range(len(SDS) * DRAWS):
                model.evaluate(batches, verbose=0, return_dict=True)
        times["clean"].append(watch.seconds)
        with Stopwatch() as watch:
            mat.robustness_sweep(model, batches, sds=SDS, draws=DRAWS, verbose=0)
        times["sweep"].append(watch.seconds)
        with Stopwatch() as watch:
            mat.robustness_sweep(
                model, data.x_test, data.y_test, sds=SDS, draws=DRAWS, batch_size=args.batch_size, verbose=0
            )
        times["arrays"].append(watch.seconds)
    clean, sweep, arrays = (float(np.median(times[k])) for k in ("clean", "sweep", "arrays"))
    print(f"backend={keras.backend.backend()}  {len(SDS)} levels x {DRAWS} draws, "
          f"{len(data.y_test)} test images, batch {args.batch_size}, rounds={args.rounds}")
    print(f"70 clean evaluations: {clean:.2f} s   sweep: {sweep:.2f} s   sweep/clean: {sweep / clean:.2f}   "
          f"sweep of numpy arrays: {arrays:.2f} s ({arrays / clean:.2f})")


if __name__ == "__main__":
    main()
