"""Cost of the chip forward: the MNIST MLP's train step and a sweep, through the standard chip.

For each backend (one subprocess each, `KERAS_BACKEND` set) and batch size,
the plain MNIST MLP and the same MLP wrapped with the standard crossbar
(`mat.wrap(model, noise=None, crossbar="standard")`: 512-row tiles, 8-bit
DAC and ADC, learned input ranges, read and output noise, IR drop) train on
the same synthetic MNIST-shaped data in one process, in interleaved rounds
so that machine load hits both alike. The script prints the median step
time of each and their ratio.

Then, at batch 256 of evaluation, a robustness sweep of the plain MLP
(weight noise only) against the same sweep through the standard chip
(`crossbar="standard"`), the same levels and draws, interleaved too.

Targets (issue 15): chip step / plain step at most 2.0 at batch 256 on
TensorFlow and JAX; chip sweep / weight-noise sweep at most 1.5. For
comparison, IBM's aihwkit-lightning measured 4.9 (its chip forward) and 2.5
(weight noise alone) times its plain step on one CPU thread.

Run: python benchmarks/chip_overhead.py [--rounds 3] [--steps 100] [--backends tensorflow,jax]
(about 4 minutes on two CPU cores at the defaults.)
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEP_TARGET = 2.0
SWEEP_TARGET = 1.5
_RESULT = "RESULT "


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--steps", type=int, default=100, help="train steps per epoch (default 100)")
    parser.add_argument("--batch-sizes", default="32,256")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--sweep-draws", type=int, default=4, help="draws per level of the sweeps (default 4)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
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


def measure_steps(batch_size, rounds, steps):
    """Returns `(plain ms/step, chip ms/step)` at one batch size."""
    from timing import EpochTimer, median_ms

    x, y = _data(batch_size * steps)
    models = {kind: make(kind) for kind in ("plain", "chip")}
    for model in models.values():  # trace and warm up
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    times = {kind: [] for kind in models}
    for _ in range(rounds):
        for kind, model in models.items():
            timer = EpochTimer()
            model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, callbacks=[timer])
            times[kind].extend(timer.times)
    return tuple(median_ms(times[kind], per=steps) for kind in ("plain", "chip"))


def measure_sweeps(rounds, draws):
    """Returns `(weight-noise sweep s, chip sweep s)`: the same levels and draws, 2,000 inputs."""
    import mat_keras as mat
    from timing import Stopwatch

    x, y = _data(2000, seed=1)
    model = make("plain")
    settings = dict(sds=[0.0, 0.1], draws=draws, seed=0, verbose=0)
    mat.robustness_sweep(model, x, y, **settings)  # compile both once
    mat.robustness_sweep(model, x, y, crossbar="standard", calibration_data=x[:256], **settings)
    times = {"noise": [], "chip": []}
    for _ in range(rounds):
        for kind, extra in (("noise", {}), ("chip", {"crossbar": "standard", "calibration_data": x[:256]})):
            with Stopwatch() as watch:
                mat.robustness_sweep(model, x, y, **settings, **extra)
            times[kind].append(watch.seconds)
    return tuple(sorted(times[kind])[len(times[kind]) // 2] for kind in ("noise", "chip"))


def worker(args):
    import keras

    backend = keras.backend.backend()
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        plain, chip = measure_steps(batch_size, args.rounds, args.steps)
        row = dict(kind="step", backend=backend, batch=batch_size, plain=plain, chip=chip)
        print(_RESULT + json.dumps(row), flush=True)
    noise, chip = measure_sweeps(args.rounds, args.sweep_draws)
    print(_RESULT + json.dumps(dict(kind="sweep", backend=backend, noise=noise, chip=chip)), flush=True)


# The parent: one worker per backend, one table.


def run_backend(backend, argv):
    """Runs the worker under `backend`; returns its rows (none if it failed)."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    folder = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, env.get("PYTHONPATH")]))
    process = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", *argv],
        env=env, capture_output=True, text=True,
    )
    rows = [json.loads(line[len(_RESULT):]) for line in process.stdout.splitlines() if line.startswith(_RESULT)]
    if process.returncode != 0:
        tail = "\n".join(process.stderr.strip().splitlines()[-5:])
        print(f"{backend}: the worker failed (exit {process.returncode}):\n{tail}", file=sys.stderr)
    return rows


def format_row(row):
    if row["kind"] == "step":
        ratio = row["chip"] / row["plain"]
        verdict = "" if row["batch"] != 256 else ("ok" if ratio <= STEP_TARGET else "MISSED")
        return (
            f"{'train step':>12} {row['backend']:>10} {row['batch']:>6} {row['plain']:>10.3f} ms "
            f"{row['chip']:>10.3f} ms {ratio:>8.2f}  {verdict}"
        )
    ratio = row["chip"] / row["noise"]
    return (
        f"{'sweep':>12} {row['backend']:>10} {'':>6} {row['noise']:>10.2f} s  {row['chip']:>10.2f} s  "
        f"{ratio:>8.2f}  {'ok' if ratio <= SWEEP_TARGET else 'MISSED'}"
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
        for row in run_backend(backend, argv):
            print(format_row(row), flush=True)


if __name__ == "__main__":
    main()
