"""Robustness sweeps: accuracy against the noise level of the weights at inference.

For each noise level the sweep adds one fresh draw of weight noise to the
model's weights, evaluates, and repeats for `draws` draws: a Monte-Carlo
estimate of how a network programmed onto noisy devices performs. The weights
are perturbed in place and restored afterwards, so the model is neither copied
nor retraced.
"""

import csv
import dataclasses
import functools
import io
import json
import textwrap
import typing

import keras
import numpy as np

from mat_keras import noise as noise_lib
from mat_keras.backend_utils import array_batches, compile_function, stateless_draw
from mat_keras.errors import InvalidArgumentError
from mat_keras.io_utils import atomic_path, atomic_write
from mat_keras.wrapping import iter_layers

DEFAULT_SDS = (0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3)
_ACCURACY_KEYS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy")


@dataclasses.dataclass
class SweepResult:
    """Accuracy and loss of one model at each inference noise level.

    Attributes:
        sds: the noise levels, one per row.
        accuracy: array of shape (len(sds), draws).
        loss: array of shape (len(sds), draws), NaN where not measured.
        name: label of the model in tables and plots.
        noise: config of the noise model (`mat_keras.noise.serialize`).
        seed: the seed the draws came from.
        data: a description of the evaluation data.
    """

    sds: list
    accuracy: np.ndarray
    loss: np.ndarray
    name: str = "model"
    noise: dict = None
    seed: int = None
    data: str = ""

    # How the levels appear in tables and plots; subclasses over other axes
    # (`mat_keras.deployment.DeploymentResult`: time) override them.
    axis_label: typing.ClassVar[str] = "inference sd"
    plot_label: typing.ClassVar[str] = "inference noise sd (fraction of 2·max|w|)"
    plot_title: typing.ClassVar[str] = "Robustness sweep"

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
        """Accuracy quantiles over draws: array of shape (len(q), len(sds))."""
        return np.quantile(self.accuracy, q, axis=1)

    def summary(self):
        """One dict per level: sd, mean, std, q25, median, q75, min, max, loss."""
        q25, median, q75 = self.quantiles()
        rows = []
        for i, sd in enumerate(self.sds):
            rows.append(
                {
                    "sd": float(sd),
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
        return {
            "name": self.name,
            "sds": [float(sd) for sd in self.sds],
            "draws": int(self.draws),
            "seed": self.seed,
            "noise": self.noise,
            "data": self.data,
            "accuracy": self.accuracy.tolist(),
            "loss": [[None if not np.isfinite(v) else float(v) for v in row] for row in self.loss],
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data):
        loss = np.array(
            [[np.nan if v is None else v for v in row] for row in data["loss"]], dtype=float
        )
        return cls(
            sds=list(data["sds"]),
            accuracy=np.array(data["accuracy"], dtype=float),
            loss=loss,
            name=data.get("name", "model"),
            noise=data.get("noise"),
            seed=data.get("seed"),
            data=data.get("data", ""),
        )

    def to_json(self, path):
        """Writes the result as JSON (atomically)."""
        save_json(path, [self])

    def to_csv(self, path):
        """Writes one CSV row per level and draw: name, sd, draw, accuracy, loss."""
        save_csv(path, [self])

    def plot(self, path=None, baseline=None, ax=None):
        """Plots mean accuracy with the inter-quartile band against the level.

        Args:
            path: PNG file to write, or None to only draw on `ax`.
            baseline: another `SweepResult` drawn for comparison (dashed).
            ax: a matplotlib axis to draw on; a new figure when None.

        Returns:
            The matplotlib axis.
        """
        results = [self] if baseline is None else [baseline, self]
        return plot_results(results, path=path, ax=ax)


def format_table(results):
    """Text table of several results over the same noise levels."""
    sds = results[0].sds
    for result in results[1:]:
        if list(result.sds) != list(sds):
            raise InvalidArgumentError("Results in one table must share their noise levels.")
    names = [f"{r.name} (n={r.draws})" for r in results]
    width = max(16, *(len(n) + 2 for n in names))
    first = results[0]
    lines = [first.axis_label.ljust(14) + "".join(n.rjust(width) for n in names)]
    for i, sd in enumerate(sds):
        cells = [
            f"{100 * r.mean()[i]:.2f} ± {100 * r.std()[i]:.2f}".rjust(width)
            for r in results
        ]
        lines.append(first.level_label(sd).ljust(14) + "".join(cells))
    return "\n".join(lines)


def save_json(path, results):
    """Writes several results to one JSON file (a list), atomically."""
    payload = [r.to_dict() for r in results]
    with atomic_write(path) as handle:
        json.dump(payload if len(payload) > 1 else payload[0], handle, indent=1)


def load_json(path):
    """Reads results written by `save_json` / `SweepResult.to_json`.

    Returns:
        A list of `SweepResult`.
    """
    with open(path) as handle:
        payload = json.load(handle)
    if isinstance(payload, dict):
        payload = [payload]
    return [SweepResult.from_dict(item) for item in payload]


def save_csv(path, results):
    """Writes several results to one long-format CSV file, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "sd", "draw", "accuracy", "loss"])
    for result in results:
        for i, sd in enumerate(result.sds):
            for d in range(result.draws):
                loss = result.loss[i, d]
                writer.writerow(
                    [result.name, sd, d, f"{result.accuracy[i, d]:.6f}",
                     "" if not np.isfinite(loss) else f"{loss:.6f}"]
                )
    with atomic_write(path, newline="") as handle:
        handle.write(buffer.getvalue())


def plot_results(results, path=None, ax=None, title=None):
    """Plots several sweep results (mean line, inter-quartile band) on one axis.

    The first of several results is drawn dashed: the baseline.

    Args:
        results: list of `SweepResult`.
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
        sds = np.asarray(result.sds, dtype=float)
        q25, _, q75 = result.quantiles()
        style = "--" if index == 0 and len(results) > 1 else "-"
        line = ax.plot(sds, 100 * result.mean(), style, marker="o", label=result.name)[0]
        ax.fill_between(sds, 100 * q25, 100 * q75, color=line.get_color(), alpha=0.2)
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


def perturbed_variables(model, batchnorm=False):
    """The variables a sweep perturbs: every trainable weight of the model.

    BatchNormalization's gamma and beta are left out unless `batchnorm=True`
    (the seed's `noise_inference_bn`).
    """
    variables = []
    for layer in iter_layers(model):
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, keras.layers.BatchNormalization) and not batchnorm:
            continue
        variables.extend(layer.trainable_weights)
    return variables


def _accuracy_key(logs):
    for key in _ACCURACY_KEYS:
        if key in logs:
            return key
    raise InvalidArgumentError(
        "A sweep needs an accuracy metric: compile the model with "
        "metrics=['accuracy'] (or leave it uncompiled)."
    )


def make_evaluator(model, x, y=None, batch_size=256):
    """Returns `evaluate() -> (accuracy, loss)` of `model` on the data, for repeated calls.

    Sweeps evaluate the same data dozens of times with other weights: arrays
    are batched once (`backend_utils.array_batches`) and the compiled
    evaluation is reused. An uncompiled model is compiled with sparse
    categorical cross-entropy on logits and accuracy.

    Args:
        model: a Keras classifier, uncompiled or compiled with an accuracy
            metric.
        x: inputs (array) or a dataset / PyDataset of `(x, y)` batches.
        y: integer labels when `x` is an array.
        batch_size: batch size for array inputs.

    Returns:
        A function of no arguments returning two floats (loss NaN when the
        model has none).

    Raises:
        InvalidArgumentError: (at the first call) the model reports no
            accuracy.

    Example:

    >>> evaluate = make_evaluator(model, x_test, y_test)
    >>> accuracy, loss = evaluate()
    """
    if not model.compiled:
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    if y is not None:
        x = array_batches(x, y, batch_size)
    key = None

    def evaluate():
        nonlocal key
        logs = model.evaluate(x, verbose=0, return_dict=True)
        key = key or _accuracy_key(logs)
        return logs[key], logs.get("loss", np.nan)

    return evaluate


# Compiled draw functions, reused by later sweeps of the same family and
# weight shapes: compiling costs seconds on JAX.
_DRAW_CACHE = {}


def _compiled_draws(family, sds, clean):
    """One `draw(state, clean) -> (noisy weights, state)` per level, compiled.

    A family whose perturbation is linear in its sd is compiled once, at level
    1, with the level as an argument.
    """
    signature = (repr(family), tuple((tuple(v.shape), str(v.dtype)) for v in clean))
    if family.linear_in_sd:
        draw = _cached_draw((*signature, None), family.with_sd(1.0))
        return [functools.partial(_with_level, draw, sd) for sd in sds]
    return [_cached_draw((*signature, sd), family.with_sd(sd)) for sd in sds]


def _cached_draw(key, level):
    if key not in _DRAW_CACHE:
        # Names the random state inside the compiled code; the state itself
        # goes in and out as an argument.
        generator = keras.random.SeedGenerator(0)

        def perturb(clean, factor=1.0):
            return [value + factor * level.perturbation(value, generator) for value in clean]

        _DRAW_CACHE[key] = compile_function(stateless_draw(perturb, generator))
    return _DRAW_CACHE[key]


def _with_level(draw, sd, state, clean):
    return draw(state, clean, keras.ops.convert_to_tensor(sd, "float32"))


def _check_levels(sds, draws):
    if isinstance(sds, (int, float)):
        sds = [sds]
    sds = [noise_lib.check_sd(sd, "each sd") for sd in sds]
    if not sds:
        raise InvalidArgumentError("sds must hold at least one noise level.")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise InvalidArgumentError(f"draws must be an integer >= 1, got {draws!r}.")
    return sds


def robustness_sweep(
    model,
    x,
    y=None,
    sds=DEFAULT_SDS,
    draws=10,
    seed=0,
    noise="gaussian",
    batch_size=256,
    batchnorm=False,
    name=None,
    data=None,
    verbose=1,
):
    """Measures accuracy and loss under weight noise at several levels.

    For each level in `sds` and each of `draws` draws, every trainable weight
    `w` of the model (biases too; BatchNorm parameters with `batchnorm=True`)
    is set to `w + delta`, with `delta` from `noise` at that level (by default
    the seed's Gaussian, sd times `2 * max|w|` per tensor), and the model is
    evaluated. The clean weights are restored afterwards, also on error or
    interrupt. The compiled evaluation function is reused throughout.

    An uncompiled model is compiled with sparse categorical cross-entropy on
    logits and accuracy. `NoisyWeights` layers evaluate with their clean
    (here: perturbed) weights, so wrapped and plain models sweep alike.

    Args:
        model: a Keras classifier.
        x: inputs (array) or a `tf.data.Dataset` / PyDataset of `(x, y)`.
        y: integer labels when `x` is an array.
        sds: inference noise levels.
        draws: noise draws per level.
        seed: integer seed; the same seed gives the same draws.
        noise: the noise family (`mat_keras.noise.get`), set to each level
            with `NoiseModel.with_sd`.
        batch_size: evaluation batch size for array inputs.
        batchnorm: also perturb BatchNormalization's gamma and beta.
        name: label of the result (defaults to the model's name).
        data: a description of the evaluation data, kept in the result.
        verbose: 1 shows a Keras progress bar.

    Returns:
        A `SweepResult`.

    Example:

    >>> result = mat_keras.robustness_sweep(model, x_test, y_test,
    ...                                     sds=[0, 0.1, 0.2], draws=10)
    >>> print(result.table())
    """
    sds = _check_levels(sds, draws)
    family = noise_lib.get(noise)
    variables = perturbed_variables(model, batchnorm=batchnorm)
    clean = [keras.ops.convert_to_tensor(keras.ops.convert_to_numpy(v)) for v in variables]
    generator = keras.random.SeedGenerator(seed)
    draws_at = _compiled_draws(family, sds, clean)
    accuracy = np.zeros((len(sds), draws))
    loss = np.full((len(sds), draws), np.nan)
    progress = keras.utils.Progbar(
        len(sds) * draws, verbose=verbose, stateful_metrics=["sd", "accuracy"], unit_name="draw"
    )
    evaluate = make_evaluator(model, x, y, batch_size)
    state = generator.state.value
    try:
        for i, draw in enumerate(draws_at):
            for d in range(draws):
                noisy, state = draw(state, clean)
                for variable, value in zip(variables, noisy):
                    variable.assign(value)
                accuracy[i, d], loss[i, d] = evaluate()
                progress.add(1, [("sd", sds[i]), ("accuracy", accuracy[i, d])])
    finally:
        for variable, value in zip(variables, clean):
            variable.assign(value)
    return SweepResult(
        sds=sds,
        accuracy=accuracy,
        loss=loss,
        name=name or model.name,
        noise=noise_lib.serialize(family),
        seed=seed,
        data=data or "",
    )
