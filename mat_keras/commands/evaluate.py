"""`mat-keras evaluate`: a saved model against inference noise, or deployed on a device.

    mat-keras evaluate model.keras --task mnist-5k [--sds 0,0.1,0.2]
    mat-keras evaluate model.keras --task mnist-5k --device pcm [--times 1s,1h,1y]
    mat-keras evaluate model.keras --task mnist-5k --device pcm --crossbar standard

The first sweeps Gaussian weight-noise levels; the second programs the
weights on a simulated chip and reads them at several times after
programming (`mat_keras.deployment`). With `--crossbar`, either computes
every product through that crossbar (`mat_keras.crossbar`): a model trained
through it keeps its learned input ranges, others are calibrated on the
first 1,024 training inputs.
"""

import os

from mat_keras import deployment
from mat_keras.commands import runs
from mat_keras.devices import parse_time, resolve_device
from mat_keras.errors import InvalidArgumentError, ModelFileError
from mat_keras.io_utils import check_input_file, load_model_file
from mat_keras.results import describe_crossbar
from mat_keras.zoo.training import check_model_fits


def add_parser(subparsers):
    """Adds the `evaluate` subcommand to `subparsers`, with `run` as its handler."""
    parser = subparsers.add_parser(
        "evaluate",
        help="robustness sweep of a saved model, or its deployment on a device over time",
        description="Accuracy of a saved .keras model against inference weight noise; with "
        "--device, on a simulated chip at several times after programming.",
    )
    parser.add_argument("model", help="a .keras model file")
    parser.add_argument("--task", "-task", required=True, help="task whose test data to use")
    runs.add_sweep_arguments(parser)
    parser.add_argument(
        "--device", default=None,
        help="deploy on a device model instead of sweeping noise levels: pcm, rram, gaussian, "
        "measured, a measurements .csv, or a JSON config (a string or a .json file)",
    )
    parser.add_argument(
        "--times", default=None,
        help="with --device: times after programming, comma-separated, in seconds or with a unit "
        "s/min/h/d/mo/y (default 1s,1h,1d,1mo,1y)",
    )
    parser.add_argument(
        "--no-compensation", action="store_true",
        help="with --device: only without global drift compensation (default: with and without)",
    )
    parser.add_argument(
        "--crossbar", default=None,
        help=f"compute through a chip: {runs.CROSSBAR_HELP} (default: exact products)",
    )
    parser.set_defaults(handler=run)


def run(args):
    """Runs `mat-keras evaluate` with parsed `args`; returns the exit status.

    Raises:
        MatKerasError: bad options, an unreadable model, a model that does
            not fit the task's data, or a dataset that cannot be loaded.
    """
    crossbar = None if args.crossbar is None else runs.parse_crossbar(args.crossbar)
    if args.device is not None:
        return _run_deployment(args, crossbar)
    for option, given in (("--times", args.times is not None), ("--no-compensation", args.no_compensation)):
        if given:
            raise InvalidArgumentError(f"{option} needs --device.")
    runs.check_sweep_arguments(args)
    check_input_file(args.model, "model file", ModelFileError)
    name, model, task, data = _load(args)
    runs.sweep_and_report([(name, model)], args, task, data, crossbar=crossbar)
    return 0


def _run_deployment(args, crossbar=None):
    """`evaluate --device`: a deployment sweep over time (through `crossbar`); table, JSON, CSV and PNG."""
    if args.sds is not None:
        raise InvalidArgumentError("--sds sets noise levels; with --device give --times instead.")
    runs.check_sweep_arguments(args)
    times = (
        [parse_time(t) for t in args.times.split(",") if t.strip()]
        if args.times is not None else list(deployment.DEFAULT_TIMES)
    )
    if not times:
        raise InvalidArgumentError("--times must list at least one time after programming, e.g. 1s,1d,1y.")
    check_input_file(args.model, "model file", ModelFileError)
    device = resolve_device(runs.device_identifier(args.device, "--device"))
    name, model, task, data = _load(args)
    chip = "" if crossbar is None else f" through the crossbar {describe_crossbar(crossbar.get_config())}"
    print(f"Deployment of {name} on {type(device).__name__}{chip}: {len(times)} times x {args.draws} "
          f"programmings on {data.name} test data")
    results = deployment.deployment_sweep(
        model,
        data.test_dataset(256),
        device=device,
        times=times,
        draws=args.draws,
        seed=args.seed,
        compensation=False if args.no_compensation else "both",
        name=name,
        data=data.description,
        verbose=1,
        crossbar=crossbar,
        calibration_data=None if crossbar is None else runs.calibration_inputs(data),
    )
    runs.report(results, f"{args.draws} programmings, {data.description}", args, "deployment")
    return 0


def _load(args):
    """Returns `(name, model, task, data)`: the model file's stem, the model, the task's data."""
    model = load_model_file(args.model)
    task, data = runs.load_task_data(args)
    check_model_fits(model, data)
    name = os.path.splitext(os.path.basename(args.model))[0]
    return name, model, task, data
