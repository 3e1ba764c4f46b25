"""mat_keras.devices.levels: the one implementation of levels, numpy and keras.ops."""

import keras
import numpy as np
import pytest

from mat_keras.errors import InvalidArgumentError
from mat_keras.devices.levels import Levels, index_dtype, uniform_index, uniform_index_op, uniform_snap_op


def _brute_force_index(values, x):
    # Nearest level by exhaustive distance; ties go to the upper level.
    distance = np.abs(x[..., None] - values)
    best = distance.min(axis=-1, keepdims=True)
    return (distance <= best).cumsum(axis=-1).argmax(axis=-1)  # last of the ties = upper


LEVEL_SETS = {
    "uniform-16": Levels.uniform(-1.0, 1.0, 16),
    "uniform-2": Levels.uniform(0.0, 1.0, 2),
    "explicit": Levels([0.0, 0.1, 0.15, 0.5, 0.9, 1.0]),
}


@pytest.mark.parametrize("name", sorted(LEVEL_SETS))
def test_index_is_the_nearest_level_in_numpy_and_keras_ops(name):
    levels = LEVEL_SETS[name]
    rng = np.random.default_rng(0)
    # Values inside, outside, and exactly half-way between levels.
    midpoints = (levels.values[:-1] + levels.values[1:]) / 2
    x = np.concatenate([rng.uniform(levels.low - 0.5, levels.high + 0.5, 2000), midpoints]).astype(np.float64)
    expected = _brute_force_index(levels.values, x)
    away_from_ties = np.min(np.abs(x[:, None] - midpoints), axis=1) > 1e-9
    np.testing.assert_array_equal(levels.index(x)[away_from_ties], expected[away_from_ties])
    if not levels.is_uniform:
        # At exact midpoints both neighbours are equally near; the rule is
        # "upper" (the uniform path's arithmetic may round a tie either way).
        np.testing.assert_array_equal(levels.index(midpoints), np.arange(1, levels.count))
    x32 = x.astype(np.float32)
    ops_index = np.asarray(keras.ops.convert_to_numpy(levels.index_op(x32[:2000].reshape(-1, 2)))).ravel()
    np.testing.assert_array_equal(ops_index, levels.index(x32[:2000]))
    snapped = np.asarray(keras.ops.convert_to_numpy(levels.snap_op(x32)))
    np.testing.assert_allclose(snapped, levels.values[levels.index(x32)], rtol=1e-6)


def test_snap_error_is_at_most_half_the_largest_gap():
    levels = LEVEL_SETS["explicit"]
    x = np.linspace(levels.low, levels.high, 10001)
    assert np.max(np.abs(levels.snap(x) - x)) <= levels.max_gap / 2 + 1e-12


def test_uniform_index_with_tensor_bounds_matches_numpy():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(50, 8)).astype(np.float32)
    low, high = np.quantile(w, 0.01), np.quantile(w, 0.99)
    expected = uniform_index(w, low, high, 16)
    got = keras.ops.convert_to_numpy(
        uniform_index_op(keras.ops.convert_to_tensor(w), keras.ops.convert_to_tensor(low), high, 16)
    )
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(expected, Levels.uniform(low, high, 16).index(w))
    snapped = keras.ops.convert_to_numpy(uniform_snap_op(w, low, high, 16))
    np.testing.assert_allclose(snapped, Levels.uniform(low, high, 16).snap(w), atol=1e-6)


def test_uniform_index_per_column_bounds():
    w = np.array([[0.0, 10.0], [1.0, 20.0]])
    np.testing.assert_array_equal(uniform_index(w, [0.0, 10.0], [1.0, 20.0], 2), [[0, 0], [1, 1]])


def test_normalised_and_scaled():
    levels = Levels([2.0, 3.0, 6.0])
    np.testing.assert_allclose(levels.normalised().values, [0.0, 0.25, 1.0])
    assert Levels.uniform(1e-6, 4e-6, 4).scaled(1e6) == Levels.uniform(1.0, 4.0, 4)
    assert levels.step is None and Levels.uniform(0, 1, 5).step == 0.25


def test_config_round_trip():
    for levels in LEVEL_SETS.values():
        assert Levels.from_config(levels.get_config()) == levels


def test_index_dtype():
    assert index_dtype(256) is np.uint8 and index_dtype(257) is np.uint16
    assert Levels.uniform(0, 1, 300).index(np.array([1.0])).dtype == np.uint16


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Levels.uniform(0.0, 1.0, 1), "between 2"),
        (lambda: Levels.uniform(1.0, 1.0, 4), "below the highest"),
        (lambda: Levels.uniform(0.0, float("inf"), 4), "finite"),
        (lambda: Levels.uniform(0.0, 1.0, 2.5), "integer"),
        (lambda: Levels([1.0]), "at least 2"),
        (lambda: Levels([1.0, 1.0, 2.0]), "strictly increasing"),
        (lambda: Levels([0.0, float("nan")]), "finite"),
        (lambda: Levels(["a", "b"]), "list of numbers"),
    ],
)
def test_bad_levels_are_clear_errors(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()
