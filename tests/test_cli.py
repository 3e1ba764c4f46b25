"""The mat-keras command line, end to end on the offline mnist-5k data."""

import json

import pytest

from mat_keras import cli

QUICK = ["--epochs", "2", "--clean-epochs", "1", "--draws", "2", "--sds", "0,0.2"]


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", "--task", "mnist-5k", *QUICK, "--out-dir", str(out), "--save", str(out / "mat.keras")])
    assert status == 0
    printed = capsys.readouterr().out
    assert "vanilla (n=2)" in printed and "MAT (n=2)" in printed and "noise_sd: 0.2000" in printed
    results = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in results] == ["vanilla", "MAT"] and results[1]["sds"] == [0.0, 0.2]
    assert (out / "sweep.png").stat().st_size > 0 and (out / "sweep.csv").exists()
    assert cli.main(["evaluate", str(out / "mat.keras"), "--task", "mnist-5k", "--draws", "2",
                     "--sds", "0,0.1", "--out-dir", str(tmp_path / "eval")]) == 0
    assert "mat (n=2)" in capsys.readouterr().out


def test_seed_spellings_are_accepted(tmp_path, capsys):
    argv = ["-task", "mnist-5k", "-noise_sd", "0.1", "-epochs", "1", "-clip_w", "2.5", "-seed", "3",
            "-verbose", "--clean-epochs", "0", "--draws", "1", "--sds", "0", "--out-dir", str(tmp_path),
            "-file_save", str(tmp_path / "m.keras")]
    assert cli.main(argv) == 0
    assert (tmp_path / "m.keras").exists()


def test_train_against_a_device_model(tmp_path, capsys):
    import keras

    import mat_keras

    argv = ["train", "--task", "mnist-5k", "--noise", "pcm", "--epochs", "1", "--clean-epochs", "0", "--draws", "1",
            "--sds", "0,0.1", "--out-dir", str(tmp_path), "--save", str(tmp_path / "pcm.keras")]
    assert cli.main(argv) == 0
    noisy = [layer for layer in keras.saving.load_model(tmp_path / "pcm.keras").layers
             if isinstance(layer, mat_keras.NoisyWeights)]
    assert noisy and all(isinstance(layer.noise, mat_keras.noise.PCM) for layer in noisy)
    results = json.loads((tmp_path / "sweep.json").read_text())  # the sweep stays Gaussian
    assert [r["name"] for r in results] == ["vanilla", "MAT"] and results[1]["sds"] == [0.0, 0.1]


def test_train_through_a_crossbar_keeps_it_in_the_saved_model(tmp_path, capsys):
    import keras

    import mat_keras

    argv = ["train", "--task", "mnist-5k", "--epochs", "2", "--clean-epochs", "1", "--batch-size", "256",
            "--draws", "1", "--sds", "0,0.1", "--crossbar", "standard", "--out-dir", str(tmp_path),
            "--save", str(tmp_path / "chip.keras")]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "through the crossbar standard" in printed and "through the crossbar: standard" in printed
    noisy = mat_keras.noisy_layers(keras.saving.load_model(tmp_path / "chip.keras"))
    assert noisy and all(layer.crossbar == mat_keras.crossbar.standard() for layer in noisy)
    # Set from the training inputs at the switch, then learned: no longer the initial 3.
    assert all(float(layer.ranges_set) == 1 for layer in noisy)
    assert any((keras.ops.convert_to_numpy(v) != 3.0).any() for layer in noisy for v in layer.input_ranges.values())
    results = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["crossbar"] for r in results] == [mat_keras.crossbar.standard().get_config()] * 2


