"""MIT-BIH Arrhythmia beats (PhysioNet `mitdb`), read with wfdb.

The reference implementation's ECG task: one example per annotated heartbeat, a window of
+-350 ms around the beat's annotation, both leads, 250 time steps; label 0
for a normal beat ('N'), 1 for any other beat. Records come from `data_dir`,
or are downloaded once from PhysioNet into the Keras cache folder.

How a window is cut. The window of a beat annotated at sample `r` spans
`[r - h, r + h)` with `h = window_ms * fs / 1000` samples (126 at 360 Hz), and
is sampled at `steps` evenly spaced instants `r + h * (2k - steps) / steps`,
`k = 0 .. steps - 1`, by linear interpolation between the record's samples.
At the defaults that is 250 instants 2.8 ms apart (the record's own step is
2.78 ms) and index 125 lies exactly on the beat. Beats whose window would
need samples before the record's first or after its last are dropped.

Which annotations count as beats: PhysioNet's beat codes only, `BEAT_SYMBOLS`
below (N L R B A a J S V r F e j n E / f Q ?). Every other annotation marks
no beat and is skipped, among them rhythm changes '+', signal quality '~',
isolated QRS-like artefacts '|', comments '"', non-conducted P waves 'x',
ventricular flutter waves '!', flutter start/end '[' ']', non-captured pacing
'^', and the waveform boundaries and peaks ( ) p t u ` '.

Encodings of the two leads:

- "delta" (the reference implementation's): 4 binary channels, up/down spikes of each lead
  (`delta.delta_modulate`), threshold 1/10 of the lead's spread over the
  whole record (`delta.delta_threshold`); each window is encoded on its own,
  starting from its first sample.
- "raw": 2 float32 channels, each lead standardised by the mean and standard
  deviation of the whole record.
"""

import os
import shutil
import tempfile

import numpy as np

from mat_keras.errors import DataUnavailableError
from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer, check_positive, check_seed, is_integer
from mat_keras.zoo.datasets._reason import short_reason
from mat_keras.zoo.datasets.base import Dataset
from mat_keras.zoo.datasets.delta import delta_modulate
from mat_keras.zoo.datasets.delta import delta_threshold
from mat_keras.zoo.datasets.splits import stratified_split

# PhysioNet's beat annotation codes (https://physionet.org/physiobank/annotations.shtml).
BEAT_SYMBOLS = ("N", "L", "R", "B", "A", "a", "J", "S", "V", "r", "F", "e", "j", "n", "E", "/", "f", "Q", "?")
NORMAL_SYMBOL = "N"
ENCODINGS = ("delta", "raw")
# The files of one record: header, samples, reference beat annotations.
RECORD_EXTENSIONS = (".hea", ".dat", ".atr")
_LEADS = 2
_TEST_FRACTION = 0.5


