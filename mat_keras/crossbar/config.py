"""`Crossbar`: the settings of a simulated analog tile and its periphery.

A crossbar computes a matrix-vector product the way an in-memory-computing
chip does (see `mat_keras.crossbar.analog` for the computation). Its
settings are a small serialisable object, resolved like noise models from an
instance, an alias (`"ideal"`, `"standard"`) or a config dict.

Conventions, in the order a chip applies them to one row tile:

- Inputs are divided by the input range `r` and clipped to [-1, 1]; the DAC
  rounds them to `input_steps` steps over [-1, 1] (`input_steps = 2**bits - 2`,
  symmetric around 0, as the anchors count 8 bits as 254 steps).
- Weights are divided by their scale (`max|w|` of each column of the whole
  matrix, or of the whole matrix) to [-1, 1]: the normalised conductance
  difference of each device pair.
- The tile's column sums, in those units, get read noise (per device and
  read) and output noise, then are clipped to `±output_bound` and the ADC
  rounds them to `output_steps` steps over `[-output_bound, output_bound]`.
- The digital periphery sums the row tiles, multiplies back by `r` and the
  weight scale and adds the digital bias.
"""

import keras

from mat_keras.errors import InvalidArgumentError
from mat_keras.noise.base import Configurable
from mat_keras.validation import check_integer, check_non_negative, check_positive

INPUT_RANGE_MODES = ("learned", "calibrated")
WEIGHT_SCALINGS = ("column", "tensor")

# aihwkit's default ratio of a wire segment's conductance to a device's
# maximum conductance: 0.35 Ohm wire, 5 uS device (`IOParameters.ir_drop_g_ratio`).
DEFAULT_IR_DROP_G_RATIO = 1.0 / (0.35 * 5e-6)


def steps_from_bits(bits, name):
    """Returns the number of quantisation steps of a `bits`-bit converter.

    A symmetric converter spends one code on each side of zero's mirror: 8
    bits give 254 steps over [-1, 1] (aihwkit's `inp_res = out_res = 254`).

    Example:

    >>> steps_from_bits(8, "input_bits")
    254
    """
    bits = check_integer(bits, name, minimum=2)
    return 2**bits - 2


def _resolution(bits, steps, name):
    """Turns one of `<name>_bits` / `<name>_steps` (or neither) into steps or None."""
    if bits is not None and steps is not None:
        raise InvalidArgumentError(
            f"Give {name}_bits or {name}_steps, not both (got {bits!r} and {steps!r})."
        )
    if bits is not None:
        return steps_from_bits(bits, f"{name}_bits")
    if steps is not None:
        return check_integer(steps, f"{name}_steps", minimum=1)
    return None


def _input_range(value):
    if isinstance(value, str):
        if value not in INPUT_RANGE_MODES:
            raise InvalidArgumentError(
                f"input_range must be a number > 0 or one of {list(INPUT_RANGE_MODES)}, "
                f"got {value!r}."
            )
        return value
    return check_positive(value, "input_range")


