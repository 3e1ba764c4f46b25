"""Measured devices: programming drawn from a device's measured level distributions.

A chip maker programs each level of a device many times and measures the
conductance reached. `Measured` holds those measurements and, when a
`DeviceModel` programs a weight, draws the conductance of each device from
the measurements of the level its target snapped to: the real spread and
shape of each level, not a fitted Gaussian.

The CSV format (one row per programming attempt):

```
# Lines starting with '#' are comments; blank lines are skipped.
level,target_uS,conductance_uS
0,1.0,1.07
0,1.0,0.93
1,6.571,6.62
...
```

- `level`: the level index, an integer from 0; every index from 0 to the
  highest must appear, each with at least two attempts.
- `target_uS`: the level's target conductance in microsiemens, the same on
  every row of a level and increasing with the level. The lowest target is
  the device's `g_min`, the highest its `g_max`: weights map onto the
  targets exactly as the exporter (`mat_keras.export.Device(levels=[...])`)
  maps them onto measured levels.
- `conductance_uS`: the conductance measured after that attempt, in
  microsiemens, >= 0.

Columns may come in any order; others are ignored. A missing level, a
missing or non-numeric value, or an inconsistent target is an
`InvalidArgumentError` naming the file and line.

The package ships `data/synthetic_rram_levels.csv`, made by
`write_synthetic_csv` (rerun `python mat_keras/data/make_synthetic_levels.py`): SYNTHETIC
numbers for examples and tests, not measurements of a real device.
"""

import csv
import io
import math
import os

import keras
import numpy as np
from keras import ops

from mat_keras.devices.components import Component
from mat_keras.devices.levels import Levels
from mat_keras.devices.model import DeviceModel
from mat_keras.errors import InvalidArgumentError
from mat_keras.io_utils import atomic_write, read_text
from mat_keras.noise.registry import register

COLUMNS = ("level", "target_uS", "conductance_uS")
DISTRIBUTIONS = ("empirical", "normal")


def example_csv_path():
    """Returns the path of the shipped synthetic example CSV."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(package, "data", "synthetic_rram_levels.csv")


# -- reading -----------------------------------------------------------------


def _rows(path):
    """Yields `(line_number, fields)` of the data rows, after the header."""
    # One sentence naming the file for an empty file or one that is not text.
    lines = read_text(path, "measurements file").splitlines()
    header = None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = next(csv.reader([line]))
        fields = [field.strip() for field in fields]
        if header is None:
            header = fields
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise InvalidArgumentError(
                    f"{path}, line {number}: the header must name the columns "
                    f"{', '.join(COLUMNS)}; missing {', '.join(missing)}."
                )
            positions = [header.index(c) for c in COLUMNS]
            continue
        if len(fields) < len(header):
            raise InvalidArgumentError(
                f"{path}, line {number}: expected {len(header)} values, got {len(fields)}."
            )
        yield number, [fields[p] for p in positions]
    if header is None:
        raise InvalidArgumentError(f"{path} holds no header line ({', '.join(COLUMNS)}).")


def _number(text, column, path, number):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not text or not math.isfinite(value):
        raise InvalidArgumentError(
            f"{path}, line {number}: {column} must be a finite number, got {text!r}."
        )
    return value


def read_measurements(path):
    """Reads a measurements CSV (format in the module docstring).

    Args:
        path: the CSV file.

    Returns:
        `(targets, samples)`: the target conductance of each level (uS, a
        list) and the measured conductances of each level (uS, a list of
        lists), ordered by level.

    Raises:
        InvalidArgumentError: a bad header; a missing, empty or non-numeric
            value; a level index that is not an integer >= 0; a missing
            level; a level with fewer than two attempts; targets that differ
            within a level or do not increase with it. The message names the
            file and line.
        InputFileError: the file is empty or not text.

    Example:

    >>> targets, samples = read_measurements(example_csv_path())
    >>> len(targets), len(samples[0])
    (8, 40)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"No measurements file at {path!r}.")
    levels = {}
    for number, (level_text, target_text, measured_text) in _rows(path):
        level = _number(level_text, "level", path, number)
        if level != int(level) or level < 0:
            raise InvalidArgumentError(
                f"{path}, line {number}: level must be an integer >= 0, got {level_text!r}."
            )
        target = _number(target_text, "target_uS", path, number)
        measured = _number(measured_text, "conductance_uS", path, number)
        if target < 0 or measured < 0:
            raise InvalidArgumentError(
                f"{path}, line {number}: conductances must be >= 0 uS."
            )
        entry = levels.setdefault(int(level), {"target": target, "line": number, "samples": []})
        if not math.isclose(entry["target"], target, rel_tol=1e-9, abs_tol=1e-12):
            raise InvalidArgumentError(
                f"{path}, line {number}: level {int(level)} has target {target!r} uS, but "
                f"{entry['target']!r} uS at line {entry['line']}."
            )
        entry["samples"].append(measured)
    return _ordered(levels, path)


