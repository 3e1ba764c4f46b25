"""What an export did, per matrix: the object `conductance_tables` returns."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class MatrixSummary:
    """One exported matrix.

    Attributes:
        layer: the layer's path, names joined with `/`.
        matrix: the matrix name (`"kernel"`, `"recurrent_kernel"`, ...).
        shape: `(rows, cols)` of the matrix (a bias row included).
        grid: `(tile_rows, tile_cols)`: how many tiles cover it.
        scale: float64 array, shape () or (cols,).
        max_error: largest |clipped weight - reconstructed|, weight units.
        max_error_steps: the same in level steps (<= 0.5).
        rms_error: RMS of original - reconstructed, clipping included.
        clipped_fraction: fraction of weights beyond the scale.
        level_fractions: fraction of devices at each level (idle ones too).
        folded_batchnorm: path of a BatchNorm folded into the layer, or None.
    """

    layer: str
    matrix: str
    shape: tuple
    grid: tuple
    scale: np.ndarray
    max_error: float
    max_error_steps: float
    rms_error: float
    clipped_fraction: float
    level_fractions: np.ndarray
    folded_batchnorm: str = None

    @property
    def tiles(self):
        """Number of tiles."""
        return self.grid[0] * self.grid[1]

    def scale_text(self):
        """The scale, or its range for per-column scales, as text."""
        scale = np.asarray(self.scale)
        if scale.ndim == 0:
            return f"{float(scale):.4g}"
        return f"{scale.min():.3g}-{scale.max():.3g}"

    def to_dict(self):
        scale = np.asarray(self.scale)
        return {
            "layer": self.layer,
            "matrix": self.matrix,
            "shape": list(self.shape),
            "grid": list(self.grid),
            "tiles": self.tiles,
            "scale": float(scale) if scale.ndim == 0 else scale.tolist(),
            "max_error": self.max_error,
            "max_error_steps": self.max_error_steps,
            "rms_error": self.rms_error,
            "clipped_fraction": self.clipped_fraction,
            "level_fractions": np.asarray(self.level_fractions).tolist(),
            "folded_batchnorm": self.folded_batchnorm,
        }


@dataclasses.dataclass
class ExportSummary:
    """The result of `export.conductance_tables`.

    Attributes:
        out_dir: the folder written.
        device: the `export.Device`.
        matrices: `MatrixSummary` of every exported matrix, in model order.
        digital: paths of layers whose weights stay digital.
        files: number of files written (manifest included).

    Example:

    >>> summary = export.conductance_tables(model, "chip/", device=device)
    >>> print(summary.table())
    """

    out_dir: str
    device: object
    matrices: list
    digital: list
    files: int

    @property
    def weights(self):
        """Total number of exported matrix cells."""
        return sum(m.shape[0] * m.shape[1] for m in self.matrices)

    def table(self):
        """Returns the per-matrix summary as an aligned text table.

        Columns: matrix (layer/matrix), shape, tiles (grid), scale, max and
        RMS error (weight units; max also in level steps), clipped share,
        and the percentage of devices at each level, level 0 first.
        """
        header = ("matrix", "shape", "tiles", "scale", "max err (steps)", "rms err", "clip %", "devices per level %, level 0 first")
        rows = []
        for m in self.matrices:
            name = f"{m.layer}/{m.matrix}"
            if m.folded_batchnorm:
                name += " (+BN)"
            rows.append(
                (
                    name,
                    f"{m.shape[0]}x{m.shape[1]}",
                    f"{m.grid[0]}x{m.grid[1]}",
                    m.scale_text(),
                    f"{m.max_error:.3g} ({m.max_error_steps:.2f})",
                    f"{m.rms_error:.3g}",
                    f"{100 * m.clipped_fraction:.2f}",
                    _level_text(m.level_fractions),
                )
            )
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        device = self.device
        lines.append(
            f"{len(self.matrices)} matrices, {self.weights:,} weights, "
            f"{device.num_levels} levels, {device.scheme}, "
            f"g {device.g_min * 1e6:g}-{device.g_max * 1e6:g} uS; {self.files} files in {self.out_dir}"
        )
        if self.digital:
            lines.append("kept digital: " + ", ".join(self.digital))
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def to_dict(self):
        return {
            "out_dir": str(self.out_dir),
            "device": self.device.get_config(),
            "matrices": [m.to_dict() for m in self.matrices],
            "digital": list(self.digital),
            "files": self.files,
        }


def _level_text(fractions):
    # Whole percents keep 16 levels within ~50 characters; a used level
    # below 0.5 % shows as "<1" rather than a misleading 0.
    parts = []
    for fraction in np.asarray(fractions, dtype=np.float64):
        percent = 100.0 * fraction
        parts.append("<1" if 0 < percent < 0.5 else f"{percent:.0f}")
    if len(parts) > 32:
        return f"{len(parts)} levels; level 0 {parts[0]}%"
    return " ".join(parts)
