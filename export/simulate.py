"""`simulate`: the chip an exported tables folder programs, computing through a crossbar.

`apply_tables` puts the tables' conductances back into a model as weights
(programming noise, drift and compensation included); `simulate` then
computes every product of those weights as a crossbar does
(`mat_keras.chip_model`): DAC, read and output noise, IR drop and ADC, tile
for tile. The crossbar's tiles are the tables' own: a crossbar that leaves
`tile_rows` or `tile_cols` unset takes the tables' size, and one that sets
another size is refused (`crossbar_for_tiles`), so each simulated row tile
holds exactly the rows of an exported tile (`mat_keras.crossbar.row_tiles`
and the exporter split matrices the same way).

Biases stay digital, as the chip's periphery adds them: tables that put the
bias on a crossbar row (`bias="row"`) are refused. A model trained through
the same crossbar keeps its learned input ranges; ranges never set are
calibrated from `calibration_data`.
"""

import numpy as np

from mat_keras import crossbar as crossbar_lib
from mat_keras.crossbar.tiles import check_tile
from mat_keras.errors import InvalidArgumentError
from mat_keras.export.apply import apply_tables
from mat_keras.export.tables import Tables, load_tables
from mat_keras.validation import check_seed
from mat_keras.wrapping import chip_model, model_crossbars, noisy_layers


def tables_tile(tables):
    """Returns the `(rows, cols)` tile size a tables folder was exported with (its manifest's).

    Args:
        tables: `Tables` from `load_tables`.

    Example:

    >>> tables_tile(export.load_tables("chip/"))
    (256, 256)
    """
    return check_tile(tables.manifest["mapping"]["tile"])


def _size(rows, cols):
    return f"{'any' if rows is None else rows}x{'any' if cols is None else cols}"


def crossbar_for_tiles(crossbar, tile):
    """Returns `crossbar` with the tile size of exported tables, checking that they agree.

    Args:
        crossbar: anything `mat_keras.crossbar.get` resolves (not None).
        tile: the tables' `(rows, cols)`, or a string such as `"512x256"`.

    Returns:
        A `Crossbar` whose `tile_rows` and `tile_cols` are the tables'
        (the settings it left unset take them; the rest is unchanged).

    Raises:
        InvalidArgumentError: the crossbar sets a tile size other than the
            tables' (the message names both), or a bad crossbar or tile.

    Example:

    >>> crossbar_for_tiles("standard", (512, 256)).tile_cols
    256
    >>> crossbar_for_tiles("standard", (256, 256))
    Traceback (most recent call last):
    InvalidArgumentError: The crossbar's tiles (512xany) are not the tables' tiles (256x256); ...
    """
    chip = crossbar_lib.get(crossbar)
    if chip is None:
        raise InvalidArgumentError("Simulating tables needs a crossbar, got None.")
    rows, cols = check_tile(tile)
    if (chip.tile_rows not in (None, rows)) or (chip.tile_cols not in (None, cols)):
        raise InvalidArgumentError(
            f"The crossbar's tiles ({_size(chip.tile_rows, chip.tile_cols)}) are not the tables' "
            f"tiles ({rows}x{cols}); export the tables with the crossbar's tile size or simulate "
            "a crossbar of the tables' (tile_rows=None and tile_cols=None take them)."
        )
    return crossbar_lib.Crossbar.from_config(dict(chip.get_config(), tile_rows=rows, tile_cols=cols))


def check_digital_biases(bias_mode):
    """Refuses tables whose biases sit on a crossbar row: the simulation adds biases digitally.

    Args:
        bias_mode: the tables' bias mode, `"digital"` or `"row"`.

    Raises:
        InvalidArgumentError: `bias_mode` is `"row"`.
    """
    if bias_mode == "row":
        raise InvalidArgumentError(
            "A simulated chip adds biases digitally; tables with the bias on a crossbar row "
            "(bias='row') cannot be simulated tile for tile: export them with bias='digital'."
        )


