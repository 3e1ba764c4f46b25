"""Fashion-MNIST: vanilla against MAT at several training noise levels.

Runs the `fashion-mnist` task's recipe (`zoo.tasks`) through the public
API (`zoo.training.train_two_phase`, what `mat-keras train` runs) once per
training noise sd, same seed: the clean phase is then the same run every
time (checked: the vanilla weights of all runs must be equal), and only the
MAT phase differs. Every model is swept on the 10,000 real test images, 10
draws per inference level, sweep seed 0, and the tables are printed:
mean ± sd accuracy (%) per inference sd, then the issue's criteria.

Run (about 4 minutes per training sd for the MLP on two CPU cores):

    PYTHONPATH=. python benchmarks/experiments/fashion_mnist.py --model mlp --train-sds 0.05,0.1,0.2
    PYTHONPATH=. python benchmarks/experiments/fashion_mnist.py --model cnn --train-sds 0.05,0.1

`--save-dir DIR` also writes each model's weights (`vanilla.weights.h5`,
`mat-sd0.1.weights.h5`, ...) and the sweeps (`sweeps.json`), which
`fashion_noise_shift.py` reads.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import mat_keras as mat  # noqa: E402
from mat_keras import zoo  # noqa: E402
from mat_keras.zoo import tasks  # noqa: E402
from mat_keras.zoo.training import train_two_phase  # noqa: E402

SWEEP_SDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def sweep(model, data, name, draws, sds=SWEEP_SDS):
    """The robustness sweep of `model` on the full test split."""
    return mat.robustness_sweep(
        model, data.test_dataset(256), sds=list(sds), draws=draws, seed=0, name=name,
        data=data.description, verbose=0,
    )


def criteria(vanilla, robust, model):
    """The issue's pass/fail lines for one MAT result against vanilla."""
    v, r = vanilla.mean(), robust.mean()
    sds = list(vanilla.sds)
    clean_loss = 100 * (v[0] - r[0])
    if model == "mlp":
        i = sds.index(0.2)
        gain = 100 * (r[i] - v[i])
        return (f"{robust.name}: gain at sd 0.2 {gain:+.2f} points (need >= +10), "
                f"loss at sd 0 {clean_loss:+.2f} (need <= 3)")
    lost = [i for i, m in enumerate(v) if 100 * (v[0] - m) >= 15]
    if not lost:
        return f"{robust.name}: vanilla never loses 15 points over these levels"
    i = lost[0]
    gain = 100 * (r[i] - v[i])
    return (f"{robust.name}: at sd {sds[i]:g} (vanilla lost {100 * (v[0] - v[i]):.1f}) gain {gain:+.2f} "
            f"points (need >= +8), loss at sd 0 {clean_loss:+.2f} (need <= 2), clean {100 * v[0]:.2f} %")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--train-sds", default="0.05,0.1,0.2", help="training noise sds, comma-separated")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the task's")
    parser.add_argument("--clean-epochs", type=int, default=None, help="default: the task's")
    parser.add_argument("--save-dir", default=None)
    args = parser.parse_args()

    task = tasks.get_task("fashion-mnist").for_model(args.model)
    data = zoo.load_dataset("fashion-mnist")
    print(f"{data.description}; model {task.constructor_name()}; recipe: {task.epochs} epochs "
          f"({task.clean_epochs} clean), batch {task.batch_size}, {task.optimizer}, clip_w {task.clip_w}")
    results, vanilla, vanilla_weights = [], None, None
    for sd in [float(s) for s in args.train_sds.split(",")]:
        start = time.time()
        run = train_two_phase(task, data, model_name=args.model, noise_sd=sd, epochs=args.epochs,
                              clean_epochs=args.clean_epochs, seed=args.seed, verbose=0)
        trained = time.time() - start
        if vanilla is None:
            vanilla_weights = run.vanilla.get_weights()
            vanilla = sweep(run.vanilla, data, "vanilla", args.draws)
            results.append(vanilla)
            _save(args.save_dir, run.vanilla, "vanilla")
        else:
            same = all(np.array_equal(a, b) for a, b in zip(vanilla_weights, run.vanilla.get_weights()))
            print(f"clean phase identical to the first run's: {same}")
        plain = mat.strip(run.robust)
        results.append(sweep(plain, data, f"MAT sd {sd:g}", args.draws))
        _save(args.save_dir, plain, f"mat-sd{sd:g}")
        print(f"training sd {sd:g}: trained in {trained:.0f} s, swept in {time.time() - start - trained:.0f} s")
    print(f"\nMean ± sd test accuracy (%) over {args.draws} draws, {len(data.x_test):,} test images")
    print(mat.sweep.format_table(results))
    print()
    for result in results[1:]:
        print(criteria(vanilla, result, args.model))
    if args.save_dir:
        with open(os.path.join(args.save_dir, "sweeps.json"), "w") as stream:
            json.dump([r.to_dict() for r in results], stream, indent=1)


def _save(folder, model, name):
    if folder:
        os.makedirs(folder, exist_ok=True)
        model.save_weights(os.path.join(folder, f"{name}.weights.h5"))


if __name__ == "__main__":
    main()
