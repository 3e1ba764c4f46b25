"""Conductance-table folders: writing them, their manifest, reading them back.

A folder written by `conductance_tables` holds:

- `manifest.json`: schema version, model name, device, mapping options, per
  layer its path, class, folded BatchNorm, `.npz` file and matrices (shape,
  layout, scale, tiles with their row/column offsets, array names,
  statistics), the layers kept digital, and `files`: the sha256 and size of
  every other file of the folder.
- one `NNN_<layer>.npz` per exported layer (uncompressed; `np.load` reads
  it). For each matrix `M` (`kernel`, `recurrent_kernel`, ...):
  - differential scheme: `M.level_plus`, `M.level_minus` (level index of the
    G+ and G- device of every weight, `uint8`, or `uint16` above 256 levels),
    `M.g_plus_uS`, `M.g_minus_uS` (their conductances in microsiemens,
    float32);
  - offset scheme: `M.level`, `M.g_uS` (the reference column's conductance
    is `device.g_ref` in the manifest);
  - `M.scale`: float64, shape () or (columns,).
  A digital bias is stored as `bias` (float32, BatchNorm folded in).
- with `"csv"` in `formats`, `tiles/NNN_<layer>.<M>.r<i>c<j>.csv`, one per
  tile: a header line, then one line per cell with the row and column inside
  the tile (add the tile's offsets from the manifest for matrix
  coordinates) and `level_plus,level_minus,g_plus_uS,g_minus_uS`
  (differential) or `level,g_uS,g_ref_uS` (offset). Conductances are written
  as the shortest decimals that read back as the NPZ's float32 values.
- with `plot=True`, `plots/NNN_<layer>.<M>.map.png` and `.levels.png`.

The chip reads a weight as `w = s * (G+ - G-) / (g_hi - g_lo)` (differential)
or `w = s * 2 * (G - g_ref) / (g_hi - g_lo)` (offset), `s` the matrix's (or
column's) scale: multiply the column current difference by
`s / (g_hi - g_lo)` to get the layer's pre-activation.
"""

import json
from pathlib import Path

import keras
import numpy as np

from mat_keras import layers as layer_table
from mat_keras.devices import Device
from mat_keras.export import files, graph, mapping, weights
from mat_keras.export.errors import SchemaVersionError, TableIntegrityError
from mat_keras.export.summary import ExportSummary, MatrixSummary
from mat_keras.crossbar.tiles import Tile, check_tile, grid_shape, tile_grid
from mat_keras.errors import InvalidArgumentError, MatKerasError

#: Version of the manifest layout this code writes and the newest it reads.
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
FORMATS = ("npz", "csv")
_CSV_HEADERS = {
    "differential": "row,column,level_plus,level_minus,g_plus_uS,g_minus_uS",
    "offset": "row,column,level,g_uS,g_ref_uS",
}


def default_device():
    """The default device: 1-40 uS (NeuRRAM's range), 16 levels, differential."""
    return Device(g_min=1e-6, g_max=40e-6, levels=16)


def resolve_device(device):
    """Returns a `Device` from a `Device`, a config dict or None (the default)."""
    if device is None:
        return default_device()
    if isinstance(device, dict):
        device = Device.from_config(device)
    if not isinstance(device, Device):
        raise InvalidArgumentError(f"device must be an export.Device, got {type(device).__name__}.")
    if device.levels is None:
        raise InvalidArgumentError("The tables need a device with levels: an integer >= 2 or a list of conductances.")
    return device


def check_formats(formats):
    """Returns the formats as a tuple; `"npz"` is required, `"csv"` optional.

    Args:
        formats: a sequence of names, or a comma-separated string.

    Raises:
        InvalidArgumentError: an unknown format, or no `"npz"`.
    """
    if isinstance(formats, str):
        formats = [part.strip() for part in formats.split(",") if part.strip()]
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InvalidArgumentError(
            f"Unknown table format {unknown[0]!r}; choose from {', '.join(FORMATS)}."
        )
    if "npz" not in formats:
        raise InvalidArgumentError(
            "formats must include 'npz' (the tables load_tables reads); 'csv' is an extra."
        )
    return formats


