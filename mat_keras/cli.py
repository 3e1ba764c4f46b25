"""The `mat-keras` command line: train, evaluate, export, zoo.

This module only dispatches: each subcommand's parser and runner live beside
its feature (`mat_keras.commands.train`, `mat_keras.commands.evaluate`,
`mat_keras.export.cli`, `mat_keras.zoo.cli`).

`mat-keras train --task mnist-5k` runs the reference implementation's experiment end to end: a
clean phase, a memristor-aware phase, and the robustness sweep of the model
after each, side by side. The reference implementation's own spellings (`-task mnist -noise_sd 0.2
-epochs 30 -clip_w 2.5 -verbose`) are accepted as aliases, with or without the
`train` subcommand.

Bad input ends in one sentence on stderr and exit status 2, before any data
loads or any model trains. SIGTERM and SIGHUP stop a command the way Ctrl-C
does: its temporary files and staging folders are removed, and it exits with
status 128 + the signal's number after one sentence.
"""

import argparse
import contextlib
import errno
import signal
import sys
import threading

from mat_keras.commands import evaluate, train
from mat_keras.errors import Interrupted, MatKerasError
from mat_keras.export import cli as export_cli
from mat_keras.zoo import cli as zoo_cli

# In the order `mat-keras --help` lists them.
_SUBCOMMANDS = (train, evaluate, export_cli, zoo_cli)

# Signals that ask a process to stop and that, by default, kill it without
# running any clean-up. SIGINT already raises KeyboardInterrupt.
_STOP_SIGNALS = tuple(s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

# Failures of the machine rather than of mat-keras (a full disk, a read-only
# place, a file where a folder should be): reported in one sentence.
_ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ENOTDIR", "EISDIR", "EEXIST")
    if hasattr(errno, name)
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, as every other error of the CLI."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help).\n")


def build_parser():
    """Returns the `mat-keras` argument parser."""
    parser = _Parser(
        prog="mat-keras",
        description="Memristor-aware training for Keras 3.",
    )
    # Subparsers are made of the parser's class, so their errors are one line too.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for subcommand in _SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


def _normalise_argv(argv):
    """Accepts the reference implementation's command lines: no subcommand means `train`."""
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return ["train", *argv]
    return argv


def attach_values(argv, parser):
    """Joins each value-taking option to the token after it: `--g-min -1e-6` -> `--g-min=-1e-6`.

    argparse takes a token that starts with `-` for an option unless it
    looks like a plain negative number (`-1`, `-0.5`); `-1e-6`, `-1s`,
    `-0.1,0.2` or `-inf` then leave their option "expected one argument",
    and the value never reaches the project's own check, which says what
    the value must be. After an option that takes a value, the next token is
    its value unless it is itself one of the parser's options.

    Args:
        argv: the command-line tokens.
        parser: the `mat-keras` parser (all its subcommands are read).

    Returns:
        The tokens, with such pairs joined by `=`.

    Example:

    >>> attach_values(["export", "m.keras", "chip", "--g-min", "-1e-6"], build_parser())
    ['export', 'm.keras', 'chip', '--g-min=-1e-6']
    """
    valued, options = _option_strings(parser)
    joined = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            joined.append(token)
            joined.extend(tokens)
            break
        if _resolve(token, options) in valued:
            value = next(tokens, None)
            if value is None:
                joined.append(token)
            elif value.startswith("-") and _resolve(value.split("=", 1)[0], options) is None:
                joined.append(f"{token}={value}")
            else:
                joined.extend((token, value))
            continue
        joined.append(token)
    return joined


def _option_strings(parser):
    """Returns `(valued, all)`: the option strings of `parser` and its subparsers.

    `valued` holds those that take a value in every parser that has them.
    argparse has no public API to list actions; `_actions` is stable since
    Python 3.2.
    """
    valued, flags = set(), set()
    parsers = [parser]
    while parsers:
        for action in parsers.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.option_strings:
                (flags if action.nargs == 0 else valued).update(action.option_strings)
    return valued - flags, valued | flags


def _resolve(token, options):
    """The option `token` names: itself, or the one long option it abbreviates; else None."""
    if token in options:
        return token
    if token.startswith("--"):
        candidates = [option for option in options if option.startswith(token)]
        if len(candidates) == 1:
            return candidates[0]
    return None


class _Received:
    """The stop signal received while `_stop_signals_raise` was active, if any."""

    signum = None


@contextlib.contextmanager
def _stop_signals_raise():
    """Makes SIGTERM and SIGHUP raise `Interrupted` while the block runs.

    Their default action kills the process without unwinding, so the
    `finally` blocks that remove temporary files and staging folders never
    run. As exceptions they unwind like Ctrl-C. A second signal during the
    clean-up is ignored, so that the clean-up finishes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield _Received()  # Only the main thread may set signal handlers.
        return

    received = _Received()

    def stop(signum, frame):
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        received.signum = signum
        raise Interrupted(signum)

    previous = {number: signal.signal(number, stop) for number in _STOP_SIGNALS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv=None):
    """Entry point of the `mat-keras` command; returns the exit status."""
    parser = build_parser()
    argv = attach_values(_normalise_argv(list(sys.argv[1:] if argv is None else argv)), parser)
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    prog = f"mat-keras {args.command}"
    try:
        with _stop_signals_raise() as received:
            try:
                return args.handler(args) or 0
            except Exception as error:
                # A signal raised inside a C extension's call (TensorFlow's step) can
                # surface as another exception, e.g. SystemError: it is still the stop.
                if received.signum is not None and not isinstance(error, Interrupted):
                    raise Interrupted(received.signum) from error
                raise
    except MatKerasError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        name = signal.Signals(stop.signum).name
        print(f"{prog}: stopped by {name}; unfinished files were removed.", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; unfinished files were removed.", file=sys.stderr)
        return 130
    except OSError as error:
        if error.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = f" on '{error.filename}'" if error.filename else ""
        print(f"{prog}: error: {error.strerror or error}{where}.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
