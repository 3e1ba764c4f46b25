"""What `train` and `evaluate` share: the task's data, the sweep options, the report.

Both subcommands run on a zoo task's test data, sweep models against noise
(or a device over time) and write the same table, JSON, CSV and PNG.
"""

import argparse
import os

import mat_keras as mat
from mat_keras import sweep
from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer, check_seed
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
    # `-seed` and `-verbose`: the seed's spellings.
    parser.add_argument("--seed", "-seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--verbose", "-verbose", action="store_true",
                        help="Keras progress bars for every epoch and the sweep")


def check_sweep_arguments(args):
    """Checks `--draws` and `--seed` before anything trains or loads.

    Raises:
        InvalidArgumentError: fewer than 1 draw, or a seed outside 0..2**32-1.
    """
    check_integer(args.draws, "--draws")
    check_seed(args.seed, "--seed", allow_none=False)


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


def sweep_and_report(models, args, task, data):
    """Sweeps each `(name, model)`, prints the table, writes JSON, CSV and PNG.

    Args:
        models: list of `(name, keras.Model)`.
        args: the parsed options (`--sds`, `--draws`, `--seed`, `--out-dir`).
        task: the zoo task, whose sweep levels are the default.
        data: the task's `Dataset`.

    Returns:
        The list of `SweepResult`s, one a model.
    """
    sds = args.sds if args.sds is not None else list(task.sweep_sds)
    results = []
    for name, model in models:
        print(f"Robustness sweep of {name}: {len(sds)} levels x {args.draws} draws on {data.name} test data")
        results.append(
            mat.robustness_sweep(
                model,
                data.test_dataset(256),
                sds=sds,
                draws=args.draws,
                seed=args.seed,
                name=name,
                data=data.description,
                verbose=1 if args.verbose else 0,
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
    out_dir = args.out_dir or os.path.join("runs", args.task)
    sweep.save_json(os.path.join(out_dir, f"{stem}.json"), results)
    sweep.save_csv(os.path.join(out_dir, f"{stem}.csv"), results)
    sweep.plot_results(results, path=os.path.join(out_dir, f"{stem}.png"))
    print(f"\nWrote {out_dir}/{stem}.json, {stem}.csv and {stem}.png")
