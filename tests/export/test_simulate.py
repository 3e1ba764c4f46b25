"""export.simulate: the tables' conductances computed through a crossbar, on the tables' tiles."""

import keras
import numpy as np
import pytest

import export_cases
import mat_keras as mat
from mat_keras import crossbar as crossbar_lib
from mat_keras import export
from mat_keras.errors import InvalidArgumentError
from mat_keras.sweep import seed_chip_noise

TILE = (8, 4)
# The standard chip on any tile size: the tables' size fills it in.
CHIP = dict(crossbar_lib.standard().get_config(), tile_rows=None)


def _exported(tmp_path, model=None, **options):
    model = model or export_cases.mlp()
    folder = tmp_path / "chip"
    export.conductance_tables(model, folder, device=export.Device(1e-6, 40e-6, 16), tile=TILE, formats="npz",
                              **options)
    return model, folder


def _inputs(count=64):
    return np.random.default_rng(1).normal(size=(count, 20)).astype("float32")


def _numpy(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), dtype=np.float64)


def _ranges(model):
    return [np.asarray(v) for layer in mat.noisy_layers(model) for v in layer.input_ranges.values()]


@pytest.mark.backends
def test_simulate_equals_the_in_memory_chip_forward_of_the_tables_weights(tmp_path):
    model, folder = _exported(tmp_path)
    x = _inputs()
    chip = export.simulate(model, folder, crossbar=CHIP, programming_noise=0.02, seed=3, calibration_data=x)
    # In memory: the model holding what apply_tables reads back, through the same crossbar and seeds.
    programmed = export.apply_tables(model, folder, programming_noise=0.02, seed=3)
    same = keras.models.clone_model(model)
    same.set_weights(programmed.get_weights())
    expected = mat.chip_model(same, dict(CHIP, tile_rows=TILE[0], tile_cols=TILE[1]))
    crossbar_lib.calibrate_input_ranges(expected, x)
    seed_chip_noise(expected, 3)
    np.testing.assert_allclose(_numpy(chip, x), _numpy(expected, x), rtol=1e-6, atol=1e-6)
    # Tile for tile: the 20 inputs of the hidden layer on three row tiles of 8, 8 and 4 rows.
    hidden = next(layer for layer in mat.noisy_layers(chip) if layer.layer.name == "hidden")
    assert hidden.crossbar.tile_rows == 8 and hidden.crossbar.tile_cols == 4
    assert [tuple(v.shape) for v in hidden.input_ranges.values()] == [(3,)]
    assert crossbar_lib.row_tiles((20, 16), hidden.crossbar) == [
        (t.row, t.row + t.rows) for t in export.load_tables(folder)["hidden"].matrices["kernel"].tiles if t.col == 0
    ]


@pytest.mark.backends
def test_the_ideal_chip_computes_the_re_imported_model(tmp_path):
    model, folder = _exported(tmp_path)
    x = _inputs()
    chip = export.simulate(model, folder, crossbar="ideal")
    np.testing.assert_allclose(_numpy(chip, x), _numpy(export.apply_tables(model, folder), x), rtol=1e-5, atol=1e-6)


def test_the_same_seed_gives_the_same_chip(tmp_path):
    model, folder = _exported(tmp_path)
    x = _inputs()

    def outputs(seed):
        return _numpy(export.simulate(model, folder, crossbar=CHIP, seed=seed, calibration_data=x), x)

    np.testing.assert_array_equal(outputs(0), outputs(0))
    assert not np.array_equal(outputs(0), outputs(1))


def test_a_chip_trained_model_keeps_its_learned_ranges(tmp_path):
    x = _inputs(128)
    y = (x[:, 0] > 0).astype("int64")
    robust = mat.wrap(export_cases.mlp(), noise=0.02, crossbar=dict(CHIP, tile_rows=TILE[0]), seed=0)
    robust.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    robust.fit(x, y, batch_size=32, epochs=1, verbose=0)
    learned = _ranges(robust)
    _, folder = _exported(tmp_path, robust)
    # Its own crossbar (tile_cols unset) on the tables' tiles: no calibration data needed.
    chip = export.simulate(robust, folder, crossbar=None)
    for got, want in zip(_ranges(chip), learned):
        np.testing.assert_array_equal(got, want)
    assert not crossbar_lib.needs_calibration(chip)


def test_the_crossbar_takes_the_tables_tile_size_and_refuses_another():
    assert export.crossbar_for_tiles("standard", (512, 256)).tile_cols == 256
    assert export.crossbar_for_tiles("ideal", "8x4").tile_rows == 8
    with pytest.raises(InvalidArgumentError, match=r"crossbar's tiles \(512xany\) are not the tables' tiles \(8x4\)"):
        export.crossbar_for_tiles("standard", TILE)
    with pytest.raises(InvalidArgumentError, match=r"\(anyx5\) are not the tables' tiles \(8x4\)"):
        export.crossbar_for_tiles({"tile_cols": 5}, TILE)


# (what is wrong, simulate's arguments, phrase of the message)
BAD_SIMULATIONS = [
    ("tile rows disagree", {"crossbar": "standard"}, r"crossbar's tiles \(512xany\) are not the tables' tiles"),
    ("tile columns disagree", {"crossbar": {"tile_rows": 8, "tile_cols": 16}}, r"\(8x16\) are not the tables'"),
    ("unknown crossbar", {"crossbar": "fancy"}, "Unknown crossbar 'fancy'"),
    ("no crossbar at all", {"crossbar": None}, "computes through no crossbar"),
    ("ranges to calibrate", {"crossbar": CHIP}, "give calibration_data"),
    ("empty calibration data", {"crossbar": CHIP, "calibration_data": np.zeros((0, 20))}, "at least one input"),
    ("bad seed", {"crossbar": CHIP, "seed": -1}, "seed must be an integer"),
]


@pytest.mark.parametrize("case", BAD_SIMULATIONS, ids=[case[0] for case in BAD_SIMULATIONS])
def test_bad_simulations_are_one_clear_error(case, tmp_path):
    _, kwargs, phrase = case
    model, folder = _exported(tmp_path)
    with pytest.raises(InvalidArgumentError, match=phrase) as raised:
        export.simulate(model, folder, **kwargs)
    assert "\n" not in str(raised.value)


def test_tables_with_a_bias_row_are_refused(tmp_path):
    model, folder = _exported(tmp_path, bias="row")
    with pytest.raises(InvalidArgumentError, match="bias='row'"):
        export.simulate(model, folder, crossbar="ideal")
