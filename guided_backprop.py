"""Guided backpropagation for neurons of a conv layer (the report's Task VII, second part).

    python guided_backprop.py --run report                       # 10 interesting CONV4 neurons
    python guided_backprop.py --run report --neurons 3,17 --method all

For each chosen neuron (a channel of --layer, default the last conv layer CONV4) the script finds
the test images that excite it most (top-k over --images of --split, as neurons.py does) and
computes, for the maximal unit of the neuron in each image, the map of its gradient with respect
to the input pixels under one of three ReLU rules (analysis.guided): guided backpropagation
(Springenberg et al., ICLR 2015 workshop), the plain gradient or saliency (Simonyan et al., 2014)
and the deconvnet (Zeiler & Fergus, ECCV 2014). The neurons default to the 10 whose top-k images
are most often of one class (analysis.activations.select_interesting).

Writes into the run folder's figures/ (or --out): METHOD_LAYER.png (per neuron: its top image
with the unit's receptive field outlined, the map, the image patch and the map cropped to the
field), METHOD_LAYER_topK.png (per neuron: its top-k patches above their maps), with --method all
also compare_LAYER.png (the three methods side by side), and METHOD_LAYER_maps.npz (the raw maps,
one array per method, with the images, units and receptive-field boxes, for other tools).
"""

from __future__ import annotations

import models  # noqa: F401 - first, so that TensorFlow starts quietly

# isort: split
import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.activations import class_purity, load_split, parse_channels, select_interesting, top_activations
from analysis.guided import METHODS, STANDARD_STYLE, STYLES, render_map, unit_gradients
from analysis.receptive_field import crop_field, field_box, receptive_field, spatial_layer_names
from data import CLASS_NAMES, SPLITS
from models.cli import UserError, main_with_errors, run_folder
from models.runs import load_run

PADDING = 1.0  # the part of a border unit's field outside the image is drawn white
# Figure geometry, in pixels at DPI.
CELL, GAP, TITLE, MARGIN_LEFT, MARGIN_TOP, DPI = 96, 6, 14, 90, 30, 100
MIN_WIDTH = 640  # room for the figure's title
FRAME = 0.6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run name under logs/ or path to a run folder")
    p.add_argument("--layer", default="CONV4", help="conv or pool layer whose neurons to explain (CONV4)")
    p.add_argument("--neurons", help="comma-separated channels, e.g. 3,17 (default: 10 interesting ones)")
    p.add_argument("--method", choices=(*METHODS, "all"), default="guided", help="ReLU rule (guided)")
    p.add_argument("-k", "--k", type=int, default=9, help="top images per neuron (9)")
    p.add_argument("--data-dir", help="CIFAR-10 folder or tar.gz (default: the run's, else $CIFAR10_DIR)")
    p.add_argument("--split", choices=SPLITS, default="test", help="images to search (test)")
    p.add_argument("--images", type=int, help="search only the first N images of the split (default: all)")
    p.add_argument("--render", choices=("standard", *STYLES), default="standard",
                   help="map rendering: signed (centred at grey), abs, or standard (each method's usual one)")
    p.add_argument("--batch-size", type=int, default=250, help="images per forward/backward batch (250)")
    p.add_argument("--out", help="folder for the figures and maps (default: the run's figures/)")
    return p.parse_args(argv)


