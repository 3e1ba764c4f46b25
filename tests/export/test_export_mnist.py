"""The reference implementation's MNIST MLP keeps its accuracy through 16-level conductance tables."""

import argparse
import re

import keras
import pytest

from mat_keras.export import cli

zoo = pytest.importorskip("mat_keras.zoo")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = zoo.load_dataset("mnist-5k")
    keras.utils.set_random_seed(0)
    model = zoo.mnist_mlp()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(data.train_dataset(32, seed=0), epochs=3, shuffle=False, verbose=0)
    path = tmp_path_factory.mktemp("mnist") / "mnist_mlp.keras"
    model.save(path)
    return path, data


@pytest.mark.slow
def test_mnist_mlp_at_16_levels_keeps_its_accuracy_within_1_point(trained, tmp_path, capsys):
    path, data = trained
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args([str(path), str(tmp_path / "chip"), "--levels", "16", "--task", "mnist-5k", "--format", "npz"])
    assert cli.run(args) == 0
    printed = capsys.readouterr().out
    match = re.search(r"original (\d+\.\d+) %, re-imported from the tables (\d+\.\d+) %", printed)
    assert match, printed
    original, reimported = float(match[1]), float(match[2])
    assert original > 85.0  # it did learn
    assert abs(reimported - original) <= 1.0
    assert "hidden/kernel" in printed and "784x128" in printed and "4x1" in printed
    print(printed)  # the worked example of the README (pytest -s shows it)
