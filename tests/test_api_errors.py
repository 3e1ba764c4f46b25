"""Bad API calls raise the project's exception with one sentence, before any work is done.

Tables of calls: the sweeps' seeds, data and crossbars (the checks the CLI
makes on its options, so both accept the same values), wrapping a layer
without weights, with a bad seed or with a crossbar that cannot compute it,
the crossbar's settings, and simulating exported tables on other tiles. Each
row names the error's class and a phrase of its message.
"""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_keras import crossbar as crossbar_lib
from mat_keras.errors import InvalidArgumentError, MatKerasError, UnsupportedLayerError, WrapError


def _classifier():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)], name="clf")
    x = np.random.default_rng(0).normal(size=(20, 6)).astype("float32")
    return model, x, np.arange(20) % 3


SWEEPS = {
    "robustness_sweep": lambda model, x, y, **kwargs: mat.robustness_sweep(
        model, x, y, sds=[0.0], draws=1, verbose=0, **kwargs
    ),
    "deployment_sweep": lambda model, x, y, **kwargs: mat.deployment_sweep(
        model, x, y, times=[1.0], draws=1, verbose=0, **kwargs
    ),
}

# (what is wrong, how the sweep's arguments change, error class, phrase of the message)
BAD_SWEEP_CALLS = [
    ("negative seed", lambda x, y: (x, y, {"seed": -1}), InvalidArgumentError, "seed must be an integer"),
    ("float seed", lambda x, y: (x, y, {"seed": 1.5}), InvalidArgumentError, "seed must be an integer"),
    ("string seed", lambda x, y: (x, y, {"seed": "0"}), InvalidArgumentError, "seed must be an integer"),
    ("lengths differ", lambda x, y: (x, y[:-1], {}), InvalidArgumentError, "20 examples but the labels 19"),
    ("labels out of range", lambda x, y: (x, y + 1, {}), InvalidArgumentError, "outside the 3 classes"),
    ("negative labels", lambda x, y: (x, y - 1, {}), InvalidArgumentError, "outside the 3 classes"),
    ("float labels", lambda x, y: (x, y.astype("float32"), {}), InvalidArgumentError, "integer class indices"),
    ("unknown crossbar", lambda x, y: (x, y, {"crossbar": "fancy"}), InvalidArgumentError,
     "Unknown crossbar 'fancy'; known: ideal, standard."),
    ("bad crossbar settings", lambda x, y: (x, y, {"crossbar": {"tile_rows": 0}}), InvalidArgumentError,
     "tile_rows must be >= 1, got 0."),
    ("calibration data without a crossbar", lambda x, y: (x, y, {"calibration_data": x}), InvalidArgumentError,
     "calibration_data sets a crossbar's input ranges"),
    ("empty calibration data", lambda x, y: (x, y, {"crossbar": "standard", "calibration_data": x[:0]}),
     InvalidArgumentError, "calibration_data must be an array of at least one input."),
    ("calibration data not an array", lambda x, y: (x, y, {"crossbar": "standard", "calibration_data": [1.0]}),
     InvalidArgumentError, "calibration_data must be an array of at least one input."),
]


@pytest.mark.parametrize("sweep", sorted(SWEEPS))
@pytest.mark.parametrize("case", BAD_SWEEP_CALLS, ids=[case[0] for case in BAD_SWEEP_CALLS])
def test_bad_sweep_calls_raise_one_sentence(sweep, case):
    _, change, error, phrase = case
    model, x, y = _classifier()
    clean = model.get_weights()
    x, y, kwargs = change(x, y)
    with pytest.raises(error, match=phrase) as raised:
        SWEEPS[sweep](model, x, y, **kwargs)
    assert "\n" not in str(raised.value)
    assert not model.compiled, "the sweep compiled the model before checking its arguments"
    for got, want in zip(model.get_weights(), clean):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("sweep", sorted(SWEEPS))
def test_one_hot_labels_are_not_taken_for_class_indices(sweep):
    model, x, y = _classifier()
    model.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    SWEEPS[sweep](model, x, np.eye(3, dtype="float32")[y])


