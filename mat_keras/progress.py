"""Progress of a long loop: a Keras progress bar on a terminal, one line per group of steps elsewhere.

`keras.utils.Progbar` redraws a bar in place on a terminal; written to a file
or a pipe it prints a new line at every redraw, and a log of a sweep fills
with them. `Progress` takes Progbar's place (same `add(n, values)`): on a
terminal it is a Progbar; otherwise it prints one line each time a group of
steps (a sweep's noise level: its draws) is done, with the group's mean of
each value.
"""

import sys

import keras


class Progress:
    """A Keras progress bar on a terminal, one line per `group` steps otherwise.

    Args:
        target: the number of steps.
        verbose: 0 shows nothing; 1 shows the bar or the lines.
        group: steps per printed line when the output is not a terminal
            (e.g. the draws of one noise level).
        stateful_metrics: names of values the bar shows as they are rather
            than averaged (passed to `keras.utils.Progbar`).
        unit_name: what a step is, for the display (`"draw"`).
        stream: where the lines go (default `sys.stdout`); a terminal stream
            shows the bar instead.

    Example:

    >>> progress = Progress(len(sds) * draws, group=draws, unit_name="draw")
    >>> for sd in sds:
    ...     for _ in range(draws):
    ...         progress.add(1, [("sd", sd), ("accuracy", evaluate())])
    sd 0 - accuracy 0.942 (10/30 draws)
    """

    def __init__(self, target, verbose=1, group=1, stateful_metrics=None, unit_name="step", stream=None):
        self.target = target
        self.verbose = verbose
        self.group = max(1, int(group))
        self.unit_name = unit_name
        self.stream = sys.stdout if stream is None else stream
        self.seen = 0
        self._sums = {}
        self._bar = None
        if verbose and _is_terminal(self.stream):
            self._bar = keras.utils.Progbar(
                target, verbose=verbose, stateful_metrics=stateful_metrics, unit_name=unit_name
            )

    def add(self, n, values=None):
        """Records `n` more steps and their `(name, value)` pairs, as `Progbar.add`."""
        if self._bar is not None:
            self._bar.add(n, values)
            return
        if not self.verbose:
            return
        before = self.seen
        self.seen += n
        for name, value in values or ():
            total, count = self._sums.get(name, (0.0, 0))
            self._sums[name] = (total + float(value) * n, count + n)
        if self.seen // self.group > before // self.group or self.seen >= self.target:
            self._print_line()

    def _print_line(self):
        means = " - ".join(f"{name} {total / count:.4g}" for name, (total, count) in self._sums.items())
        print(f"{means} ({self.seen}/{self.target} {self.unit_name}s)".lstrip(), file=self.stream, flush=True)
        self._sums = {}


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
