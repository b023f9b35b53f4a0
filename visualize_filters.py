"""The filters of a conv layer as images (the report's Task VI), with each filter's mean activation.

CONV1's 64 filters (3x3x3) are drawn as 3x3 RGB images in an 8x8 grid, numbered by channel
(0-63, the numbers neurons.py and guided_backprop.py use), as Krizhevsky et al. (NIPS 2012,
Fig. 3) show first-layer filters. Two versions: raw (one common scale, zero = grey, so the
filters' relative strength shows) and normalized (each filter stretched to its own range).
The weights act on standardized pixels (each channel's mean removed), so grey is "average colour".
Each filter's mean activation on a sample of images is written under it and plotted beside the
grid: dead filters (never fire) and dominant ones stand out. --layer draws a deeper layer's
filters channel by channel (a mosaic of 3x3 kernels per filter, one per input channel, grey-scale).

    python visualize_filters.py --run report --data-dir ../shared/data/cifar-10-jpeg
    python visualize_filters.py --run report --layer CONV2 --images 0     # no activations

Writes into the run's figures/ (or --out): filters_L_raw.png, filters_L_normalized.png and
filters_L.csv (filter, mean activation, share of units that fire, weight norm).
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import keras
import matplotlib.pyplot as plt
import numpy as np

from analysis.activations import channel_means, load_split
from analysis.filters import channel_mosaic, grid_shape, scale_filters
from data import SPLITS
from models.cli import UserError, main_with_errors, run_folder
from models.runs import load_run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run name under logs/ or a path to a run folder")
    p.add_argument("--which", choices=("best", "last"), default="best", help="a run's best or last weights (best)")
    p.add_argument("--layer", default="CONV1", help="conv layer (default: CONV1)")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz (default: the run's, else $CIFAR10_DIR)")
    p.add_argument("--split", choices=SPLITS, default="test", help="images for the mean activations (test)")
    p.add_argument("--images", type=int, default=1000,
                   help="first N images of the split for the mean activations (default: 1000; 0: skip)")
    p.add_argument("--batch-size", type=int, default=250, help="images per forward pass (default: 250)")
    p.add_argument("--out", help="folder for the figures and the table (default: the run's figures/)")
    return p.parse_args(argv)


def conv_kernel(model: keras.Model, layer: str) -> np.ndarray:
    """The (kh, kw, in, out) kernel of a conv layer, with a one-line error for any other name."""
    convs = [lay.name for lay in model.layers if isinstance(lay, keras.layers.Conv2D)]
    if layer not in convs:
        raise UserError(f"no conv layer {layer!r} in the network; choose one of {', '.join(convs)}")
    return keras.ops.convert_to_numpy(model.get_layer(layer).kernel)


def filter_images(kernel: np.ndarray, normalize: bool) -> np.ndarray:
    """Images to draw: (out, 3, 3, 3) RGB for a 3-channel input, else (out, H, W) grey-scale
    mosaics of each filter's input channels."""
    scaled = scale_filters(kernel, normalize)
    return scaled if kernel.shape[2] == 3 else channel_mosaic(scaled)


