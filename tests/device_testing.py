"""Helpers of the device tests: weights at chosen conductance states, sampling tolerances."""

import keras
import numpy as np

N = 100_000  # devices per conductance state


def weights_at_states(states, g_min=0.0, n=N, negative=False):
    """Weights whose G+ targets sit at `states` (conductances in units of g_max).

    The first weight is 1, so the tensor's scale max|w| is 1; `n` weights
    follow per state. Returns the weights and the index range of each state.
    """
    units = [(g - g_min) / (1 - g_min) for g in states]
    sign = -1.0 if negative else 1.0
    weights = np.concatenate([[1.0]] + [np.full(n, sign * u) for u in units]).astype("float32")
    ranges = [slice(1 + i * n, 1 + (i + 1) * n) for i in range(len(states))]
    return keras.ops.convert_to_tensor(weights), ranges


def assert_standard_normal(z):
    """Asserts that `z` has mean 0 and sd 1 within 5 standard errors."""
    # The sd of n standard normals has a standard error of 1/sqrt(2n), the mean 1/sqrt(n): allow 5.
    assert abs(z.mean()) < 5 / np.sqrt(z.size), z.mean()
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * z.size), z.std()


def binomial_close(count, n, p):
    """True when `count` of `n` is within 5 standard errors of the fraction `p`."""
    return abs(count / n - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-12