BAD_WRAPS = [
    ("layer without weights", lambda: mat.NoisyWeights(keras.layers.Flatten())(np.ones((2, 3, 2))),
     WrapError, "Flatten"),
    ("built layer without weights", lambda: mat.NoisyWeights(_built(keras.layers.Dropout(0.5))),
     WrapError, "no weights"),
    ("float seed", lambda: mat.wrap(_classifier()[0], seed=0.5), InvalidArgumentError, "seed must be an integer"),
    ("string seed", lambda: mat.wrap(_classifier()[0], seed="1"), InvalidArgumentError, "seed must be an integer"),
    ("negative seed", lambda: mat.wrap(_classifier()[0], seed=-3), InvalidArgumentError, "seed must be an integer"),
    ("layer seed", lambda: mat.NoisyWeights(keras.layers.Dense(2), seed=2.0), InvalidArgumentError, "seed must be"),
    ("no room for the layer seeds", lambda: mat.wrap(_two_layers(), seed=mat.validation.MAX_SEED),
     InvalidArgumentError, "seed must be at most 4294967294 for 2 wrapped layers"),
    ("neither noise nor crossbar", lambda: mat.wrap(_two_layers(), noise=None), InvalidArgumentError,
     "needs a noise model or a crossbar, got neither"),
    ("an RNN the crossbar cannot compute",
     lambda: mat.wrap(_rnn(keras.layers.SimpleRNNCell(3)), noise=None, crossbar="standard", layers=["cell_rnn"]),
     UnsupportedLayerError, r"Layer 'cell_rnn' \(RNN\) has no chip forward"),
    ("an RNN of a custom cell",
     lambda: mat.wrap(_rnn(_CustomCell(3)), noise=0.1, crossbar="ideal", layers=["cell_rnn"]),
     UnsupportedLayerError, r"Layer 'cell_rnn' \(RNN\) has no chip forward"),
    ("a crossbar for a layer built later",
     lambda: mat.NoisyWeights(keras.layers.RNN(_CustomCell(2), name="late"), crossbar="ideal")(np.ones((2, 3, 4))),
     UnsupportedLayerError, r"Layer 'late' \(RNN\) has no chip forward"),
]


