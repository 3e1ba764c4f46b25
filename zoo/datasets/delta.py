"""Delta modulation: turns sampled signals into up/down spike trains (numpy).

The reference implementation's ECG encoder, with its two flaws fixed:

- its threshold used `np.percentile(x, 0.9)`, the 0.9th percentile, where
  the 90th was meant. Here the threshold is `fraction * spread` with
  `spread = percentile(lead, 90) - percentile(lead, 10)`, the width of the
  central 80 % of the lead's values (robust to the tall R peaks that a
  max - min range would follow), and `fraction = 0.1` (the reference implementation's
  "spread / 10");
- it picked one event per time step through an `elif` chain, so an event
  on one channel hid events that happened at the same step on the others.
  Here every lead is encoded independently: coincident events all survive.
"""

import numpy as np

from mat_keras.errors import InvalidArgumentError


def delta_threshold(signal, fraction=0.1):
    """Returns the delta-modulation threshold of each lead of a signal.

    Args:
        signal: array `(time, leads)`, a whole record (not one window), so
            that every window of the record is encoded with the same
            threshold.
        fraction: share of the spread that makes one step.

    Returns:
        float64 array `(leads,)`: `fraction * (p90 - p10)` of each lead,
        percentiles by numpy's default linear interpolation.

    Example:

    >>> delta_threshold(np.arange(101.0)[:, None])
    array([8.])
    """
    signal = np.asarray(signal, dtype=np.float64)
    spread = np.percentile(signal, 90, axis=0) - np.percentile(signal, 10, axis=0)
    return fraction * spread


def delta_modulate(x, threshold):
    """Encodes signals as spike trains on an up and a down channel per lead.

    The modulator keeps a reference level per lead, starting at the first
    sample (step 0 never spikes). At each later step `t`, with
    `d = x[t] - reference`:

    - `d > threshold`: a spike on the lead's up channel, reference = `x[t]`;
    - `d < -threshold`: a spike on its down channel, reference = `x[t]`;
    - otherwise no spike and the reference stays.

    Each lead has its own reference and threshold, so events of different
    leads at the same step all appear.

    Args:
        x: array `(..., time, leads)`, e.g. `(windows, 250, 2)`.
        threshold: scalar or array `(leads,)` of positive steps.

    Returns:
        float32 array `(..., time, 2 * leads)` of 0/1, channels ordered
        `[lead 0 up, lead 0 down, lead 1 up, lead 1 down, ...]`.

    Example:

    >>> delta_modulate(np.array([[0.0], [0.25], [0.75], [0.125]]), 0.5)
    array([[0., 0.],
           [0., 0.],
           [1., 0.],
           [0., 1.]], dtype=float32)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise InvalidArgumentError(f"delta_modulate needs an array shaped (..., time, leads), not {x.shape}.")
    threshold = np.broadcast_to(np.asarray(threshold, dtype=np.float64), x.shape[-1:])
    spikes = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=np.float32)
    reference = x[..., 0, :].copy()
    # A loop over time, vectorised over windows and leads: the reference
    # depends on the previous step, so time cannot be vectorised.
    for t in range(1, x.shape[-2]):
        change = x[..., t, :] - reference
        up = change > threshold
        down = change < -threshold
        spikes[..., t, 0::2] = up
        spikes[..., t, 1::2] = down
        reference = np.where(up | down, x[..., t, :], reference)
    return spikes
