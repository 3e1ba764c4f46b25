"""Train-step time of the MAT-wrapped MNIST MLP against the plain Keras MLP.

Both models train on the same synthetic MNIST-shaped data in one process, in
interleaved rounds so that machine noise hits both alike; the script prints
the median epoch time of each and their ratio (wrapped / plain), per batch
size and compile mode. Targets (issue 2, TensorFlow backend): at most 1.35 at
batch 32 and 1.05 at batch 256, with Keras's default `jit_compile`.

On TensorFlow the script also times, in the same process, a compiled
function doing only the wrapper's per-step noise work (`noisy_values()` of
every wrapped layer: one normal draw per weight, scaled and added): the
"draw floor". `plain + floor` over `plain` bounds the ratio any wrapper that
draws the seed's fresh Gaussian per weight per step can reach with these
kernels on this machine.

Run: python benchmarks/mat_overhead.py [--rounds 5] [--steps 200] [--xla]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import zoo  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.times = []


def make(kind, jit_compile):
    keras.utils.set_random_seed(0)
    model = zoo.mnist_mlp()
    if kind == "mat":
        model = mat.wrap(model, noise=0.2, seed=0)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def draw_floor(model, repeats=100, rounds=5):
    """Milliseconds of every wrapped layer's `noisy_values()` per step (TensorFlow only).

    The draws run `repeats` times in a loop inside one compiled call, so the
    call's own dispatch cost does not count.
    """
    if keras.backend.backend() != "tensorflow":
        return float("nan")
    import tensorflow as tf

    layers = mat.noisy_layers(model)

    @tf.function
    def draws():
        total = tf.constant(0.0)
        for _ in tf.range(repeats):
            # Summing one entry of each value keeps every draw alive.
            total += tf.add_n([value[(0,) * len(value.shape)] for layer in layers for value in layer.noisy_values()])
        return total

    draws()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        draws().numpy()
        times.append((time.perf_counter() - start) / repeats)
    return 1e3 * float(np.median(times))


def measure(batch_size, jit_compile, rounds, steps):
    rng = np.random.default_rng(0)
    x = rng.random((batch_size * steps, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch_size * steps)
    models = {kind: make(kind, jit_compile) for kind in ("plain", "mat")}
    for model in models.values():  # trace and warm up
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    times = {kind: [] for kind in models}
    for _ in range(rounds):
        for kind, model in models.items():
            timer = EpochTimer()
            model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, callbacks=[timer])
            times[kind].extend(timer.times)
    per_step = {kind: 1e3 * float(np.median(t)) / steps for kind, t in times.items()}
    return per_step["plain"], per_step["mat"], draw_floor(models["mat"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-sizes", default="32,256")
    parser.add_argument("--xla", action="store_true", help="also measure jit_compile=True")
    args = parser.parse_args()
    modes = [("default", "auto")] + ([("xla", True)] if args.xla else [])
    print(f"backend={keras.backend.backend()}  steps/epoch={args.steps}  rounds={args.rounds}")
    print(
        f"{'batch':>6} {'jit':>8} {'plain ms/step':>14} {'MAT ms/step':>12} {'MAT/plain':>10} "
        f"{'draw floor ms':>14} {'(plain+floor)/plain':>20}"
    )
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        for label, jit_compile in modes:
            plain, wrapped, floor = measure(batch_size, jit_compile, args.rounds, args.steps)
            print(
                f"{batch_size:>6} {label:>8} {plain:>14.3f} {wrapped:>12.3f} {wrapped / plain:>10.2f} "
                f"{floor:>14.3f} {(plain + floor) / plain:>20.2f}"
            )


if __name__ == "__main__":
    main()
