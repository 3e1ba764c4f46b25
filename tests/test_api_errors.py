"""Bad API calls raise the project's exception with one sentence, before any work is done.

One table of calls: the sweeps' seeds and data (the checks the CLI makes on
its options, so both accept the same values), wrapping a layer without
weights and wrapping with a bad seed. Each row names the error's class and a
phrase of its message.
"""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_keras.errors import InvalidArgumentError, MatKerasError, WrapError


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
]


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
