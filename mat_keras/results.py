"""Results of the sweeps: accuracy over levels, as tables, JSON, CSV and plots.

A robustness sweep measures accuracy at several noise levels
(`SweepResult`, levels in `sds`), a deployment sweep at several times after
programming (`DeploymentResult`, levels in `times`). Both hold one accuracy
and loss per level and draw and share their statistics and files; a JSON
file reloads as the kind of result that wrote it.
"""

import csv
import dataclasses
import io
import json
import textwrap
import typing

import numpy as np

from mat_keras.devices import format_time
from mat_keras.errors import InvalidArgumentError
from mat_keras.io_utils import atomic_path, atomic_write


@dataclasses.dataclass(kw_only=True)
class LevelResult:
    """Accuracy and loss of one model at each of several levels, over draws.

    A base class: its subclasses name the levels (`SweepResult.sds`,
    `DeploymentResult.times`) and how tables, plots and files show them.

    Attributes:
        accuracy: array of shape (levels, draws).
        loss: array of shape (levels, draws), NaN where not measured.
        name: label of the model in tables and plots.
        noise: config of the noise model or device (`mat_keras.noise.serialize`).
        seed: the seed the draws came from.
        data: a description of the evaluation data.
        crossbar: config of the crossbar the model computed through
            (`Crossbar.get_config()`), or None for exact products.
    """

    accuracy: np.ndarray
    loss: np.ndarray
    name: str = "model"
    noise: dict = None
    seed: int = None
    data: str = ""
    crossbar: dict = None

    # The field that holds the levels, its key in JSON files, summaries and
    # CSV columns, and how tables and plots label it.
    level_field: typing.ClassVar[str] = None
    json_key: typing.ClassVar[str] = None
    column: typing.ClassVar[str] = None
    kind: typing.ClassVar[str] = None
    axis_label: typing.ClassVar[str] = None
    plot_label: typing.ClassVar[str] = None
    plot_title: typing.ClassVar[str] = None

    @property
    def levels(self):
        """The levels, one per row of `accuracy`."""
        return getattr(self, self.level_field)

    def level_label(self, level):
        """How one level appears in the first column of a table."""
        return f"{level:g}"

    def format_axis(self, ax):
        """Sets the x axis of a plot of these results (scale, ticks)."""

    @property
    def draws(self):
        return self.accuracy.shape[1]

    def mean(self):
        """Mean accuracy at each level."""
        return self.accuracy.mean(axis=1)

    def std(self):
        """Standard deviation of the accuracy over draws at each level."""
        ddof = 1 if self.draws > 1 else 0
        return self.accuracy.std(axis=1, ddof=ddof)

    def quantiles(self, q=(0.25, 0.5, 0.75)):
        """Accuracy quantiles over draws: array of shape (len(q), levels)."""
        return np.quantile(self.accuracy, q, axis=1)

    def summary(self):
        """One dict per level: the level, mean, std, q25, median, q75, min, max, loss."""
        q25, median, q75 = self.quantiles()
        rows = []
        for i, level in enumerate(self.levels):
            rows.append(
                {
                    self.column: float(level),
                    "mean": float(self.mean()[i]),
                    "std": float(self.std()[i]),
                    "q25": float(q25[i]),
                    "median": float(median[i]),
                    "q75": float(q75[i]),
                    "min": float(self.accuracy[i].min()),
                    "max": float(self.accuracy[i].max()),
                    "loss": float(np.nanmean(self.loss[i])) if np.isfinite(self.loss[i]).any() else None,
                }
            )
        return rows

    def table(self, *others):
        """Returns a text table of mean ± std accuracy (%), one column per result.

        Args:
            *others: more results over the same levels, shown side by side.

        Example:

        >>> print(vanilla.table(robust))
        """
        return format_table([self, *others])

    def to_dict(self):
        """The result as a JSON-ready dict (`from_dict` reads it back)."""
        payload = {"kind": self.kind} if self.kind else {}
        payload.update(
            {
                "name": self.name,
                self.json_key: [float(level) for level in self.levels],
                "draws": int(self.draws),
                "seed": self.seed,
                "noise": self.noise,
                "data": self.data,
                "crossbar": self.crossbar,
                "accuracy": self.accuracy.tolist(),
                "loss": [[None if not np.isfinite(v) else float(v) for v in row] for row in self.loss],
                "summary": self.summary(),
            }
        )
        return payload

    @classmethod
    def _fields_from_dict(cls, data):
        loss = np.array(
            [[np.nan if v is None else v for v in row] for row in data["loss"]], dtype=float
        )
        return {
            cls.level_field: list(data[cls.json_key]),
            "accuracy": np.array(data["accuracy"], dtype=float),
            "loss": loss,
            "name": data.get("name", "model"),
            "noise": data.get("noise"),
            "seed": data.get("seed"),
            "data": data.get("data", ""),
            "crossbar": data.get("crossbar"),
        }

    @classmethod
    def from_dict(cls, data):
        """Reads a result written by `to_dict`."""
        return cls(**cls._fields_from_dict(data))

    def to_json(self, path):
        """Writes the result as JSON (atomically)."""
        save_json(path, [self])

    def to_csv(self, path):
        """Writes one CSV row per level and draw: name, level, draw, accuracy, loss."""
        save_csv(path, [self])

    def plot(self, path=None, baseline=None, ax=None):
        """Plots mean accuracy with the inter-quartile band against the level.

        Args:
            path: PNG file to write, or None to only draw on `ax`.
            baseline: another result drawn for comparison (dashed).
            ax: a matplotlib axis to draw on; a new figure when None.

        Returns:
            The matplotlib axis.
        """
        results = [self] if baseline is None else [baseline, self]
        return plot_results(results, path=path, ax=ax)