def conductance_tables(
    model,
    out_dir,
    device=None,
    tile=(256, 256),
    formats=("npz", "csv"),
    overwrite=False,
    scale="max",
    per="layer",
    bias="digital",
    fold_batchnorm=True,
    plot=False,
):
    """Writes the conductance tables of a model's weights to `out_dir`.

    Every Dense, convolution and RNN kernel becomes a matrix (see
    `mat_keras.layers`), BatchNorms after a Dense/Conv fold into it, each
    matrix is scaled, mapped to the device's nearest levels, split into
    tiles and written (see this module's docstring for the files). The
    folder appears complete or not at all: it is written next to `out_dir`
    under a temporary name and renamed into place.

    Args:
        model: a built Keras model (`NoisyWeights` layers are stripped).
        out_dir: folder to create.
        device: an `export.Device` (default: 1-40 uS, 16 levels,
            differential) or its config dict.
        tile: `(rows, cols)` of a crossbar tile, in weights (see
            `mat_keras.crossbar.tiles`), or `"256x256"`.
        formats: `("npz",)` or `("npz", "csv")`.
        overwrite: replace an existing table folder.
        scale: `"max"` (max |w|) or `("percentile", q)`: weights beyond the
            q-th percentile of |w| are clipped.
        per: `"layer"` (one scale per matrix) or `"column"`.
        bias: `"digital"` (kept in the `.npz` as floats) or `"row"` (mapped
            as an extra matrix row driven at 1).
        fold_batchnorm: fold BatchNorms into the preceding Dense/Conv.
        plot: also draw each matrix's conductance map and level histogram.

    Returns:
        An `ExportSummary`.

    Raises:
        InvalidArgumentError: a bad argument, or a layer with unsupported
            weights (`UnsupportedLayerError`, naming it).
        OutputExistsError: `out_dir` exists and `overwrite` is False.

    Example:

    >>> device = export.Device(g_min=1e-6, g_max=40e-6, levels=16)
    >>> summary = export.conductance_tables(model, "chip/", device=device, tile=(256, 256))
    >>> print(summary.table())
    """
    # Check everything before touching the disk: a bad input leaves nothing.
    device = resolve_device(device)
    tile = check_tile(tile)
    formats = check_formats(formats)
    scale_method = mapping.check_scale(scale)
    mapping.check_per(per)
    weights.check_bias_mode(bias)
    model = weights.plain_model(model)
    plan = graph.plan_model(model, fold_batchnorm=fold_batchnorm)
    if not plan.entries:
        raise InvalidArgumentError(f"Model '{model.name}' has no Dense, Conv or RNN weights to export.")
    files.check_output_dir(out_dir, overwrite)
    options = {
        "scale": scale_method[0] if scale_method[1] is None else list(scale_method),
        "per": per,
        "bias": bias,
        "tile": list(tile),
        "fold_batchnorm": bool(fold_batchnorm),
        "formats": list(formats),
    }
    with files.staged_folder(out_dir, overwrite) as staging:
        written = {}
        records, summaries = [], []
        for number, entry in enumerate(plan.entries):
            record, matrix_summaries = _export_layer(
                number, entry, staging, device, options, written
            )
            records.append(record)
            summaries.extend(matrix_summaries)
        if plot:
            from mat_keras.export import plots  # matplotlib only when asked

            for record in records:
                for name in plots.draw_layer(staging, record, device):
                    written[name] = _file_record(staging / name)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "format": "mat-keras conductance tables",
            "model": model.name,
            "created_with": _versions(),
            "device": {
                **device.get_config(),
                "levels_S": device.levels.values.tolist(),
                "g_ref_S": device.g_ref,
            },
            "mapping": options,
            "layers": records,
            "digital_layers": [
                {"path": list(path), "class_name": type(layer).__name__} for path, layer in plan.digital
            ],
            "files": dict(sorted(written.items())),
        }
        with open(staging / MANIFEST, "w", encoding="utf-8") as file:
            json.dump(manifest, file, indent=1)
            file.write("\n")
    return ExportSummary(
        out_dir=str(out_dir),
        device=device,
        matrices=summaries,
        digital=["/".join(path) for path, _ in plan.digital],
        files=len(written) + 1,
    )


def _versions():
    from mat_keras import __version__

    return {"mat_keras": __version__, "keras": keras.__version__, "numpy": np.__version__}


def _file_record(path):
    return {"sha256": files.sha256_of(path), "bytes": path.stat().st_size}


def _array_names(name, scheme):
    if scheme == "differential":
        keys = ("level_plus", "level_minus", "g_plus_uS", "g_minus_uS", "scale")
    else:
        keys = ("level", "g_uS", "scale")
    return {key: f"{name}.{key}" for key in keys}


