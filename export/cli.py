"""`mat-keras export`: conductance tables of a saved model, from the shell.

Example:

    mat-keras export model.keras chip/ --levels 16 --g-min 1e-6 --g-max 40e-6 \\
        --tile 256x256 --format npz,csv --task mnist-5k

prints the per-matrix summary (shape, tiles, scale, reconstruction error,
share of devices per level) and, with `--task`, the test accuracy of the
model and of the model re-imported from the tables.

`mat_keras.cli` creates the parser and calls `add_arguments` and `run`;
bad input raises `MatKerasError` subclasses, which it reports in one sentence
with exit status 2.
"""

import os

import numpy as np

from mat_keras.errors import InvalidArgumentError, MatKerasError


def add_arguments(parser):
    """Adds the `export` options to an argparse parser.

    Args:
        parser: the (sub)parser of `mat-keras export`.
    """
    parser.add_argument("model", help="the trained model, a .keras file")
    parser.add_argument("out_dir", help="folder to create for the tables")
    device = parser.add_argument_group("device")
    device.add_argument(
        "--levels", default="16",
        help="programmable levels: a count (uniform from g-min to g-max, default 16) or a "
        "comma-separated list of measured level conductances in siemens",
    )
    device.add_argument("--g-min", type=float, default=1e-6, help="lowest conductance in siemens (default 1e-6)")
    device.add_argument("--g-max", type=float, default=40e-6, help="highest conductance in siemens (default 40e-6)")
    device.add_argument(
        "--scheme", default="differential",
        help="differential (G+/G- pair per weight, default) or offset (one device per weight and a "
        "reference column at mid conductance)",
    )
    mapping = parser.add_argument_group("mapping")
    mapping.add_argument("--tile", default="256x256", help="crossbar tile ROWSxCOLS, in weights (default 256x256)")
    mapping.add_argument("--format", default="npz,csv", help="npz or npz,csv (one CSV per tile; default npz,csv)")
    mapping.add_argument(
        "--scale", default="max",
        help="max (max |w|, default) or percentile:Q (clip weights beyond the Q-th percentile of |w|)",
    )
    mapping.add_argument("--per", default="layer", help="one scale per layer (default) or per column")
    mapping.add_argument("--bias", default="digital", help="digital (default) or row (an extra row driven at 1)")
    mapping.add_argument(
        "--no-fold-batchnorm", action="store_true",
        help="keep BatchNorms digital instead of folding them into the layer before",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--overwrite", action="store_true", help="replace an existing tables folder")
    output.add_argument("--plot", action="store_true", help="draw conductance maps and level histograms (PNG)")
    check = parser.add_argument_group("accuracy check")
    check.add_argument("--task", default=None, help="dataset to evaluate the model and its re-import on, e.g. mnist-5k")
    check.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    check.add_argument(
        "--programming-noise", type=float, default=None,
        help="Gaussian programming noise sd on normalised conductance for the re-import (default none)",
    )
    check.add_argument("--seed", type=int, default=0, help="seed of the programming noise (default 0)")


def parse_levels(text):
    """Returns `--levels` as an int or a list of conductances.

    Raises:
        InvalidArgumentError: neither an integer nor a list of numbers.

    Example:

    >>> parse_levels("16"), parse_levels("1e-6,5e-6,20e-6")
    (16, [1e-06, 5e-06, 2e-05])
    """
    text = str(text).strip()
    try:
        if "," in text:
            return [float(part) for part in text.split(",") if part.strip()]
        return int(text)
    except ValueError:
        raise InvalidArgumentError(
            f"--levels must be a level count or comma-separated conductances, got {text!r}."
        ) from None


def run(args):
    """Runs `mat-keras export` with parsed `args`; returns the exit status.

    Raises:
        MatKerasError: bad options, an unreadable model, an existing folder,
            an unsupported layer, or a dataset that cannot be loaded.
    """
    from mat_keras.export import apply_tables, conductance_tables
    from mat_keras.export.device import Device
    from mat_keras.export.weights import plain_model

    # Options are checked before the model loads: a typo fails fast.
    device = Device(args.g_min, args.g_max, parse_levels(args.levels), args.scheme)
    if args.programming_noise is not None and not args.task:
        raise InvalidArgumentError("--programming-noise only applies with --task.")
    # A wrapped (NoisyWeights) model is judged by its clean weights.
    model = plain_model(_load_model(args.model))
    summary = conductance_tables(
        model,
        args.out_dir,
        device=device,
        tile=args.tile,
        formats=args.format,
        overwrite=args.overwrite,
        scale=args.scale,
        per=args.per,
        bias=args.bias,
        fold_batchnorm=not args.no_fold_batchnorm,
        plot=args.plot,
    )
    print(f"Conductance tables of {os.path.basename(args.model)}")
    print(summary.table())
    if args.task:
        data = _load_data(args.task, args.data_dir)
        chip = apply_tables(model, args.out_dir, programming_noise=args.programming_noise, seed=args.seed)
        original = accuracy(model, data)
        reimported = accuracy(chip, data)
        noise = (
            f", programming noise sd {args.programming_noise:g}"
            if args.programming_noise is not None
            else ""
        )
        print(
            f"Test accuracy on {args.task} ({len(data.y_test):,} examples): "
            f"original {100 * original:.2f} %, re-imported from the tables {100 * reimported:.2f} % "
            f"({100 * (reimported - original):+.2f} points{noise})"
        )
    return 0


def _load_model(path):
    from mat_keras.cli import load_model_file

    return load_model_file(path)


def _load_data(name, data_dir):
    from mat_keras import zoo

    # A task name of the zoo (as `mat-keras train --task`) or a dataset name.
    try:
        from mat_keras.zoo import tasks

        name = tasks.get_task(name).dataset
    except (ImportError, MatKerasError, KeyError):  # not a task: a dataset name
        pass
    return zoo.load_dataset(name, data_dir=data_dir)


def accuracy(model, data, batch_size=256):
    """Returns the test accuracy of a classifier on a zoo `Dataset`.

    Multi-class outputs are scored by argmax; a single output by its sign
    (a logit).

    Example:

    >>> accuracy(model, zoo.load_dataset("mnist-5k"))
    0.962
    """
    correct = total = 0
    for x, y in data.test_dataset(batch_size):
        outputs = np.asarray(model(x, training=False))
        if outputs.shape[-1] == 1:
            predicted = (outputs[..., 0] > 0).astype(np.int64)
        else:
            predicted = outputs.argmax(axis=-1)
        labels = np.asarray(y).reshape(predicted.shape)
        correct += int(np.sum(predicted == labels))
        total += labels.size
    return correct / max(1, total)
