"""deployment_sweep, NoiseFineTuning, the evaluate CLI with --device, and the mnist-5k claims."""

import json

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_keras.deployment import DeploymentResult
from mat_keras.devices import units
from mat_keras.devices.units import format_time, parse_time
from mat_keras.errors import InvalidArgumentError

TIMES = [0.0, 60.0, units.DAY, units.YEAR]


def _classifier(use_bias, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", use_bias=use_bias),
            keras.layers.Dense(3, use_bias=use_bias),
        ],
        name="biased" if use_bias else "homogeneous",
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=25, verbose=0)
    if use_bias:  # Large biases make the network sensitive to the scale of its weights.
        for layer in model.layers:
            layer.bias.assign(layer.bias + 0.5)
    return model, x, y


@pytest.fixture(scope="module")
def biased():
    return _classifier(use_bias=True)


@pytest.fixture(scope="module")
def homogeneous():
    return _classifier(use_bias=False)


UNIFORM_DRIFT = mat.noise.DeviceModel(drift={"nu_mean": 0.1, "nu_sd": 0.0})


def test_compensation_recovers_accuracy_lost_to_drift(biased):
    model, x, y = biased
    clean = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    without, with_ = mat.deployment_sweep(model, x, y, device=UNIFORM_DRIFT, times=TIMES, draws=2, verbose=0)
    assert not without.compensated and with_.compensated
    assert without.name.endswith("uncompensated") and with_.name.endswith(", compensated")
    # A uniform drift is undone exactly by compensation; digital biases make it matter.
    np.testing.assert_allclose(with_.accuracy, clean)
    np.testing.assert_allclose(without.accuracy[0], clean)
    assert without.mean()[-1] < clean - 0.05
    assert np.all(np.diff(without.mean()) <= 1e-9)


def test_compensation_cannot_matter_for_a_homogeneous_network(homogeneous):
    model, x, y = homogeneous
    without, with_ = mat.deployment_sweep(model, x, y, device="pcm", times=TIMES, draws=2, verbose=0)
    # ReLU without biases: rescaling a layer rescales the logits, never the argmax.
    np.testing.assert_array_equal(without.accuracy, with_.accuracy)


def test_programs_once_per_draw_and_restores_the_weights(biased):
    model, x, y = biased
    clean = [w.copy() for w in model.get_weights()]
    device = mat.noise.DeviceModel(programming=0.05)  # no drift, no read noise: time changes nothing
    (result,) = mat.deployment_sweep(model, x, y, device=device, times=TIMES, draws=3, compensation=False, verbose=0)
    for row in result.accuracy[1:]:
        np.testing.assert_array_equal(row, result.accuracy[0])
    assert len(set(result.accuracy[0])) > 1  # each draw a new programming
    for got, want in zip(model.get_weights(), clean):
        np.testing.assert_array_equal(got, want)


def test_restores_the_weights_on_error(biased):
    model, x, y = biased
    clean = [w.copy() for w in model.get_weights()]
    calls = []

    def failing(*args, **kwargs):
        calls.append(model.get_weights())
        raise KeyboardInterrupt

    model.evaluate = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            mat.deployment_sweep(model, x, y, device="rram", times=[1.0], draws=1, biases="devices", verbose=0)
    finally:
        del model.evaluate
    assert any((a != b).any() for a, b in zip(calls[0], clean))  # it did program the weights
    for got, want in zip(model.get_weights(), clean):
        np.testing.assert_array_equal(got, want)


def test_biases_stay_digital_unless_asked(biased):
    model, x, y = biased
    seen = []
    original = model.evaluate

    def spy(*args, **kwargs):
        seen.append(model.get_weights())
        return original(*args, **kwargs)

    model.evaluate = spy
    try:
        for biases in ("digital", "devices"):
            mat.deployment_sweep(model, x, y, device="rram", times=[1.0], draws=1, compensation=False,
                                 biases=biases, verbose=0)
    finally:
        del model.evaluate
    clean = model.get_weights()
    (digital, devices) = seen
    np.testing.assert_array_equal(digital[1], clean[1])  # bias of the first layer untouched
    assert not np.array_equal(digital[0], clean[0])
    assert not np.array_equal(devices[1], clean[1])