def test_evaluate_through_a_crossbar(tmp_path, capsys):
    from mat_keras import zoo

    path = tmp_path / "mlp.keras"
    zoo.mnist_mlp().save(path)
    chip = '{"tile_rows": 256, "input_bits": 8, "input_range": "calibrated", "output_noise": 0.04}'
    common = [str(path), "--task", "mnist-5k", "--draws", "1", "--crossbar", chip]
    assert cli.main(["evaluate", *common, "--sds", "0,0.1", "--out-dir", str(tmp_path / "sweep")]) == 0
    assert cli.main(["evaluate", *common, "--device", "pcm", "--times", "1s,1y", "--out-dir", str(tmp_path / "pcm")]) == 0
    printed = capsys.readouterr().out
    assert printed.count("through the crossbar Crossbar(tile_rows=256, input_steps=254, input_range='calibrated'") == 2
    (swept,) = [json.loads((tmp_path / "sweep" / "sweep.json").read_text())]
    deployed = json.loads((tmp_path / "pcm" / "deployment.json").read_text())
    assert swept["crossbar"]["tile_rows"] == 256 and swept["crossbar"]["input_range"] == "calibrated"
    assert [r["crossbar"] for r in deployed] == [swept["crossbar"]] * 2


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--task", "mnist-5k", "--noise-sd", "-0.2"], "--noise-sd must be a finite number >= 0"),
        (["train", "--task", "mnist-5k", "--noise-sd", "nan"], "--noise-sd must be a finite number >= 0"),
        (["train", "--task", "mnist-5k", "--clip-w", "-1"], "clip_w must be a finite number >= 0"),
        (["train", "--task", "mnist-5k", "--clip-w", "inf"], "clip_w must be a finite number >= 0"),
        (["train", "--task", "imagenet"], "Unknown task 'imagenet'; known tasks:"),
        (["train", "--task", "mnist-5k", "--epochs", "0"], "--epochs must be >= 1"),
        (["train", "--task", "mnist-5k", "--epochs", "2", "--clean-epochs", "3"], "cannot exceed epochs"),
        (["train", "--task", "mnist-5k", "--noise", "telegraph"], "Unknown noise model 'telegraph'; known aliases:"),
        (["train", "--task", "mnist-5k", "--noise", "pcm", "--noise-sd", "0.1"], "Give --noise or --noise-sd, not both."),
    ],
)
def test_bad_train_arguments(argv, message, capsys):
    assert cli.main(argv) == 2
    line = _error_line(capsys)
    assert line.startswith("mat-keras train: error: ") and message in line


def test_unreadable_model_files(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "missing.keras"), "--task", "mnist-5k"]) == 2
    assert "No model file at" in _error_line(capsys)
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip file")
    assert cli.main(["evaluate", str(garbage), "--task", "mnist-5k"]) == 2
    assert "Cannot read" in _error_line(capsys)


