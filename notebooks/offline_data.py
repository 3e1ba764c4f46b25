"""Offline stand-ins for the notebooks' data: their fast mode runs on these.

The notebooks load their data with `mat_keras.zoo.load_dataset`, the real
loaders. In fast mode (and in the tests, which have no network) they feed
those loaders with data made here, so that every line of the pipeline still
runs:

- `mock_cifar(...)`: a context manager. Inside it, tensorflow-datasets is
  mocked (`tfds.testing.mock_data`) and `load_dataset("cifar10")` /
  `load_dataset("cifar100")` read synthetic images that a network can learn:
  each class is a fixed, left-right symmetric colour pattern plus noise.
- `write_mitbih_records(folder, ...)`: writes synthetic two-lead ECG records
  with `wfdb` (`.dat`, `.hea`, `.atr`), which
  `load_dataset("mitbih", data_dir=folder)` reads like PhysioNet's files:
  mostly narrow normal beats ('N') and some wider ventricular ones ('V').

Neither is the real data: figures made from them show that the code runs and
how MAT behaves on an easy task, not the reference implementation's numbers.
"""

import contextlib

import numpy as np

from mat_keras.zoo.datasets.synthetic import FS, write_wfdb_record


def _prototypes(num_classes, seed):
    """One 32x32x3 float pattern per class, symmetric under a horizontal flip.

    Each pattern is an 8x8 grid of random colours whose right half mirrors
    its left half, upsampled to 32x32 (blocks of 4x4 pixels): the training
    pipeline's random flips keep the class, its small rotations most of it.
    """
    rng = np.random.default_rng(seed)
    half = rng.uniform(0, 255, size=(num_classes, 8, 4, 3))
    grid = np.concatenate([half, half[:, :, ::-1]], axis=2)  # (classes, 8, 8, 3)
    return np.repeat(np.repeat(grid, 4, axis=1), 4, axis=2)


def synthetic_images(num_examples, num_classes, seed, prototype_seed=0, noise=30.0):
    """Returns `(images, labels)`: uint8 `(n, 32, 32, 3)` and int64 `(n,)`.

    Labels cycle through the classes (balanced) in a seeded random order; an
    image is its class pattern at a random contrast (0.6-1.0) plus Gaussian
    pixel noise of sd `noise` (in 0-255 units).
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_examples) % num_classes).astype(np.int64)
    patterns = _prototypes(num_classes, prototype_seed)[labels]
    contrast = rng.uniform(0.6, 1.0, size=(num_examples, 1, 1, 1))
    images = 127.5 + contrast * (patterns - 127.5) + noise * rng.standard_normal(patterns.shape)
    return np.clip(np.round(images), 0, 255).astype(np.uint8), labels


@contextlib.contextmanager
def mock_cifar(train_examples=512, test_examples=256, classes=None, seed=0, noise=30.0):
    """Mocks tensorflow-datasets so that CIFAR loads offline, as synthetic images.

    Inside the `with` block (tensorflow-datasets is patched only there),
    `zoo.load_dataset("cifar10")` and `zoo.load_dataset("cifar100")` (any
    `data_dir`) read `train_examples` training and `test_examples` test
    images from `synthetic_images`. The dataset keeps its real class count
    (10 or 100 outputs); `classes` limits the labels that occur to the first
    `classes` of them (a few hundred images cannot teach 100 classes in a
    minute), None uses all. Train and test draw different images of the
    same class patterns.

    Example:

    >>> with mock_cifar(512, 256):
    ...     data = zoo.load_dataset("cifar10")
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    def as_dataset(builder, split, decoders=None, read_config=None, **kwargs):
        name = str(split)
        count = train_examples if name.startswith("train") else test_examples
        num_classes = builder.info.features["label"].num_classes
        if classes is not None:
            num_classes = min(classes, num_classes)
        split_seed = seed * 1000 + (1 if name.startswith("train") else 2)
        images, labels = synthetic_images(count, num_classes, split_seed, seed, noise)
        return tf.data.Dataset.from_tensor_slices(
            {
                "id": np.array([f"{name}_{i:05d}" for i in range(count)]),
                "image": images,
                "label": labels,
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        yield


def _beat_shape(t, centre, width, height):
    return height * np.exp(-0.5 * ((t - centre) / width) ** 2)


def write_record(folder, name, seconds=120.0, abnormal=0.25, seed=0):
    """Writes one synthetic two-lead ECG record (360 Hz) and its 'atr' beats.

    Beats come every 0.7-1.0 s (jittered; longer after a ventricular beat).
    A normal beat 'N' is a narrow QRS bump, upright on the first lead and
    inverted on the second, with a small T wave; an abnormal (ventricular)
    beat 'V', a share `abnormal` of them, is wider, inverted on the first lead
    in half the cases, and upright on the second. Amplitudes and widths vary
    from beat to beat; baseline wander and noise are added. A few non-beat
    annotations ('+', '~') are written too, which the loader must skip.

    Returns:
        `(beat_samples, beat_symbols)` as written.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n, dtype=np.float64)
    lead0 = 0.15 * np.sin(2 * np.pi * 0.25 * t / FS + rng.uniform(0, 6))
    lead1 = 0.1 * np.cos(2 * np.pi * 0.18 * t / FS + rng.uniform(0, 6))
    lead0 += 0.01 * rng.standard_normal(n)
    lead1 += 0.01 * rng.standard_normal(n)
    beats, symbols = [], []
    position = int(0.6 * FS)
    while position < n - int(0.6 * FS):
        is_v = rng.random() < abnormal
        symbol = "V" if is_v else "N"
        if is_v:
            # Wide; inverted in half of them, upright in the others.
            sign = -1.0 if rng.random() < 0.5 else 1.0
            width, height, t_height = rng.uniform(7, 12), sign * rng.uniform(0.8, 1.4), 0.3
        else:
            width, height, t_height = rng.uniform(3, 6), rng.uniform(0.8, 1.4), 0.2
        window = slice(max(0, position - 200), min(n, position + 300))
        tw = t[window]
        lead0[window] += _beat_shape(tw, position, width, height)
        lead0[window] += _beat_shape(tw, position + 0.25 * FS, 18, t_height)
        # On the second lead, normal beats point down and ventricular ones up.
        lead1[window] += _beat_shape(tw, position, width * 1.3, 0.5 * abs(height) * (1 if is_v else -1))
        beats.append(position)
        symbols.append(symbol)
        # A ventricular beat is followed by a pause.
        gap = rng.uniform(0.7, 1.0) * FS * (1.3 if is_v else 1.0)
        position += int(gap)
    beats = np.asarray(beats)
    write_wfdb_record(folder, name, lead0, lead1, beats, symbols, [1, n // 3, 2 * n // 3], ["+", "~", "+"])
    return beats, np.asarray(symbols)


def write_mitbih_records(folder, records=(208,), seconds=120.0, abnormal=0.25, seed=0):
    """Writes synthetic records named like MIT-BIH's into `folder`.

    Args:
        folder: an existing folder.
        records: record names (e.g. `(208,)`), one synthetic record each.
        seconds: length of each record (about 80 beats a minute).
        abnormal: share of ventricular beats.
        seed: seed of the first record (the next ones get `seed + 1`, ...).

    Returns:
        The folder, for `zoo.load_dataset("mitbih", data_dir=folder)`.
    """
    for i, record in enumerate(records):
        write_record(folder, record, seconds=seconds, abnormal=abnormal, seed=seed + i)
    return folder