def test_a_weight_noise_model_deploys_like_the_robustness_sweep(homogeneous):
    model, x, y = homogeneous
    (deployed,) = mat.deployment_sweep(model, x, y, device=0.1, times=[0.0, units.YEAR], draws=4, seed=7,
                                       compensation=False, verbose=0)
    swept = mat.robustness_sweep(model, x, y, sds=[0.1], draws=4, seed=7, verbose=0)
    np.testing.assert_array_equal(deployed.accuracy[0], swept.accuracy[0])
    np.testing.assert_array_equal(deployed.accuracy[1], swept.accuracy[0])  # no drift for Gaussian noise


def test_seeded_and_reproducible(homogeneous):
    model, x, y = homogeneous
    run = lambda seed: mat.deployment_sweep(model, x, y, device="pcm", times=[units.YEAR], draws=3, seed=seed,  # noqa: E731
                                            compensation=False, verbose=0)[0].accuracy
    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_tables_plots_and_files(biased, tmp_path):
    model, x, y = biased
    results = mat.deployment_sweep(model, x, y, device="pcm", times=["1s", "1h", "1y"], draws=2, verbose=0,
                                   name="toy", data="toy data")
    table = mat.sweep.format_table(results)
    lines = table.splitlines()
    assert lines[0].startswith("time") and "toy, uncompensated (n=2)" in lines[0]
    assert [line.split("  ")[0] for line in lines[1:]] == ["1 s", "1 h", "1 year"]
    assert results[0].times == [1.0, 3600.0, units.YEAR]
    mat.sweep.save_json(tmp_path / "d.json", results)
    payload = json.loads((tmp_path / "d.json").read_text())
    assert payload[1]["kind"] == "deployment" and payload[1]["compensated"] is True
    assert payload[0]["times_s"] == [1.0, 3600.0, units.YEAR]
    again = DeploymentResult.from_dict(payload[1])
    np.testing.assert_array_equal(again.accuracy, results[1].accuracy)
    assert again.compensated
    mat.sweep.plot_results(results, path=tmp_path / "d.png")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


def test_time_parsing_and_formatting():
    assert parse_time("1s") == 1.0 and parse_time("1h") == 3600.0 and parse_time("2 days") == 2 * units.DAY
    assert parse_time("1mo") == units.MONTH and parse_time("1y") == units.YEAR and parse_time(86400) == units.DAY
    assert [format_time(t) for t in (0, 1, 3600, units.DAY, units.MONTH, units.YEAR, 2 * units.YEAR)] == [
        "0 s", "1 s", "1 h", "1 day", "1 month", "1 year", "2 years",
    ]
    for bad in ("-1h", "1 fortnight", "soon", -3.0):
        with pytest.raises(InvalidArgumentError):
            parse_time(bad)


