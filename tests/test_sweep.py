"""robustness_sweep: the noise it applies, its statistics, restoring, files."""

import json

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import trained_classifier

# The core subset: CI runs it on the JAX and PyTorch backends too (`pytest -m backends`).
pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def trained():
    return trained_classifier()


def test_applies_the_seed_noise_to_every_parameter_and_restores(trained):
    model, x, y = trained
    clean = [w.copy() for w in model.get_weights()]
    seen = []
    original_evaluate = model.evaluate

    def spy(*args, **kwargs):
        seen.append(model.get_weights())
        return original_evaluate(*args, **kwargs)

    model.evaluate = spy
    try:
        mat.robustness_sweep(model, x, y, sds=[0.0, 0.1], draws=3, seed=0, verbose=0)
    finally:
        del model.evaluate
    assert len(seen) == 6
    for weights in seen[:3]:  # sd 0: clean weights
        for got, want in zip(weights, clean):
            np.testing.assert_array_equal(got, want)
    # sd 0.1: per tensor, delta / (0.1 * 2 * max|w|) is standard normal; pooled over draws.
    z = np.concatenate(
        [((draw[i] - clean[i]) / (0.1 * 2 * np.abs(clean[i]).max())).ravel() for draw in seen[3:] for i in range(len(clean))]
    )
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * z.size) and abs(z.mean()) < 5 / np.sqrt(z.size)
    assert all((draw[0] != seen[3][0]).any() for draw in seen[4:])  # a fresh draw each time
    for got, want in zip(model.get_weights(), clean):  # restored exactly
        np.testing.assert_array_equal(got, want)


def test_statistics_seed_and_monotone_degradation(trained):
    model, x, y = trained
    first = mat.robustness_sweep(model, x, y, sds=[0.0, 0.05, 0.5], draws=4, seed=3, verbose=0)
    again = mat.robustness_sweep(model, x, y, sds=[0.0, 0.05, 0.5], draws=4, seed=3, verbose=0)
    other = mat.robustness_sweep(model, x, y, sds=[0.0, 0.05, 0.5], draws=4, seed=4, verbose=0)
    np.testing.assert_array_equal(first.accuracy, again.accuracy)
    assert not np.array_equal(first.accuracy[1:], other.accuracy[1:])
    clean_accuracy = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    np.testing.assert_allclose(first.accuracy[0], clean_accuracy)
    assert first.std()[0] == 0
    assert first.mean()[2] < first.mean()[0] - 0.1
    assert np.isfinite(first.loss).all() and first.loss[2].mean() > first.loss[0].mean()


def test_result_statistics_tables_and_files(tmp_path):
    accuracy = np.array([[0.9, 0.9, 0.9, 0.9], [0.5, 0.7, 0.6, 0.8]])
    result = mat.SweepResult(sds=[0.0, 0.2], accuracy=accuracy, loss=np.full((2, 4), np.nan), name="MAT", data="toy")
    np.testing.assert_allclose(result.mean(), [0.9, 0.65])
    np.testing.assert_allclose(result.std(), [0.0, np.std([0.5, 0.7, 0.6, 0.8], ddof=1)])
    np.testing.assert_allclose(result.quantiles()[1], [0.9, 0.65])
    table = result.table(mat.SweepResult(sds=[0.0, 0.2], accuracy=accuracy * 0.5, loss=accuracy, name="vanilla"))
    assert "MAT (n=4)" in table and "65.00 ± 12.91" in table and "vanilla (n=4)" in table
    result.to_json(tmp_path / "r.json")
    loaded = mat.sweep.load_json(tmp_path / "r.json")[0]
    np.testing.assert_array_equal(loaded.accuracy, accuracy)
    assert json.loads((tmp_path / "r.json").read_text())["summary"][1]["median"] == pytest.approx(0.65)
    result.to_csv(tmp_path / "r.csv")
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0] == "name,sd,draw,accuracy,loss" and len(rows) == 9
    result.plot(tmp_path / "r.png", baseline=mat.SweepResult(sds=[0.0, 0.2], accuracy=accuracy * 0.5, loss=accuracy, name="vanilla"))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_works_on_wrapped_models_and_datasets(trained):
    model, x, y = trained
    robust = mat.wrap(model, noise=0.1, seed=0)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    a = mat.robustness_sweep(robust, dataset, sds=[0.0, 0.1], draws=2, seed=1, verbose=0)
    b = mat.robustness_sweep(model, x, y, sds=[0.0, 0.1], draws=2, seed=1, verbose=0)
    np.testing.assert_allclose(a.accuracy, b.accuracy)


def test_array_batches_cover_the_arrays_once_in_order():
    from mat_keras.backend_utils import array_batches

    x = np.arange(20, dtype="float32").reshape(10, 2)
    y = np.arange(10)
    batches = list(array_batches(x, y, 4))
    assert [len(by) for _, by in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([keras.ops.convert_to_numpy(bx) for bx, _ in batches]), x)
    np.testing.assert_array_equal(np.concatenate([keras.ops.convert_to_numpy(by) for _, by in batches]), y)


def test_array_input_matches_evaluate_with_an_uneven_last_batch(trained):
    model, x, y = trained
    result = mat.robustness_sweep(model, x, y, sds=[0.0], draws=1, batch_size=7, verbose=0)
    logs = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    np.testing.assert_allclose(result.accuracy[0, 0], logs["accuracy"])
    np.testing.assert_allclose(result.loss[0, 0], logs["loss"], rtol=1e-5)


def test_bad_inputs(trained):
    model, x, y = trained
    with pytest.raises(mat.errors.InvalidArgumentError, match="draws"):
        mat.robustness_sweep(model, x, y, draws=0)
    with pytest.raises(mat.errors.InvalidArgumentError, match="sd must be"):
        mat.robustness_sweep(model, x, y, sds=[0.1, -0.2])
    regression = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    regression.compile("sgd", "mse")
    with pytest.raises(mat.errors.InvalidArgumentError, match="accuracy metric"):
        mat.robustness_sweep(regression, x, y, sds=[0.0], draws=1, verbose=0)


def test_a_piped_sweep_prints_one_line_per_level_and_no_redraws(tmp_path):
    import subprocess
    import sys

    script = (
        "import keras, numpy as np, mat_keras as mat\n"
        "model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])\n"
        "x = np.random.default_rng(0).normal(size=(40, 6)).astype('float32')\n"
        "mat.robustness_sweep(model, x, np.arange(40) % 3, sds=[0.0, 0.1, 0.2], draws=4, verbose=1)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, text=True
    ).stdout
    assert "\r" not in out and "\b" not in out
    lines = out.splitlines()
    assert len(lines) == 3, out
    for sd, (line, draws) in zip(["0", "0.1", "0.2"], zip(lines, [4, 8, 12])):
        assert line.startswith(f"sd {sd} - accuracy ") and line.endswith(f"({draws}/12 draws)"), line