@keras.saving.register_keras_serializable(package="mat_keras_tests")
class _CustomCell(keras.layers.Layer):
    """A minimal recurrent cell of one's own: `h' = tanh(x K + h R)`."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent = self.add_weight(shape=(self.units, self.units), name="recurrent")

    def call(self, x, states):
        h = keras.ops.tanh(keras.ops.matmul(x, self.kernel) + keras.ops.matmul(states[0], self.recurrent))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _rnn(cell):
    return keras.Sequential(
        [keras.Input((5, 4)), keras.layers.RNN(cell, name="cell_rnn"), keras.layers.Dense(2, name="out")]
    )


def _two_layers():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.Dense(3)])


def _built(layer):
    layer.build((None, 4))
    return layer


@pytest.mark.parametrize("case", BAD_WRAPS, ids=[case[0] for case in BAD_WRAPS])
def test_bad_wraps_raise_one_sentence(case):
    _, call, error, phrase = case
    with pytest.raises(error, match=phrase) as raised:
        call()
    assert isinstance(raised.value, MatKerasError) and "\n" not in str(raised.value)


def test_a_layer_built_at_its_first_call_with_weights_is_accepted():
    layer = mat.NoisyWeights(keras.layers.MultiHeadAttention(2, 4), seed=0)
    x = np.ones((2, 3, 4), "float32")
    assert layer(x, x, training=True).shape == (2, 3, 4)


# -- the crossbar's settings ------------------------------------------------------------------

# (what is wrong, the settings given to mat_keras.crossbar.get, phrase of the message)
BAD_CROSSBARS = [
    ("fractional input bits", {"input_bits": 2.5}, "input_bits must be an integer"),
    ("zero input bits", {"input_bits": 0}, "input_bits must be >= 2, got 0."),
    ("one input bit", {"input_bits": 1}, "input_bits must be >= 2, got 1."),
    ("zero input steps", {"input_steps": 0}, "input_steps must be >= 1, got 0."),
    ("fractional output steps", {"output_steps": 25.5, "output_bound": 1.0}, "output_steps must be an integer"),
    ("negative output steps", {"output_steps": -3, "output_bound": 1.0}, "output_steps must be >= 1, got -3."),
    ("negative output bits", {"output_bits": -8, "output_bound": 1.0}, "output_bits must be >= 2, got -8."),
    ("bits and steps", {"input_bits": 8, "input_steps": 254}, "Give input_bits or input_steps, not both"),
    ("ADC without a bound", {"output_steps": 254}, "An ADC resolution needs an output_bound"),
    ("zero tile rows", {"tile_rows": 0}, "tile_rows must be >= 1, got 0."),
    ("negative tile columns", {"tile_cols": -4}, "tile_cols must be >= 1, got -4."),
    ("fractional tile columns", {"tile_cols": 1.5}, "tile_cols must be an integer"),
    ("zero output bound", {"output_bound": 0.0}, "output_bound must be a finite number > 0, got 0.0."),
    ("negative output bound", {"output_bound": -1.0}, "output_bound must be a finite number > 0, got -1.0."),
    ("zero input range", {"input_range": 0.0}, "input_range must be a finite number > 0, got 0.0."),
    ("negative input range", {"input_range": -3.0}, "input_range must be a finite number > 0, got -3.0."),
    ("unknown input range mode", {"input_range": "guessed"}, "input_range must be a number > 0 or one of"),
    ("zero initial range", {"input_range_init": 0}, "input_range_init must be a finite number > 0"),
    ("negative output noise", {"output_noise": -0.1}, "output_noise must be a finite number >= 0, got -0.1."),
    ("negative read noise", {"read_noise": -0.0175}, "read_noise must be a finite number >= 0, got -0.0175."),
    ("NaN read noise", {"read_noise": float("nan")}, "read_noise must be a finite number >= 0, got nan."),
    ("negative IR drop", {"ir_drop": -1.0}, "ir_drop must be a finite number >= 0, got -1.0."),
    ("zero wire ratio", {"ir_drop_g_ratio": 0}, "ir_drop_g_ratio must be a finite number > 0"),
    ("negative range decay", {"input_range_decay": -0.001}, "input_range_decay must be a finite number >= 0"),
    ("unknown weight scaling", {"weight_scaling": "row"}, "weight_scaling must be one of ['column', 'tensor']"),
    ("unknown setting", {"tile_size": 3}, "Bad crossbar settings {'tile_size': 3}: "),
    ("unknown alias", "fancy", "Unknown crossbar 'fancy'; known: ideal, standard."),
    ("not a crossbar", 3, "A crossbar is a Crossbar, an alias (ideal, standard) or a dict, got 3."),
]


@pytest.mark.backends
@pytest.mark.parametrize("case", BAD_CROSSBARS, ids=[case[0] for case in BAD_CROSSBARS])
def test_bad_crossbars_raise_one_sentence(case):
    _, settings, phrase = case
    with pytest.raises(InvalidArgumentError) as raised:
        crossbar_lib.get(settings)
    assert phrase in str(raised.value) and "\n" not in str(raised.value)


def test_simulating_tables_on_other_tiles_names_both_sizes(tmp_path):
    from mat_keras import export

    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(3)])
    export.conductance_tables(model, tmp_path / "chip", device=export.Device(1e-6, 40e-6, 16), tile=(8, 4))
    for crossbar, given in (("standard", "512xany"), ({"tile_rows": 8, "tile_cols": 2}, "8x2")):
        with pytest.raises(InvalidArgumentError) as raised:
            export.simulate(model, tmp_path / "chip", crossbar=crossbar)
        message = str(raised.value)
        assert f"The crossbar's tiles ({given}) are not the tables' tiles (8x4)" in message and "\n" not in message


# -- files: one sentence naming the file ------------------------------------------------------

def _write(path, content):
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return str(path)


BAD_DEVICE_FILES = [
    ("random bytes", "d.json", b"\x89\xff\x00 not text", mat.errors.InputFileError, "is not text"),
    ("empty", "d.json", b"", mat.errors.InputFileError, "is empty"),
    ("a list", "d.json", "[0.02, 0.01]", InvalidArgumentError, "holds an array; it must be a JSON object"),
    ("a string", "d.json", '"pcm"', InvalidArgumentError, "holds a single value"),
    ("broken JSON", "d.json", '{"programming": ', InvalidArgumentError, "is not valid JSON"),
    ("CSV of random bytes", "m.csv", b"\xff\xfe\x00level", mat.errors.InputFileError, "is not text"),
]


@pytest.mark.parametrize("case", BAD_DEVICE_FILES, ids=[case[0] for case in BAD_DEVICE_FILES])
def test_bad_device_files_raise_one_sentence_naming_the_file(case, tmp_path):
    _, name, content, error, phrase = case
    path = _write(tmp_path / name, content)
    with pytest.raises(error, match=phrase) as raised:
        mat.devices.resolve_device(path)
    assert path in str(raised.value) and "\n" not in str(raised.value)


def test_a_json_array_given_as_text_is_refused_as_json_not_as_an_alias():
    with pytest.raises(InvalidArgumentError, match="The device JSON holds an array"):
        mat.devices.resolve_device("[0.02, 0.01]")


def test_an_unfinished_exports_staging_folder_is_not_read_as_tables(tmp_path):
    from mat_keras import export
    from mat_keras.export import files
    from mat_keras.export.errors import TableIntegrityError

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    chip = tmp_path / "chip"
    export.conductance_tables(model, chip, device=export.Device(g_min=1e-6, g_max=40e-6, levels=16))
    # What a kill between writing the manifest and the rename leaves: a complete folder under a staging name.
    staging = tmp_path / ".chip.partial-123-0abc"
    chip.rename(staging)
    assert files.is_staging_folder(staging)
    with pytest.raises(TableIntegrityError, match="unfinished export's staging folder"):
        export.load_tables(staging)
