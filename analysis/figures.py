"""The analyses' figures: images tiled into one grid, and saved so that the same figure gives the
same bytes and never half a file under its name.

Every analysis figure (filters, neurons, gradient maps) is a grid of small images with text
around them; `grid_figure` draws such a grid as one image on one matplotlib axes, because a grid
of hundreds of axes takes many seconds per figure and resamples each image differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from runs.files import atomic_save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# No dates or versions in the files, so that drawing a figure again writes identical bytes.
METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None,
                                                "Creator": None}}
DPI = 100
FRAME = 0.6  # grey of the frame around each image, so that padding shows as part of the image
BAND = 14  # pixels of a text line above or under the images, and of each line of the title
LABEL_WIDTH = 90  # pixels left of the grid for the row labels
CHAR_WIDTH = 6  # about one character of the 9-point title, so that the figure is wide enough for it


@dataclass
class Cell:
    """One picture of a grid: an image ((h, w) grey or (h, w, 3) RGB; floats in [0, 1] with NaN
    for blank pixels, or uint8), a title above it, a caption under it (drawn with caption_style,
    matplotlib text properties such as color), and optionally a box (top, left, bottom, right)
    in the image's pixels to outline (the part inside the image)."""

    image: np.ndarray
    title: str = ""
    caption: str = ""
    box: tuple[int, int, int, int] | None = None
    caption_style: dict = field(default_factory=dict)


@dataclass
class Tiling:
    """The grid as one white RGB canvas, and where each cell's image lies on it."""

    canvas: np.ndarray  # (H, W, 3) float32 in [0, 1]
    origins: list[list[tuple[int, int]]]  # per row and cell: (left, top) of the image on the canvas
    scales: list[list[float]]  # per row and cell: canvas pixels per image pixel


def as_rgb(image: np.ndarray) -> np.ndarray:
    """image as float32 RGB in [0, 1]: uint8 divided by 255, grey repeated, NaN made white."""
    image = np.asarray(image)
    rgb = image / 255.0 if np.issubdtype(image.dtype, np.integer) else image
    rgb = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=-1)
    return np.nan_to_num(rgb.astype(np.float32), nan=1.0)


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    """image resized to fit cell x cell pixels (aspect kept) without smoothing: each image
    pixel stays a block, so nearest-neighbour at an integer factor keeps the blocks equal."""
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    scale = cell / max(height, width)
    rows = np.arange(max(1, round(height * scale))) * height // max(1, round(height * scale))
    cols = np.arange(max(1, round(width * scale))) * width // max(1, round(width * scale))
    return rgb[rows][:, cols]


def tile(rows: list[list[Cell]], *, cell: int, gap: int = 6, title_band: int = 0,
         caption_band: int = 0) -> Tiling:
    """Rows of cells on one white canvas: each image fitted into cell x cell pixels (top left,
    aspect kept) with a grey frame just outside it, title_band pixels above each row's images
    for their titles and caption_band below for their captions, gap pixels between cells."""
    if gap < 2:
        raise ValueError(f"cells must be at least 2 pixels apart (for the frame), not {gap}")
    pitch_x, pitch_y = cell + gap, title_band + cell + caption_band + gap
    columns = max(len(row) for row in rows)
    canvas = np.ones((len(rows) * pitch_y - gap + 2, columns * pitch_x - gap + 2, 3), np.float32)
    origins, scales = [], []
    for i, row in enumerate(rows):
        origins.append([])
        scales.append([])
        for j, item in enumerate(row):
            left, top = 1 + j * pitch_x, 1 + i * pitch_y + title_band
            fitted = _fit(item.image, cell)
            height, width = fitted.shape[:2]
            canvas[top - 1:top + height + 1, left - 1:left + width + 1] = FRAME
            canvas[top:top + height, left:left + width] = fitted
            origins[-1].append((left, top))
            scales[-1].append(height / np.asarray(item.image).shape[0])
    return Tiling(canvas, origins, scales)


def grid_figure(rows: list[list[Cell]], *, title: str, labels: list[str] | None = None,
                cell: int = 96, gap: int = 6, right: int = 0, bottom: int = 0) -> Figure:
    """A matplotlib figure of rows of cells drawn as one image (see tile), the title above,
    labels (one per row, may have several lines) left of the rows. right and bottom leave that
    many pixels free beside and under the grid, for a plot the caller adds. Pixels at DPI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cells = [item for row in rows for item in row]
    tiling = tile(rows, cell=cell, gap=gap, title_band=BAND if any(c.title for c in cells) else 0,
                  caption_band=BAND if any(c.caption for c in cells) else 0)
    grid_height, grid_width = tiling.canvas.shape[:2]
    left = LABEL_WIDTH if labels else 8
    top = 10 + BAND * (title.count("\n") + 1)
    title_width = CHAR_WIDTH * max(len(line) for line in title.split("\n")) + 20
    width = max(left + grid_width + right + 8, title_width)
    height = top + grid_height + bottom + 6
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((left / width, (bottom + 6) / height, grid_width / width,
                       grid_height / height))
    ax.imshow(tiling.canvas, interpolation="nearest")
    ax.set_axis_off()
    fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=9)
    for i, row in enumerate(rows):
        if labels:
            y = tiling.origins[i][0][1] + cell / 2 if row else 0
            ax.text(-8, y, labels[i], ha="right", va="center", fontsize=7)
        for item, (x, y), scale in zip(row, tiling.origins[i], tiling.scales[i], strict=True):
            centre = x + np.asarray(item.image).shape[1] * scale / 2 - 0.5
            if item.title:
                ax.text(centre, y - 3, item.title, ha="center", va="bottom", fontsize=6)
            if item.caption:
                below = y + np.asarray(item.image).shape[0] * scale + 1
                ax.text(centre, below, item.caption, ha="center", va="top", fontsize=7,
                        **item.caption_style)
            if item.box is not None:
                size = np.asarray(item.image).shape[:2]
                box_top, box_left = max(item.box[0], 0), max(item.box[1], 0)
                box_bottom, box_right = min(item.box[2], size[0]), min(item.box[3], size[1])
                corner = (x + box_left * scale - 0.5, y + box_top * scale - 0.5)
                ax.add_patch(Rectangle(corner, (box_right - box_left) * scale,
                                       (box_bottom - box_top) * scale, fill=False,
                                       edgecolor="yellow", linewidth=1.0))
    return fig


def save_figure(fig, path: Path, dpi: int | None = None, close: bool = True) -> Path:
    """Write a matplotlib figure to path (PNG or PDF by its suffix), atomically and without
    metadata that changes between runs; close the figure unless asked not to."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"metadata": METADATA.get(path.suffix, {}), "format": path.suffix.lstrip(".")}
    if dpi is not None:
        options["dpi"] = dpi
    atomic_save(path, lambda tmp: fig.savefig(tmp, **options))
    if close:
        plt.close(fig)
    return path