def _copy_learned_ranges(model, chip, crossbar, tile):
    """Copies the input ranges `model` was trained or calibrated with into `chip`'s wrappers.

    Only wrappers whose own crossbar, on the tables' tiles, is `crossbar`
    and whose ranges were set; they are matched by the wrapped layer's name
    and the range variables by name.
    """
    sources = {}
    for layer in noisy_layers(model):
        if layer.crossbar is None or not layer.input_ranges_are_set:
            continue
        if crossbar_for_tiles(layer.crossbar, tile) != crossbar:
            continue
        sources[layer.layer.name] = layer
    for layer in noisy_layers(chip):
        source = sources.get(layer.layer.name)
        if source is None or layer.ranges_mode is None:
            continue
        ranges = {variable.name: variable for variable in source.input_ranges.values()}
        for variable in layer.input_ranges.values():
            value = ranges.get(variable.name)
            if value is not None and tuple(value.shape) == tuple(variable.shape):
                variable.assign(np.asarray(value))
        layer.ranges_set.assign(1.0)


def simulate(
    model,
    tables,
    crossbar="standard",
    programming_noise=None,
    seed=0,
    time=0.0,
    compensation=None,
    calibration_data=None,
):
    """Returns a model computing from the tables' conductances through a crossbar, tile for tile.

    The weights are the ones `apply_tables` reads back from the tables
    (with `programming_noise`, `time` and `compensation` as there); every
    product of them is then computed through `crossbar`
    (`mat_keras.chip_model`), on the tables' own tiles. A model trained
    through the same crossbar keeps its learned input ranges; ranges never
    set are calibrated from `calibration_data`
    (`mat_keras.crossbar.calibrate_input_ranges`). The chip's read and
    output noise is seeded from `seed` apart from the programming noise
    (`mat_keras.sweep.seed_chip_noise`), so that the same seed gives the
    same outputs.

    Args:
        model: the model the tables were exported from (plain or wrapped);
            it is not modified.
        tables: a tables folder, or `Tables` from `load_tables`.
        crossbar: the chip (`mat_keras.crossbar.get`: a `Crossbar`,
            `"ideal"`, `"standard"`, a dict of settings), or None for the
            crossbar `model` was trained through. Its tile size must be the
            tables' or unset (`crossbar_for_tiles`).
        programming_noise, time, compensation: as for `apply_tables`.
        seed: integer seed of the programming noise and of the chip's noise.
        calibration_data: sample inputs (an array) for the input ranges.

    Returns:
        A new Keras model whose wrapped layers compute through the crossbar
        at inference (`model(x)`, `model.predict`, `model.evaluate`).

    Raises:
        InvalidArgumentError: the crossbar's tiles disagree with the tables',
            tables with a bias row, no crossbar given and none in `model`,
            ranges to calibrate without `calibration_data`, or a bad argument
            (see `apply_tables`).
        TableIntegrityError: the folder fails verification.

    Example:

    >>> chip = export.simulate(model, "chip/", crossbar="standard", programming_noise="pcm",
    ...                        time="1y", calibration_data=x_train[:1024])
    >>> chip.compile(loss=loss, metrics=["accuracy"])
    >>> chip.evaluate(x_test, y_test)
    """
    from mat_keras.sweep import check_chip_arguments, seed_chip_noise

    if crossbar is None:
        own = model_crossbars(model)
        crossbar = own[0] if own else None
        if crossbar is None:
            raise InvalidArgumentError(
                f"Model '{model.name}' computes through no crossbar: give one (crossbar='standard')."
            )
    seed = check_seed(seed)
    check_chip_arguments(crossbar, calibration_data)
    if not isinstance(tables, Tables):
        tables = load_tables(tables)
    tile = tables_tile(tables)
    chip = crossbar_for_tiles(crossbar, tile)
    check_digital_biases(tables.manifest["mapping"].get("bias", "digital"))
    weights = apply_tables(model, tables, programming_noise, seed, time, compensation)
    twin = chip_model(weights, chip, seed=seed)
    _copy_learned_ranges(model, twin, chip, tile)
    crossbar_lib.calibrate_if_needed(
        twin,
        calibration_data,
        f"The crossbar's input range is {chip.input_range!r}: give calibration_data "
        "(sample inputs) to set the ranges of the simulated chip.",
    )
    seed_chip_noise(twin, seed)
    return twin
