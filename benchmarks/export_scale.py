"""How export time and memory grow with the number of weights.

    python benchmarks/export_scale.py                 # 1M, 5M, 10M, 25M weights
    python benchmarks/export_scale.py --sizes 1,5     # millions of weights
    python benchmarks/export_scale.py --model single  # one square Dense layer

Each size runs in a fresh subprocess with a model of Conv2D and Dense layers
(half the weights in two 3x3 convolutions, half in two Dense layers), built
before measuring. The export writes NPZ only (`formats=("npz",)`, 16 levels,
differential, 256x256 tiles): one CSV line per weight would be gigabytes at
25M weights, and CSV is meant for single tiles on instruments.

Measured per size:
- time: wall-clock seconds of `export.conductance_tables` (checksums, files
  and manifest included), the fastest of `REPEATS` runs;
- peak RSS: the process's peak resident memory during the export minus its
  resident memory just before (Linux: the peak is reset through
  `/proc/self/clear_refs` first), so TensorFlow's own copy of the weights is
  not counted but every array the exporter makes is;
- tracemalloc peak: the largest amount of Python and numpy memory alive at
  once during a second, identical export (numpy reports its buffers to
  tracemalloc); timed separately because tracing slows allocation.

Printed: a table, then per-weight ratios across sizes (constant = linear) and
the peak memory over the weights' own float32 size at the largest size
(targets: under 10 s and under 3x at 25M weights).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc

TARGET_SECONDS = 10.0
#: Timed exports per size; the table shows the fastest (the least disturbed
#: by other processes on a shared machine), the JSON line all of them.
REPEATS = 3
TARGET_MEMORY_RATIO = 3.0


def build_model(weights, kind="mixed"):
    """Returns a model with about `weights` weights.

    `kind="mixed"`: two 3x3 Conv2D and two Dense layers, half the weights
    each; `kind="single"`: one square Dense layer (the worst case for
    memory, which grows with the largest layer).
    """
    import keras

    if kind == "single":
        side = max(1, round(math.sqrt(weights)))
        inputs = keras.Input((side,))
        return keras.Model(inputs, keras.layers.Dense(side, name="dense")(inputs), name=f"single_{weights}")

    channels = max(1, round(math.sqrt(weights / 36)))  # two 3x3 convs: 18 c^2
    remaining = weights / 2
    units = max(1, round((-channels + math.sqrt(channels**2 + 4 * remaining)) / 2))  # c*d + d*d
    inputs = keras.Input((4, 4, channels))
    x = keras.layers.Conv2D(channels, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.Conv2D(channels, 3, padding="same", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(units, name="dense1")(x)
    outputs = keras.layers.Dense(units, name="dense2")(x)
    return keras.Model(inputs, outputs, name=f"bench_{weights}")


def _status_kib(field):
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def measure(weights, kind="mixed"):
    """Runs in the subprocess: builds, exports twice, returns the figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mat_keras import export
    from timing import Stopwatch

    model = build_model(weights, kind)
    count = sum(int(math.prod(w.shape)) for w in model.weights if len(w.shape) > 1)
    device = export.Device(1e-6, 40e-6, 16)
    workdir = tempfile.mkdtemp(prefix="export_scale_")
    try:
        # Warm-up on a tiny model: imports and first-call costs are not export costs.
        export.conductance_tables(build_model(1000), os.path.join(workdir, "warm"), device=device, formats=("npz",))
        before = _status_kib("VmRSS")
        reset = _reset_peak_rss()
        times = []
        for run in range(REPEATS):
            out = os.path.join(workdir, f"run{run}")
            with Stopwatch() as watch:
                export.conductance_tables(model, out, device=device, formats=("npz",))
            times.append(watch.seconds)
            if run == 0:
                # Peak of the first run only: later runs may reuse freed memory.
                peak = _status_kib("VmHWM") if reset else None
                size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
            shutil.rmtree(out)
        tracemalloc.start()
        export.conductance_tables(model, os.path.join(workdir, "b"), device=device, formats=("npz",))
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "weights": count,
        "seconds": min(times),
        "seconds_all": times,
        "peak_rss_bytes": None if peak is None else (peak - before) * 1024,
        "tracemalloc_peak_bytes": traced,
        "files_bytes": size,
    }


def _run_size(millions, kind):
    command = [sys.executable, os.path.abspath(__file__), "--one", str(int(millions * 1_000_000)), "--model", kind]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"size {millions}M failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(rows):
    """Prints the table and the ratios."""
    print(f"{'weights':>12} {'time s':>8} {'peak RSS MB':>12} {'traced MB':>10} {'files MB':>9}"
          f" {'us/weight':>10} {'RSS B/weight':>13} {'traced B/weight':>16}")
    for r in rows:
        rss = r["peak_rss_bytes"]
        rss_mb = "n/a" if rss is None else f"{rss / 2**20:.0f}"
        rss_per = "n/a" if rss is None else f"{rss / r['weights']:.2f}"
        print(
            f"{r['weights']:>12,} {r['seconds']:>8.2f} {rss_mb:>12}"
            f" {r['tracemalloc_peak_bytes'] / 2**20:>10.0f} {r['files_bytes'] / 2**20:>9.0f}"
            f" {1e6 * r['seconds'] / r['weights']:>10.3f} {rss_per:>13}"
            f" {r['tracemalloc_peak_bytes'] / r['weights']:>16.2f}"
        )
    first, last = rows[0], rows[-1]
    growth = last["weights"] / first["weights"]
    print()
    print(f"From {first['weights']:,} to {last['weights']:,} weights (x{growth:.1f}):")
    print(f"  time   x{last['seconds'] / first['seconds']:.1f}"
          f"  (per weight x{(last['seconds'] / last['weights']) / (first['seconds'] / first['weights']):.2f}; 1.00 = linear)")
    for key, label in (("peak_rss_bytes", "peak RSS"), ("tracemalloc_peak_bytes", "traced peak")):
        if first[key] and last[key]:
            print(f"  {label:<11} x{last[key] / first[key]:.1f}"
                  f"  (per weight x{(last[key] / last['weights']) / (first[key] / first['weights']):.2f})")
    own = 4 * last["weights"]
    print(f"At {last['weights']:,} weights (float32 size {own / 2**20:.0f} MB):")
    print(f"  export time {last['seconds']:.2f} s (target < {TARGET_SECONDS:g} s)")
    for key, label in (("peak_rss_bytes", "peak RSS"), ("tracemalloc_peak_bytes", "traced peak")):
        if last[key]:
            print(f"  {label} / weights' size = {last[key] / own:.2f} (target < {TARGET_MEMORY_RATIO:g})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10,25", help="millions of weights, comma-separated")
    parser.add_argument("--model", choices=("mixed", "single"), default="mixed",
                        help="mixed: Conv2D and Dense layers (default); single: one square Dense layer")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.model)))
        return 0
    rows = []
    for size in [float(s) for s in args.sizes.split(",")]:
        rows.append(_run_size(size, args.model))
        print(f"  measured {rows[-1]['weights']:,} weights: {rows[-1]['seconds']:.2f} s", file=sys.stderr)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