def test_bad_arguments(homogeneous):
    model, x, y = homogeneous
    cases = [
        (dict(times=[1.0, -1.0]), "seconds >= 0"),
        (dict(times=[]), "at least one time"),
        (dict(draws=0), "draws must be"),
        (dict(compensation="sometimes"), "compensation must be"),
        (dict(compensation=1), "compensation must be"),
        (dict(biases="analog"), "biases must be"),
        (dict(device="memristor"), "Unknown noise model"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            mat.deployment_sweep(model, x, y, verbose=0, **kwargs)


# -- noise fine-tuning ---------------------------------------------------------------------


def _noise_fine_tuning_run(seed, epochs=3, last=1, every=5):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")  # only the perturbations move the weights
    snapshots = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    tuning = mat.NoiseFineTuning(0.1, epochs=last, every=every, seed=seed)
    x = np.random.default_rng(0).normal(size=(640, 6)).astype("float32")
    initial = model.get_weights()
    model.fit(x, np.zeros((640, 3)), batch_size=32, epochs=epochs, shuffle=False,
              callbacks=[tuning, record], verbose=0)
    return initial, snapshots, tuning


def test_noise_fine_tuning_perturbs_the_weights_in_the_last_epochs():
    initial, snapshots, tuning = _noise_fine_tuning_run(seed=3)
    for before in snapshots[:2]:  # epochs 0 and 1: untouched
        for a, b in zip(before, initial):
            np.testing.assert_array_equal(a, b)
    assert tuning.perturbations == 4  # 20 batches, every 5th
    kernel_delta = snapshots[2][0] - initial[0]
    assert np.abs(kernel_delta).min() > 0
    # Four independent draws of sd 0.1 * 2 * max|w| (the max changes little): sd about twice that.
    expected = 0.1 * 2 * np.abs(initial[0]).max() * 2
    assert 0.6 * expected < kernel_delta.std() < 1.6 * expected
    _, again, _ = _noise_fine_tuning_run(seed=3)
    np.testing.assert_array_equal(again[2][0], snapshots[2][0])
    _, other, _ = _noise_fine_tuning_run(seed=4)
    assert not np.array_equal(other[2][0], snapshots[2][0])


def test_noise_fine_tuning_counts_steps_across_epochs_shorter_than_every():
    # 20 steps an epoch, every 30th step over the last 3 epochs: after steps 30 and 60.
    initial, snapshots, tuning = _noise_fine_tuning_run(seed=3, epochs=3, last=3, every=30)
    assert tuning.perturbations == 2
    for a, b in zip(snapshots[0], initial):  # epoch 0 ends at step 20
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(snapshots[1][0], initial[0])


def test_noise_fine_tuning_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="every"):
        mat.NoiseFineTuning(0.1, every=0)
    with pytest.raises(InvalidArgumentError, match="epochs"):
        mat.NoiseFineTuning(0.1, epochs=-1)
    with pytest.raises(InvalidArgumentError, match="sd must be"):
        mat.NoiseFineTuning(-0.1)


# -- command line -------------------------------------------------------------------------------


def test_evaluate_cli_with_a_device(tmp_path, capsys):
    from mat_keras import cli, zoo

    keras.utils.set_random_seed(0)
    model = zoo.mnist_mlp()
    model.save(tmp_path / "m.keras")
    status = cli.main([
        "evaluate", str(tmp_path / "m.keras"), "--task", "mnist-5k", "--device", "pcm",
        "--times", "1s,1d,1y", "--draws", "2", "--out-dir", str(tmp_path / "out"),
    ])
    out = capsys.readouterr().out
    assert status == 0
    assert "m, uncompensated (n=2)" in out and "m, compensated (n=2)" in out and "1 year" in out
    for name in ("deployment.json", "deployment.csv", "deployment.png"):
        assert (tmp_path / "out" / name).exists()
    status = cli.main([
        "evaluate", str(tmp_path / "m.keras"), "--task", "mnist-5k", "--device",
        '{"programming": 0.02, "read": 0.01}', "--times", "0,60", "--draws", "1", "--no-compensation",
        "--out-dir", str(tmp_path / "out2"),
    ])
    out = capsys.readouterr().out
    assert status == 0 and "compensated" not in out and "1 min" in out


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--device", "pcm", "--times", "1s,-1h"], "seconds >= 0"),
        (["--device", "{oops"], "not valid JSON"),
        (["--device", "memristor"], "Unknown noise model"),
        (["--times", "1h"], "--times needs --device"),
    ],
)
def test_evaluate_cli_bad_device_arguments(tmp_path, capsys, extra, message):
    from mat_keras import cli, zoo

    zoo.mnist_mlp().save(tmp_path / "m.keras")
    status = cli.main(["evaluate", str(tmp_path / "m.keras"), "--task", "mnist-5k", *extra])
    assert status == 2
    assert message in capsys.readouterr().err


# -- the mnist-5k claims (slow: they train) --------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    from mat_keras import zoo

    return zoo.load_dataset("mnist-5k", seed=0)


def _compile(model):
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _fit(model, data, epochs):
    model.fit(data.train_dataset(32, seed=0), epochs=epochs, callbacks=[mat.WeightClip(2.5)], verbose=0)
    return model


