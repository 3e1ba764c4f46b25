"""Round trip, for every layer type: weights -> levels -> files -> weights.

The expected matrices are computed here from the model's own variables (and
the BatchNorm statistics), independently of the exporter's code.
"""

import numpy as np
import pytest

import export_cases
from export_cases import L
from mat_keras.export import Device, UnsupportedLayerError, apply_tables, conductance_tables, load_tables

# The core subset: CI runs it on the JAX and PyTorch backends too (`pytest -m backends`).
pytestmark = pytest.mark.backends

# matrix name -> (variable attribute, trailing axes forming columns, bias part);
# TRANSPOSED: the kernel (k..., cout, cin) with its input axis first, cin rows.
TRANSPOSED = "inputs first"
DENSE_LIKE = {"kernel": ("kernel", 1, "all")}
RNN = {"kernel": ("cell.kernel", 1, "all"), "recurrent_kernel": ("cell.recurrent_kernel", 1, None)}
EXPECTED = {
    "Dense": DENSE_LIKE,
    "Conv1D": DENSE_LIKE,
    "Conv2D": DENSE_LIKE,
    "Conv3D": DENSE_LIKE,
    "Conv1DTranspose": {"kernel": ("kernel", TRANSPOSED, None)},
    "Conv2DTranspose": {"kernel": ("kernel", TRANSPOSED, None)},
    "Conv3DTranspose": {"kernel": ("kernel", TRANSPOSED, None)},
    "DepthwiseConv2D": {"kernel": ("kernel", 2, "all")},
    "SeparableConv2D": {
        "depthwise_kernel": ("depthwise_kernel", 2, None),
        "pointwise_kernel": ("pointwise_kernel", 1, "all"),
    },
    "SimpleRNN": RNN,
    "LSTM": RNN,
    # reset_after=True: two bias vectors, input one under kernel, recurrent one under recurrent_kernel.
    "GRU": {"kernel": ("cell.kernel", 1, 0), "recurrent_kernel": ("cell.recurrent_kernel", 1, 1)},
    "Dense+BN": DENSE_LIKE,
    "Conv2D+BN": DENSE_LIKE,
}

SETTINGS = {
    "differential-layer-digital": dict(device=Device(1e-6, 40e-6, 16), per="layer", bias="digital"),
    "offset-column-row": dict(device=Device(1e-6, 40e-6, 9, scheme="offset"), per="column", bias="row"),
}


def _get(layer, dotted):
    return export_cases.to_numpy(export_cases.getattr_path(layer, dotted)).astype(np.float64)


def expected_matrices(model, case, bias_mode):
    """The float matrices the tables must hold, computed from the variables."""
    layer = model.get_layer("layer")
    matrices = {}
    for name, (attr, column_axes, _) in EXPECTED[case].items():
        kernel = _get(layer, attr)
        if column_axes == TRANSPOSED:
            matrices[name] = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1)
            continue
        columns = int(np.prod(kernel.shape[kernel.ndim - column_axes:]))
        matrices[name] = kernel.reshape(-1, columns)
    bias_attr = "cell.bias" if hasattr(layer, "cell") else "bias"
    bias = _get(layer, bias_attr) if getattr(layer, "use_bias", True) else None
    if case.endswith("+BN"):
        gamma, beta, mean, variance = [export_cases.to_numpy(w) for w in model.get_layer("bn").weights]
        factor = gamma / np.sqrt(variance + model.get_layer("bn").epsilon)
        matrices["kernel"] = matrices["kernel"] * factor
        bias = (0 if bias is None else bias) * factor + beta - mean * factor
    if bias_mode == "row":
        for name, (_, _, part) in EXPECTED[case].items():
            if part is not None:
                row = bias if part == "all" else bias[part]
                matrices[name] = np.vstack([matrices[name], row[None, :]])
        bias = None
    return matrices, bias


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("case", list(export_cases.LAYER_CASES))
def test_round_trip_error_is_at_most_half_a_level_step(case, setting, tmp_path):
    model, x = export_cases.build_case(case)
    options = SETTINGS[setting]
    device = options["device"]
    summary = conductance_tables(model, tmp_path / "t", tile=(5, 4), formats=("npz",), **options)
    tables = load_tables(tmp_path / "t")
    expected, expected_bias = expected_matrices(model, case, options["bias"])
    (layer_table,) = tables.layers
    assert list(layer_table.matrices) == list(expected)
    assert layer_table.folded_batchnorm == (("bn",) if case.endswith("+BN") else None)
    for name, matrix in expected.items():
        table = layer_table.matrices[name]
        assert table.shape == matrix.shape
        axis = None if options["per"] == "layer" else 0
        np.testing.assert_allclose(table.scale, np.max(np.abs(matrix), axis=axis), rtol=1e-6)
        error = np.abs(table.weights() - np.clip(matrix, -table.scale, table.scale))
        bound = device.weight_step / 2 * table.scale
        assert np.all(error <= bound * (1 + 1e-5) + 1e-7), (name, float(np.max(error / bound)))
        assert table.stats["max_error_steps"] <= 0.5 + 1e-5
    if expected_bias is None:
        assert layer_table.bias is None
    else:
        np.testing.assert_allclose(layer_table.bias, expected_bias, rtol=1e-5, atol=1e-6)
    assert [m.matrix for m in summary.matrices] == list(expected)

    # The re-imported model holds exactly the dequantised weights.
    chip = apply_tables(model, tmp_path / "t")
    chip_layer = chip.get_layer("layer")
    for name, (attr, _, _) in EXPECTED[case].items():
        table = layer_table.matrices[name]
        kernel, _ = table.split(table.weights())
        np.testing.assert_array_equal(_get(chip_layer, attr), kernel)
    assert chip.get_layer("bn").__class__.__name__ == "Identity" if case.endswith("+BN") else True
    assert np.all(np.isfinite(export_cases.to_numpy(chip(x))))


