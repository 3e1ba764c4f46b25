"""Table folders: tiles, CSV against NPZ, checksums, schema, atomic writes, bad input."""

import csv
import json
import os

import keras
import numpy as np
import pytest

import export_cases
from mat_keras.errors import InvalidArgumentError, MatKerasError
from mat_keras.export import (
    Device,
    OutputExistsError,
    SchemaVersionError,
    TableIntegrityError,
    UnsupportedLayerError,
    apply_tables,
    conductance_tables,
    load_tables,
    tile_grid,
)
from mat_keras.export import mapping

L = keras.layers


@pytest.mark.parametrize("shape, tile", [((37, 11), (8, 5)), ((256, 256), (256, 256)), ((3, 700), (256, 256)), ((1, 1), (4, 4))])
def test_every_cell_is_in_exactly_one_tile(shape, tile):
    cover = np.zeros(shape, dtype=int)
    for t in tile_grid(shape, tile):
        assert 1 <= t.rows <= tile[0] and 1 <= t.cols <= tile[1]
        cover[t.slices] += 1
    assert np.all(cover == 1)


def _read_csv(path):
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    return rows[0], np.array(rows[1:], dtype=object)


@pytest.mark.parametrize("scheme", ["differential", "offset"])
def test_csv_and_npz_agree_and_tiles_cover_the_matrix(scheme, tmp_path):
    model, _ = export_cases.build_case("LSTM")  # kernel 3x16, recurrent 4x16
    device = Device(1e-6, 40e-6, [1e-6, 3.3e-6, 7.1e-6, 15e-6, 40e-6], scheme=scheme)
    conductance_tables(model, tmp_path / "t", device=device, tile=(2, 5), formats=("npz", "csv"))
    tables = load_tables(tmp_path / "t")
    for table in tables["layer"].matrices.values():
        seen = np.zeros(table.shape, dtype=int)
        for tile in table.tiles:
            record = next(
                t for m in tables.manifest["layers"][0]["matrices"] if m["name"] == table.name
                for t in m["tiles"] if t["index"] == list(tile.index)
            )
            header, rows = _read_csv(tmp_path / "t" / record["csv"])
            r = rows[:, 0].astype(int) + tile.row
            c = rows[:, 1].astype(int) + tile.col
            seen[r, c] += 1
            if scheme == "differential":
                assert header == ["row", "column", "level_plus", "level_minus", "g_plus_uS", "g_minus_uS"]
                np.testing.assert_array_equal(rows[:, 2].astype(int), table.arrays["level_plus"][r, c])
                np.testing.assert_array_equal(rows[:, 3].astype(int), table.arrays["level_minus"][r, c])
                np.testing.assert_array_equal(rows[:, 4].astype(np.float32), table.arrays["g_plus_uS"][r, c])
                np.testing.assert_array_equal(rows[:, 5].astype(np.float32), table.arrays["g_minus_uS"][r, c])
            else:
                assert header == ["row", "column", "level", "g_uS", "g_ref_uS"]
                np.testing.assert_array_equal(rows[:, 2].astype(int), table.arrays["level"][r, c])
                np.testing.assert_array_equal(rows[:, 3].astype(np.float32), table.arrays["g_uS"][r, c])
                np.testing.assert_allclose(rows[:, 4].astype(float), device.g_ref * 1e6, rtol=1e-6)
        assert np.all(seen == 1)
        # Conductances are the levels of the indices, in microsiemens.
        levels_uS = (device.levels.values * 1e6).astype(np.float32)
        np.testing.assert_array_equal(table.arrays["g_plus_uS" if scheme == "differential" else "g_uS"], levels_uS[table.level_plus])
        if scheme == "differential":
            assert np.all((table.level_plus == 0) | (table.level_minus == 0))  # unused side at g_min


