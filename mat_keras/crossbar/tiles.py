"""Splitting a weight matrix into crossbar tiles.

A tile is a block of at most `rows x cols` cells of a weight matrix, counted
in weights: a cell is one device pair in the differential scheme (a
`(256, 256)` tile occupies 256 x 512 devices, or two 256 x 256 arrays for G+
and G-) and one device in the offset scheme (plus the tile's reference
column). Tiles are laid out row-major; the last tile row and column are
smaller when the matrix does not divide evenly. Every matrix cell belongs to
exactly one tile.
"""

import dataclasses

import numpy as np

from mat_keras.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class Tile:
    """One crossbar tile of a matrix.

    Attributes:
        index: `(tile_row, tile_col)` position in the grid of tiles.
        row: first matrix row in the tile (row offset).
        col: first matrix column in the tile (column offset).
        rows: number of matrix rows in the tile.
        cols: number of matrix columns in the tile.
    """

    index: tuple
    row: int
    col: int
    rows: int
    cols: int

    @property
    def slices(self):
        """`(row_slice, col_slice)` selecting the tile from its matrix."""
        return (
            slice(self.row, self.row + self.rows),
            slice(self.col, self.col + self.cols),
        )

    def to_dict(self):
        """Returns the JSON-friendly form written to the manifest."""
        return {
            "index": list(self.index),
            "row": self.row,
            "col": self.col,
            "rows": self.rows,
            "cols": self.cols,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(
            index=tuple(data["index"]),
            row=int(data["row"]),
            col=int(data["col"]),
            rows=int(data["rows"]),
            cols=int(data["cols"]),
        )


def check_tile(tile):
    """Returns `tile` as a `(rows, cols)` tuple of positive ints.

    Args:
        tile: a pair of positive integers, or a string such as `"256x256"`.

    Raises:
        InvalidArgumentError: not a pair of integers >= 1.

    Example:

    >>> check_tile("128x64")
    (128, 64)
    """
    if isinstance(tile, str):
        parts = tile.lower().replace("*", "x").split("x")
        try:
            tile = tuple(int(part) for part in parts)
        except ValueError:
            raise InvalidArgumentError(
                f"tile must look like ROWSxCOLS, for example 256x256; got {tile!r}."
            ) from None
    try:
        rows, cols = tile
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"tile must be a pair (rows, cols), got {tile!r}."
        ) from None
    for value in (rows, cols):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(
                f"A tile needs at least 1 row and 1 column, got {tile!r}."
            )
    return int(rows), int(cols)


def tile_grid(shape, tile):
    """Returns the tiles covering a matrix of `shape`, row-major.

    Args:
        shape: `(rows, cols)` of the matrix.
        tile: `(rows, cols)` of a tile.

    Returns:
        A list of `Tile`.

    Example:

    >>> [t.index for t in tile_grid((300, 100), (256, 256))]
    [(0, 0), (1, 0)]
    >>> tile_grid((300, 100), (256, 256))[1].rows
    44
    """
    tile_rows, tile_cols = check_tile(tile)
    rows, cols = shape
    tiles = []
    for i, row in enumerate(range(0, rows, tile_rows)):
        for j, col in enumerate(range(0, cols, tile_cols)):
            tiles.append(
                Tile(
                    index=(i, j),
                    row=row,
                    col=col,
                    rows=min(tile_rows, rows - row),
                    cols=min(tile_cols, cols - col),
                )
            )
    return tiles


def grid_shape(shape, tile):
    """Returns `(tile_rows, tile_cols)`: how many tiles cover `shape`."""
    tile_rows, tile_cols = check_tile(tile)
    return (-(-shape[0] // tile_rows), -(-shape[1] // tile_cols))
