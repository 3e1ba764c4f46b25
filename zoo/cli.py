"""`mat-keras zoo`: list, download and build the zoo's pretrained weights.

    mat-keras zoo list [--registry PATH]
    mat-keras zoo download NAME [--base-url URL] [--registry PATH]
    mat-keras zoo build NAME [--out-dir DIR] [--registry PATH] [--epochs N] [--clean-epochs N] [--seed S]

`mat_keras.cli` adds the `zoo` subcommand with `add_parser`, whose handler
is `run`; errors are `MatKerasError`s, which it prints as one sentence.
"""

import os

from mat_keras.commands.runs import check_data_dir
from mat_keras.io_utils import check_output_path, read_text
from mat_keras.validation import check_integer, check_seed
from mat_keras.zoo import building, weights
from mat_keras.zoo import registry as registry_lib

_LIST_SDS = (0.0, 0.1, 0.2)


def add_parser(subparsers):
    """Adds the `zoo` subcommand to `subparsers`, with `run` as its handler."""
    parser = subparsers.add_parser("zoo", help="pretrained weights: list, download, build")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser):
    """Adds the `list`, `download` and `build` actions to the `zoo` parser."""
    actions = parser.add_subparsers(dest="zoo_action", metavar="ACTION")

    listing = actions.add_parser("list", help="the registry as a table: accuracy under noise, cached or not")
    _add_registry_argument(listing)

    download = actions.add_parser("download", help="fetch one weight file into the cache")
    download.add_argument("name", help="registry name, e.g. mnist_mlp-mat-mnist5k")
    download.add_argument("--base-url", default=None,
                          help="download from this mirror (default: $MAT_KERAS_WEIGHTS_URL, else the registry's)")
    _add_registry_argument(download)

    build = actions.add_parser(
        "build",
        help="train a recipe from scratch, sweep it, write the weights and registry entries",
        description="Trains a zoo task's two-phase recipe with a fixed seed and writes the vanilla and MAT "
        "weight files and their registry entries (sha256, size, measured sweep).",
    )
    build.add_argument("name", help="a task (e.g. mnist-5k) or an entry name (e.g. mnist_mlp-mat-mnist5k)")
    build.add_argument("--out-dir", default=os.path.join("runs", "zoo"),
                       help="folder for the weight files (default runs/zoo)")
    build.add_argument("--registry", default=None,
                       help="registry file to add the entries to (default OUT_DIR/registry.json)")
    build.add_argument("--epochs", type=int, default=None, help="total epochs (default: the recipe's)")
    build.add_argument("--clean-epochs", type=int, default=None,
                       help="clean-phase epochs (default: the recipe's, or its share of --epochs)")
    build.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    build.add_argument("--draws", type=int, default=10, help="noise draws per level of the sweep (default 10)")
    build.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    build.add_argument("--verbose", action="store_true", help="Keras progress bars")
    parser.set_defaults(zoo_parser=parser)


def run(args):
    """Runs the `zoo` action in `args`; returns the exit status."""
    action = getattr(args, "zoo_action", None)
    if action is None:
        args.zoo_parser.print_help()
        return 2
    if args.registry is not None and os.path.isfile(args.registry):
        read_text(args.registry, "--registry file")  # bytes that are not text: one sentence naming the file
    return {"list": _run_list, "download": _run_download, "build": _run_build}[action](args)


def _add_registry_argument(parser):
    parser.add_argument("--registry", default=None, help="a registry file (default: the package's)")


def _run_list(args):
    registry = registry_lib.Registry.load(args.registry)
    print(format_registry(registry, lambda entry: weights.weights_status(entry, registry)))
    if not registry.entries:
        print("(no entries)")
    return 0


def format_registry(registry, status):
    """The registry as a text table, one row per entry.

    Args:
        registry: a `Registry`.
        status: function of an entry giving its "shipped" / "cached" /
            "not cached" column.
    """
    header = ["name", "model", "variant", "dataset", "clean %", "sd 0.1 %", "sd 0.2 %", "where"]
    rows = [header]
    for entry in registry.entries.values():
        figures = [entry.accuracy_at(sd) for sd in _LIST_SDS]
        rows.append(
            [entry.name, entry.model, entry.variant, entry.dataset]
            + ["-" if value is None else f"{100 * value:.1f}" for value in figures]
            + [status(entry)]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {4, 5, 6}
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _run_download(args):
    registry = registry_lib.Registry.load(args.registry)
    entry = registry.get(args.name)
    path = weights.fetch_entry(entry, registry, base_url=args.base_url)
    where = "shipped with the registry" if registry.shipped_file(entry) == path else "cached"
    print(f"{entry.name}: {path} ({where}, sha256 {entry.sha256[:16]}..., {entry.size:,} bytes)")
    return 0


def _run_build(args):
    _check_build_arguments(args)
    entries = building.build_weights(
        args.name,
        out_dir=args.out_dir,
        registry_path=args.registry,
        epochs=args.epochs,
        clean_epochs=args.clean_epochs,
        seed=args.seed,
        draws=args.draws,
        data_dir=args.data_dir,
        verbose=1 if args.verbose else 2,
    )
    registry_path = _registry_path(args)
    sds = entries[0].sweep["sds"]
    print(f"\nMean test accuracy (%) ± sd over {entries[0].sweep['draws']} draws, {entries[0].sweep['data']}")
    print("inference sd" + "".join(f"{e.variant:>18}" for e in entries))
    for i, sd in enumerate(sds):
        cells = "".join(f"{100 * e.sweep['mean'][i]:>10.2f} ± {100 * e.sweep['std'][i]:<5.2f}" for e in entries)
        print(f"{sd:<12g}{cells}")
    for entry in entries:
        print(f"Wrote {os.path.join(args.out_dir, entry.file)} (sha256 {entry.sha256}, {entry.size:,} bytes)")
    print(f"Updated {registry_path}")
    if os.path.abspath(os.path.dirname(registry_path)) != os.path.abspath(args.out_dir):
        # Only files next to the registry load without a download.
        print(f"The weight files are not next to {registry_path}: publish them at its base_url "
              "(or a MAT_KERAS_WEIGHTS_URL mirror) before anyone loads these entries.")
    return 0


def _registry_path(args):
    return args.registry or os.path.join(args.out_dir, "registry.json")


def _check_build_arguments(args):
    """Checks the `build` options before the registry or the data load, or anything trains.

    Raises:
        MatKerasError: the first bad option, in one sentence.
    """
    check_integer(args.draws, "--draws")
    check_seed(args.seed, "--seed", allow_none=False)
    for option, value, minimum in (("--epochs", args.epochs, 1), ("--clean-epochs", args.clean_epochs, 1)):
        if value is not None:
            check_integer(value, option, minimum=minimum)
    check_data_dir(args.data_dir)
    check_output_path(args.out_dir, "--out-dir", kind="folder")
    check_output_path(_registry_path(args), "--registry", kind="file")
