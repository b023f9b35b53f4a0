"""Figures of gradient maps for neurons of a conv or pool layer (the report's Task VII, second
part): guided backpropagation, saliency or deconvnet maps (analysis.guided) of each chosen
neuron's maximal unit in the images that excite it most.

The neurons are chosen by analysis.selection (by hand, or by class purity) among the top-k
images of every channel, as the neuron figures find them. For the layer L and a method M,
guided_figures writes:

  M_L.png          per neuron: its top image with the unit's receptive field outlined, the map,
                   the image patch and the map cropped to the field
  M_L_topK.png     per neuron: its top-k patches above their maps
  compare_L.png    with method "all": the three methods side by side
  M_L_maps.npz     the raw maps (one array per method) with the images, units and receptive-field
                   boxes, for other tools ("all" as M with method "all")

With SmoothGrad (analysis.smoothgrad: each map averaged over noisy copies of the image) every
name starts with smoothgrad_, the titles say so and the npz holds its settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from analysis import AnalysisError
from analysis.activations import TopActivations
from analysis.choices import GRADIENT_METHODS, RENDERS
from analysis.figures import DPI, Cell, grid_figure, save_figure
from analysis.guided import STANDARD_STYLE, render_map, unit_gradients
from analysis.inputs import NeuronQuery, RunImages
from analysis.receptive_field import ReceptiveField, crop_field, field_box, receptive_field
from analysis.selection import probe_neurons
from analysis.smoothgrad import Smoothing, smoothgrad
from data import CLASS_NAMES
from runs import atomic_save

PADDING = 1.0  # the part of a border unit's field outside the image is drawn white


class Selection:
    """The chosen neurons' top-k images, units and receptive-field boxes, as (neurons, k) arrays."""

    def __init__(self, top: TopActivations, neurons: list[int], x: np.ndarray, y: np.ndarray,
                 rf: ReceptiveField):
        self.neurons = np.asarray(neurons)
        self.image_indices = top.images[self.neurons]  # (n, k)
        self.positions = top.positions[self.neurons]  # (n, k, 2)
        self.activations = top.values[self.neurons]
        self.images, self.labels = x[self.image_indices], y[self.image_indices]
        self.boxes = np.array([[field_box(rf, *pos) for pos in row] for row in self.positions])
        self.k = self.image_indices.shape[1]

    def gradients(self, model: keras.Model, layer: str, method: str, batch_size: int,
                  progress: bool, smoothing: Smoothing | None = None) -> np.ndarray:
        """method's map of every (neuron, top image)'s unit, shaped (neurons, k, H, W, 3);
        with smoothing, each averaged over noisy copies of its image (SmoothGrad)."""
        channels, positions = np.repeat(self.neurons, self.k), self.positions.reshape(-1, 2)
        images = self.images.reshape(-1, *self.images.shape[2:])

        def map_of(x: np.ndarray) -> np.ndarray:
            return unit_gradients(model, layer, x, channels, positions, method, batch_size,
                                  progress and smoothing is None)

        flat = map_of(images) if smoothing is None else smoothgrad(
            map_of, images, **asdict(smoothing), progress=progress)
        return flat.reshape(self.images.shape)


def save_maps(path: Path, sel: Selection, maps: dict[str, np.ndarray], layer: str,
              split: str, smoothing: Smoothing | None = None) -> Path:
    """The maps with everything needed to read them (and SmoothGrad's settings if used), as one
    compressed npz, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = smoothing.settings() if smoothing else {}
    atomic_save(path, lambda tmp: np.savez_compressed(
        tmp, layer=layer, split=split, neurons=sel.neurons, image_indices=sel.image_indices,
        positions=sel.positions, activations=sel.activations, labels=sel.labels, boxes=sel.boxes,
        images=sel.images, **settings, **maps))
    return path


def _style(method: str, render: str) -> str:
    return STANDARD_STYLE[method] if render == "standard" else render


def unit_figure(path: Path, sel: Selection, maps: dict[str, np.ndarray], render: str,
                layer: str, smoothing: Smoothing | None = None) -> Path:
    """Per neuron (a row), its top image: the image with the unit's field outlined, each
    method's map, the image patch the unit sees, and each map cropped to that patch."""
    rows, labels = [], []
    for i, neuron in enumerate(sel.neurons):
        image, box = sel.images[i, 0] / 255.0, tuple(sel.boxes[i, 0])
        rendered = {m: render_map(maps[m][i, 0], _style(m, render)) for m in maps}
        rows.append([Cell(image, "image", box=box), *(Cell(r, m) for m, r in rendered.items()),
                     Cell(crop_field(image, box, PADDING), "field"),
                     *(Cell(crop_field(r, box, PADDING), f"{m}, field")
                       for m, r in rendered.items())])
        labels.append(f"neuron {neuron}\n{CLASS_NAMES[sel.labels[i, 0]]}\n"
                      f"{sel.activations[i, 0]:.3g}")
    title = (f"{layer}: {', '.join(maps)} maps of each neuron's maximal unit on its most "
             "exciting image" + (f"\n{smoothing.title()}" if smoothing else ""))
    return save_figure(grid_figure(rows, title=title, labels=labels), path, dpi=DPI)


