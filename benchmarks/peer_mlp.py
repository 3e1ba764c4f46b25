"""Epoch time of the reference implementation's MNIST-MLP MAT recipe: mat-keras on each Keras backend against PyTorch.

The recipe (the reference implementation's `-task mnist -noise_sd 0.2 -clip_w 2.5`): the 784-128-10
MLP without biases, batch 32, Adam (lr 1e-3), Gaussian weight noise of sd
0.2 x `2*max|w|` per tensor drawn afresh in every forward pass (straight-through
to the clean weights), weights clipped to ±2.5 std after every optimizer step.

- mat-keras: `zoo.mnist_mlp()` + `mat.wrap(noise=0.2)` + `mat.WeightClip(2.5)`,
  trained with `model.fit` (Keras defaults: `jit_compile="auto"`,
  `steps_per_execution=1`).
- PyTorch: the same recipe written directly in PyTorch, eager, as the reference implementation
  runs it (`benchmarks/torch_peer.py`: `mnist_mlp()`, `make_train_step`).

Both train on the same data, the offline `mnist-5k` training split (4,000 real
MNIST digits, 125 steps an epoch), shuffled every epoch. The Keras backend is
fixed per process, so the script runs one subprocess per backend; each times
mat-keras and PyTorch in interleaved rounds (so that machine noise hits both
alike), after a warm-up epoch of each, and reports the median epoch time of
each and their ratio. Both frameworks get the same number of CPU threads
(`--threads`, default 1; 0 keeps each framework's default): on a shared
machine, default thread pools that spin while waiting for busy cores make
single runs erratic (PyTorch's OpenMP pool took 14-27 s an epoch with 2
threads on the 2 busy cores where 1 thread takes 0.4 s). The test accuracy
of both after the run is printed as a check that the two train alike. Target (issue 8): ratio at most 1.0 on at
least one backend.

Run: python benchmarks/peer_mlp.py [--backends tensorflow,jax,torch] [--rounds 10] [--threads 1]
"""

import argparse
import json
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")
NOISE_SD = 0.2
CLIP_W = 2.5
BATCH_SIZE = 32
LEARNING_RATE = 1e-3


def thread_env(threads):
    """Environment variables that give every framework `threads` CPU threads."""
    if threads <= 0:
        return {}
    n = str(threads)
    xla = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={n}"
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1",
        "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + xla).strip(),
    }


def worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
    import keras
    import numpy as np

    if args.threads > 0 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    import mat_keras as mat
    import torch_peer
    from timing import EpochTimer, Stopwatch
    from mat_keras import zoo

    data = zoo.load_dataset("mnist-5k")
    x, y = data.x_train.astype("float32"), data.y_train.astype("int64")
    x_test, y_test = data.x_test.astype("float32"), data.y_test.astype("int64")

    # mat-keras.
    keras.utils.set_random_seed(0)
    robust = mat.wrap(zoo.mnist_mlp(), noise=NOISE_SD, seed=0)  # gate 1: noise from the first step
    robust.compile(
        keras.optimizers.Adam(LEARNING_RATE),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    # PyTorch.
    torch.manual_seed(0)
    net = torch_peer.mnist_mlp()
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    step = torch_peer.make_train_step(net, optimizer, sd=NOISE_SD, clip_w=CLIP_W)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)

    torch_times = []

    def torch_epoch(epoch):
        with Stopwatch() as watch:
            order = torch.randperm(len(tx), generator=generator)
            for i in range(0, len(tx), BATCH_SIZE):
                index = order[i:i + BATCH_SIZE]
                step(tx[index], ty[index])
        torch_times.append(watch.seconds)

    # Each Keras epoch is timed, then one PyTorch epoch trains and is timed.
    # One `fit` call for the whole run: each `fit` call retraces the train
    # step (WeightClip adds its constraints then), and on JAX the new
    # function compiles inside its first epoch.
    timer = EpochTimer(after_epoch=torch_epoch)
    robust.fit(
        x, y, batch_size=BATCH_SIZE, epochs=args.rounds + 1, verbose=0,
        callbacks=[mat.WeightClip(CLIP_W), timer],
    )
    # The first epoch of each is the warm-up: tracing, compilation, allocators.
    keras_times = timer.times[1:]
    torch_times = torch_times[1:]

    keras_pred = keras.ops.convert_to_numpy(robust.predict(x_test, batch_size=256, verbose=0))
    with torch.no_grad():
        torch_pred = net(torch.from_numpy(x_test)).numpy()
    result = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "epochs": len(keras_times),
        "steps_per_epoch": -(-len(x) // BATCH_SIZE),
        "mat_keras_s": float(np.median(keras_times)),
        "pytorch_s": float(np.median(torch_times)),
        "mat_keras_accuracy": float((keras_pred.argmax(1) == y_test).mean()),
        "pytorch_accuracy": float((torch_pred.argmax(1) == y_test).mean()),
    }
    result["ratio"] = result["mat_keras_s"] / result["pytorch_s"]
    print("RESULT " + json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--rounds", type=int, default=10, help="timed epochs of each (after a warm-up epoch)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each framework (0: defaults)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    results = []
    for backend in args.backends.split(","):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **thread_env(args.threads))
        command = [
            sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(args.threads),
            "--rounds", str(args.rounds),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not lines:
            print(f"{backend}: failed (exit {done.returncode})\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        results.append(json.loads(lines[-1][len("RESULT "):]))

    if not results:
        return 1
    first = results[0]
    print(
        f"Seed MNIST-MLP MAT recipe, mnist-5k train split, batch {BATCH_SIZE} "
        f"({first['steps_per_epoch']} steps/epoch), Adam {LEARNING_RATE:g}, noise sd {NOISE_SD}, "
        f"clip {CLIP_W}; median of {first['epochs']} epochs each, interleaved; "
        f"Keras {first['keras']}, PyTorch {first['torch']}; "
        + (f"{args.threads} CPU thread(s) each" if args.threads > 0 else "each framework's default threads")
        + f", {os.cpu_count()} cores"
    )
    print(f"{'backend':>11} {'mat-keras s/epoch':>18} {'PyTorch s/epoch':>16} {'ratio':>6} {'acc mat-keras':>14} {'acc PyTorch':>12}")
    for r in results:
        print(
            f"{r['backend']:>11} {r['mat_keras_s']:>18.3f} {r['pytorch_s']:>16.3f} {r['ratio']:>6.2f} "
            f"{100 * r['mat_keras_accuracy']:>13.1f}% {100 * r['pytorch_accuracy']:>11.1f}%"
        )
    fastest = min(results, key=lambda r: r["mat_keras_s"])
    met = [r["backend"] for r in results if r["ratio"] <= 1.0]
    print(
        f"fastest mat-keras backend on this CPU: {fastest['backend']} (ratio {fastest['ratio']:.2f}); "
        f"target ratio <= 1.0 on at least one backend: {'met on ' + ', '.join(met) if met else 'NOT met'}"
    )
    return 0 if len(results) == len(args.backends.split(",")) else 1


if __name__ == "__main__":
    sys.exit(main())