def load_mitbih(*, records=(208,), data_dir=None, encoding="delta", seed=0, window_ms=350, steps=250):
    """Loads heartbeat windows of MIT-BIH Arrhythmia records.

    Args:
        records: record number or name, or a list of them (e.g.
            `[208, 213]`); their beats are pooled.
        data_dir: folder holding `<record>.dat`, `<record>.hea` and
            `<record>.atr` of each record (PhysioNet's `mitdb` files). None
            reads them from `$KERAS_HOME/mat_keras/datasets/mitdb` (default
            `~/.keras/...`), downloading the missing ones from PhysioNet once.
        encoding: "delta" for 4 spike channels, "raw" for the 2 standardised
            leads (see the module docstring).
        seed: seed of the stratified 50/50 train/test split and default seed
            of `train_dataset`.
        window_ms: half-width of the window around each beat, in ms.
        steps: time steps per window.

    Returns:
        A `Dataset` named "mitbih": x float32 `(N, steps, 4)` ("delta") or
        `(N, steps, 2)` ("raw"), y int64 (0 normal, 1 other beat).

    Raises:
        DataUnavailableError: a record is missing from `data_dir`, or is not
            cached and cannot be downloaded.
        InvalidArgumentError: a bad option, or a record without any window.

    Example:

    >>> data = load_mitbih(records=[208], data_dir="/data/mitdb")
    >>> data.x_train.shape[1:]
    (250, 4)
    """
    records = _check_records(records)
    if encoding not in ENCODINGS:
        raise InvalidArgumentError(f"encoding must be one of {', '.join(map(repr, ENCODINGS))}, not {encoding!r}.")
    window_ms = check_positive(window_ms, "window_ms", "number of milliseconds")
    steps = check_integer(steps, "steps", minimum=2)
    seed = check_seed(seed, allow_none=False)
    folder = os.path.expanduser(data_dir) if data_dir is not None else _cached_records(records)

    xs, ys = [], []
    for record in records:
        x, y = _record_examples(folder, record, encoding, window_ms, steps)
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    train, test = stratified_split(y, _TEST_FRACTION, seed)
    return Dataset(
        name="mitbih",
        num_classes=2,
        input_shape=tuple(x.shape[1:]),
        description=(
            f"mitbih: {len(train):,} train / {len(test):,} test heartbeats from MIT-BIH Arrhythmia "
            f"record{'s' if len(records) > 1 else ''} {', '.join(records)} "
            f"(+-{window_ms:g} ms, {steps} steps, {encoding} encoding), normal vs other beats"
        ),
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        seed=seed,
    )


def read_record(folder, record):
    """Reads the first two leads and the beat annotations of one record.

    Args:
        folder: folder holding the record's files.
        record: record name, e.g. "208".

    Returns:
        `(signal, fs, beat_samples, beat_symbols)`: float64 `(time, 2)` in
        physical units, the sampling rate in Hz, and the sample index and
        symbol of every beat annotation (non-beat annotations removed).

    Raises:
        DataUnavailableError: a file of the record is missing.
    """
    import wfdb

    path = os.path.join(folder, record)
    missing = [record + ext for ext in RECORD_EXTENSIONS if not os.path.isfile(path + ext)]
    if missing:
        raise DataUnavailableError(
            f"MIT-BIH record {record} is not in {folder} (missing {', '.join(missing)}): put {record}.dat, "
            f"{record}.hea and {record}.atr from PhysioNet's mitdb database in that folder."
        )
    header = wfdb.rdrecord(path)
    if header.n_sig < _LEADS:
        raise InvalidArgumentError(
            f"MIT-BIH record {record} in {folder} has {header.n_sig} signal(s) where 2 leads are needed."
        )
    annotation = wfdb.rdann(path, "atr")
    symbols = np.asarray(annotation.symbol)
    is_beat = np.isin(symbols, BEAT_SYMBOLS)
    signal = np.asarray(header.p_signal[:, :_LEADS], dtype=np.float64)
    return signal, float(header.fs), np.asarray(annotation.sample)[is_beat], symbols[is_beat]


def beat_windows(signal, fs, beat_samples, window_ms=350, steps=250):
    """Cuts a window around each beat, resampled to `steps` time steps.

    See the module docstring for where the instants lie.

    Args:
        signal: array `(time, leads)`.
        fs: sampling rate in Hz.
        beat_samples: sample index of each beat.
        window_ms: half-width of the window, in ms.
        steps: time steps per window.

    Returns:
        `(windows, kept)`: float64 `(n_kept, steps, leads)`, and the boolean
        mask of the beats whose window lies inside the record.
    """
    signal = np.asarray(signal, dtype=np.float64)
    half = window_ms * fs / 1000.0
    # half * (2k - steps) / steps rather than -half + k * step: index
    # steps / 2 then falls exactly on the beat, without rounding error.
    offsets = half * (2 * np.arange(steps) - steps) / steps
    positions = np.asarray(beat_samples, dtype=np.float64)[:, None] + offsets[None, :]
    kept = (positions[:, 0] >= 0) & (positions[:, -1] <= len(signal) - 1)
    positions = positions[kept]
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, len(signal) - 1)
    weight = (positions - below)[..., None]
    windows = signal[below] * (1.0 - weight) + signal[above] * weight
    return windows, kept