def _export_layer(number, entry, staging, device, options, written):
    matrices, digital_bias = weights.extract(entry, options["bias"])
    stem = f"{number:03d}_{files.safe_name(entry.name)}"
    npz_name = f"{stem}.npz"
    record = {
        "path": list(entry.path),
        "name": entry.name,
        "class_name": type(entry.layer).__name__,
        "folded_batchnorm": list(entry.batchnorm_path) if entry.batchnorm_path else None,
        "file": npz_name,
        "bias_attr": entry.spec.bias_attr,
        "bias": None,
        "matrices": [],
    }
    summaries = []
    with files.NpzWriter(staging / npz_name) as npz:
        for extracted in matrices:
            matrix_record, summary = _export_matrix(npz, stem, entry, extracted, staging, device, options, written)
            extracted.matrix = None  # free the float matrix before the next one
            record["matrices"].append(matrix_record)
            summaries.append(summary)
        if digital_bias is not None:
            npz.write("bias", digital_bias)
            record["bias"] = {"mode": "digital", "array": "bias", "shape": list(digital_bias.shape)}
        elif any(m["bias_row"] for m in record["matrices"]):
            record["bias"] = {"mode": "row"}
    written[npz_name] = _file_record(staging / npz_name)
    return record, summaries


def _export_matrix(npz, stem, entry, extracted, staging, device, options, written):
    spec = extracted.spec
    matrix = extracted.matrix
    scale_value = mapping.compute_scale(matrix, options["scale"], options["per"])
    mapped = mapping.map_matrix(matrix, scale_value, device)
    names = _array_names(spec.name, device.scheme)
    _write_levels(npz, names, mapped, device)
    npz.write(names["scale"], mapped.scale)
    tiles = tile_grid(matrix.shape, options["tile"])
    tile_records = [tile.to_dict() for tile in tiles]
    if "csv" in options["formats"]:
        for tile, tile_record in zip(tiles, tile_records):
            i, j = tile.index
            name = f"tiles/{stem}.{spec.name}.r{i}c{j}.csv"
            (staging / "tiles").mkdir(exist_ok=True)
            _write_tile_csv(staging / name, tile, mapped, device)
            tile_record["csv"] = name
            written[name] = _file_record(staging / name)
    grid = grid_shape(matrix.shape, options["tile"])
    record = {
        "name": spec.name,
        "variable": spec.attr,
        "variable_shape": list(extracted.variable_shape),
        "shape": list(matrix.shape),
        "layout": spec.layout,
        **({"inputs_last": True} if spec.inputs_last else {}),
        "bias_row": extracted.bias_row,
        "bias_part": spec.bias_part if extracted.bias_row else None,
        "scale": float(scale_value) if scale_value.ndim == 0 else scale_value.tolist(),
        "arrays": names,
        "grid": list(grid),
        "tiles": tile_records,
        "stats": {
            "max_error": mapped.max_error,
            "max_error_steps": mapped.max_error_steps,
            "rms_error": mapped.rms_error,
            "clipped_fraction": mapped.clipped_fraction,
            "level_counts": mapped.level_counts.tolist(),
        },
    }
    summary = MatrixSummary(
        layer=entry.name,
        matrix=spec.name,
        shape=tuple(matrix.shape),
        grid=grid,
        scale=mapped.scale,
        max_error=mapped.max_error,
        max_error_steps=mapped.max_error_steps,
        rms_error=mapped.rms_error,
        clipped_fraction=mapped.clipped_fraction,
        level_fractions=mapped.level_fractions,
        folded_batchnorm="/".join(entry.batchnorm_path) if entry.batchnorm_path else None,
    )
    return record, summary


