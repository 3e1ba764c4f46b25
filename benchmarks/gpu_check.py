"""GPU check: MobileNetV2 (width 0.4) train steps, clean and MAT, mat-keras (JAX) against PyTorch.

Runs on one GPU machine with JAX and PyTorch (no TensorFlow): synthetic
CIFAR-shaped data, batch 128, float32. In one run it times
- mat-keras (`zoo.cifar_mobilenetv2` wrapped with `mat.wrap`, JAX backend)
  with the noise gate closed (clean) and open (MAT, sd 0.05);
- the same network in PyTorch (`torch_peer.CifarMobileNetV2`), plain and with
  the reference implementation's noise (every parameter, every forward pass);
- a robustness sweep (7 levels x draws) over 10,000 images: draws per second.
Prints the ratios (targets: MAT/clean <= 1.05, mat-keras MAT / PyTorch MAT
<= 0.8) and writes them as JSON to --json.

Run through `benchmarks/gpu_check.sh`, or directly with KERAS_BACKEND=jax.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import zoo  # noqa: E402
from timing import EpochTimer, Stopwatch, median_ms  # noqa: E402


def keras_step_times(batch, steps, epochs, noise_sd):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch * steps)
    keras.utils.set_random_seed(0)
    model = mat.wrap(zoo.cifar_mobilenetv2(width_multiplier=0.4), noise=noise_sd, seed=0)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    results = {}
    for label, gate in (("clean", 0.0), ("mat", 1.0)):
        mat.set_noise_gate(model, gate)
        timer = EpochTimer()  # epochs are short and synchronised by the loss read
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=[timer])
        results[label] = median_ms(timer.times[1:], per=steps)
    return results, model, (x, y)


def torch_step_times(batch, steps, epochs, noise_sd):
    import torch

    sys.path.insert(0, os.path.dirname(__file__))
    from torch_peer import CifarMobileNetV2, make_train_step

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    x = torch.randn(batch * steps, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch * steps,), device=device)
    results = {}
    for label, sd in (("plain", 0.0), ("mat", noise_sd)):
        model = CifarMobileNetV2(10, 0.4).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        step = make_train_step(model, optimizer, sd=sd)
        times = []
        for _ in range(epochs):
            if device == "cuda":
                torch.cuda.synchronize()
            with Stopwatch() as watch:
                for i in range(steps):
                    loss = step(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
                loss.item()
            times.append(watch.seconds)
        results[label] = median_ms(times[1:], per=steps)
    return results


def sweep_throughput(model, images, draws):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(images, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, images)
    mat.robustness_sweep(model, x, y, sds=[0.0], draws=1, batch_size=1000, verbose=0)  # trace
    with Stopwatch() as watch:
        mat.robustness_sweep(model, x, y, draws=draws, batch_size=1000, verbose=0)
    seconds = watch.seconds
    return {"draws_per_s": 7 * draws / seconds, "images_per_s": 7 * draws * images / seconds, "seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per setting (first one discarded)")
    parser.add_argument("--noise-sd", type=float, default=0.05)
    parser.add_argument("--sweep-images", type=int, default=10000)
    parser.add_argument("--sweep-draws", type=int, default=5)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import jax

    report = {"backend": keras.backend.backend(), "devices": [str(d) for d in jax.devices()],
              "batch": args.batch, "steps": args.steps, "noise_sd": args.noise_sd}
    keras_ms, model, _ = keras_step_times(args.batch, args.steps, args.epochs, args.noise_sd)
    report["keras_ms_per_step"] = keras_ms
    report["keras_mat_over_clean"] = keras_ms["mat"] / keras_ms["clean"]
    print(f"mat-keras (JAX) ms/step: clean {keras_ms['clean']:.2f}  MAT {keras_ms['mat']:.2f}  "
          f"MAT/clean {report['keras_mat_over_clean']:.3f}  (target <= 1.05)", flush=True)
    if not args.skip_torch:
        torch_ms = torch_step_times(args.batch, args.steps, args.epochs, args.noise_sd)
        report["torch_ms_per_step"] = torch_ms
        report["torch_mat_over_plain"] = torch_ms["mat"] / torch_ms["plain"]
        report["keras_mat_over_torch_mat"] = keras_ms["mat"] / torch_ms["mat"]
        print(f"PyTorch ms/step: plain {torch_ms['plain']:.2f}  MAT {torch_ms['mat']:.2f}  "
              f"MAT/plain {report['torch_mat_over_plain']:.3f}", flush=True)
        print(f"mat-keras MAT / PyTorch MAT: {report['keras_mat_over_torch_mat']:.3f}  (target <= 0.8)", flush=True)
    report["sweep"] = sweep_throughput(model, args.sweep_images, args.sweep_draws)
    print(f"sweep: 7 levels x {args.sweep_draws} draws over {args.sweep_images} images in "
          f"{report['sweep']['seconds']:.1f} s: {report['sweep']['draws_per_s']:.1f} draws/s, "
          f"{report['sweep']['images_per_s']:.0f} images/s", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