def make_figures(run: Path, out: Path, data_dir: str | None = None, layer: str = "CONV4",
                 neurons: list[int] | None = None, method: str = "guided", k: int = 9, split: str = "test",
                 images: int | None = None, render: str = "standard", batch_size: int = 250,
                 progress: bool = False) -> list[Path]:
    """Compute the maps of run's chosen neurons and write the figures and npz into out; returns the paths.

    method: one of analysis.guided.METHODS, or "all" for the three plus a side-by-side figure.
    """
    model, config, _ = load_run(str(run))
    names = spatial_layer_names(model)
    if layer not in names:
        raise UserError(f"no conv or pool layer {layer!r} in the network; choose one of {', '.join(names)}")
    if k < 1:
        raise UserError(f"-k must be at least 1, not {k}")
    channels = model.get_layer(layer).output.shape[-1]
    bad = [n for n in neurons or [] if not 0 <= n < channels]
    if bad:
        raise UserError(f"layer {layer} has channels 0..{channels - 1}; no {', '.join(map(str, bad))}")
    x, y = load_split(data_dir or config.data_dir, split, images, config.val_size)
    class_names = CLASS_NAMES
    top = top_activations(model, layer, x, k=k, batch_size=batch_size, progress=progress)
    if neurons is None:
        neurons = select_interesting(top, y, n=min(10, channels))
        describe_choice(top, y, neurons, class_names)
    sel = _Selection(top, neurons, x, y, receptive_field(model, layer))
    methods = METHODS if method == "all" else (method,)
    maps = {m: sel.gradients(model, layer, m, batch_size, progress) for m in methods}
    out.mkdir(parents=True, exist_ok=True)
    paths = [save_maps(out / f"{method}_{layer}_maps.npz", sel, maps, layer, split)]
    for m in methods:
        paths.append(unit_figure(out / f"{m}_{layer}.png", sel, {m: maps[m]}, render, class_names, layer))
        paths.append(topk_figure(out / f"{m}_{layer}_top{sel.k}.png", sel, maps[m], m, render, class_names, layer))
    if method == "all":
        paths.append(unit_figure(out / f"compare_{layer}.png", sel, maps, render, class_names, layer))
    return paths


def describe_choice(top, labels: np.ndarray, neurons: list[int], class_names) -> None:
    """Say why each neuron was chosen: its top-k images' dominant class and how pure they are."""
    rows = {r["channel"]: r for r in class_purity(top, labels)}
    print(f"interesting {top.layer} neurons (class purity of their top-{top.values.shape[1]} images):")
    for n in neurons:
        r = rows[n]
        print(f"  {n:4d}: {r['count']}/{top.values.shape[1]} {class_names[r['dominant']]}, "
              f"mean top activation {r['mean_activation']:.3g}")


class _Selection:
    """The chosen neurons' top-k images, units and receptive-field boxes, as (neurons, k) arrays."""

    def __init__(self, top, neurons: list[int], x: np.ndarray, y: np.ndarray, rf):
        self.neurons = np.asarray(neurons)
        self.image_indices = top.images[self.neurons]  # (n, k)
        self.positions = top.positions[self.neurons]  # (n, k, 2)
        self.activations = top.values[self.neurons]
        self.images, self.labels = x[self.image_indices], y[self.image_indices]
        self.boxes = np.array([[field_box(rf, *pos) for pos in row] for row in self.positions])
        self.k = self.image_indices.shape[1]

    def gradients(self, model, layer: str, method: str, batch_size: int, progress: bool) -> np.ndarray:
        channels = np.repeat(self.neurons, self.k)
        flat = unit_gradients(model, layer, self.images.reshape(-1, *self.images.shape[2:]), channels,
                              self.positions.reshape(-1, 2), method, batch_size, progress)
        return flat.reshape(self.images.shape)


def save_maps(path: Path, sel: _Selection, maps: dict[str, np.ndarray], layer: str, split: str) -> Path:
    np.savez_compressed(path, layer=layer, split=split, neurons=sel.neurons, image_indices=sel.image_indices,
                        positions=sel.positions, activations=sel.activations, labels=sel.labels,
                        boxes=sel.boxes, images=sel.images, **maps)
    return path


@dataclass
class Cell:
    """One picture of a figure grid: an image in [0, 1] ((h, w, 3) or grey (h, w)), a title, and
    optionally a receptive field (top, left, bottom, right) to outline, in the image's pixels."""

    image: np.ndarray
    title: str = ""
    box: tuple[int, int, int, int] | None = None