def _ordered(levels, path):
    if not levels:
        raise InvalidArgumentError(f"{path} holds no measurements.")
    top = max(levels)
    for level in range(top + 1):
        if level not in levels:
            after = min(k for k in levels if k > level)
            raise InvalidArgumentError(
                f"{path}: level {level} is missing (levels run from 0 to {top}; the first "
                f"row of level {after} is line {levels[after]['line']})."
            )
        if len(levels[level]["samples"]) < 2:
            raise InvalidArgumentError(
                f"{path}, line {levels[level]['line']}: level {level} needs at least two "
                "measurements to have a spread."
            )
    targets = [levels[k]["target"] for k in range(top + 1)]
    for k in range(1, top + 1):
        if not targets[k] > targets[k - 1]:
            raise InvalidArgumentError(
                f"{path}, line {levels[k]['line']}: level {k}'s target {targets[k]!r} uS must be "
                f"above level {k - 1}'s, {targets[k - 1]!r} uS."
            )
    return targets, [levels[k]["samples"] for k in range(top + 1)]


# -- the programming component -------------------------------------------------


@register("measured")
class Measured(Component):
    """Programming that draws each device's conductance from measurements.

    A device whose target snaps to level `k` gets a conductance drawn from
    the measurements of level `k`: one of them at random
    (`distribution="empirical"`, which keeps the measured shape and tails),
    or a normal with their mean and sd (`"normal"`). Use it as the
    `programming` part of a `DeviceModel`, which then takes the measured
    targets as its levels (lowest target `g_min`, highest `g_max`).

    Args:
        targets: target conductance of each level (uS), increasing.
        samples: measured conductances of each level (uS), a list of at
            least two numbers per level.
        distribution: `"empirical"` or `"normal"`.

    Example:

    >>> device = mat_keras.noise.DeviceModel(programming=Measured.from_csv("levels.csv"))
    """

    slot = "programming"

    def __init__(self, targets, samples, distribution="empirical"):
        if distribution not in DISTRIBUTIONS:
            raise InvalidArgumentError(
                f"distribution must be one of {', '.join(DISTRIBUTIONS)}; got {distribution!r}."
            )
        self.distribution = distribution
        self.device_levels = Levels(targets, name="measured targets")
        if self.device_levels.low < 0:
            raise InvalidArgumentError("Measured targets must be conductances >= 0 uS.")
        if len(samples) != self.device_levels.count:
            raise InvalidArgumentError(
                f"Measured needs one list of samples per level: {self.device_levels.count} "
                f"targets, {len(samples)} lists."
            )
        self.samples = [np.asarray(s, dtype=np.float64) for s in samples]
        for level, values in enumerate(self.samples):
            if values.ndim != 1 or values.size < 2 or not np.all(np.isfinite(values)) or np.any(values < 0):
                raise InvalidArgumentError(
                    f"Level {level} needs at least two finite measured conductances >= 0 uS."
                )
        self._normalised = self.device_levels.normalised()
        # Flattened table for gathers: level k's samples start at offsets[k].
        self._counts = np.array([s.size for s in self.samples], dtype=np.int32)
        self._offsets = np.concatenate([[0], np.cumsum(self._counts)[:-1]]).astype(np.int32)
        top = self.device_levels.high
        self._flat = np.concatenate(self.samples) / top
        self._means = np.array([s.mean() for s in self.samples]) / top
        self._sds = np.array([s.std(ddof=1) for s in self.samples]) / top

    @classmethod
    def from_csv(cls, path, distribution="empirical"):
        """Reads a measurements CSV (see the module docstring)."""
        targets, samples = read_measurements(path)
        return cls(targets, samples, distribution)

    @property
    def num_levels(self):
        return self.device_levels.count

    def statistics(self):
        """Per-level `(targets, means, sds)` in uS (sd with ddof=1), numpy arrays."""
        targets = self.device_levels.values.copy()
        means = np.array([s.mean() for s in self.samples])
        sds = np.array([s.std(ddof=1) for s in self.samples])
        return targets, means, sds

    def sample(self, target, seed=None, device=None):
        """Returns programmed conductances (units of the highest target) for targets.

        Args:
            target: target conductances in units of `g_max`, on the levels of
                `device`.
            seed: the seed of the draw.
            device: the spec of the targets (the device model's own, whose
                levels are the measured targets, or the tables' when a chip
                is programmed from exported tables of as many levels); None
                for the measured levels themselves. A target at the spec's
                level `k` draws from the measurements of level `k`.
        """
        low, high = (0.0, 1.0) if device is None else device.relative_range
        levels = self._normalised if device is None else device.normalised_levels
        index = levels.index_op((target - low) / (high - low))
        dtype = target.dtype
        if self.distribution == "normal":
            means = ops.take(ops.convert_to_tensor(self._means, dtype), index)
            sds = ops.take(ops.convert_to_tensor(self._sds, dtype), index)
            draw = keras.random.normal(ops.shape(target), dtype=dtype, seed=seed)
            return ops.maximum(means + sds * draw, 0.0)
        counts = ops.take(ops.convert_to_tensor(self._counts), index)
        offsets = ops.take(ops.convert_to_tensor(self._offsets), index)
        draw = keras.random.uniform(ops.shape(target), dtype="float32", seed=seed)
        pick = ops.cast(ops.floor(draw * ops.cast(counts, "float32")), "int32")
        pick = ops.minimum(pick, counts - 1)  # uniform() may return values near 1
        return ops.take(ops.convert_to_tensor(self._flat, dtype), offsets + pick)

    def get_config(self):
        return {
            "targets": self.device_levels.values.tolist(),
            "samples": [s.tolist() for s in self.samples],
            "distribution": self.distribution,
        }


