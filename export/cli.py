"""`mat-keras export`: conductance tables of a saved model, from the shell.

Example:

    mat-keras export model.keras chip/ --levels 16 --g-min 1e-6 --g-max 40e-6 \\
        --tile 256x256 --format npz,csv --task mnist-5k

prints the per-matrix summary (shape, tiles, scale, reconstruction error,
share of devices per level) and, with `--task`, the test accuracy of the
model and of the model re-imported from the tables.

With `--task --programming-noise pcm --time 1y`, the re-imported model is
programmed on a device model and read a year later (see `export.apply`).

With `--task --simulate standard`, the accuracy of the chip the tables
program is reported too: the re-imported weights computed through that
crossbar, on the tables' tiles (`export.simulate`; without `--tile`, the
tiles are the crossbar's, 256 where it sets none).

`mat_keras.cli` adds the subcommand with `add_parser`, whose handler is
`run`; bad input raises `MatKerasError` subclasses, which it reports in one
sentence with exit status 2.
"""

import os

import numpy as np

from mat_keras import zoo
from mat_keras.commands import runs
from mat_keras.crossbar.tiles import check_tile
from mat_keras.devices import Device, DeviceModel, format_time
from mat_keras.errors import InvalidArgumentError, ModelFileError
from mat_keras.export import apply_tables, conductance_tables
from mat_keras.export.apply import resolve_programming
from mat_keras.export.simulate import check_digital_biases, crossbar_for_tiles, simulate
from mat_keras.export.files import check_output_dir
from mat_keras.export.mapping import check_per, check_scale
from mat_keras.export.tables import check_formats
from mat_keras.export.weights import check_bias_mode, plain_model
from mat_keras.io_utils import check_input_file, check_output_path, load_model_file
from mat_keras.results import describe_crossbar
from mat_keras.validation import check_non_negative, check_seed
from mat_keras.zoo import tasks
from mat_keras.zoo.datasets import DATASETS

DEFAULT_TILE = (256, 256)


def add_parser(subparsers):
    """Adds the `export` subcommand to `subparsers`, with `run` as its handler."""
    parser = subparsers.add_parser(
        "export",
        help="quantised conductance tables for a chip",
        description="Map a trained model's weights onto memristor conductance levels and tiles.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


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
    mapping.add_argument(
        "--tile", default=None,
        help="crossbar tile ROWSxCOLS, in weights (default 256x256; with --simulate, the crossbar's tile "
        "size, 256 where it sets none)",
    )
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
        "--programming-noise", type=parse_programming_noise, default=None,
        help="programming noise of the re-import: a Gaussian sd on normalised conductance, or a device "
        "model (pcm, rram, measured, a measurements .csv, a JSON config) that programs the tables "
        "(default none)",
    )
    check.add_argument(
        "--time", default=None,
        help="with a device model: read the re-import this long after programming, in seconds or with "
        "a unit s/min/h/d/mo/y, e.g. 1y (default 0)",
    )
    check.add_argument(
        "--no-compensation", action="store_true",
        help="with a device model: no global drift compensation (default: the device model's setting)",
    )
    check.add_argument(
        "--simulate", default=None, metavar="CROSSBAR",
        help=f"also report the accuracy of the simulated chip computing through {runs.CROSSBAR_HELP}; "
        "its tiles must be the tables'",
    )
    check.add_argument("--seed", type=int, default=0,
                       help="seed of the programming noise and of the simulated chip's noise (default 0)")


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


def parse_programming_noise(text):
    """Returns `--programming-noise` as a number (a Gaussian sd) or the device's name.

    Example:

    >>> parse_programming_noise("0.02"), parse_programming_noise("pcm")
    (0.02, 'pcm')
    """
    try:
        return float(text)
    except ValueError:
        return text


