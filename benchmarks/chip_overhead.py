"""Cost of the chip forward: the MNIST MLP's train step and a sweep, through the standard chip.

For each backend (one subprocess each, `KERAS_BACKEND` set) and batch size,
the plain MNIST MLP and the same MLP wrapped with the standard crossbar
(`mat.wrap(model, noise=None, crossbar="standard")`: 512-row tiles, 8-bit
DAC and ADC, learned input ranges, read and output noise, IR drop) train on
the same synthetic MNIST-shaped data in one process, in interleaved rounds
so that machine load hits both alike. The script prints the median step
time of each and their ratio.

Then, on 10,000 inputs at batch 256, a robustness sweep of the plain MLP
(weight noise only, 2 levels x `--sweep-draws` draws) against the same
sweep through the standard chip (`crossbar="standard"`; its one-time work,
the chip twin, calibration and compilation, included), and one compiled
evaluation of each (the per-draw cost), interleaved too.

It also times the "draw floor": a compiled function doing only the chip's
random numbers (one standard normal per column sum of every row tile and
input vector), and prints chip / (plain + floor).

Targets (issue 15): chip step / plain step at most 2.0 at batch 256 on
TensorFlow and JAX; chip sweep / weight-noise sweep at most 1.5. For
comparison, IBM's aihwkit-lightning measured 4.9 (its chip forward) and 2.5
(weight noise alone) times its plain step on one CPU thread.

Run: python benchmarks/chip_overhead.py [--rounds 3] [--steps 100] [--backends tensorflow,jax]
(about 4 minutes on two CPU cores at the defaults.)
"""

import json
import os

import timing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEP_TARGET = 2.0
SWEEP_TARGET = 1.5


def parse_args(argv=None):
    parser = timing.worker_parser(__doc__.splitlines()[0], rounds=3, steps=100)
    parser.add_argument("--sweep-draws", type=int, default=4, help="draws per level of the sweeps (default 4)")
    return parser.parse_args(argv)


# The worker: runs under one backend, prints one RESULT line per measurement.