@keras.saving.register_keras_serializable(package="mat_keras")
class Crossbar(Configurable):
    """Settings of a simulated crossbar tile, its converters and its noise.

    Args:
        tile_rows: rows (inputs) of a tile; a matrix with more rows is split
            into row tiles whose outputs the periphery adds digitally. None:
            one tile holds every row.
        tile_cols: columns (outputs) of a tile, kept so that simulated and
            exported tiles agree; columns of one row tile are computed alike
            whatever their tile. None: one tile holds every column.
        input_bits, input_steps: DAC resolution, as bits or as steps over
            [-1, 1] (at most one; neither: no input quantisation).
        input_range: the input range `r`: a number, `"calibrated"` (set from
            data by `calibrate_input_ranges` before evaluation) or
            `"learned"` (a variable per row tile, trained with a
            straight-through rule and a range gradient).
        input_range_init: the range a learned or calibrated range starts from.
        input_range_decay: the learned range's pull-down per step while
            fewer than `1 - input_min_fraction` of its inputs clip.
        input_min_fraction: see `input_range_decay`.
        output_bits, output_steps: ADC resolution, as bits or steps over
            `[-output_bound, output_bound]` (at most one; neither: none).
        output_bound: the ADC's bound in normalised units; None: no clipping.
        output_noise: sd of the additive noise on every column sum, in
            normalised units, drawn at every forward pass.
        read_noise: sd of each device's read noise relative to the square
            root of its normalised conductance, fresh at every read: a column
            sum gets sd `read_noise * sqrt(sum_i x_i**2 |w_i|)` (the form of
            aihwkit's PCM_READ output-referred weight noise).
        ir_drop: strength of the IR drop along the column wires (0: none;
            1: the physical default of `ir_drop_g_ratio`); see
            `mat_keras.crossbar.analog.ir_drop_attenuation`.
        ir_drop_g_ratio: conductance of a wire segment over a device's
            maximum conductance.
        weight_scaling: `"column"` (each column of the matrix scaled by its
            own `max|w|`) or `"tensor"` (one scale for the matrix).

    Example:

    >>> chip = Crossbar(tile_rows=512, input_bits=8, output_bits=8, output_bound=10.0)
    >>> chip.input_steps, chip.output_steps
    (254, 254)
    """

    def __init__(
        self,
        tile_rows=None,
        tile_cols=None,
        input_bits=None,
        input_steps=None,
        input_range=1.0,
        input_range_init=3.0,
        input_range_decay=0.001,
        input_min_fraction=0.95,
        output_bits=None,
        output_steps=None,
        output_bound=None,
        output_noise=0.0,
        read_noise=0.0,
        ir_drop=0.0,
        ir_drop_g_ratio=DEFAULT_IR_DROP_G_RATIO,
        weight_scaling="column",
    ):
        self.tile_rows = None if tile_rows is None else check_integer(tile_rows, "tile_rows")
        self.tile_cols = None if tile_cols is None else check_integer(tile_cols, "tile_cols")
        self.input_steps = _resolution(input_bits, input_steps, "input")
        self.input_range = _input_range(input_range)
        self.input_range_init = check_positive(input_range_init, "input_range_init")
        self.input_range_decay = check_non_negative(input_range_decay, "input_range_decay")
        self.input_min_fraction = check_non_negative(input_min_fraction, "input_min_fraction")
        self.output_steps = _resolution(output_bits, output_steps, "output")
        self.output_bound = (
            None if output_bound is None else check_positive(output_bound, "output_bound")
        )
        if self.output_steps is not None and self.output_bound is None:
            raise InvalidArgumentError(
                "An ADC resolution needs an output_bound: the range its steps divide."
            )
        self.output_noise = check_non_negative(output_noise, "output_noise")
        self.read_noise = check_non_negative(read_noise, "read_noise")
        self.ir_drop = check_non_negative(ir_drop, "ir_drop")
        self.ir_drop_g_ratio = check_positive(ir_drop_g_ratio, "ir_drop_g_ratio")
        if weight_scaling not in WEIGHT_SCALINGS:
            raise InvalidArgumentError(
                f"weight_scaling must be one of {list(WEIGHT_SCALINGS)}, got {weight_scaling!r}."
            )
        self.weight_scaling = weight_scaling

    @property
    def is_ideal(self):
        """True when the crossbar computes the exact product (nothing to simulate)."""
        return (
            self.input_steps is None
            and self.output_steps is None
            and self.output_bound is None
            and self.output_noise == 0
            and self.read_noise == 0
            and self.ir_drop == 0
            and not isinstance(self.input_range, str)
        )

    @property
    def is_noisy(self):
        """True when the crossbar draws random numbers at every forward pass."""
        return self.output_noise > 0 or self.read_noise > 0

    def get_config(self):
        return {
            "tile_rows": self.tile_rows,
            "tile_cols": self.tile_cols,
            "input_steps": self.input_steps,
            "input_range": self.input_range,
            "input_range_init": self.input_range_init,
            "input_range_decay": self.input_range_decay,
            "input_min_fraction": self.input_min_fraction,
            "output_steps": self.output_steps,
            "output_bound": self.output_bound,
            "output_noise": self.output_noise,
            "read_noise": self.read_noise,
            "ir_drop": self.ir_drop,
            "ir_drop_g_ratio": self.ir_drop_g_ratio,
            "weight_scaling": self.weight_scaling,
        }

    def __repr__(self):
        # Only what differs from the defaults: a preset reads as its settings.
        changed = {
            k: v for k, v in self.get_config().items() if v != _DEFAULTS.get(k)
        }
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"Crossbar({args})"