def test_dataset_unavailable_offline_names_mnist_5k(tmp_path, capsys, monkeypatch):
    import tensorflow_datasets as tfds

    def refuse(*args, **kwargs):
        raise ConnectionError("Network is unreachable")

    for method in ("download", "download_and_extract", "download_checksums"):
        monkeypatch.setattr(tfds.download.DownloadManager, method, refuse)
    assert cli.main(["train", "--task", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert "mnist-5k" in _error_line(capsys)


def test_no_subcommand_prints_help(capsys):
    assert cli.main([]) == 2
    assert "train" in capsys.readouterr().out


@pytest.mark.slow
def test_quickstart_defaults_meet_the_mat_claim(tmp_path, capsys):
    """The README's quickstart: MAT beats vanilla by >= 8 points at sd 0.2, loses <= 1.5 at sd 0."""
    assert cli.main(["train", "--task", "mnist-5k", "--out-dir", str(tmp_path)]) == 0
    vanilla, robust = json.loads((tmp_path / "sweep.json").read_text())
    assert vanilla["draws"] == robust["draws"] == 10
    mean = {r["name"]: {row["sd"]: row["mean"] for row in r["summary"]} for r in (vanilla, robust)}
    assert mean["MAT"][0.2] - mean["vanilla"][0.2] >= 0.08
    assert mean["vanilla"][0.0] - mean["MAT"][0.0] <= 0.015


TINY = ["--epochs", "2", "--clean-epochs", "1", "--draws", "1", "--sds", "0,0.1", "--batch-size", "16"]


@pytest.mark.parametrize("task", ["cifar10", "cifar100"])
def test_cifar_tasks_on_mock_data(task, tmp_path, capsys):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=32):
        status = cli.main(["train", "--task", task, "--model", "cnn", *TINY, "--data-dir", str(tmp_path),
                           "--out-dir", str(tmp_path / "run"), "--save", str(tmp_path / "clean.keras")])
    assert status == 0
    assert "MAT (n=1)" in capsys.readouterr().out
    # Fine-tune a saved model with noise, as from a clean pre-trained one.
    with tfds.testing.mock_data(num_examples=32):
        status = cli.main(["train", "--task", task, "--init", str(tmp_path / "clean.keras"), *TINY,
                           "--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "fine")])
    assert status == 0


@pytest.fixture(scope="module")
def ecg_records(tmp_path_factory):
    from mat_keras.zoo.datasets.synthetic import write_synthetic_record

    folder = tmp_path_factory.mktemp("mitdb")
    write_synthetic_record(folder, "208", seconds=30.0)
    return folder


@pytest.mark.parametrize("model", ["srnn", "rnn"])
def test_ecg_task_on_synthetic_records(model, ecg_records, tmp_path, capsys):
    status = cli.main(["train", "--task", "ecg", "--model", model, *TINY, "--data-dir", str(ecg_records),
                       "--out-dir", str(tmp_path)])
    assert status == 0
    results = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["name"] for r in results] == ["vanilla", "MAT"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--task", "ecg", "--model", "cnn"], "Task 'ecg' has no model 'cnn'; its models: rnn, srnn"),
        (["--task", "ecg", "--records", "207"], "MIT-BIH record 207 is not in"),
        (["--task", "ecg", "--records", "two"], "--records takes record numbers"),
        (["--task", "mnist-5k", "--encoding", "raw"], "apply to the ecg task only"),
    ],
)
def test_bad_zoo_task_arguments(argv, message, ecg_records, capsys):
    assert cli.main(["train", *argv, "--data-dir", str(ecg_records), *TINY]) == 2
    assert message in _error_line(capsys)


def test_a_model_for_other_data_is_a_clear_error(tmp_path, capsys):
    import keras

    from mat_keras import zoo

    zoo.mnist_mlp(num_classes=5).save(tmp_path / "five.keras")
    assert cli.main(["evaluate", str(tmp_path / "five.keras"), "--task", "mnist-5k"]) == 2
    assert "has 5 outputs, but mnist-5k has 10 classes" in _error_line(capsys)
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(tmp_path / "cifar.keras")
    assert cli.main(["train", "--task", "mnist-5k", "--init", str(tmp_path / "cifar.keras"), *TINY]) == 2
    assert "takes inputs of shape (32, 32, 3), but mnist-5k has (28, 28)" in _error_line(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--task", "mnist-5k", "--seed", "-1"],
        ["-task", "mnist-5k", "-seed", "4294967296"],
        ["evaluate", "missing.keras", "--task", "mnist-5k", "--seed", "-1"],
        ["evaluate", "missing.keras", "--task", "mnist-5k", "--device", "pcm", "--seed", "-1"],
        ["export", "missing.keras", "chip", "--seed", "-1"],
        ["zoo", "build", "mnist-5k", "--seed", "-1"],
    ],
)
def test_every_subcommand_takes_the_same_seeds(argv, capsys):
    # One seed check (0 to 2**32 - 1) for the API and every CLI, before anything loads.
    assert cli.main(argv) == 2
    line = _error_line(capsys)
    assert "--seed must be an integer from 0 to 4294967295, got" in line, line


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--task", "mnist-5k", "--draws", "0"],
        ["evaluate", "missing.keras", "--task", "mnist-5k", "--draws", "0"],
        ["zoo", "build", "mnist-5k", "--draws", "0"],
    ],
)
def test_draws_are_checked_before_anything_trains_or_loads(argv, capsys):
    assert cli.main(argv) == 2
    assert "--draws must be >= 1, got 0." in _error_line(capsys)


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    printed = capsys.readouterr().out
    assert all(name in printed for name in ("train", "evaluate", "export", "zoo"))
