"""What `train` and `evaluate` share: the task's data, the sweep options, the report.

Both subcommands run on a zoo task's test data, sweep models against noise
(or a device over time) and write the same table, JSON, CSV and PNG.
"""

import argparse
import json
import os

import mat_keras as mat
from mat_keras import crossbar as crossbar_lib
from mat_keras import sweep
from mat_keras.errors import InputFileError, InvalidArgumentError, MatKerasError
from mat_keras.io_utils import check_output_path, read_text
from mat_keras.validation import check_integer, check_non_negative, check_seed
from mat_keras.zoo import load_dataset, tasks


def float_list(text):
    """argparse type of `--sds`: comma-separated numbers.

    Example:

    >>> float_list("0,0.1,0.2")
    [0.0, 0.1, 0.2]
    """
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def add_sweep_arguments(parser):
    """Adds the options of the sweep, the data and the output to `parser`.

    Args:
        parser: the (sub)parser of `train` or `evaluate`.
    """
    parser.add_argument("--sds", type=float_list, default=None,
                        help="inference noise levels, comma-separated (default: the task's)")
    parser.add_argument("--draws", type=int, default=10, help="noise draws per level (default 10)")
    parser.add_argument("--out-dir", default=None,
                        help="folder for sweep.json, sweep.csv and sweep.png (default runs/TASK)")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    parser.add_argument("--records", default=None,
                        help="ecg: MIT-BIH record numbers, comma-separated (default 208)")
    parser.add_argument("--encoding", choices=("delta", "raw"), default=None,
                        help="ecg: delta-modulated events (default) or the raw leads")
    # `-seed` and `-verbose`: the reference implementation's spellings.
    parser.add_argument("--seed", "-seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--verbose", "-verbose", action="store_true",
                        help="Keras progress bars for every epoch")


def check_sweep_arguments(args):
    """Checks the options `add_sweep_arguments` adds, before anything trains or loads.

    Returns:
        The zoo task of `--task`.

    Raises:
        InvalidArgumentError: an unknown task, fewer than 1 draw, a seed
            outside 0..2**32-1, a noise level that is not a finite number
            >= 0, or no level.
        InputFileError: `--data-dir` is a file.
        OutputPathError: `--out-dir` cannot be written.
    """
    task = tasks.get_task(args.task)
    check_integer(args.draws, "--draws")
    check_seed(args.seed, "--seed", allow_none=False)
    if args.sds is not None:
        for sd in args.sds:
            check_non_negative(sd, "each of --sds")
        if not args.sds:
            raise InvalidArgumentError("--sds must list at least one noise level, e.g. 0,0.1,0.2.")
    check_data_dir(args.data_dir)
    check_output_path(output_dir(args), "--out-dir", kind="folder")
    return task


def check_data_dir(data_dir, option="--data-dir"):
    """Raises `InputFileError` when `data_dir` is given and is not a folder (it may not exist yet)."""
    if data_dir is not None and os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise InputFileError(f"{option} '{data_dir}' is a file, not a folder.")


def output_dir(args):
    """The folder the report goes to: `--out-dir`, or runs/TASK."""
    return args.out_dir or os.path.join("runs", args.task)


def device_identifier(text, option):
    """Returns what `devices.resolve_device` takes for an option's text, its file read and checked here.

    A `.json` file or an inline JSON text becomes the dict it holds; a
    measurements `.csv` must exist and be text; anything else (an alias, a
    number) is returned as is. Each failure is one sentence naming the file
    and what is wrong with it.

    Args:
        text: the option's value, e.g. `"pcm"`, `"device.json"`,
            `'{"programming": 0.02}'`, `"levels.csv"`.
        option: the option's name, for the messages (`"--device"`).

    Raises:
        InputFileError: a file that is missing, empty, not text or not a
            JSON object.
        InvalidArgumentError: an inline JSON text that is not a JSON object.

    Example:

    >>> device_identifier('{"programming": 0.02}', "--device")
    {'programming': 0.02}
    """
    name = text.strip()
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".csv":
        read_text(name, f"{option} measurements file")
        return name
    if suffix == ".json":
        return _json_object(read_text(name, f"{option} file"), f"The {option} file '{name}'", InputFileError)
    if name.startswith(("{", "[")):
        return _json_object(name, f"The {option} JSON", InvalidArgumentError)
    return text


def _json_object(text, source, error, example='{"programming": 0.02}'):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{source} is not valid JSON ({problem.msg} at line {problem.lineno}, "
                    f"column {problem.colno}).") from None
    if not isinstance(value, dict):
        raise error(f"{source} must hold a JSON object such as {example}, "
                    f"got {type(value).__name__} {json.dumps(value)[:40]}.")
    return value


CROSSBAR_HELP = (
    "the crossbar: ideal or standard, or Crossbar settings as a JSON object (a string or a .json "
    "file), e.g. '{\"tile_rows\": 256, \"input_bits\": 8, \"output_noise\": 0.04}'"
)