def tile(images: np.ndarray, cols: int, gap_x: int, gap_y: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One white RGB canvas holding the (n, h, w[, 3]) images in [0, 1] (NaN: blank) in rows of
    cols, gap_x apart and gap_y below each row's labels; and each image's (left, top) on it."""
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    canvas = np.ones((rows * (h + gap_y) + gap_y, cols * (w + gap_x) - gap_x, 3), np.float32)
    origins = [(i % cols * (w + gap_x), gap_y + i // cols * (h + gap_y)) for i in range(n)]
    for image, (left, top) in zip(images, origins, strict=True):
        canvas[top:top + h, left:left + w] = np.nan_to_num(image, nan=1.0)
    return canvas, origins


def plot_filters(images: np.ndarray, means: np.ndarray | None, title: str, path: Path) -> Path:
    """The filters in a near-square grid on one canvas, numbered above, their mean activations
    under them and in a bar chart beside the grid (red: dead, never fires; bold: the five strongest)."""
    n, h, w = images.shape[:3]
    _, cols = grid_shape(n)
    canvas, origins = tile(images, cols, gap_x=max(1, w // 4), gap_y=max(2, round(h * 0.75)))
    inches = (0.85 if n <= 64 else 0.6) / w  # per canvas pixel
    bar_width = 2.8 if means is not None else 0.0
    fig = plt.figure(figsize=(canvas.shape[1] * inches + bar_width + 0.6, canvas.shape[0] * inches + 0.9))
    grid = fig.add_gridspec(1, 2, width_ratios=[canvas.shape[1] * inches, bar_width or 1e-3], wspace=0.08,
                            left=0.02, right=0.97, bottom=0.06, top=1 - 0.6 / (canvas.shape[0] * inches + 0.9))
    ax = fig.add_subplot(grid[0])
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    strong = set(np.argsort(-means)[:5].tolist()) if means is not None else set()
    for i, (left, top) in enumerate(origins):
        ax.text(left + w / 2 - 0.5, top - 0.6, str(i), ha="center", va="bottom", fontsize=7)
        if means is not None:
            ax.text(left + w / 2 - 0.5, top + h - 0.4, f"{means[i]:.2f}", ha="center", va="top", fontsize=7,
                    color="red" if means[i] <= 0 else "black", fontweight="bold" if i in strong else "normal")
    if means is not None:
        bars = fig.add_subplot(grid[1])
        bars.barh(np.arange(n), means, color=["red" if m <= 0 else "tab:blue" for m in means])
        bars.set_ylim(n - 0.5, -0.5)
        bars.set_yticks(np.arange(0, n, max(1, n // 16)))
        bars.tick_params(labelsize=7)
        bars.set_xlabel("mean activation", fontsize=8)
        bars.set_ylabel("filter", fontsize=8, labelpad=1)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_table(path: Path, kernel: np.ndarray, means: np.ndarray | None, active: np.ndarray | None) -> Path:
    norms = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=(0, 1, 2)))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filter", "mean_activation", "active_share", "weight_norm"])
        for i, norm in enumerate(norms):
            stats = ["", ""] if means is None else [f"{means[i]:.5f}", f"{active[i]:.4f}"]
            writer.writerow([i, *stats, f"{norm:.5f}"])
    return path


def make_figures(run: Path, out: Path | None = None, data_dir: str | None = None, layer: str = "CONV1",
                 images: int = 1000, split: str = "test", batch_size: int = 250, weights: str = "best",
                 progress: bool = True) -> list[Path]:
    """Both filter grids and the table for one run; returns the paths written."""
    if images < 0 or batch_size < 1:
        raise UserError("--images must be 0 or more and --batch-size at least 1")
    model, config, _ = load_run(str(run), weights)
    out = Path(out) if out else run_folder(str(run)) / "figures"
    kernel = conv_kernel(model, layer)
    means = active = None
    if images:
        x, _ = load_split(data_dir or config.data_dir, split, images, config.val_size)
        means, active = channel_means(model, layer, x, batch_size, progress)
    kh, kw, channels, count = kernel.shape
    shape = f"{count} filters of {kh}x{kw}x{channels}" + ("" if channels == 3 else ", one tile per input channel")
    below = "" if means is None else f"; under each: mean activation on {len(x)} {split} images"
    paths = []
    for normalize, how in ((False, "raw: one common scale, grey = 0"), (True, "normalized per filter")):
        name = "normalized" if normalize else "raw"
        paths.append(plot_filters(filter_images(kernel, normalize), means, f"{layer}: {shape}, {how}{below}",
                                  out / f"filters_{layer}_{name}.png"))
    return [*paths, write_table(out / f"filters_{layer}.csv", kernel, means, active)]


def main() -> None:
    args = parse_args()
    paths = make_figures(Path(args.run), Path(args.out) if args.out else None, args.data_dir, args.layer,
                         args.images, args.split, args.batch_size, args.which)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main_with_errors(main)