def test_manifest_content(tmp_path, mlp):
    summary = conductance_tables(mlp, tmp_path / "t", tile=(8, 8))
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["model"] == "mlp"
    assert manifest["device"]["levels"] == 16 and manifest["device"]["scheme"] == "differential"
    hidden = manifest["layers"][0]
    assert hidden["path"] == ["hidden"] and hidden["file"] == "000_hidden.npz"
    kernel = hidden["matrices"][0]
    assert kernel["shape"] == [20, 16] and kernel["grid"] == [3, 2] and len(kernel["tiles"]) == 6
    assert kernel["tiles"][3] == {"index": [1, 1], "row": 8, "col": 8, "rows": 8, "cols": 8, "csv": "tiles/000_hidden.kernel.r1c1.csv"}
    assert set(manifest["files"]) == {"000_hidden.npz", "001_logits.npz"} | {
        t["csv"] for layer in manifest["layers"] for m in layer["matrices"] for t in m["tiles"]
    }
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert summary.files == len(manifest["files"]) + 1
    text = summary.table()
    assert "hidden/kernel" in text and "20x16" in text and "3x2" in text
    with np.load(tmp_path / "t" / "000_hidden.npz") as npz:
        assert npz["kernel.level_plus"].dtype == np.uint8
        assert npz["bias"].shape == (16,)


def test_exports_are_deterministic(tmp_path, mlp):
    conductance_tables(mlp, tmp_path / "a", tile=(8, 8))
    conductance_tables(mlp, tmp_path / "b", tile=(8, 8))
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())["files"]
    b = json.loads((tmp_path / "b" / "manifest.json").read_text())["files"]
    assert a == b


