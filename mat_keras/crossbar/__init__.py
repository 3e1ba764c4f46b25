"""The chip forward: layers computed as a memristor crossbar computes them.

`Crossbar` holds a tile's settings (tile size, DAC and ADC, output bound,
read and output noise, IR drop, weight scaling), resolved from an alias
(`"ideal"`, `"standard"`) or a dict by `get`. `analog_product` computes one
matrix's product through it, tile by tile, with the exporter's own tile split
(`tiles`); `products` says how a layer's inputs drive a tile's rows;
`forward.chip_call` computes a whole layer of the layer table (or a container
of such) that way; `calibrate_input_ranges` sets the input ranges from data.
`NoisyWeights(crossbar=...)`, `mat_keras.wrap(crossbar=...)` and
`mat_keras.chip_model` put it on a model.

Example:

>>> import mat_keras as mat
>>> chip = mat.crossbar.get("standard")
>>> y = mat.crossbar.analog_matmul(x, kernel, chip, input_ranges=3.0, seed=0)
>>> on_chip = mat.chip_model(model, "standard")
>>> mat.crossbar.calibrate_input_ranges(on_chip, x_train[:1024])
"""

from mat_keras.crossbar.analog import (
    analog_matmul,
    analog_product,
    exact_product,
    ir_drop_loss,
    ir_drop_profile,
    prepare_matrix,
    row_tiles,
    tile_sums,
    weight_scale,
)
from mat_keras.crossbar.calibration import (
    calibrate_if_needed,
    calibrate_input_ranges,
    input_ranges_from_data,
    needs_calibration,
)
from mat_keras.crossbar.config import (
    Crossbar,
    aliases,
    deserialize,
    get,
    ideal,
    serialize,
    standard,
    steps_from_bits,
)
from mat_keras.crossbar.forward import chip_call, product_layers, register_chip_forward
from mat_keras.crossbar.products import MATMUL, KernelProduct, MatmulProduct
from mat_keras.crossbar.tiles import Tile, check_tile, grid_shape, tile_grid

__all__ = [
    "Crossbar",
    "KernelProduct",
    "MATMUL",
    "MatmulProduct",
    "calibrate_if_needed",
    "calibrate_input_ranges",
    "chip_call",
    "needs_calibration",
    "product_layers",
    "register_chip_forward",
    "Tile",
    "aliases",
    "analog_matmul",
    "analog_product",
    "check_tile",
    "deserialize",
    "exact_product",
    "get",
    "grid_shape",
    "ideal",
    "input_ranges_from_data",
    "ir_drop_loss",
    "ir_drop_profile",
    "prepare_matrix",
    "row_tiles",
    "serialize",
    "standard",
    "steps_from_bits",
    "tile_grid",
    "tile_sums",
    "weight_scale",
]
