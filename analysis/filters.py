"""Conv filters as images, with each filter's mean activation (the report's Task VI).

Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks" (NIPS 2012, Fig. 3) show first-layer filters the same way: each filter's weights as a
small RGB image. CONV1's 64 filters (3x3x3) are drawn as 3x3 RGB images in an 8x8 grid, numbered
by channel (the numbers the neuron figures use), in two versions: raw (one common scale, zero =
grey, so the filters' relative strength shows) and normalized (each filter stretched to its own
range). The weights act on standardized pixels (each channel's mean removed), so grey is
"average colour". Each filter's mean activation on a sample of images is written under it and
plotted beside the grid: dead filters (never fire) and dominant ones stand out. A deeper layer's
filters are drawn channel by channel (a mosaic of kernels per filter, one per input channel,
grey-scale).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import keras
import numpy as np

from analysis import AnalysisError
from analysis.activations import channel_means
from analysis.figures import DPI, Cell, grid_figure, save_figure
from analysis.inputs import RunImages, load_inputs
from runs import atomic_write_text
from runs.weights import load_network

BARS_WIDTH, BARS_BOTTOM = 300, 40  # pixels beside and under the grid for the bar chart


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of a near-square grid for n cells: 64 -> (8, 8), 128 -> (11, 12)."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def scale_filters(kernel: np.ndarray, normalize: bool) -> np.ndarray:
    """Weights (kh, kw, in, out) mapped to [0, 1] as (out, kh, kw, in) images.

    normalize=False: one common scale for all filters, zero at 0.5 (grey), so the filters'
    relative strengths show; normalize=True: each filter stretched to its own min..max.
    """
    filters = np.moveaxis(np.asarray(kernel, dtype=np.float32), -1, 0)
    if normalize:
        low = filters.min(axis=(1, 2, 3), keepdims=True)
        span = filters.max(axis=(1, 2, 3), keepdims=True) - low
        return (filters - low) / np.where(span > 0, span, 1)
    bound = float(np.abs(filters).max()) or 1.0
    return filters / (2 * bound) + 0.5


def channel_mosaic(filters: np.ndarray) -> np.ndarray:
    """(out, kh, kw, in) -> (out, H, W): each filter's input channels side by side in a
    near-square grid, one kh x kw tile per input channel, separated by one NaN (blank) pixel."""
    out, kh, kw, channels = filters.shape
    rows, cols = grid_shape(channels)
    mosaic = np.full((out, rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan, dtype=np.float32)
    for c in range(channels):
        r, q = divmod(c, cols)
        mosaic[:, r * (kh + 1):r * (kh + 1) + kh, q * (kw + 1):q * (kw + 1) + kw] = filters[..., c]
    return mosaic


def conv_kernel(model: keras.Model, layer: str) -> np.ndarray:
    """The (kh, kw, in, out) kernel of a conv layer, with a one-line error for any other name."""
    convs = [lay.name for lay in model.layers if isinstance(lay, keras.layers.Conv2D)]
    if layer not in convs:
        raise AnalysisError(f"no conv layer {layer!r} in the network; choose one of "
                            f"{', '.join(convs)}")
    return keras.ops.convert_to_numpy(model.get_layer(layer).kernel)


def filter_images(kernel: np.ndarray, normalize: bool) -> np.ndarray:
    """Images to draw: (out, 3, 3, 3) RGB for a 3-channel input, else (out, H, W) grey-scale
    mosaics of each filter's input channels."""
    scaled = scale_filters(kernel, normalize)
    return scaled if kernel.shape[2] == 3 else channel_mosaic(scaled)


def plot_filters(images: np.ndarray, means: np.ndarray | None, title: str, path: Path) -> Path:
    """The filters in a near-square grid, numbered above, their mean activations under them and
    in a bar chart beside the grid (red: dead, never fires; bold: the five strongest)."""
    n, h, w = images.shape[:3]
    _, cols = grid_shape(n)
    size = max(h, w)
    cell = size * max(1, round((90 if n <= 64 else 64) / size))  # whole pixels per weight
    strong = set(np.argsort(-means)[:5].tolist()) if means is not None else set()
    cells = []
    for i, image in enumerate(images):
        caption, style = "", {}
        if means is not None:
            caption = f"{means[i]:.2f}"
            style = {"color": "red" if means[i] <= 0 else "black",
                     "fontweight": "bold" if i in strong else "normal"}
        cells.append(Cell(image, title=str(i), caption=caption, caption_style=style))
    rows = [cells[start:start + cols] for start in range(0, n, cols)]
    bars_width = BARS_WIDTH if means is not None else 0
    fig = grid_figure(rows, title=title, cell=cell, right=bars_width,
                      bottom=BARS_BOTTOM if means is not None else 0)
    if means is not None:
        grid = fig.axes[0].get_position()
        width = fig.get_size_inches()[0] * DPI
        bars = fig.add_axes((grid.x1 + 50 / width, grid.y0, (bars_width - 60) / width, grid.height))
        bars.barh(np.arange(n), means, color=["red" if m <= 0 else "tab:blue" for m in means])
        bars.set_ylim(n - 0.5, -0.5)
        bars.set_yticks(np.arange(0, n, max(1, n // 16)))
        bars.tick_params(labelsize=7)
        bars.set_xlabel("mean activation", fontsize=8)
        bars.set_ylabel("filter", fontsize=8, labelpad=1)
    return save_figure(fig, path, dpi=DPI)


def write_table(path: Path, kernel: np.ndarray, means: np.ndarray | None,
                active: np.ndarray | None) -> Path:
    """filter, mean activation, share of units that fire (both empty without activations) and
    the filter's weight norm, one row per filter."""
    norms = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=(0, 1, 2)))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["filter", "mean_activation", "active_share", "weight_norm"])
    for i, norm in enumerate(norms):
        stats = ["", ""] if means is None else [f"{means[i]:.5f}", f"{active[i]:.4f}"]
        writer.writerow([i, *stats, f"{norm:.5f}"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buffer.getvalue())
    return path


def filter_figures(run_images: RunImages, out: Path, *, layer: str = "CONV1",
                   activations: bool = True, progress: bool = False) -> list[Path]:
    """Both filter grids (raw and normalized) and the table of one layer of the run's network,
    written into out; returns the paths. With activations, each filter's mean activation on
    the images run_images names is written under it and into the table (visualize_filters.py
    and the report take the first analysis.choices.FILTER_IMAGES); without, no image is read."""
    out = Path(out)
    means = active = None
    if activations:
        inputs = load_inputs(run_images, check=lambda model: conv_kernel(model, layer))
        model = inputs.model
        means, active = channel_means(model, layer, inputs.images, run_images.batch_size, progress)
    else:
        model = load_network(run_images.run, run_images.which)[0]
    kernel = conv_kernel(model, layer)
    kh, kw, channels, count = kernel.shape
    shape = f"{count} filters of {kh}x{kw}x{channels}"
    shape += "" if channels == 3 else ", one tile per input channel"
    below = "" if means is None else (f"; under each: mean activation on {len(inputs.images)} "
                                      f"{run_images.split} images")
    paths = []
    for normalize, how in ((False, "raw: one common scale, grey = 0"),
                           (True, "normalized per filter")):
        name = "normalized" if normalize else "raw"
        paths.append(plot_filters(filter_images(kernel, normalize), means,
                                  f"{layer}: {shape}, {how}{below}",
                                  out / f"filters_{layer}_{name}.png"))
    return [*paths, write_table(out / f"filters_{layer}.csv", kernel, means, active)]
