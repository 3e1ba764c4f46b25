"""Synthetic MIT-BIH-format records, for tests, notebooks and demos without PhysioNet.

The records are written with wfdb in PhysioNet's own format (`.dat`, `.hea`,
`.atr`), so the real loader reads them exactly as it reads the database.
They are not ECG data: Gaussian bumps on a slow baseline, labelled.
"""

import numpy as np

FS = 360


def write_synthetic_record(folder, name, seconds=20.0, every=290, first=100, seed=0):
    """Writes a 2-lead ECG-like record at 360 Hz and its 'atr' annotations.

    Beats every `every` samples from `first`; every fourth one a wide,
    inverted ventricular beat 'V', the others normal 'N'; plus three non-beat
    annotations ('+', '~', '|') that the loader must skip.

    Args:
        folder: where to write `<name>.dat`, `<name>.hea`, `<name>.atr`.
        name: the record name, e.g. "208".
        seconds: record length.
        every, first: beat spacing and first beat, in samples.
        seed: seed of the baseline noise.

    Returns:
        `(beat_samples, beat_symbols)` as written.

    Example:

    >>> write_synthetic_record(tmp_dir, "208")
    >>> data = mat_keras.zoo.load_dataset("mitbih", records=[208], data_dir=tmp_dir)
    """
    n = int(seconds * FS)
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    lead0 = 0.1 * np.sin(2 * np.pi * 0.3 * t / FS) + 0.02 * rng.standard_normal(n)
    lead1 = 0.05 * np.cos(2 * np.pi * 0.2 * t / FS) + 0.02 * rng.standard_normal(n)
    beats = np.arange(first, n, every)
    symbols = ["V" if i % 4 == 3 else "N" for i in range(len(beats))]
    for beat, symbol in zip(beats, symbols):
        width, height = (4, 1.2) if symbol == "N" else (12, -1.5)
        bump = np.exp(-0.5 * ((t - beat) / width) ** 2)
        lead0 += height * bump
        lead1 += 0.6 * bump
    write_wfdb_record(folder, name, lead0, lead1, beats, symbols, [5, 1000, 2000], ["+", "~", "|"])
    return beats, np.array(symbols)


def write_wfdb_record(folder, name, lead0, lead1, beats, symbols, extra_samples=(), extra_symbols=()):
    """Writes two leads at 360 Hz and their 'atr' annotations in PhysioNet's format.

    Args:
        folder: where to write `<name>.dat`, `<name>.hea`, `<name>.atr`.
        name: the record name.
        lead0, lead1: the MLII and V1 signals in mV, equal lengths.
        beats, symbols: beat positions (samples) and their symbols ("N", "V", ...).
        extra_samples, extra_symbols: non-beat annotations ("+", "~", "|")
            that a reader must skip; positions are clipped to the record.

    Example:

    >>> write_wfdb_record(tmp_dir, "208", lead0, lead1, [100, 390], ["N", "V"], [5], ["+"])
    """
    import wfdb

    n = len(lead0)
    wfdb.wrsamp(
        str(name), fs=FS, units=["mV", "mV"], sig_name=["MLII", "V1"],
        p_signal=np.stack([lead0, lead1], axis=1), fmt=["212", "212"], write_dir=str(folder),
    )
    samples = np.concatenate([np.asarray(beats), np.minimum(np.asarray(extra_samples, dtype=np.int64), n - 1)])
    labels = list(symbols) + list(extra_symbols)
    order = np.argsort(samples, kind="stable")
    wfdb.wrann(
        str(name), "atr", samples[order], symbol=[labels[i] for i in order], write_dir=str(folder), fs=FS,
    )