def _fine_tune(model, data, noise=None, epochs=2):
    """Continues training a copy of `model`: clean, or against `noise` (MAT, QAT)."""
    keras.utils.set_random_seed(0)
    if noise is None:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    else:
        copy = mat.wrap(model, noise=noise, seed=0)
    return _fit(_compile(copy), data, epochs)


@pytest.fixture(scope="module")
def clean_8(mnist):
    from mat_keras import zoo

    keras.utils.set_random_seed(0)
    return _fit(_compile(zoo.mnist_mlp()), mnist, 8)


#: PCM with a programming error of 25 % of g_max: noisy enough to hurt the MLP (README).
NOISY_PCM = mat.noise.PCM(programming=0.25)


@pytest.mark.slow
def test_mat_keeps_more_accuracy_after_a_year_on_a_noisy_device(mnist, clean_8):
    robust = _fine_tune(clean_8, mnist, noise=NOISY_PCM)  # 8 clean + 2 MAT epochs
    control = _fine_tune(clean_8, mnist)  # 10 clean epochs
    year = dict(device=NOISY_PCM, times=[units.YEAR], draws=5, seed=0, compensation=True, verbose=0)
    (clean_year,) = mat.deployment_sweep(control, mnist.x_test, mnist.y_test, **year)
    (robust_year,) = mat.deployment_sweep(robust, mnist.x_test, mnist.y_test, **year)
    assert robust_year.mean()[0] > clean_year.mean()[0] + 0.02


@pytest.mark.slow
def test_the_pcm_preset_costs_the_clean_mlp_little_over_a_year(mnist, clean_8):
    # The README's finding: published PCM statistics barely hurt this network, so
    # PCM-aware training has little to recover on it.
    first, year = mat.deployment_sweep(clean_8, mnist.x_test, mnist.y_test, device="pcm",
                                       times=[1.0, units.YEAR], draws=5, seed=0, compensation=True,
                                       verbose=0)[0].mean()
    assert year > first - 0.02


@pytest.mark.slow
def test_qat_accuracy_rises_with_the_number_of_levels(mnist, clean_8):
    # A fast version of benchmarks/experiments/qat_levels.py (README): one QAT epoch from a
    # clean start for each number of levels, evaluated with quantised weights. The
    # steps are a fraction of a point after one epoch, below the resolution of
    # 1,000 test digits, so the accuracy is taken over all 5,000 mnist-5k digits.
    x = np.concatenate([mnist.x_train, mnist.x_test])
    y = np.concatenate([mnist.y_train, mnist.y_test])
    accuracy = []
    for levels in (2, 4, 8, 16, 32):
        qat = mat.noise.Quantized(levels)
        model = _fine_tune(clean_8, mnist, noise=qat, epochs=1)
        (result,) = mat.deployment_sweep(model, x, y, device=qat, times=[0.0], draws=1, compensation=False,
                                         verbose=0)
        accuracy.append(result.mean()[0])
    slope = np.polyfit(np.log2([2, 4, 8, 16, 32]), accuracy, 1)[0]
    assert slope > 0.001, accuracy  # accuracy per doubling of the levels
    assert accuracy[-1] > accuracy[0] + 0.005, accuracy
    assert np.mean(accuracy[2:]) > np.mean(accuracy[:2]) + 0.003, accuracy


def test_a_piped_deployment_sweep_prints_one_line_per_draw(homogeneous, capsys):
    model, x, y = homogeneous
    capsys.readouterr()
    mat.deployment_sweep(model, x, y, device="pcm", times=[1.0, 60.0], draws=3, verbose=1)
    out = capsys.readouterr().out  # not a terminal: lines, not a redrawn bar
    assert "\r" not in out and "\b" not in out
    lines = out.splitlines()
    assert [line.split("(")[-1] for line in lines] == [f"{n}/12 evaluations)" for n in (4, 8, 12)], out
    assert all(line.startswith("time ") and " - accuracy " in line for line in lines), out
