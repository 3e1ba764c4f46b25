"""The `mat-keras` command line: train, evaluate, export, zoo.

`mat-keras train --task mnist-5k` runs the seed's experiment end to end: a
clean phase, a memristor-aware phase, and the robustness sweep of the model
after each, side by side. The seed's own spellings (`-task mnist -noise_sd 0.2
-epochs 30 -clip_w 2.5 -verbose`) are accepted as aliases, with or without the
`train` subcommand.

Bad input ends in one sentence on stderr and exit status 2.
"""

import argparse
import os
import sys

from mat_keras.errors import InvalidArgumentError, MatKerasError, ModelFileError

_SUBCOMMANDS = ("train", "evaluate", "export", "zoo")


def _float_list(text):
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _add_sweep_arguments(parser):
    parser.add_argument("--sds", type=_float_list, default=None,
                        help="inference noise levels, comma-separated (default: the task's)")
    parser.add_argument("--draws", type=int, default=10, help="noise draws per level (default 10)")
    parser.add_argument("--out-dir", default=None,
                        help="folder for sweep.json, sweep.csv and sweep.png (default runs/TASK)")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    parser.add_argument("--records", default=None,
                        help="ecg: MIT-BIH record numbers, comma-separated (default 208)")
    parser.add_argument("--encoding", choices=("delta", "raw"), default=None,
                        help="ecg: delta-modulated events (default) or the raw leads")
    parser.add_argument("--seed", "-seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--verbose", "-verbose", action="store_true",
                        help="Keras progress bars for every epoch and the sweep")


def _add_train_parser(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train clean, then with weight noise (MAT), and sweep both",
        description="Two-phase memristor-aware training of a zoo task, then a "
        "robustness sweep of the clean ('vanilla') and the MAT model.",
    )
    parser.add_argument("--task", "-task", required=True,
                        help="task name: mnist-5k, mnist, fashion-mnist, cifar10, cifar100 or ecg")
    parser.add_argument("--model", default=None,
                        help="the task's model: mlp (mnist); mlp or cnn (fashion-mnist); "
                        "mobilenetv2 or cnn (cifar); srnn or rnn (ecg)")
    parser.add_argument("--noise-sd", "-noise_sd", type=float, default=None,
                        help="training noise sd, fraction of 2*max|w| (default: the task's)")
    parser.add_argument("--noise", default=None,
                        help="train against this noise or device model instead of a Gaussian sd: pcm, "
                        "rram, gaussian, multiplicative, measured, a measurements .csv or a JSON "
                        "config (as evaluate --device); not with --noise-sd")
    parser.add_argument("--epochs", "-epochs", type=int, default=None,
                        help="total epochs, clean plus MAT (default: the task's)")
    parser.add_argument("--clean-epochs", type=int, default=None,
                        help="epochs of the clean phase (default: the task's)")
    parser.add_argument("--clip-w", "-clip_w", type=float, default=None,
                        help="clip weights to ±clip_w*std after each step; 0 disables")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument("--init", default=None,
                        help="a clean .keras model to fine-tune with noise (skips the clean phase)")
    parser.add_argument("--save", "-file_save", default=None,
                        help="write the MAT model to this .keras file")
    _add_sweep_arguments(parser)
    parser.set_defaults(handler=_run_train)


def _add_evaluate_parser(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="robustness sweep of a saved model, or its deployment on a device over time",
        description="Accuracy of a saved .keras model against inference weight noise; with "
        "--device, on a simulated chip at several times after programming.",
    )
    parser.add_argument("model", help="a .keras model file")
    parser.add_argument("--task", "-task", required=True, help="task whose test data to use")
    _add_sweep_arguments(parser)
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
    parser.set_defaults(handler=_run_evaluate)


def _add_export_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="quantised conductance tables for a chip",
        description="Map a trained model's weights onto memristor conductance levels and tiles.",
    )
    from mat_keras.export import cli as export_cli

    export_cli.add_arguments(parser)
    parser.set_defaults(handler=export_cli.run)


def _add_zoo_parser(subparsers):
    parser = subparsers.add_parser("zoo", help="pretrained weights: list, download, build")
    from mat_keras.zoo import cli as zoo_cli

    zoo_cli.add_arguments(parser)
    parser.set_defaults(handler=zoo_cli.run)


def build_parser():
    """Returns the `mat-keras` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mat-keras",
        description="Memristor-aware training for Keras 3.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(subparsers)
    _add_evaluate_parser(subparsers)
    for add in (_add_export_parser, _add_zoo_parser):
        try:
            add(subparsers)
        except ImportError:  # That part of the package is not installed.
            pass
    return parser


def _normalise_argv(argv):
    """Accepts the seed's command lines: no subcommand means `train`."""
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return ["train", *argv]
    return argv


def main(argv=None):
    """Entry point of the `mat-keras` command; returns the exit status."""
    argv = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except MatKerasError as error:
        print(f"mat-keras {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mat-keras {args.command}: interrupted.", file=sys.stderr)
        return 130


def _out_dir(args):
    return args.out_dir or os.path.join("runs", args.task)


def _load_task_data(args):
    from mat_keras.zoo import load_dataset, tasks

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