def make(kind):
    import keras

    import mat_keras as mat
    from mat_keras import zoo

    keras.utils.set_random_seed(0)
    model = zoo.mnist_mlp()
    if kind == "chip":
        model = mat.wrap(model, noise=None, crossbar="standard", seed=0)
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def _data(n, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def draw_floor(model, batch_size, repeats=50, rounds=5):
    """Milliseconds per step of the chip's random numbers alone, compiled.

    Read and output noise take one fresh standard normal per column sum of
    every row tile and input vector: `(tiles, batch, cols)` per matrix. No
    chip forward with fresh noise per sum can beat `plain + floor` with the
    backend's own generator; each iteration sums the draws so that none is
    dropped.
    """
    import keras

    import mat_keras as mat
    from timing import Stopwatch

    shapes = []
    for layer in mat.noisy_layers(model):
        for path, sublayer in mat.crossbar.product_layers(layer.layer):
            kernel = sublayer.kernel
            tiles = len(mat.crossbar.row_tiles(tuple(kernel.shape), layer.crossbar))
            shapes.append((tiles, batch_size, kernel.shape[1]))
    generator = keras.random.SeedGenerator(0)
    if keras.backend.backend() == "jax":
        import jax

        @jax.jit
        def draws(key):
            def body(i, total):
                keys = jax.random.split(jax.random.fold_in(key, i), len(shapes))
                return total + sum(jax.random.normal(k, shape).sum() for k, shape in zip(keys, shapes))

            return jax.lax.fori_loop(0, repeats, body, 0.0)

        key = jax.random.key(0)
        run = lambda: jax.block_until_ready(draws(key))  # noqa: E731
    else:
        import tensorflow as tf

        @tf.function
        def draws():
            total = tf.constant(0.0)
            for _ in tf.range(repeats):
                total += tf.add_n([tf.reduce_sum(keras.random.normal(shape, seed=generator)) for shape in shapes])
            return total

        run = lambda: draws().numpy()  # noqa: E731
    run()
    times = []
    for _ in range(rounds):
        with Stopwatch() as watch:
            run()
        times.append(watch.seconds / repeats)
    return 1e3 * sorted(times)[len(times) // 2]


def measure_steps(batch_size, rounds, steps):
    """Returns `(plain ms/step, chip ms/step, draw floor ms/step)` at one batch size."""
    x, y = _data(batch_size * steps)
    models = {kind: make(kind) for kind in ("plain", "chip")}
    times = timing.step_times(models, x, y, batch_size, rounds, steps)
    return times["plain"], times["chip"], draw_floor(models["chip"], batch_size)


def measure_sweeps(rounds, draws):
    """Returns `(noise sweep s, chip sweep s, plain evaluation s, chip evaluation s)` on 10,000 inputs.

    A sweep call includes its one-time work (the chip twin, its calibration
    and the compilation of its evaluation); the evaluations are one compiled
    pass each of the plain model and of its chip twin, the per-draw cost.
    """
    import keras

    import mat_keras as mat
    from mat_keras import zoo
    from timing import Stopwatch

    x, y = _data(10000, seed=1)
    model = zoo.mnist_mlp()  # uncompiled: the sweeps compile it with accuracy
    settings = dict(sds=[0.0, 0.1], draws=draws, seed=0, verbose=0)
    chip = {"crossbar": "standard", "calibration_data": x[:1024]}
    twin = mat.chip_model(model, "standard")
    mat.crossbar.calibrate_input_ranges(twin, x[:1024])
    twin.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    mat.robustness_sweep(model, x, y, **settings)  # compiles the plain evaluation
    twin.evaluate(x, y, batch_size=256, verbose=0)
    times = {"noise": [], "chip": [], "plain_eval": [], "chip_eval": []}
    for _ in range(rounds):
        for kind, extra in (("noise", {}), ("chip", chip)):
            with Stopwatch() as watch:
                mat.robustness_sweep(model, x, y, **settings, **extra)
            times[kind].append(watch.seconds)
        for kind, evaluated in (("plain_eval", model), ("chip_eval", twin)):
            with Stopwatch() as watch:
                evaluated.evaluate(x, y, batch_size=256, verbose=0)
            times[kind].append(watch.seconds)
    return tuple(sorted(t)[len(t) // 2] for t in times.values())


def worker(args):
    import keras

    backend = keras.backend.backend()
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        plain, chip, floor = measure_steps(batch_size, args.rounds, args.steps)
        row = dict(kind="step", backend=backend, batch=batch_size, plain=plain, chip=chip, floor=floor)
        print(timing.RESULT + json.dumps(row), flush=True)
    noise, chip, plain_eval, chip_eval = measure_sweeps(args.rounds, args.sweep_draws)
    print(timing.RESULT + json.dumps(dict(kind="sweep", backend=backend, noise=noise, chip=chip)), flush=True)
    print(timing.RESULT + json.dumps(dict(kind="evaluation", backend=backend, noise=plain_eval, chip=chip_eval)), flush=True)


# The parent: one worker per backend, one table.


def format_row(row):
    if row["kind"] == "step":
        ratio = row["chip"] / row["plain"]
        floored = row["chip"] / (row["plain"] + row["floor"])
        verdict = "" if row["batch"] != 256 else ("ok" if ratio <= STEP_TARGET else "MISSED")
        return (
            f"{'train step':>12} {row['backend']:>10} {row['batch']:>6} {row['plain']:>10.3f} ms "
            f"{row['chip']:>10.3f} ms {ratio:>8.2f}  {verdict:<7} floor {row['floor']:.3f} ms, "
            f"chip / (plain + floor) {floored:.2f}"
        )
    ratio = row["chip"] / row["noise"]
    verdict = ("ok" if ratio <= SWEEP_TARGET else "MISSED") if row["kind"] == "sweep" else "(per draw)"
    return (
        f"{row['kind']:>12} {row['backend']:>10} {'':>6} {row['noise']:>10.3f} s  {row['chip']:>10.3f} s  "
        f"{ratio:>8.2f}  {verdict}"
    )


def main():
    args = parse_args()
    if args.worker:
        return worker(args)
    argv = [
        "--rounds", str(args.rounds), "--steps", str(args.steps),
        "--batch-sizes", args.batch_sizes, "--sweep-draws", str(args.sweep_draws),
    ]
    print(
        f"steps/epoch={args.steps} rounds={args.rounds}; targets: chip/plain step <= {STEP_TARGET} "
        f"at batch 256, chip/noise sweep <= {SWEEP_TARGET}"
    )
    print(f"{'what':>12} {'backend':>10} {'batch':>6} {'plain/noise':>13} {'chip':>13} {'ratio':>8}")
    for backend in args.backends.split(","):
        for row in timing.run_backend(__file__, backend, argv):
            print(format_row(row), flush=True)


if __name__ == "__main__":
    main()
