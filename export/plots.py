"""Pictures of exported tables: conductance maps and level histograms.

Drawn with matplotlib's object API on the Agg canvas (no display, no pyplot
global state). Written by `conductance_tables(..., plot=True)` (CLI
`--plot`) into `plots/` before the manifest, so their checksums are listed
with every other file.
"""

import numpy as np

from mat_keras.export import mapping

# Larger matrices are shown block-averaged; the PNG has fewer pixels anyway.
_MAX_CELLS_SHOWN = 1024


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure


def difference_uS(level_plus, level_minus, device):
    """G+ - G- (differential) or G - g_ref (offset), in microsiemens."""
    g_plus = mapping.conductances(level_plus, device)
    if level_minus is not None:
        return g_plus - mapping.conductances(level_minus, device)
    return g_plus - np.float32(device.g_ref / 1e-6)


def _shrink(image):
    # Average blocks so that huge matrices plot in bounded memory and time.
    rows, cols = image.shape
    fr = max(1, -(-rows // _MAX_CELLS_SHOWN))
    fc = max(1, -(-cols // _MAX_CELLS_SHOWN))
    if fr == 1 and fc == 1:
        return image, 1, 1
    padded = np.zeros((-(-rows // fr) * fr, -(-cols // fc) * fc), dtype=np.float32)
    padded[:rows, :cols] = image
    shrunk = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc).mean(axis=(1, 3))
    return shrunk, fr, fc


def draw_map(path, title, difference, tiles, label="G+ - G-"):
    """Saves the conductance map `difference` (uS) with tile borders marked.

    Args:
        path: PNG file to write.
        title: figure title.
        difference: 2-D array in microsiemens.
        tiles: the manifest's tile records (`row`, `col`, `rows`, `cols`).
        label: what the difference is (`"G+ - G-"` or `"G - g_ref"`).
    """
    image, fr, fc = _shrink(difference)
    limit = float(np.max(np.abs(image))) or 1.0
    rows, cols = difference.shape
    figure = _figure((7, 6))
    axes = figure.add_subplot()
    shown = axes.imshow(
        image, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest",
        extent=(0, cols, rows, 0),
    )
    figure.colorbar(shown, ax=axes, label=f"{label} (uS)")
    for offset in sorted({t["row"] for t in tiles} - {0}):
        axes.axhline(offset, color="black", linewidth=0.8)
    for offset in sorted({t["col"] for t in tiles} - {0}):
        axes.axvline(offset, color="black", linewidth=0.8)
    axes.set_xlabel("column")
    axes.set_ylabel("row")
    suffix = f" (shown in {fr}x{fc} block means)" if fr > 1 or fc > 1 else ""
    axes.set_title(f"{title}: {label}, tile borders in black{suffix}", fontsize=10)
    figure.savefig(path)


def draw_levels(path, title, counts, device):
    """Saves the histogram of devices per level.

    Args:
        path: PNG file to write.
        title: figure title.
        counts: devices at each level.
        device: the `export.Device` (for the conductance axis labels).
    """
    counts = np.asarray(counts, dtype=np.float64)
    fractions = counts / max(1.0, counts.sum())
    figure = _figure((7, 4))
    axes = figure.add_subplot()
    axes.bar(np.arange(len(fractions)), fractions, color="tab:blue")
    axes.set_xlabel(f"level (0 = {device.g_lo * 1e6:g} uS ... {len(fractions) - 1} = {device.g_hi * 1e6:g} uS)")
    axes.set_ylabel("fraction of devices")
    axes.set_title(title)
    figure.savefig(path)


def draw_layer(staging, record, device):
    """Draws both pictures of every matrix of a layer record; returns file names.

    Args:
        staging: the folder being written.
        record: the layer's manifest record (its `.npz` already written).
        device: the `export.Device`.

    Returns:
        The PNG paths, relative to `staging`.
    """
    (staging / "plots").mkdir(exist_ok=True)
    stem = record["file"][: -len(".npz")]
    names = []
    with np.load(staging / record["file"]) as npz:
        for matrix in record["matrices"]:
            arrays = matrix["arrays"]
            plus = npz[arrays.get("level_plus", arrays.get("level"))]
            minus = npz[arrays["level_minus"]] if "level_minus" in arrays else None
            title = f"{record['name']} / {matrix['name']}"
            map_name = f"plots/{stem}.{matrix['name']}.map.png"
            label = "G+ - G-" if minus is not None else "G - g_ref"
            draw_map(staging / map_name, title, difference_uS(plus, minus, device), matrix["tiles"], label)
            levels_name = f"plots/{stem}.{matrix['name']}.levels.png"
            draw_levels(staging / levels_name, title, matrix["stats"]["level_counts"], device)
            names += [map_name, levels_name]
    return names