def _check_positive(value, name):
    if value is not None and value < 1:
        raise InvalidArgumentError(f"{name} must be >= 1, got {value}.")


def _sweep_and_report(models, args, task, data):
    """Sweeps each (name, model), prints the table, writes JSON, CSV and PNG."""
    import mat_keras as mat

    _check_positive(args.draws, "--draws")
    sds = args.sds if args.sds is not None else list(task.sweep_sds)
    verbose = 1 if args.verbose else 0
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
                verbose=verbose,
            )
        )
    _report(results, f"{args.draws} draws, {data.description}", args, "sweep")
    return results


def _report(results, title, args, stem):
    """Prints the results' table and writes `<stem>.json`, `.csv` and `.png` to the output folder."""
    from mat_keras import sweep

    print()
    print(f"Mean test accuracy (%) ± sd over {title}")
    print(sweep.format_table(results))
    out_dir = _out_dir(args)
    sweep.save_json(os.path.join(out_dir, f"{stem}.json"), results)
    sweep.save_csv(os.path.join(out_dir, f"{stem}.csv"), results)
    sweep.plot_results(results, path=os.path.join(out_dir, f"{stem}.png"))
    print(f"\nWrote {out_dir}/{stem}.json, {stem}.csv and {stem}.png")


def _run_train(args):
    import mat_keras as mat
    from mat_keras.deployment import resolve_device
    from mat_keras.zoo.training import train_two_phase

    if args.noise is not None and args.noise_sd is not None:
        raise InvalidArgumentError("Give --noise or --noise-sd, not both.")
    if args.noise_sd is not None:
        mat.noise.check_sd(args.noise_sd, "--noise-sd")
    noise = resolve_device(args.noise) if args.noise is not None else None
    if args.clip_w not in (None, 0):  # 0 turns clipping off.
        mat.clipping.check_clip_w(args.clip_w)
    for name in ("epochs", "batch_size"):
        _check_positive(getattr(args, name), f"--{name.replace('_', '-')}")
    if args.clean_epochs is not None and args.clean_epochs < 0:
        raise InvalidArgumentError(f"--clean-epochs must be >= 0, got {args.clean_epochs}.")
    init = load_model_file(args.init) if args.init else None
    task, data = _load_task_data(args)
    # The recipe of the model trained (fashion-mnist keeps one per model).
    task = task.for_model(args.model)
    print(f"Task {task.name}: {data.description}")
    if noise is None:
        noise = mat.noise.Gaussian(task.noise_sd if args.noise_sd is None else args.noise_sd)
    print(f"MAT phase against {noise!r}")
    run = train_two_phase(
        task,
        data,
        model_name=args.model,
        epochs=args.epochs,
        clean_epochs=args.clean_epochs,
        noise=noise,
        clip_w=args.clip_w,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        init=init,
        verbose=1 if args.verbose else 2,
    )
    _sweep_and_report([("vanilla", run.vanilla), ("MAT", run.robust)], args, task, data)
    if args.save:
        from mat_keras.io_utils import atomic_path

        with atomic_path(args.save) as tmp:
            run.robust.save(tmp)
        print(f"Saved the MAT model to {args.save}")
    return 0


def load_model_file(path):
    """Loads a `.keras` model, turning any failure into one clear sentence.

    Raises:
        ModelFileError: the file is missing, not a Keras model, or damaged.
    """
    import keras

    if not os.path.isfile(path):
        raise ModelFileError(f"No model file at {path!r}.")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for a bad file.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(
            f"Cannot read {path!r} as a Keras model ({reason[:200]})."
        ) from error


def _run_evaluate(args):
    if args.device is None:
        for option, given in (("--times", args.times is not None), ("--no-compensation", args.no_compensation)):
            if given:
                raise InvalidArgumentError(f"{option} needs --device.")
    else:
        return _run_deployment(args)
    from mat_keras.zoo.training import check_model_fits

    model = load_model_file(args.model)
    task, data = _load_task_data(args)
    check_model_fits(model, data)
    name = os.path.splitext(os.path.basename(args.model))[0]
    _sweep_and_report([(name, model)], args, task, data)
    return 0


def _run_deployment(args):
    """`evaluate --device`: a deployment sweep over time; table, JSON, CSV and PNG."""
    from mat_keras import deployment

    if args.sds is not None:
        raise InvalidArgumentError("--sds sets noise levels; with --device give --times instead.")
    _check_positive(args.draws, "--draws")
    times = (
        [deployment.parse_time(t) for t in args.times.split(",") if t.strip()]
        if args.times is not None else list(deployment.DEFAULT_TIMES)
    )
    device = deployment.resolve_device(args.device)
    from mat_keras.zoo.training import check_model_fits

    model = load_model_file(args.model)
    task, data = _load_task_data(args)
    check_model_fits(model, data)
    name = os.path.splitext(os.path.basename(args.model))[0]
    print(f"Deployment of {name} on {type(device).__name__}: {len(times)} times x {args.draws} "
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
        verbose=1 if args.verbose else 0,
    )
    _report(results, f"{args.draws} programmings, {data.description}", args, "deployment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