@register("measured")
class MeasuredDevice(DeviceModel):
    """A device model programmed from measurements (by default the shipped synthetic CSV).

    The arguments are those of `DeviceModel`; `programming` defaults to
    `Measured.from_csv(example_csv_path())`, SYNTHETIC example data (an
    RRAM-like device of 8 levels from 1 to 40 uS).

    Example:

    >>> device = MeasuredDevice.from_csv("my_levels.csv", drift=None)
    >>> robust = mat_keras.wrap(model, noise=device)
    """

    def __init__(self, programming=None, **kwargs):
        if programming is None:
            programming = Measured.from_csv(example_csv_path())
        super().__init__(programming, **kwargs)

    @classmethod
    def from_csv(cls, path, distribution="empirical", **kwargs):
        """A device model from a measurements CSV; `kwargs` go to `DeviceModel`."""
        return cls(programming=Measured.from_csv(path, distribution), **kwargs)


# -- the synthetic example -------------------------------------------------------


def synthetic_measurements(levels=8, attempts=40, g_min=1.0, g_max=40.0, seed=0):
    """Makes SYNTHETIC RRAM-like level measurements (not data of a real device).

    Targets are uniform from `g_min` to `g_max` (uS). Each attempt lands at
    `target * 0.99 + e` (a 1 % relaxation below target) with `e` from a
    Student t distribution of 5 degrees of freedom (heavier tails than a
    normal) scaled to an sd of `0.4 + 1.6 * 4 u (1 - u)` uS, `u` the level's
    position in the range: 0.4 uS at the ends, 2 uS at mid range.

    Returns:
        A list of `(level, target_uS, conductance_uS)` rows.
    """
    rng = np.random.default_rng(seed)
    targets = np.linspace(g_min, g_max, levels)
    rows = []
    for level, target in enumerate(targets):
        position = level / (levels - 1)
        sd = 0.4 + 1.6 * 4 * position * (1 - position)
        spread = rng.standard_t(5, attempts) * sd * math.sqrt(3 / 5)
        measured = np.maximum(target * 0.99 + spread, 0.0)
        rows.extend((level, round(float(target), 4), round(float(g), 4)) for g in measured)
    return rows


def write_synthetic_csv(path, seed=0, levels=8, attempts=40):
    """Writes `synthetic_measurements(...)` as a CSV whose header says it is synthetic.

    `mat_keras/data/make_synthetic_levels.py` calls it to make the shipped
    example.
    """
    buffer = io.StringIO()
    buffer.write(
        "# SYNTHETIC example data, not measurements of a real device.\n"
        f"# Made by mat_keras.devices.measured.write_synthetic_csv(seed={seed}) "
        "(mat_keras/data/make_synthetic_levels.py):\n"
        f"# an RRAM-like device, {levels} levels from 1 to 40 uS, {attempts} programming "
        "attempts per level.\n"
    )
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(synthetic_measurements(levels, attempts, seed=seed))
    with atomic_write(path, newline="") as handle:
        handle.write(buffer.getvalue())