def test_percentile_scale_clips_and_bounds_the_clipped_error(tmp_path):
    model, _ = export_cases.build_case("Dense")
    device = Device(1e-6, 40e-6, 8)
    conductance_tables(model, tmp_path / "t", device=device, scale=("percentile", 90), formats="npz")
    table = load_tables(tmp_path / "t")["layer"].matrices["kernel"]
    kernel = export_cases.to_numpy(model.get_layer("layer").kernel)
    assert table.scale == pytest.approx(np.percentile(np.abs(kernel), 90))
    assert table.stats["clipped_fraction"] == pytest.approx(np.mean(np.abs(kernel) > table.scale))
    error = np.abs(table.weights() - np.clip(kernel, -table.scale, table.scale))
    assert error.max() <= device.weight_step / 2 * table.scale * (1 + 1e-5)


def test_measured_levels_round_trip_within_half_the_largest_gap(tmp_path):
    model, _ = export_cases.build_case("Conv2D")
    device = Device(1e-6, 40e-6, [1e-6, 2e-6, 4.5e-6, 9e-6, 16e-6, 26e-6, 40e-6])
    conductance_tables(model, tmp_path / "t", device=device, formats="npz")
    table = load_tables(tmp_path / "t")["layer"].matrices["kernel"]
    kernel = export_cases.to_numpy(model.get_layer("layer").kernel).reshape(-1, 4)
    error = np.abs(table.weights() - kernel)
    assert error.max() <= device.weight_step / 2 * table.scale * (1 + 1e-5)
    # Every device sits exactly on a measured level (in microsiemens).
    g = table.arrays["g_plus_uS"]
    assert np.all(np.isin(g, (device.levels.values * 1e6).astype(np.float32)))


def test_conv_layout_is_the_im2col_order():
    # out[b, i, j, :] = patch(b, i, j) @ M + bias with the patch flattened in (y, x, c) order.
    model, x = export_cases.build_case("Conv2D")
    layer = model.get_layer("layer")
    matrix = export_cases.to_numpy(layer.kernel).reshape(-1, 4)
    patches = np.stack(
        [x[:, i:i + 3, j:j + 3, :].reshape(len(x), -1) for i in range(4) for j in range(4)], axis=1
    )
    expected = patches @ matrix + export_cases.to_numpy(layer.bias)
    np.testing.assert_allclose(export_cases.to_numpy(model(x)).reshape(len(x), 16, 4), expected, rtol=1e-4, atol=1e-5)


def test_depthwise_layout_column_c_times_multiplier_plus_m_reads_channel_c():
    model, x = export_cases.build_case("DepthwiseConv2D")
    layer = model.get_layer("layer")
    matrix = export_cases.to_numpy(layer.kernel).reshape(9, 6)  # (3*3) x (3 channels * 2)
    out = export_cases.to_numpy(model(x))
    bias = export_cases.to_numpy(layer.bias)
    for c in range(3):
        for m in range(2):
            column = c * 2 + m
            patch = x[:, 1:4, 2:5, c].reshape(len(x), -1)  # output position (1, 2)
            np.testing.assert_allclose(out[:, 1, 2, column], patch @ matrix[:, column] + bias[column], rtol=1e-4, atol=1e-5)


def test_transposed_conv_layout_drives_cin_rows_and_scatters_the_columns(tmp_path):
    # Input pixel (i, j) drives the rows with its cin values; its row of
    # products, read as (y, x, cout), is added to the output at (2i + y, 2j + x).
    model = export_cases._model((4, 4, 3), L.Conv2DTranspose(5, 3, strides=2, name="layer"), name="up")
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    layer = model.get_layer("layer")
    layer.bias.assign(np.random.default_rng(1).normal(size=5).astype("float32"))
    conductance_tables(model, tmp_path / "t", formats=("npz",))
    table = load_tables(tmp_path / "t")["layer"].matrices["kernel"]
    assert table.shape == (3, 3 * 3 * 5)
    kernel = export_cases.to_numpy(layer.kernel)
    matrix = np.moveaxis(kernel, -1, 0).reshape(3, -1)
    expected = np.zeros((2, 9, 9, 5), "float32")
    for i in range(4):
        for j in range(4):
            expected[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3, :] += (x[:, i, j, :] @ matrix).reshape(2, 3, 3, 5)
    expected += export_cases.to_numpy(layer.bias)
    np.testing.assert_allclose(export_cases.to_numpy(model(x)), expected, rtol=1e-4, atol=1e-5)
    # Re-imported: the kernel the tables' levels stand for, rolled back exactly.
    chip = apply_tables(model, tmp_path / "t")
    want = np.moveaxis(table.weights().reshape(3, 3, 3, 5), 0, -1)
    np.testing.assert_array_equal(export_cases.to_numpy(chip.get_layer("layer").kernel), want)
    np.testing.assert_array_equal(export_cases.to_numpy(chip.get_layer("layer").bias), export_cases.to_numpy(layer.bias))


def test_transposed_conv_bias_is_no_bias_row(tmp_path):
    model = export_cases._model((4, 4, 3), L.Conv2DTranspose(5, 3, name="layer"), name="up")
    with pytest.raises(UnsupportedLayerError, match="Layer 'layer' cannot take bias='row': a transposed"):
        conductance_tables(model, tmp_path / "t", bias="row")
