"""TwoPhaseSchedule and WeightClip inside model.fit."""

import keras
import numpy as np
import pytest

import mat_keras as mat
from mat_testing import read_variable, to_numpy

# The core subset: CI runs it on the JAX and PyTorch backends too (`pytest -m backends`).
pytestmark = pytest.mark.backends


def _probe(seed=0):
    """Dense(4->3) with fixed weights; with lr 0 only the noise moves the loss."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.layers[0].set_weights([np.ones((4, 3), "float32"), np.zeros(3, "float32")])
    robust = mat.wrap(model, noise=0.25, seed=seed)
    robust.compile(keras.optimizers.SGD(0.0), "mse")
    return robust


DATA = (np.ones((8, 4), "float32"), np.zeros((8, 3), "float32"))


def test_schedule_switches_phase_inside_fit():
    history = _probe().fit(*DATA, batch_size=8, epochs=5, verbose=0, callbacks=[mat.TwoPhaseSchedule(2)])
    loss = history.history["loss"]
    clean = 16 * 3 / 3  # mean of (4 * 1)^2 over outputs
    np.testing.assert_allclose(loss[:2], clean, rtol=1e-6)
    assert all(abs(value - clean) > 1e-3 for value in loss[2:])
    assert history.history["noise_gate"] == [0, 0, 1, 1, 1]
    np.testing.assert_allclose(history.history["noise_sd"], [0, 0, 0.25, 0.25, 0.25])


def test_ramp():
    schedule = mat.TwoPhaseSchedule(2, ramp_epochs=3)
    assert [schedule.gate_at(e) for e in range(7)] == [0, 0, 0.25, 0.5, 0.75, 1, 1]


class _StopAt(keras.callbacks.Callback):
    """Simulates a crash at the start of an epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes_in_the_right_phase(tmp_path):
    robust = _probe()
    callbacks = [mat.TwoPhaseSchedule(2), keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))]
    with pytest.raises(RuntimeError, match="interrupted"):
        robust.fit(*DATA, batch_size=8, epochs=5, verbose=0, callbacks=[*callbacks, _StopAt(3)])
    mat.set_noise_gate(robust, 0.0)  # what a fresh process would hold before the schedule
    history = robust.fit(*DATA, batch_size=8, epochs=5, verbose=0, callbacks=callbacks)
    assert history.history["noise_gate"] == [1, 1]  # epochs 3 and 4, both in the MAT phase


def test_schedule_on_a_model_without_noisy_layers():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("sgd", "mse")
    with pytest.raises(mat.errors.NoNoisyLayersError, match="no NoisyWeights layers"):
        model.fit(*DATA, epochs=1, verbose=0, callbacks=[mat.TwoPhaseSchedule(1)])


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_schedule_bad_epochs(bad):
    with pytest.raises(mat.errors.InvalidArgumentError, match="clean_epochs"):
        mat.TwoPhaseSchedule(bad)


def test_clip_by_std_constraint():
    w = np.random.default_rng(0).normal(0, 1, (300, 40)).astype("float32")
    clipped = to_numpy(mat.ClipByStd(1.5)(keras.ops.convert_to_tensor(w)))
    bound = 1.5 * w.std()
    np.testing.assert_allclose(clipped, np.clip(w, -bound, bound), rtol=1e-5, atol=1e-6)
    assert (np.abs(w) > bound).any()


def _regression(seed, learning_rate=0.5):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(16), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


def test_weight_clip_clips_after_every_step_inside_fit():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 10)).astype("float32"), rng.normal(size=(64, 1)).astype("float32") * 10
    clipped, free = _regression(1), _regression(1)
    free.fit(x, y, batch_size=64, epochs=1, verbose=0)  # already traced without constraints
    free.set_weights(_regression(1).get_weights())
    clipped.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[mat.WeightClip(1.0)])
    free.fit(x, y, batch_size=64, epochs=1, verbose=0)
    for got, unclipped in zip(clipped.get_weights(), free.get_weights()):
        if unclipped.ndim >= 2:
            bound = unclipped.std()
            assert (np.abs(unclipped) > bound).any()
            np.testing.assert_allclose(got, np.clip(unclipped, -bound, bound), rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_allclose(got, unclipped, rtol=1e-5, atol=1e-6)  # biases left alone
    assert all(v.constraint is None for v in clipped.trainable_variables)  # restored


def test_a_later_fit_without_weight_clip_trains_unclipped():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 10)).astype("float32"), rng.normal(size=(64, 1)).astype("float32") * 10
    model = _regression(1)

    def at_bound():
        kernel = np.abs(model.get_weights()[0])
        return int((kernel == kernel.max()).sum())

    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[mat.WeightClip(1.0)])
    assert at_bound() >= 10  # clipped: entries pile up at the bound
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # must not reuse the clipping step
    assert at_bound() <= 2


def test_weight_clip_is_applied_at_every_step():
    """After each step several kernel entries sit exactly at the bound ±max|w|."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(256, 10)).astype("float32"), rng.normal(size=(256, 1)).astype("float32")
    # A learning rate at which training converges: at 0.5 it diverged to NaN
    # from some backends' initial weights, and NaN weights sit at no bound.
    model = _regression(2, learning_rate=0.05)
    at_bound = []

    class Check(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            kernel = np.abs(read_variable(model, model.layers[0].kernel))
            at_bound.append(int((kernel == kernel.max()).sum()))

    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[mat.WeightClip(1.0), Check()])
    assert len(at_bound) == 16 and min(at_bound) >= 10, at_bound
    model = _regression(2, learning_rate=0.05)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Check()])
    assert np.isfinite(read_variable(model, model.layers[0].kernel)).all()
    assert max(at_bound[16:]) <= 2, at_bound  # without the callback: no pile-up at the bound


@pytest.mark.parametrize("bad", [0, -2.5, float("nan"), float("inf")])
def test_bad_clip_w(bad):
    with pytest.raises(mat.errors.InvalidArgumentError, match="clip_w"):
        mat.WeightClip(bad)
