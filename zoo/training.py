"""Runs a task's recipe: clean phase, then the memristor-aware phase."""

import dataclasses
import sys

import keras

import mat_keras as mat
from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_labels as check_labels_of


@dataclasses.dataclass
class TwoPhaseRun:
    """The outcome of `train_two_phase`.

    Attributes:
        vanilla: plain copy of the model at the end of the clean phase.
        robust: the wrapped model at the end of the MAT phase.
        history: per-epoch logs of both phases, concatenated.
    """

    vanilla: keras.Model
    robust: keras.Model
    history: dict


def compile_classifier(model, optimizer):
    """Compiles `model` (logits out) with cross-entropy and accuracy."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def check_labels(data):
    """Raises a clear error when `data`'s arrays cannot train a classifier with a sparse loss.

    Raises:
        InvalidArgumentError: `x` and `y` of a split differ in length, or its
            labels are not integers in `[0, num_classes)`
            (`mat_keras.validation.check_labels`).
    """
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        check_labels_of(x, y, data.num_classes, f"{data.name}: y_{split}")


def check_model_fits(model, data):
    """Raises a clear error when `model` cannot take `data`'s inputs, classes or labels.

    Raises:
        InvalidArgumentError: the input shape or the number of outputs
            differ, or the labels are not valid (`check_labels`).
    """
    check_labels(data)
    expected = tuple(data.input_shape)
    got = tuple(model.input_shape[1:])
    if len(got) != len(expected) or any(g not in (None, e) for g, e in zip(got, expected)):
        raise InvalidArgumentError(
            f"Model '{model.name}' takes inputs of shape {got}, but {data.name} has {expected}."
        )
    outputs = model.output_shape[-1]
    if outputs != data.num_classes:
        raise InvalidArgumentError(
            f"Model '{model.name}' has {outputs} outputs, but {data.name} has "
            f"{data.num_classes} classes (num_classes={data.num_classes})."
        )


def train_two_phase(
    task,
    data,
    model_name=None,
    epochs=None,
    clean_epochs=None,
    noise_sd=None,
    noise=None,
    clip_w=None,
    batch_size=None,
    learning_rate=None,
    seed=0,
    init=None,
    verbose=2,
    callbacks=(),
    crossbar=None,
):
    """Trains the task's model clean, then with weight noise (MAT).

    The clean phase runs `clean_epochs` epochs with the noise gate closed; a
    plain copy of the model is taken ("vanilla"); the MAT phase continues the
    same run (same optimizer state) up to `epochs` with the noise on: the
    seed's Gaussian noise of `noise_sd`, or the noise or device model
    `noise`. Weights are clipped after every step when `clip_w` is set.
    With a `crossbar`, the MAT phase computes through it
    (`mat_keras.wrap(crossbar=...)`): its learned or calibrated input ranges
    are set from the first 1,024 training inputs at the switch
    (`TwoPhaseSchedule(calibration_data=...)`), and the robust model keeps
    the crossbar when saved.

    Args:
        task: a `zoo.tasks.Task`.
        data: the `zoo.datasets.Dataset` to train on.
        model_name: one of the task's models (`task.models`); None for its
            default.
        epochs, clean_epochs, noise_sd, clip_w, batch_size, learning_rate:
            overrides of the recipe (None keeps the task's value; `clip_w=0`
            disables clipping).
        noise: instead of `noise_sd`, the noise model of the MAT phase,
            anything `mat_keras.noise.get` resolves (`"pcm"`, `"rram"`, a
            `DeviceModel`, ...); None trains with `Gaussian(noise_sd)`.
        seed: seeds Keras, the data order and the noise streams.
        init: a pre-trained clean model (plain or wrapped): the clean phase
            is skipped and it is the vanilla model.
        verbose: Keras `fit` verbosity.
        callbacks: more Keras callbacks for both phases.
        crossbar: None, or the chip the MAT phase trains through
            (`mat_keras.crossbar.get`: a `Crossbar`, `"standard"`, a dict).

    Returns:
        A `TwoPhaseRun`.

    Raises:
        InvalidArgumentError: both `noise` and `noise_sd`, an unknown noise
            model or crossbar, or more clean epochs than epochs.

    Example:

    >>> data = zoo.load_dataset("mnist-5k")
    >>> run = train_two_phase(zoo.tasks.get_task("mnist-5k"), data, noise="pcm")
    >>> mat_keras.deployment_sweep(run.robust, data.test_dataset(256), device="pcm")
    """
    # The recipe of the model trained (tasks may keep one per model).
    task = task.for_model(model_name)
    epochs = task.epochs if epochs is None else epochs
    clean_epochs = task.clean_epochs if clean_epochs is None else clean_epochs
    if init is not None:
        clean_epochs = 0
    if clean_epochs > epochs:
        raise InvalidArgumentError(
            f"clean_epochs ({clean_epochs}) cannot exceed epochs ({epochs})."
        )
    if noise is not None and noise_sd is not None:
        raise InvalidArgumentError("Give noise or noise_sd, not both.")
    if noise is None:
        noise = mat.noise.Gaussian(task.noise_sd if noise_sd is None else noise_sd)
    crossbar = mat.crossbar.get(crossbar)
    clip_w = task.clip_w if clip_w is None else clip_w
    batch_size = batch_size or task.batch_size
    keras.utils.set_random_seed(seed)

    model = init if init is not None else task.build_model(
        model_name, num_classes=data.num_classes, input_shape=data.input_shape
    )
    check_model_fits(model, data)
    robust = mat.wrap(model, noise=noise, seed=seed, crossbar=crossbar)
    optimizer = task.make_optimizer(learning_rate)
    compile_classifier(robust, optimizer)
    # Ranges to set from data: the chip's inputs as the clean-trained network gives them.
    ranges = crossbar is not None and isinstance(crossbar.input_range, str)
    schedule = [mat.TwoPhaseSchedule(clean_epochs, calibration_data=data.x_train[:1024] if ranges else None)]
    if clip_w:
        schedule.append(mat.WeightClip(clip_w))
    if task.lr_milestones:
        initial = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        schedule.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch: task.learning_rate_at(epoch, epochs, initial)
            )
        )
    train = data.train_dataset(batch_size, seed=seed)
    history = {}

    def fit(initial_epoch, final_epoch):
        if final_epoch <= initial_epoch:
            return
        result = robust.fit(
            train,
            epochs=final_epoch,
            initial_epoch=initial_epoch,
            callbacks=[*schedule, *callbacks],
            verbose=verbose,
            # A tf.data pipeline shuffles itself; Keras would warn that `shuffle` is ignored.
            shuffle=not _is_tf_dataset(train),
        )
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)

    fit(0, clean_epochs)
    vanilla = mat.strip(robust) if init is None else mat.strip(model)
    fit(clean_epochs, epochs)
    return TwoPhaseRun(vanilla=vanilla, robust=robust, history=history)


def _is_tf_dataset(data):
    """Whether `data` is a `tf.data.Dataset` (without importing TensorFlow when nothing did)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)
