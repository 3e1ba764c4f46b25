"""The `mat-keras` command line: train, evaluate, export, zoo.

This module only dispatches: each subcommand's parser and runner live beside
its feature (`mat_keras.commands.train`, `mat_keras.commands.evaluate`,
`mat_keras.export.cli`, `mat_keras.zoo.cli`).

`mat-keras train --task mnist-5k` runs the seed's experiment end to end: a
clean phase, a memristor-aware phase, and the robustness sweep of the model
after each, side by side. The seed's own spellings (`-task mnist -noise_sd 0.2
-epochs 30 -clip_w 2.5 -verbose`) are accepted as aliases, with or without the
`train` subcommand.

Bad input ends in one sentence on stderr and exit status 2.
"""

import argparse
import sys

from mat_keras.commands import evaluate, train
from mat_keras.errors import MatKerasError
from mat_keras.export import cli as export_cli
from mat_keras.zoo import cli as zoo_cli

# In the order `mat-keras --help` lists them.
_SUBCOMMANDS = (train, evaluate, export_cli, zoo_cli)


def build_parser():
    """Returns the `mat-keras` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mat-keras",
        description="Memristor-aware training for Keras 3.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for subcommand in _SUBCOMMANDS:
        subcommand.add_parser(subparsers)
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


if __name__ == "__main__":
    sys.exit(main())
