"""Spiking neurons for the ECG network: leaky integrate-and-fire cells.

The building blocks of `zoo.ecg_srnn`, written with `keras.ops` only so that
they run on the TensorFlow, JAX and PyTorch backends:

- `spike`: the Heaviside step with a surrogate gradient;
- `ZeroDiagonal`: the constraint that keeps a recurrent matrix free of
  self-connections;
- `LIFCell`: a recurrent layer of leaky integrate-and-fire neurons with
  synaptic current, for `keras.layers.RNN`;
- `LeakyReadoutCell`: non-spiking leaky integrators that read the spikes out;
- `SpikeCountRegularization`: the spike-count penalties, added with
  `add_loss`.

All weights are ordinary `add_weight` variables of the cells, so
`mat_keras.NoisyWeights` perturbs the input, recurrent and readout weights of a
wrapped `RNN` layer like those of any other layer. Time constants are
non-trainable variables: they are saved with the model and, being
non-trainable, untouched by weight noise.
"""

import keras
import numpy as np
from keras import ops

from mat_keras.validation import check_integer, check_non_negative, check_positive


def spike(x, scale=10.0):
    """Heaviside step `x > 0` with the surrogate gradient `1/(scale*|x|+1)^2`.

    The forward value is exactly 0 or 1. The gradient is that of
    `f(x) = x / (scale*|x| + 1)`, whose derivative is `1/(scale*|x| + 1)^2`
    (the "fast sigmoid" surrogate of Zenke & Ganguli, 2018). It is attached
    with the stop-gradient identity `h(x) + (f(x) - stop_gradient(f(x)))`
    rather than `ops.custom_gradient`, so the same code differentiates under
    TensorFlow, JAX and PyTorch; `f - stop_gradient(f)` is exactly zero in
    the forward pass, so the spikes stay binary.

    Args:
        x: membrane potential minus threshold, any shape.
        scale: steepness of the surrogate (10 in the reference implementation).

    Returns:
        A tensor of the dtype of `x`, 1 where `x > 0` and 0 elsewhere.

    Example:

    >>> spike(keras.ops.convert_to_tensor([-0.5, 0.0, 0.2]))
    [0., 0., 1.]
    """
    x = ops.convert_to_tensor(x)
    step = ops.cast(ops.greater(x, 0), x.dtype)
    smooth = x / (scale * ops.abs(x) + 1.0)
    return step + (smooth - ops.stop_gradient(smooth))


@keras.saving.register_keras_serializable(package="mat_keras")
class ZeroDiagonal(keras.constraints.Constraint):
    """Constrains a square weight matrix to a zero diagonal.

    Keeps a recurrent matrix free of self-connections in the stored weights:
    the optimizer applies it after each update.

    Example:

    >>> ZeroDiagonal()(keras.ops.ones((2, 2)))
    [[0., 1.], [1., 0.]]
    """

    def __call__(self, w):
        return w * _off_diagonal_mask(ops.shape(w)[0], w.dtype)

    def get_config(self):
        return {}


class _LeakyCell(keras.layers.Layer):
    """What LIF neurons and leaky readouts share: time constants and an input kernel.

    Holds the synaptic and membrane time constants (optionally per neuron,
    see `LIFCell`), the input `kernel`, the decays `alpha` and `beta` of one
    time step, and the config of all of these.
    """

    def __init__(
        self,
        units,
        tau_syn=5e-3,
        tau_mem=20e-3,
        dt=1 / 360,
        heterogeneous_tau=False,
        tau_sd=0.3,
        seed=None,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_integer(units, "units")
        _check_time_constants(tau_syn, tau_mem, dt, tau_sd)
        self.units = int(units)
        self.tau_syn_init = float(tau_syn)
        self.tau_mem_init = float(tau_mem)
        self.dt = float(dt)
        self.heterogeneous_tau = bool(heterogeneous_tau)
        self.tau_sd = float(tau_sd)
        self.seed = seed
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or _fan_in_uniform()
        )
        self.output_size = self.units

    def build(self, input_shape):
        self.add_kernel(input_shape)
        self.tau_syn, self.tau_mem = _add_time_constants(self)

    def add_kernel(self, input_shape):
        """Creates the input weights `kernel`, `(input_dim, units)`."""
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer=self.kernel_initializer,
            name="kernel",
        )

    def decays(self):
        """Returns `(alpha, beta)`: the synaptic and membrane decay of one step."""
        alpha = ops.exp(-self.dt / ops.convert_to_tensor(self.tau_syn))
        beta = ops.exp(-self.dt / ops.convert_to_tensor(self.tau_mem))
        return alpha, beta

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "tau_syn": self.tau_syn_init,
                "tau_mem": self.tau_mem_init,
                "dt": self.dt,
                "heterogeneous_tau": self.heterogeneous_tau,
                "tau_sd": self.tau_sd,
                "seed": self.seed,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mat_keras")