@dataclasses.dataclass(kw_only=True)
class SweepResult(LevelResult):
    """Accuracy and loss of one model at each inference noise level.

    Attributes:
        sds: the noise levels, one per row.
        (and those of `LevelResult`: accuracy, loss, name, noise, seed, data,
            crossbar)

    Example:

    >>> result = SweepResult(sds=[0.0, 0.1], accuracy=np.ones((2, 3)), loss=np.zeros((2, 3)))
    >>> result.mean()
    array([1., 1.])
    """

    sds: list = dataclasses.field(kw_only=False)

    level_field = "sds"
    json_key = "sds"
    column = "sd"
    kind = None  # sweep files name no kind, as they always have
    axis_label = "inference sd"
    plot_label = "inference noise sd (fraction of 2·max|w|)"
    plot_title = "Robustness sweep"


@dataclasses.dataclass(kw_only=True)
class DeploymentResult(LevelResult):
    """Accuracy of one model on a simulated chip at several times after programming.

    Attributes:
        times: the times after programming in seconds, one per row.
        compensated: whether global drift compensation was applied.
        (and those of `LevelResult`: accuracy, loss, name, noise, seed, data,
            crossbar)
    """

    times: list = dataclasses.field(kw_only=False)
    compensated: bool = False

    level_field = "times"
    json_key = "times_s"
    column = "time_s"
    kind = "deployment"
    axis_label = "time"
    plot_label = "time after programming"
    plot_title = "Deployment"

    def level_label(self, level):
        return format_time(level)

    def format_axis(self, ax):
        times = np.asarray(self.times, dtype=float)
        if np.all(times > 0):
            ax.set_xscale("log")
        else:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xticks(times)
        ax.set_xticklabels([format_time(t) for t in times], rotation=30, fontsize=8)
        ax.minorticks_off()

    def to_dict(self):
        return {**super().to_dict(), "compensated": self.compensated}

    @classmethod
    def from_dict(cls, data):
        return cls(**cls._fields_from_dict(data), compensated=bool(data.get("compensated", False)))


# The kind a JSON record names -> its class; records without one are sweeps.
_KINDS = {cls.kind: cls for cls in (SweepResult, DeploymentResult)}


def describe_crossbar(config):
    """How a result's crossbar reads in a table: its alias, or its settings.

    Args:
        config: a `Crossbar` config dict, or None.

    Returns:
        `"none"` for None, the alias (`"standard"`) of a preset's config,
        else the `Crossbar(...)` of the settings that differ from the defaults.

    Example:

    >>> describe_crossbar(mat_keras.crossbar.get("standard").get_config())
    'standard'
    """
    if config is None:
        return "none"
    from mat_keras import crossbar as crossbar_lib

    chip = crossbar_lib.Crossbar.from_config(config)
    for alias in crossbar_lib.aliases():
        if crossbar_lib.get(alias) == chip:
            return alias
    return repr(chip)