def parse_crossbar(text, option="--crossbar"):
    """Returns the `Crossbar` an option's text names, checked before anything loads.

    Args:
        text: an alias (`"standard"`), a JSON object of `Crossbar` settings
            (`'{"tile_rows": 256}'`), or the path of a `.json` file holding one.
        option: the option's name, for the messages.

    Returns:
        A `mat_keras.crossbar.Crossbar`.

    Raises:
        InvalidArgumentError: an unknown alias, JSON that is not an object,
            or bad settings (one sentence, from `Crossbar`'s own checks).
        InputFileError: a `.json` file that is missing, empty or not text.

    Example:

    >>> parse_crossbar('{"input_bits": 4}').input_steps
    14
    """
    name = text.strip()
    example = '{"tile_rows": 256}'
    if os.path.splitext(name)[1].lower() == ".json":
        identifier = _json_object(read_text(name, f"{option} file"), f"The {option} file '{name}'",
                                  InputFileError, example)
    elif name.startswith(("{", "[")):
        identifier = _json_object(name, f"The {option} JSON", InvalidArgumentError, example)
    else:
        identifier = name
    try:
        return crossbar_lib.get(identifier)
    except MatKerasError:
        raise
    except (TypeError, ValueError) as error:  # a Keras config that does not deserialise
        first = str(error).split(". ")[0].rstrip(".")
        raise InvalidArgumentError(f"{option} holds no crossbar config Keras can read: {first}.") from None


def calibration_inputs(data, samples=1024):
    """The training inputs a crossbar's input ranges are calibrated with: the first `samples`."""
    return data.x_train[:samples]


def load_task_data(args):
    """Returns `(task, dataset)` for `--task`, with `--records` and `--encoding` applied.

    Raises:
        InvalidArgumentError: an unknown task, or ecg options for another task.
        DataUnavailableError: the dataset is neither on disk nor downloadable.
    """
    task = tasks.get_task(args.task)
    options = dict(task.dataset_options)
    if args.records is not None or args.encoding is not None:
        if task.dataset != "mitbih":
            raise InvalidArgumentError("--records and --encoding apply to the ecg task only.")
        if args.records is not None:
            options["records"] = _record_list(args.records)
        if args.encoding is not None:
            options["encoding"] = args.encoding
    data = load_dataset(task.dataset, data_dir=args.data_dir, seed=args.seed, **options)
    return task, data


def _record_list(text):
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise InvalidArgumentError(
            f"--records takes record numbers such as 208,209; got {text!r}."
        ) from None


def sweep_and_report(models, args, task, data, crossbar=None):
    """Sweeps each `(name, model)`, prints the table, writes JSON, CSV and PNG.

    Args:
        models: list of `(name, keras.Model)`.
        args: the parsed options (`--sds`, `--draws`, `--seed`, `--out-dir`).
        task: the zoo task, whose sweep levels are the default.
        data: the task's `Dataset`.
        crossbar: None, or the `Crossbar` the sweeps compute through (its
            input ranges, where never set, calibrated from the first 1,024
            training inputs).

    Returns:
        The list of `SweepResult`s, one a model.
    """
    sds = args.sds if args.sds is not None else list(task.sweep_sds)
    results = []
    for name, model in models:
        chip = "" if crossbar is None else f" through the crossbar {sweep.describe_crossbar(crossbar.get_config())}"
        print(f"Robustness sweep of {name}{chip}: {len(sds)} levels x {args.draws} draws on {data.name} test data")
        results.append(
            mat.robustness_sweep(
                model,
                data.test_dataset(256),
                sds=sds,
                draws=args.draws,
                seed=args.seed,
                name=name,
                data=data.description,
                # Progress shows always: a bar on a terminal, a line per level in a log.
                verbose=1,
                crossbar=crossbar,
                calibration_data=None if crossbar is None else calibration_inputs(data),
            )
        )
    report(results, f"{args.draws} draws, {data.description}", args, "sweep")
    return results


def report(results, title, args, stem):
    """Prints the results' table and writes `<stem>.json`, `.csv` and `.png` to the output folder.

    Args:
        results: sweep or deployment results.
        title: what the figures average over, for the table's heading.
        args: the parsed options (`--out-dir`, `--task`).
        stem: the files' name without extension.
    """
    print()
    print(f"Mean test accuracy (%) ± sd over {title}")
    print(sweep.format_table(results))
    out_dir = output_dir(args)
    sweep.save_json(os.path.join(out_dir, f"{stem}.json"), results)
    sweep.save_csv(os.path.join(out_dir, f"{stem}.csv"), results)
    sweep.plot_results(results, path=os.path.join(out_dir, f"{stem}.png"))
    print(f"\nWrote {out_dir}/{stem}.json, {stem}.csv and {stem}.png")