class LIFCell(_LeakyCell):
    """Leaky integrate-and-fire neurons with synaptic current, as an RNN cell.

    With decays `alpha = exp(-dt/tau_syn)` and `beta = exp(-dt/tau_mem)`, each
    time step computes

        I[t] = alpha * I[t-1] + x[t] @ kernel + s[t-1] @ recurrent_kernel
        V[t] = beta * V[t-1] * (1 - s[t-1]) + I[t]
        s[t] = spike(V[t] - threshold)

    i.e. the membrane resets to zero on the step after a spike. The reset term
    is taken under `stop_gradient` (common surrogate-gradient practice: it
    keeps the gradient from flowing through the reset, which destabilises
    training); the recurrent input `s[t-1] @ recurrent_kernel` keeps its
    gradient. The diagonal of `recurrent_kernel` is zero when initialised,
    kept zero by the `ZeroDiagonal` constraint and masked out in the forward
    pass, so the neurons never excite themselves, even under weight noise.

    With `heterogeneous_tau=True`, every neuron gets its own `tau_syn` and
    `tau_mem`, drawn log-normally around the nominal values (median `tau`,
    log-space standard deviation `tau_sd`), as device mismatch spreads them in
    analogue hardware. The draw is seeded and stored in the non-trainable
    weights `tau_syn` and `tau_mem`, so a saved model keeps its neurons.

    Use it with `keras.layers.RNN(LIFCell(64), return_sequences=True)`; the
    layer then returns the spike trains, shape `(batch, time, units)`.

    Args:
        units: number of neurons.
        tau_syn: synaptic time constant in seconds (> 0).
        tau_mem: membrane time constant in seconds (> 0).
        dt: simulation time step in seconds (> 0).
        threshold: firing threshold (> 0).
        surrogate_scale: steepness of the surrogate gradient (> 0).
        heterogeneous_tau: draw per-neuron time constants.
        tau_sd: log-space standard deviation of the per-neuron time constants
            (>= 0); 0.3 is close to the spread the reference implementation fitted for synapses.
        seed: integer seed of the time-constant draw, or None.
        kernel_initializer: initializer of the input weights.
        recurrent_initializer: initializer of the recurrent weights; its
            diagonal is zeroed.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Example:

    >>> layer = keras.layers.RNN(LIFCell(64), return_sequences=True)
    >>> spikes = layer(keras.ops.ones((8, 250, 4)))  # (8, 250, 64), 0 or 1
    """

    def __init__(
        self,
        units,
        tau_syn=5e-3,
        tau_mem=20e-3,
        dt=1 / 360,
        threshold=1.0,
        surrogate_scale=10.0,
        heterogeneous_tau=False,
        tau_sd=0.3,
        seed=None,
        kernel_initializer=None,
        recurrent_initializer=None,
        **kwargs,
    ):
        super().__init__(
            units, tau_syn, tau_mem, dt, heterogeneous_tau, tau_sd, seed, kernel_initializer, **kwargs
        )
        check_positive(threshold, "threshold")
        check_positive(surrogate_scale, "surrogate_scale")
        self.threshold = float(threshold)
        self.surrogate_scale = float(surrogate_scale)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer or _fan_in_uniform()
        )
        # Synaptic current, membrane potential, last spikes.
        self.state_size = [self.units, self.units, self.units]

    def build(self, input_shape):
        # Kernel, recurrent kernel, time constants: the order of the weights.
        self.add_kernel(input_shape)
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            initializer=_zero_diagonal(self.recurrent_initializer),
            constraint=ZeroDiagonal(),
            name="recurrent_kernel",
        )
        self.tau_syn, self.tau_mem = _add_time_constants(self)

    def call(self, inputs, states, training=False):
        current, potential, spikes = states
        alpha, beta = self.decays()
        recurrent_kernel = self.recurrent_kernel * _off_diagonal_mask(
            self.units, self.recurrent_kernel.dtype
        )
        current = (
            alpha * current
            + ops.matmul(inputs, self.kernel)
            + ops.matmul(spikes, recurrent_kernel)
        )
        potential = beta * potential * (1.0 - ops.stop_gradient(spikes)) + current
        spikes = spike(potential - self.threshold, self.surrogate_scale)
        return spikes, [current, potential, spikes]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "threshold": self.threshold,
                "surrogate_scale": self.surrogate_scale,
                "recurrent_initializer": keras.initializers.serialize(
                    self.recurrent_initializer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mat_keras")
class LeakyReadoutCell(_LeakyCell):
    """Non-spiking leaky integrators that read spike trains out, as an RNN cell.

    The readout neurons integrate their weighted input like `LIFCell` but
    never fire or reset:

        I[t] = alpha * I[t-1] + x[t] @ kernel
        V[t] = beta * V[t-1] + I[t]

    and output `V[t]`. The maximum of `V` over time serves as the logits of
    `zoo.ecg_srnn`.

    Args:
        units: number of readout neurons (classes).
        tau_syn: synaptic time constant in seconds (> 0).
        tau_mem: membrane time constant in seconds (> 0).
        dt: simulation time step in seconds (> 0).
        heterogeneous_tau: draw per-neuron time constants (see `LIFCell`).
        tau_sd: log-space standard deviation of the per-neuron time constants.
        seed: integer seed of the time-constant draw, or None.
        kernel_initializer: initializer of the readout weights.
        **kwargs: base `Layer` arguments.

    Example:

    >>> readout = keras.layers.RNN(LeakyReadoutCell(2), return_sequences=True)
    >>> potentials = readout(spikes)  # (batch, time, 2)
    """

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        # Synaptic current, membrane potential.
        self.state_size = [self.units, self.units]

    def call(self, inputs, states, training=False):
        current, potential = states
        alpha, beta = self.decays()
        current = alpha * current + ops.matmul(inputs, self.kernel)
        potential = beta * potential + current
        return potential, [current, potential]


@keras.saving.register_keras_serializable(package="mat_keras")
class SpikeCountRegularization(keras.layers.Layer):
    """Identity on spike trains that adds the reference implementation's spike-count penalties.

    For spikes of shape `(batch, time, units)`, with `n_j` the number of
    spikes of neuron `j` summed over the batch and time, it adds

        l1 * sum_j n_j  +  l2 * mean_j n_j^2

    to the model's losses (`add_loss`, so they show in `model.losses` and
    `fit` minimises them): the L1 term keeps the total activity low, the L2
    term keeps single neurons from firing all the time. These are the reference implementation's
    definitions; its coefficients (1e-7 each) are tuned to these batch sums.

    Args:
        l1: weight of the total spike count (>= 0).
        l2: weight of the squared per-neuron counts (>= 0).
        **kwargs: base `Layer` arguments.

    Example:

    >>> spikes = SpikeCountRegularization(1e-7, 1e-7)(spikes)
    """

    def __init__(self, l1=1e-7, l2=1e-7, **kwargs):
        super().__init__(**kwargs)
        check_non_negative(l1, "spike_l1")
        check_non_negative(l2, "spike_l2")
        self.l1 = float(l1)
        self.l2 = float(l2)

    def call(self, spikes):
        counts = ops.sum(spikes, axis=(0, 1))
        if self.l1 or self.l2:
            self.add_loss(
                self.l1 * ops.sum(counts) + self.l2 * ops.mean(ops.square(counts))
            )
        return spikes

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"l1": self.l1, "l2": self.l2})
        return config