def topk_figure(path: Path, sel: Selection, maps: np.ndarray, method: str, render: str,
                layer: str, smoothing: Smoothing | None = None) -> Path:
    """Per neuron two rows: the patches of its top-k images that its maximal units see, and
    their maps."""
    rows, labels = [], []
    for i, neuron in enumerate(sel.neurons):
        boxes = [tuple(box) for box in sel.boxes[i]]
        rows.append([Cell(crop_field(image / 255.0, box, PADDING),
                          f"{CLASS_NAMES[label]} {value:.3g}")
                     for image, box, label, value in zip(sel.images[i], boxes, sel.labels[i],
                                                         sel.activations[i], strict=True)])
        rows.append([Cell(crop_field(render_map(grad, _style(method, render)), box, PADDING))
                     for grad, box in zip(maps[i], boxes, strict=True)])
        labels += [f"neuron {neuron}", method]
    title = (f"{layer}: top-{sel.k} image patches of each neuron and their {method} maps"
             + (f"\n{smoothing.title()}" if smoothing else ""))
    return save_figure(grid_figure(rows, title=title, labels=labels), path, dpi=DPI)


def guided_figures(run_images: RunImages, out: Path, query: NeuronQuery = NeuronQuery(), *,
                   method: str = "guided", render: str = "standard",
                   smoothing: Smoothing | None = None, progress: bool = False,
                   log: Callable[[str], None] | None = None) -> list[Path]:
    """The maps of the query's neurons among the images run_images names, written with their
    figures into out; returns the paths.

    method is one of analysis.choices.GRADIENT_METHODS, or "all" for the three and a
    side-by-side figure; render is one of analysis.choices.RENDERS ("standard": each method's
    usual rendering, guided.STANDARD_STYLE). With smoothing, each map is SmoothGrad's
    (analysis.smoothgrad.Smoothing). log, where given, takes why each neuron was chosen, a line
    each.
    """
    if method not in (*GRADIENT_METHODS, "all"):
        raise AnalysisError(f"method must be one of {', '.join(GRADIENT_METHODS)} or all, "
                            f"not {method!r}")
    if render not in RENDERS:
        raise AnalysisError(f"render must be one of {', '.join(RENDERS)}, not {render!r}")
    prefix = "smoothgrad_" if smoothing else ""
    out, layer = Path(out), query.layer
    probe = probe_neurons(run_images, query, progress=progress, log=log)
    inputs, top, chosen = probe.inputs, probe.top, probe.chosen
    model, x, y = inputs.model, inputs.images, inputs.labels
    sel = Selection(top, [c.channel for c in chosen], x, y, receptive_field(model, layer))
    methods = GRADIENT_METHODS if method == "all" else (method,)
    maps = {m: sel.gradients(model, layer, m, run_images.batch_size, progress, smoothing)
            for m in methods}
    paths = [save_maps(out / f"{prefix}{method}_{layer}_maps.npz", sel, maps, layer,
                       run_images.split, smoothing)]
    for m in methods:
        paths.append(unit_figure(out / f"{prefix}{m}_{layer}.png", sel, {m: maps[m]}, render,
                                 layer, smoothing))
        paths.append(topk_figure(out / f"{prefix}{m}_{layer}_top{sel.k}.png", sel, maps[m], m,
                                 render, layer, smoothing))
    if method == "all":
        paths.append(unit_figure(out / f"{prefix}compare_{layer}.png", sel, maps, render, layer,
                                 smoothing))
    return paths
