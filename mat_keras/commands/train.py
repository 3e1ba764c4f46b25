"""`mat-keras train`: a zoo task's two-phase recipe, then the sweep of both models.

    mat-keras train --task mnist-5k [--noise-sd 0.2 | --noise pcm] [--epochs 30] [--crossbar standard]

trains clean, then memristor-aware (MAT), and sweeps the clean ("vanilla")
and the MAT model side by side. With `--crossbar`, the MAT phase trains
through that chip (its input ranges set from the training inputs at the
switch, then learned), the saved model keeps it, and both sweeps compute
through it. The reference implementation's spellings (`-task mnist
-noise_sd 0.2 -epochs 30 -clip_w 2.5 -verbose`) are aliases of the long
options.
"""

import mat_keras as mat
from mat_keras.commands import runs
from mat_keras.devices import resolve_device
from mat_keras.errors import InvalidArgumentError
from mat_keras.io_utils import atomic_path, check_input_file, check_output_path, load_model_file
from mat_keras.results import describe_crossbar
from mat_keras.validation import check_integer, check_positive
from mat_keras.zoo.training import train_two_phase


def add_parser(subparsers):
    """Adds the `train` subcommand to `subparsers`, with `run` as its handler."""
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
    parser.add_argument("--crossbar", default=None,
                        help=f"train the MAT phase through a chip, and sweep through it: {runs.CROSSBAR_HELP}")
    runs.add_sweep_arguments(parser)
    parser.set_defaults(handler=run)


def run(args):
    """Runs `mat-keras train` with parsed `args`; returns the exit status.

    Raises:
        MatKerasError: bad options, an unreadable `--init` model, or a
            dataset that cannot be loaded.
    """
    noise, crossbar = _check_arguments(args)
    init = load_model_file(args.init) if args.init else None
    task, data = runs.load_task_data(args)
    # The recipe of the model trained (fashion-mnist keeps one per model).
    task = task.for_model(args.model)
    print(f"Task {task.name}: {data.description}")
    if noise is None:
        noise = mat.noise.Gaussian(task.noise_sd if args.noise_sd is None else args.noise_sd)
    chip = "" if crossbar is None else f" through the crossbar {describe_crossbar(crossbar.get_config())}"
    print(f"MAT phase against {noise!r}{chip}")
    result = train_two_phase(
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
        crossbar=crossbar,
    )
    models = [("vanilla", result.vanilla), ("MAT", result.robust)]
    runs.sweep_and_report(models, args, task, data, crossbar=crossbar)
    if args.save:
        with atomic_path(args.save) as tmp:
            result.robust.save(tmp)
        print(f"Saved the MAT model to {args.save}")
    return 0


def _check_arguments(args):
    """Checks every option before anything loads or trains.

    Returns:
        `(noise, crossbar)`: the `--noise` model and the `--crossbar`, each
        None when not given.

    Raises:
        MatKerasError: the first bad option, in one sentence.
    """
    # The recipe of the model trained (an unknown --model fails here).
    task = runs.check_sweep_arguments(args).for_model(args.model)
    if args.noise is not None and args.noise_sd is not None:
        raise InvalidArgumentError("Give --noise or --noise-sd, not both.")
    if args.noise_sd is not None:
        mat.noise.check_sd(args.noise_sd, "--noise-sd")
    if args.clip_w not in (None, 0):  # 0 turns clipping off.
        mat.clipping.check_clip_w(args.clip_w)
    for option, value, minimum in (
        ("--epochs", args.epochs, 1),
        ("--batch-size", args.batch_size, 1),
        ("--clean-epochs", args.clean_epochs, 0),
    ):
        if value is not None:
            check_integer(value, option, minimum=minimum)
    _check_phases(args, task)
    if args.lr is not None:
        check_positive(args.lr, "--lr", "learning rate")
    if args.init is not None:
        check_input_file(args.init, "--init model file")
    if args.save is not None:
        if not args.save.endswith(".keras"):
            raise InvalidArgumentError(f"--save must name a .keras file, got '{args.save}'.")
        check_output_path(args.save, "--save", kind="file")
    crossbar = None if args.crossbar is None else runs.parse_crossbar(args.crossbar)
    if args.noise is None:
        return None, crossbar
    return resolve_device(runs.device_identifier(args.noise, "--noise")), crossbar


def _check_phases(args, task):
    """Refuses a clean phase longer than the whole run (the task's lengths fill in what is not given)."""
    epochs = task.epochs if args.epochs is None else args.epochs
    clean_epochs = task.clean_epochs if args.clean_epochs is None else args.clean_epochs
    if args.init is None and clean_epochs > epochs:
        raise InvalidArgumentError(
            f"--clean-epochs ({clean_epochs}) cannot exceed epochs ({epochs})."
        )
