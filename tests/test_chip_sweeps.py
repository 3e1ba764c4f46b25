"""Sweeps through a crossbar: the chip twin, its calibration, its seeded noise, the results."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import trained_classifier
from mat_keras import crossbar as crossbar_lib
from mat_keras import sweep

SDS = [0.0, 0.1]


@pytest.fixture(scope="module")
def trained():
    return trained_classifier()


def _sweep(model, x, y, **kwargs):
    return mat.robustness_sweep(model, x, y, sds=SDS, draws=3, seed=0, verbose=0, **kwargs)


def _deploy(model, x, y, **kwargs):
    kwargs.setdefault("seed", 0)
    return mat.deployment_sweep(model, x, y, device="pcm", times=[1.0, "1y"], draws=2, verbose=0, **kwargs)


def _ranges(model):
    return [np.asarray(v) for layer in mat.noisy_layers(model) for v in layer.input_ranges.values()]


@pytest.mark.backends
def test_the_ideal_crossbar_sweeps_as_without_one(trained):
    model, x, y = trained
    plain, ideal = _sweep(model, x, y), _sweep(model, x, y, crossbar="ideal")
    np.testing.assert_array_equal(ideal.accuracy, plain.accuracy)
    np.testing.assert_allclose(ideal.loss, plain.loss, rtol=1e-5)
    assert plain.crossbar is None and ideal.crossbar == crossbar_lib.ideal().get_config()
    for plain_result, ideal_result in zip(_deploy(model, x, y), _deploy(model, x, y, crossbar="ideal")):
        np.testing.assert_array_equal(ideal_result.accuracy, plain_result.accuracy)


@pytest.mark.backends
def test_the_standard_chip_changes_accuracy_and_repeats_with_the_seed(trained):
    model, x, y = trained
    clean = [w.copy() for w in model.get_weights()]
    plain = _sweep(model, x, y)
    first = _sweep(model, x, y, crossbar="standard")
    again = _sweep(model, x, y, crossbar="standard")
    other = mat.robustness_sweep(model, x, y, sds=SDS, draws=3, seed=1, verbose=0, crossbar="standard")
    np.testing.assert_array_equal(first.accuracy, again.accuracy)
    np.testing.assert_array_equal(first.loss, again.loss)
    assert not np.array_equal(first.loss, other.loss)
    # Clean weights, yet every draw differs: the chip's own read and output noise.
    assert not np.array_equal(first.accuracy, plain.accuracy)
    assert not np.array_equal(first.loss, plain.loss) and first.loss[0].std() > 0
    assert first.crossbar == crossbar_lib.standard().get_config()
    # The model itself is neither wrapped nor perturbed.
    assert not mat.noisy_layers(model)
    for got, want in zip(model.get_weights(), clean):
        np.testing.assert_array_equal(got, want)


def test_a_deployment_through_the_chip_repeats_with_the_seed(trained):
    model, x, y = trained
    first, again = _deploy(model, x, y, crossbar="standard"), _deploy(model, x, y, crossbar="standard")
    other = _deploy(model, x, y, crossbar="standard", seed=5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.loss, b.loss)
        assert a.crossbar == crossbar_lib.standard().get_config()
    assert not np.array_equal(first[0].loss, other[0].loss)
    plain = _deploy(model, x, y)
    assert not np.array_equal(first[0].loss, plain[0].loss)


def test_the_chip_noise_is_not_the_weight_draws_stream(trained):
    model, _, _ = trained
    twin = mat.chip_model(model, "standard")
    sweep.seed_chip_noise(twin, 0)
    states = [np.asarray(layer.seed_generator.state) for layer in mat.noisy_layers(twin)]
    weights_stream = np.asarray(keras.random.SeedGenerator(0).state)
    assert len({tuple(s) for s in states}) == len(states)
    assert all(tuple(s) != tuple(weights_stream) for s in states)
    sweep.seed_chip_noise(twin, 0)
    again = [np.asarray(layer.seed_generator.state) for layer in mat.noisy_layers(twin)]
    np.testing.assert_array_equal(np.stack(states), np.stack(again))


def test_a_chip_trained_model_sweeps_with_its_own_learned_ranges(trained, monkeypatch):
    model, x, y = trained
    robust = mat.wrap(model, noise=0.05, crossbar="standard", seed=0)
    robust.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    robust.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    learned = _ranges(robust)
    assert not crossbar_lib.needs_calibration(robust)

    def refuse(*args, **kwargs):
        raise AssertionError("the learned ranges were calibrated again")

    monkeypatch.setattr(crossbar_lib, "calibrate_input_ranges", refuse)
    twin = sweep.chip_twin(robust, "standard", x, seed=0)
    for got, want in zip(_ranges(twin), learned):
        np.testing.assert_array_equal(got, want)
    result = _sweep(robust, x, y, crossbar="standard")
    assert result.crossbar == crossbar_lib.standard().get_config()
    for got, want in zip(_ranges(robust), learned):  # the model's ranges untouched
        np.testing.assert_array_equal(got, want)


def test_ranges_never_set_are_calibrated_from_the_data_given_or_the_first_inputs(trained):
    model, x, y = trained
    expected = mat.chip_model(model, "standard")
    crossbar_lib.calibrate_input_ranges(expected, x[:50])
    given = sweep.chip_twin(model, "standard", x, calibration_data=x[:50])
    for got, want in zip(_ranges(given), _ranges(expected)):
        np.testing.assert_array_equal(got, want)
    # A dataset: the inputs of its first batches, up to 1,024.
    first = mat.chip_model(model, "standard")
    crossbar_lib.calibrate_input_ranges(first, x[:200])
    batches = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 200, 100)]
    from_batches = sweep.chip_twin(model, "standard", batches)
    for got, want in zip(_ranges(from_batches), _ranges(first)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not crossbar_lib.needs_calibration(from_batches)


def test_a_twin_is_compiled_with_the_models_loss(trained):
    model, x, y = trained
    one_hot = keras.models.clone_model(model)
    one_hot.set_weights(model.get_weights())
    one_hot.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    result = mat.robustness_sweep(
        one_hot, x, np.eye(3, dtype="float32")[y], sds=[0.0], draws=1, verbose=0, crossbar="ideal"
    )
    plain = mat.robustness_sweep(model, x, y, sds=[0.0], draws=1, verbose=0)
    np.testing.assert_allclose(result.accuracy, plain.accuracy)
    np.testing.assert_allclose(result.loss, plain.loss, rtol=1e-5)


@pytest.mark.backends
def test_results_keep_their_crossbar_in_files_and_tables(tmp_path):
    accuracy = np.array([[0.9, 0.8], [0.7, 0.6]])
    standard = crossbar_lib.standard().get_config()
    custom = crossbar_lib.Crossbar(input_bits=4).get_config()
    chip = mat.SweepResult(sds=[0.0, 0.1], accuracy=accuracy, loss=accuracy, name="chip", crossbar=standard)
    plain = mat.SweepResult(sds=[0.0, 0.1], accuracy=accuracy, loss=accuracy, name="plain")
    deployed = mat.DeploymentResult(times=[1.0, 60.0], accuracy=accuracy, loss=accuracy, crossbar=custom)
    mat.sweep.save_json(tmp_path / "r.json", [chip, plain, deployed])
    loaded = mat.sweep.load_json(tmp_path / "r.json")
    assert [r.crossbar for r in loaded] == [standard, None, custom]
    assert chip.table().splitlines()[-1] == "through the crossbar: standard"
    assert chip.table(plain).splitlines()[-2:] == ["chip: crossbar standard", "plain: crossbar none"]
    assert deployed.table().splitlines()[-1] == "through the crossbar: Crossbar(input_steps=14)"
    assert "crossbar" not in plain.table()