def _crossbar_lines(results):
    """The table's closing lines naming the crossbars the results computed through ([] for none)."""
    described = [describe_crossbar(r.crossbar) for r in results]
    if all(r.crossbar is None for r in results):
        return []
    if len(set(described)) == 1:
        return [f"through the crossbar: {described[0]}"]
    return [f"{r.name}: crossbar {text}" for r, text in zip(results, described)]


def format_table(results):
    """Text table of several results over the same levels.

    Results computed through a crossbar name it below the rows.
    """
    levels = results[0].levels
    for result in results[1:]:
        if list(result.levels) != list(levels):
            raise InvalidArgumentError("Results in one table must share their noise levels.")
    names = [f"{r.name} (n={r.draws})" for r in results]
    width = max(16, *(len(n) + 2 for n in names))
    first = results[0]
    lines = [first.axis_label.ljust(14) + "".join(n.rjust(width) for n in names)]
    for i, level in enumerate(levels):
        cells = [
            f"{100 * r.mean()[i]:.2f} ± {100 * r.std()[i]:.2f}".rjust(width)
            for r in results
        ]
        lines.append(first.level_label(level).ljust(14) + "".join(cells))
    lines.extend(_crossbar_lines(results))
    return "\n".join(lines)


def save_json(path, results):
    """Writes several results to one JSON file (a list), atomically."""
    payload = [r.to_dict() for r in results]
    with atomic_write(path) as handle:
        json.dump(payload if len(payload) > 1 else payload[0], handle, indent=1)


def load_json(path):
    """Reads results written by `save_json` / `to_json`, each as the kind that wrote it.

    Returns:
        A list of `SweepResult` and `DeploymentResult`.
    """
    with open(path) as handle:
        payload = json.load(handle)
    if isinstance(payload, dict):
        payload = [payload]
    return [_KINDS[item.get("kind")].from_dict(item) for item in payload]


def save_csv(path, results):
    """Writes several results to one long-format CSV file, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", results[0].column, "draw", "accuracy", "loss"])
    for result in results:
        for i, level in enumerate(result.levels):
            for d in range(result.draws):
                loss = result.loss[i, d]
                writer.writerow(
                    [result.name, level, d, f"{result.accuracy[i, d]:.6f}",
                     "" if not np.isfinite(loss) else f"{loss:.6f}"]
                )
    with atomic_write(path, newline="") as handle:
        handle.write(buffer.getvalue())


def plot_results(results, path=None, ax=None, title=None):
    """Plots several results (mean line, inter-quartile band) on one axis.

    The first of several results is drawn dashed: the baseline.

    Args:
        results: list of `SweepResult` or `DeploymentResult`.
        path: PNG file to write (atomically), or None.
        ax: matplotlib axis to draw on; a new figure when None.
        title: plot title; by default names the evaluation data.

    Returns:
        The matplotlib axis.
    """
    import matplotlib

    own_figure = ax is None
    if own_figure:
        matplotlib.use("Agg")  # Files only: works without a display.
    import matplotlib.pyplot as plt

    if own_figure:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for index, result in enumerate(results):
        levels = np.asarray(result.levels, dtype=float)
        q25, _, q75 = result.quantiles()
        style = "--" if index == 0 and len(results) > 1 else "-"
        line = ax.plot(levels, 100 * result.mean(), style, marker="o", label=result.name)[0]
        ax.fill_between(levels, 100 * q25, 100 * q75, color=line.get_color(), alpha=0.2)
    first = results[0]
    ax.set_xlabel(first.plot_label)
    first.format_axis(ax)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    data = first.data
    title = title or (f"{first.plot_title}: {data}" if data else first.plot_title)
    ax.set_title(textwrap.fill(title, 60), fontsize=9)
    if path is not None:
        ax.figure.tight_layout()
        with atomic_path(path) as tmp:
            ax.figure.savefig(tmp, dpi=120, format="png")
        if own_figure:
            plt.close(ax.figure)
    return ax
