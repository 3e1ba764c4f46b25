"""Train-step time of the MAT-wrapped MNIST MLP against the plain Keras MLP, on TensorFlow and JAX.

For each backend (one subprocess each, `KERAS_BACKEND` set) and batch size,
both models train on the same synthetic MNIST-shaped data in one process, in
interleaved rounds so that machine noise hits both alike. The script prints
the median step time of each, and the "draw floor": a compiled function doing
only the wrapper's per-step noise work (`noisy_values()` of every wrapped
layer: one fresh normal draw per weight, scaled and added), timed in the same
process. No wrapper that draws the reference implementation's fresh Gaussian per weight per step
can beat `plain + floor` with the backend's own generator on this machine.

Targets (issue 12): `MAT / (plain + floor)` at most 1.10 at every point, with
Keras's default `jit_compile`; `MAT / plain` no worse than before the
restructuring.

Run: python benchmarks/mat_overhead.py [--rounds 5] [--steps 200] [--backends tensorflow,jax] [--xla]
(`--rounds 3`: about 3 minutes on two CPU cores.)
"""

import json
import os

import timing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET = 1.10


def parse_args(argv=None):
    parser = timing.worker_parser(__doc__.splitlines()[0], rounds=5, steps=200)
    parser.add_argument("--xla", action="store_true", help="TensorFlow: also measure jit_compile=True")
    return parser.parse_args(argv)


# The worker: runs under one backend, prints one RESULT line per measurement.


def make(kind, jit_compile):
    import keras

    import mat_keras as mat
    from mat_keras import zoo

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
    """Milliseconds per step of every wrapped layer's `noisy_values()`, compiled.

    The draws run `repeats` times in a loop inside one compiled call, so the
    call's own dispatch cost does not count. Each iteration sums every noisy
    value: a compiler may not drop (or shrink) a draw whose result is unused,
    and the sum is the one read of each value that a layer's matmul makes too.
    """
    import keras

    from timing import Stopwatch

    draws = _tf_draws(model, repeats) if keras.backend.backend() == "tensorflow" else _jax_draws(model, repeats)
    draws()  # trace and compile
    times = []
    for _ in range(rounds):
        with Stopwatch() as watch:
            draws()
        times.append(watch.seconds / repeats)
    times.sort()
    return 1e3 * times[len(times) // 2]


def _tf_draws(model, repeats):
    import tensorflow as tf

    import mat_keras as mat

    layers = mat.noisy_layers(model)

    @tf.function
    def draws():
        total = tf.constant(0.0)
        for _ in tf.range(repeats):
            total += tf.add_n([tf.reduce_sum(value) for layer in layers for value in layer.noisy_values()])
        return total

    return lambda: draws().numpy()


def _jax_draws(model, repeats):
    """The JAX twin of `_tf_draws`: the variables (seed states included) thread through a jitted loop."""
    import jax
    import keras

    import mat_keras as mat

    layers = mat.noisy_layers(model)
    variables = list(model.variables)

    def one_draw(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            total = sum(keras.ops.sum(value) for layer in layers for value in layer.noisy_values())
        # The seed generators advanced: carry their new states to the next draw.
        updated = [scope.get_current_value(v) for v in variables]
        return total, [value if new is None else new for value, new in zip(values, updated)]

    @jax.jit
    def draws(values):
        def body(_, carry):
            total, values = carry
            draw, values = one_draw(values)
            return total + draw, values

        return jax.lax.fori_loop(0, repeats, body, (0.0, values))

    state = {"values": [v.value for v in variables]}

    def run():
        total, state["values"] = draws(state["values"])
        jax.block_until_ready(total)

    return run


def measure(batch_size, jit_compile, rounds, steps):
    """Returns `(plain ms/step, MAT ms/step, floor ms/step)` at one batch size."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((batch_size * steps, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch_size * steps)
    models = {kind: make(kind, jit_compile) for kind in ("plain", "mat")}
    times = timing.step_times(models, x, y, batch_size, rounds, steps)
    return times["plain"], times["mat"], draw_floor(models["mat"])


def worker(args):
    import keras

    backend = keras.backend.backend()
    modes = [("default", "auto")] + ([("xla", True)] if args.xla and backend == "tensorflow" else [])
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        for label, jit_compile in modes:
            plain, wrapped, floor = measure(batch_size, jit_compile, args.rounds, args.steps)
            row = dict(backend=backend, batch=batch_size, jit=label, plain=plain, mat=wrapped, floor=floor)
            print(timing.RESULT + json.dumps(row), flush=True)


# The parent: one worker per backend, one table.


def format_row(row):
    bound = row["plain"] + row["floor"]
    ratio = row["mat"] / bound
    return (
        f"{row['backend']:>10} {row['batch']:>6} {row['jit']:>8} {row['plain']:>10.3f} {row['mat']:>10.3f} "
        f"{row['floor']:>10.3f} {row['mat'] / row['plain']:>10.2f} {bound / row['plain']:>12.2f} "
        f"{ratio:>16.2f}  {'ok' if ratio <= TARGET else 'MISSED'}"
    )


def main():
    args = parse_args()
    if args.worker:
        return worker(args)
    argv = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--batch-sizes", args.batch_sizes]
    argv += ["--xla"] if args.xla else []
    print(f"steps/epoch={args.steps}  rounds={args.rounds}  (ms per train step; target MAT/(plain+floor) <= {TARGET})")
    print(
        f"{'backend':>10} {'batch':>6} {'jit':>8} {'plain ms':>10} {'MAT ms':>10} {'floor ms':>10} "
        f"{'MAT/plain':>10} {'(p+f)/plain':>12} {'MAT/(plain+f)':>16}"
    )
    for backend in args.backends.split(","):
        for row in timing.run_backend(__file__, backend, argv):
            print(format_row(row), flush=True)


if __name__ == "__main__":
    main()