@pytest.mark.parametrize("victim", ["000_hidden.npz", "tiles/001_logits.kernel.r0c0.csv"])
def test_tampered_file_fails_with_its_name(tmp_path, mlp, victim):
    conductance_tables(mlp, tmp_path / "t", tile=(8, 8))
    path = tmp_path / "t" / victim
    data = bytearray(path.read_bytes())
    data[-10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(TableIntegrityError, match=victim.replace(".", r"\.")):
        load_tables(tmp_path / "t")


def test_missing_file_and_bad_manifest(tmp_path, mlp):
    conductance_tables(mlp, tmp_path / "t", formats="npz")
    os.remove(tmp_path / "t" / "001_logits.npz")
    with pytest.raises(TableIntegrityError, match="001_logits.npz.*missing"):
        load_tables(tmp_path / "t")
    (tmp_path / "t" / "manifest.json").write_text("{not json")
    with pytest.raises(TableIntegrityError, match="not valid JSON"):
        load_tables(tmp_path / "t")
    with pytest.raises(TableIntegrityError, match="no manifest.json"):
        load_tables(tmp_path)


def test_manifest_from_a_newer_schema_is_refused(tmp_path, mlp):
    conductance_tables(mlp, tmp_path / "t", formats="npz")
    path = tmp_path / "t" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["schema_version"] = 2
    path.write_text(json.dumps(manifest))
    with pytest.raises(SchemaVersionError, match="schema version 2, newer than the 1"):
        load_tables(tmp_path / "t")


def test_manifest_cannot_point_outside_its_folder(tmp_path, mlp):
    conductance_tables(mlp, tmp_path / "t", formats="npz")
    path = tmp_path / "t" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../secret"] = {"sha256": "0" * 64}
    path.write_text(json.dumps(manifest))
    with pytest.raises(TableIntegrityError, match="leaves the tables folder"):
        load_tables(tmp_path / "t")


def _unsupported_layer_model():
    inputs = keras.Input((4, 4, 2))
    x = L.PReLU(name="prelu")(inputs)  # weights (its slopes) the layer table cannot map
    return keras.Model(inputs, L.Dense(2)(L.Flatten()(x)))


BAD_INPUTS = {
    "g_min >= g_max": (lambda: dict(device=Device(40e-6, 1e-6, 16)), InvalidArgumentError, "g_min must be below g_max"),
    "levels < 2": (lambda: dict(device=Device(1e-6, 40e-6, 1)), InvalidArgumentError, "levels must be at least 2"),
    "tile of size 0": (lambda: dict(tile=(0, 256)), InvalidArgumentError, "at least 1 row and 1 column"),
    "tile string": (lambda: dict(tile="256by256"), InvalidArgumentError, "ROWSxCOLS"),
    "format": (lambda: dict(formats=("npz", "xlsx")), InvalidArgumentError, "Unknown table format 'xlsx'"),
    "csv only": (lambda: dict(formats=("csv",)), InvalidArgumentError, "must include 'npz'"),
    "scale": (lambda: dict(scale="mean"), InvalidArgumentError, "scale must be 'max'"),
    "percentile": (lambda: dict(scale=("percentile", 0)), InvalidArgumentError, r"in \(0, 100\]"),
    "per": (lambda: dict(per="row"), InvalidArgumentError, "per must be one of"),
    "bias": (lambda: dict(bias="analog"), InvalidArgumentError, "bias must be one of"),
    "unsupported layer": (
        lambda: dict(model=_unsupported_layer_model()), UnsupportedLayerError, "Layer 'prelu' .PReLU."
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_leaves_no_folder(case, tmp_path, mlp):
    make, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message):
        kwargs = make()  # a bad Device fails already here
        model = kwargs.pop("model", mlp)
        conductance_tables(model, tmp_path / "out", **kwargs)
    assert os.listdir(tmp_path) == []


def test_existing_folder_is_refused_unless_overwrite(tmp_path, mlp):
    conductance_tables(mlp, tmp_path / "t", formats="npz", tile=(8, 8))
    before = sorted(os.listdir(tmp_path / "t"))
    with pytest.raises(OutputExistsError, match="exists; pass overwrite=True"):
        conductance_tables(mlp, tmp_path / "t", formats=("npz", "csv"))
    assert sorted(os.listdir(tmp_path / "t")) == before and os.listdir(tmp_path) == ["t"]
    conductance_tables(mlp, tmp_path / "t", formats=("npz", "csv"), overwrite=True)
    assert "tiles" in os.listdir(tmp_path / "t") and os.listdir(tmp_path) == ["t"]
    load_tables(tmp_path / "t")


def test_overwrite_refuses_a_folder_without_tables(tmp_path, mlp):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="holds no manifest.json"):
        conductance_tables(mlp, tmp_path / "home", overwrite=True)
    assert (tmp_path / "home" / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="not a folder"):
        conductance_tables(mlp, tmp_path / "file", overwrite=True)


def test_failure_while_writing_leaves_no_partial_folder(tmp_path, mlp, monkeypatch):
    calls = []
    original = mapping.map_matrix

    def failing(matrix, scale, device):
        calls.append(1)
        if len(calls) == 2:  # after the first layer's files are written
            raise OSError("disk full")
        return original(matrix, scale, device)

    monkeypatch.setattr(mapping, "map_matrix", failing)
    with pytest.raises(OSError, match="disk full"):
        conductance_tables(mlp, tmp_path / "new" / "deeper" / "t")
    assert os.listdir(tmp_path) == []  # parent folders made for it are gone too


def test_nested_models_bidirectional_and_digital_layers(tmp_path):
    inner = keras.Sequential([keras.Input((6, 2)), L.Bidirectional(L.GRU(3, return_sequences=True), name="bi")], name="encoder")
    inputs = keras.Input((6, 2))
    x = inner(inputs)
    x = L.LayerNormalization(name="norm")(x)
    x = L.TimeDistributed(L.Dense(2), name="td")(x)
    model = keras.Model(inputs, x)
    summary = conductance_tables(model, tmp_path / "t", device=Device(1e-6, 40e-6, 256), formats="npz")
    layers = [layer.name for layer in load_tables(tmp_path / "t")]
    assert layers[0].startswith("encoder/bi/forward_") and layers[1].startswith("encoder/bi/backward_")
    assert layers[2].startswith("td/") and summary.digital == ["norm"]
    # Re-imported: the same structure with 256-level weights gives nearly the same outputs.
    x = np.random.default_rng(0).normal(size=(2, 6, 2)).astype("float32")
    chip = apply_tables(model, tmp_path / "t")
    expected = export_cases.to_numpy(model(x))
    assert np.max(np.abs(export_cases.to_numpy(chip(x)) - expected)) < 0.02 * np.max(np.abs(expected))


def test_model_without_exportable_weights(tmp_path):
    model = keras.Sequential([keras.Input((3,)), L.ReLU()])
    with pytest.raises(InvalidArgumentError, match="no Dense, Conv or RNN weights"):
        conductance_tables(model, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_errors_are_mat_keras_errors():
    for error in (UnsupportedLayerError, OutputExistsError, TableIntegrityError, SchemaVersionError):
        assert issubclass(error, MatKerasError)
