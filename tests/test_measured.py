"""Measured devices: sampling from each level's measurements, CSV errors, the shipped example."""

import numpy as np
import pytest

import mat_keras as mat
from device_testing import weights_at_states
from mat_testing import to_numpy
from mat_keras.devices.levels import Levels
from mat_keras.errors import InvalidArgumentError


@pytest.mark.parametrize("distribution", ["empirical", "normal"])
def test_measured_sampling_reproduces_each_levels_mean_and_sd(distribution):
    measured = mat.noise.Measured.from_csv(mat.devices.measured.example_csv_path(), distribution)
    targets, _, _ = measured.statistics()
    top = targets[-1]
    device = mat.noise.DeviceModel(programming=measured)
    n = 20_000
    weights, ranges = weights_at_states(list(targets / top), g_min=device.g_min, n=n)
    g = to_numpy(device.program(weights, seed=0).conductances)[0].astype(float) * top
    for level, part in enumerate(ranges):
        values = measured.samples[level]
        ddof = 0 if distribution == "empirical" else 1  # resampling reproduces the population sd
        mean, sd = values.mean(), values.std(ddof=ddof)
        kurtosis = np.mean((values - values.mean()) ** 4) / values.var() ** 2 if distribution == "empirical" else 3.0
        sample = g[part]
        assert abs(sample.mean() - mean) < 5 * sd / np.sqrt(n), level
        # Standard error of an sd estimate: sd * sqrt((kurtosis - 1) / (4 n)).
        assert abs(sample.std() - sd) < 5 * sd * np.sqrt((kurtosis - 1) / (4 * n)), level
        if distribution == "empirical":
            # Every programmed conductance is one of the level's measurements (float32 rounding).
            assert np.abs(sample[:, None] - values[None, :]).min(axis=1).max() < 1e-5 * top


def test_measured_device_uses_the_measured_levels_as_the_exporter_would():
    device = mat.noise.get("measured")
    targets, _, _ = device.programming.statistics()
    assert device.g_min == pytest.approx(targets[0] / targets[-1])
    assert device.levels == Levels(targets).normalised()


def _write(tmp_path, text):
    path = tmp_path / "levels.csv"
    path.write_text(text)
    return path


def test_measured_csv_errors_name_the_line(tmp_path):
    header = "# my device\nlevel,target_uS,conductance_uS\n"
    good = "0,1,1.1\n0,1,0.9\n"
    cases = [
        (good + "1,5,5.2\n1,5,4.8\n3,20,19\n3,20,21\n", r"level 2 is missing.*line 7"),
        (good + "1,5,5.2\n1,5,abc\n", r"line 6: conductance_uS must be a finite number, got 'abc'"),
        (good + "1,5,5.2\n1,5,\n", r"line 6: conductance_uS must be a finite number"),
        (good + "x,5,5.2\n", r"line 5: level must be a finite number"),
        (good + "1,5,5.2\n1,6,4.8\n", r"line 6: level 1 has target 6.0 uS"),
        (good + "1,5,5.2\n", r"line 5: level 1 needs at least two"),
        (good + "1,0.5,0.6\n1,0.5,0.4\n", r"line 5: level 1's target 0.5 uS must be above"),
        (good + "1,5\n", r"line 5: expected 3 values"),
    ]
    for body, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            mat.noise.Measured.from_csv(_write(tmp_path, header + body))
    with pytest.raises(InvalidArgumentError, match="missing target_uS"):
        mat.noise.Measured.from_csv(_write(tmp_path, "level,conductance_uS\n0,1\n"))


def test_shipped_example_is_labelled_synthetic_and_regenerable(tmp_path):
    path = mat.devices.measured.example_csv_path()
    with open(path) as handle:
        assert handle.readline().startswith("# SYNTHETIC")
    targets, samples = mat.devices.measured.read_measurements(path)
    assert len(targets) == 8 and all(len(s) == 40 for s in samples)
    mat.devices.measured.write_synthetic_csv(tmp_path / "again.csv", seed=0)
    again_targets, again_samples = mat.devices.measured.read_measurements(tmp_path / "again.csv")
    np.testing.assert_allclose(again_targets, targets)
    np.testing.assert_allclose(again_samples, samples, atol=1e-3)