_DEFAULTS = Crossbar().get_config()


def ideal():
    """The exact product: no quantisation, noise, clipping or IR drop.

    Example:

    >>> ideal().is_ideal
    True
    """
    return Crossbar()


def standard():
    """The anchors' benchmark chip: IBM aihwkit's `StandardHWATrainingPreset`.

    Every number is that preset's (aihwkit, `simulator/presets/inference.py`;
    Rasch et al., "Hardware-aware training for large-scale and diverse deep
    learning inference workloads using in-memory computing-based
    accelerators", Nature Communications 14:5282, 2023):

    - `max_input_size=512`: 512-row tiles (`max_output_size=0`: columns
      unbounded);
    - `inp_res=254`, `out_res=254`: 8-bit DAC and ADC;
    - `out_bound=10`, `out_noise=0.04`;
    - `w_noise=0.0175` with `w_noise_type=PCM_READ`: read noise;
    - `ir_drop=1.0` with the default `ir_drop_g_ratio` (0.35 Ohm, 5 uS);
    - `weight_scaling_columnwise=True`: column scaling;
    - `InputRangeParameter(enable=True, init_value=3.0, decay=0.001,
      input_min_percentage=0.95)`: a learned input range.

    Our IR-drop model is a first-order one of our own (see
    `analog.ir_drop_attenuation`), driven by the same two numbers.

    Example:

    >>> standard().tile_rows
    512
    """
    return Crossbar(
        tile_rows=512,
        input_steps=254,
        input_range="learned",
        input_range_init=3.0,
        input_range_decay=0.001,
        input_min_fraction=0.95,
        output_steps=254,
        output_bound=10.0,
        output_noise=0.04,
        read_noise=0.0175,
        ir_drop=1.0,
        weight_scaling="column",
    )


_ALIASES = {"ideal": ideal, "standard": standard}


def aliases():
    """The crossbar aliases, sorted."""
    return sorted(_ALIASES)


def serialize(crossbar):
    """Returns the Keras config dict of a crossbar."""
    return keras.saving.serialize_keras_object(crossbar)


def deserialize(config):
    """Returns the crossbar a config dict describes."""
    return keras.saving.deserialize_keras_object(config)


def get(identifier):
    """Resolves a crossbar from an instance, an alias, a dict of settings or a config.

    Args:
        identifier: a `Crossbar`, `"ideal"` / `"standard"`, a dict of
            `Crossbar` arguments, a Keras config dict, or None (None).

    Returns:
        A `Crossbar`, or None.

    Raises:
        InvalidArgumentError: an unknown alias or a bad setting.

    Example:

    >>> get("standard").output_bound
    10.0
    >>> get({"input_bits": 4}).input_steps
    14
    """
    if identifier is None or isinstance(identifier, Crossbar):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _ALIASES:
            raise InvalidArgumentError(
                f"Unknown crossbar {identifier!r}; known: {', '.join(aliases())}."
            )
        return _ALIASES[identifier]()
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            return deserialize(identifier)
        try:
            return Crossbar(**identifier)
        except TypeError as error:
            raise InvalidArgumentError(f"Bad crossbar settings {identifier!r}: {error}.") from None
    raise InvalidArgumentError(
        f"A crossbar is a Crossbar, an alias ({', '.join(aliases())}) or a dict, "
        f"got {identifier!r}."
    )
