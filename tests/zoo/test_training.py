"""zoo.training: the two-phase run of a task's recipe."""

import warnings

import numpy as np

from mat_keras.zoo.tasks import get_task
from mat_keras.zoo.datasets.base import Dataset
from mat_keras.zoo.training import train_two_phase


def test_a_tf_data_run_gets_no_shuffle_warning():
    rng = np.random.default_rng(0)
    data = Dataset(
        name="tiny", num_classes=10, input_shape=(28, 28), description="random digits",
        x_train=rng.integers(0, 255, (64, 28, 28)).astype("uint8"), y_train=np.arange(64) % 10,
        x_test=rng.integers(0, 255, (16, 28, 28)).astype("uint8"), y_test=np.arange(16) % 10,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_two_phase(get_task("mnist-5k"), data, epochs=2, clean_epochs=1, batch_size=32, verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]