def mitdb_cache_dir():
    """Returns the folder that caches downloaded mitdb records.

    `$KERAS_HOME/mat_keras/datasets/mitdb`, where `KERAS_HOME` defaults to
    `~/.keras` (or `/tmp/.keras` when the home folder is read-only), the rule
    Keras applies to its own downloads. Read at each call, so that a change of
    `KERAS_HOME` takes effect.
    """
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        home = os.path.join(base, ".keras")
    return os.path.join(home, "mat_keras", "datasets", "mitdb")


def _record_examples(folder, record, encoding, window_ms, steps):
    """Returns `(x, y)` of the beats of one record."""
    signal, fs, beat_samples, beat_symbols = read_record(folder, record)
    windows, kept = beat_windows(signal, fs, beat_samples, window_ms, steps)
    if len(windows) == 0:
        raise InvalidArgumentError(
            f"MIT-BIH record {record} in {folder} ({len(signal) / fs:.2f} s, {len(beat_samples)} beat annotations) "
            f"has no beat at least {window_ms:g} ms away from both of its ends, so no window fits."
        )
    if encoding == "delta":
        x = delta_modulate(windows, delta_threshold(signal))
    else:
        std = signal.std(axis=0)
        # A flat lead has no scale to divide by; centring it is enough.
        std = np.where(std > 0, std, 1.0)
        x = ((windows - signal.mean(axis=0)) / std).astype(np.float32)
    y = (beat_symbols[kept] != NORMAL_SYMBOL).astype(np.int64)
    return x, y


def _cached_records(records):
    """Returns the cache folder, downloading the records it lacks."""
    folder = mitdb_cache_dir()
    missing = [record for record in records if not _has_record(folder, record)]
    if missing:
        _download(missing, folder)
    return folder


def _has_record(folder, record):
    return all(os.path.isfile(os.path.join(folder, record + ext)) for ext in RECORD_EXTENSIONS)


def _download(records, folder):
    """Downloads records from PhysioNet's mitdb into `folder`, all or nothing.

    Files land in a staging folder first and move into `folder` only when
    complete, so an interrupted download never leaves a half record that
    would later pass for a cached one.
    """
    import wfdb

    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".download-", dir=folder)
    try:
        try:
            wfdb.dl_database("mitdb", staging, records=list(records), annotators=["atr"])
        except Exception as error:  # noqa: BLE001 -- network stacks raise anything.
            first = records[0]
            what = f"record {first} is" if len(records) == 1 else f"records {', '.join(records)} are"
            raise DataUnavailableError(
                f"MIT-BIH {what} not cached in {folder} and cannot be downloaded from PhysioNet "
                f"({short_reason(error)}); pass data_dir=<a folder containing {first}.dat, {first}.hea and "
                f"{first}.atr (each record's three files) from PhysioNet's mitdb database>."
            ) from None
        for record in records:
            if not _has_record(staging, record):
                raise DataUnavailableError(
                    f"The download of MIT-BIH record {record} from PhysioNet's mitdb did not deliver "
                    f"{record}.dat, {record}.hea and {record}.atr; pass data_dir=<a folder holding them>."
                )
        for record in records:
            # The header moves last: a record counts as cached once all three
            # files are there.
            for ext in (".dat", ".atr", ".hea"):
                os.replace(os.path.join(staging, record + ext), os.path.join(folder, record + ext))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_records(records):
    """Returns the record names as a list of strings, or raises."""
    if isinstance(records, str) or is_integer(records):
        records = [records]
    try:
        names = [str(record) for record in records]
    except TypeError:
        raise InvalidArgumentError(f"records must be a record number or a list of them, not {records!r}.") from None
    if not names or any(not name or os.sep in name or "/" in name for name in names):
        raise InvalidArgumentError(f"records must list one or more record names such as 208, not {records!r}.")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"records lists a record twice: {records!r}.")
    return names
