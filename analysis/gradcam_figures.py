"""Figures of class activation maps (analysis.gradcam): Grad-CAM and Guided Grad-CAM of a run's
network on a per-class sample of images or on chosen ones.

For the layer L, gradcam_figures writes:

  gradcam_L.png         a row per image: the image (true class above, predicted class and its
                        probability under it, red for a mistake), the Grad-CAM map upsampled onto
                        it (the class it explains above; scaled to its own maximum, red, whose
                        value is under it) and the Guided Grad-CAM map
  gradcam_L_maps.npz    the raw maps with the images, classes and scores, for other tools
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from analysis import AnalysisError
from analysis.activations import spatial_layer
from analysis.figures import DPI, Cell, grid_figure, save_figure
from analysis.gradcam import (
    TARGETS,
    ClassMaps,
    Sample,
    check_target,
    choose_targets,
    class_maps,
    class_name,
    per_class_sample,
    predict,
    upsample,
)
from analysis.guided import render_map
from analysis.inputs import RunImages, load_inputs
from runs import atomic_save

ALPHA = 0.5  # weight of the coloured map over the image in the overlay
MAX_ROWS = 200  # images in one figure; more would be a figure nobody can read
TITLE_WIDTH = 52  # characters per title line


def overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """An (H, W) map over an (H, W, 3) uint8 image: the map scaled to its own maximum and
    coloured with the jet colour map (blue low, red high), blended with the image."""
    import matplotlib

    heat = cam / cam.max() if cam.max() > 0 else np.zeros_like(cam)
    coloured = matplotlib.colormaps["jet"](heat)[..., :3]
    return ((1 - ALPHA) * image / 255.0 + ALPHA * coloured).astype(np.float32)


def save_maps(path: Path, **arrays: np.ndarray | str) -> Path:
    """The maps with everything needed to read them, as one compressed npz, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(path, lambda tmp: np.savez_compressed(tmp, **arrays))
    return path


def gradcam_figure(path: Path, *, images: np.ndarray, labels: np.ndarray,
                   probabilities: np.ndarray, targets: np.ndarray, maps: ClassMaps,
                   row_labels: list[str], title: str) -> Path:
    """A row per image: the image, the Grad-CAM overlay and the Guided Grad-CAM map."""
    upsampled = upsample(maps.cam, images.shape[1:3])
    rows = []
    for i, image in enumerate(images):
        predicted = int(probabilities[i].argmax())
        rows.append([
            Cell(image, f"true {class_name(int(labels[i]))}",
                 f"pred {class_name(predicted)} {probabilities[i, predicted]:.2f}",
                 caption_style={"color": "black" if predicted == labels[i] else "red"}),
            Cell(overlay(image, upsampled[i]), f"Grad-CAM {class_name(int(targets[i]))}",
                 f"red = {maps.cam[i].max():.3g}"),
            Cell(render_map(maps.guided_gradcam[i], "signed"), "Guided Grad-CAM")])
    return save_figure(grid_figure(rows, title=title, labels=row_labels), path, dpi=DPI)


def _pick(probabilities: np.ndarray, labels: np.ndarray, *, indices: list[int] | None,
          per_class: bool) -> Sample:
    if indices is not None:
        return Sample(np.asarray(indices, np.int64), ["chosen"] * len(indices))
    if per_class:
        return per_class_sample(probabilities, labels)
    return Sample(np.arange(len(labels)), ["first"] * len(labels))


def _check_indices(indices: list[int] | None, available: int | None = None,
                   split: str = "") -> None:
    """Chosen image indices: at least one, none negative, and (once the images are known) each
    below the number of images."""
    if indices is None:
        return
    if not len(indices):
        raise AnalysisError("no image indices given: name at least one image, or None to sample")
    bad = [i for i in indices if i < 0 or (available is not None and i >= available)]
    if bad:
        limit = "" if available is None else (f" to {available - 1} (the first {available} "
                                              f"images of the {split} split)")
        raise AnalysisError(f"image indices go from 0{limit}; no {', '.join(map(str, bad))}")
    if len(indices) > MAX_ROWS:
        raise AnalysisError(f"at most {MAX_ROWS} images in one figure, not {len(indices)}")


def _describe(*, indices: list[int] | None, per_class: bool, searched: int, split: str) -> str:
    if indices is not None:
        return f"chosen {split} images"
    if per_class:
        return (f"per class, its most confident correct image and mistake among the first "
                f"{searched} {split} images")
    return f"the first {searched} {split} images"


def gradcam_figures(run_images: RunImages, out: Path, *, layer: str = "CONV4",
                    target: str | int = "predicted", indices: list[int] | None = None,
                    per_class: bool = True, progress: bool = False) -> list[Path]:
    """Grad-CAM and Guided Grad-CAM of the run's network at layer, written into out; returns the
    paths.

    The images are the chosen indices into the images run_images names, else a per-class
    sample among them (analysis.gradcam.per_class_sample: for each class its most confident
    correct image and its most confident mistake), else (per_class False) those images.
    target is the class each map explains: "predicted", "true", or one class by number or name
    for every image.
    """
    _check_indices(indices)

    def check(model):
        spatial_layer(model, layer)
        check_target(model, target)

    out, split, batch_size = Path(out), run_images.split, run_images.batch_size
    inputs = load_inputs(run_images, check=check)
    model, x, y = inputs.model, inputs.images, inputs.labels
    _check_indices(indices, len(x), split)
    if indices is None and not per_class and len(x) > MAX_ROWS:
        raise AnalysisError(f"at most {MAX_ROWS} images in one figure, not {len(x)}: ask for "
                            "fewer images, or for a per-class sample")
    searched = x if indices is None and per_class else x[:0]  # only the sample needs a search
    sample = _pick(predict(model, searched, batch_size, progress), y, indices=indices,
                   per_class=per_class)
    chosen, labels = x[sample.indices], y[sample.indices]
    probabilities = predict(model, chosen, batch_size)
    targets = choose_targets(probabilities, labels, target)
    maps = class_maps(model, chosen, targets, layer=layer, batch_size=batch_size,
                      progress=progress)
    npz = save_maps(out / f"gradcam_{layer}_maps.npz", layer=layer, split=split,
                    target=str(target), image_indices=sample.indices,
                    kinds=np.asarray(sample.kinds), images=chosen, labels=labels,
                    predictions=probabilities.argmax(axis=1), probabilities=probabilities,
                    targets=targets, scores=maps.scores, cam=maps.cam, guided=maps.guided,
                    guided_gradcam=maps.guided_gradcam)
    what = f"the {target} class" if target in TARGETS else f"class {class_name(int(targets[0]))}"
    how = _describe(indices=indices, per_class=per_class, searched=len(x), split=split)
    # Short lines: the figure is three images wide.
    title = "\n".join(textwrap.wrap(f"{layer} Grad-CAM and Guided Grad-CAM of {what}; {how}",
                                    TITLE_WIDTH))
    row_labels = [f"#{index}\n{kind}"
                  for index, kind in zip(sample.indices, sample.kinds, strict=True)]
    figure = gradcam_figure(out / f"gradcam_{layer}.png", images=chosen, labels=labels,
                            probabilities=probabilities, targets=targets, maps=maps,
                            row_labels=row_labels, title=title)
    return [npz, figure]