def _blocks_of(array, rows_per_block=None):
    rows = array.shape[0]
    step = rows_per_block or max(1, mapping.BLOCK_ELEMENTS // max(1, array.shape[1]))
    for start in range(0, rows, step):
        yield array[start:start + step]


def _write_levels(npz, names, mapped, device):
    shape = mapped.level_plus.shape
    if device.scheme == "differential":
        sides = (("level_plus", "g_plus_uS", mapped.level_plus), ("level_minus", "g_minus_uS", mapped.level_minus))
    else:
        sides = (("level", "g_uS", mapped.level_plus),)
    for level_key, g_key, levels in sides:
        npz.write(names[level_key], levels)
        npz.write_blocks(
            names[g_key],
            np.float32,
            shape,
            (mapping.conductances(block, device) for block in _blocks_of(levels)),
        )


def _write_tile_csv(path, tile, mapped, device):
    rows, cols = tile.slices
    count = device.num_levels
    g_text = files.format_float32(device.levels.values / 1e-6)
    if device.scheme == "differential":
        # One code per (plus, minus) pair: one side is always level 0.
        plus = mapped.level_plus[rows, cols].astype(np.int64)
        minus = mapped.level_minus[rows, cols].astype(np.int64)
        codes = plus - minus + (count - 1)
        suffixes = []
        for code in range(2 * count - 1):
            p, m = max(code - (count - 1), 0), max((count - 1) - code, 0)
            suffixes.append(f"{p},{m},{g_text[p]},{g_text[m]}")
    else:
        codes = mapped.level_plus[rows, cols].astype(np.int64)
        g_ref = files.format_float32([device.g_ref / 1e-6])[0]
        suffixes = [f"{k},{g_text[k]},{g_ref}" for k in range(count)]
    files.write_csv(
        path,
        _CSV_HEADERS[device.scheme],
        [f"{r}," for r in range(tile.rows)],
        [f"{c}," for c in range(tile.cols)],
        codes,
        suffixes,
    )


# -- reading back -------------------------------------------------------------


class MatrixTable:
    """One matrix of loaded tables.

    Attributes:
        name: matrix name (`"kernel"`, ...).
        layer: the layer's path joined with `/`.
        variable: attribute path of the Keras variable (`"cell.kernel"`).
        variable_shape: shape of that variable.
        shape: `(rows, cols)` of the matrix (bias row included).
        layout: how the kernel unrolls.
        unrolling: the `mat_keras.layers.Matrix` that rolls the matrix back
            into its variable (the manifest's `inputs_last`: a transposed
            convolution's input axis comes first).
        bias_row: True when the last row is the bias.
        bias_part: which bias it is (`"all"`, 0 or 1) when `bias_row`.
        scale: float64 array, shape () or (cols,).
        tiles: list of `mat_keras.crossbar.Tile`.
        arrays: dict of the matrix's arrays by key (`"level_plus"`, ...).
        device: the `export.Device`.
        stats: the statistics recorded at export.
    """

    def __init__(self, record, arrays, device, layer):
        self.name = record["name"]
        self.layer = layer
        self.variable = record["variable"]
        self.variable_shape = tuple(record["variable_shape"])
        self.shape = tuple(record["shape"])
        self.layout = record["layout"]
        self.bias_row = bool(record["bias_row"])
        self.bias_part = record.get("bias_part")
        # How the matrix unrolls its variable (the input axis moved first, or not).
        self.unrolling = layer_table.Matrix(self.name, self.variable, inputs_last=bool(record.get("inputs_last")))
        self.tiles = [Tile.from_dict(t) for t in record["tiles"]]
        self.stats = record.get("stats", {})
        self.device = device
        self.arrays = {key: arrays[name] for key, name in record["arrays"].items()}
        self.scale = np.asarray(self.arrays["scale"], dtype=np.float64)
        for key, value in self.arrays.items():
            if key != "scale" and value.shape != self.shape:
                raise TableIntegrityError(
                    f"Array {record['arrays'][key]} of layer '{layer}' has shape {value.shape}, "
                    f"the manifest says {self.shape}."
                )

    @property
    def level_plus(self):
        """Level indices of G+ (differential) or of the single device (offset)."""
        return self.arrays.get("level_plus", self.arrays.get("level"))

    @property
    def level_minus(self):
        """Level indices of G- (differential), else None."""
        return self.arrays.get("level_minus")

    def weights(self):
        """The weights the levels stand for, as the matrix (float32)."""
        return mapping.dequantise(self.level_plus, self.level_minus, self.scale, self.device)

    def split(self, matrix):
        """Returns `(kernel, bias_row)`: `matrix` reshaped to the variable, bias row apart."""
        bias = None
        if self.bias_row:
            matrix, bias = matrix[:-1], matrix[-1]
        return self.unrolling.roll(matrix, self.variable_shape), bias

    def __repr__(self):
        return f"<MatrixTable {self.layer}/{self.name} {self.shape[0]}x{self.shape[1]}, {len(self.tiles)} tiles>"


class LayerTable:
    """The tables of one layer.

    Attributes:
        path: tuple of names from the top model.
        name: the path joined with `/`.
        class_name: the Keras class of the layer.
        folded_batchnorm: path (tuple) of the BatchNorm folded into it, or None.
        bias_attr: attribute path of the layer's bias variable.
        bias: the digital bias (float32 array) or None.
        matrices: dict of `MatrixTable` by name, in layer order.
        file: the `.npz` file name.
    """

    def __init__(self, record, arrays, device):
        self.path = tuple(record["path"])
        self.name = record["name"]
        self.class_name = record["class_name"]
        folded = record.get("folded_batchnorm")
        self.folded_batchnorm = tuple(folded) if folded else None
        self.bias_attr = record.get("bias_attr")
        self.file = record["file"]
        bias = record.get("bias")
        self.bias = arrays[bias["array"]] if bias and bias.get("mode") == "digital" else None
        self.matrices = {
            m["name"]: MatrixTable(m, arrays, device, self.name) for m in record["matrices"]
        }

    def __repr__(self):
        return f"<LayerTable {self.name} ({self.class_name}): {', '.join(self.matrices)}>"


class Tables:
    """Conductance tables read back by `load_tables`.

    Attributes:
        directory: the folder.
        manifest: the parsed `manifest.json`.
        device: the `export.Device`.
        layers: list of `LayerTable`, in model order.

    Example:

    >>> tables = export.load_tables("chip/")
    >>> tables["hidden"].matrices["kernel"].weights().shape
    (784, 128)
    """

    def __init__(self, directory, manifest, device, layers):
        self.directory = Path(directory)
        self.manifest = manifest
        self.device = device
        self.layers = layers

    def __getitem__(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        return f"<Tables {self.directory}: {len(self.layers)} layers, {self.device!r}>"


def read_manifest(directory):
    """Returns the parsed, version-checked manifest of a tables folder.

    Raises:
        TableIntegrityError: an unfinished export's temporary folder, no
            manifest, or not valid JSON.
        SchemaVersionError: written by a newer schema.
    """
    directory = Path(directory)
    # Such a folder may hold a complete manifest (a kill just before the
    # rename), yet it is no export's result.
    if files.is_staging_folder(directory):
        raise TableIntegrityError(
            f"'{directory}' is an unfinished export's staging folder, not a conductance-table folder; "
            "run the export again."
        )
    path = directory / MANIFEST
    if not path.is_file():
        raise TableIntegrityError(f"'{directory}' holds no {MANIFEST}; it is not a conductance-table folder.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise TableIntegrityError(f"{MANIFEST} in '{directory}' is not valid JSON ({error}).") from None
    if not isinstance(manifest, dict):
        raise TableIntegrityError(f"{MANIFEST} in '{directory}' is not a JSON object.")
    version = manifest.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TableIntegrityError(f"{MANIFEST} in '{directory}' has no valid schema_version.")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{MANIFEST} in '{directory}' has schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this mat-keras reads; upgrade mat-keras."
        )
    return manifest


def verify_files(directory, manifest):
    """Checks that every file the manifest lists exists with its sha256.

    Raises:
        TableIntegrityError: a file is missing, unlisted yet referenced, or
            its checksum differs; the message names it.
    """
    directory = Path(directory)
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise TableIntegrityError(f"{MANIFEST} in '{directory}' has no file list.")
    for name in _referenced_files(manifest):
        if name not in listed:
            raise TableIntegrityError(f"File '{name}' is used by {MANIFEST} but has no checksum in it.")
    for name, record in listed.items():
        path = files.resolve_inside(directory, name)
        if not path.is_file():
            raise TableIntegrityError(f"File '{name}' listed in {MANIFEST} is missing from '{directory}'.")
        expected = record.get("sha256") if isinstance(record, dict) else None
        if files.sha256_of(path) != expected:
            raise TableIntegrityError(
                f"File '{name}' in '{directory}' does not match its sha256 in {MANIFEST}; "
                "it was modified or corrupted."
            )


def _referenced_files(manifest):
    for layer in manifest.get("layers", []):
        yield layer["file"]
        for matrix in layer.get("matrices", []):
            for tile in matrix.get("tiles", []):
                if "csv" in tile:
                    yield tile["csv"]


def load_tables(directory):
    """Reads a conductance-table folder, verifying schema and checksums.

    Args:
        directory: a folder written by `conductance_tables`.

    Returns:
        A `Tables`.

    Raises:
        TableIntegrityError: missing, tampered or malformed files (the
            message names the file).
        SchemaVersionError: the manifest comes from a newer schema.

    Example:

    >>> tables = export.load_tables("chip/")
    >>> [layer.name for layer in tables]
    ['hidden', 'logits']
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    try:
        verify_files(directory, manifest)
        device = Device.from_config(manifest["device"])
        layers = []
        for record in manifest["layers"]:
            arrays = _read_npz(directory, record["file"])
            layers.append(LayerTable(record, arrays, device))
    except TableIntegrityError:
        raise
    except (MatKerasError, KeyError, TypeError, ValueError, AttributeError) as error:
        detail = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
        raise TableIntegrityError(f"{MANIFEST} in '{directory}' is malformed: {detail}.") from error
    return Tables(directory, manifest, device, layers)


def _read_npz(directory, name):
    path = files.resolve_inside(directory, name)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as error:
        raise TableIntegrityError(f"File '{name}' cannot be read as NPZ ({error}).") from error