def _fit(image: np.ndarray) -> np.ndarray:
    """image as RGB, resized to CELL x CELL pixels without smoothing (each input pixel stays a block)."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    return rgb[np.arange(CELL) * rgb.shape[0] // CELL][:, np.arange(CELL) * rgb.shape[1] // CELL]


def grid_figure(path: Path, rows: list[list[Cell]], labels: list[str], title: str) -> Path:
    """Rows of cells, a label left of each row, drawn as one image: a grid of hundreds of
    matplotlib axes takes many seconds per figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    pitch_y, pitch_x = TITLE + CELL + GAP, CELL + GAP
    mosaic = np.ones((len(rows) * pitch_y, max(map(len, rows)) * pitch_x - GAP, 3))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            y, x = i * pitch_y + TITLE, j * pitch_x
            mosaic[y:y + CELL, x:x + CELL] = _fit(cell.image)
            # A thin frame, so that padding (white) at the image border shows as part of the cell.
            mosaic[[y, y + CELL - 1], x:x + CELL] = mosaic[y:y + CELL, [x, x + CELL - 1]] = FRAME
    height, width = mosaic.shape[0] + MARGIN_TOP, max(mosaic.shape[1] + MARGIN_LEFT, MIN_WIDTH)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((MARGIN_LEFT / width, 0, mosaic.shape[1] / width, mosaic.shape[0] / height))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=9)
    for i, row in enumerate(rows):
        y = i * pitch_y + TITLE
        ax.text(-8, y + CELL / 2, labels[i], ha="right", va="center", fontsize=7)
        for j, cell in enumerate(row):
            x = j * pitch_x
            ax.text(x + CELL / 2, y - 3, cell.title, ha="center", va="bottom", fontsize=6)
            if cell.box is not None:  # the part of the field inside the image
                scale = CELL / cell.image.shape[0]
                top, left, bottom, right = np.clip(cell.box, 0, cell.image.shape[0]) * scale
                ax.add_patch(Rectangle((x + left - 0.5, y + top - 0.5), right - left, bottom - top, fill=False,
                                       edgecolor="yellow", linewidth=1.0))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _style(method: str, render: str) -> str:
    return STANDARD_STYLE[method] if render == "standard" else render


def unit_figure(path: Path, sel: _Selection, maps: dict[str, np.ndarray], render: str, class_names,
                layer: str) -> Path:
    """Per neuron (a row), its top image: the image with the unit's field outlined, each method's
    map, the image patch the unit sees, and each map cropped to that patch."""
    rows, labels = [], []
    for i, neuron in enumerate(sel.neurons):
        image, box = sel.images[i, 0] / 255.0, tuple(sel.boxes[i, 0])
        rendered = {m: render_map(maps[m][i, 0], _style(m, render)) for m in maps}
        rows.append([Cell(image, "image", box), *(Cell(r, m) for m, r in rendered.items()),
                     Cell(crop_field(image, box, PADDING), "field"),
                     *(Cell(crop_field(r, box, PADDING), f"{m}, field") for m, r in rendered.items())])
        labels.append(f"neuron {neuron}\n{class_names[sel.labels[i, 0]]}\n{sel.activations[i, 0]:.3g}")
    return grid_figure(path, rows, labels, f"{layer}: {', '.join(maps)} maps of each neuron's maximal unit "
                                           "on its most exciting image")


def topk_figure(path: Path, sel: _Selection, maps: np.ndarray, method: str, render: str, class_names,
                layer: str) -> Path:
    """Per neuron two rows: the patches of its top-k images that its maximal units see, and their maps."""
    rows, labels = [], []
    for i, neuron in enumerate(sel.neurons):
        boxes = [tuple(box) for box in sel.boxes[i]]
        rows.append([Cell(crop_field(image / 255.0, box, PADDING), f"{class_names[label]} {value:.3g}")
                     for image, box, label, value in zip(sel.images[i], boxes, sel.labels[i], sel.activations[i],
                                                         strict=True)])
        rows.append([Cell(crop_field(render_map(grad, _style(method, render)), box, PADDING))
                     for grad, box in zip(maps[i], boxes, strict=True)])
        labels += [f"neuron {neuron}", method]
    return grid_figure(path, rows, labels, f"{layer}: top-{sel.k} image patches of each neuron and their "
                                           f"{method} maps")


def main() -> None:
    args = parse_args()
    run = run_folder(args.run)
    out = Path(args.out) if args.out else run / "figures"
    neurons = parse_channels(args.neurons) if args.neurons else None
    paths = make_figures(run, out, args.data_dir, args.layer, neurons, args.method, args.k,
                         args.split, args.images, args.render, args.batch_size, progress=True)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main_with_errors(main)
