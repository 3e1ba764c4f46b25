"""A run resumed from a backup equals the uninterrupted run, noise included.

`NoisyWeights` saves the state of its noise stream with its weights, so
`keras.callbacks.BackupAndRestore` (which saves the model and its optimizer
with `model.save_weights` after every epoch) and a `.keras` file bring back
the position of the stream as well as the weights: the draws after a resume
are the draws the uninterrupted run made.
"""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import to_numpy

EPOCHS = 4
STOP_AFTER = 3  # epochs trained before the interruption; the 4th is in the MAT phase


class _Interrupted(Exception):
    pass


class _StopAfter(keras.callbacks.Callback):
    """Raises at the end of epoch `epochs` (counting from 1), as a killed run would stop."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise _Interrupted


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    return x, (x[:, :3].sum(axis=1) > 0).astype("int32") + (x[:, 3] > 0.5)


def _fresh_model(initial):
    """A new wrapped, compiled model object with the weights `initial`."""
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = keras.layers.Dense(3)(h)
    robust = mat.wrap(keras.Model(inputs, outputs), noise=mat.noise.Gaussian(0.2), seed=0)
    robust.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if initial is not None:
        robust.set_weights(initial)
    return robust


def _fit(model, callbacks):
    x, y = _data()
    # An array input with shuffle=False: the batches of an epoch do not depend on the epoch.
    model.fit(
        x, y, epochs=EPOCHS, batch_size=16, shuffle=False, verbose=0,
        callbacks=[*callbacks, mat.TwoPhaseSchedule(clean_epochs=1)],
    )
    return [to_numpy(v) for v in model.weights]


def test_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path):
    initial = _fresh_model(None).get_weights()
    uninterrupted = _fit(_fresh_model(initial), [])

    backup = str(tmp_path / "backup")
    with pytest.raises(_Interrupted):
        _fit(_fresh_model(initial), [keras.callbacks.BackupAndRestore(backup), _StopAfter(STOP_AFTER)])
    resumed = _fit(_fresh_model(initial), [keras.callbacks.BackupAndRestore(backup)])

    difference = max(float(np.abs(a - b).max()) for a, b in zip(resumed, uninterrupted))
    assert difference == 0.0, f"the resumed run differs by up to {difference}"
    # The comparison means something: noise trained the last epochs.
    clean = _fresh_model(initial)
    mat.set_noise_gate(clean, 0.0)
    x, y = _data()
    clean.fit(x, y, epochs=EPOCHS, batch_size=16, shuffle=False, verbose=0)
    assert not all(np.array_equal(a, to_numpy(b)) for a, b in zip(uninterrupted, clean.weights))


def test_keras_file_keeps_the_position_of_the_noise_stream(tmp_path):
    robust = _fresh_model(None)
    x, _ = _data()
    robust(x, training=True)  # moves the stream on from its seed
    path = tmp_path / "robust.keras"
    robust.save(path)
    loaded = keras.saving.load_model(path)
    for got, want in zip(mat.noisy_layers(loaded), mat.noisy_layers(robust)):
        np.testing.assert_array_equal(to_numpy(got.seed_generator.state), to_numpy(want.seed_generator.state))
    np.testing.assert_array_equal(to_numpy(loaded(x, training=True)), to_numpy(robust(x, training=True)))


def test_weights_saved_without_the_stream_state_still_load(tmp_path):
    robust = _fresh_model(None)
    robust(_data()[0], training=True)
    path = str(tmp_path / "old.weights.h5")
    # A file of an older mat-keras: the wrappers' own weights only.
    layer_type = type(mat.noisy_layers(robust)[0])
    own = layer_type.save_own_variables
    layer_type.save_own_variables = keras.layers.Layer.save_own_variables
    try:
        robust.save_weights(path)
    finally:
        layer_type.save_own_variables = own
    loaded = _fresh_model(None)
    loaded.load_weights(path)
    for got, want in zip(loaded.weights, robust.weights):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    # The stream starts from its seed, as it did before.
    for layer in mat.noisy_layers(loaded):
        fresh = keras.random.SeedGenerator(layer.seed)
        np.testing.assert_array_equal(to_numpy(layer.seed_generator.state), to_numpy(fresh.state))
