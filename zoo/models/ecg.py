"""The reference implementation's ECG networks: a small LSTM/GRU and a recurrent spiking network.

Both classify heartbeat windows from `zoo.load_dataset("mitbih")`: 250 time
steps at 360 Hz, either the `"delta"` encoding (4 binary event channels) or the
`"raw"` one (2 standardised leads), into normal vs other beats.
"""

import keras

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer
from mat_keras.zoo.models.shapes import as_tuple, is_size
from mat_keras.zoo.models.spiking import (
    LeakyReadoutCell,
    LIFCell,
    SpikeCountRegularization,
)
from mat_keras.zoo.weights import load_zoo_weights

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def ecg_rnn(input_shape=(250, 4), num_classes=2, units=64, cell="lstm", weights=None):
    """Returns a one-layer LSTM or GRU beat classifier, uncompiled.

    The recurrent layer reads the whole window; a Dense layer maps its last
    state to logits (compile with `SparseCategoricalCrossentropy(
    from_logits=True)`).

    Args:
        input_shape: `(time_steps, channels)`; `(250, 4)` for the delta
            encoding, `(250, 2)` for the raw leads. `time_steps` may be None.
        num_classes: number of output logits (>= 2).
        units: width of the recurrent layer.
        cell: `"lstm"` or `"gru"`.
        weights: None for random initialisation.

    Returns:
        A `keras.Sequential` model. At the defaults (delta input, LSTM, 64
        units) it has 17,794 weights; with `cell="gru"`, 13,570.

    Example:

    >>> model = mat_keras.zoo.ecg_rnn(input_shape=(250, 2), cell="gru")
    >>> model.count_params()
    13186
    """
    input_shape = _check_sequence_shape(input_shape)
    check_integer(num_classes, "num_classes", minimum=2)
    check_integer(units, "units")
    key = str(cell).lower()
    if key not in _CELLS:
        raise InvalidArgumentError(
            f"Unknown cell type {cell!r}; expected one of {sorted(_CELLS)}."
        )
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            _CELLS[key](units, name=key),
            keras.layers.Dense(num_classes, name="logits"),
        ],
        name=f"ecg_{key}",
    )
    return load_zoo_weights(model, weights, "ecg_rnn")


def ecg_srnn(
    input_shape=(250, 4),
    num_classes=2,
    hidden_units=64,
    tau_syn=5e-3,
    tau_mem=20e-3,
    dt=1 / 360,
    threshold=1.0,
    surrogate_scale=10.0,
    heterogeneous_tau=False,
    tau_sd=0.3,
    seed=None,
    spike_l1=1e-7,
    spike_l2=1e-7,
    weights=None,
):
    """Returns the reference implementation's recurrent spiking network, uncompiled.

    Input -> `RNN(LIFCell)` (recurrent leaky integrate-and-fire neurons with
    synaptic current, no self-connections, surrogate gradient) ->
    `SpikeCountRegularization` (adds the spike-count losses) ->
    `RNN(LeakyReadoutCell)` (non-spiking leaky readout) -> maximum over time,
    which is the vector of logits. See `zoo.models.spiking` for the dynamics.

    The input, recurrent and readout weights are ordinary trainable weights
    (`lif` layer: `kernel`, `recurrent_kernel`; `readout` layer: `kernel`), so
    `mat_keras.wrap` puts noise on them like on any Dense layer. The time
    constants are non-trainable weights, saved with the model.

    Args:
        input_shape: `(time_steps, channels)`; `(250, 4)` for the delta
            encoding, `(250, 2)` for the raw leads. `time_steps` may be None.
        num_classes: number of readout neurons and logits (>= 2).
        hidden_units: number of spiking neurons (the reference implementation uses 64 to 100).
        tau_syn: synaptic time constant in seconds.
        tau_mem: membrane time constant in seconds.
        dt: time step in seconds (1/360 s for MIT-BIH).
        threshold: firing threshold of the hidden neurons.
        surrogate_scale: steepness of the surrogate gradient
            `1/(scale*|x|+1)^2`.
        heterogeneous_tau: per-neuron time constants drawn log-normally
            (device mismatch), for the hidden and the readout neurons.
        tau_sd: log-space standard deviation of that draw.
        seed: integer seed of that draw (hidden: `seed`, `seed + 1`;
            readout: `seed + 2`, `seed + 3`), or None.
        spike_l1: weight of the total spike count in the loss.
        spike_l2: weight of the squared per-neuron spike counts in the loss.
        weights: None for random initialisation.

    Returns:
        A functional `keras.Model`. At the defaults it has 4,612 weights:
        4,480 trainable (input 4x64, recurrent 64x64 with a zero diagonal,
        readout 64x2) and 132 non-trainable time constants.

    Example:

    >>> model = mat_keras.zoo.ecg_srnn(heterogeneous_tau=True, seed=0)
    >>> model.compile("adamax", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True))
    """
    input_shape = _check_sequence_shape(input_shape)
    check_integer(num_classes, "num_classes", minimum=2)
    neuron = dict(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        dt=dt,
        heterogeneous_tau=heterogeneous_tau,
        tau_sd=tau_sd,
    )
    hidden = LIFCell(
        hidden_units,
        threshold=threshold,
        surrogate_scale=surrogate_scale,
        seed=seed,
        name="lif_cell",
        **neuron,
    )
    readout = LeakyReadoutCell(
        num_classes,
        seed=None if seed is None else seed + 2,
        name="readout_cell",
        **neuron,
    )
    inputs = keras.Input(input_shape, name="events")
    spikes = keras.layers.RNN(hidden, return_sequences=True, name="lif")(inputs)
    spikes = SpikeCountRegularization(spike_l1, spike_l2, name="spike_count")(spikes)
    potentials = keras.layers.RNN(readout, return_sequences=True, name="readout")(
        spikes
    )
    logits = keras.layers.GlobalMaxPooling1D(name="max_over_time")(potentials)
    return load_zoo_weights(keras.Model(inputs, logits, name="ecg_srnn"), weights, "ecg_srnn")


def _check_sequence_shape(input_shape):
    """Returns `input_shape` as a tuple `(time_steps, channels)` or raises."""
    shape = as_tuple(input_shape)
    if (
        shape is None
        or len(shape) != 2
        or not is_size(shape[1])
        or not (shape[0] is None or is_size(shape[0]))
    ):
        raise InvalidArgumentError(
            "input_shape must be (time_steps, channels), e.g. (250, 4) for the "
            f"delta encoding or (250, 2) for the raw leads; got {input_shape!r}."
        )
    return shape