def _off_diagonal_mask(n, dtype):
    """Returns the `(n, n)` matrix of ones with a zero diagonal."""
    return 1.0 - ops.eye(n, dtype=dtype)


def _zero_diagonal(initializer):
    """Wraps an initializer so that the square matrices it draws have a zero
    diagonal from the start (the constraint only acts after updates)."""

    def initialize(shape, dtype=None):
        return ZeroDiagonal()(initializer(shape, dtype=dtype))

    return initialize


def _fan_in_uniform():
    """Uniform in +-1/sqrt(fan_in), the reference implementation's scale for all three matrices."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
    )


def _add_time_constants(cell):
    """Adds the non-trainable per-neuron `tau_syn` and `tau_mem` of a cell.

    Homogeneous cells store the nominal values; heterogeneous ones a
    log-normal draw with seeds `seed` and `seed + 1`. The draw uses numpy so
    that a seed gives the same time constants on every backend.
    """
    seeds = (None, None) if cell.seed is None else (cell.seed, cell.seed + 1)
    taus = []
    for name, nominal, seed in zip(
        ("tau_syn", "tau_mem"), (cell.tau_syn_init, cell.tau_mem_init), seeds
    ):
        sd = cell.tau_sd if cell.heterogeneous_tau else 0.0
        taus.append(
            cell.add_weight(
                shape=(cell.units,),
                initializer=_log_normal(nominal, sd, seed),
                trainable=False,
                name=name,
            )
        )
    return taus


def _log_normal(median, sd, seed):
    """Initializer drawing `median * exp(sd * N(0, 1))`, seeded with numpy."""

    def initialize(shape, dtype=None):
        rng = np.random.default_rng(seed)
        values = median * np.exp(sd * rng.standard_normal(shape))
        return ops.convert_to_tensor(values, dtype=dtype)

    return initialize


def _check_time_constants(tau_syn, tau_mem, dt, tau_sd):
    check_positive(tau_syn, "tau_syn")
    check_positive(tau_mem, "tau_mem")
    check_positive(dt, "dt")
    check_non_negative(tau_sd, "tau_sd")
