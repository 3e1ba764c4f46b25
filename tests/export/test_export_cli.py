"""`mat-keras export`: options, summary, plots, errors."""

import argparse
import json

import pytest

from mat_keras import zoo
from mat_keras.cli import main
from mat_keras.errors import InvalidArgumentError, ModelFileError
from mat_keras.export import OutputExistsError, cli, load_tables


def _parse(*argv):
    parser = argparse.ArgumentParser(prog="mat-keras export")
    cli.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


@pytest.fixture
def saved(tmp_path, mlp):
    path = tmp_path / "mlp.keras"
    mlp.save(path)
    return path


def test_cli_writes_tables_and_prints_the_summary(saved, tmp_path, capsys):
    out = tmp_path / "chip"
    args = _parse(saved, out, "--levels", "8", "--g-min", "2e-6", "--g-max", "30e-6", "--tile", "8x8",
                  "--format", "npz,csv", "--scheme", "offset", "--per", "column", "--bias", "row", "--plot")
    assert cli.run(args) == 0
    printed = capsys.readouterr().out
    assert "hidden/kernel" in printed and "21x16" in printed and "3x2" in printed  # bias row: 20 + 1 rows
    assert "8 levels, offset, g 2-30 uS" in printed
    tables = load_tables(out)  # plots are listed with checksums and verify
    assert tables.device.num_levels == 8 and tables.device.scheme == "offset"
    manifest = json.loads((out / "manifest.json").read_text())
    pngs = [name for name in manifest["files"] if name.endswith(".png")]
    assert "plots/000_hidden.kernel.map.png" in pngs and "plots/001_logits.kernel.levels.png" in pngs
    assert (out / "plots" / "000_hidden.kernel.map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert manifest["mapping"] == {
        "scale": "max", "per": "column", "bias": "row", "tile": [8, 8], "fold_batchnorm": True, "formats": ["npz", "csv"],
    }


def test_cli_measured_levels_and_percentile(saved, tmp_path, capsys):
    args = _parse(saved, tmp_path / "chip", "--levels", "1e-6,4e-6,12e-6,40e-6", "--scale", "percentile:99", "--format", "npz")
    assert cli.run(args) == 0
    tables = load_tables(tmp_path / "chip")
    assert tables.device.levels.values.tolist() == [1e-6, 4e-6, 12e-6, 40e-6]
    assert tables.manifest["mapping"]["scale"] == ["percentile", 99.0]


@pytest.mark.parametrize(
    "extra, error, message",
    [
        (["--levels", "1"], InvalidArgumentError, "levels must be at least 2"),
        (["--levels", "many"], InvalidArgumentError, "--levels must be a level count"),
        (["--g-min", "5e-5"], InvalidArgumentError, "g_min must be below g_max"),
        (["--tile", "0x256"], InvalidArgumentError, "at least 1 row"),
        (["--scheme", "single"], InvalidArgumentError, "scheme must be one of"),
        (["--format", "csv"], InvalidArgumentError, "must include 'npz'"),
        (["--programming-noise", "0.1"], InvalidArgumentError, "only applies with --task"),
        (["--time", "1y"], InvalidArgumentError, "--time only applies with --task"),
        (["--task", "mnist-5k", "--programming-noise", "0.1", "--time", "1y"], InvalidArgumentError,
         "need a device model such as 'pcm'"),
        (["--task", "mnist-5k", "--no-compensation"], InvalidArgumentError, "need a device model"),
        (["--task", "mnist-5k", "--programming-noise", "telegraph"], InvalidArgumentError, "Unknown noise model"),
        (["--task", "mnist-5k", "--programming-noise", "pcm", "--time", "soon"], InvalidArgumentError,
         "Cannot read 'soon' as a time"),
        (["--task", "mnist-5k", "--programming-noise", "pcm", "--time=-1d"], InvalidArgumentError,
         "must be a finite number of seconds >= 0"),
        (["--task", "mnist-5k", "--programming-noise", "measured"], InvalidArgumentError, "are not the tables'"),
    ],
)
def test_cli_bad_options(saved, tmp_path, extra, error, message):
    with pytest.raises(error, match=message):
        cli.run(_parse(saved, tmp_path / "chip", *extra))
    assert not (tmp_path / "chip").exists()


def test_cli_existing_folder_and_missing_model(saved, tmp_path):
    assert cli.run(_parse(saved, tmp_path / "chip", "--format", "npz")) == 0
    with pytest.raises(OutputExistsError):
        cli.run(_parse(saved, tmp_path / "chip"))
    assert cli.run(_parse(saved, tmp_path / "chip", "--overwrite")) == 0
    with pytest.raises(ModelFileError, match="No model file"):
        cli.run(_parse(tmp_path / "nope.keras", tmp_path / "other"))


def test_main_entry_point_turns_errors_into_exit_status_2(saved, tmp_path, capsys):
    assert main(["export", str(saved), str(tmp_path / "chip"), "--format", "npz"]) == 0
    assert main(["export", str(saved), str(tmp_path / "chip")]) == 2
    assert "exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, described",
    [
        (["--programming-noise", "0.02"], "programming noise sd 0.02)"),
        (["--programming-noise", "pcm", "--time", "1y"], "device pcm read 1 year after programming, with drift compensation)"),
        (["--programming-noise", "pcm", "--time", "2d", "--no-compensation"],
         "device pcm read 2 days after programming, without drift compensation)"),
    ],
)
def test_cli_reimport_on_a_device_model(tmp_path, capsys, extra, described):
    path = tmp_path / "mnist_mlp.keras"
    zoo.mnist_mlp().save(path)
    assert cli.run(_parse(path, tmp_path / "chip", "--format", "npz", "--task", "mnist-5k", *extra)) == 0
    printed = capsys.readouterr().out
    assert "re-imported from the tables" in printed and described in printed


def test_cli_simulates_the_chip_on_the_crossbars_tiles(tmp_path, capsys):
    path = tmp_path / "mnist_mlp.keras"
    zoo.mnist_mlp().save(path)
    argv = [path, tmp_path / "chip", "--format", "npz", "--task", "mnist-5k", "--simulate", "standard",
            "--programming-noise", "pcm", "--time", "1d"]
    assert cli.run(_parse(*argv)) == 0
    printed = capsys.readouterr().out
    assert "re-imported from the tables" in printed
    assert "Simulated chip through the crossbar standard on 512x256 tiles: " in printed
    assert "points against the original)" in printed
    # Without --tile, the tables take the crossbar's tile size (256 columns where it sets none).
    assert load_tables(tmp_path / "chip").manifest["mapping"]["tile"] == [512, 256]
    assert cli.run(_parse(path, tmp_path / "small", "--format", "npz", "--task", "mnist-5k", "--tile", "128x64",
                          "--simulate", '{"tile_rows": 128, "input_bits": 6}')) == 0
    assert "on 128x64 tiles" in capsys.readouterr().out