def run(args):
    """Runs `mat-keras export` with parsed `args`; returns the exit status.

    Raises:
        MatKerasError: bad options, an unreadable model, an existing folder,
            an unsupported layer, or a dataset that cannot be loaded.
    """
    device, programming, tile, simulation = check_arguments(args)
    loaded = load_model_file(args.model)
    # A wrapped (NoisyWeights) model is judged by its clean weights.
    model = plain_model(loaded)
    summary = conductance_tables(
        model,
        args.out_dir,
        device=device,
        tile=tile,
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
        noise, time, compensation = programming
        chip = apply_tables(
            model, args.out_dir, programming_noise=noise, seed=args.seed, time=time, compensation=compensation
        )
        original = accuracy(model, data)
        reimported = accuracy(chip, data)
        print(
            f"Test accuracy on {args.task} ({len(data.y_test):,} examples): "
            f"original {100 * original:.2f} %, re-imported from the tables {100 * reimported:.2f} % "
            f"({100 * (reimported - original):+.2f} points{_describe(args, programming)})"
        )
        if simulation is not None:
            # The loaded model: a model trained through this crossbar keeps its learned ranges.
            chip = simulate(
                loaded, args.out_dir, crossbar=simulation, programming_noise=noise, seed=args.seed,
                time=time, compensation=compensation, calibration_data=data.x_train[:1024],
            )
            simulated = accuracy(chip, data)
            print(
                f"Simulated chip through the crossbar {describe_crossbar(simulation.get_config())} "
                f"on {tile[0]}x{tile[1]} tiles: {100 * simulated:.2f} % "
                f"({100 * (simulated - original):+.2f} points against the original)"
            )
    return 0


def check_arguments(args):
    """Checks every option before the model loads: a typo fails fast, and nothing is written.

    Returns:
        `(device, programming, tile, simulation)`: the `Device`,
        `resolve_programming`'s triple, the `(rows, cols)` tile and the
        `--simulate` crossbar, checked against that tile (None without
        `--simulate`).

    Raises:
        MatKerasError: the first bad option, in one sentence.
    """
    device = Device(args.g_min, args.g_max, parse_levels(args.levels), args.scheme)
    simulation = _simulation(args)
    tile = _tile(args.tile, simulation)
    check_formats(args.format)
    check_scale(args.scale)
    check_per(args.per)
    check_bias_mode(args.bias)
    if simulation is not None:
        check_digital_biases(args.bias)
        crossbar_for_tiles(simulation, tile)
    programming = _programming(args, device)
    check_seed(args.seed, "--seed", allow_none=False)
    if args.task:
        _dataset_name(args.task)
    runs.check_data_dir(args.data_dir)
    check_input_file(args.model, "model file", ModelFileError)
    check_output_dir(args.out_dir, args.overwrite)
    check_output_path(args.out_dir, "The tables folder", kind="folder")
    return device, programming, tile, simulation


def _simulation(args):
    """The `--simulate` crossbar, or None; it needs `--task`, whose data it is scored on."""
    if args.simulate is None:
        return None
    if not args.task:
        raise InvalidArgumentError("--simulate only applies with --task.")
    return runs.parse_crossbar(args.simulate, "--simulate")


def _tile(text, simulation):
    """The tables' tile: `--tile`, else the simulated crossbar's size (256 where it sets none)."""
    if text is not None:
        return check_tile(text)
    if simulation is None:
        return DEFAULT_TILE
    return tuple(size or default for size, default in zip((simulation.tile_rows, simulation.tile_cols), DEFAULT_TILE))


def _programming(args, device):
    """Checks the re-import options before anything loads; returns `resolve_programming`'s triple."""
    given = {
        "--programming-noise": args.programming_noise is not None,
        "--time": args.time is not None,
        "--no-compensation": args.no_compensation,
    }
    for option, present in given.items():
        if present and not args.task:
            raise InvalidArgumentError(f"{option} only applies with --task.")
    noise = args.programming_noise
    if isinstance(noise, float):
        check_non_negative(noise, "--programming-noise")
    elif noise is not None:
        noise = runs.device_identifier(noise, "--programming-noise")
    return resolve_programming(
        noise,
        device,
        args.time if args.time is not None else 0.0,
        False if args.no_compensation else None,
    )


def _describe(args, programming):
    """The re-import's programming noise, for the accuracy line ("" without noise)."""
    noise, time, compensation = programming
    if noise is None:
        return ""
    if not isinstance(noise, DeviceModel):
        sd = "sd " if isinstance(args.programming_noise, float) else ""
        return f", programming noise {sd}{args.programming_noise}"
    with_or_without = "with" if compensation else "without"
    return (
        f", device {args.programming_noise} read {format_time(time)} after programming, "
        f"{with_or_without} drift compensation"
    )


def _dataset_name(name):
    """The dataset of `--task`: a task name of the zoo (as `mat-keras train --task`) or a dataset name.

    Raises:
        InvalidArgumentError: neither.
    """
    if name in DATASETS:
        return name
    return tasks.get_task(name).dataset


def _load_data(name, data_dir):
    return zoo.load_dataset(_dataset_name(name), data_dir=data_dir)


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
