"""The timers every benchmark uses: a stopwatch, an epoch timer, medians.

The scripts import it as `timing` (each runs as `python benchmarks/NAME.py`,
which puts this folder on `sys.path`).

Example:

    from timing import EpochTimer, Stopwatch, median_ms

    with Stopwatch() as watch:
        model.evaluate(batches, verbose=0)
    print(watch.seconds, watch.cpu_seconds)

    timer = EpochTimer()
    model.fit(x, y, epochs=3, callbacks=[timer])
    print(median_ms(timer.times, per=steps_per_epoch), "ms/step")
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import keras


class Stopwatch:
    """Context manager: wall and process CPU seconds of its block.

    Attributes (set on exit):
        seconds: wall-clock seconds (`time.perf_counter`).
        cpu_seconds: CPU seconds of this process, all threads
            (`time.process_time`): the work done, whatever else the
            machine runs.
    """

    def __enter__(self):
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        return False


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of every epoch of `fit`, in `times`.

    An epoch ends when Keras has read its logs back (the loss), so the
    device work of the epoch is inside the time on every backend.

    Args:
        after_epoch: None, or a function of the epoch index called after
            each epoch's time is taken (outside it): e.g. a peer framework's
            own epoch, interleaved so that machine load hits both alike.
    """

    def __init__(self, after_epoch=None):
        super().__init__()
        self.after_epoch = after_epoch
        self.times = []

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)
        if self.after_epoch is not None:
            self.after_epoch(epoch)


def median_ms(seconds, per=1):
    """The median of `seconds` in milliseconds, divided by `per` (steps, calls).

    Example:

    >>> median_ms([0.2, 0.1, 0.3], per=100)
    2.0
    """
    return 1e3 * statistics.median(seconds) / per


RESULT = "RESULT "


def run_backend(script, backend, argv):
    """Runs `script --worker *argv` under `backend`; returns the rows it printed (none if it failed).

    A worker prints each measurement as one line `RESULT <json>`; the parent
    gathers them, so every backend runs in a fresh process of its own.

    Args:
        script: the benchmark's path (`__file__`).
        backend: the `KERAS_BACKEND` of the worker.
        argv: the worker's other arguments.
    """
    env = dict(os.environ, KERAS_BACKEND=backend)
    folder = os.path.dirname(os.path.abspath(script))
    # The worker imports `timing` from this folder, as the script itself does.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, env.get("PYTHONPATH")]))
    process = subprocess.run(
        [sys.executable, os.path.abspath(script), "--worker", *argv],
        env=env, capture_output=True, text=True,
    )
    rows = [json.loads(line[len(RESULT):]) for line in process.stdout.splitlines() if line.startswith(RESULT)]
    if process.returncode != 0:
        tail = "\n".join(process.stderr.strip().splitlines()[-5:])
        print(f"{backend}: the worker failed (exit {process.returncode}):\n{tail}", file=sys.stderr)
    return rows


def step_times(models, x, y, batch_size, rounds, steps):
    """Median milliseconds per train step of each model, fitted in interleaved rounds.

    Each model is traced and warmed up with one epoch; then every round fits
    each model for 2 epochs in turn, so that machine load hits all alike.

    Args:
        models: `{name: compiled model}`.
        x, y: the training data, `batch_size * steps` examples.
        batch_size: the batch size.
        rounds: interleaved rounds.
        steps: train steps per epoch.

    Returns:
        `{name: ms per step}`.
    """
    for model in models.values():  # trace and warm up
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            timer = EpochTimer()
            model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, callbacks=[timer])
            times[name].extend(timer.times)
    return {name: median_ms(times[name], per=steps) for name in models}


def worker_parser(description, rounds, steps):
    """The options every train-step benchmark takes: rounds, steps, batch sizes, backends, worker.

    Args:
        description: the parser's description.
        rounds: the default number of interleaved rounds.
        steps: the default train steps per epoch.

    Returns:
        An `argparse.ArgumentParser` to add the script's own options to.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--rounds", type=int, default=rounds, help=f"interleaved rounds of 2 epochs each (default {rounds})"
    )
    parser.add_argument("--steps", type=int, default=steps, help=f"train steps per epoch (default {steps})")
    parser.add_argument("--batch-sizes", default="32,256")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser

