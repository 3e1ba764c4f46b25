"""Accuracy over a simulated year on PCM: clean-trained against device-trained (MAT) MLPs.

The reference implementation's MNIST MLP (784-128-10, no biases, `zoo.mnist_mlp`) on the offline
`mnist-5k` data, recipe of `mat-keras train` (Adam 1e-3, batch 32, weights
clipped to ±2.5 std), all from the same initialisation and data order:

- "clean 20" and "clean 30": trained without noise, after 20 and 30 epochs
  ("clean 20" is the vanilla model `mat-keras train` reports; "clean 30" has
  the same number of epochs as the MAT models, the fair control);
- "MAT pcm": `mat.wrap(model, noise="pcm")` with `TwoPhaseSchedule(20)`:
  20 clean epochs, then 10 against a fresh PCM programming at every step;
- "MAT noisy": the same against `NOISY`, the PCM model with a much larger
  programming error (sd 0.25 g_max, a hypothetical device noisy enough to
  hurt this network);
- "clean 30, digital biases": the MLP with biases, which a chip keeps digital.

Each is deployed (`mat.deployment_sweep`, `--draws` programmings, read at
1 s, 1 h, 1 day, 1 month, 1 year, with and without global drift
compensation) on the device it is compared on.

Run: python benchmarks/experiments/pcm_deployment.py [--draws 10 --seed 0]
Writes runs/pcm_deployment/{pcm,noisy,bias}.{json,png}.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import sweep, zoo  # noqa: E402

#: PCM with a programming error of 25 % of g_max at every state: hypothetical.
NOISY = mat.noise.PCM(programming=0.25)


def biased_mlp():
    """The reference implementation's MLP with biases (which a chip keeps digital)."""
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu", name="hidden"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mnist_mlp_bias",
    )


class Snapshot(keras.callbacks.Callback):
    """Keeps a plain copy of the model at the end of epoch `epoch` (1-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.copy = epoch, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            self.copy = keras.models.clone_model(self.model)
            self.copy.set_weights(self.model.get_weights())


def train(build, data, args, noise=None):
    """Trains `build()` for `args.epochs`; with `noise`, MAT after `args.clean_epochs`."""
    keras.utils.set_random_seed(args.seed)
    model = build()
    callbacks = [mat.WeightClip(2.5)]
    if noise is not None:
        model = mat.wrap(model, noise=noise, seed=args.seed)
        callbacks.append(mat.TwoPhaseSchedule(args.clean_epochs))
    snapshot = Snapshot(args.clean_epochs)
    if noise is None:
        callbacks.append(snapshot)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(data.train_dataset(32, seed=args.seed), epochs=args.epochs,
              callbacks=callbacks, verbose=0)
    return model, snapshot.copy


def report(title, models, device, data, args, path):
    results = []
    for name, model in models.items():
        results += mat.deployment_sweep(
            model, data.x_test, data.y_test, device=device, draws=args.draws,
            seed=args.seed, name=name, data=data.description, verbose=0,
        )
    print(f"\n{title}: mean test accuracy (%) ± sd over {args.draws} programmings")
    print(sweep.format_table(results))
    sweep.save_json(path + ".json", results)
    sweep.plot_results(results, path=path + ".png", title=f"{title}, {data.name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--clean-epochs", type=int, default=20)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=os.path.join("runs", "pcm_deployment"))
    args = parser.parse_args()
    data = zoo.load_dataset("mnist-5k", seed=0)
    start = time.perf_counter()
    clean, clean_early = train(zoo.mnist_mlp, data, args)
    mat_pcm, _ = train(zoo.mnist_mlp, data, args, noise="pcm")
    mat_noisy, _ = train(zoo.mnist_mlp, data, args, noise=NOISY)
    biased, _ = train(biased_mlp, data, args)
    print(f"backend={keras.backend.backend()}  trained in {time.perf_counter() - start:.0f} s  "
          f"epochs={args.epochs} (MAT after {args.clean_epochs})  seed={args.seed}  {data.description}")
    e, c = args.epochs, args.clean_epochs
    pcm_models = {f"clean {c}": clean_early, f"clean {e}": clean, "MAT pcm": mat_pcm}
    report("PCM preset", pcm_models, "pcm", data, args, os.path.join(args.out_dir, "pcm"))
    noisy_models = {f"clean {e}": clean, "MAT noisy": mat_noisy}
    report("Noisy PCM (programming sd 0.25 g_max)", noisy_models, NOISY, data, args,
           os.path.join(args.out_dir, "noisy"))
    report("PCM preset, digital biases", {f"clean {e}, digital biases": biased}, "pcm", data, args,
           os.path.join(args.out_dir, "bias"))
    print(f"\nWrote {args.out_dir}/{{pcm,noisy,bias}}.{{json,png}}")


if __name__ == "__main__":
    main()
